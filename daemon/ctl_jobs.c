/* ctl_jobs.c - sukictl jobs (list scheduled jobs) and sukictl cancel KEY. */
#include "ctl.h"
#include "timeutil.h"
#include "util.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Jobs read per round trip while listing. */
#define CHUNK 1000

/* KEYS[1] P:jobs, KEYS[2] P:job; ARGV[1] key, ARGV[2] "P:cjobs:" prefix.
 * Removes the job with its indexes; returns 1, or 0 when there is none. */
static const char cancel_lua[] =
    "local b = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if not b then\n"
    "  return redis.call('ZREM', KEYS[1], ARGV[1]) > 0 and 1 or 0\n"
    "end\n"
    "redis.call('ZREM', KEYS[1], ARGV[1])\n"
    "redis.call('HDEL', KEYS[2], ARGV[1])\n"
    "local ok, j = pcall(cjson.decode, b)\n"
    "if ok and type(j) == 'table' and type(j.client) == 'string' then\n"
    "  redis.call('SREM', ARGV[2] .. j.client, ARGV[1])\n"
    "end\n"
    "return 1\n";

struct listing {
    struct sukictl *ctl;
    int64_t due_before; /* INT64_MAX: no filter */
    size_t shown;
    bool header_done;
};

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* Print one job. score is its sorted-set score (next look), body its body
 * (may be unreadable: shown with what is known). */
static void show(struct listing *l, const char *key, int64_t score,
                 const char *body, size_t body_len)
{
    json_t *b = body ? json_loadb(body, body_len, 0, NULL) : NULL;
    if (b && !json_is_object(b)) {
        json_decref(b);
        b = NULL;
    }
    int64_t due = b && jint(b, "due") > 0 ? jint(b, "due") : score;
    if (due >= l->due_before) {
        json_decref(b);
        return;
    }
    char dbuf[40], nbuf[40];
    suki_time_format_rfc3339(due, dbuf, sizeof(dbuf));
    suki_time_format_rfc3339(score, nbuf, sizeof(nbuf));
    const char *rule = b ? jstr(b, "rule") : NULL;
    const char *client = b ? jstr(b, "client") : NULL;
    const char *subject = b ? jstr(b, "subject") : NULL;
    const char *tmpl = b ? jstr(b, "template") : NULL;
    const char *channel = b ? jstr(b, "channel") : NULL;
    int64_t attempt = b ? jint(b, "attempt") : 0;
    if (l->ctl->json) {
        json_t *o = json_object();
        json_object_set_new(o, "key", json_string(key));
        json_object_set_new(o, "due", json_string(dbuf));
        json_object_set_new(o, "rule", rule ? json_string(rule) : json_null());
        json_object_set_new(o, "client",
                            client ? json_string(client) : json_null());
        json_object_set_new(o, "subject",
                            subject ? json_string(subject) : json_string(""));
        json_object_set_new(o, "template",
                            tmpl ? json_string(tmpl) : json_null());
        json_object_set_new(o, "channel",
                            channel ? json_string(channel) : json_null());
        json_object_set_new(o, "attempt", json_integer(attempt));
        json_object_set_new(o, "next", json_string(nbuf));
        if (b && json_is_array(json_object_get(b, "notify")))
            json_object_set(o, "notify", json_object_get(b, "notify"));
        if (!b)
            json_object_set_new(o, "error", json_string("unreadable body"));
        char *s = json_dumps(o, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
        json_decref(o);
    } else {
        if (!l->header_done) {
            printf("%-20s %-28s %-14s %-3s %s\n", "DUE", "RULE", "CLIENT",
                   "TRY", "KEY");
            l->header_done = true;
        }
        printf("%-20s %-28s %-14s %-3" PRId64 " %s\n", dbuf, rule ? rule : "?",
               client ? client : "?", attempt, key);
    }
    l->shown++;
    json_decref(b);
}

/* Show the jobs whose keys are keys[0..n): ZSCORE and HGET each, pipelined,
 * then sorted by score. */
struct row {
    char *key;
    int64_t score;
    char *body;
    size_t len;
};

static int cmp_row(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return strcmp(x->key, y->key);
}

static int list_client(struct listing *l, const char *client)
{
    struct sukictl *ctl = l->ctl;
    char *ck = suki_asprintf("%s:cjobs:%s", ctl->conf->prefix, client);
    char *kjobs = sukictl_key(ctl, "jobs");
    char *kjob = sukictl_key(ctl, "job");
    redisReply *m = sukictl_cmd(ctl, "SMEMBERS %s", ck);
    int rc = SUKICTL_FAILED;
    if (!m || m->type != REDIS_REPLY_ARRAY)
        goto out;
    struct row *rows = suki_calloc(m->elements + 1, sizeof(*rows));
    size_t n = 0;
    for (size_t i = 0; i < m->elements; i++) {
        redisReply *k = m->element[i];
        if (k->type != REDIS_REPLY_STRING)
            continue;
        redisAppendCommand(ctl->redis, "ZSCORE %s %b", kjobs, k->str,
                           (size_t)k->len);
        redisAppendCommand(ctl->redis, "HGET %s %b", kjob, k->str,
                           (size_t)k->len);
        rows[n++].key = suki_strndup(k->str, k->len);
    }
    bool ok = true;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *sc = NULL, *bd = NULL;
        if (redisGetReply(ctl->redis, (void **)&sc) != REDIS_OK ||
            redisGetReply(ctl->redis, (void **)&bd) != REDIS_OK) {
            sukictl_errx("redis: %s", ctl->redis->errstr);
            freeReplyObject(sc);
            for (size_t k = i; k < n; k++)
                free(rows[k].key);
            ok = false;
            break;
        }
        int64_t score;
        if (sc && sc->type == REDIS_REPLY_STRING &&
            suki_parse_i64(sc->str, INT64_MIN, INT64_MAX, &score) == 0 && bd &&
            bd->type == REDIS_REPLY_STRING) {
            rows[kept].key = rows[i].key;
            rows[kept].score = score;
            rows[kept].body = suki_strndup(bd->str, bd->len);
            rows[kept].len = bd->len;
            kept++;
        } else {
            free(rows[i].key); /* a stale index entry */
        }
        freeReplyObject(sc);
        freeReplyObject(bd);
    }
    if (ok) {
        qsort(rows, kept, sizeof(*rows), cmp_row);
        for (size_t i = 0; i < kept; i++)
            show(l, rows[i].key, rows[i].score, rows[i].body, rows[i].len);
        rc = SUKICTL_OK;
    }
    for (size_t i = 0; i < kept; i++) {
        free(rows[i].key);
        free(rows[i].body);
    }
    free(rows);
out:
    freeReplyObject(m);
    free(ck);
    free(kjobs);
    free(kjob);
    return rc;
}

/* Walk P:jobs in score order, CHUNK at a time. The filter is on the due
 * time in the body: a retried or leased job's score is later than its due
 * time, so the walk covers the whole set. */
static int list_all(struct listing *l)
{
    struct sukictl *ctl = l->ctl;
    char *kjobs = sukictl_key(ctl, "jobs");
    char *kjob = sukictl_key(ctl, "job");
    int rc = SUKICTL_OK;
    for (long long off = 0;; off += CHUNK) {
        redisReply *z = sukictl_cmd(ctl, "ZRANGE %s %lld %lld WITHSCORES",
                                    kjobs, off, off + CHUNK - 1);
        if (!z || z->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(z);
            rc = SUKICTL_FAILED;
            break;
        }
        size_t n = z->elements / 2;
        if (n == 0) {
            freeReplyObject(z);
            break;
        }
        const char **argv = suki_calloc(n + 2, sizeof(char *));
        size_t *lens = suki_calloc(n + 2, sizeof(size_t));
        argv[0] = "HMGET";
        lens[0] = 5;
        argv[1] = kjob;
        lens[1] = strlen(kjob);
        for (size_t i = 0; i < n; i++) {
            argv[2 + i] = z->element[2 * i]->str;
            lens[2 + i] = z->element[2 * i]->len;
        }
        redisReply *h = sukictl_cmdargv(ctl, (int)n + 2, argv, lens);
        free(argv);
        free(lens);
        if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != n) {
            freeReplyObject(h);
            freeReplyObject(z);
            rc = SUKICTL_FAILED;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            redisReply *k = z->element[2 * i];
            int64_t score = 0;
            (void)suki_parse_i64(z->element[2 * i + 1]->str, INT64_MIN,
                                 INT64_MAX, &score);
            redisReply *b = h->element[i];
            if (b->type != REDIS_REPLY_STRING)
                continue; /* completed between the two reads */
            show(l, k->str, score, b->str, b->len);
        }
        freeReplyObject(h);
        freeReplyObject(z);
        if (n < CHUNK)
            break;
    }
    free(kjobs);
    free(kjob);
    return rc;
}

static int parse_time(const char *s, int64_t *ms)
{
    struct suki_err err = {{0}};
    if (suki_time_parse_rfc3339(s, ms, &err) == 0)
        return 0;
    int y, mo, d;
    if (suki_time_parse_date(s, &y, &mo, &d) == 0) {
        struct suki_tm tm = {.year = y, .mon = mo, .mday = d};
        return suki_time_from_local(&tm, "UTC", ms);
    }
    /* A duration from now: "2h" means "due within 2 hours". */
    int64_t dur;
    if (suki_parse_duration(s, &dur, &err) == 0) {
        *ms = suki_now_ms() + dur;
        return 0;
    }
    return -1;
}

int sukictl_jobs(struct sukictl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"client", required_argument, NULL, 'c'},
        {"due-before", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0}};
    struct listing l = {.ctl = ctl, .due_before = INT64_MAX};
    const char *client = NULL;
    int opt;
    /* argv[0] must be the program name for getopt; our argv starts after
     * the command, so shift by one. */
    optind = 0;
    char **av = suki_calloc((size_t)argc + 2, sizeof(char *));
    av[0] = "jobs";
    for (int i = 0; i < argc; i++)
        av[i + 1] = argv[i];
    int rc = SUKICTL_OK;
    while ((opt = getopt_long(argc + 1, av, "+c:b:j", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            client = optarg;
            break;
        case 'b':
            if (parse_time(optarg, &l.due_before) < 0) {
                sukictl_errx("--due-before: '%s' is not an RFC 3339 time, a "
                             "date or a duration",
                             optarg);
                rc = SUKICTL_USAGE;
            }
            break;
        case 'j':
            ctl->json = true;
            break;
        default:
            rc = SUKICTL_USAGE;
        }
    }
    if (rc == SUKICTL_OK && optind != argc + 1) {
        sukictl_errx("usage: sukictl jobs [--client ID] [--due-before TIME]");
        rc = SUKICTL_USAGE;
    }
    free(av);
    if (rc != SUKICTL_OK)
        return rc;
    if (!sukictl_redis(ctl))
        return SUKICTL_FAILED;
    rc = client ? list_client(&l, client) : list_all(&l);
    if (rc == SUKICTL_OK && !ctl->json && l.shown == 0)
        printf("no jobs\n");
    return rc;
}

int sukictl_cancel(struct sukictl *ctl, int argc, char **argv)
{
    if (argc != 1 || !argv[0][0]) {
        sukictl_errx("usage: sukictl cancel KEY");
        return SUKICTL_USAGE;
    }
    char *kjobs = sukictl_key(ctl, "jobs");
    char *kjob = sukictl_key(ctl, "job");
    char *cjp = sukictl_key(ctl, "cjobs:");
    const char *av[] = {"EVAL", cancel_lua, "2", kjobs, kjob, argv[0], cjp};
    redisReply *r = sukictl_cmdargv(ctl, (int)SUKI_ARRAY_LEN(av), av, NULL);
    int rc = SUKICTL_FAILED;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        if (r->integer == 1) {
            if (ctl->json) {
                json_t *o =
                    json_pack("{s:s,s:b}", "key", argv[0], "cancelled", 1);
                char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
                if (s)
                    puts(s);
                free(s);
                json_decref(o);
            } else {
                printf("cancelled %s\n", argv[0]);
            }
            rc = SUKICTL_OK;
        } else {
            sukictl_errx("no such job: %s", argv[0]);
        }
    }
    freeReplyObject(r);
    free(kjobs);
    free(kjob);
    free(cjp);
    return rc;
}
