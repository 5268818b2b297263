/* ctl_status.c - sukictl status: is Redis reachable, is the config valid,
 * and the figures an operator looks at first. */
#include "ctl.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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
    bool ok = true;
    json_object_set_new(o, "config", json_string(ctl->conf_path));
    json_object_set_new(o, "config_valid", json_boolean(ctl->conf != NULL));
    if (!ctl->conf) {
        json_t *errs = json_array();
        for (size_t i = 0; i < ctl->diags.n; i++)
            json_array_append_new(
                errs, json_sprintf("%s:%d: %s", ctl->diags.v[i].file,
                                   ctl->diags.v[i].line, ctl->diags.v[i].msg));
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
            char *dead = sukictl_key(ctl, "dead");
            json_object_set_new(o, "dead_entries",
                                json_integer(int_reply(ctl, "XLEN %s", dead)));
            free(dead);
            char *jobs = sukictl_key(ctl, "jobs");
            json_object_set_new(o, "jobs_scheduled",
                                json_integer(int_reply(ctl, "ZCARD %s", jobs)));
            free(jobs);
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
            if (json_is_array(v)) {
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
    json_decref(o);
    return ok ? SUKICTL_OK : SUKICTL_FAILED;
}
