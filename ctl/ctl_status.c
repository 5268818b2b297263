/* ctl_status.c - sukictl status: is Redis reachable, is the config valid,
 * and the figures an operator looks at first. */
#include "ctl.h"
#include "util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Live daemons from their heartbeats (P:daemon:<consumer>, see
 * heartbeat.c): an array of objects; any open circuit breaker makes the
 * status fail, since mail is then waiting. */
static json_t *daemons(struct sukictl *ctl, bool *breaker_open,
                       bool *replicas_short)
{
    json_t *a = json_array();
    char *pattern = suki_key_id(ctl->conf->prefix, SUKI_KEY_DAEMON, "*");
    char cursor[32] = "0";
    do {
        redisReply *r =
            sukictl_cmd(ctl, "SCAN %s MATCH %s COUNT 100", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            break;
        }
        suki_strlcpy(cursor, r->element[0]->str, sizeof(cursor));
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            redisReply *h = sukictl_cmd(ctl, "HGETALL %s", key);
            if (!h || h->type != REDIS_REPLY_ARRAY) {
                freeReplyObject(h);
                continue;
            }
            json_t *d = json_object();
            json_object_set_new(d, "consumer",
                                json_string(key + strlen(pattern) - 1));
            for (size_t j = 0; j + 1 < h->elements; j += 2) {
                const char *f = h->element[j]->str;
                const char *v = h->element[j + 1]->str;
                if (strcmp(f, "transports") == 0) {
                    json_t *t = json_loads(v, 0, NULL);
                    size_t k;
                    json_t *e;
                    json_array_foreach(t, k, e)
                    {
                        const char *b =
                            json_string_value(json_object_get(e, "breaker"));
                        if (b && strcmp(b, "closed") != 0)
                            *breaker_open = true;
                    }
                    json_object_set_new(d, f, t ? t : json_array());
                } else {
                    int64_t n;
                    if (strcmp(f, "replicas_short") == 0 && strcmp(v, "1") == 0)
                        *replicas_short = true;
                    json_object_set_new(
                        d, f,
                        suki_parse_i64(v, INT64_MIN, INT64_MAX, &n) == 0
                            ? json_integer(n)
                            : json_string(v));
                }
            }
            json_array_append_new(a, d);
            freeReplyObject(h);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    free(pattern);
    return a;
}

/* One line per daemon for the text output. */
static void print_daemon(json_t *d)
{
    json_int_t now = suki_now_ms();
    json_int_t started = json_integer_value(json_object_get(d, "started"));
    printf("  %s  pid %lld  up %llds  applied %lld  fired %lld\n",
           json_string_value(json_object_get(d, "consumer")),
           (long long)json_integer_value(json_object_get(d, "pid")),
           (long long)((now - started) / 1000),
           (long long)json_integer_value(json_object_get(d, "events_applied")),
           (long long)json_integer_value(json_object_get(d, "jobs_fired")));
    if (json_integer_value(json_object_get(d, "replicas_short")))
        printf(
            "    replicas short: WAIT counted %lld of the %lld replicas "
            "redis.min_replicas wants; applied events, sent markers and "
            "settles are held until they are back\n",
            (long long)json_integer_value(json_object_get(d, "replicas_acked")),
            (long long)json_integer_value(json_object_get(d, "min_replicas")));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(d, "transports"), i, t)
    {
        printf("    transport %-10s breaker %-9s queued %lld  in flight %lld"
               "  sent %lld  failed %lld\n",
               json_string_value(json_object_get(t, "name")),
               json_string_value(json_object_get(t, "breaker")),
               (long long)json_integer_value(json_object_get(t, "queued")),
               (long long)json_integer_value(json_object_get(t, "in_flight")),
               (long long)json_integer_value(json_object_get(t, "sent")),
               (long long)(json_integer_value(json_object_get(t, "tempfail")) +
                           json_integer_value(json_object_get(t, "permfail"))));
    }
}

static long long int_reply(struct sukictl *ctl, const char *fmt,
                           const char *key)
{
    redisReply *r = sukictl_cmd(ctl, fmt, key);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    freeReplyObject(r);
    return v;
}

int sukictl_status(struct sukictl *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 0) {
        sukictl_errx("usage: sukictl status");
        return SUKICTL_USAGE;
    }
    json_t *o = json_object();
    bool ok = true, no_daemon = false;
    json_object_set_new(o, "config", json_string(ctl->conf_path));
    json_object_set_new(o, "config_valid", json_boolean(ctl->conf != NULL));
    if (!ctl->conf) {
        json_t *errs = json_array();
        for (size_t i = 0; i < ctl->diags.n; i++) {
            char *e = sukictl_diag(&ctl->diags.v[i]);
            json_array_append_new(errs, json_string(e));
            free(e);
        }
        json_object_set_new(o, "config_errors", errs);
        ok = false;
    } else {
        json_object_set_new(o, "redis_url", json_string(ctl->conf->redis_url));
        struct suki_err err = {{0}};
        ctl->redis = suki_redis_connect_sync(ctl->conf, &err);
        json_object_set_new(o, "redis_reachable",
                            json_boolean(ctl->redis != NULL));
        if (!ctl->redis) {
            json_object_set_new(o, "redis_error", json_string(err.msg));
            ok = false;
        } else {
            long long len = int_reply(ctl, "XLEN %s", ctl->conf->stream);
            json_object_set_new(o, "stream_length", json_integer(len));
            sukictl_intake_status(ctl, o);
            char *dead = sukictl_key(ctl, SUKI_KEY_DEAD);
            json_object_set_new(o, "dead_entries",
                                json_integer(int_reply(ctl, "XLEN %s", dead)));
            free(dead);
            char *jobs = sukictl_key(ctl, SUKI_KEY_JOBS);
            json_object_set_new(o, "jobs_scheduled",
                                json_integer(int_reply(ctl, "ZCARD %s", jobs)));
            free(jobs);
            bool open = false, rshort = false;
            json_t *live = daemons(ctl, &open, &rshort);
            json_object_set_new(o, "daemons", live);
            json_object_set_new(o, "breaker_open", json_boolean(open));
            json_object_set_new(o, "replicas_short", json_boolean(rshort));
            if (open || rshort)
                ok = false;
            /* Events and jobs wait, unseen, while no sukid runs: that is
             * a failure to report, not a figure to read between lines. */
            if (json_array_size(live) == 0) {
                ok = false;
                no_daemon = true;
            }
        }
    }
    if (ctl->json) {
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v)
        {
            if (strcmp(k, "daemons") == 0) {
                printf("%-18s %zu\n", k, json_array_size(v));
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) print_daemon(e);
            } else if (json_is_array(v)) {
                size_t i;
                json_t *e;
                printf("%-18s\n", k);
                json_array_foreach(v, i, e)
                    printf("  %s\n", json_string_value(e));
            } else {
                char *s = json_dumps(v, JSON_ENCODE_ANY);
                if (json_is_string(v))
                    printf("%-18s %s\n", k, json_string_value(v));
                else
                    printf("%-18s %s\n", k, s);
                free(s);
            }
        }
    }
    if (no_daemon) {
        char *pattern = suki_key_id(ctl->conf->prefix, SUKI_KEY_DAEMON, "*");
        sukictl_errx("no sukid is running: no heartbeat in Redis (%s)",
                     pattern);
        free(pattern);
    }
    json_decref(o);
    return ok ? SUKICTL_OK : SUKICTL_FAILED;
}
