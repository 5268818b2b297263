/* redis_cancel.c - suki_redis_cancel against a real redis-server (port in
 * argv[1]): an owner's pending callbacks run once, at once, with r NULL,
 * never again when their replies come; other callers' calls behind them
 * still get their replies in order. Exits 0 when all holds. */
#include "conf.h"
#include "log.h"
#include "redis.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct event_base *base;
static int owned_calls, owned_cancelled, owned_after;
static int others[4], n_others;
static bool cancelling, failed;

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "redis_cancel: %s:%d: %s\n", __FILE__, __LINE__,   \
                    #c);                                                       \
            failed = true;                                                     \
        }                                                                      \
    } while (0)

static void on_owned(struct suki_redis *r, redisReply *reply, void *arg)
{
    int *per_call = arg; /* per-call state: freed on every path */
    owned_calls++;
    if (!r) {
        CHECK(reply == NULL);
        CHECK(cancelling); /* only from inside suki_redis_cancel */
        owned_cancelled++;
    } else {
        owned_after++;
    }
    free(per_call);
}

static void on_other(struct suki_redis *r, redisReply *reply, void *arg)
{
    CHECK(r != NULL);
    CHECK(reply && reply->type == REDIS_REPLY_STRING);
    if (reply && reply->type == REDIS_REPLY_STRING && n_others < 4)
        others[n_others++] = atoi(reply->str);
    if ((intptr_t)arg == 3)
        event_base_loopexit(base, NULL);
}

static void on_state(struct suki_redis *r, bool up, void *arg)
{
    (void)arg;
    if (!up)
        return;
    static int owner; /* any address names the owner */
    char v[4][8];
    for (int i = 0; i < 4; i++) {
        /* Interleave: owned, other, owned, other, ... on one pipeline. */
        const char *ping[2] = {"PING", "x"};
        int *st = suki_calloc(1, sizeof(*st));
        CHECK(suki_redis_argv_owned(r, &owner, on_owned, st, 0, 2, ping,
                                    NULL) == 0);
        snprintf(v[i], sizeof(v[i]), "%d", i);
        const char *echo[2] = {"ECHO", v[i]};
        CHECK(suki_redis_argv(r, on_other, (void *)(intptr_t)i, 0, 2, echo,
                              NULL) == 0);
    }
    cancelling = true;
    suki_redis_cancel(r, &owner);
    cancelling = false;
    CHECK(owned_cancelled == 4);
    suki_redis_cancel(r, &owner); /* nothing left: no second call */
    CHECK(owned_calls == 4);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fprintf(stderr, "redis_cancel: no replies within 10 s\n");
    failed = true;
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: redis_cancel PORT\n");
        return 2;
    }
    suki_log_init("redis_cancel");
    struct suki_conf c;
    memset(&c, 0, sizeof(c));
    c.redis_host = "127.0.0.1";
    c.redis_port = atoi(argv[1]);
    c.redis_connect_timeout_ms = 2000;
    c.redis_command_timeout_ms = 5000;
    base = event_base_new();
    struct suki_redis *r = suki_redis_new(base, &c, "test", on_state, NULL);
    struct event *t = evtimer_new(base, on_timeout, NULL);
    suki_timer_ms(t, 10000);
    event_base_dispatch(base);
    CHECK(owned_after == 0); /* the replies came and were thrown away */
    CHECK(owned_calls == 4);
    CHECK(n_others == 4);
    for (int i = 0; i < n_others; i++)
        CHECK(others[i] == i); /* in order */
    event_free(t);
    suki_redis_free(r);
    suki_redis_cleanup(base);
    event_base_free(base);
    if (!failed)
        printf("redis_cancel: ok\n");
    return failed ? 1 : 0;
}
