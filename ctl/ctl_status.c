/* ctl_status.c - sukictl status: is Redis reachable, is the config valid,
 * and the figures an operator looks at first. */
#include "ctl.h"
#include "ops.h"
#include "store/scripts.h"
#include "util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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
            /* the figures the console's overview shows: one script and
             * one reading of its reply behind both (lib/ops.c) */
            struct suki_redis_args a = {0};
            suki_ops_overview_args(ctl->conf, &a);
            redisReply *r = sukictl_eval(ctl, suki_lua_ops_overview,
                                         SUKI_OPS_OVERVIEW_KEYS, &a);
            suki_redis_args_clear(&a);
            bool open = false;
            json_t *ov = suki_ops_overview_json(ctl->conf, r, &open);
            freeReplyObject(r);
            if (!ov) {
                ok = false;
                ov = json_pack("{s:[]}", "daemons");
            }
            json_object_update(o, ov);
            json_decref(ov);
            json_t *live = json_object_get(o, "daemons");
            if (open || json_is_true(json_object_get(o, "replicas_short")))
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
