/* front.c - the dispatcher's front, on the caller's loop: per-transport
 * queues, priorities, token buckets, circuit breakers, counters, metrics
 * and the result callbacks; plus the pure helpers they use. The transfers
 * themselves run on lanes from a backend (lane.h): worker threads
 * (thread.c) or, in sukid, proxies for threads in the delivery agent
 * (proxy.c).
 *
 * Why threads: libcurl 7.88 waits blocking, even in the multi interface,
 * for the SMTP server's reply to the final "." and the spool transport
 * fsyncs files; on the caller's loop one slow server froze the whole
 * daemon. Each lane has its own event_base and multi handle; messages go
 * to it and come back over mutex-protected lists and eventfds (see
 * lane.h).
 *
 * Split: the front decides what starts when and hands a message to a lane
 * only when its transport has a free slot (max_connections), a token (rate)
 * and a closed (or half-open, for one probe) breaker. So the queues and
 * their priority order, the buckets, the breakers, the counters and the
 * breaker metric stay on the caller's thread (suki_metrics is not
 * thread-safe), suki_dispatch_pending/full/transport_state read plain
 * fields without locks, and a reminder sent after campaign mail still
 * overtakes whatever has not started.
 *
 * In sukid the lanes are proxies for lane threads in the delivery agent, a
 * process of its own (proxy.c, suki_dispatch_set_agent), so that transfers
 * in flight outlive a killed sukid; the front does not see the difference.
 *
 * Lanes per transport: an SMTP transport gets up to max_connections lanes,
 * started on first use, each running one transfer at a time over its own
 * cached connection; a blocking end-of-data wait then holds up only the
 * connection it belongs to, never the transport's other connections nor
 * other transports, and max_connections keeps its meaning against a slow
 * server (one lane with N transfers in one multi handle would stall all N
 * at every "."). HTTP never blocks in libcurl, so an HTTP transport has one
 * lane running up to max_connections transfers in one multi handle; a spool
 * transport has one lane writing its files one after the other, as before.
 * Lanes stop when their transport goes away and are joined once they say
 * they have exited; suki_dispatch_free stops and joins them all.
 *
 * Life of a message (struct deliver_xfer): send() copies it and puts it on its
 * transport's queue (one list per priority); pump() takes it off when the
 * limits allow and start() puts it on a lane's outbox; the flush event (a
 * zero timeout on the caller's loop, so nothing leaves during send()) posts
 * the outboxes to the lanes; the lane runs it and posts it back; results_cb
 * (the hub's eventfd) calls complete(): bookkeeping, the callback, free.
 * Results decided locally (a refused address, no thread) wait on the
 * deferred list for the defer event. Each xfer is on exactly one list at a
 * time through its `link`.
 *
 * Re-entrancy: pump() never calls a callback, so send() and configure() may
 * call it. Callbacks run from the event handlers, which end with kick():
 * pump every transport, then free retired transports that nothing refers
 * to any more. A transport is never freed while an xfer points at it
 * (nxfers). */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "deliver.h"
#include "lane.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"

#define DEFAULT_MAX_PENDING 1024
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_CONN 4
/* A spool transport has one lane writing one file after the other, so
 * max_connections limits only the hand-over there. Its window (messages
 * handed to the lane and not back) starts at max_connections and grows by
 * one with each message written, up to this many, so that under load the
 * lane always has work queued while the caller's loop is busy and fsyncs
 * the directory once per chunk (spool.c); any failure shrinks it
 * back to max_connections, so a broken spool fails as few messages as
 * before the breaker opens. */
#define SPOOL_WINDOW 256
#define DEFAULT_COOLDOWN_MS 30000
#define ADDR_MAX 320

struct deliver_transport {
    TAILQ_ENTRY(deliver_transport) link;
    struct suki_dispatch *d;
    char *name;                 /* owned */
    struct deliver_tconf *conf; /* current settings (ref) */
    struct deliver_xq q[2];     /* by priority */
    size_t queued, in_flight;
    size_t nxfers; /* xfers pointing here, whatever their state */
    struct suki_dispatch_bucket bucket;
    struct event *wake; /* rate limit / breaker cooldown */
    enum suki_breaker_state breaker;
    int fails;          /* consecutive TEMPFAILs */
    int64_t open_until; /* monotonic ms */
    bool probe_out;     /* the half-open probe is running */
    bool retired;       /* removed by configure, draining */
    bool seen;          /* scratch for configure */
    uint64_t sent, tempfail, permfail;
    size_t window; /* spool: the grown window (0: max_connections) */
    struct deliver_lane **lanes; /* owned, started on first use */
    size_t n_lanes, cap_lanes;
};

struct suki_dispatch {
    struct event_base *base; /* borrowed */
    struct deliver_hub hub;  /* the lanes' way back */
    struct event *results;   /* hub.efd readable */
    struct event *flush;     /* zero-timeout: outboxes to the lanes */
    struct event *defer;     /* zero-timeout: local results */
    TAILQ_HEAD(, deliver_transport) transports;
    TAILQ_HEAD(, deliver_lane) dying; /* stopped, to be joined */
    struct deliver_xq deferred;
    size_t pending, max_pending;
    bool closing;
    const struct deliver_backend *be; /* where lanes come from */
    void *be_ctx;
};

static void kick(struct suki_dispatch *d);
static void pump(struct deliver_transport *t);

/* ------------------------------------------------------------------ */
/* pure helpers                                                        */

const char *suki_dispatch_status_name(enum suki_dispatch_status s)
{
    switch (s) {
    case SUKI_DISPATCH_SENT:
        return "sent";
    case SUKI_DISPATCH_TEMPFAIL:
        return "tempfail";
    case SUKI_DISPATCH_PERMFAIL:
        return "permfail";
    }
    return "?";
}

const char *suki_dispatch_breaker_name(enum suki_breaker_state s)
{
    switch (s) {
    case SUKI_BREAKER_CLOSED:
        return "closed";
    case SUKI_BREAKER_OPEN:
        return "open";
    case SUKI_BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "?";
}

static double bucket_burst(double rate)
{
    double b = rate / 10.0;
    return b > 1.0 ? b : 1.0;
}

void suki_dispatch_bucket_init(struct suki_dispatch_bucket *b, double rate,
                               int64_t now_ms)
{
    b->rate = rate > 0 ? rate : 0;
    b->burst = bucket_burst(b->rate);
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

static void bucket_refill(struct suki_dispatch_bucket *b, int64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return;
    b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last_ms = now_ms;
}

void suki_dispatch_bucket_set_rate(struct suki_dispatch_bucket *b, double rate,
                                   int64_t now_ms)
{
    bool was_unlimited = b->rate <= 0;

    bucket_refill(b, now_ms);
    b->rate = rate > 0 ? rate : 0;
    b->burst = bucket_burst(b->rate);
    if (was_unlimited || b->tokens > b->burst)
        b->tokens = b->burst;
    b->last_ms = now_ms;
}

bool suki_dispatch_bucket_take(struct suki_dispatch_bucket *b, int64_t now_ms)
{
    if (b->rate <= 0)
        return true;
    bucket_refill(b, now_ms);
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

int64_t suki_dispatch_bucket_wait_ms(struct suki_dispatch_bucket *b,
                                     int64_t now_ms)
{
    if (b->rate <= 0)
        return 0;
    bucket_refill(b, now_ms);
    if (b->tokens >= 1.0)
        return 0;
    double ms = (1.0 - b->tokens) * 1000.0 / b->rate;
    int64_t w = (int64_t)ms;
    if ((double)w < ms)
        w++;
    return w > 0 ? w : 1;
}

bool suki_dispatch_addr_ok(const char *addr, bool allow_empty, const char **why)
{
    const char *dummy;
    const unsigned char *p;

    if (!why)
        why = &dummy;
    if (!addr) {
        *why = "missing";
        return false;
    }
    if (!*addr) {
        *why = "empty";
        return allow_empty;
    }
    if (strlen(addr) > ADDR_MAX) {
        *why = "too long";
        return false;
    }
    for (p = (const unsigned char *)addr; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            *why = "contains CR or LF";
            return false;
        }
        if (*p == ' ' || *p == '\t') {
            *why = "contains white space";
            return false;
        }
        if (*p < 0x20 || *p == 0x7f) {
            *why = "contains a control character";
            return false;
        }
        if (*p == '<' || *p == '>') {
            *why = "contains '<' or '>'";
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* settings snapshots                                                  */

static char *dup_or_null(const char *s)
{
    return s ? suki_strdup(s) : NULL;
}

static struct deliver_tconf *tconf_ref(struct deliver_tconf *c)
{
    c->refs++;
    return c;
}

static bool header_part_ok(const char *s, bool is_name)
{
    if (!s || (is_name && !*s))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\r' || *p == '\n')
            return false;
        if (is_name && (*p <= ' ' || *p == ':' || *p == 0x7f))
            return false;
    }
    return true;
}

static struct curl_slist *slist_add(struct curl_slist *l, const char *s)
{
    struct curl_slist *n = curl_slist_append(l, s);
    if (!n) {
        suki_err_log("out of memory");
        abort();
    }
    return n;
}

/* Returns a snapshot (refs = 1) or NULL when src is unusable. */
static struct deliver_tconf *tconf_new(const struct suki_transport_conf *src)
{
    struct deliver_tconf *c;
    bool have_ct = false;

    if (!src->name || !*src->name)
        return NULL;
    for (size_t i = 0; i < src->n_headers; i++) {
        if (!header_part_ok(src->headers[i].name, true) ||
            !header_part_ok(src->headers[i].value, false))
            return NULL;
    }
    if (src->kind != SUKI_TRANSPORT_SPOOL && !src->url)
        return NULL;
    c = suki_calloc(1, sizeof(*c));
    c->refs = 1;
    c->name = suki_strdup(src->name);
    c->kind = src->kind;
    c->url = dup_or_null(src->url);
    if (src->spool_dir)
        c->spool_dir = suki_strdup(src->spool_dir);
    else if (src->url && strncmp(src->url, "spool://", 8) == 0)
        c->spool_dir = suki_strdup(src->url + 8);
    if (c->kind == SUKI_TRANSPORT_SPOOL && (!c->spool_dir || !*c->spool_dir)) {
        deliver_tconf_unref(c);
        return NULL;
    }
    c->starttls = src->starttls;
    c->username = dup_or_null(src->username);
    c->password = dup_or_null(src->password);
    c->ca_file = dup_or_null(src->ca_file);
    c->tls_verify = src->tls_verify;
    c->max_connections =
        src->max_connections > 0 ? src->max_connections : DEFAULT_MAX_CONN;
    c->rate = src->rate > 0 ? src->rate : 0;
    c->timeout_ms = src->timeout_ms > 0 ? src->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->breaker_failures = src->breaker_failures;
    c->breaker_cooldown_ms = src->breaker_cooldown_ms > 0
                                 ? src->breaker_cooldown_ms
                                 : DEFAULT_COOLDOWN_MS;
    if (c->kind == SUKI_TRANSPORT_HTTP) {
        for (size_t i = 0; i < src->n_headers; i++)
            if (strcasecmp(src->headers[i].name, "Content-Type") == 0)
                have_ct = true;
        if (!have_ct)
            c->headers =
                slist_add(c->headers, "Content-Type: application/json");
        /* no "Expect: 100-continue" round trip for small bodies */
        c->headers = slist_add(c->headers, "Expect:");
        for (size_t i = 0; i < src->n_headers; i++) {
            char *h = suki_asprintf("%s: %s", src->headers[i].name,
                                    src->headers[i].value);
            c->headers = slist_add(c->headers, h);
            free(h);
        }
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* transports                                                          */

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_transport *t = arg;
    (void)fd;
    (void)what;
    kick(t->d);
}

static struct deliver_transport *transport_find(const struct suki_dispatch *d,
                                                const char *name)
{
    struct deliver_transport *t;
    TAILQ_FOREACH(t, &d->transports, link)
    {
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

static void set_breaker_metric(struct deliver_transport *t)
{
    struct suki_channel_metrics *m = suki_metrics_channel(t->name);
    if (m)
        m->breaker_open = t->breaker != SUKI_BREAKER_CLOSED;
}

static struct deliver_transport *transport_new(struct suki_dispatch *d,
                                               struct deliver_tconf *c)
{
    struct deliver_transport *t = suki_calloc(1, sizeof(*t));

    t->d = d;
    t->name = suki_strdup(c->name);
    t->conf = c;
    TAILQ_INIT(&t->q[0]);
    TAILQ_INIT(&t->q[1]);
    t->wake = evtimer_new(d->base, wake_cb, t);
    if (!t->wake) {
        suki_err_log("dispatch: evtimer_new failed");
        abort();
    }
    suki_dispatch_bucket_init(&t->bucket, c->rate, suki_mono_ms());
    t->breaker = SUKI_BREAKER_CLOSED;
    set_breaker_metric(t);
    TAILQ_INSERT_TAIL(&d->transports, t, link);
    return t;
}

/* Free t; its lanes (idle: nothing refers to t) are told to stop and wait
 * on the dying list to be joined. */
static void transport_free(struct deliver_transport *t)
{
    struct suki_dispatch *d = t->d;

    for (size_t i = 0; i < t->n_lanes; i++) {
        TAILQ_INSERT_TAIL(&d->dying, t->lanes[i], link);
        t->lanes[i]->be->stop(t->lanes[i], false);
    }
    free(t->lanes);
    TAILQ_REMOVE(&d->transports, t, link);
    event_free(t->wake);
    deliver_tconf_unref(t->conf);
    free(t->name);
    free(t);
}

static void breaker_open(struct deliver_transport *t, const char *reply)
{
    char dur[32];

    t->breaker = SUKI_BREAKER_OPEN;
    t->open_until = suki_mono_ms() + t->conf->breaker_cooldown_ms;
    set_breaker_metric(t);
    suki_format_duration(t->conf->breaker_cooldown_ms, dur, sizeof(dur));
    suki_warnx("transport %s: circuit breaker open for %s after %d "
               "consecutive temporary failures; last: %s",
               t->name, dur, t->fails, reply);
}

/* Breaker and counters for a finished (not cancelled, not local) xfer. */
static void account(struct deliver_transport *t, const struct deliver_xfer *x,
                    enum suki_dispatch_status st, const char *reply)
{
    if (st != SUKI_DISPATCH_SENT)
        t->window = 0;
    else if (t->conf->kind == SUKI_TRANSPORT_SPOOL && t->window < SPOOL_WINDOW)
        t->window =
            t->window ? t->window + 1 : (size_t)t->conf->max_connections + 1;
    if (st == SUKI_DISPATCH_TEMPFAIL) {
        t->tempfail++;
        t->fails++;
        if (t->conf->breaker_failures <= 0)
            return;
        if (x->probe || (t->breaker == SUKI_BREAKER_CLOSED &&
                         t->fails >= t->conf->breaker_failures))
            breaker_open(t, reply);
        return;
    }
    if (st == SUKI_DISPATCH_SENT)
        t->sent++;
    else
        t->permfail++;
    t->fails = 0;
    if (t->breaker != SUKI_BREAKER_CLOSED) {
        t->breaker = SUKI_BREAKER_CLOSED;
        set_breaker_metric(t);
        suki_notice("transport %s: circuit breaker closed", t->name);
    }
}

/* ------------------------------------------------------------------ */
/* lanes                                                               */

/* The lane x should run on: for SMTP the first idle one (starting a new one
 * while fewer than max_connections exist), else the transport's only lane.
 * NULL with err filled when no thread could be started. */
static struct deliver_lane *lane_for(struct deliver_transport *t,
                                     struct suki_err *err)
{
    const struct deliver_tconf *c = t->conf;
    size_t want = 1, best = SIZE_MAX;
    struct deliver_lane *l;

    if (c->kind == SUKI_TRANSPORT_SMTP) {
        want = (size_t)c->max_connections;
        for (size_t i = 0; i < t->n_lanes; i++) {
            if (t->lanes[i]->busy == 0)
                return t->lanes[i];
            if (best == SIZE_MAX || t->lanes[i]->busy < t->lanes[best]->busy)
                best = i;
        }
    } else if (t->n_lanes > 0) {
        return t->lanes[0];
    }
    /* every SMTP lane is busy: only after a reload lowered the limit */
    if (t->n_lanes >= want && best != SIZE_MAX)
        return t->lanes[best];
    l = t->d->be->lane_new(t->d->be_ctx, &t->d->hub, err);
    if (!l)
        return best != SIZE_MAX ? t->lanes[best] : NULL;
    if (t->n_lanes == t->cap_lanes) {
        t->cap_lanes = t->cap_lanes ? t->cap_lanes * 2 : 4;
        t->lanes = suki_realloc(t->lanes, t->cap_lanes * sizeof(*t->lanes));
    }
    t->lanes[t->n_lanes++] = l;
    return l;
}

/* Join the stopped lanes that have exited (they do not wait). */
static void reap(struct suki_dispatch *d)
{
    struct deliver_lane *l, *next;

    for (l = TAILQ_FIRST(&d->dying); l; l = next) {
        next = TAILQ_NEXT(l, link);
        if (l->be->exited(l)) {
            TAILQ_REMOVE(&d->dying, l, link);
            l->be->join(l);
        }
    }
}

/* ------------------------------------------------------------------ */
/* xfer lifetime                                                       */

static void xfer_free(struct deliver_xfer *x)
{
    x->t->nxfers--;
    suki_dispatch_gate_unref(x->gate);
    deliver_tconf_unref(x->conf);
    deliver_xfer_clear(x);
    free(x);
}

/* Build per-recipient entries in rc (caller-provided, n_rcpt long) from the
 * trace, fix up the overall status, and point r at them. */
static void smtp_rcpts(struct deliver_xfer *x, struct suki_dispatch_result *r,
                       struct suki_dispatch_rcpt *rc)
{
    size_t failed = 0;

    for (size_t i = 0; i < x->n_rcpt; i++) {
        int c = x->rcpt_code ? x->rcpt_code[i] : 0;
        rc[i].addr = x->rcpt[i];
        rc[i].code = c;
        rc[i].reply =
            (x->rcpt_reply && x->rcpt_reply[i]) ? x->rcpt_reply[i] : "";
        if (c >= 200 && c <= 299)
            rc[i].status = SUKI_DISPATCH_SENT;
        else if (c >= 500 && c <= 599)
            rc[i].status = SUKI_DISPATCH_PERMFAIL;
        else if (c != 0)
            rc[i].status = SUKI_DISPATCH_TEMPFAIL;
        else
            rc[i].status = r->status;
        if (c != 0 && rc[i].status != SUKI_DISPATCH_SENT)
            failed++;
    }
    if (r->status == SUKI_DISPATCH_SENT) {
        r->n_rcpt_failed = failed;
    } else {
        /* Nobody got it. When every RCPT was refused the outcome is
         * TEMPFAIL if any refusal was temporary. */
        if (x->rcpt_sent == x->n_rcpt && failed == x->n_rcpt && x->n_rcpt > 0) {
            enum suki_dispatch_status st = SUKI_DISPATCH_PERMFAIL;
            for (size_t i = 0; i < x->n_rcpt; i++)
                if (rc[i].status == SUKI_DISPATCH_TEMPFAIL)
                    st = SUKI_DISPATCH_TEMPFAIL;
            r->status = st;
        }
        for (size_t i = 0; i < x->n_rcpt; i++)
            if (rc[i].status == SUKI_DISPATCH_SENT)
                rc[i].status = r->status;
        r->n_rcpt_failed = 0;
    }
    r->rcpts = rc;
    r->n_rcpts = x->n_rcpt;
}

/* The end of every xfer, on the caller's thread: x is on no list and its
 * outcome (res_*) is set. Bookkeeping first, then the callback, then free;
 * t is not touched after the callback except through xfer_free's nxfers--
 * (t cannot go away while nxfers > 0). */
static void complete(struct deliver_xfer *x)
{
    struct deliver_transport *t = x->t;
    struct suki_dispatch *d = t->d;
    struct suki_dispatch_result r;
    struct suki_dispatch_rcpt *rc = NULL;

    memset(&r, 0, sizeof(r));
    r.status = x->res_status;
    r.code = x->res_code;
    r.reply = x->res_reply ? x->res_reply : "";
    r.retry_after_ms = x->res_retry_after_ms;
    r.cancelled = x->res_cancelled;
    if (x->n_rcpt > 0) {
        rc = suki_calloc(x->n_rcpt, sizeof(*rc));
        smtp_rcpts(x, &r, rc);
    }
    if (x->lane) {
        x->lane->busy--;
        x->lane = NULL;
    }
    if (x->in_slot) {
        t->in_flight--;
        x->in_slot = false;
    }
    if (x->probe)
        t->probe_out = false;
    if (r.cancelled) {
        /* no effect on counters or the breaker */
    } else if (x->local) {
        if (r.status == SUKI_DISPATCH_PERMFAIL)
            t->permfail++;
        else if (r.status == SUKI_DISPATCH_TEMPFAIL)
            t->tempfail++;
    } else {
        account(t, x, r.status, r.reply);
    }
    r.channel = t->name;
    r.message_id = x->message_id;
    d->pending--;
    x->cb(&r, x->arg);
    xfer_free(x);
    free(rc);
}

static void set_result(struct deliver_xfer *x, enum suki_dispatch_status st,
                       const char *reply, bool cancelled)
{
    x->res_status = st;
    x->res_code = 0;
    free(x->res_reply);
    x->res_reply = suki_strdup(reply ? reply : "");
    x->res_cancelled = cancelled;
}

/* Report a result decided on the caller's thread now. */
static void complete_simple(struct deliver_xfer *x,
                            enum suki_dispatch_status st, const char *reply,
                            bool cancelled)
{
    set_result(x, st, reply, cancelled);
    complete(x);
}

/* Finish x later from the loop with a locally decided result. */
static void defer_local(struct deliver_xfer *x, enum suki_dispatch_status st,
                        const char *reply)
{
    struct suki_dispatch *d = x->t->d;

    x->local = true;
    set_result(x, st, reply, false);
    x->state = X_DEFERRED;
    TAILQ_INSERT_TAIL(&d->deferred, x, link);
    suki_timer_ms(d->defer, 0);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct suki_dispatch *d = arg;
    struct deliver_xq batch;
    struct deliver_xfer *x;

    (void)fd;
    (void)what;
    /* take the current batch: xfers deferred by callbacks wait for the next
     * round, so this loop always ends */
    TAILQ_INIT(&batch);
    TAILQ_CONCAT(&batch, &d->deferred, link);
    while ((x = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, x, link);
        complete(x);
    }
    kick(d);
}

/* Hand the started xfers to their lanes (one wake-up per lane). */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct suki_dispatch *d = arg;
    struct deliver_transport *t;

    (void)fd;
    (void)what;
    TAILQ_FOREACH(t, &d->transports, link)
    {
        for (size_t i = 0; i < t->n_lanes; i++)
            t->lanes[i]->be->post(t->lanes[i], &t->lanes[i]->outbox);
    }
}

/* The lanes gave xfers back (or one of them exited). The eventfd is read
 * before the list is taken: a lane writes it only when the list was
 * empty. */
static void results_cb(evutil_socket_t fd, short what, void *arg)
{
    struct suki_dispatch *d = arg;
    struct deliver_xq batch;
    struct deliver_xfer *x;

    (void)what;
    deliver_efd_drain(fd);
    TAILQ_INIT(&batch);
    pthread_mutex_lock(&d->hub.mu);
    TAILQ_CONCAT(&batch, &d->hub.done, link);
    pthread_mutex_unlock(&d->hub.mu);
    while ((x = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, x, link);
        complete(x);
    }
    reap(d);
    kick(d);
}

/* ------------------------------------------------------------------ */
/* starting transfers                                                  */

static void start(struct deliver_transport *t, struct deliver_xfer *x)
{
    struct suki_dispatch *d = t->d;
    struct suki_err err = {{0}};
    struct deliver_lane *l;

    t->queued--;
    t->in_flight++;
    x->in_slot = true;
    deliver_tconf_unref(x->conf);
    x->conf = tconf_ref(t->conf);
    l = lane_for(t, &err);
    if (!l) {
        defer_local(x, SUKI_DISPATCH_TEMPFAIL, err.msg);
        return;
    }
    x->lane = l;
    l->busy++;
    x->state = X_HANDED;
    TAILQ_INSERT_TAIL(&l->outbox, x, link);
    suki_timer_ms(d->flush, 0);
}

/* Messages t may have started and not back: max_connections, or the
 * spool window once it has grown past that. */
static size_t slots(const struct deliver_transport *t)
{
    size_t n = (size_t)t->conf->max_connections;

    if (t->conf->kind == SUKI_TRANSPORT_SPOOL && t->window > n)
        n = t->window;
    return n;
}

/* Start what t's limits allow. Never calls a callback. */
static void pump(struct deliver_transport *t)
{
    int64_t now;

    if (t->d->closing || t->queued == 0)
        return;
    now = suki_mono_ms();
    if (t->breaker == SUKI_BREAKER_OPEN) {
        if (now < t->open_until) {
            suki_timer_ms(t->wake, t->open_until - now);
            return;
        }
        t->breaker = SUKI_BREAKER_HALF_OPEN;
    }
    while (t->queued > 0 && t->in_flight < slots(t)) {
        struct deliver_xfer *x;
        int q = TAILQ_EMPTY(&t->q[0]) ? 1 : 0;
        x = TAILQ_FIRST(&t->q[q]);
        if (x->gate && now >= x->gate->open_until_ms) {
            /* its sender may no longer own it: not started, no token */
            TAILQ_REMOVE(&t->q[q], x, link);
            t->queued--;
            defer_local(x, SUKI_DISPATCH_TEMPFAIL,
                        "not started: its sender's lease may have ended");
            x->res_cancelled = true;
            continue;
        }
        if (t->breaker == SUKI_BREAKER_HALF_OPEN && t->probe_out)
            return;
        if (!suki_dispatch_bucket_take(&t->bucket, now)) {
            suki_timer_ms(t->wake,
                          suki_dispatch_bucket_wait_ms(&t->bucket, now));
            return;
        }
        TAILQ_REMOVE(&t->q[q], x, link);
        if (t->breaker == SUKI_BREAKER_HALF_OPEN) {
            x->probe = true;
            t->probe_out = true;
        }
        start(t, x);
    }
}

static void kick(struct suki_dispatch *d)
{
    struct deliver_transport *t, *next;

    TAILQ_FOREACH(t, &d->transports, link)
    {
        pump(t);
    }
    for (t = TAILQ_FIRST(&d->transports); t; t = next) {
        next = TAILQ_NEXT(t, link);
        if (t->retired && t->nxfers == 0)
            transport_free(t);
    }
}

/* ------------------------------------------------------------------ */
/* public API                                                          */

struct suki_dispatch *suki_dispatch_new(struct event_base *base,
                                        struct suki_err *err)
{
    struct suki_dispatch *d;
    int rc;

    if (!base) {
        suki_err_set(err, -EINVAL, "dispatch: no event base");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        suki_err_set(err, -EIO, "dispatch: curl_global_init failed");
        return NULL;
    }
    d = suki_calloc(1, sizeof(*d));
    d->base = base;
    d->be = &deliver_threads;
    d->max_pending = DEFAULT_MAX_PENDING;
    TAILQ_INIT(&d->transports);
    TAILQ_INIT(&d->dying);
    TAILQ_INIT(&d->deferred);
    TAILQ_INIT(&d->hub.done);
    rc = pthread_mutex_init(&d->hub.mu, NULL);
    if (rc != 0) {
        suki_err_set(err, -rc, "dispatch: pthread_mutex_init: %s",
                     strerror(rc));
        free(d);
        curl_global_cleanup();
        return NULL;
    }
    d->hub.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->hub.efd < 0) {
        suki_err_set(err, -errno, "dispatch: eventfd: %s", strerror(errno));
        goto fail;
    }
    d->results =
        event_new(base, d->hub.efd, EV_READ | EV_PERSIST, results_cb, d);
    d->flush = evtimer_new(base, flush_cb, d);
    d->defer = evtimer_new(base, defer_cb, d);
    if (!d->results || !d->flush || !d->defer ||
        event_add(d->results, NULL) != 0) {
        suki_err_set(err, -ENOMEM, "dispatch: cannot create events");
        goto fail;
    }
    return d;
fail:
    if (d->results)
        event_free(d->results);
    if (d->flush)
        event_free(d->flush);
    if (d->defer)
        event_free(d->defer);
    if (d->hub.efd >= 0)
        close(d->hub.efd);
    pthread_mutex_destroy(&d->hub.mu);
    free(d);
    curl_global_cleanup();
    return NULL;
}

void deliver_front_set_backend(struct suki_dispatch *d,
                               const struct deliver_backend *be, void *ctx)
{
    d->be = be;
    d->be_ctx = ctx;
}

void suki_dispatch_free(struct suki_dispatch *d)
{
    struct deliver_transport *t;
    struct deliver_xfer *x;
    struct deliver_lane *l;
    struct deliver_xq back;

    if (!d)
        return;
    d->closing = true;
    evtimer_del(d->defer);
    evtimer_del(d->flush);
    event_del(d->results);
    /* results decided here stand (a refused address stays refused) */
    while ((x = TAILQ_FIRST(&d->deferred)) != NULL) {
        TAILQ_REMOVE(&d->deferred, x, link);
        complete(x);
    }
    /* started but not handed over yet, then queued */
    TAILQ_FOREACH(t, &d->transports, link)
    {
        for (size_t i = 0; i < t->n_lanes; i++) {
            while ((x = TAILQ_FIRST(&t->lanes[i]->outbox)) != NULL) {
                TAILQ_REMOVE(&t->lanes[i]->outbox, x, link);
                complete_simple(x, SUKI_DISPATCH_TEMPFAIL,
                                SUKI_DISPATCH_CANCELLED, true);
            }
        }
        for (int p = 0; p < 2; p++) {
            while ((x = TAILQ_FIRST(&t->q[p])) != NULL) {
                TAILQ_REMOVE(&t->q[p], x, link);
                t->queued--;
                complete_simple(x, SUKI_DISPATCH_TEMPFAIL,
                                SUKI_DISPATCH_CANCELLED, true);
            }
        }
    }
    /* Stop every lane at once (shutting down the read side of its sockets
     * ends any wait for a server), then wait for each: bounded by one
     * spool write at most. */
    TAILQ_FOREACH(t, &d->transports, link)
    {
        for (size_t i = 0; i < t->n_lanes; i++)
            t->lanes[i]->be->stop(t->lanes[i], true);
    }
    TAILQ_FOREACH(l, &d->dying, link)
    {
        l->be->stop(l, true);
    }
    TAILQ_FOREACH(t, &d->transports, link)
    {
        for (size_t i = 0; i < t->n_lanes; i++)
            t->lanes[i]->be->join(t->lanes[i]);
        t->n_lanes = 0;
    }
    while ((l = TAILQ_FIRST(&d->dying)) != NULL) {
        TAILQ_REMOVE(&d->dying, l, link);
        l->be->join(l);
    }
    /* what the lanes gave back: finished with their outcome, the rest
     * cancelled; the lanes are gone */
    TAILQ_INIT(&back);
    pthread_mutex_lock(&d->hub.mu);
    TAILQ_CONCAT(&back, &d->hub.done, link);
    pthread_mutex_unlock(&d->hub.mu);
    while ((x = TAILQ_FIRST(&back)) != NULL) {
        TAILQ_REMOVE(&back, x, link);
        x->lane = NULL;
        complete(x);
    }
    while ((t = TAILQ_FIRST(&d->transports)) != NULL) {
        evtimer_del(t->wake);
        transport_free(t);
    }
    event_free(d->results);
    event_free(d->flush);
    event_free(d->defer);
    close(d->hub.efd);
    pthread_mutex_destroy(&d->hub.mu);
    free(d);
    curl_global_cleanup();
}

int suki_dispatch_configure(struct suki_dispatch *d,
                            const struct suki_transport_conf *transports,
                            size_t n)
{
    struct deliver_tconf **c;
    struct deliver_transport *t;

    if (n > 0 && !transports)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!transports[i].name)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(transports[i].name, transports[j].name) == 0)
                return -EINVAL;
    }
    c = suki_calloc(n ? n : 1, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        c[i] = tconf_new(&transports[i]);
        if (!c[i]) {
            for (size_t j = 0; j < i; j++)
                deliver_tconf_unref(c[j]);
            free(c);
            return -EINVAL;
        }
        c[i]->be = d->be;
        c[i]->be_ctx = d->be_ctx;
    }
    TAILQ_FOREACH(t, &d->transports, link)
    {
        t->seen = false;
    }
    for (size_t i = 0; i < n; i++) {
        t = transport_find(d, c[i]->name);
        if (t) {
            deliver_tconf_unref(t->conf);
            t->conf = c[i];
            t->retired = false;
            suki_dispatch_bucket_set_rate(&t->bucket, c[i]->rate,
                                          suki_mono_ms());
        } else {
            t = transport_new(d, c[i]);
        }
        t->seen = true;
    }
    free(c);
    TAILQ_FOREACH(t, &d->transports, link)
    {
        if (!t->seen)
            t->retired = true;
        else if (t->conf->breaker_failures <= 0 &&
                 t->breaker != SUKI_BREAKER_CLOSED) {
            t->breaker = SUKI_BREAKER_CLOSED;
            set_breaker_metric(t);
        }
    }
    kick(d);
    return 0;
}

/* The envelope check: suki_dispatch_addr_ok names the dangerous bytes that
 * libcurl 7.88 would pass straight into MAIL FROM / RCPT TO; then
 * suki_mime_addr_valid (the same rule the message builder uses) refuses
 * anything that is not a plain local@domain. */
static bool envelope_addr_ok(const char *a, bool allow_empty, const char **why)
{
    if (!suki_dispatch_addr_ok(a, allow_empty, why))
        return false;
    if (*a == '\0')
        return true;
    if (!suki_mime_addr_valid(a)) {
        *why = "not a plain local@domain address";
        return false;
    }
    return true;
}

struct suki_dispatch_gate *suki_dispatch_gate_new(int64_t open_until_ms)
{
    struct suki_dispatch_gate *g = suki_calloc(1, sizeof(*g));
    g->refs = 1;
    g->open_until_ms = open_until_ms;
    return g;
}

void suki_dispatch_gate_unref(struct suki_dispatch_gate *g)
{
    if (g && --g->refs == 0)
        free(g);
}

int suki_dispatch_send(struct suki_dispatch *d, const struct suki_outmsg *m,
                       suki_dispatch_cb cb, void *arg)
{
    struct deliver_transport *t;
    struct deliver_xfer *x;
    const char *why = NULL, *bad_addr = NULL;
    char name[SUKI_DISPATCH_NAME_MAX];

    if (!d || !m || !cb || !m->channel || (!m->body && m->body_len))
        return -EINVAL;
    if (d->closing)
        return -ECANCELED;
    t = transport_find(d, m->channel);
    if (!t || t->retired)
        return -ENOENT;
    if (d->pending >= d->max_pending)
        return -ENOBUFS;
    switch (t->conf->kind) {
    case SUKI_TRANSPORT_SMTP:
        if (!m->rcpt || m->n_rcpt == 0)
            return -EINVAL;
        for (size_t i = 0; i < m->n_rcpt; i++)
            if (!m->rcpt[i])
                return -EINVAL;
        break;
    case SUKI_TRANSPORT_SPOOL:
        if (suki_dispatch_spool_name(m->message_id, name, sizeof(name)) != 0)
            return -EINVAL;
        break;
    case SUKI_TRANSPORT_HTTP:
        break;
    }

    x = suki_calloc(1, sizeof(*x));
    x->t = t;
    x->prio = m->priority > 0 ? 1 : 0;
    x->message_id = suki_strdup(m->message_id ? m->message_id : "");
    x->cb = cb;
    x->arg = arg;
    x->body = suki_malloc(m->body_len + 1);
    if (m->body_len)
        memcpy(x->body, m->body, m->body_len);
    x->body[m->body_len] = '\0';
    x->body_len = m->body_len;
    if (m->gate) {
        x->gate = m->gate;
        x->gate->refs++;
    }
    if (m->sent_marker && *m->sent_marker) {
        x->sent_marker = suki_strdup(m->sent_marker);
        x->sent_marker_ttl_s = m->sent_marker_ttl_s;
        if (m->sent_value && *m->sent_value)
            x->sent_value = suki_strdup(m->sent_value);
    }
    x->stage = SUKI_SMTP_CONNECT;
    x->last_stage = SUKI_SMTP_CONNECT;
    if (t->conf->kind == SUKI_TRANSPORT_SMTP) {
        x->from = suki_strdup(m->from ? m->from : "");
        if (!envelope_addr_ok(x->from, true, &why))
            bad_addr = x->from;
        x->n_rcpt = m->n_rcpt;
        x->rcpt = suki_calloc(m->n_rcpt, sizeof(*x->rcpt));
        x->rcpt_code = suki_calloc(m->n_rcpt, sizeof(*x->rcpt_code));
        x->rcpt_reply = suki_calloc(m->n_rcpt, sizeof(*x->rcpt_reply));
        for (size_t i = 0; i < m->n_rcpt; i++) {
            x->rcpt[i] = suki_strdup(m->rcpt[i]);
            if (!bad_addr && !envelope_addr_ok(x->rcpt[i], false, &why))
                bad_addr = x->rcpt[i];
            x->rcpt_list = slist_add(x->rcpt_list, x->rcpt[i]);
        }
    }
    t->nxfers++;
    d->pending++;
    if (bad_addr) {
        char clean[96], *msg;
        deliver_copy_clean(clean, sizeof(clean), bad_addr, strlen(bad_addr));
        msg = suki_asprintf("refused envelope address \"%s\": %s (not sent)",
                            clean, why);
        defer_local(x, SUKI_DISPATCH_PERMFAIL, msg);
        free(msg);
        return 0;
    }
    x->state = X_QUEUED;
    TAILQ_INSERT_TAIL(&t->q[x->prio], x, link);
    t->queued++;
    pump(t);
    return 0;
}

size_t suki_dispatch_pending(const struct suki_dispatch *d)
{
    return d ? d->pending : 0;
}

void suki_dispatch_set_max_pending(struct suki_dispatch *d, size_t max)
{
    d->max_pending = max ? max : DEFAULT_MAX_PENDING;
}

bool suki_dispatch_full(const struct suki_dispatch *d)
{
    return d->pending >= d->max_pending;
}

int suki_dispatch_transport_state(const struct suki_dispatch *d,
                                  const char *name,
                                  struct suki_dispatch_tstate *out)
{
    const struct deliver_transport *t;

    if (!d || !name || !out)
        return -EINVAL;
    t = transport_find(d, name);
    if (!t)
        return -ENOENT;
    memset(out, 0, sizeof(*out));
    out->breaker = t->breaker;
    out->consecutive_failures = t->fails;
    if (t->breaker == SUKI_BREAKER_OPEN) {
        int64_t left = t->open_until - suki_mono_ms();
        out->reopen_in_ms = left > 0 ? left : 0;
    }
    out->queued = t->queued;
    out->in_flight = t->in_flight;
    out->sent = t->sent;
    out->tempfail = t->tempfail;
    out->permfail = t->permfail;
    out->retired = t->retired;
    return 0;
}
