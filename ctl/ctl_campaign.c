/* ctl_campaign.c - sukictl campaign create|pause|resume|cancel|status|list|
 * retry, and sukictl suppress / unsuppress. The daemons do the sending;
 * these commands only write the campaign record (atomically, with Lua) and
 * read it back. */
#include "campaign.h"
#include "store/scripts.h"
#include "ctl.h"
#include "ops.h"
#include "mime.h"
#include "template.h"
#include "timeutil.h"
#include "unsub.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Ledger entries looked at per round trip by retry. */
#define RETRY_CHUNK 1000

static char *ckey(struct sukictl *ctl, const char *kind, const char *name)
{
    return suki_key_id(ctl->conf->prefix, kind, name);
}

static redisReply *eval(struct sukictl *ctl, const char *script, int nkeys,
                        int n, const char **args)
{
    const char **av = suki_calloc((size_t)n + 3, sizeof(char *));
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVAL";
    av[1] = script;
    av[2] = nk;
    for (int i = 0; i < n; i++)
        av[3 + i] = args[i];
    redisReply *r = sukictl_cmdargv(ctl, n + 3, av, NULL);
    free(av);
    return r;
}

static bool name_arg(const char *name)
{
    if (!suki_campaign_name_ok(name)) {
        sukictl_errx("bad campaign name '%s': use letters, digits, '.', "
                     "'_' and '-' (at most %d, starting with a letter or "
                     "digit)",
                     name, SUKI_CAMPAIGN_NAME_MAX);
        return false;
    }
    return true;
}

/* Print o on one line (--json); steals it. */
static void put_json(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

/* ---- create ------------------------------------------------------- */

static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        return "";
    return argv[++*i];
}

static int create(struct sukictl *ctl, int argc, char **argv)
{
    static const char usage[] =
        "usage: sukictl campaign create NAME --template T --audience A "
        "[--rate R] [--start-at TIME] [--owner ADDR]";
    if (argc < 2) {
        sukictl_errx("%s", usage);
        return SUKICTL_USAGE;
    }
    const char *name = argv[1];
    const char *tmpl = NULL, *aud = NULL, *rate = NULL, *start = NULL,
               *owner = NULL;
    for (int i = 2; i < argc; i++) {
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--template")))
            tmpl = v;
        else if ((v = opt_value(argc, argv, &i, "--audience")))
            aud = v;
        else if ((v = opt_value(argc, argv, &i, "--rate")))
            rate = v;
        else if ((v = opt_value(argc, argv, &i, "--start-at")))
            start = v;
        else if ((v = opt_value(argc, argv, &i, "--owner")))
            owner = v;
        else {
            sukictl_errx("unknown option '%s'\n%s", argv[i], usage);
            return SUKICTL_USAGE;
        }
    }
    if (!tmpl || !*tmpl || !aud || !*aud) {
        sukictl_errx("--template and --audience are required\n%s", usage);
        return SUKICTL_USAGE;
    }
    if (!name_arg(name))
        return SUKICTL_USAGE;
    struct suki_err err = {{0}};
    enum suki_audience_kind kind;
    char *value = NULL;
    if (suki_audience_parse(aud, &kind, &value, &err) < 0) {
        sukictl_errx("%s", err.msg);
        return SUKICTL_USAGE;
    }
    double r = 0;
    if (rate && suki_parse_rate(rate, &r, &err) < 0) {
        sukictl_errx("--rate: %s", err.msg);
        free(value);
        return SUKICTL_USAGE;
    }
    int64_t now = suki_now_ms(), start_ms = now;
    if (start && strcmp(start, "now") != 0 &&
        suki_time_parse_rfc3339(start, &start_ms, &err) < 0) {
        sukictl_errx("--start-at: %s (use RFC 3339, e.g. "
                     "2026-12-01T09:00:00+08:00, or now)",
                     err.msg);
        free(value);
        return SUKICTL_USAGE;
    }
    if (owner) {
        struct suki_mailbox mb = {0};
        if (suki_mime_mailbox_parse(owner, &mb, &err) < 0) {
            sukictl_errx("--owner: %s", err.msg);
            free(value);
            return SUKICTL_USAGE;
        }
        suki_mime_mailbox_clear(&mb);
    }
    const struct suki_conf *c = ctl->conf;
    const struct suki_transport_conf *tc =
        suki_conf_transport(c, c->campaign_transport);
    if (!tc || tc->kind == SUKI_TRANSPORT_HTTP) {
        sukictl_errx("campaigns.channel '%s' is %s; campaigns need an email "
                     "transport",
                     c->campaign_transport,
                     tc ? "a webhook" : "not configured");
        free(value);
        return SUKICTL_FAILED;
    }
    struct suki_conf_diags diags = {0};
    struct suki_templates *t =
        suki_templates_load(c->templates_dir, c->default_locale, &diags);
    if (!t) {
        for (size_t i = 0; i < diags.n; i++)
            fprintf(stderr, "%s:%d: %s\n", diags.v[i].file, diags.v[i].line,
                    diags.v[i].msg);
        suki_conf_diags_clear(&diags);
        sukictl_errx("templates in %s do not load", c->templates_dir);
        free(value);
        return SUKICTL_FAILED;
    }
    suki_conf_diags_clear(&diags);
    bool has = suki_templates_has(t, tmpl);
    suki_templates_free(t);
    if (!has) {
        sukictl_errx("no template '%s' in %s", tmpl, c->templates_dir);
        free(value);
        return SUKICTL_FAILED;
    }
    if (kind == SUKI_AUDIENCE_SET) {
        redisReply *tr = sukictl_cmd(ctl, "TYPE %s", value);
        if (!tr) {
            free(value);
            return SUKICTL_FAILED;
        }
        bool ok = tr->type == REDIS_REPLY_STATUS && strcmp(tr->str, "set") == 0;
        freeReplyObject(tr);
        if (!ok) {
            sukictl_errx("audience: %s is not a Redis set", value);
            free(value);
            return SUKICTL_FAILED;
        }
    }
    free(value);
    char *kh = ckey(ctl, SUKI_KEY_CAMPAIGN, name);
    char *ks = sukictl_key(ctl, SUKI_KEY_CAMPAIGNS);
    char *kl = ckey(ctl, SUKI_KEY_CLEDGER, name);
    char created[32], start_s[32];
    snprintf(created, sizeof(created), "%" PRId64, now);
    snprintf(start_s, sizeof(start_s), "%" PRId64, start_ms);
    bool later = start_ms > now;
    const char *args[] = {
        kh,          ks,      kl,         name,
        "name",      name,    "template", tmpl,
        "audience",  aud,     "rate",     rate ? rate : "",
        "start_at",  start_s, "owner",    owner ? owner : "",
        "created",   created, "state",    later ? "scheduled" : "running",
        "reason",    "",      "cursor",   "0",
        "walk_done", "0",     "gen",      "0"};
    redisReply *rep = eval(ctl, suki_lua_ctl_campaign_create, 3,
                           (int)SUKI_ARRAY_LEN(args), args);
    free(kh);
    free(ks);
    free(kl);
    if (!rep)
        return SUKICTL_FAILED;
    freeReplyObject(rep);
    char when[40];
    suki_time_format_rfc3339(start_ms, when, sizeof(when));
    if (ctl->json) {
        json_t *o =
            json_pack("{s:s,s:s,s:s}", "campaign", name, "state",
                      later ? "scheduled" : "running", "start_at", when);
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(o);
    } else if (later) {
        printf("campaign %s created; starts at %s\n", name, when);
    } else {
        printf("campaign %s created; running\n", name);
    }
    return SUKICTL_OK;
}

/* ---- pause / resume / cancel -------------------------------------- */

static int control(struct sukictl *ctl, int argc, char **argv)
{
    if (argc != 2) {
        sukictl_errx("usage: sukictl campaign %s NAME", argv[0]);
        return SUKICTL_USAGE;
    }
    if (!name_arg(argv[1]))
        return SUKICTL_USAGE;
    /* the console's pause, resume and cancel buttons run the same */
    struct suki_redis_args a = {0};
    suki_ops_campaign_control_args(ctl->conf, argv[1], argv[0], &a);
    redisReply *rep = sukictl_eval(ctl, suki_lua_ctl_campaign_control, 1, &a);
    suki_redis_args_clear(&a);
    if (!rep)
        return SUKICTL_FAILED;
    if (ctl->json)
        put_json(json_pack("{s:s,s:s}", "campaign", argv[1], "state",
                           rep->str ? rep->str : ""));
    else
        printf("campaign %s: %s\n", argv[1], rep->str ? rep->str : "");
    freeReplyObject(rep);
    return SUKICTL_OK;
}

/* ---- retry -------------------------------------------------------- */

static int retry(struct sukictl *ctl, int argc, char **argv)
{
    if (argc != 2) {
        sukictl_errx("usage: sukictl campaign retry NAME");
        return SUKICTL_USAGE;
    }
    const char *name = argv[1];
    if (!name_arg(name))
        return SUKICTL_USAGE;
    char *kh = ckey(ctl, SUKI_KEY_CAMPAIGN, name);
    char *kl = ckey(ctl, SUKI_KEY_CLEDGER, name);
    char *kp = ckey(ctl, SUKI_KEY_CPENDING, name);
    int rc = SUKICTL_FAILED;
    redisReply *st = sukictl_cmd(ctl, "HGET %s state", kh);
    if (!st)
        goto out;
    if (st->type != REDIS_REPLY_STRING) {
        sukictl_errx("no campaign '%s'", name);
        freeReplyObject(st);
        goto out;
    }
    if (strcmp(st->str, "cancelled") == 0) {
        sukictl_errx("campaign %s was cancelled; create a new one", name);
        freeReplyObject(st);
        goto out;
    }
    freeReplyObject(st);
    long long moved = 0;
    char cursor[32] = "0", count[16];
    snprintf(count, sizeof(count), "%d", RETRY_CHUNK);
    do {
        const char *args[] = {kh, kl, kp, cursor, count};
        redisReply *rep =
            eval(ctl, suki_lua_ctl_campaign_retry_chunk, 3, 5, args);
        if (!rep)
            goto out;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            sukictl_errx("unexpected reply from redis");
            freeReplyObject(rep);
            goto out;
        }
        suki_strlcpy(cursor, rep->element[0]->str, sizeof(cursor));
        moved += rep->element[1]->integer;
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    if (moved == 0) {
        if (ctl->json)
            put_json(json_pack("{s:s,s:i}", "campaign", name, "retried", 0));
        else
            printf("campaign %s: no failed recipients\n", name);
        rc = SUKICTL_OK;
        goto out;
    }
    const char *args[] = {kh};
    redisReply *rep = eval(ctl, suki_lua_ctl_campaign_retry_done, 1, 1, args);
    if (!rep)
        goto out;
    if (ctl->json)
        put_json(json_pack("{s:s,s:I,s:s}", "campaign", name, "retried",
                           (json_int_t)moved, "state",
                           rep->str ? rep->str : ""));
    else
        printf("campaign %s: %lld failed recipient%s queued again (%s)\n", name,
               moved, moved == 1 ? "" : "s", rep->str ? rep->str : "");
    freeReplyObject(rep);
    rc = SUKICTL_OK;
out:
    free(kh);
    free(kl);
    free(kp);
    return rc;
}

/* ---- status / list ------------------------------------------------ */

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* Campaign name as a JSON object of its fields plus the derived figures:
 * ops-campaigns.lua and lib/ops.c, what the console shows. NULL (message
 * printed) when it does not exist. */
static json_t *load(struct sukictl *ctl, const char *name)
{
    struct suki_redis_args a = {0};
    suki_ops_campaigns_args(ctl->conf, name, &a);
    redisReply *r = sukictl_eval(ctl, suki_lua_ops_campaigns, 1, &a);
    suki_redis_args_clear(&a);
    json_t *all = suki_ops_campaigns_json(r);
    freeReplyObject(r);
    json_t *o = json_incref(json_array_get(all, 0));
    json_decref(all);
    if (!o)
        sukictl_errx("no campaign '%s'", name);
    return o;
}

static void print_status(struct sukictl *ctl, json_t *o)
{
    if (ctl->json) {
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
        return;
    }
    const char *reason = str(o, "reason");
    printf("campaign   %s\n", str(o, "campaign"));
    printf("state      %s%s%s\n", str(o, "state"), *reason ? ": " : "", reason);
    printf("template   %s\naudience   %s\nrate       %s\n", str(o, "template"),
           str(o, "audience"), str(o, "rate"));
    if (*str(o, "owner"))
        printf("owner      %s (summary: %s)\n", str(o, "owner"),
               *str(o, "summary") ? str(o, "summary") : "when completed");
    static const char *times[] = {"created", "start_at", "started", "finished"};
    for (size_t i = 0; i < SUKI_ARRAY_LEN(times); i++) {
        json_t *v = json_object_get(o, times[i]);
        if (json_is_string(v))
            printf("%-10s %s\n", times[i], json_string_value(v));
    }
    json_t *sk = json_object_get(o, "skipped_by_reason");
    printf("sent       %lld\nfailed     %lld\n",
           (long long)json_integer_value(json_object_get(o, "sent")),
           (long long)json_integer_value(json_object_get(o, "failed")));
    printf("skipped    %lld (suppressed %lld, no-address %lld, no-consent "
           "%lld, bad-address %lld)\n",
           (long long)json_integer_value(json_object_get(o, "skipped")),
           (long long)json_integer_value(json_object_get(sk, "suppressed")),
           (long long)json_integer_value(json_object_get(sk, "no-address")),
           (long long)json_integer_value(json_object_get(sk, "no-consent")),
           (long long)json_integer_value(json_object_get(sk, "bad-address")));
    printf("queued     %lld\n",
           (long long)json_integer_value(json_object_get(o, "queued")));
    json_t *rem = json_object_get(o, "remaining");
    double prog = json_real_value(json_object_get(o, "walk_progress"));
    if (json_is_true(json_object_get(o, "remaining_exact")))
        printf("remaining  %lld\n", (long long)json_integer_value(rem));
    else if (json_is_integer(rem))
        printf("remaining  ~%lld (estimate; audience %.0f%% walked)\n",
               (long long)json_integer_value(rem), prog * 100);
    else
        printf("remaining  unknown (audience walk not started)\n");
}

static json_t *names(struct sukictl *ctl)
{
    char *ks = sukictl_key(ctl, SUKI_KEY_CAMPAIGNS);
    redisReply *r = sukictl_cmd(ctl, "SMEMBERS %s", ks);
    free(ks);
    if (!r)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < r->elements; i++)
        json_array_append_new(a, json_string(r->element[i]->str));
    freeReplyObject(r);
    /* sorted, so the output is stable */
    size_t n = json_array_size(a);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i;
             j > 0 && strcmp(json_string_value(json_array_get(a, j - 1)),
                             json_string_value(json_array_get(a, j))) > 0;
             j--) {
            json_t *x = json_incref(json_array_get(a, j));
            json_array_set(a, j, json_array_get(a, j - 1));
            json_array_set_new(a, j - 1, x);
        }
    return a;
}

static int status(struct sukictl *ctl, int argc, char **argv)
{
    if (argc > 2) {
        sukictl_errx("usage: sukictl campaign status [NAME]");
        return SUKICTL_USAGE;
    }
    if (argc == 2) {
        if (!name_arg(argv[1]))
            return SUKICTL_USAGE;
        json_t *o = load(ctl, argv[1]);
        if (!o)
            return SUKICTL_FAILED;
        print_status(ctl, o);
        json_decref(o);
        return SUKICTL_OK;
    }
    json_t *a = names(ctl);
    if (!a)
        return SUKICTL_FAILED;
    size_t i;
    json_t *n;
    int rc = SUKICTL_OK;
    json_array_foreach(a, i, n)
    {
        json_t *o = load(ctl, json_string_value(n));
        if (!o) {
            rc = SUKICTL_FAILED;
            continue;
        }
        if (i > 0 && !ctl->json)
            putchar('\n');
        print_status(ctl, o);
        json_decref(o);
    }
    if (json_array_size(a) == 0 && !ctl->json)
        printf("no campaigns\n");
    json_decref(a);
    return rc;
}

static int list(struct sukictl *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        sukictl_errx("usage: sukictl campaign list");
        return SUKICTL_USAGE;
    }
    json_t *a = names(ctl);
    if (!a)
        return SUKICTL_FAILED;
    if (!ctl->json && json_array_size(a) > 0)
        printf("%-24s %-10s %9s %7s %8s %10s\n", "NAME", "STATE", "SENT",
               "FAILED", "SKIPPED", "REMAINING");
    size_t i;
    json_t *n;
    json_array_foreach(a, i, n)
    {
        json_t *o = load(ctl, json_string_value(n));
        if (!o)
            continue;
        if (ctl->json) {
            json_t *s = json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "campaign",
                                  json_object_get(o, "campaign"), "state",
                                  json_object_get(o, "state"), "sent",
                                  json_object_get(o, "sent"), "failed",
                                  json_object_get(o, "failed"), "skipped",
                                  json_object_get(o, "skipped"), "queued",
                                  json_object_get(o, "queued"), "remaining",
                                  json_object_get(o, "remaining"));
            char *t = json_dumps(s, JSON_COMPACT);
            puts(t);
            free(t);
            json_decref(s);
        } else {
            json_t *rem = json_object_get(o, "remaining");
            char rbuf[32];
            if (json_is_integer(rem))
                snprintf(rbuf, sizeof(rbuf), "%s%lld",
                         json_is_true(json_object_get(o, "remaining_exact"))
                             ? ""
                             : "~",
                         (long long)json_integer_value(rem));
            else
                suki_strlcpy(rbuf, "?", sizeof(rbuf));
            printf("%-24s %-10s %9lld %7lld %8lld %10s\n", str(o, "campaign"),
                   str(o, "state"),
                   (long long)json_integer_value(json_object_get(o, "sent")),
                   (long long)json_integer_value(json_object_get(o, "failed")),
                   (long long)json_integer_value(json_object_get(o, "skipped")),
                   rbuf);
        }
        json_decref(o);
    }
    if (json_array_size(a) == 0 && !ctl->json)
        printf("no campaigns\n");
    json_decref(a);
    return SUKICTL_OK;
}

int sukictl_campaign(struct sukictl *ctl, int argc, char **argv)
{
    static const char usage[] =
        "usage: sukictl campaign create NAME --template T --audience A "
        "[--rate R] [--start-at TIME] [--owner ADDR]\n"
        "       sukictl campaign pause|resume|cancel|retry NAME\n"
        "       sukictl campaign status [NAME]\n"
        "       sukictl campaign list";
    if (argc < 1) {
        sukictl_errx("%s", usage);
        return SUKICTL_USAGE;
    }
    const char *sub = argv[0];
    if (strcmp(sub, "create") == 0)
        return create(ctl, argc, argv);
    if (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0 ||
        strcmp(sub, "cancel") == 0)
        return control(ctl, argc, argv);
    if (strcmp(sub, "retry") == 0)
        return retry(ctl, argc, argv);
    if (strcmp(sub, "status") == 0)
        return status(ctl, argc, argv);
    if (strcmp(sub, "list") == 0)
        return list(ctl, argc, argv);
    sukictl_errx("unknown campaign command '%s'\n%s", sub, usage);
    return SUKICTL_USAGE;
}

/* ---- suppress / unsuppress ---------------------------------------- */

static int suppression(struct sukictl *ctl, int argc, char **argv, bool add)
{
    const char *cmd = add ? "suppress" : "unsuppress";
    if (argc != 1) {
        sukictl_errx("usage: sukictl %s ADDRESS", cmd);
        return SUKICTL_USAGE;
    }
    const char *a = argv[0];
    size_t n = strlen(a);
    bool ok = n > 2 && n <= SUKI_UNSUB_ADDR_MAX && strchr(a, '@') &&
              a[0] != '@' && a[n - 1] != '@';
    for (size_t i = 0; ok && i < n; i++)
        if ((unsigned char)a[i] <= 0x20 || a[i] == 0x7f || a[i] == '<' ||
            a[i] == '>')
            ok = false;
    if (!ok) {
        sukictl_errx("'%s' is not an email address", a);
        return SUKICTL_USAGE;
    }
    char *addr = suki_unsub_addr_lower(suki_strdup(a));
    char *ks = sukictl_key(ctl, SUKI_KEY_SUPPRESSED);
    const char *av[3] = {add ? "SADD" : "SREM", ks, addr};
    redisReply *r = sukictl_cmdargv(ctl, 3, av, NULL);
    free(ks);
    if (!r) {
        free(addr);
        return SUKICTL_FAILED;
    }
    bool changed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (ctl->json) {
        json_t *o = json_pack("{s:s,s:b,s:b}", "address", addr, "suppressed",
                              add, "changed", changed);
        char *s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(o);
    } else if (add)
        printf(changed ? "%s is suppressed: no campaign mail\n"
                       : "%s was already suppressed\n",
               addr);
    else
        printf(changed ? "%s is no longer suppressed\n"
                       : "%s was not suppressed\n",
               addr);
    free(addr);
    return SUKICTL_OK;
}

int sukictl_suppress(struct sukictl *ctl, int argc, char **argv)
{
    return suppression(ctl, argc, argv, true);
}

int sukictl_unsuppress(struct sukictl *ctl, int argc, char **argv)
{
    return suppression(ctl, argc, argv, false);
}
