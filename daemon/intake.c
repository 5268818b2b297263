/* intake.c - consumer-group intake: read, validate, run rules, apply
 * atomically (see intake.h and docs/ARCHITECTURE.md).
 *
 * Each batch goes through
 *
 *   read (or own-PEL read, or recovery) -> [profiles] -> rules -> apply
 *
 * on the one intake link, whose replies come back in order. While there is
 * a backlog (the last read was full), the next batch is read ahead without
 * BLOCK as soon as a batch arrives, so the profiles of batch N+1 are read
 * before the apply of batch N runs and sukid runs N+1's rules while Redis
 * applies N. Rules see profiles as they will be: N+1's profiles are patched
 * with the profile writes of the batches whose apply was sent after N+1's
 * profiles were read. At most INTAKE_DEPTH batches are in memory, so memory
 * stays flat whatever the backlog: sukid reads only as fast as it applies.
 * Without a backlog the blocking read is pipelined behind the apply (the
 * acknowledgement travels in the same write as the next read). Maintenance
 * (list moves, trimming, consumer clean-up, the dead-letter gauge) runs on
 * the main link. */
#include "intake.h"
#include "store/scripts.h"
#include "store/job.h"
#include "store/keys.h"
#include "store/report.h"

#include "conf.h"
#include "daemon.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "rules.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Lua scripts ----------------------------------------------------
 *
 * The "#!lua" line makes Redis refuse a script up front when it is out of
 * memory instead of failing a write half-way; a key of the wrong type
 * fails only the entry that uses it (checked before writing, or by a first
 * write that fails without effect), so no script stops half-way through a
 * batch. */

static struct suki_redis_script apply_script = {
    "intake-apply", suki_lua_intake_apply, {0}};

static struct suki_redis_script recover_script = {
    "intake-recover", suki_lua_intake_recover, {0}};

static struct suki_redis_script lists_script = {
    "intake-lists", suki_lua_intake_lists, {0}};

static struct suki_redis_script trim_script = {
    "intake-trim", suki_lua_intake_trim, {0}};

/* ---- small helpers -------------------------------------------------- */

/* Bump allocator for one batch: pointers stay valid until arena_free. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
};

struct arena {
    struct arena_chunk *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = suki_malloc(sizeof(*c) + cap);
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static char *arena_memdup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

__attribute__((format(printf, 2, 3))) static char *
arena_printf(struct arena *a, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof(buf))
        return arena_memdup(a, buf, (size_t)n);
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static char *arena_cat3(struct arena *a, const char *x, const char *y,
                        const char *z)
{
    size_t lx = strlen(x), ly = strlen(y), lz = strlen(z);
    char *p = arena_alloc(a, lx + ly + lz + 1);
    memcpy(p, x, lx);
    memcpy(p + lx, y, ly);
    memcpy(p + lx + ly, z, lz + 1);
    return p;
}

static void arena_free(struct arena *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

/* Argument vector for one command; strings are borrowed. */
struct argv {
    const char **v;
    size_t *len;
    size_t n, cap;
};

static void argv_push(struct argv *a, const char *s, size_t len)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = suki_realloc(a->v, a->cap * sizeof(*a->v));
        a->len = suki_realloc(a->len, a->cap * sizeof(*a->len));
    }
    a->v[a->n] = s;
    a->len[a->n] = len;
    a->n++;
}

static void argv_str(struct argv *a, const char *s)
{
    argv_push(a, s, strlen(s));
}

static void argv_free(struct argv *a)
{
    free(a->v);
    free(a->len);
    memset(a, 0, sizeof(*a));
}

/* Order of two stream ids "ms-seq" as Redis orders them: the same
 * number of digits compares as text, more digits is larger. */
static int sid_cmp(const char *a, const char *b)
{
    size_t am = strcspn(a, "-"), bm = strcspn(b, "-");
    if (am != bm)
        return am < bm ? -1 : 1;
    int c = memcmp(a, b, am);
    if (c || !a[am] || !b[bm])
        return c ? c : (a[am] != 0) - (b[bm] != 0);
    size_t as = strlen(a + am + 1), bs = strlen(b + bm + 1);
    if (as != bs)
        return as < bs ? -1 : 1;
    return strcmp(a + am + 1, b + bm + 1);
}

/* Milliseconds part of a stream id "1700000000000-3"; 0 when malformed. */
static int64_t sid_ms(const char *sid)
{
    int64_t v = 0;
    for (const char *p = sid; *p >= '0' && *p <= '9'; p++) {
        if (v > INT64_MAX / 10)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* ---- the intake ----------------------------------------------------- */

enum op {
    OP_APPLY,   /* valid event: apply */
    OP_INVALID, /* bad input: dead-letter, count invalid */
    OP_POISON,  /* delivered too often: dead-letter, count poison */
    OP_ERROR,   /* could not apply now: keep the reason, leave pending */
    OP_ACK,     /* entry gone from the stream: acknowledge only */
};

struct profile_field {
    const char *field, *value; /* arena */
};

struct entry {
    const char *sid; /* arena */
    enum op op;
    struct suki_event *ev; /* owned (OP_APPLY) */
    const char *reason;    /* arena (dead letters, OP_ERROR) */
    const char *payload;   /* arena; NULL when the entry had no event */
    size_t payload_len;
    const char **fields; /* arena: the entry's own fields when it had no
                            event field (name, value pairs) */
    size_t *flens;
    size_t nf;
    int64_t deliveries;       /* from recovery: deliveries before this one */
    const char *lasterr;      /* arena, from recovery */
    struct profile_field *pf; /* arena */
    size_t npf, pfcap;
    struct suki_actions acts;
    bool acts_used;
    bool skip; /* known duplicate: no rules */
    /* the client's manager once the event applies, as the in-memory
     * profile says (rules path: arena, NULL for none); mgr_known false:
     * no profile was read, the script looks it up */
    const char *mgr;
    bool mgr_known;
};

struct idref {
    const char *id;
    size_t idx;
};

struct batch {
    struct suki_intake *in;
    struct batch *next; /* in flight, oldest first */
    uint64_t p_mark;    /* applies sent when the profiles were asked for */
    uint64_t apply_no;  /* which apply this batch's is (once sent) */
    bool applying;
    struct arena ar;
    struct entry *e;
    size_t n;
    bool recovered; /* from the recovery script */
    bool full;      /* as many entries as asked for */
    /* profiles of the batch's clients (sorted by id) */
    struct suki_client **cl;
    size_t ncl;
    bool *seen;        /* per entry: the seen marker exists (rules path) */
    size_t *prev;      /* per entry: earlier entry with the same event id, or
                          SIZE_MAX (rules path) */
    struct idref *ids; /* event ids of the batch, sorted (rules path) */
    size_t nids;
    const char **clerr; /* per client: why its profile is unreadable, or
                           NULL (arena strings; rules path) */
    int replies_left;
    bool failed;
    long long res[6]; /* the apply's counts, held for WAIT */
};

struct suki_intake {
    struct suki_daemon *D;
    struct suki_redis *link;
    char *stream, *group; /* names in use (copied from the conf) */
    bool up, group_ok, setup_sent;
    long long client_id;       /* of the intake link, for CLIENT UNBLOCK */
    bool chain_busy;           /* read / recover / setup outstanding */
    bool read_blocking;        /* the outstanding command is a blocking read */
    bool read_own;             /* the outstanding read is of our own PEL */
    bool backlog;              /* the last read was full: read ahead */
    struct batch *head, *tail; /* batches in flight (read, not applied) */
    int nbatches;
    int preparing;         /* batches read whose apply is not sent yet */
    uint64_t applies_sent; /* apply scripts sent so far */
    bool own_pending;      /* read our own pending entries first */
    char own_cursor[48];
    bool recover_again;   /* the last recovery was full */
    int64_t next_recover; /* monotonic ms */
    bool retry_wait;      /* waiting on retry_ev after an error */
    struct event *retry_ev;
    struct event *lists_ev;
    int64_t lists_delay_ms;
    bool lists_busy;
    struct event *maint_ev;
    bool maint_busy;
    int64_t next_gc; /* monotonic ms */
    bool stopping, unblock_sent, freeing;
    void (*done)(void *);
    void *done_arg;
    struct event *done_ev;
    void (*nudge)(void *, int64_t);
    void *nudge_arg;
    int64_t last_err_log; /* monotonic ms, rate limit */
    bool lists_warned;
    int read_count; /* entries per read, 0: batch (see adapt_count) */
    int asked;      /* what the read or recovery in flight asked for */
    bool count_warned;
};

/* Batches in flight at most: one applying, one queued behind it, one whose
 * rules run meanwhile, one being read. */
#define INTAKE_DEPTH 4

static void drive(struct suki_intake *in);

/* Bytes of entries one read should carry at most: a few huge entries per
 * read, not a batch of them (256 of 5 MB took Redis and sukid past the
 * command timeout, and then the same read came again after the
 * reconnect, for ever). */
#define READ_BUDGET (16 << 20)

static const struct suki_conf *C(const struct suki_intake *in)
{
    return in->D->conf;
}

/* Rate-limited error log for failures that repeat every batch. */
__attribute__((format(printf, 2, 3))) static void
intake_err(struct suki_intake *in, const char *fmt, ...)
{
    int64_t now = suki_mono_ms();
    if (now - in->last_err_log < 5000)
        return;
    in->last_err_log = now;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    suki_warnx("intake: %s", buf);
}

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        suki_event_free(b->e[i].ev);
        if (b->e[i].acts_used)
            suki_rules_actions_clear(&b->e[i].acts);
    }
    for (size_t i = 0; i < b->ncl; i++)
        suki_rules_client_free(b->cl[i]);
    free(b->cl);
    free(b->seen);
    free(b->prev);
    free(b->ids);
    free(b->clerr);
    free(b->e);
    arena_free(&b->ar);
    free(b);
}

static struct batch *batch_new(struct suki_intake *in, size_t n)
{
    struct batch *b = suki_calloc(1, sizeof(*b));
    b->in = in;
    b->e = suki_calloc(n ? n : 1, sizeof(*b->e));
    if (in->tail)
        in->tail->next = b;
    else
        in->head = b;
    in->tail = b;
    in->nbatches++;
    in->preparing++;
    return b;
}

/* A batch leaves the flight: applied, failed or given up. */
static void batch_done(struct batch *b)
{
    struct suki_intake *in = b->in;
    if (!b->applying)
        in->preparing--;
    struct batch **pp = &in->head, *prev = NULL;
    while (*pp && *pp != b) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = b->next;
        if (in->tail == b)
            in->tail = prev;
        in->nbatches--;
    }
    batch_free(b);
}

static void retry_later(struct suki_intake *in, int64_t ms)
{
    if (in->stopping) {
        drive(in);
        return;
    }
    in->retry_wait = true;
    suki_timer_ms(in->retry_ev, ms);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_intake *in = arg;
    in->retry_wait = false;
    drive(in);
}

/* ---- reading entries ------------------------------------------------ */

/* What a dead letter keeps of an entry without an 'event' field: its
 * first fields, each value cut to a prefix. */
#define DEAD_MAX_FIELDS 64
#define DEAD_MAX_VALUE 1024
/* The payload a dead letter keeps whole, and the prefix of a larger one. */
#define DEAD_MAX_PAYLOAD 4096

/* Fill entry e from a stream entry [id, [field, value, ...]] (fields may be
 * nil for a deleted entry). Classifies it: apply or invalid. */
/* An invalid event's dead letter: the payload whole when it is within
 * max_event_size (or 64 KiB), so it can be replayed after a fix; otherwise
 * its size, SHA-256 and first DEAD_MAX_PAYLOAD bytes, so that one
 * producer's huge entries cannot fill Redis with copies of themselves. */
static size_t whole_max(const struct suki_intake *in)
{
    size_t whole = (size_t)C(in)->max_event_size;
    return whole < 65536 ? 65536 : whole;
}

static void dead_payload(struct batch *b, struct entry *e, const char *p,
                         size_t n)
{
    if (n <= whole_max(b->in)) {
        e->payload = arena_memdup(&b->ar, p, n);
        e->payload_len = n;
        return;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) == 1)
        suki_hex(md, mdlen, hex);
    e->reason = arena_printf(&b->ar, "%s; sha256 %s, the first %d bytes kept",
                             e->reason, hex, DEAD_MAX_PAYLOAD);
    e->payload = arena_memdup(&b->ar, p, DEAD_MAX_PAYLOAD);
    e->payload_len = DEAD_MAX_PAYLOAD;
}

static void entry_from_reply(struct batch *b, struct entry *e,
                             const redisReply *id, const redisReply *fv)
{
    struct suki_intake *in = b->in;
    e->sid = arena_memdup(&b->ar, id->str, id->len);
    if (!fv || fv->type != REDIS_REPLY_ARRAY) {
        e->op = OP_ACK;
        return;
    }
    const redisReply *ev = NULL;
    for (size_t k = 0; k + 1 < fv->elements; k += 2) {
        const redisReply *f = fv->element[k];
        if (f->type == REDIS_REPLY_STRING && f->len == 5 &&
            memcmp(f->str, "event", 5) == 0 &&
            fv->element[k + 1]->type == REDIS_REPLY_STRING) {
            ev = fv->element[k + 1];
            break;
        }
    }
    if (!ev) {
        /* The dead letter keeps a bounded sample of what the entry held:
         * a producer's entry can have any number of fields of any size,
         * and all of them would go into one XADD inside the apply script,
         * past Lua's unpack() limit (about 8,000 values) — an error after
         * the script's first writes, which Redis does not roll back. */
        size_t pairs = fv->elements / 2;
        e->op = OP_INVALID;
        e->nf = pairs < DEAD_MAX_FIELDS ? pairs : DEAD_MAX_FIELDS;
        e->reason = pairs > e->nf
                        ? arena_printf(&b->ar,
                                       "entry has no 'event' field (%zu "
                                       "fields; the first %zu kept)",
                                       pairs, e->nf)
                        : "entry has no 'event' field";
        e->fields = arena_alloc(&b->ar, (2 * e->nf + 1) * sizeof(char *));
        e->flens = arena_alloc(&b->ar, (2 * e->nf + 1) * sizeof(size_t));
        for (size_t k = 0; k < 2 * e->nf; k++) {
            const redisReply *x = fv->element[k];
            bool s = x->type == REDIS_REPLY_STRING;
            const char *p;
            size_t n, size;
            char hex[65];
            if (!s || !suki_redis_cut(x, &size, hex, &p, &n)) {
                p = s ? x->str : "";
                n = s ? x->len : 0;
            }
            if (n > DEAD_MAX_VALUE)
                n = DEAD_MAX_VALUE;
            e->fields[k] = s ? arena_memdup(&b->ar, p, n) : "";
            e->flens[k] = n;
        }
        return;
    }
    size_t size, keep;
    char hex[65];
    const char *prefix;
    if (suki_redis_cut(ev, &size, hex, &prefix, &keep)) {
        /* read cut (see suki_intake_new): what dead_payload keeps of an
         * oversize event, without the whole of it ever in memory */
        e->op = OP_INVALID;
        e->reason = arena_printf(&b->ar,
                                 "too large (%zu bytes, max %" PRId64
                                 "); sha256 %s, the first %zu bytes kept",
                                 size, C(in)->max_event_size, hex, keep);
        e->payload = arena_memdup(&b->ar, prefix, keep);
        e->payload_len = keep;
        return;
    }
    struct suki_event_limits lim = {(size_t)C(in)->max_event_size, 0};
    struct suki_err err = {{0}};
    int64_t at = sid_ms(e->sid);
    if (suki_event_parse(ev->str, ev->len, &lim, at ? at : suki_now_ms(),
                         &e->ev, &err) < 0) {
        e->op = OP_INVALID;
        e->reason = arena_memdup(&b->ar, err.msg, strlen(err.msg));
        dead_payload(b, e, ev->str, ev->len);
        return;
    }
    e->op = OP_APPLY;
    /* Nothing happens after it arrived: a producer's clock ahead, or an
     * event dated in the future, would otherwise outrank every later
     * event of its client (see "Events out of order"). */
    e->ev->order_ms = at && e->ev->at_ms > at ? at : e->ev->at_ms;
    /* Poison candidates keep the payload for the dead letter. */
    if (b->recovered) {
        e->payload = arena_memdup(&b->ar, ev->str, ev->len);
        e->payload_len = ev->len;
    }
}

static int read_count(const struct suki_intake *in)
{
    int b = C(in)->batch;
    return in->read_count > 0 && in->read_count < b ? in->read_count : b;
}

/* Size of the entries of a reply, cut strings at their original size. */
static size_t reply_bytes(const redisReply *x)
{
    size_t size, n;
    char hex[65];
    const char *p;
    if (suki_redis_cut(x, &size, hex, &p, &n))
        return size;
    if (x->type == REDIS_REPLY_STRING)
        return x->len;
    size_t sum = 0;
    if (x->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < x->elements; i++)
            sum += reply_bytes(x->element[i]);
    return sum;
}

/* After a read of n entries and bytes: the next reads ask for what fits
 * READ_BUDGET, and grow back by doubling. A read that got no reply (link
 * lost, timed out, out of memory) may have been too large: one entry at a
 * time then, so that the same huge entries are not read again for ever. */
static void adapt_count(struct suki_intake *in, const redisReply *list)
{
    int was = read_count(in);
    if (!list) {
        in->read_count = 1;
    } else {
        size_t n = list->elements, bytes = reply_bytes(list);
        if (bytes > READ_BUDGET && n > 0) {
            in->read_count = (int)(n * READ_BUDGET / bytes);
            if (in->read_count < 1)
                in->read_count = 1;
        } else if (n >= (size_t)in->asked) {
            in->read_count = 2 * was; /* read_count() caps it at batch */
        }
    }
    int now = read_count(in);
    if (now < was && !in->count_warned) {
        suki_warnx("intake: reading %d entr%s at a time (large entries, "
                   "or a read that failed)",
                   now, now == 1 ? "y" : "ies");
        in->count_warned = true;
    } else if (now == C(in)->batch) {
        in->count_warned = false;
    }
}

static void process_batch(struct batch *b);

/* XREADGROUP reply: nil (timeout) or [[stream, [[id, fields], ...]]]. */
static void on_read(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct suki_intake *in = arg;
    bool own = in->read_own;
    in->read_blocking = false;
    in->read_own = false;
    if (in->freeing)
        return;
    if (!reply) {
        adapt_count(in, NULL);
        in->chain_busy = false;
        drive(in);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        in->chain_busy = false;
        if (strncmp(reply->str, "NOGROUP", 7) == 0) {
            suki_warnx("intake: consumer group %s on %s is gone; "
                       "creating it again",
                       in->group, in->stream);
            in->group_ok = false;
            in->setup_sent = false;
            drive(in);
            return;
        }
        if (strncmp(reply->str, "UNBLOCKED", 9) != 0)
            intake_err(in, "XREADGROUP on %s failed: %s", in->stream,
                       reply->str);
        retry_later(in, 1000);
        return;
    }
    const redisReply *list = NULL;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        const redisReply *s = reply->element[0];
        if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
            s->element[1]->type == REDIS_REPLY_ARRAY)
            list = s->element[1];
    }
    if (!list || list->elements == 0) {
        if (own)
            in->own_pending = false;
        else
            in->backlog = false;
        suki_metrics.intake_lag_s = 0;
        in->chain_busy = false;
        drive(in);
        return;
    }
    adapt_count(in, list);
    struct batch *b = batch_new(in, list->elements);
    b->full = list->elements >= (size_t)in->asked;
    in->chain_busy = false;
    if (!own) {
        in->backlog = b->full;
        drive(in); /* the read ahead goes out before this batch's profiles */
    }
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *x = list->element[i];
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 ||
            x->element[0]->type != REDIS_REPLY_STRING)
            continue;
        entry_from_reply(b, &b->e[b->n++], x->element[0], x->element[1]);
    }
    if (own && b->n > 0)
        suki_strlcpy(in->own_cursor, b->e[b->n - 1].sid,
                     sizeof(in->own_cursor));
    if (b->n > 0) {
        int64_t lag = suki_now_ms() - sid_ms(b->e[0].sid);
        suki_metrics.intake_lag_s = lag > 0 ? (double)lag / 1000.0 : 0;
    }
    process_batch(b);
}

/* Recovery reply: [[id, deliveries, lasterr, fields|0], ...]. */
static void on_recover(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct suki_intake *in = arg;
    if (in->freeing)
        return;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            if (strncmp(reply->str, "NOGROUP", 7) == 0) {
                in->group_ok = false;
                in->setup_sent = false;
            } else {
                intake_err(in, "recovery on %s failed: %s", in->stream,
                           reply->str);
            }
        }
        in->recover_again = false;
        in->chain_busy = false;
        if (!reply)
            adapt_count(in, NULL);
        if (reply)
            retry_later(in, 1000);
        else
            drive(in);
        return;
    }
    in->recover_again = reply->elements >= (size_t)in->asked;
    adapt_count(in, reply);
    if (reply->elements == 0) {
        in->chain_busy = false;
        drive(in);
        return;
    }
    struct batch *b = batch_new(in, reply->elements);
    b->recovered = true;
    int max = C(in)->max_deliveries;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *x = reply->element[i];
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 4 ||
            x->element[0]->type != REDIS_REPLY_STRING)
            continue;
        struct entry *e = &b->e[b->n++];
        entry_from_reply(b, e, x->element[0], x->element[3]);
        e->deliveries = x->element[1]->type == REDIS_REPLY_INTEGER
                            ? x->element[1]->integer
                            : 0;
        const redisReply *le = x->element[2];
        e->lasterr = le->type == REDIS_REPLY_STRING && le->len > 0
                         ? arena_memdup(&b->ar, le->str, le->len)
                         : NULL;
        /* This claim is delivery deliveries + 1. */
        if (e->op == OP_APPLY && e->deliveries >= max) {
            e->op = OP_POISON;
            e->reason = arena_printf(
                &b->ar, "poison: delivered %" PRId64 " times; last error: ",
                e->deliveries + 1);
            const char *le_s =
                e->lasterr ? e->lasterr
                           : "none recorded (sukid may have died on it)";
            size_t a = strlen(e->reason), l = strlen(le_s);
            char *s = arena_alloc(&b->ar, a + l + 1);
            memcpy(s, e->reason, a);
            memcpy(s + a, le_s, l + 1);
            e->reason = s;
            suki_event_free(e->ev);
            e->ev = NULL;
        }
    }
    suki_info("intake: claimed %zu idle entries", b->n);
    in->chain_busy = false;
    process_batch(b);
}

/* ---- profiles and rules -------------------------------------------- */

static int cmp_client(const void *a, const void *b)
{
    const struct suki_client *x = *(const struct suki_client *const *)a;
    const struct suki_client *y = *(const struct suki_client *const *)b;
    return strcmp(x->id, y->id);
}

/* Index of client id in b->cl, or SIZE_MAX. */
static size_t batch_client_idx(const struct batch *b, const char *id)
{
    struct suki_client key = {.id = (char *)id};
    struct suki_client *kp = &key;
    struct suki_client **hit =
        bsearch(&kp, b->cl, b->ncl, sizeof(*b->cl), cmp_client);
    return hit ? (size_t)(hit - b->cl) : SIZE_MAX;
}

static struct suki_client *batch_client(struct batch *b, const char *id)
{
    size_t k = batch_client_idx(b, id);
    return k == SIZE_MAX ? NULL : b->cl[k];
}

static int cmp_idref_id(const void *key, const void *elem)
{
    return strcmp(key, ((const struct idref *)elem)->id);
}

/* Play e's profile fields onto cl as the apply script writes them: with
 * ordered, a field whose last writer is newer than e ("at:<field>", the
 * order time of that event) keeps its value, and the others record e's. */
static void profile_apply(struct suki_client *cl, const struct entry *e,
                          bool ordered)
{
    char at[24], mk[64];
    snprintf(at, sizeof(at), "%" PRId64, e->ev->order_ms);
    for (size_t k = 0; k < e->npf; k++) {
        if (ordered) {
            snprintf(mk, sizeof(mk), "at:%s", e->pf[k].field);
            const char *old = suki_rules_client_get(cl, mk);
            if (old && strtoll(old, NULL, 10) > e->ev->order_ms)
                continue;
            suki_rules_client_set(cl, mk, at);
        }
        suki_rules_client_set(cl, e->pf[k].field, e->pf[k].value);
    }
}

/* A copy of cl (returns owned). */
static struct suki_client *client_dup(const struct suki_client *cl)
{
    struct suki_client *d = suki_rules_client_new(cl->id);
    for (size_t k = 0; k < cl->n; k++)
        suki_rules_client_set(d, cl->v[k].field, cl->v[k].value);
    return d;
}

/* The profiles of b were read before the applies of the batches sent
 * after them ran: play those batches' profile writes and event ids onto
 * b's in-memory view, oldest first, as the scripts will apply them. */
static void patch_profiles(struct batch *b)
{
    for (const struct batch *j = b->in->head; j; j = j->next) {
        if (j == b || !j->applying || j->apply_no < b->p_mark)
            continue;
        for (size_t i = 0; i < j->n; i++) {
            const struct entry *x = &j->e[i];
            if (x->op != OP_APPLY || x->skip)
                continue;
            struct suki_client *cl = batch_client(b, x->ev->client);
            if (cl)
                profile_apply(cl, x, C(b->in)->order_window_ms > 0);
            if (!x->ev->id || b->nids == 0)
                continue;
            const struct idref *hit = bsearch(x->ev->id, b->ids, b->nids,
                                              sizeof(*b->ids), cmp_idref_id);
            if (!hit)
                continue;
            const struct idref *lo = hit, *end = b->ids + b->nids;
            while (lo > b->ids && strcmp(lo[-1].id, x->ev->id) == 0)
                lo--;
            for (; lo < end && strcmp(lo->id, x->ev->id) == 0; lo++)
                b->seen[lo->idx] = true;
        }
    }
}

static void collect_field(const char *field, const char *value, void *arg)
{
    void **ctx = arg;
    struct batch *b = ctx[0];
    struct entry *e = ctx[1];
    if (e->npf == e->pfcap) {
        size_t cap = e->pfcap ? e->pfcap * 2 : 8;
        struct profile_field *n = arena_alloc(&b->ar, cap * sizeof(*n));
        if (e->npf)
            memcpy(n, e->pf, e->npf * sizeof(*n));
        e->pf = n;
        e->pfcap = cap;
    }
    e->pf[e->npf].field = arena_memdup(&b->ar, field, strlen(field));
    e->pf[e->npf].value = arena_memdup(&b->ar, value, strlen(value));
    e->npf++;
}

static bool rules_active(const struct suki_intake *in)
{
    return in->D->rules && suki_rules_count(in->D->rules) > 0;
}

static void send_apply(struct batch *b);
static bool actions_one_hash(const struct entry *e, const char **c,
                             size_t *len);

/* Profile fields of every event, then the rules (when there are any),
 * against in-memory profiles that see the batch's earlier updates. */
static void run_rules(struct batch *b)
{
    struct suki_intake *in = b->in;
    bool rules = rules_active(in) && b->cl;
    int64_t now = suki_now_ms();
    if (rules)
        patch_profiles(b);
    for (size_t i = 0; i < b->n; i++) {
        struct entry *e = &b->e[i];
        size_t k = SIZE_MAX; /* e's client in b->cl */
        if (e->op == OP_APPLY && rules) {
            k = batch_client_idx(b, e->ev->client);
            if (k != SIZE_MAX && b->clerr[k]) {
                e->op = OP_ERROR;
                const char *pre = "cannot read the client's profile: ";
                size_t pl = strlen(pre), el = strlen(b->clerr[k]);
                char *r = arena_alloc(&b->ar, pl + el + 1);
                memcpy(r, pre, pl);
                memcpy(r + pl, b->clerr[k], el + 1);
                e->reason = r;
                intake_err(in, "event %s (client %s): %s", e->sid,
                           e->ev->client, r);
                suki_event_free(e->ev);
                e->ev = NULL;
            }
        }
        if (e->op != OP_APPLY)
            continue;
        if (rules && e->ev->id) {
            /* A known duplicate (marker already set, or an earlier entry
             * of this batch with the same id that will apply) runs no
             * rules and leaves the in-memory profile alone; the script
             * has the final word. */
            e->skip = b->seen[i];
            for (size_t j = b->prev[i]; !e->skip && j != SIZE_MAX;
                 j = b->prev[j])
                e->skip = b->e[j].op == OP_APPLY && !b->e[j].skip;
            if (e->skip)
                continue;
        }
        void *ctx[2] = {b, e};
        suki_event_profile_fields(e->ev, collect_field, ctx);
        if (!rules)
            continue;
        /* The event's rules see its own profile fields; later events see
         * them only once the event is sure to apply (a refused or failed
         * event writes none), so they go on a copy until then. */
        struct suki_client *cl = k == SIZE_MAX ? NULL : b->cl[k];
        if (cl && e->npf > 0) {
            cl = client_dup(cl);
            profile_apply(cl, e, C(in)->order_window_ms > 0);
        }
        suki_rules_actions_init(&e->acts);
        e->acts_used = true;
        struct suki_err err = {{0}};
        int rc =
            suki_rules_on_event(in->D->rules, e->ev, cl, now, &e->acts, &err);
        const char *jc;
        size_t jl;
        if (rc == 0 && !actions_one_hash(e, &jc, &jl))
            rc = suki_err_set(&err, -EINVAL,
                              "actions name no client or several clients");
        if (rc == 0 && (e->acts.n > 0xffff || e->npf > 0xffff))
            rc = suki_err_set(&err, -E2BIG,
                              "more than 65,535 actions or "
                              "profile fields");
        if (cl && cl != b->cl[k]) {
            if (rc < 0) {
                suki_rules_client_free(cl);
            } else {
                suki_rules_client_free(b->cl[k]);
                b->cl[k] = cl;
            }
        }
        if (rc == 0 && k != SIZE_MAX && C(in)->reports) {
            /* the report counts the event for the manager it leaves the
             * client with (its own manager field included) */
            const char *m = suki_rules_client_get(b->cl[k], "manager");
            e->mgr = m ? arena_memdup(&b->ar, m, strlen(m)) : NULL;
            e->mgr_known = true;
        }
        if (rc < 0) {
            suki_warnx("intake: event %s (%s, client %s) not applied: %s",
                       e->sid, e->ev->type, e->ev->client, err.msg);
            e->op = rc == -EBADMSG ? OP_INVALID : OP_ERROR;
            e->reason = arena_memdup(&b->ar, err.msg, strlen(err.msg));
            suki_rules_actions_clear(&e->acts);
        }
        if (rc == -EBADMSG && !e->payload && e->ev->root) {
            /* Refused for what the event says: refused again on every
             * retry, so it is dead-lettered at once, not turned poison.
             * (The entry's own bytes are kept only for recovered batches:
             * the document re-encoded stands in for them.) */
            char *doc = json_dumps(e->ev->root, JSON_COMPACT);
            if (!doc) /* only out of memory fails it: as every allocation */
                abort();
            dead_payload(b, e, doc, strlen(doc));
            free(doc);
        }
    }
    send_apply(b);
}

static void on_profile(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    void **ctx = arg;
    struct batch *b = ctx[0];
    size_t idx = (size_t)(uintptr_t)ctx[1];
    bool is_seen = ctx[2] != NULL;
    if (!reply) {
        b->failed = true; /* link lost: every later reply fails too */
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* A wrong-typed key fails only its own events (they stay pending
         * with the reason); a de-duplication marker that cannot be read
         * leaves the decision to the apply script. */
        if (!is_seen)
            b->clerr[idx] = arena_memdup(&b->ar, reply->str, reply->len);
    } else if (is_seen) {
        b->seen[idx] = reply->type == REDIS_REPLY_INTEGER && reply->integer;
    } else if (reply->type == REDIS_REPLY_ARRAY) {
        struct suki_client *cl = b->cl[idx];
        for (size_t k = 0; k + 1 < reply->elements; k += 2)
            if (reply->element[k]->type == REDIS_REPLY_STRING &&
                reply->element[k + 1]->type == REDIS_REPLY_STRING)
                suki_rules_client_set(cl, reply->element[k]->str,
                                      reply->element[k + 1]->str);
    }
    if (--b->replies_left > 0)
        return;
    struct suki_intake *in = b->in;
    if (in->freeing) {
        batch_free(b);
        return;
    }
    if (b->failed) {
        batch_done(b);
        drive(in);
        return;
    }
    run_rules(b);
}

static bool send_lookup(struct batch *b, const char *cmd, const char *key,
                        size_t idx, bool is_seen)
{
    const char *av[2] = {cmd, key};
    void **ctx = arena_alloc(&b->ar, 3 * sizeof(void *)); /* lives with b */
    ctx[0] = b;
    ctx[1] = (void *)(uintptr_t)idx;
    ctx[2] = is_seen ? b : NULL;
    if (suki_redis_argv(b->in->link, on_profile, ctx, 0, 2, av, NULL) < 0)
        return false;
    b->replies_left++;
    return true;
}

static int cmp_idref(const void *a, const void *b)
{
    const struct idref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* One pipelined round: HGETALL of each distinct client, EXISTS of each
 * event id's de-duplication marker. */
static void fetch_profiles(struct batch *b)
{
    struct suki_intake *in = b->in;
    const struct suki_conf *c = C(in);
    b->cl = suki_calloc(b->n, sizeof(*b->cl));
    b->seen = suki_calloc(b->n, sizeof(*b->seen));
    for (size_t i = 0; i < b->n; i++)
        if (b->e[i].op == OP_APPLY)
            b->cl[b->ncl++] = suki_rules_client_new(b->e[i].ev->client);
    qsort(b->cl, b->ncl, sizeof(*b->cl), cmp_client);
    size_t w = 0;
    for (size_t i = 0; i < b->ncl; i++) {
        if (w > 0 && strcmp(b->cl[w - 1]->id, b->cl[i]->id) == 0) {
            suki_rules_client_free(b->cl[i]);
            continue;
        }
        b->cl[w++] = b->cl[i];
    }
    b->ncl = w;
    /* prev[i]: the nearest earlier entry with the same event id */
    b->prev = suki_calloc(b->n, sizeof(*b->prev));
    b->ids = suki_calloc(b->n, sizeof(*b->ids));
    b->clerr = suki_calloc(b->ncl ? b->ncl : 1, sizeof(*b->clerr));
    struct idref *ids = b->ids;
    size_t nids = 0;
    for (size_t i = 0; i < b->n; i++) {
        b->prev[i] = SIZE_MAX;
        if (b->e[i].op == OP_APPLY && b->e[i].ev->id)
            ids[nids++] = (struct idref){b->e[i].ev->id, i};
    }
    qsort(ids, nids, sizeof(*ids), cmp_idref);
    for (size_t k = 1; k < nids; k++)
        if (strcmp(ids[k - 1].id, ids[k].id) == 0)
            b->prev[ids[k].idx] = ids[k - 1].idx;
    b->nids = nids;
    bool ok = true;
    for (size_t i = 0; ok && i < b->ncl; i++) {
        const char *key = arena_cat3(&b->ar, c->prefix, ":" SUKI_KEY_CLIENT ":",
                                     b->cl[i]->id);
        ok = send_lookup(b, "HGETALL", key, i, false);
    }
    for (size_t i = 0; ok && i < b->n; i++) {
        if (b->e[i].op != OP_APPLY || !b->e[i].ev->id)
            continue;
        const char *key = arena_cat3(&b->ar, c->prefix, ":" SUKI_KEY_SEEN ":",
                                     b->e[i].ev->id);
        ok = send_lookup(b, "EXISTS", key, i, true);
    }
    /* Replies never arrive synchronously, so counting as we send is safe.
     * When a send failed the link is down and the sent ones fail too. */
    if (!ok)
        b->failed = true;
    b->p_mark = in->applies_sent;
    if (b->replies_left == 0) {
        batch_done(b);
        drive(in);
    }
}

static void process_batch(struct batch *b)
{
    bool any = false;
    for (size_t i = 0; i < b->n; i++)
        any = any || b->e[i].op == OP_APPLY;
    if (any && rules_active(b->in)) {
        fetch_profiles(b);
        return;
    }
    run_rules(b);
}

/* ---- applying ------------------------------------------------------- */

/* The batch counts as done: its counts go to the metrics, the scheduler
 * hears of its earliest due job. */
static void apply_counted(struct batch *b)
{
    struct suki_intake *in = b->in;
    const long long *v = b->res;
    for (int k = 0; k < SUKI_EV__COUNT; k++)
        suki_metrics.events[k] += (uint64_t)(v[k] > 0 ? v[k] : 0);
    if (v[2] || v[3])
        suki_notice("intake: %lld invalid and %lld poison entries "
                    "moved to the dead letters",
                    v[2], v[3]);
    if (v[4] >= 0 && in->nudge)
        in->nudge(in->nudge_arg, (int64_t)v[4]);
}

static int send_apply_wait(struct batch *b);

/* redis.min_replicas: the applied batch (applied and acknowledged in one
 * script, so on a replica both or neither) is done once WAIT counts
 * enough replicas. Until then it stays in the flight and WAIT is sent
 * again, each time waiting up to wait_timeout; a lost link ends it as any
 * unconfirmed batch ends: a primary that loses the apply in a failover
 * loses its XACK too, and the entries come back pending. */
static void on_apply_wait(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct batch *b = arg;
    struct suki_intake *in = b->in;
    if (in->freeing) {
        batch_free(b);
        return;
    }
    if (suki_redis_wait_ok(r, reply)) {
        apply_counted(b);
    } else if (reply && !in->stopping && send_apply_wait(b) == 0) {
        return;
    } else {
        intake_err(in,
                   "batch of %zu entries applied but not confirmed by "
                   "%d replicas; if the primary loses it they come back",
                   b->n, suki_redis_min_replicas(in->link));
    }
    batch_done(b);
    drive(in);
}

static int send_apply_wait(struct batch *b)
{
    return suki_redis_wait(b->in->link, NULL, on_apply_wait, b);
}

static void on_apply(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct batch *b = arg;
    struct suki_intake *in = b->in;
    if (in->freeing) {
        batch_free(b);
        return;
    }
    if (!reply) {
        intake_err(in,
                   "batch of %zu entries not confirmed (link lost); "
                   "they stay pending and come back",
                   b->n);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        intake_err(in,
                   "applying a batch of %zu entries failed: %s; they "
                   "stay pending and come back",
                   b->n, reply->str);
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 6) {
        for (size_t k = 0; k < 6; k++)
            b->res[k] = reply->element[k]->type == REDIS_REPLY_INTEGER
                            ? reply->element[k]->integer
                            : 0;
        if (suki_redis_min_replicas(in->link) == 0)
            apply_counted(b);
        else if (send_apply_wait(b) == 0)
            return;
    }
    batch_done(b);
    drive(in);
}

/* Whether every action of e names the same job hash (the script writes
 * one per event); sets *c, *len to its client component. */
static bool actions_one_hash(const struct entry *e, const char **c, size_t *len)
{
    *c = NULL;
    *len = 0;
    for (size_t k = 0; e->acts_used && k < e->acts.n; k++) {
        const struct suki_action *x = &e->acts.v[k];
        const char *kc;
        size_t kl;
        if (!suki_job_key_client(
                x->kind == SUKI_ACTION_SCHEDULE ? x->key : x->prefix, &kc, &kl))
            return false;
        if (*c && (kl != *len || memcmp(kc, *c, kl) != 0))
            return false;
        *c = kc;
        *len = kl;
    }
    return true;
}

/* The report entry of an applied event (report-fold.inc.lua): its month,
 * "e:<type> <manager>" (without the manager when no profile was read: the
 * script adds it), and the figure a deal (its amount in centavos) or a
 * complaint (its ticket, order time and client) adds. Built here, so the
 * script only pushes it for most events. */
static void push_report(struct argv *a, struct batch *b, struct entry *e,
                        const char *month)
{
    const char *t = e->ev->type, *x = NULL;
    int64_t cents;
    if (strncmp(t, "deal.", 5) == 0)
        x = suki_report_amount_cents(suki_event_data_str(e->ev, "amount"),
                                     &cents)
                ? arena_printf(&b->ar, "%" PRId64, cents)
                : "";
    else if (strncmp(t, "complaint.", 10) == 0) {
        const char *tk = suki_event_data_str(e->ev, "ticket");
        x = arena_printf(&b->ar, "%s\n%" PRId64 "\n%s",
                         tk && !strchr(tk, '\n') ? tk : "", e->ev->order_ms,
                         e->ev->client);
    }
    const char *m = e->mgr ? e->mgr : "";
    argv_str(a, arena_printf(&b->ar, "%s e:%s%s%s%s%s", month, t,
                             e->mgr_known ? " " : "", e->mgr_known ? m : "",
                             x ? "\n" : "", x ? x : ""));
}

/* The event's entry in its client's timeline (P:timeline:<client>,
 * keys.h), compact JSON in the batch's arena: built here, so the script
 * only pushes it. The summary is cut on a UTF-8 boundary (events are
 * checked UTF-8 on input). */
static const char *timeline_entry(struct batch *b, const struct suki_event *ev)
{
    json_t *o = json_pack("{s:s, s:s, s:I}", "k", "e", "t", ev->type, "at",
                          (json_int_t)ev->at_ms);
    if (!o)
        return "{}";
    if (ev->id)
        json_object_set_new(o, "id", json_string(ev->id));
    json_t *sm = json_object_get(ev->data, "summary");
    if (json_is_string(sm)) {
        const char *v = json_string_value(sm);
        size_t n = json_string_length(sm);
        if (n > SUKI_TIMELINE_SUMMARY) {
            n = SUKI_TIMELINE_SUMMARY;
            while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
                n--;
        }
        json_object_set_new(o, "s", json_stringn(v, n));
    }
    char *d = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!d)
        return "{}";
    const char *r = arena_memdup(&b->ar, d, strlen(d));
    free(d);
    return r;
}

static void push_entry(struct argv *a, struct batch *b, struct entry *e)
{
    static const char *const ops[] = {"a", "i", "p", "e", "k"};
    argv_str(a, e->sid);
    argv_str(a, ops[e->op]);
    switch (e->op) {
    case OP_APPLY: {
        const char *client = e->ev->client, *jc;
        size_t jl;
        actions_one_hash(e, &jc, &jl); /* checked in run_rules */
        bool jd = jc && (jl != strlen(client) || memcmp(jc, client, jl) != 0);
        char sup = 0;
        if (strcmp(e->ev->type, "consent.unsubscribed") == 0)
            sup = 'U';
        else if (strcmp(e->ev->type, "consent.subscribed") == 0)
            sup = 'S';
        char op[8];
        size_t on = 0;
        op[on++] = 'a';
        if (e->ev->id)
            op[on++] = 'i';
        if (sup)
            op[on++] = sup;
        if (jd)
            op[on++] = 'j';
        const struct suki_conf *c = C(b->in);
        char month[8];
        if (c->reports &&
            suki_report_month(e->ev->at_ms, c->report_timezone, month) == 0)
            op[on++] = e->mgr_known ? 'r' : 'R';
        else
            month[0] = '\0';
        if (c->console_timeline > 0)
            op[on++] = 't';
        a->v[a->n - 1] = arena_memdup(&b->ar, op, on); /* the plain "a" */
        a->len[a->n - 1] = on;
        argv_str(a, client);
        if (jd)
            argv_push(a, jc, jl);
        if (e->ev->id)
            argv_str(a, e->ev->id);
        if (sup) {
            json_t *em = json_object_get(e->ev->data, "email");
            argv_str(a, json_is_string(em) ? json_string_value(em) : "");
        }
        if (month[0])
            push_report(a, b, e, month);
        if (c->console_timeline > 0)
            argv_str(a, timeline_entry(b, e->ev));
        /* both counts in one argument, two bytes each (run_rules keeps
         * them below 65,536), then the event's at: the script orders by it */
        size_t na = e->acts_used ? e->acts.n : 0;
        char *cnt = arena_printf(&b->ar, "....%" PRId64, e->ev->order_ms);
        cnt[0] = (char)(e->npf >> 8);
        cnt[1] = (char)(e->npf & 0xff);
        cnt[2] = (char)(na >> 8);
        cnt[3] = (char)(na & 0xff);
        argv_push(a, cnt, 4 + strlen(cnt + 4));
        for (size_t k = 0; k < e->npf; k++) {
            argv_str(a, e->pf[k].field);
            argv_str(a, e->pf[k].value);
        }
        for (size_t k = 0; k < na; k++) {
            const struct suki_action *x = &e->acts.v[k];
            if (x->kind == SUKI_ACTION_SCHEDULE) {
                argv_str(a, x->key);
                argv_str(a, arena_printf(&b->ar, "%" PRId64, x->due_ms));
                argv_str(a, x->body ? x->body : "");
            } else {
                argv_str(a, x->prefix);
                argv_str(a, ""); /* no due time: a cancel */
            }
        }
        break;
    }
    case OP_INVALID:
    case OP_POISON:
        argv_str(a, e->reason);
        argv_str(a, e->payload ? "1" : "0");
        argv_push(a, e->payload ? e->payload : "", e->payload_len);
        argv_str(a, arena_printf(&b->ar, "%zu", e->payload ? 0 : e->nf));
        for (size_t k = 0; !e->payload && k < 2 * e->nf; k++)
            argv_push(a, e->fields[k], e->flens[k]);
        break;
    case OP_ERROR:
        argv_str(a, e->reason);
        break;
    case OP_ACK:
        break;
    }
}

static void send_apply(struct batch *b)
{
    struct suki_intake *in = b->in;
    const struct suki_conf *c = C(in);
    struct argv a = {0};
    argv_str(&a, in->stream);
    argv_str(&a, in->group);
    argv_str(&a, c->prefix);
    argv_str(&a, arena_printf(&b->ar, "%" PRId64, suki_now_ms()));
    argv_str(&a, arena_printf(&b->ar, "%" PRId64, c->dedup_window_ms));
    argv_str(&a, in->D->consumer);
    const char *lo = NULL, *hi = NULL;
    for (size_t i = 0; i < b->n; i++) {
        if (!lo || sid_cmp(b->e[i].sid, lo) < 0)
            lo = b->e[i].sid;
        if (!hi || sid_cmp(b->e[i].sid, hi) > 0)
            hi = b->e[i].sid;
    }
    argv_str(&a, lo ? lo : "-");
    argv_str(&a, hi ? hi : "+");
    argv_str(&a, arena_printf(&b->ar, "%" PRId64, c->order_window_ms));
    argv_str(&a, arena_printf(&b->ar, "%d", c->console_timeline));
    argv_str(&a, arena_printf(&b->ar, "%d", SUKI_TIMELINE_TTL_S));
    for (size_t i = 0; i < b->n; i++)
        push_entry(&a, b, &b->e[i]);
    if (b->n == 0) {
        argv_free(&a);
        batch_done(b);
        drive(in);
        return;
    }
    int rc = suki_redis_eval(in->link, &apply_script, on_apply, b, 1, (int)a.n,
                             a.v, a.len);
    argv_free(&a);
    if (rc < 0) {
        batch_done(b);
        drive(in);
        return;
    }
    b->applying = true;
    b->apply_no = in->applies_sent++;
    in->preparing--;
    drive(in); /* without a backlog: the blocking read behind the apply */
}

/* ---- the driver ----------------------------------------------------- */

static void on_setup(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct suki_intake *in = arg;
    if (in->freeing)
        return;
    in->chain_busy = false;
    if (!reply) {
        in->setup_sent = false;
        drive(in);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "BUSYGROUP", 9) != 0) {
        intake_err(in, "cannot create consumer group %s on %s: %s", in->group,
                   in->stream, reply->str);
        in->setup_sent = false;
        retry_later(in, 2000);
        return;
    }
    in->group_ok = true;
    suki_notice("intake: consumer group ready (stream %s, group %s, "
                "consumer %s)",
                in->stream, in->group, in->D->consumer);
    drive(in);
}

static void on_client_id(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct suki_intake *in = arg;
    if (in->freeing)
        return;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        in->client_id = reply->integer;
}

static void send_setup(struct suki_intake *in)
{
    const char *av[6] = {"XGROUP",  "CREATE", in->stream,
                         in->group, "0",      "MKSTREAM"};
    const char *idv[2] = {"CLIENT", "ID"};
    if (suki_redis_argv(in->link, on_client_id, in, 0, 2, idv, NULL) < 0 ||
        suki_redis_argv(in->link, on_setup, in, 0, 6, av, NULL) < 0) {
        retry_later(in, 1000);
        return;
    }
    in->setup_sent = true;
    in->chain_busy = true;
}

static void send_read(struct suki_intake *in, bool own, bool block)
{
    const struct suki_conf *c = C(in);
    char count[24], block_ms[24];
    in->asked = read_count(in);
    snprintf(count, sizeof(count), "%d", in->asked);
    snprintf(block_ms, sizeof(block_ms), "%" PRId64, c->block_ms);
    const char *av[12] = {"XREADGROUP",    "GROUP", in->group,
                          in->D->consumer, "COUNT", count};
    int n = 6;
    if (!own && block) {
        av[n++] = "BLOCK";
        av[n++] = block_ms;
    }
    av[n++] = "STREAMS";
    av[n++] = in->stream;
    av[n++] = own ? in->own_cursor : ">";
    int64_t timeout =
        !own && block ? c->block_ms + c->redis_command_timeout_ms : 0;
    if (suki_redis_argv(in->link, on_read, in, timeout, n, av, NULL) < 0) {
        retry_later(in, 1000);
        return;
    }
    in->chain_busy = true;
    in->read_blocking = !own && block;
    in->read_own = own;
}

static void send_recover(struct suki_intake *in)
{
    const struct suki_conf *c = C(in);
    char idle[24], count[24];
    snprintf(idle, sizeof(idle), "%" PRId64, c->claim_idle_ms);
    in->asked = read_count(in);
    snprintf(count, sizeof(count), "%d", in->asked);
    char *lasterr = suki_key(c->prefix, SUKI_KEY_LASTERR);
    const char *av[6] = {in->stream,      lasterr, in->group,
                         in->D->consumer, idle,    count};
    int rc = suki_redis_eval(in->link, &recover_script, on_recover, in, 2, 6,
                             av, NULL);
    free(lasterr);
    if (rc < 0) {
        retry_later(in, 1000);
        return;
    }
    in->chain_busy = true;
    int64_t every = c->claim_idle_ms / 2;
    if (every > 30000)
        every = 30000;
    in->next_recover = suki_mono_ms() + every;
}

static void unblock_reply(struct suki_redis *r, redisReply *reply, void *arg);

static void finish_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_intake *in = arg;
    void (*done)(void *) = in->done;
    in->done = NULL;
    if (!done)
        return;
    const uint64_t *v = suki_metrics.events;
    suki_notice("intake: stopped; this process applied %" PRIu64
                " events (%" PRIu64 " duplicate, %" PRIu64 " invalid, %" PRIu64
                " poison)%s",
                v[SUKI_EV_APPLIED], v[SUKI_EV_DUPLICATE], v[SUKI_EV_INVALID],
                v[SUKI_EV_POISON],
                in->chain_busy || in->nbatches ? "; a batch in flight stays "
                                                 "pending"
                                               : "");
    done(in->done_arg);
}

static void drive(struct suki_intake *in)
{
    if (in->freeing)
        return;
    if (in->stopping) {
        if (in->chain_busy && in->read_blocking && !in->unblock_sent &&
            in->client_id > 0 && suki_redis_is_up(in->D->redis)) {
            char id[24];
            snprintf(id, sizeof(id), "%lld", in->client_id);
            const char *av[3] = {"CLIENT", "UNBLOCK", id};
            if (suki_redis_argv_owned(in->D->redis, in, unblock_reply, in, 0, 3,
                                      av, NULL) == 0)
                in->unblock_sent = true;
        }
        bool idle = !in->chain_busy && in->nbatches == 0;
        if ((idle || !in->up) && in->done) {
            struct timeval tv = {0, 0};
            evtimer_add(in->done_ev, &tv);
        }
        return;
    }
    if (in->chain_busy || in->retry_wait || !in->up)
        return;
    const struct suki_conf *c = C(in);
    if (strcmp(c->stream, in->stream) != 0 ||
        strcmp(c->group, in->group) != 0) {
        if (in->nbatches > 0)
            return; /* switch once the batches in flight are done */
        suki_notice("intake: switching to stream %s, group %s", c->stream,
                    c->group);
        free(in->stream);
        free(in->group);
        in->stream = suki_strdup(c->stream);
        in->group = suki_strdup(c->group);
        in->group_ok = false;
        in->setup_sent = false;
    }
    if (!in->group_ok) {
        if (!in->setup_sent)
            send_setup(in);
        return;
    }
    /* Own pending entries and recovery wait for the flight to land, so
     * batches apply in the order they were read. */
    if (in->own_pending) {
        if (in->nbatches == 0)
            send_read(in, true, false);
        return;
    }
    if (in->recover_again || suki_mono_ms() >= in->next_recover) {
        if (in->nbatches == 0) {
            in->recover_again = false;
            send_recover(in);
        }
        return;
    }
    if (in->nbatches >= INTAKE_DEPTH)
        return;
    /* A blocking read would hold up the commands of batches still being
     * prepared; read ahead without BLOCK then, and only with a backlog. */
    if (in->preparing == 0)
        send_read(in, false, true);
    else if (in->backlog)
        send_read(in, false, false);
}

static void unblock_reply(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct suki_intake *in = arg;
    if (!r || !in->stopping)
        return; /* !r: cancelled by suki_intake_free */
    /* 0: the read was still queued behind an apply and not blocked yet;
     * try again shortly rather than wait out the whole block time */
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0 &&
        in->chain_busy && in->read_blocking) {
        in->unblock_sent = false;
        suki_timer_ms(in->retry_ev, 20);
    }
}

static void on_link_state(struct suki_redis *r, bool up, void *arg)
{
    (void)r;
    struct suki_intake *in = arg;
    in->up = up;
    if (!up) {
        in->group_ok = false;
        in->setup_sent = false;
        in->client_id = 0;
        if (in->stopping)
            drive(in);
        return;
    }
    /* Entries this consumer already holds (a batch lost with the link)
     * are read again first, then idle ones of other consumers. */
    in->own_pending = true;
    suki_strlcpy(in->own_cursor, "0", sizeof(in->own_cursor));
    in->next_recover = 0;
    drive(in);
}

/* ---- maintenance on the main link ---------------------------------- */

static void on_lists_reply(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct suki_intake *in = arg;
    if (!r)
        return; /* cancelled by suki_intake_free */
    in->lists_busy = false;
    long long moved = 0;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER) {
        moved = reply->element[0]->integer;
        if (reply->elements > 1 && !in->lists_warned) {
            in->lists_warned = true;
            for (size_t k = 1; k < reply->elements; k++)
                if (reply->element[k]->type == REDIS_REPLY_STRING)
                    suki_warnx("intake: %s is not a list; not moving it",
                               reply->element[k]->str);
        }
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        intake_err(in, "moving list items failed: %s", reply->str);
    }
    if (in->stopping)
        return;
    if (moved > 0)
        in->lists_delay_ms = 0;
    else
        in->lists_delay_ms = in->lists_delay_ms ? in->lists_delay_ms * 2 : 5;
    if (in->lists_delay_ms > 100)
        in->lists_delay_ms = 100;
    suki_timer_ms(in->lists_ev, in->lists_delay_ms);
}

static void on_lists_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_intake *in = arg;
    const struct suki_conf *c = C(in);
    if (in->stopping || in->lists_busy || c->n_lists == 0)
        return;
    if (!suki_redis_is_up(in->D->redis)) {
        suki_timer_ms(in->lists_ev, 100);
        return;
    }
    size_t n = c->n_lists + 2;
    const char **av = suki_calloc(n, sizeof(char *));
    char count[24];
    snprintf(count, sizeof(count), "%d", c->batch);
    av[0] = c->stream;
    for (size_t k = 0; k < c->n_lists; k++)
        av[k + 1] = c->lists[k];
    av[n - 1] = count;
    int rc =
        suki_redis_eval_owned(in->D->redis, in, &lists_script, on_lists_reply,
                              in, (int)c->n_lists + 1, (int)n, av, NULL);
    free(av);
    if (rc < 0) {
        suki_timer_ms(in->lists_ev, 100);
        return;
    }
    in->lists_busy = true;
}

static void on_maint_reply(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct suki_intake *in = arg;
    if (!r)
        return; /* cancelled by suki_intake_free */
    in->maint_busy = false;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER &&
        reply->element[0]->integer < 0 && !in->stopping) {
        /* could not count (entry pending far back): try again later */
        suki_timer_ms(in->maint_ev, 10000);
    }
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
        long long v[3];
        for (size_t k = 0; k < 3; k++)
            v[k] = reply->element[k]->type == REDIS_REPLY_INTEGER
                       ? reply->element[k]->integer
                       : 0;
        suki_metrics.dead_entries = v[1];
        if (v[0] > 0)
            suki_debug("intake: trimmed %lld acknowledged entries", v[0]);
        if (v[2] > 0)
            suki_info("intake: removed %lld idle consumers without pending "
                      "entries",
                      v[2]);
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        intake_err(in, "stream maintenance failed: %s", reply->str);
    }
}

static void on_maint_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_intake *in = arg;
    if (in->stopping)
        return;
    suki_timer_ms(in->maint_ev, 1000);
    if (in->maint_busy || !suki_redis_is_up(in->D->redis) || !in->stream)
        return;
    const struct suki_conf *c = C(in);
    char keep[24], gc[24];
    snprintf(keep, sizeof(keep), "%" PRId64, c->keep);
    int64_t now = suki_mono_ms();
    int64_t gc_idle = 0;
    if (now >= in->next_gc) {
        /* consumers that hold nothing and were silent this long are
         * gone for good (a live one reads every block_ms) */
        gc_idle = c->claim_idle_ms * 10;
        if (gc_idle < 600000)
            gc_idle = 600000;
        in->next_gc = now + 60000;
    }
    snprintf(gc, sizeof(gc), "%" PRId64, gc_idle);
    char *dead = suki_key(c->prefix, SUKI_KEY_DEAD);
    const char *av[5] = {in->stream, dead, keep, in->group, gc};
    int rc = suki_redis_eval_owned(in->D->redis, in, &trim_script,
                                   on_maint_reply, in, 2, 5, av, NULL);
    free(dead);
    if (rc < 0)
        return;
    in->maint_busy = true;
}

/* ---- public API ----------------------------------------------------- */

struct suki_intake *suki_intake_new(struct suki_daemon *D)
{
    struct suki_intake *in = suki_calloc(1, sizeof(*in));
    in->D = D;
    in->stream = suki_strdup(D->conf->stream);
    in->group = suki_strdup(D->conf->group);
    in->retry_ev = evtimer_new(D->base, on_retry, in);
    in->lists_ev = evtimer_new(D->base, on_lists_timer, in);
    in->maint_ev = evtimer_new(D->base, on_maint_timer, in);
    in->done_ev = evtimer_new(D->base, finish_stop, in);
    SUKI_ASSERT(in->retry_ev && in->lists_ev && in->maint_ev && in->done_ev);
    in->link = suki_redis_new(D->base, D->conf, "intake", on_link_state, in);
    /* An entry's strings beyond what a dead letter keeps whole arrive cut:
     * producers' huge entries (100 of 5 MB drove sukid to 1.4 GB, and
     * under a memory limit into a livelock of out of memory, reconnect,
     * the same read again) cost one bulk in hiredis's buffer at a time. */
    suki_redis_cap_strings(in->link, whole_max(in));
    suki_redis_add_script(in->link, &apply_script);
    suki_redis_add_script(in->link, &recover_script);
    suki_redis_add_script(D->redis, &lists_script);
    suki_redis_add_script(D->redis, &trim_script);
    suki_timer_ms(in->lists_ev, 0);
    suki_timer_ms(in->maint_ev, 1000);
    return in;
}

void suki_intake_reload(struct suki_intake *in)
{
    suki_redis_set_conf(in->link, in->D->conf);
    suki_redis_cap_strings(in->link, whole_max(in));
    in->lists_warned = false;
    if (!in->stopping && !in->lists_busy &&
        !evtimer_pending(in->lists_ev, NULL))
        suki_timer_ms(in->lists_ev, 0);
    drive(in);
}

void suki_intake_set_nudge(struct suki_intake *in,
                           void (*fn)(void *arg, int64_t earliest_due_ms),
                           void *arg)
{
    in->nudge = fn;
    in->nudge_arg = arg;
}

void suki_intake_stop(struct suki_intake *in, void (*done)(void *arg),
                      void *arg)
{
    in->stopping = true;
    in->done = done;
    in->done_arg = arg;
    evtimer_del(in->lists_ev);
    evtimer_del(in->maint_ev);
    evtimer_del(in->retry_ev);
    in->retry_wait = false;
    /* shutdown_timeout bounds the drain; drive() fires it sooner */
    suki_timer_ms(in->done_ev, C(in)->shutdown_timeout_ms);
    drive(in);
}

void suki_intake_free(struct suki_intake *in)
{
    if (!in)
        return;
    in->freeing = true;
    /* pending intake-link callbacks run now, with NULL replies */
    suki_redis_free(in->link);
    suki_redis_cancel(in->D->redis, in);
    event_free(in->retry_ev);
    event_free(in->lists_ev);
    event_free(in->maint_ev);
    event_free(in->done_ev);
    free(in->stream);
    free(in->group);
    free(in);
}
