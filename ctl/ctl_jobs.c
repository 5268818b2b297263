/* ctl_jobs.c - sukictl jobs (list scheduled jobs) and sukictl cancel KEY. */
#include "ctl.h"
#include "ops.h"
#include "store/scripts.h"
#include "rules.h"
#include "timeutil.h"
#include "util.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Jobs read per round trip while listing. */
#define CHUNK 1000

struct listing {
    struct sukictl *ctl;
    int64_t due_before; /* INT64_MAX: no filter */
    size_t shown;
    bool header_done;
};

/* Print one job. score is its sorted-set score (next look), body its body
 * (may be unreadable: shown with what the key says). */
static void show(struct listing *l, const char *key, int64_t score,
                 const char *body, size_t body_len)
{
    struct suki_jobdata jd;
    struct suki_err err = {{0}};
    bool ok = suki_job_parse(key, body, body_len, &jd, &err) == 0;
    if (!ok) {
        (void)suki_job_key_split(key, &jd.rule, &jd.client, &jd.subject,
                                 &jd.slot);
    } else {
        (void)suki_job_defaults(&jd, l->ctl->conf);
    }
    int64_t due = ok ? jd.due_ms : score;
    if (due >= l->due_before) {
        suki_job_clear(&jd);
        return;
    }
    char dbuf[40], nbuf[40];
    suki_time_format_rfc3339(due, dbuf, sizeof(dbuf));
    suki_time_format_rfc3339(score, nbuf, sizeof(nbuf));
    if (l->ctl->json) {
        json_t *o = json_object();
        json_object_set_new(o, "key", json_string(key));
        json_object_set_new(o, "due", json_string(dbuf));
        json_object_set_new(o, "rule",
                            jd.rule ? json_string(jd.rule) : json_null());
        json_object_set_new(o, "client",
                            jd.client ? json_string(jd.client) : json_null());
        json_object_set_new(o, "subject",
                            json_string(jd.subject ? jd.subject : ""));
        json_object_set_new(o, "template",
                            jd.template_name ? json_string(jd.template_name)
                                             : json_null());
        json_object_set_new(o, "channel",
                            jd.channel ? json_string(jd.channel) : json_null());
        json_object_set_new(o, "attempt", json_integer(jd.attempt));
        json_object_set_new(o, "next", json_string(nbuf));
        if (jd.n_notify > 0) {
            json_t *n = json_array();
            for (size_t i = 0; i < jd.n_notify; i++)
                json_array_append_new(n, json_string(jd.notify[i]));
            json_object_set_new(o, "notify", n);
        }
        if (!ok)
            json_object_set_new(o, "error", json_string(err.msg));
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
        printf("%-20s %-28s %-14s %-3d %s\n", dbuf, jd.rule ? jd.rule : "?",
               jd.client ? jd.client : "?", jd.attempt, key);
    }
    l->shown++;
    suki_job_clear(&jd);
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

/* The client's jobs: every body in P:job:<client>, with its score (one
 * ZMSCORE), in score order. A body without an index entry is left out. */
static int list_client(struct listing *l, const char *client)
{
    struct sukictl *ctl = l->ctl;
    char *jh = suki_job_hash_key(ctl->conf->prefix, client, NULL);
    char *kjobs = sukictl_key(ctl, SUKI_KEY_JOBS);
    redisReply *m = sukictl_cmd(ctl, "HGETALL %s", jh);
    redisReply *sc = NULL;
    int rc = SUKICTL_FAILED;
    if (!m || m->type != REDIS_REPLY_ARRAY)
        goto out;
    size_t n = m->elements / 2;
    if (n == 0) {
        rc = SUKICTL_OK;
        goto out;
    }
    const char **argv = suki_calloc(n + 2, sizeof(char *));
    size_t *lens = suki_calloc(n + 2, sizeof(size_t));
    argv[0] = "ZMSCORE";
    lens[0] = 7;
    argv[1] = kjobs;
    lens[1] = strlen(kjobs);
    for (size_t i = 0; i < n; i++) {
        argv[2 + i] = m->element[2 * i]->str;
        lens[2 + i] = m->element[2 * i]->len;
    }
    sc = sukictl_cmdargv(ctl, (int)n + 2, argv, lens);
    free(argv);
    free(lens);
    if (!sc || sc->type != REDIS_REPLY_ARRAY || sc->elements != n)
        goto out;
    struct row *rows = suki_calloc(n + 1, sizeof(*rows));
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t score;
        redisReply *s = sc->element[i];
        if (s->type != REDIS_REPLY_STRING ||
            suki_parse_i64(s->str, INT64_MIN, INT64_MAX, &score) < 0)
            continue; /* no index entry: being removed */
        rows[kept].key = m->element[2 * i]->str;
        rows[kept].body = m->element[2 * i + 1]->str;
        rows[kept].len = m->element[2 * i + 1]->len;
        rows[kept].score = score;
        kept++;
    }
    qsort(rows, kept, sizeof(*rows), cmp_row);
    for (size_t i = 0; i < kept; i++)
        show(l, rows[i].key, rows[i].score, rows[i].body, rows[i].len);
    free(rows);
    rc = SUKICTL_OK;
out:
    freeReplyObject(m);
    freeReplyObject(sc);
    free(jh);
    free(kjobs);
    return rc;
}

/* Walk P:jobs in score order, CHUNK at a time, reading the bodies with
 * pipelined HGETs. The filter is on the due time in the body: a retried or
 * leased job's score is later than its due time, so the walk covers the
 * whole set. */
static int list_all(struct listing *l)
{
    struct sukictl *ctl = l->ctl;
    char *kjobs = sukictl_key(ctl, SUKI_KEY_JOBS);
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
        for (size_t i = 0; i < n; i++) {
            redisReply *k = z->element[2 * i];
            char *jh = suki_job_hash_key(ctl->conf->prefix, NULL, k->str);
            redisAppendCommand(ctl->redis, "HGET %s %b", jh ? jh : "-", k->str,
                               (size_t)k->len);
            free(jh);
        }
        for (size_t i = 0; i < n; i++) {
            redisReply *b = NULL;
            if (redisGetReply(ctl->redis, (void **)&b) != REDIS_OK) {
                sukictl_errx("redis: %s", ctl->redis->errstr);
                rc = SUKICTL_FAILED;
                break;
            }
            redisReply *k = z->element[2 * i];
            int64_t score = 0;
            (void)suki_parse_i64(z->element[2 * i + 1]->str, INT64_MIN,
                                 INT64_MAX, &score);
            if (b && b->type == REDIS_REPLY_STRING)
                show(l, k->str, score, b->str, b->len);
            /* else completed between the two reads */
            freeReplyObject(b);
        }
        freeReplyObject(z);
        if (rc != SUKICTL_OK || n < CHUNK)
            break;
    }
    free(kjobs);
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

static int job_op(struct sukictl *ctl, const char *op, int argc, char **argv);

int sukictl_jobs(struct sukictl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"client", required_argument, NULL, 'c'},
        {"due-before", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0}};
    if (argc > 0 &&
        (strcmp(argv[0], "run") == 0 || strcmp(argv[0], "hold") == 0 ||
         strcmp(argv[0], "release") == 0 || strcmp(argv[0], "cancel") == 0)) {
        if (strcmp(argv[0], "cancel") == 0)
            return sukictl_cancel(ctl, argc - 1, argv + 1);
        return job_op(ctl, argv[0], argc - 1, argv + 1);
    }
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

static void put_result(const char *key, const char *what)
{
    json_t *o = json_pack("{s:s,s:b}", "key", key, what, 1);
    char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (js)
        puts(js);
    free(js);
    json_decref(o);
}

/* jobs run|hold|release KEY: ops-job.lua, as the console's buttons. */
static int job_op(struct sukictl *ctl, const char *op, int argc, char **argv)
{
    if (argc != 1 || !argv[0][0]) {
        sukictl_errx("usage: sukictl jobs %s KEY", op);
        return SUKICTL_USAGE;
    }
    struct suki_redis_args a = {0};
    suki_ops_job_args(ctl->conf, op, argv[0], &a);
    redisReply *r = sukictl_eval(ctl, suki_lua_ops_job, 2, &a);
    suki_redis_args_clear(&a);
    int rc = SUKICTL_FAILED;
    static const char *const done[][2] = {
        {"run", "due now"}, {"hold", "held"}, {"release", "released"}};
    const char *what = "done";
    for (size_t i = 0; i < SUKI_ARRAY_LEN(done); i++)
        if (strcmp(op, done[i][0]) == 0)
            what = done[i][1];
    if (r && r->type == REDIS_REPLY_INTEGER) {
        if (r->integer == 1) {
            if (ctl->json)
                put_result(argv[0], strcmp(op, "run") == 0 ? "due_now" : what);
            else
                printf("%s: %s\n", argv[0], what);
            rc = SUKICTL_OK;
        } else if (r->integer == -1) {
            sukictl_errx("job %s is being sent right now (claimed by a "
                         "scheduler); try again when it has settled",
                         argv[0]);
        } else {
            sukictl_errx(strcmp(op, "release") == 0 ? "no held job: %s"
                                                    : "no such job: %s",
                         argv[0]);
        }
    }
    freeReplyObject(r);
    return rc;
}

int sukictl_cancel(struct sukictl *ctl, int argc, char **argv)
{
    if (argc != 1 || !argv[0][0]) {
        sukictl_errx("usage: sukictl cancel KEY");
        return SUKICTL_USAGE;
    }
    struct suki_redis_args a = {0};
    suki_ops_cancel_args(ctl->conf, argv[0], &a);
    redisReply *r = sukictl_eval(ctl, suki_lua_ctl_jobs_cancel, 2, &a);
    suki_redis_args_clear(&a);
    int rc = SUKICTL_FAILED;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        if (r->integer == 1) {
            if (ctl->json)
                put_result(argv[0], "cancelled");
            else
                printf("cancelled %s\n", argv[0]);
            rc = SUKICTL_OK;
        } else {
            sukictl_errx("no such job: %s", argv[0]);
        }
    }
    freeReplyObject(r);
    return rc;
}
