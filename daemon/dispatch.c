/* dispatch.c - libcurl multi-socket glue on libevent, per-transport queues,
 * token buckets and circuit breakers, and the SMTP, HTTP and spool
 * transports.
 *
 * The curl glue follows curl's docs/examples/hiperfifo.c: one multi handle;
 * CURLMOPT_SOCKETFUNCTION maps each socket to a libevent event (the event is
 * attached to the socket with curl_multi_assign); CURLMOPT_TIMERFUNCTION only
 * arms one evtimer (it never calls libcurl: a 0 timeout would recurse); after
 * every curl_multi_socket_action the finished transfers are drained with
 * curl_multi_info_read.
 *
 * Life of a message (struct xfer): send() copies it and puts it on its
 * transport's queue (one list per priority); pump() starts it when the
 * transport has a free slot (max_connections), a token (rate) and a closed
 * (or half-open, for one probe) breaker; it then runs in the multi handle
 * (SMTP, HTTP) or waits on the deferred list (spool, and results decided
 * locally); complete() does the bookkeeping, calls the callback and frees
 * it. Each xfer is on exactly one list at a time through its `link`.
 *
 * Re-entrancy: pump() never calls a callback (curl_multi_add_handle only
 * calls our timer function, which only arms an evtimer), so send() and
 * configure() may call it. Callbacks run from the event handlers, which end
 * with kick(): pump every transport, then free retired transports that
 * nothing refers to any more. A transport is never freed while an xfer
 * points at it (nxfers). */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"

#define DEFAULT_MAX_PENDING 1024
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_CONN 4
#define DEFAULT_COOLDOWN_MS 30000
#define REPLY_MAX 512
#define HTTP_BODY_KEEP 200
#define EASY_POOL_MAX 32
#define SPOOL_NAME_MAX 256
#define ADDR_MAX 320

#if LIBCURL_VERSION_NUM >= 0x080200
#define SUKI_CURLOPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLOWFAILS
#else
#define SUKI_CURLOPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLLOWFAILS
#endif

/* Immutable snapshot of one transport's settings. A running transfer holds
 * a reference so a reload can replace the transport's settings under it. */
struct tconf {
    int refs;
    char *name;
    enum suki_transport_kind kind;
    char *url;
    char *spool_dir; /* spool: the directory */
    enum suki_starttls starttls;
    char *username, *password, *ca_file; /* or NULL */
    bool tls_verify;
    int max_connections;
    double rate;
    int64_t timeout_ms;
    int breaker_failures; /* <= 0 disables the breaker */
    int64_t breaker_cooldown_ms;
    struct curl_slist *headers; /* HTTP: Content-Type, Expect:, extras */
};

enum xstate {
    X_QUEUED,   /* on its transport's queue */
    X_RUNNING,  /* in the multi handle, on d->running */
    X_DEFERRED, /* on d->deferred: spool write or a local result */
};

struct transport;

struct xfer {
    TAILQ_ENTRY(xfer) link;
    struct suki_dispatch *d;
    struct transport *t; /* alive while this xfer exists (nxfers) */
    struct tconf *conf;  /* ref taken when started */
    enum xstate state;
    bool in_slot;     /* counted in t->in_flight */
    int prio;         /* 0 or 1 */
    char *message_id; /* owned, "" when none */
    char *from;       /* owned (SMTP) */
    char **rcpt;      /* owned (SMTP) */
    size_t n_rcpt;
    struct curl_slist *rcpt_list;
    char *body; /* owned */
    size_t body_len, body_off;
    suki_dispatch_cb cb;
    void *arg;
    CURL *easy; /* while running */
    char errbuf[CURL_ERROR_SIZE];
    bool probe; /* the breaker's half-open probe */
    /* result decided without the network (refused address, setup error) */
    bool local;
    enum suki_dispatch_status pre_status;
    char *pre_reply;
    /* SMTP protocol trace, from CURLOPT_DEBUGFUNCTION */
    enum suki_smtp_stage stage; /* what the next reply answers */
    size_t rcpt_sent;           /* RCPT TO commands sent */
    size_t cur_rcpt;            /* index of the last RCPT TO sent */
    int *rcpt_code;             /* owned, n_rcpt */
    char **rcpt_reply;          /* owned, n_rcpt, entries owned or NULL */
    int last_code;
    enum suki_smtp_stage last_stage;
    char last_reply[REPLY_MAX];
    /* HTTP */
    char http_body[HTTP_BODY_KEEP + 1];
    size_t http_body_len;
    char retry_after[96];
};

TAILQ_HEAD(xq, xfer);

struct transport {
    TAILQ_ENTRY(transport) link;
    struct suki_dispatch *d;
    char *name;         /* owned */
    struct tconf *conf; /* current settings (ref) */
    struct xq q[2];     /* by priority */
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
};

struct sockinfo {
    LIST_ENTRY(sockinfo) link;
    struct suki_dispatch *d;
    curl_socket_t fd;
    struct event *ev;
};

struct suki_dispatch {
    struct event_base *base; /* borrowed */
    CURLM *multi;
    struct event *timer; /* curl's timeout */
    struct event *defer; /* zero-timeout: deferred xfers */
    TAILQ_HEAD(, transport) transports;
    struct xq running, deferred;
    LIST_HEAD(, sockinfo) socks;
    size_t pending, max_pending;
    CURL *pool[EASY_POOL_MAX]; /* reset easy handles kept for reuse */
    size_t n_pool;
    int *fds; /* every socket libcurl holds open (opensocket/closesocket) */
    size_t n_fds, cap_fds;
    bool closing;
    uint64_t seq; /* spool temporary names */
};

static void kick(struct suki_dispatch *d);
static void pump(struct transport *t);

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

bool suki_dispatch_curl_is_tls(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
        return true;
    default:
        return false;
    }
}

enum suki_dispatch_status suki_dispatch_classify_smtp(int curl_code,
                                                      int smtp_code,
                                                      enum suki_smtp_stage st)
{
    if (curl_code == CURLE_OK)
        return SUKI_DISPATCH_SENT;
    if (smtp_code >= 500 && smtp_code <= 599) {
        switch (st) {
        case SUKI_SMTP_MAIL:
        case SUKI_SMTP_RCPT:
        case SUKI_SMTP_DATA:
        case SUKI_SMTP_EOD:
            return SUKI_DISPATCH_PERMFAIL;
        default:
            break;
        }
    }
    return SUKI_DISPATCH_TEMPFAIL;
}

enum suki_dispatch_status suki_dispatch_classify_http(int curl_code,
                                                      long http_status)
{
    if (curl_code != CURLE_OK)
        return SUKI_DISPATCH_TEMPFAIL;
    if (http_status >= 200 && http_status <= 299)
        return SUKI_DISPATCH_SENT;
    if (http_status == 408 || http_status == 429)
        return SUKI_DISPATCH_TEMPFAIL;
    if (http_status >= 400 && http_status <= 499)
        return SUKI_DISPATCH_PERMFAIL;
    return SUKI_DISPATCH_TEMPFAIL;
}

int suki_dispatch_parse_retry_after(const char *value, int64_t now_ms,
                                    int64_t *out_ms)
{
    char buf[96];
    const char *p;
    size_t n;
    bool digits = true;

    if (!value)
        return -EINVAL;
    while (*value == ' ' || *value == '\t')
        value++;
    n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t' ||
                     value[n - 1] == '\r' || value[n - 1] == '\n'))
        n--;
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, value, n);
    buf[n] = '\0';
    for (p = buf; *p; p++)
        if (*p < '0' || *p > '9')
            digits = false;
    if (digits) {
        int64_t s;
        /* cap at a year: a larger delay is a server bug, not a plan */
        if (suki_parse_i64(buf, 0, INT64_C(366) * 86400, &s) != 0)
            return -EINVAL;
        *out_ms = s * 1000;
        return 0;
    }
    /* HTTP-date in any of the three RFC 9110 forms; curl_getdate parses
     * them all (and a few more lenient ones). */
    time_t t = curl_getdate(buf, NULL);
    if (t == (time_t)-1)
        return -EINVAL;
    int64_t ms = (int64_t)t * 1000 - now_ms;
    *out_ms = ms > 0 ? ms : 0;
    return 0;
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

static bool spool_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
           c == '+' || c == '=' || c == '-';
}

int suki_dispatch_spool_name(const char *message_id, char *buf, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p, *end;
    size_t o = 0;
    size_t n;
    uint64_t h = UINT64_C(14695981039346656037);
    char tail[24];

    if (!message_id)
        return -EINVAL;
    n = strlen(message_id);
    p = (const unsigned char *)message_id;
    if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
        p++;
        n -= 2;
    }
    if (n == 0)
        return -EINVAL;
    end = p + n;
    for (const unsigned char *q = p; q < end; q++) {
        h ^= *q;
        h *= UINT64_C(1099511628211);
    }
    /* 160 encoded bytes + "-" + 16 hex + ".eml" < 256 */
    for (; p < end && o < 160; p++) {
        if (spool_char_ok(*p) && !(o == 0 && *p == '.')) {
            if (o + 1 >= len)
                return -ENOSPC;
            buf[o++] = (char)*p;
        } else {
            if (o + 3 >= len)
                return -ENOSPC;
            buf[o++] = '%';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        }
    }
    if (p < end)
        snprintf(tail, sizeof(tail), "-%016llx.eml", (unsigned long long)h);
    else
        snprintf(tail, sizeof(tail), ".eml");
    n = strlen(tail);
    if (o + n + 1 > len)
        return -ENOSPC;
    memcpy(buf + o, tail, n + 1);
    return 0;
}

/* Copy s into dst (size REPLY_MAX-ish) replacing control bytes with '?' and
 * dropping the trailing CRLF. */
static void copy_clean(char *dst, size_t size, const char *s, size_t n)
{
    size_t o = 0;

    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    for (size_t i = 0; i < n && o + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    dst[o] = '\0';
}

/* ------------------------------------------------------------------ */
/* settings snapshots                                                  */

static char *dup_or_null(const char *s)
{
    return s ? suki_strdup(s) : NULL;
}

static struct tconf *tconf_ref(struct tconf *c)
{
    c->refs++;
    return c;
}

static void tconf_unref(struct tconf *c)
{
    if (!c || --c->refs > 0)
        return;
    free(c->name);
    free(c->url);
    free(c->spool_dir);
    free(c->username);
    free(c->password);
    free(c->ca_file);
    curl_slist_free_all(c->headers);
    free(c);
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
static struct tconf *tconf_new(const struct suki_transport_conf *src)
{
    struct tconf *c;
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
        tconf_unref(c);
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
    struct transport *t = arg;
    (void)fd;
    (void)what;
    kick(t->d);
}

static struct transport *transport_find(const struct suki_dispatch *d,
                                        const char *name)
{
    struct transport *t;
    TAILQ_FOREACH (t, &d->transports, link) {
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

static void set_breaker_metric(struct transport *t)
{
    struct suki_channel_metrics *m = suki_metrics_channel(t->name);
    if (m)
        m->breaker_open = t->breaker != SUKI_BREAKER_CLOSED;
}

static struct transport *transport_new(struct suki_dispatch *d, struct tconf *c)
{
    struct transport *t = suki_calloc(1, sizeof(*t));

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

static void transport_free(struct transport *t)
{
    TAILQ_REMOVE(&t->d->transports, t, link);
    event_free(t->wake);
    tconf_unref(t->conf);
    free(t->name);
    free(t);
}

static void arm_timer(struct event *ev, int64_t ms)
{
    struct timeval tv;
    if (ms < 0)
        ms = 0;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    evtimer_add(ev, &tv);
}

static void breaker_open(struct transport *t, const char *reply)
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
static void account(struct transport *t, const struct xfer *x,
                    enum suki_dispatch_status st, const char *reply)
{
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
/* xfer lifetime                                                       */

static CURL *easy_get(struct suki_dispatch *d)
{
    if (d->n_pool > 0)
        return d->pool[--d->n_pool];
    return curl_easy_init();
}

static void easy_put(struct suki_dispatch *d, CURL *e)
{
    if (!e)
        return;
    if (d->n_pool < EASY_POOL_MAX && !d->closing) {
        curl_easy_reset(e);
        d->pool[d->n_pool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

static void xfer_free(struct xfer *x)
{
    x->t->nxfers--;
    easy_put(x->d, x->easy);
    tconf_unref(x->conf);
    free(x->message_id);
    free(x->from);
    for (size_t i = 0; i < x->n_rcpt; i++) {
        free(x->rcpt[i]);
        if (x->rcpt_reply)
            free(x->rcpt_reply[i]);
    }
    free(x->rcpt);
    free(x->rcpt_reply);
    free(x->rcpt_code);
    curl_slist_free_all(x->rcpt_list);
    free(x->body);
    free(x->pre_reply);
    free(x);
}

/* The end of every xfer: x is on no list. Bookkeeping first, then the
 * callback, then free; t is not touched after the callback except through
 * xfer_free's nxfers-- (t cannot go away while nxfers > 0). */
static void complete(struct xfer *x, struct suki_dispatch_result *r)
{
    struct transport *t = x->t;
    struct suki_dispatch *d = x->d;

    if (x->in_slot) {
        t->in_flight--;
        x->in_slot = false;
    }
    if (x->probe)
        t->probe_out = false;
    if (r->cancelled) {
        /* no effect on counters or the breaker */
    } else if (x->local) {
        if (r->status == SUKI_DISPATCH_PERMFAIL)
            t->permfail++;
        else if (r->status == SUKI_DISPATCH_TEMPFAIL)
            t->tempfail++;
    } else {
        account(t, x, r->status, r->reply);
    }
    r->channel = t->name;
    r->message_id = x->message_id;
    d->pending--;
    x->cb(r, x->arg);
    xfer_free(x);
}

/* Build per-recipient entries in rc (caller-provided, n_rcpt long) from the
 * trace, fix up the overall status, and point r at them. */
static void smtp_rcpts(struct xfer *x, struct suki_dispatch_result *r,
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

/* Report a result decided without (more) network: cancelled, local, or a
 * spool outcome. */
static void complete_simple(struct xfer *x, enum suki_dispatch_status st,
                            const char *reply, bool cancelled)
{
    struct suki_dispatch_result r;
    struct suki_dispatch_rcpt *rc = NULL;

    memset(&r, 0, sizeof(r));
    r.status = st;
    r.reply = reply ? reply : "";
    r.cancelled = cancelled;
    if (x->n_rcpt > 0 && x->t->conf->kind == SUKI_TRANSPORT_SMTP) {
        rc = suki_calloc(x->n_rcpt, sizeof(*rc));
        smtp_rcpts(x, &r, rc);
    }
    complete(x, &r);
    free(rc);
}

static void defer_arm(struct suki_dispatch *d)
{
    arm_timer(d->defer, 0);
}

/* Finish x later from the loop with a locally decided result. */
static void defer_local(struct xfer *x, enum suki_dispatch_status st,
                        const char *reply)
{
    x->local = true;
    x->pre_status = st;
    free(x->pre_reply);
    x->pre_reply = suki_strdup(reply);
    x->state = X_DEFERRED;
    TAILQ_INSERT_TAIL(&x->d->deferred, x, link);
    defer_arm(x->d);
}

/* ------------------------------------------------------------------ */
/* spool transport                                                     */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write x's message as DIR/<name>.eml: temporary file created with O_EXCL,
 * fsync, rename over any earlier copy (a retry replaces, never duplicates),
 * fsync the directory. Synchronous I/O on the loop: the files are small and
 * this runs from the zero-timeout defer event, never inside send(). */
static void spool_deliver(struct xfer *x)
{
    const char *dir = x->conf->spool_dir;
    char name[SPOOL_NAME_MAX];
    char *tmp = NULL, *final = NULL, *reply = NULL;
    enum suki_dispatch_status st = SUKI_DISPATCH_TEMPFAIL;
    int fd = -1, rc;

    if (suki_dispatch_spool_name(x->message_id, name, sizeof(name)) != 0) {
        complete_simple(x, SUKI_DISPATCH_PERMFAIL,
                        "spool: message has no usable Message-ID", false);
        return;
    }
    tmp = suki_asprintf("%s/tmp-%ld-%llu-%016llx", dir, (long)getpid(),
                        (unsigned long long)++x->d->seq,
                        (unsigned long long)suki_rand64());
    final = suki_asprintf("%s/%s", dir, name);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        reply = suki_asprintf("spool: create %s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = write_all(fd, x->body, x->body_len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    fd = -1;
    if (rc != 0) {
        reply = suki_asprintf("spool: write %s: %s", tmp, strerror(-rc));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, final) != 0) {
        reply =
            suki_asprintf("spool: rename to %s: %s", final, strerror(errno));
        unlink(tmp);
        goto out;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        /* the file is in place; only its durability is in doubt */
        reply = suki_asprintf("spool: fsync %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    close(fd);
    st = SUKI_DISPATCH_SENT;
    reply = suki_asprintf("spooled %s", final);
out:
    complete_simple(x, st, reply, false);
    free(reply);
    free(tmp);
    free(final);
}

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct suki_dispatch *d = arg;
    struct xq batch;
    struct xfer *x;

    (void)fd;
    (void)what;
    /* take the current batch: xfers deferred by callbacks wait for the next
     * round, so this loop always ends */
    TAILQ_INIT(&batch);
    TAILQ_CONCAT(&batch, &d->deferred, link);
    while ((x = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, x, link);
        if (x->local)
            complete_simple(x, x->pre_status, x->pre_reply, false);
        else
            spool_deliver(x);
    }
    kick(d);
}

/* ------------------------------------------------------------------ */
/* SMTP transport                                                      */

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    struct xfer *x = userp;
    size_t n = size * nitems;
    size_t left = x->body_len - x->body_off;

    if (n > left)
        n = left;
    memcpy(buf, x->body + x->body_off, n);
    x->body_off += n;
    return n;
}

/* curl may rewind when it retries on a reused connection that died. */
static int seek_cb(void *userp, curl_off_t offset, int origin)
{
    struct xfer *x = userp;

    if (origin != SEEK_SET || offset < 0 || (size_t)offset > x->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    x->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static bool cmd_is(const char *s, size_t n, const char *verb)
{
    size_t vl = strlen(verb);
    return n >= vl && strncasecmp(s, verb, vl) == 0;
}

/* Follow the SMTP dialogue: commands out (CURLINFO_HEADER_OUT) tell which
 * command the next reply (CURLINFO_HEADER_IN, one line per call) answers.
 * curl sends RCPT TO one at a time in list order, so the n-th RCPT reply
 * belongs to the n-th recipient. AUTH lines are looked at for their verb
 * only and never stored. */
static int smtp_debug_cb(CURL *e, curl_infotype type, char *data, size_t size,
                         void *userp)
{
    struct xfer *x = userp;
    (void)e;

    if (type == CURLINFO_HEADER_OUT) {
        if (cmd_is(data, size, "MAIL FROM"))
            x->stage = SUKI_SMTP_MAIL;
        else if (cmd_is(data, size, "RCPT TO")) {
            x->stage = SUKI_SMTP_RCPT;
            x->cur_rcpt = x->rcpt_sent++;
        } else if (cmd_is(data, size, "DATA"))
            x->stage = SUKI_SMTP_DATA;
        else if (cmd_is(data, size, "EHLO") || cmd_is(data, size, "HELO"))
            x->stage = SUKI_SMTP_EHLO;
        else if (cmd_is(data, size, "STARTTLS"))
            x->stage = SUKI_SMTP_STARTTLS;
        else if (cmd_is(data, size, "AUTH"))
            x->stage = SUKI_SMTP_AUTH;
        else if (cmd_is(data, size, "QUIT"))
            x->stage = SUKI_SMTP_OTHER;
        /* else: an AUTH continuation; keep the stage */
        return 0;
    }
    if (type != CURLINFO_HEADER_IN)
        return 0;
    /* "250-..." continues a multi-line reply; the final line decides */
    if (size < 3 || !isdigit((unsigned char)data[0]) ||
        !isdigit((unsigned char)data[1]) || !isdigit((unsigned char)data[2]))
        return 0;
    if (size > 3 && data[3] == '-')
        return 0;
    int code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
    if (x->stage == SUKI_SMTP_OTHER)
        return 0; /* QUIT while closing: keep the reply that mattered */
    x->last_code = code;
    x->last_stage = x->stage;
    copy_clean(x->last_reply, sizeof(x->last_reply), data, size);
    if (x->stage == SUKI_SMTP_RCPT && x->cur_rcpt < x->n_rcpt) {
        x->rcpt_code[x->cur_rcpt] = code;
        free(x->rcpt_reply[x->cur_rcpt]);
        x->rcpt_reply[x->cur_rcpt] = suki_strdup(x->last_reply);
    }
    if (x->stage == SUKI_SMTP_DATA && code == 354)
        x->stage = SUKI_SMTP_EOD;
    return 0;
}

#define SETOPT(e, opt, val)                                                    \
    do {                                                                       \
        if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)                   \
            bad = #opt;                                                        \
    } while (0)

static const char *setup_tls(CURL *e, const struct tconf *c)
{
    const char *bad = NULL;
    if (c->ca_file)
        SETOPT(e, CURLOPT_CAINFO, c->ca_file);
    SETOPT(e, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
    SETOPT(e, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
    return bad;
}

static const char *setup_smtp(struct xfer *x, CURL *e)
{
    const struct tconf *c = x->conf;
    const char *bad = NULL;
    long usessl = CURLUSESSL_ALL;

    if (c->starttls == SUKI_STARTTLS_TRY)
        usessl = CURLUSESSL_TRY;
    else if (c->starttls == SUKI_STARTTLS_OFF)
        usessl = CURLUSESSL_NONE;
    SETOPT(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    SETOPT(e, CURLOPT_USE_SSL, usessl);
    if (c->username)
        SETOPT(e, CURLOPT_USERNAME, c->username);
    if (c->password)
        SETOPT(e, CURLOPT_PASSWORD, c->password);
    SETOPT(e, CURLOPT_SASL_IR, 1L);
    const char *tbad = setup_tls(e, c);
    if (tbad)
        bad = tbad;
    SETOPT(e, CURLOPT_MAIL_FROM, x->from);
    SETOPT(e, CURLOPT_MAIL_RCPT, x->rcpt_list);
    /* a 5xx for one recipient must not fail (or resend to) the others */
    SETOPT(e, SUKI_CURLOPT_RCPT_ALLOWFAILS, 1L);
    SETOPT(e, CURLOPT_UPLOAD, 1L);
    SETOPT(e, CURLOPT_READFUNCTION, read_cb);
    SETOPT(e, CURLOPT_READDATA, x);
    SETOPT(e, CURLOPT_SEEKFUNCTION, seek_cb);
    SETOPT(e, CURLOPT_SEEKDATA, x);
    SETOPT(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_len);
    SETOPT(e, CURLOPT_DEBUGFUNCTION, smtp_debug_cb);
    SETOPT(e, CURLOPT_DEBUGDATA, x);
    SETOPT(e, CURLOPT_VERBOSE, 1L);
    return bad;
}

static void smtp_finish(struct xfer *x, CURLcode cc)
{
    struct suki_dispatch_result r;
    struct suki_dispatch_rcpt *rc;
    char reply[REPLY_MAX + 160];
    const char *err = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
    long rcode = 0;

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &rcode);
    memset(&r, 0, sizeof(r));
    r.code = x->last_code ? x->last_code : (int)rcode;
    r.status = suki_dispatch_classify_smtp(cc, r.code, x->last_stage);
    /* With RCPT failures allowed, curl stops at RCPT only when every
     * recipient was refused (smtp_rcpts decides); anything else ending
     * there is a broken connection. */
    if (cc != CURLE_OK && x->last_stage == SUKI_SMTP_RCPT)
        r.status = SUKI_DISPATCH_TEMPFAIL;
    if (cc == CURLE_OK || r.code >= 400) {
        snprintf(reply, sizeof(reply), "%s", x->last_reply);
    } else if (cc == CURLE_USE_SSL_FAILED) {
        snprintf(reply, sizeof(reply),
                 "TLS required (starttls = required) but the server does not "
                 "offer STARTTLS; nothing was sent: %s",
                 err);
    } else if (suki_dispatch_curl_is_tls(cc)) {
        snprintf(reply, sizeof(reply),
                 "TLS failure, nothing was sent (check ca_file, tls_verify "
                 "and the server certificate of transport %s): %s",
                 x->conf->name, err);
    } else {
        snprintf(reply, sizeof(reply), "%s", err);
    }
    if (cc != CURLE_OK)
        r.code = r.code >= 400 ? r.code : 0;
    r.reply = reply;
    rc = suki_calloc(x->n_rcpt, sizeof(*rc));
    smtp_rcpts(x, &r, rc);
    complete(x, &r);
    free(rc);
}

/* ------------------------------------------------------------------ */
/* HTTP transport                                                      */

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    size_t room = HTTP_BODY_KEEP - x->http_body_len;
    size_t k = n < room ? n : room;

    memcpy(x->http_body + x->http_body_len, ptr, k);
    x->http_body_len += k;
    x->http_body[x->http_body_len] = '\0';
    return n;
}

static size_t http_header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    static const char ra[] = "retry-after:";

    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue, say) starts over */
        x->retry_after[0] = '\0';
        x->http_body_len = 0;
        x->http_body[0] = '\0';
    } else if (n > sizeof(ra) - 1 &&
               strncasecmp(ptr, ra, sizeof(ra) - 1) == 0) {
        copy_clean(x->retry_after, sizeof(x->retry_after), ptr + sizeof(ra) - 1,
                   n - (sizeof(ra) - 1));
    }
    return n;
}

static const char *setup_http(struct xfer *x, CURL *e)
{
    const struct tconf *c = x->conf;
    const char *bad = NULL;

    SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(e, CURLOPT_POST, 1L);
    SETOPT(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
    SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
    SETOPT(e, CURLOPT_HTTPHEADER, c->headers);
    SETOPT(e, CURLOPT_WRITEFUNCTION, http_write_cb);
    SETOPT(e, CURLOPT_WRITEDATA, x);
    SETOPT(e, CURLOPT_HEADERFUNCTION, http_header_cb);
    SETOPT(e, CURLOPT_HEADERDATA, x);
    SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (c->username) {
        SETOPT(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(e, CURLOPT_USERNAME, c->username);
        if (c->password)
            SETOPT(e, CURLOPT_PASSWORD, c->password);
    }
    const char *tbad = setup_tls(e, c);
    if (tbad)
        bad = tbad;
    return bad;
}

static void http_finish(struct xfer *x, CURLcode cc)
{
    struct suki_dispatch_result r;
    char reply[REPLY_MAX + 160];
    char body[HTTP_BODY_KEEP + 1];
    long status = 0;
    const char *err = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);

    memset(&r, 0, sizeof(r));
    if (cc == CURLE_OK)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    r.status = suki_dispatch_classify_http(cc, status);
    if (cc == CURLE_OK) {
        r.code = (int)status;
        copy_clean(body, sizeof(body), x->http_body, x->http_body_len);
        if (body[0])
            snprintf(reply, sizeof(reply), "HTTP %ld: %s", status, body);
        else
            snprintf(reply, sizeof(reply), "HTTP %ld", status);
        if ((status == 429 || status == 503) && x->retry_after[0]) {
            int64_t ms;
            if (suki_dispatch_parse_retry_after(x->retry_after, suki_now_ms(),
                                                &ms) == 0)
                r.retry_after_ms = ms;
        }
    } else if (suki_dispatch_curl_is_tls(cc)) {
        snprintf(reply, sizeof(reply),
                 "TLS failure, nothing was sent (check ca_file, tls_verify "
                 "and the server certificate of transport %s): %s",
                 x->conf->name, err);
    } else {
        snprintf(reply, sizeof(reply), "%s", err);
    }
    r.reply = reply;
    complete(x, &r);
}

/* ------------------------------------------------------------------ */
/* socket bookkeeping                                                  */

/* libcurl's sockets are tracked so that suki_dispatch_free can bound its
 * wait (see there). The callbacks live in each connection, which may outlive
 * its easy handle, so their data is d itself. */
static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *a)
{
    struct suki_dispatch *d = clientp;
    int fd;
    (void)purpose;

    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    if (d->n_fds == d->cap_fds) {
        d->cap_fds = d->cap_fds ? d->cap_fds * 2 : 16;
        d->fds = suki_realloc(d->fds, d->cap_fds * sizeof(*d->fds));
    }
    d->fds[d->n_fds++] = fd;
    return fd;
}

static int close_socket_cb(void *clientp, curl_socket_t fd)
{
    struct suki_dispatch *d = clientp;

    for (size_t i = 0; i < d->n_fds; i++) {
        if (d->fds[i] == fd) {
            d->fds[i] = d->fds[--d->n_fds];
            break;
        }
    }
    return close(fd);
}

/* libcurl 7.88 puts an SMTP connection back into its cache even after a
 * "server response timeout", and the next message then reads the late
 * reply to the old one as the answer to its MAIL FROM. So after any failed
 * transfer, kill the connection it used: shutdown() leaves the descriptor
 * to libcurl, whose liveness check then sees EOF and never reuses it. Call
 * before curl_multi_remove_handle (ACTIVESOCKET needs the multi handle). */
static void kill_connection(CURL *e)
{
    curl_socket_t s = CURL_SOCKET_BAD;

    if (curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &s) == CURLE_OK &&
        s != CURL_SOCKET_BAD)
        shutdown(s, SHUT_RDWR);
}

/* ------------------------------------------------------------------ */
/* starting transfers                                                  */

static void start(struct transport *t, struct xfer *x)
{
    struct suki_dispatch *d = t->d;
    const char *bad = NULL;
    CURL *e;

    t->queued--;
    t->in_flight++;
    x->in_slot = true;
    tconf_unref(x->conf);
    x->conf = tconf_ref(t->conf);
    if (x->conf->kind == SUKI_TRANSPORT_SPOOL) {
        x->state = X_DEFERRED;
        TAILQ_INSERT_TAIL(&d->deferred, x, link);
        defer_arm(d);
        return;
    }
    e = easy_get(d);
    if (!e) {
        defer_local(x, SUKI_DISPATCH_TEMPFAIL, "curl_easy_init failed");
        return;
    }
    x->easy = e;
    x->errbuf[0] = '\0';
    SETOPT(e, CURLOPT_PRIVATE, (void *)x);
    SETOPT(e, CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    SETOPT(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    SETOPT(e, CURLOPT_OPENSOCKETDATA, d);
    SETOPT(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    SETOPT(e, CURLOPT_CLOSESOCKETDATA, d);
    SETOPT(e, CURLOPT_TIMEOUT_MS, (long)x->conf->timeout_ms);
    SETOPT(e, CURLOPT_URL, x->conf->url);
    const char *kbad = x->conf->kind == SUKI_TRANSPORT_SMTP ? setup_smtp(x, e)
                                                            : setup_http(x, e);
    if (kbad)
        bad = kbad;
    if (bad) {
        char *msg = suki_asprintf("curl option %s not supported", bad);
        defer_local(x, SUKI_DISPATCH_TEMPFAIL, msg);
        free(msg);
        return;
    }
    x->state = X_RUNNING;
    TAILQ_INSERT_TAIL(&d->running, x, link);
    CURLMcode mc = curl_multi_add_handle(d->multi, e);
    if (mc != CURLM_OK) {
        TAILQ_REMOVE(&d->running, x, link);
        char *msg =
            suki_asprintf("curl_multi_add_handle: %s", curl_multi_strerror(mc));
        defer_local(x, SUKI_DISPATCH_TEMPFAIL, msg);
        free(msg);
    }
}

#undef SETOPT

/* Start what t's limits allow. Never calls a callback. */
static void pump(struct transport *t)
{
    int64_t now;

    if (t->d->closing || t->queued == 0)
        return;
    now = suki_mono_ms();
    if (t->breaker == SUKI_BREAKER_OPEN) {
        if (now < t->open_until) {
            arm_timer(t->wake, t->open_until - now);
            return;
        }
        t->breaker = SUKI_BREAKER_HALF_OPEN;
    }
    while (t->queued > 0 && t->in_flight < (size_t)t->conf->max_connections) {
        struct xfer *x;
        if (t->breaker == SUKI_BREAKER_HALF_OPEN && t->probe_out)
            return;
        if (!suki_dispatch_bucket_take(&t->bucket, now)) {
            arm_timer(t->wake, suki_dispatch_bucket_wait_ms(&t->bucket, now));
            return;
        }
        x = TAILQ_FIRST(&t->q[0]);
        if (x)
            TAILQ_REMOVE(&t->q[0], x, link);
        else {
            x = TAILQ_FIRST(&t->q[1]);
            TAILQ_REMOVE(&t->q[1], x, link);
        }
        if (t->breaker == SUKI_BREAKER_HALF_OPEN) {
            x->probe = true;
            t->probe_out = true;
        }
        start(t, x);
    }
}

static void kick(struct suki_dispatch *d)
{
    struct transport *t, *next;

    TAILQ_FOREACH (t, &d->transports, link) {
        pump(t);
    }
    for (t = TAILQ_FIRST(&d->transports); t; t = next) {
        next = TAILQ_NEXT(t, link);
        if (t->retired && t->nxfers == 0)
            transport_free(t);
    }
}

/* ------------------------------------------------------------------ */
/* curl multi glue (hiperfifo)                                         */

static void drain(struct suki_dispatch *d)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode cc = msg->data.result;
        char *priv = NULL;
        struct xfer *x;

        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        x = (struct xfer *)(void *)priv;
        if (cc != CURLE_OK && x->conf->kind == SUKI_TRANSPORT_SMTP)
            kill_connection(e); /* not HTTP: an h2 connection is shared */
        curl_multi_remove_handle(d->multi, e);
        TAILQ_REMOVE(&d->running, x, link);
        if (x->conf->kind == SUKI_TRANSPORT_SMTP)
            smtp_finish(x, cc);
        else
            http_finish(x, cc);
    }
}

static void sock_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct sockinfo *si = arg;
    struct suki_dispatch *d = si->d;
    int action = 0, running = 0;

    if (kind & EV_READ)
        action |= CURL_CSELECT_IN;
    if (kind & EV_WRITE)
        action |= CURL_CSELECT_OUT;
    /* si may be freed inside (CURL_POLL_REMOVE); do not touch it after */
    curl_multi_socket_action(d->multi, fd, action, &running);
    drain(d);
    kick(d);
}

static void timer_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct suki_dispatch *d = arg;
    int running = 0;
    (void)fd;
    (void)kind;
    curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(d);
    kick(d);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arm or delete the evtimer. */
static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct suki_dispatch *d = userp;
    (void)multi;
    if (timeout_ms < 0)
        evtimer_del(d->timer);
    else
        arm_timer(d->timer, timeout_ms);
    return 0;
}

static void sock_free(struct sockinfo *si)
{
    LIST_REMOVE(si, link);
    if (si->ev)
        event_free(si->ev);
    free(si);
}

/* CURLMOPT_SOCKETFUNCTION: keep one persistent event per socket watching
 * what curl asks for. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
    struct suki_dispatch *d = userp;
    struct sockinfo *si = sockp;
    short kind;
    (void)e;

    if (what == CURL_POLL_REMOVE) {
        if (si)
            sock_free(si);
        return 0;
    }
    kind = EV_PERSIST;
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (!si) {
        si = suki_calloc(1, sizeof(*si));
        si->d = d;
        si->fd = s;
        LIST_INSERT_HEAD(&d->socks, si, link);
        curl_multi_assign(d->multi, s, si);
    }
    if (si->ev) {
        event_del(si->ev);
        if (event_assign(si->ev, d->base, s, kind, sock_event_cb, si) != 0)
            return -1;
    } else {
        si->ev = event_new(d->base, s, kind, sock_event_cb, si);
        if (!si->ev)
            return -1;
    }
    if (event_add(si->ev, NULL) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* public API                                                          */

struct suki_dispatch *suki_dispatch_new(struct event_base *base,
                                        struct suki_err *err)
{
    struct suki_dispatch *d;

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
    d->max_pending = DEFAULT_MAX_PENDING;
    TAILQ_INIT(&d->transports);
    TAILQ_INIT(&d->running);
    TAILQ_INIT(&d->deferred);
    LIST_INIT(&d->socks);
    d->multi = curl_multi_init();
    d->timer = evtimer_new(base, timer_cb, d);
    d->defer = evtimer_new(base, defer_cb, d);
    if (!d->multi || !d->timer || !d->defer) {
        suki_err_set(err, -ENOMEM,
                     "dispatch: cannot create curl multi "
                     "handle or timers");
        goto fail;
    }
    if (curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, sock_cb) ||
        curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d) ||
        curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb) ||
        curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d)) {
        suki_err_set(err, -EINVAL, "dispatch: curl_multi_setopt failed");
        goto fail;
    }
    return d;
fail:
    if (d->multi)
        curl_multi_cleanup(d->multi);
    if (d->timer)
        event_free(d->timer);
    if (d->defer)
        event_free(d->defer);
    free(d);
    curl_global_cleanup();
    return NULL;
}

void suki_dispatch_free(struct suki_dispatch *d)
{
    struct transport *t;
    struct xfer *x;
    struct sockinfo *si;
    static const char cancelled[] = "cancelled: dispatcher shut down";

    if (!d)
        return;
    d->closing = true;
    evtimer_del(d->defer);
    evtimer_del(d->timer);
    while ((x = TAILQ_FIRST(&d->running)) != NULL) {
        TAILQ_REMOVE(&d->running, x, link);
        curl_multi_remove_handle(d->multi, x->easy);
        complete_simple(x, SUKI_DISPATCH_TEMPFAIL, cancelled, true);
    }
    while ((x = TAILQ_FIRST(&d->deferred)) != NULL) {
        TAILQ_REMOVE(&d->deferred, x, link);
        if (x->local)
            complete_simple(x, x->pre_status, x->pre_reply, false);
        else
            complete_simple(x, SUKI_DISPATCH_TEMPFAIL, cancelled, true);
    }
    TAILQ_FOREACH (t, &d->transports, link) {
        for (int p = 0; p < 2; p++) {
            while ((x = TAILQ_FIRST(&t->q[p])) != NULL) {
                TAILQ_REMOVE(&t->q[p], x, link);
                t->queued--;
                complete_simple(x, SUKI_DISPATCH_TEMPFAIL, cancelled, true);
            }
        }
    }
    /* curl_multi_cleanup closes the cached connections; for SMTP it sends
     * QUIT and then blocks waiting for the reply, for as long as a hung
     * server likes. Shutting down the read side first keeps the QUIT but
     * makes that wait end at once (the read sees EOF). */
    for (size_t i = 0; i < d->n_fds; i++)
        shutdown(d->fds[i], SHUT_RD);
    curl_multi_cleanup(d->multi); /* may call sock_cb */
    while ((si = LIST_FIRST(&d->socks)) != NULL)
        sock_free(si);
    while ((t = TAILQ_FIRST(&d->transports)) != NULL) {
        evtimer_del(t->wake);
        transport_free(t);
    }
    for (size_t i = 0; i < d->n_pool; i++)
        curl_easy_cleanup(d->pool[i]);
    event_free(d->timer);
    event_free(d->defer);
    free(d->fds);
    free(d);
    curl_global_cleanup();
}

int suki_dispatch_configure(struct suki_dispatch *d,
                            const struct suki_transport_conf *transports,
                            size_t n)
{
    struct tconf **c;
    struct transport *t;
    long total = 0;

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
                tconf_unref(c[j]);
            free(c);
            return -EINVAL;
        }
    }
    TAILQ_FOREACH (t, &d->transports, link) {
        t->seen = false;
    }
    for (size_t i = 0; i < n; i++) {
        t = transport_find(d, c[i]->name);
        if (t) {
            tconf_unref(t->conf);
            t->conf = c[i];
            t->retired = false;
            suki_dispatch_bucket_set_rate(&t->bucket, c[i]->rate,
                                          suki_mono_ms());
        } else {
            t = transport_new(d, c[i]);
        }
        t->seen = true;
        total += c[i]->max_connections;
    }
    free(c);
    TAILQ_FOREACH (t, &d->transports, link) {
        if (!t->seen)
            t->retired = true;
        else if (t->conf->breaker_failures <= 0 &&
                 t->breaker != SUKI_BREAKER_CLOSED) {
            t->breaker = SUKI_BREAKER_CLOSED;
            set_breaker_metric(t);
        }
    }
    /* idle connections kept for reuse: every transport's worth */
    curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, total > 4 ? total : 4L);
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

int suki_dispatch_send(struct suki_dispatch *d, const struct suki_outmsg *m,
                       suki_dispatch_cb cb, void *arg)
{
    struct transport *t;
    struct xfer *x;
    const char *why = NULL, *bad_addr = NULL;
    char name[SPOOL_NAME_MAX];

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
    x->d = d;
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
        copy_clean(clean, sizeof(clean), bad_addr, strlen(bad_addr));
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
    const struct transport *t;

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
