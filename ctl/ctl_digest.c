/* ctl_digest.c - sukictl digest list|send: what digests hold, and sending
 * them now through sukid's own path (a digest job due now). */
#include "ctl.h"
#include "timeutil.h"
#include "util.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Recipients to look at: --to ADDR (lower-cased, as held keys are), else
 * every member of P:held-to. Returns an owned reply-free array. */
static char **recipients(struct sukictl *ctl, const char *to, size_t *n)
{
    char **v = NULL;
    *n = 0;
    if (to) {
        v = suki_calloc(1, sizeof(*v));
        v[0] = suki_strdup(to);
        for (char *p = v[0]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        *n = 1;
        return v;
    }
    char *k = sukictl_key(ctl, SUKI_KEY_HELD_TO);
    redisReply *r = sukictl_cmd(ctl, "SMEMBERS %s", k);
    free(k);
    if (!r)
        return NULL;
    v = suki_calloc(r->elements + 1, sizeof(*v));
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            v[(*n)++] = suki_strdup(r->element[i]->str);
    freeReplyObject(r);
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int list(struct sukictl *ctl, const char *to)
{
    size_t n;
    char **rc = recipients(ctl, to, &n);
    if (!rc && n == 0 && !to)
        return SUKICTL_FAILED;
    bool header = false;
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        char *k = suki_key_id(ctl->conf->prefix, SUKI_KEY_HELD, rc[i]);
        redisReply *r = sukictl_cmd(ctl, "HGETALL %s", k);
        free(k);
        if (!r) {
            free_list(rc, n);
            return SUKICTL_FAILED;
        }
        for (size_t j = 0; j + 1 < r->elements; j += 2) {
            json_t *o = json_loads(r->element[j + 1]->str, 0, NULL);
            if (!o)
                o = json_object();
            char due[40];
            suki_time_format_rfc3339(
                (int64_t)json_integer_value(json_object_get(o, "d")), due,
                sizeof(due));
            if (ctl->json) {
                json_t *out = json_pack(
                    "{s:s, s:s, s:s, s:s, s:s, s:s}", "to", rc[i], "key",
                    r->element[j]->str, "client", jstr(o, "c"), "rule",
                    jstr(o, "r"), "subject", jstr(o, "s"), "due", due);
                static const char *const f[] = {"contract", "ends_at", "ticket",
                                                "summary"};
                for (size_t x = 0; x < SUKI_ARRAY_LEN(f); x++)
                    if (*jstr(o, f[x]))
                        json_object_set_new(out, f[x],
                                            json_string(jstr(o, f[x])));
                char *s = json_dumps(out, JSON_COMPACT);
                puts(s ? s : "{}");
                free(s);
                json_decref(out);
            } else {
                if (!header)
                    printf("%-28s %-14s %-20s %-16s %s\n", "TO", "CLIENT",
                           "RULE", "ABOUT", "DUE");
                header = true;
                printf("%-28s %-14s %-20s %-16s %s\n", rc[i], jstr(o, "c"),
                       jstr(o, "r"), *jstr(o, "s") ? jstr(o, "s") : "-", due);
            }
            shown++;
            json_decref(o);
        }
        freeReplyObject(r);
    }
    if (!ctl->json && shown == 0)
        printf("nothing held%s%s\n", to ? " for " : "", to ? to : "");
    free_list(rc, n);
    return SUKICTL_OK;
}

/* One digest job due now for each recipient with held items: sukid sends
 * it as it sends the daily one (same composing, markers and removal). */
static int send_now(struct sukictl *ctl, const char *to)
{
    size_t n;
    char **rc = recipients(ctl, to, &n);
    if (!rc && !to)
        return SUKICTL_FAILED;
    int ret = SUKICTL_OK;
    size_t queued = 0;
    int64_t now = suki_now_ms();
    for (size_t i = 0; i < n; i++) {
        char *hk = suki_key_id(ctl->conf->prefix, SUKI_KEY_HELD, rc[i]);
        redisReply *r = sukictl_cmd(ctl, "HLEN %s", hk);
        free(hk);
        long long items = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        if (r)
            freeReplyObject(r);
        else
            ret = SUKICTL_FAILED;
        if (items == 0) {
            if (to)
                printf("nothing held for %s\n", rc[i]);
            continue;
        }
        char slot[40];
        snprintf(slot, sizeof(slot), "now-%" PRId64, now);
        char *key =
            suki_job_key(SUKI_DIGEST_RULE, SUKI_DIGEST_RULE, rc[i], slot);
        char *body = suki_asprintf("{\"d\":%" PRId64 "}", now);
        if (sukictl_queue_job(ctl, SUKI_DIGEST_RULE, key, body, now) < 0) {
            ret = SUKICTL_FAILED;
        } else {
            printf("digest for %s queued: %lld item(s)\n", rc[i], items);
            queued++;
        }
        free(key);
        free(body);
    }
    if (!to && queued == 0 && ret == SUKICTL_OK)
        printf("nothing held\n");
    free_list(rc, n);
    return ret;
}

int sukictl_digest(struct sukictl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {{"to", required_argument, NULL, 't'},
                                         {"json", no_argument, NULL, 'j'},
                                         {NULL, 0, NULL, 0}};
    /* argv starts after "digest": an optional subcommand, then options
     * (getopt wants a program name in av[0]). */
    bool has_sub = argc > 0 && argv[0][0] != '-';
    const char *sub = has_sub ? argv[0] : "list";
    const char *to = NULL;
    if (strcmp(sub, "list") != 0 && strcmp(sub, "send") != 0) {
        sukictl_errx("digest: unknown subcommand '%s' (list or send)", sub);
        return SUKICTL_USAGE;
    }
    int skip = has_sub ? 1 : 0, c, rc = SUKICTL_OK;
    char **av = suki_calloc((size_t)argc + 2, sizeof(char *));
    av[0] = "digest";
    for (int i = skip; i < argc; i++)
        av[i - skip + 1] = argv[i];
    int ac = argc - skip + 1;
    optind = 0;
    while ((c = getopt_long(ac, av, "+", opts, NULL)) != -1) {
        if (c == 't')
            to = optarg;
        else if (c == 'j')
            ctl->json = true;
        else
            rc = SUKICTL_USAGE;
    }
    if (rc == SUKICTL_OK && optind < ac) {
        sukictl_errx("digest: unexpected argument '%s'", av[optind]);
        rc = SUKICTL_USAGE;
    }
    free(av);
    if (rc != SUKICTL_OK)
        return rc;
    if (to && (!strchr(to, '@') || strpbrk(to, " \t\r\n<>"))) {
        sukictl_errx("digest: --to %s is not an address", to);
        return SUKICTL_USAGE;
    }
    if (!sukictl_redis(ctl))
        return SUKICTL_FAILED;
    return strcmp(sub, "list") == 0 ? list(ctl, to) : send_now(ctl, to);
}
