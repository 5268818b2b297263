/* ctl_intake.c - sukictl commands of the intake: push (JSON lines into the
 * events stream), dead (list, replay, drop dead letters), client (a stored
 * profile and its pending jobs), and the intake figures of status. */
#include "ctl.h"
#include "ops.h"
#include "store/scripts.h"
#include "event.h"
#include "rules.h"
#include "timeutil.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* XADDs in flight before their replies are read (bounds memory). */
#define PUSH_WINDOW 1000

/* Print a JSON object on one line (--json output). Steals o. */
static void put_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

/* Print bytes for a terminal: control characters, backslash and non-ASCII
 * bytes of invalid UTF-8 escaped, at most max bytes (then "..."). */
static void put_text(FILE *f, const char *s, size_t n, size_t max)
{
    json_t *probe = json_stringn(s, n);
    bool utf8 = probe != NULL;
    json_decref(probe);
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\')
            fputs("\\\\", f);
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    if (n > max)
        fputs("...", f);
}

/* ---- push ----------------------------------------------------------- */

struct push_state {
    struct sukictl *ctl;
    redisContext *rc;
    size_t inflight;
    long long pushed;
    bool redis_failed;
};

static void push_drain(struct push_state *ps, size_t keep)
{
    while (ps->inflight > keep) {
        void *r = NULL;
        if (redisGetReply(ps->rc, &r) != REDIS_OK) {
            if (!ps->redis_failed)
                sukictl_errx("redis: %s", ps->rc->errstr);
            ps->redis_failed = true;
            ps->inflight = 0;
            return;
        }
        redisReply *rep = r;
        if (rep->type == REDIS_REPLY_ERROR) {
            if (!ps->redis_failed)
                sukictl_errx("redis: XADD failed: %s", rep->str);
            ps->redis_failed = true;
        } else {
            ps->pushed++;
        }
        freeReplyObject(rep);
        ps->inflight--;
    }
}

/* sukictl push [FILE|-]: validate each JSON line with suki_event_parse and
 * XADD the good ones (pipelined); report refused lines with their number;
 * exit 1 if any line was refused or Redis failed. */
int sukictl_push(struct sukictl *ctl, int argc, char **argv)
{
    if (argc > 1) {
        sukictl_errx("usage: sukictl push [FILE|-]");
        return SUKICTL_USAGE;
    }
    const char *path = argc == 1 ? argv[0] : "-";
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in) {
        sukictl_errx("%s: %s", path, strerror(errno));
        return SUKICTL_FAILED;
    }
    struct push_state ps = {.ctl = ctl, .rc = sukictl_redis(ctl)};
    if (!ps.rc) {
        if (in != stdin)
            fclose(in);
        return SUKICTL_FAILED;
    }
    struct suki_event_limits lim = {(size_t)ctl->conf->max_event_size, 0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long lineno = 0, refused = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t n = (size_t)len;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (strspn(line, " \t") >= n)
            continue; /* blank line */
        struct suki_event *ev = NULL;
        struct suki_err err = {{0}};
        if (suki_event_parse(line, n, &lim, suki_now_ms(), &ev, &err) < 0) {
            refused++;
            if (ctl->json) {
                json_t *o = json_object();
                json_object_set_new(o, "line", json_integer(lineno));
                json_object_set_new(o, "error", json_string(err.msg));
                put_json(o);
            } else {
                fprintf(stderr, "%s:%lld: refused: %s\n",
                        in == stdin ? "<stdin>" : path, lineno, err.msg);
            }
            continue;
        }
        suki_event_free(ev);
        if (ps.redis_failed)
            continue;
        const char *av[5] = {"XADD", ctl->conf->stream, "*", "event", line};
        size_t lens[5] = {4, strlen(ctl->conf->stream), 1, 5, n};
        if (redisAppendCommandArgv(ps.rc, 5, av, lens) != REDIS_OK) {
            sukictl_errx("redis: %s", ps.rc->errstr);
            ps.redis_failed = true;
            continue;
        }
        ps.inflight++;
        push_drain(&ps, PUSH_WINDOW);
    }
    bool read_err = ferror(in) != 0;
    free(line);
    if (in != stdin)
        fclose(in);
    push_drain(&ps, 0);
    if (read_err)
        sukictl_errx("%s: read error", path);
    if (ctl->json) {
        json_t *o = json_object();
        json_object_set_new(o, "pushed", json_integer(ps.pushed));
        json_object_set_new(o, "refused", json_integer(refused));
        put_json(o);
    } else {
        printf("pushed %lld event%s to %s", ps.pushed,
               ps.pushed == 1 ? "" : "s", ctl->conf->stream);
        if (refused)
            printf("; refused %lld line%s", refused, refused == 1 ? "" : "s");
        putchar('\n');
    }
    return refused || ps.redis_failed || read_err ? SUKICTL_FAILED : SUKICTL_OK;
}

/* ---- dead ----------------------------------------------------------- */

static bool is_field(const redisReply *f, const char *name)
{
    return f->type == REDIS_REPLY_STRING && strlen(name) == f->len &&
           memcmp(f->str, name, f->len) == 0;
}

static void dead_print(struct sukictl *ctl, const redisReply *e)
{
    const redisReply *id = e->element[0], *fv = e->element[1];
    if (ctl->json) {
        json_t *o = suki_ops_dead_json(e); /* as GET /api/v1/dead has it */
        if (o)
            put_json(o);
        return;
    }
    const char *at = "-", *kind = "-", *source = "-", *reason = "-";
    char atbuf[40];
    const redisReply *payload = NULL;
    for (size_t k = 0; fv->type == REDIS_REPLY_ARRAY && k + 1 < fv->elements;
         k += 2) {
        const redisReply *f = fv->element[k], *v = fv->element[k + 1];
        if (v->type != REDIS_REPLY_STRING)
            continue;
        int64_t ms;
        if (is_field(f, "at") &&
            suki_parse_i64(v->str, 0, INT64_MAX, &ms) == 0) {
            suki_time_format_rfc3339(ms, atbuf, sizeof(atbuf));
            at = atbuf;
        } else if (is_field(f, "kind")) {
            kind = v->str;
        } else if (is_field(f, "source")) {
            source = v->str;
        } else if (is_field(f, "reason")) {
            reason = v->str;
        } else if (is_field(f, "payload")) {
            payload = v;
        }
    }
    printf("%s  %s  %s  source %s\n  reason: ", id->str, at, kind, source);
    put_text(stdout, reason, strlen(reason), 500);
    if (payload) {
        printf("\n  payload: ");
        put_text(stdout, payload->str, payload->len, 200);
    }
    putchar('\n');
}

static int dead_list(struct sukictl *ctl, char *dead)
{
    char start[64] = "-";
    long long total = 0;
    for (;;) {
        redisReply *r =
            sukictl_cmd(ctl, "XRANGE %s %s + COUNT 500", dead, start);
        if (!r)
            return SUKICTL_FAILED;
        size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        for (size_t i = 0; i < n; i++) {
            const redisReply *e = r->element[i];
            if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
                e->element[0]->type == REDIS_REPLY_STRING)
                dead_print(ctl, e);
        }
        total += (long long)n;
        if (n > 0)
            snprintf(start, sizeof(start), "(%s",
                     r->element[n - 1]->element[0]->str);
        freeReplyObject(r);
        if (n < 500)
            break;
    }
    if (!ctl->json)
        printf("%lld dead letter%s in %s\n", total, total == 1 ? "" : "s",
               dead);
    return SUKICTL_OK;
}

/* sukictl dead [list|replay [--force] ID|drop ID]. */
int sukictl_dead(struct sukictl *ctl, int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : "list";
    bool list = strcmp(sub, "list") == 0;
    bool force = argc == 3 && strcmp(sub, "replay") == 0 &&
                 strcmp(argv[1], "--force") == 0;
    if (force) {
        argv[1] = argv[2];
        argc = 2;
    }
    if ((list && argc > 1) ||
        (!list && (argc != 2 || argv[1][0] == '-' ||
                   (strcmp(sub, "replay") != 0 && strcmp(sub, "drop") != 0)))) {
        sukictl_errx(
            "usage: sukictl dead [list | replay [--force] ID | drop ID]");
        return SUKICTL_USAGE;
    }
    char *dead = sukictl_key(ctl, SUKI_KEY_DEAD);
    int rc = SUKICTL_FAILED;
    if (list) {
        rc = dead_list(ctl, dead);
    } else if (strcmp(sub, "drop") == 0) {
        redisReply *r = sukictl_cmd(ctl, "XDEL %s %s", dead, argv[1]);
        if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            if (ctl->json)
                put_json(json_pack("{s:s,s:b}", "id", argv[1], "dropped", 1));
            else
                printf("dropped %s\n", argv[1]);
            rc = SUKICTL_OK;
        } else if (r) {
            sukictl_errx("no dead letter %s", argv[1]);
        }
        freeReplyObject(r);
    } else {
        /* ctl-intake-replay.lua, as the console's replay button: an
         * event back into the stream, a message or job back into the
         * schedule under its job key (the same Message-ID) */
        struct suki_redis_args a = {0};
        suki_ops_replay_args(ctl->conf, argv[1], force, &a);
        redisReply *r = sukictl_eval(ctl, suki_lua_ctl_intake_replay, 3, &a);
        suki_redis_args_clear(&a);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING) {
            bool ev = strcmp(r->element[0]->str, "event") == 0;
            const char *as = r->element[1]->str;
            if (ctl->json)
                put_json(json_pack(
                    "{s:s,s:s,s:s}", "id", argv[1], ev ? "replayed_as" : "job",
                    as, ev ? "stream" : "due", ev ? ctl->conf->stream : "now"));
            else if (ev)
                printf("replayed %s as %s in %s\n", argv[1], as,
                       ctl->conf->stream);
            else
                printf("replayed %s as job %s, due now\n", argv[1], as);
            rc = SUKICTL_OK;
        }
        freeReplyObject(r);
    }
    free(dead);
    return rc;
}

/* ---- client --------------------------------------------------------- */

/* The profile hash holds strings only; --json gives each field its type:
 * tags (stored comma-joined) an array, consent a boolean, events a
 * number. A value that does not parse stays a string. */
static void json_typed_profile(json_t *p)
{
    const char *tags = json_string_value(json_object_get(p, "tags"));
    if (tags) {
        json_t *a = json_array();
        for (const char *t = tags; *t;) {
            size_t n = strcspn(t, ",");
            json_array_append_new(a, suki_ops_json_bytes(t, n));
            t += n;
            if (*t == ',')
                t++;
        }
        json_object_set_new(p, "tags", a);
    }
    const char *consent = json_string_value(json_object_get(p, "consent"));
    if (consent &&
        (strcmp(consent, "true") == 0 || strcmp(consent, "false") == 0))
        json_object_set_new(p, "consent",
                            json_boolean(strcmp(consent, "true") == 0));
    const char *events = json_string_value(json_object_get(p, "events"));
    int64_t n;
    if (events && suki_parse_i64(events, 0, INT64_MAX, &n) == 0)
        json_object_set_new(p, "events", json_integer(n));
}

/* sukictl client ID: the stored profile and the client's pending jobs,
 * read by ops-client.lua as the console's client page reads them. */
int sukictl_client(struct sukictl *ctl, int argc, char **argv)
{
    if (argc != 1) {
        sukictl_errx("usage: sukictl client ID");
        return SUKICTL_USAGE;
    }
    const char *id = argv[0];
    struct suki_redis_args a = {0};
    suki_ops_client_args(ctl->conf, id, &a);
    redisReply *r =
        sukictl_eval(ctl, suki_lua_ops_client, SUKI_OPS_CLIENT_NKEYS, &a);
    suki_redis_args_clear(&a);
    bool found = false;
    json_t *o = suki_ops_client_json(ctl->conf, id, r, &found);
    freeReplyObject(r);
    if (!o)
        return SUKICTL_FAILED;
    if (!found) {
        sukictl_errx("no client '%s' (no profile, no pending jobs)", id);
        json_decref(o);
        return SUKICTL_FAILED;
    }
    json_t *p = json_object_get(o, "profile");
    json_t *jl = json_object_get(o, "jobs");
    if (ctl->json) {
        json_typed_profile(p);
        put_json(o);
        return SUKICTL_OK;
    }
    printf("client %s\n", id);
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v)
    {
        printf("  %-10s ", k);
        const char *s = json_string_value(v);
        put_text(stdout, s, strlen(s), 500);
        putchar('\n');
    }
    printf("pending jobs: %zu\n", json_array_size(jl));
    size_t i;
    json_array_foreach(jl, i, v)
    {
        json_t *due = json_object_get(v, "due");
        json_t *rule = json_object_get(v, "rule");
        printf("  %-24s %s", due ? json_string_value(due) : "-",
               json_string_value(json_object_get(v, "key")));
        if (json_is_string(rule))
            printf("  (rule %s)", json_string_value(rule));
        if (json_is_true(json_object_get(v, "held")))
            printf("  held");
        putchar('\n');
    }
    /* what producers and senders wrote: shown escaped, cut like the
     * profile's fields */
    json_t *tl = json_object_get(o, "timeline");
    printf("timeline: %zu\n", json_array_size(tl));
    json_array_foreach(tl, i, v)
    {
        bool ev =
            strcmp(json_string_value(json_object_get(v, "kind")), "event") == 0;
        printf("  %-24s %-7s ", json_string_value(json_object_get(v, "time")),
               ev ? "event" : "message");
        static const char *const ef[] = {"type", "id", "summary"};
        static const char *const mf[] = {"rule", "to", "message_id"};
        for (size_t f = 0; f < 3; f++) {
            const char *s =
                json_string_value(json_object_get(v, ev ? ef[f] : mf[f]));
            if (!s)
                continue;
            if (f > 0)
                printf("  %s ", ev ? ef[f] : mf[f]);
            put_text(stdout, s, strlen(s), 200);
        }
        putchar('\n');
    }
    json_decref(o);
    return SUKICTL_OK;
}
