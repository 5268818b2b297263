/* ctl_inbound.c - sukictl inbound status: what the IMAP poller of sukid
 * (daemon/inbound.h) last did, from its P:inbound hash. */
#include "config.h"

#include "ctl.h"
#include "metrics.h"
#include "timeutil.h"
#include "util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *field(const redisReply *h, const char *name)
{
    if (!h || h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(h->element[i]->str, name) == 0 &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return h->element[i + 1]->str;
    return NULL;
}

static long long num(const redisReply *h, const char *name)
{
    const char *v = field(h, name);
    int64_t n;
    return v && suki_parse_i64(v, INT64_MIN, INT64_MAX, &n) == 0 ? n : 0;
}

/* "2026-12-02T14:00:00Z (12s ago)" for a ms field, or "never". Owned. */
static char *when(const redisReply *h, const char *name)
{
    long long ms = num(h, name);
    if (ms <= 0)
        return suki_strdup("never");
    char ts[64], ago[32];
    suki_time_format_rfc3339(ms, ts, sizeof(ts));
    int64_t d = suki_now_ms() - ms;
    suki_format_duration(d > 0 ? d : 0, ago, sizeof(ago));
    return suki_asprintf("%s (%s ago)", ts, ago);
}

static int status(struct sukictl *ctl)
{
    if (!sukictl_redis(ctl))
        return SUKICTL_FAILED;
    char *kh = sukictl_key(ctl, SUKI_KEY_INBOUND);
    char *kl = sukictl_key(ctl, SUKI_KEY_INBOUND_LEASE);
    const char *a1[2] = {"HGETALL", kh};
    const char *a2[2] = {"GET", kl};
    redisReply *h = sukictl_cmdargv(ctl, 2, a1, NULL);
    redisReply *l = h ? sukictl_cmdargv(ctl, 2, a2, NULL) : NULL;
    free(kh);
    free(kl);
    if (!h || !l) {
        if (h)
            freeReplyObject(h);
        return SUKICTL_FAILED;
    }
    bool leased = l->type == REDIS_REPLY_STRING;
    const char *err = field(h, "error");
    if (ctl->json) {
        json_t *o = json_object();
        json_t *k = json_object();
        for (int i = 0; i < SUKI_IN__COUNT; i++) {
            const char *n = suki_metrics_inbound_name(i);
            char *f = suki_asprintf("n:%s", n);
            json_object_set_new(k, n, json_integer(num(h, f)));
            free(f);
        }
        json_object_set_new(o, "configured",
                            json_boolean(ctl->conf && ctl->conf->inbound));
        json_object_set_new(o, "polling", json_boolean(leased));
        json_object_set_new(o, "last_poll_ms",
                            json_integer(num(h, "polled_at")));
        json_object_set_new(o, "last_ok_ms", json_integer(num(h, "ok_at")));
        json_object_set_new(o, "error", json_string(err ? err : ""));
        json_object_set_new(o, "uidvalidity",
                            json_string(field(h, "uidvalidity")
                                            ? field(h, "uidvalidity")
                                            : ""));
        json_object_set_new(o, "last_uid", json_integer(num(h, "last")));
        json_object_set_new(o, "uids_processed", json_integer(num(h, "uids")));
        json_object_set_new(o, "suppressed",
                            json_integer(num(h, "suppressed")));
        json_object_set_new(o, "kinds", k);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        char *poll = when(h, "polled_at"), *ok = when(h, "ok_at");
        printf("mailbox     %s\n", ctl->conf && ctl->conf->inbound
                                       ? ctl->conf->inbound_url
                                       : "(no inbound section)");
        printf("poller      %s\n",
               leased ? "a sukid holds the lease" : "none polling");
        printf("last poll   %s\n", poll);
        printf("last ok     %s\n", ok);
        if (err && *err)
            printf("error       %s\n", err);
        printf("uidvalidity %s, last UID done %lld\n",
               field(h, "uidvalidity") ? field(h, "uidvalidity") : "-",
               num(h, "last"));
        printf("processed   %lld messages\n", num(h, "uids"));
        for (int i = 0; i < SUKI_IN__COUNT; i++) {
            const char *n = suki_metrics_inbound_name(i);
            char *f = suki_asprintf("n:%s", n);
            printf("  %-10s %lld\n", n, num(h, f));
            free(f);
        }
        printf("suppressed  %lld addresses (bounces and complaints)\n",
               num(h, "suppressed"));
        free(poll);
        free(ok);
    }
    freeReplyObject(h);
    freeReplyObject(l);
    return SUKICTL_OK;
}

int sukictl_inbound(struct sukictl *ctl, int argc, char **argv)
{
    int i = 0;
    const char *sub = NULL;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = true;
        else if (!sub)
            sub = argv[i];
        else {
            sukictl_errx("inbound: unexpected argument '%s'", argv[i]);
            return SUKICTL_USAGE;
        }
    }
    if (!sub || strcmp(sub, "status") != 0) {
        sukictl_errx("inbound: want 'inbound status'");
        return SUKICTL_USAGE;
    }
    return status(ctl);
}
