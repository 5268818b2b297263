/* heartbeat.c - publish this daemon's identity, counters and transport
 * states in a short-lived Redis hash. */
#include "config.h"

#include "heartbeat.h"
#include "store/keys.h"
#include "store/scripts.h"

#include "conf.h"
#include "daemon.h"
#include "deliver.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "util.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the chart buckets have been given so far (the counters are the
 * process's totals; each heartbeat adds the difference). */
struct chart_base {
    uint64_t events, sent, failed, retried, late_n;
    double late_sum_s;
};

struct suki_heartbeat {
    struct suki_daemon *D;
    struct chart_base sent;
};

static struct suki_redis_script chart_script = {
    "chart-add", suki_lua_chart_add, {0}};

static struct chart_base chart_now(void)
{
    struct chart_base c = {0};
    c.events = suki_metrics.events[SUKI_EV_APPLIED];
    for (size_t i = 0; i < suki_metrics.n_channels; i++) {
        const struct suki_channel_metrics *m = &suki_metrics.channels[i];
        c.sent += m->msgs[SUKI_MSG_SENT];
        c.failed += m->msgs[SUKI_MSG_FAILED];
        c.retried += m->msgs[SUKI_MSG_RETRIED];
    }
    c.late_n = suki_metrics.lateness_count;
    c.late_sum_s = suki_metrics.lateness_sum;
    return c;
}

/* This daemon's part of the current minute's chart bucket: the counters'
 * growth since the last heartbeat (kept for the next one while Redis
 * cannot take it). Nothing new: nothing written. */
static void chart_add(struct suki_heartbeat *hb)
{
    struct suki_daemon *D = hb->D;
    struct chart_base c = chart_now(), *b = &hb->sent;
    uint64_t d[5] = {c.events - b->events, c.sent - b->sent,
                     c.failed - b->failed, c.retried - b->retried,
                     c.late_n - b->late_n};
    static const char *const names[5] = {"events", "sent", "failed", "retried",
                                         "late_n"};
    struct suki_redis_args a = {0};
    char minute[32];
    snprintf(minute, sizeof(minute), "%lld",
             (long long)(suki_now_ms() / 60000));
    char *k = suki_key_id(D->conf->prefix, SUKI_KEY_CHART, minute);
    suki_redis_args_str(&a, k);
    free(k);
    suki_redis_args_int(&a, SUKI_CHART_TTL_S);
    suki_redis_args_int(&a, suki_metrics.lateness_window_max_ms);
    bool any = false;
    for (size_t i = 0; i < 5; i++) {
        if (!d[i])
            continue;
        suki_redis_args_str(&a, names[i]);
        suki_redis_args_int(&a, (int64_t)d[i]);
        any = true;
    }
    int64_t late_ms = (int64_t)((c.late_sum_s - b->late_sum_s) * 1000.0);
    if (late_ms > 0) {
        suki_redis_args_str(&a, "late_sum_ms");
        suki_redis_args_int(&a, late_ms);
    }
    if (any) {
        const char **argv = suki_calloc(a.n, sizeof(char *));
        size_t *lens = suki_calloc(a.n, sizeof(size_t));
        suki_redis_args_ptrs(&a, argv, lens);
        if (suki_redis_eval(D->redis, &chart_script, NULL, NULL, 1, (int)a.n,
                            argv, lens) == 0) {
            *b = c;
            suki_metrics.lateness_window_max_ms = 0;
        }
        free(argv);
        free(lens);
    }
    suki_redis_args_clear(&a);
}

/* JSON array of the configured transports' states; owned string. */
static char *transports_json(const struct suki_daemon *D)
{
    json_t *a = json_array();
    for (size_t i = 0; i < D->conf->n_transports; i++) {
        const char *name = D->conf->transports[i].name;
        struct suki_dispatch_tstate st;
        if (!D->dispatch ||
            suki_dispatch_transport_state(D->dispatch, name, &st) < 0)
            continue;
        json_array_append_new(
            a, json_pack(
                   "{s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "name",
                   name, "breaker", suki_dispatch_breaker_name(st.breaker),
                   "failures", st.consecutive_failures, "reopen_in_ms",
                   (json_int_t)st.reopen_in_ms, "queued", (json_int_t)st.queued,
                   "in_flight", (json_int_t)st.in_flight, "sent",
                   (json_int_t)st.sent, "tempfail", (json_int_t)st.tempfail,
                   "permfail", (json_int_t)st.permfail));
    }
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

static void publish(struct suki_heartbeat *hb)
{
    struct suki_daemon *D = hb->D;
    if (!suki_redis_is_up(D->redis))
        return;
    char *key = suki_key_id(D->conf->prefix, SUKI_KEY_DAEMON, D->consumer);
    char *tj = transports_json(D);
    char pid[16], started[32], updated[32], applied[32], fired[32], ttl[16];
    char want[16], acked[16], shortv[4];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    snprintf(started, sizeof(started), "%lld", (long long)D->started_ms);
    snprintf(updated, sizeof(updated), "%lld", (long long)suki_now_ms());
    snprintf(applied, sizeof(applied), "%llu",
             (unsigned long long)suki_metrics.events[SUKI_EV_APPLIED]);
    snprintf(fired, sizeof(fired), "%llu",
             (unsigned long long)suki_metrics.jobs_fired);
    snprintf(ttl, sizeof(ttl), "%d", SUKI_HEARTBEAT_TTL_S);
    /* redis.min_replicas: sukictl status says when WAIT counts too few
     * (work is then held, not lost) */
    snprintf(want, sizeof(want), "%d", D->conf->redis_min_replicas);
    snprintf(acked, sizeof(acked), "%d", suki_metrics.redis_replicas_acked);
    snprintf(shortv, sizeof(shortv), "%d",
             D->conf->redis_min_replicas > 0 &&
                 suki_metrics.redis_replicas_short);
    const char *hset[] = {"HSET",
                          key,
                          "pid",
                          pid,
                          "version",
                          VERSION,
                          "started",
                          started,
                          "updated",
                          updated,
                          "events_applied",
                          applied,
                          "jobs_fired",
                          fired,
                          "transports",
                          tj,
                          "min_replicas",
                          want,
                          "replicas_acked",
                          acked,
                          "replicas_short",
                          shortv};
    const char *expire[] = {"EXPIRE", key, ttl};
    /* the index of live daemons (sukictl status, the console); an entry
     * an hour old is a daemon that died without its goodbye */
    char *kd = suki_key(D->conf->prefix, SUKI_KEY_DAEMONS);
    char old[32];
    snprintf(old, sizeof(old), "(%lld", (long long)suki_now_ms() - 3600000);
    const char *zadd[] = {"ZADD", kd, updated, D->consumer};
    const char *zrem[] = {"ZREMRANGEBYSCORE", kd, "-inf", old};
    /* Replies are not needed: a lost heartbeat is refreshed in 2 s. */
    if (suki_redis_argv(D->redis, NULL, NULL, 0, SUKI_ARRAY_LEN(hset), hset,
                        NULL) == 0) {
        (void)suki_redis_argv(D->redis, NULL, NULL, 0, 3, expire, NULL);
        (void)suki_redis_argv(D->redis, NULL, NULL, 0, 4, zadd, NULL);
        (void)suki_redis_argv(D->redis, NULL, NULL, 0, 4, zrem, NULL);
    }
    free(kd);
    free(tj);
    free(key);
    chart_add(hb);
}

void suki_heartbeat_publish(struct suki_heartbeat *hb)
{
    if (hb)
        publish(hb);
}

struct suki_heartbeat *suki_heartbeat_new(struct suki_daemon *D)
{
    struct suki_heartbeat *hb = suki_calloc(1, sizeof(*hb));
    hb->D = D;
    if (!chart_script.sha[0])
        suki_redis_script_init(&chart_script);
    /* what happened before this start is in the buckets already, or lost
     * with the previous process: counters start at 0 either way */
    hb->sent = chart_now();
    return hb;
}

void suki_heartbeat_free(struct suki_heartbeat *hb)
{
    if (!hb)
        return;
    struct suki_daemon *D = hb->D;
    if (suki_redis_is_up(D->redis)) {
        /* The loop has ended, so a DEL queued on D->redis would never be
         * written: without this the stopped daemon would look alive to
         * sukictl status until the key expires. */
        struct suki_err err = {{0}};
        redisContext *ctx = suki_redis_connect_sync(D->conf, &err);
        if (ctx) {
            char *key =
                suki_key_id(D->conf->prefix, SUKI_KEY_DAEMON, D->consumer);
            freeReplyObject(redisCommand(ctx, "DEL %s", key));
            char *kd = suki_key(D->conf->prefix, SUKI_KEY_DAEMONS);
            freeReplyObject(redisCommand(ctx, "ZREM %s %s", kd, D->consumer));
            free(kd);
            free(key);
            redisFree(ctx);
        }
    }
    free(hb);
}
