/* agent.c - the delivery agent (see agent.h): sukid's side (proxy lanes,
 * start, loss and restart of the agent) and the agent's side (real lanes,
 * sent markers, finishing up after sukid is gone).
 *
 * Channel: a SOCK_STREAM socketpair carrying frames: u32 length of what
 * follows, u8 type, then fields (u64 numbers, strings as u32 length + bytes
 * with 0xffffffff for NULL), all in host order: both ends are the same
 * binary on the same host. sukid to agent: C (settings), U (forget
 * settings), L (new lane), P (a message for a lane), S (stop a lane). Agent
 * to sukid: R (a message's outcome), X (a lane has exited). */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "agent.h"
#include "agent_frame.h"
#include "dispatch_thread.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"

#define FRAME_MAX (256u << 20) /* a sanity bound, far above any message */
#define NULL_STR 0xffffffffu
#define JOIN_WAIT_MS 5000     /* shutdown: how long a lane's return may take */
#define RESPAWN_DELAY_MS 1000 /* between agents that die at once */
#define ORPHAN_SLACK_MS 5000  /* beyond the longest transfer timeout */
#define MAX_ZOMBIES 16
#define MARK_DELAY_MS 2

enum {
    F_CONF = 'C',
    F_UNCONF = 'U',
    F_LANE = 'L',
    F_POST = 'P',
    F_STOP = 'S',
    F_REDIS = 'D',
    F_RESULT = 'R',
    F_EXITED = 'X',
};

/* ------------------------------------------------------------------ */
/* frames                                                              */

static void w_begin(struct suki_buf *b, char type)
{
    uint32_t z = 0;
    b->len = 0;
    suki_buf_add(b, &z, sizeof(z));
    suki_buf_add(b, &type, 1);
}

static void w_u64(struct suki_buf *b, uint64_t v)
{
    suki_buf_add(b, &v, sizeof(v));
}

static void w_mem(struct suki_buf *b, const char *s, size_t n)
{
    uint32_t len = s ? (uint32_t)n : NULL_STR;
    suki_buf_add(b, &len, sizeof(len));
    if (s && n)
        suki_buf_add(b, s, n);
}

static void w_str(struct suki_buf *b, const char *s)
{
    w_mem(b, s, s ? strlen(s) : 0);
}

static void w_end(struct suki_buf *b, struct bufferevent *bev)
{
    uint32_t n = (uint32_t)(b->len - sizeof(n));
    memcpy(b->p, &n, sizeof(n));
    /* Only out of memory fails it; a frame lost here would pin its message
     * for good, so it ends the process as every failed allocation does. */
    if (bufferevent_write(bev, b->p, b->len) != 0) {
        suki_log_write(LOG_CRIT,
                       "delivery agent channel: out of memory "
                       "queueing a %zu-byte frame",
                       b->len);
        abort();
    }
}

static uint64_t r_u64(struct suki_frame_rd *r)
{
    uint64_t v = 0;
    if (r->n < sizeof(v)) {
        r->bad = true;
        return 0;
    }
    memcpy(&v, r->p, sizeof(v));
    r->p += sizeof(v);
    r->n -= sizeof(v);
    return v;
}

/* Owned copy (NUL-terminated, NULL for a NULL string); *len its length. */
static char *r_str(struct suki_frame_rd *r, size_t *len)
{
    uint32_t n;
    char *s;
    if (r->n < sizeof(n)) {
        r->bad = true;
        return NULL;
    }
    memcpy(&n, r->p, sizeof(n));
    r->p += sizeof(n);
    r->n -= sizeof(n);
    if (len)
        *len = 0;
    if (n == NULL_STR)
        return NULL;
    if (n > r->n) {
        r->bad = true;
        return NULL;
    }
    s = suki_malloc((size_t)n + 1);
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    r->n -= n;
    if (len)
        *len = n;
    return s;
}

/* See agent_frame.h. */
int suki_frame_split(const char *p, size_t have, char *type,
                     struct suki_frame_rd *r, size_t *whole)
{
    uint32_t n;
    if (have < sizeof(n))
        return 0;
    memcpy(&n, p, sizeof(n));
    if (n < 1 || n > FRAME_MAX)
        return -1;
    if (have < sizeof(n) + n)
        return 0;
    *type = p[sizeof(n)];
    r->p = p + sizeof(n) + 1;
    r->n = n - 1;
    r->bad = false;
    *whole = sizeof(n) + n;
    return 1;
}

/* Take the next whole frame off in: *type and a reader over its fields
 * (valid until the drain). 1 = one, 0 = not all there yet, -1 = garbage.
 * Only a whole frame is pulled up into one piece. */
static int frame_next(struct evbuffer *in, char *type, struct suki_frame_rd *r,
                      size_t *whole)
{
    uint32_t n;
    size_t have = evbuffer_get_length(in);
    if (have < sizeof(n))
        return 0;
    evbuffer_copyout(in, &n, sizeof(n));
    if (n < 1 || n > FRAME_MAX)
        return -1;
    if (have < sizeof(n) + n)
        return 0;
    const char *p = (const char *)evbuffer_pullup(in, (ssize_t)(sizeof(n) + n));
    return suki_frame_split(p, sizeof(n) + n, type, r, whole);
}

/* See agent_frame.h. */
bool suki_frame_result_decode(struct suki_frame_rd *r,
                              struct suki_frame_result *res)
{
    memset(res, 0, sizeof(*res));
    res->lane_id = r_u64(r);
    res->token = r_u64(r);
    res->st = (int)r_u64(r);
    res->code = (int)(int64_t)r_u64(r);
    res->reply = r_str(r, NULL);
    res->retry_after = (int64_t)r_u64(r);
    res->cancelled = r_u64(r) != 0;
    res->local = r_u64(r) != 0;
    res->rcpt_sent = (size_t)r_u64(r);
    res->n = r_u64(r);
    if (res->n > r->n / 12) /* each takes at least a code and a length */
        r->bad = true;
    /* A garbled count is no size to allocate (up to 2^64 - 1, or 0 once
     * one is added): sukid would abort instead of replacing the agent. */
    if (r->bad)
        res->n = 0;
    res->codes = suki_calloc(res->n + 1, sizeof(*res->codes));
    res->replies = suki_calloc(res->n + 1, sizeof(*res->replies));
    for (uint64_t i = 0; i < res->n && !r->bad; i++) {
        res->codes[i] = (int)(int64_t)r_u64(r);
        res->replies[i] = r_str(r, NULL);
    }
    return !r->bad;
}

void suki_frame_result_clear(struct suki_frame_result *res)
{
    if (res->replies)
        for (uint64_t i = 0; i < res->n; i++)
            free(res->replies[i]);
    free(res->replies);
    free(res->codes);
    free(res->reply);
    memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------------ */
/* the agent's side                                                    */

struct alane {
    LIST_ENTRY(alane) link;
    uint64_t id;    /* sukid's id for it */
    struct lane *l; /* NULL: no thread could be started (yet) */
    char why[128];  /* then: why */
    bool gone;      /* scratch: seen exited */
};

struct aconf {
    LIST_ENTRY(aconf) link;
    uint64_t id;
    struct tconf *c; /* the table's reference */
};

struct marker {
    struct marker *next;
    struct child *ch;
    char *key;
    int64_t ttl_s;
    bool warned; /* a refusal of it was logged */
};

struct child {
    struct event_base *base;
    struct bufferevent *bev; /* NULL once sukid is gone */
    struct hub hub;
    struct event *results;
    struct event *tick;    /* markers to retry, the orphan deadline */
    struct event *mark_ev; /* the tick's work, 2 ms after a marker */
    struct suki_redis *redis;
    struct suki_conf *rconf; /* owned, from a D frame, or NULL (the copy
                                of sukid's at the fork) */
    LIST_HEAD(, alane) lanes;
    LIST_HEAD(, aconf) confs;
    struct suki_buf out;    /* frame being built */
    size_t held;            /* messages taken and not finished */
    struct marker *retry;   /* markers waiting for Redis */
    size_t marking;         /* marker SETs awaiting their answer */
    int64_t deadline_ms;    /* orphan: give up at (monotonic) */
    int64_t max_timeout_ms; /* the longest transport timeout seen */
};

static void child_maybe_exit(struct child *ch);
static void lane_start(struct child *ch, struct alane *al);
static void orphan_progress(struct child *ch);
static void marker_send(struct child *ch, struct marker *m);

static void on_marker(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct marker *m = arg;
    struct child *ch = m->ch;
    ch->marking--;
    if (!reply || suki_redis_error_is_temporary(reply)) {
        /* The link failed, or Redis refused for now (LOADING, OOM, READONLY
         * after a failover): again at the next tick. A marker given up
         * would let the message go out twice. */
        if (reply && !m->warned)
            suki_warnx("delivery agent: cannot set sent marker %s: %s "
                       "(retrying)",
                       m->key, reply->str);
        m->warned = m->warned || reply;
        m->next = ch->retry;
        ch->retry = m;
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR)
        suki_warnx("delivery agent: cannot set sent marker %s: %s", m->key,
                   reply->str);
    free(m->key);
    free(m);
    child_maybe_exit(ch);
}

static void marker_send(struct child *ch, struct marker *m)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, m->ttl_s > 0 ? m->ttl_s : 1);
    const char *argv[5] = {"SET", m->key, "1", "EX", ttl};
    if (suki_redis_argv(ch->redis, on_marker, m, 0, 5, argv, NULL) == 0) {
        ch->marking++;
        return;
    }
    m->next = ch->retry;
    ch->retry = m;
}

static void markers_retry(struct child *ch)
{
    struct marker *m = ch->retry, *next;
    ch->retry = NULL;
    for (; m; m = next) {
        next = m->next;
        m->next = NULL;
        marker_send(ch, m);
    }
}

/* True when the server took x for every recipient. */
static bool delivered(const struct xfer *x)
{
    if (x->res_status != SUKI_DISPATCH_SENT)
        return false;
    for (size_t i = 0; i < x->n_rcpt; i++)
        if (!x->rcpt_code || x->rcpt_code[i] < 200 || x->rcpt_code[i] > 299)
            return false;
    return true;
}

static void child_result(struct child *ch, uint64_t lane_id, struct xfer *x)
{
    if (x->sent_marker && delivered(x)) {
        struct marker *m = suki_calloc(1, sizeof(*m));
        m->ch = ch;
        m->key = x->sent_marker;
        m->ttl_s = x->sent_marker_ttl_s;
        x->sent_marker = NULL;
        /* Markers wait a moment and go out together: Redis then reads a
         * batch of SETs per wake-up instead of one. */
        m->next = ch->retry;
        ch->retry = m;
        if (!evtimer_pending(ch->mark_ev, NULL))
            suki_timer_ms(ch->mark_ev, MARK_DELAY_MS);
    }
    if (ch->bev) {
        struct suki_buf *b = &ch->out;
        w_begin(b, F_RESULT);
        w_u64(b, lane_id);
        w_u64(b, x->token);
        w_u64(b, (uint64_t)x->res_status);
        w_u64(b, (uint64_t)(int64_t)x->res_code);
        w_str(b, x->res_reply);
        w_u64(b, (uint64_t)x->res_retry_after_ms);
        w_u64(b, x->res_cancelled);
        w_u64(b, x->local);
        w_u64(b, x->rcpt_sent);
        w_u64(b, x->n_rcpt);
        for (size_t i = 0; i < x->n_rcpt; i++) {
            w_u64(b, (uint64_t)(int64_t)(x->rcpt_code ? x->rcpt_code[i] : 0));
            w_str(b, x->rcpt_reply ? x->rcpt_reply[i] : NULL);
        }
        w_end(b, ch->bev);
    }
    ch->held--;
    if (!ch->bev)
        orphan_progress(ch);
    suki_dispatch_tconf_unref(x->conf);
    suki_dispatch_xfer_clear(x);
    free(x);
}

static void child_exited(struct child *ch, uint64_t lane_id)
{
    if (!ch->bev)
        return;
    w_begin(&ch->out, F_EXITED);
    w_u64(&ch->out, lane_id);
    w_end(&ch->out, ch->bev);
}

/* What the real lanes gave back, and the lanes that exited. */
static void child_results_cb(evutil_socket_t fd, short what, void *arg)
{
    struct child *ch = arg;
    struct xq batch;
    struct xfer *x;
    struct alane *al, *next;
    (void)what;
    suki_dispatch_efd_drain(fd);
    /* A lane posts its last results before it says it exited: note the
     * exits first, so every result of those lanes is in the batch below and
     * goes out before their X. */
    LIST_FOREACH(al, &ch->lanes, link)
    {
        al->gone = al->l && suki_dispatch_lane_exited(al->l);
    }
    TAILQ_INIT(&batch);
    pthread_mutex_lock(&ch->hub.mu);
    TAILQ_CONCAT(&batch, &ch->hub.done, link);
    pthread_mutex_unlock(&ch->hub.mu);
    while ((x = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, x, link);
        /* the real lane's id is not sukid's; arg (a front field, unused
         * here) carries sukid's */
        child_result(ch, (uint64_t)(uintptr_t)x->arg, x);
    }
    for (al = LIST_FIRST(&ch->lanes); al; al = next) {
        next = LIST_NEXT(al, link);
        if (al->gone) {
            suki_dispatch_lane_join(al->l);
            child_exited(ch, al->id);
            LIST_REMOVE(al, link);
            free(al);
        }
    }
    child_maybe_exit(ch);
}

static struct alane *child_lane(struct child *ch, uint64_t id)
{
    struct alane *al;
    LIST_FOREACH(al, &ch->lanes, link)
    {
        if (al->id == id)
            return al;
    }
    return NULL;
}

static struct tconf *child_conf(struct child *ch, uint64_t id)
{
    struct aconf *ac;
    LIST_FOREACH(ac, &ch->confs, link)
    {
        if (ac->id == id)
            return ac->c;
    }
    return NULL;
}

static void child_frame_conf(struct child *ch, struct suki_frame_rd *r)
{
    struct aconf *ac = suki_calloc(1, sizeof(*ac));
    struct tconf *c = suki_calloc(1, sizeof(*c));
    c->refs = 1;
    ac->id = r_u64(r);
    ac->c = c;
    c->name = r_str(r, NULL);
    c->kind = (enum suki_transport_kind)r_u64(r);
    c->url = r_str(r, NULL);
    c->spool_dir = r_str(r, NULL);
    c->starttls = (enum suki_starttls)r_u64(r);
    c->username = r_str(r, NULL);
    c->password = r_str(r, NULL);
    c->ca_file = r_str(r, NULL);
    c->tls_verify = r_u64(r) != 0;
    c->max_connections = (int)r_u64(r);
    c->timeout_ms = (int64_t)r_u64(r);
    for (uint64_t i = 0, n = r_u64(r); i < n && !r->bad; i++) {
        char *h = r_str(r, NULL);
        struct curl_slist *nl = h ? curl_slist_append(c->headers, h) : NULL;
        free(h);
        if (!nl) {
            r->bad = true;
            break;
        }
        c->headers = nl;
    }
    if (!c->name || (!c->url && c->kind != SUKI_TRANSPORT_SPOOL) ||
        (c->kind == SUKI_TRANSPORT_SPOOL && !c->spool_dir))
        r->bad = true;
    if (r->bad) {
        suki_dispatch_tconf_unref(c);
        free(ac);
        return;
    }
    if (c->timeout_ms > ch->max_timeout_ms)
        ch->max_timeout_ms = c->timeout_ms;
    LIST_INSERT_HEAD(&ch->confs, ac, link);
}

static void child_frame_unconf(struct child *ch, struct suki_frame_rd *r)
{
    uint64_t id = r_u64(r);
    struct aconf *ac;
    if (r->bad)
        return;
    LIST_FOREACH(ac, &ch->confs, link)
    {
        if (ac->id == id) {
            LIST_REMOVE(ac, link);
            suki_dispatch_tconf_unref(ac->c);
            free(ac);
            return;
        }
    }
}

static void lane_start(struct child *ch, struct alane *al)
{
    struct suki_err err = {{0}};
    al->l = suki_dispatch_lane_new(&ch->hub, &err);
    if (!al->l)
        suki_strlcpy(al->why, err.msg, sizeof(al->why));
}

static void child_frame_lane(struct child *ch, struct suki_frame_rd *r)
{
    uint64_t id = r_u64(r);
    if (r->bad || child_lane(ch, id))
        return;
    struct alane *al = suki_calloc(1, sizeof(*al));
    al->id = id;
    lane_start(ch, al);
    LIST_INSERT_HEAD(&ch->lanes, al, link);
}

static void child_frame_post(struct child *ch, struct suki_frame_rd *r)
{
    struct xfer *x = suki_calloc(1, sizeof(*x));
    uint64_t lane_id = r_u64(r);
    x->token = r_u64(r);
    x->conf = child_conf(ch, r_u64(r));
    x->message_id = r_str(r, NULL);
    x->from = r_str(r, NULL);
    x->n_rcpt = (size_t)r_u64(r);
    if (x->n_rcpt > r->n / 4)
        r->bad = true; /* each needs at least its length */
    if (!r->bad && x->n_rcpt) {
        x->rcpt = suki_calloc(x->n_rcpt, sizeof(*x->rcpt));
        x->rcpt_code = suki_calloc(x->n_rcpt, sizeof(*x->rcpt_code));
        x->rcpt_reply = suki_calloc(x->n_rcpt, sizeof(*x->rcpt_reply));
        for (size_t i = 0; i < x->n_rcpt && !r->bad; i++) {
            x->rcpt[i] = r_str(r, NULL);
            struct curl_slist *nl =
                x->rcpt[i] ? curl_slist_append(x->rcpt_list, x->rcpt[i]) : NULL;
            if (!nl)
                r->bad = true;
            else
                x->rcpt_list = nl;
        }
    } else {
        x->n_rcpt = 0;
    }
    x->body = r_str(r, &x->body_len);
    x->sent_marker = r_str(r, NULL);
    x->sent_marker_ttl_s = (int64_t)r_u64(r);
    x->stage = SUKI_SMTP_CONNECT;
    x->last_stage = SUKI_SMTP_CONNECT;
    x->arg = (void *)(uintptr_t)lane_id;
    if (!x->message_id)
        x->message_id = suki_strdup("");
    if (!x->body)
        x->body = suki_strdup("");
    ch->held++;
    struct alane *al = child_lane(ch, lane_id);
    if (!r->bad && x->conf && al && !al->l)
        lane_start(ch, al); /* it failed before: maybe not now */
    if (r->bad || !x->conf || !al || !al->l) {
        if (x->conf)
            x->conf->refs++;
        x->local = true;
        x->res_status = SUKI_DISPATCH_TEMPFAIL;
        x->res_reply = suki_asprintf("delivery agent: %s",
                                     r->bad     ? "garbled message frame"
                                     : !x->conf ? "unknown transport settings"
                                     : !al      ? "unknown worker"
                                                : al->why);
        child_result(ch, lane_id, x);
        return;
    }
    x->conf->refs++;
    struct xq one;
    TAILQ_INIT(&one);
    TAILQ_INSERT_TAIL(&one, x, link);
    suki_dispatch_lane_post(al->l, &one);
}

static void child_frame_stop(struct child *ch, struct suki_frame_rd *r)
{
    uint64_t id = r_u64(r);
    bool abort = r_u64(r) != 0;
    struct alane *al = r->bad ? NULL : child_lane(ch, id);
    if (!al)
        return;
    if (al->l) {
        suki_dispatch_lane_stop(al->l, abort);
        return;
    }
    child_exited(ch, id);
    LIST_REMOVE(al, link);
    free(al);
}

/* sukid reloaded: new Redis settings (used at the next reconnect, as in
 * sukid) and log level. */
static void child_frame_redis(struct child *ch, struct suki_frame_rd *r)
{
    struct suki_conf *c = suki_calloc(1, sizeof(*c));
    c->refs = 1; /* only the Redis fields: the rest stay NULL */
    c->redis_url = r_str(r, NULL);
    c->redis_host = r_str(r, NULL);
    c->redis_port = (int)r_u64(r);
    c->redis_unix = r_str(r, NULL);
    c->redis_db = (int)r_u64(r);
    c->redis_password = r_str(r, NULL);
    c->redis_connect_timeout_ms = (int64_t)r_u64(r);
    c->redis_command_timeout_ms = (int64_t)r_u64(r);
    int level = (int)r_u64(r);
    if (r->bad || !c->redis_url) {
        suki_conf_unref(c);
        return;
    }
    suki_redis_set_conf(ch->redis, c);
    suki_conf_unref(ch->rconf);
    ch->rconf = c;
    suki_log_level = level;
}

/* sukid is gone (its end closed): finish what is in hand, then exit. */
static void child_orphan(struct child *ch, const char *why)
{
    if (!ch->bev)
        return;
    bufferevent_free(ch->bev);
    ch->bev = NULL;
    orphan_progress(ch);
    if (ch->held > 0)
        suki_notice("delivery agent: %s; finishing the %zu messages in hand",
                    why, ch->held);
    child_maybe_exit(ch);
}

static void child_maybe_exit(struct child *ch)
{
    if (ch->bev)
        return;
    if (ch->held == 0 && ch->marking == 0 && !ch->retry) {
        event_base_loopbreak(ch->base);
        return;
    }
    if (suki_mono_ms() < ch->deadline_ms)
        return;
    size_t n = ch->marking;
    for (struct marker *m = ch->retry; m; m = m->next)
        n++;
    suki_warnx("delivery agent: giving up with %zu messages unfinished and "
               "%zu sent markers unwritten; those may be sent again",
               ch->held, n);
    event_base_loopbreak(ch->base);
}

/* Orphaned: the time left is the longest a transfer may take, counted
 * from the last one that ended. */
static void orphan_progress(struct child *ch)
{
    ch->deadline_ms = suki_mono_ms() + ch->max_timeout_ms + ORPHAN_SLACK_MS;
}

static void child_read_cb(struct bufferevent *bev, void *arg)
{
    struct child *ch = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char type;
    struct suki_frame_rd r;
    size_t whole;
    int rc;

    while (ch->bev && (rc = frame_next(in, &type, &r, &whole)) != 0) {
        if (rc < 0) {
            child_orphan(ch, "garbled frame from sukid");
            return;
        }
        switch (type) {
        case F_CONF:
            child_frame_conf(ch, &r);
            break;
        case F_UNCONF:
            child_frame_unconf(ch, &r);
            break;
        case F_LANE:
            child_frame_lane(ch, &r);
            break;
        case F_POST:
            child_frame_post(ch, &r);
            break;
        case F_STOP:
            child_frame_stop(ch, &r);
            break;
        case F_REDIS:
            child_frame_redis(ch, &r);
            break;
        default:
            r.bad = true;
        }
        evbuffer_drain(in, whole);
        if (r.bad)
            suki_warnx("delivery agent: bad frame '%c' from sukid", type);
    }
}

static void child_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct child *ch = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        /* frames that arrived with the end are still to be read */
        child_read_cb(ch->bev, ch);
        child_orphan(ch, "sukid has gone");
    }
}

static void child_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct child *ch = arg;
    if (ch->retry && suki_redis_is_up(ch->redis))
        markers_retry(ch);
    child_maybe_exit(ch);
}

static void child_redis_state(struct suki_redis *r, bool up, void *arg)
{
    (void)r;
    if (up)
        markers_retry(arg);
}

/* The agent process: runs until sukid is gone and nothing is left. */
static int child_main(int fd, const struct suki_conf *conf)
{
    struct child ch;
    struct timeval tick = {0, 200 * 1000};

    memset(&ch, 0, sizeof(ch));
    LIST_INIT(&ch.lanes);
    LIST_INIT(&ch.confs);
    TAILQ_INIT(&ch.hub.done);
    ch.max_timeout_ms = 30000;
    if (pthread_mutex_init(&ch.hub.mu, NULL) != 0)
        return 1;
    ch.hub.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ch.base = event_base_new();
    if (ch.hub.efd < 0 || !ch.base ||
        curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        suki_err_log("delivery agent: cannot set up its loop");
        return 1;
    }
    ch.results = event_new(ch.base, ch.hub.efd, EV_READ | EV_PERSIST,
                           child_results_cb, &ch);
    ch.tick = event_new(ch.base, -1, EV_PERSIST, child_tick_cb, &ch);
    ch.mark_ev = evtimer_new(ch.base, child_tick_cb, &ch);
    ch.bev = bufferevent_socket_new(ch.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!ch.results || !ch.tick || !ch.mark_ev || !ch.bev) {
        suki_err_log("delivery agent: cannot set up its loop");
        return 1;
    }
    event_add(ch.results, NULL);
    event_add(ch.tick, &tick);
    bufferevent_setcb(ch.bev, child_read_cb, NULL, child_event_cb, &ch);
    /* whole messages per read, not 16 KiB at a time */
    bufferevent_set_max_single_read(ch.bev, 1 << 20);
    bufferevent_enable(ch.bev, EV_READ);
    ch.redis = suki_redis_new(ch.base, conf, "agent", child_redis_state, &ch);

    event_base_dispatch(ch.base);

    /* nothing is held any more (or the deadline passed): stop the lanes */
    struct alane *al;
    while ((al = LIST_FIRST(&ch.lanes)) != NULL) {
        LIST_REMOVE(al, link);
        if (al->l) {
            suki_dispatch_lane_stop(al->l, true);
            suki_dispatch_lane_join(al->l);
        }
        free(al);
    }
    struct xfer *x;
    while ((x = TAILQ_FIRST(&ch.hub.done)) != NULL) {
        TAILQ_REMOVE(&ch.hub.done, x, link);
        child_result(&ch, 0, x);
    }
    if (ch.marking || ch.retry) {
        /* markers of the transfers that ended last: a moment for them */
        ch.deadline_ms = suki_mono_ms() + ORPHAN_SLACK_MS;
        event_base_dispatch(ch.base);
    }
    struct aconf *ac;
    while ((ac = LIST_FIRST(&ch.confs)) != NULL) {
        LIST_REMOVE(ac, link);
        suki_dispatch_tconf_unref(ac->c);
        free(ac);
    }
    if (ch.bev)
        bufferevent_free(ch.bev);
    suki_redis_free(ch.redis); /* runs on_marker(NULL): back on retry */
    suki_conf_unref(ch.rconf);
    struct marker *m;
    while ((m = ch.retry) != NULL) {
        ch.retry = m->next;
        free(m->key);
        free(m);
    }
    event_free(ch.results);
    event_free(ch.tick);
    event_free(ch.mark_ev);
    suki_redis_cleanup(ch.base);
    event_base_free(ch.base);
    close(ch.hub.efd);
    pthread_mutex_destroy(&ch.hub.mu);
    free(ch.out.p);
    curl_global_cleanup();
    return 0;
}

/* ------------------------------------------------------------------ */
/* sukid's side                                                        */

struct suki_agent {
    struct event_base *base;
    struct suki_conf *const *confp;
    pid_t pid;
    struct bufferevent *bev; /* NULL while no agent runs */
    unsigned gen;            /* bumped at each start */
    bool closing;
    LIST_HEAD(, lane) lanes;
    uint64_t next_token, next_conf, next_lane;
    struct suki_buf out;
    struct event *respawn;
    struct event *reap;
    struct event *watch; /* a stuck agent is replaced */
    int64_t started_ms;
    pid_t zombies[MAX_ZOMBIES];
    size_t n_zombies;
};

static void agent_lost(struct suki_agent *a, const char *why);

static void fail_xfer(struct lane *l, struct xfer *x,
                      enum suki_dispatch_status st, const char *reply)
{
    x->local = true;
    x->res_status = st;
    free(x->res_reply);
    x->res_reply = suki_strdup(reply);
    pthread_mutex_lock(&l->hub->mu);
    TAILQ_INSERT_TAIL(&l->hub->done, x, link);
    pthread_mutex_unlock(&l->hub->mu);
    suki_dispatch_efd_signal(l->hub->efd);
}

static struct lane *lane_by_id(struct suki_agent *a, uint64_t id)
{
    struct lane *l;
    LIST_FOREACH(l, &a->lanes, alink)
    {
        if (l->id == id)
            return l;
    }
    return NULL;
}

static void set_exited(struct lane *l)
{
    pthread_mutex_lock(&l->hub->mu);
    l->exited = true;
    pthread_mutex_unlock(&l->hub->mu);
    suki_dispatch_efd_signal(l->hub->efd);
}

/* An outcome. False only for a garbled frame; one for a message sukid no
 * longer waits for (its lane was given up at shutdown) is dropped. */
static bool frame_result(struct suki_agent *a, struct suki_frame_rd *r)
{
    struct suki_frame_result res;
    suki_frame_result_decode(r, &res);
    struct lane *l = r->bad ? NULL : lane_by_id(a, res.lane_id);
    struct xfer *x = NULL;
    if (l) {
        TAILQ_FOREACH(x, &l->inbox, link)
        {
            if (x->token == res.token)
                break;
        }
    }
    if (x && (res.st < SUKI_DISPATCH_SENT || res.st > SUKI_DISPATCH_PERMFAIL ||
              res.n != x->n_rcpt))
        r->bad = true;
    if (x && !r->bad) {
        x->res_status = (enum suki_dispatch_status)res.st;
        x->res_code = res.code;
        free(x->res_reply);
        x->res_reply = res.reply ? res.reply : suki_strdup("");
        res.reply = NULL;
        x->res_retry_after_ms = res.retry_after;
        x->res_cancelled = res.cancelled;
        x->local = res.local;
        x->rcpt_sent = res.rcpt_sent;
        for (size_t i = 0; i < x->n_rcpt; i++) {
            x->rcpt_code[i] = res.codes[i];
            free(x->rcpt_reply[i]);
            x->rcpt_reply[i] = res.replies[i];
            res.replies[i] = NULL;
        }
        TAILQ_REMOVE(&l->inbox, x, link);
        l->agent_progress_ms = suki_mono_ms();
        pthread_mutex_lock(&l->hub->mu);
        TAILQ_INSERT_TAIL(&l->hub->done, x, link);
        pthread_mutex_unlock(&l->hub->mu);
        suki_dispatch_efd_signal(l->hub->efd);
    }
    suki_frame_result_clear(&res);
    return !r->bad;
}

/* Frames waiting in the input. False when the agent sent garbage. */
static bool parent_frames(struct suki_agent *a)
{
    struct evbuffer *in = bufferevent_get_input(a->bev);
    char type;
    struct suki_frame_rd r;
    size_t whole;
    int rc;

    while ((rc = frame_next(in, &type, &r, &whole)) != 0) {
        bool ok = rc > 0;
        if (ok && type == F_RESULT) {
            ok = frame_result(a, &r);
        } else if (ok && type == F_EXITED) {
            struct lane *l = lane_by_id(a, r_u64(&r));
            if (l)
                set_exited(l);
        } else {
            ok = false;
        }
        if (!ok)
            return false;
        evbuffer_drain(in, whole);
    }
    return true;
}

static void parent_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct suki_agent *a = arg;
    if (!parent_frames(a))
        agent_lost(a, "it sent a garbled frame");
}

static void parent_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct suki_agent *a = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        parent_frames(a); /* outcomes that came with the end still count */
        agent_lost(a, "its channel closed");
    }
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_agent *a = arg;
    for (size_t i = 0; i < a->n_zombies;) {
        int st;
        pid_t p = waitpid(a->zombies[i], &st, WNOHANG);
        if (p == 0) {
            i++;
            continue;
        }
        if (p > 0 && WIFSIGNALED(st))
            suki_warnx("delivery agent (pid %d) was killed by signal %d",
                       (int)p, WTERMSIG(st));
        else if (p > 0 && WEXITSTATUS(st) != 0)
            suki_warnx("delivery agent (pid %d) exited with status %d", (int)p,
                       WEXITSTATUS(st));
        a->zombies[i] = a->zombies[--a->n_zombies];
    }
    if (a->n_zombies > 0) {
        struct timeval tv = {0, 100 * 1000};
        evtimer_add(a->reap, &tv);
    }
}

static int agent_start(struct suki_agent *a, struct suki_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        suki_err_set(err, -errno, "delivery agent: socketpair: %s",
                     strerror(errno));
        return -1;
    }
    /* Signals wait until the child has dropped sukid's handlers (which
     * would wake sukid's loop). */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        /* Nothing of sukid's loop is touched here, and its descriptors
         * belong to sukid. The agent ends when its channel closes, not on
         * a signal sent to the service's whole group. */
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int fd = sv[1];
        if ((fd > 3 && close_range(3, (unsigned)fd - 1, 0) < 0) ||
            close_range((unsigned)fd + 1, ~0u, 0) < 0) {
            for (int i = 3; i < 65536; i++)
                if (i != fd)
                    close(i);
        }
        evutil_make_socket_nonblocking(fd);
        prctl(PR_SET_NAME, "sukid-agent", 0, 0, 0);
        suki_log_init("sukid-agent");
        suki_log_own_stream("sukid-agent");
        _exit(child_main(fd, *a->confp));
    }
    int fork_errno = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        suki_err_set(err, -fork_errno, "delivery agent: fork: %s",
                     strerror(fork_errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    close(sv[1]);
    evutil_make_socket_nonblocking(sv[0]);
    a->bev = bufferevent_socket_new(a->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    if (!a->bev) {
        close(sv[0]);
        suki_err_set(err, -ENOMEM, "delivery agent: bufferevent failed");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    bufferevent_setcb(a->bev, parent_read_cb, NULL, parent_event_cb, a);
    bufferevent_set_max_single_write(a->bev, 1 << 20);
    bufferevent_enable(a->bev, EV_READ);
    a->pid = pid;
    a->gen++;
    a->started_ms = suki_mono_ms();
    suki_notice("delivery agent started (pid %d)", (int)pid);
    return 0;
}

static void respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_agent *a = arg;
    struct suki_err err = {{0}};
    if (a->bev || a->closing)
        return;
    if (agent_start(a, &err) < 0) {
        suki_err_log("%s; trying again in 1s", err.msg);
        suki_timer_ms(a->respawn, RESPAWN_DELAY_MS);
    }
}

/* The agent died (or talks nonsense) while sukid lives: what it held may or
 * may not have gone out, so it comes back TEMPFAIL (sent again: at least
 * once), and a new agent starts. */
static void agent_lost(struct suki_agent *a, const char *why)
{
    struct lane *l;
    struct xfer *x;
    size_t n = 0;

    if (!a->bev)
        return;
    bufferevent_free(a->bev);
    a->bev = NULL;
    if (a->n_zombies < MAX_ZOMBIES) {
        a->zombies[a->n_zombies++] = a->pid;
        suki_timer_ms(a->reap, 0);
    }
    if (a->pid > 0 && a->closing == false)
        kill(a->pid, SIGKILL); /* it may be alive and confused */
    LIST_FOREACH(l, &a->lanes, alink)
    {
        while ((x = TAILQ_FIRST(&l->inbox)) != NULL) {
            TAILQ_REMOVE(&l->inbox, x, link);
            fail_xfer(l, x, SUKI_DISPATCH_TEMPFAIL,
                      "delivery agent died; the message may have gone out");
            n++;
        }
        if (l->stop)
            set_exited(l);
    }
    if (!a->closing)
        suki_metrics.agent_restarts++;
    if (!a->closing)
        suki_err_log("delivery agent (pid %d) lost: %s; %zu messages in "
                     "flight will be tried again; starting a new agent",
                     (int)a->pid, why, n);
    a->pid = 0;
    if (!a->closing)
        suki_timer_ms(a->respawn, suki_mono_ms() - a->started_ms > 10000
                                      ? 0
                                      : RESPAWN_DELAY_MS);
}

/* Every transfer ends within its transport's timeout (libcurl's
 * CURLOPT_TIMEOUT), so a lane with messages at the agent and no answer for
 * longer than that plus this slack has a stuck agent (stopped, or hung):
 * it is killed, its messages are tried again, and a new one starts. */
#define AGENT_STUCK_SLACK_MS 10000
#define AGENT_WATCH_MS 1000

static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_agent *a = arg;
    int64_t now = suki_mono_ms();
    struct lane *l;
    LIST_FOREACH(l, &a->lanes, alink)
    {
        struct xfer *x = TAILQ_FIRST(&l->inbox);
        if (!a->bev || !x || l->gen != a->gen)
            continue;
        int64_t limit = x->conf->timeout_ms + AGENT_STUCK_SLACK_MS;
        if (now - l->agent_progress_ms > limit) {
            char why[96];
            snprintf(why, sizeof(why),
                     "no answer to a message for %" PRId64 " s (stuck)",
                     (now - l->agent_progress_ms) / 1000);
            agent_lost(a, why);
            return;
        }
    }
}

struct suki_agent *suki_agent_new(struct event_base *base,
                                  struct suki_conf *const *confp,
                                  struct suki_err *err)
{
    struct suki_agent *a = suki_calloc(1, sizeof(*a));
    a->base = base;
    a->confp = confp;
    LIST_INIT(&a->lanes);
    a->respawn = evtimer_new(base, respawn_cb, a);
    a->reap = evtimer_new(base, reap_cb, a);
    a->watch = event_new(base, -1, EV_PERSIST, watch_cb, a);
    if (!a->respawn || !a->reap || !a->watch || agent_start(a, err) < 0) {
        if (!err->msg[0])
            suki_err_set(err, -ENOMEM, "delivery agent: cannot create events");
        if (a->respawn)
            event_free(a->respawn);
        if (a->reap)
            event_free(a->reap);
        if (a->watch)
            event_free(a->watch);
        free(a);
        return NULL;
    }
    struct timeval tv = {AGENT_WATCH_MS / 1000, 0};
    event_add(a->watch, &tv);
    return a;
}

pid_t suki_agent_pid(const struct suki_agent *a)
{
    return a ? a->pid : 0;
}

struct lane *suki_agent_lane_new(struct suki_agent *a, struct hub *hub,
                                 struct suki_err *err)
{
    (void)err;
    struct lane *l = suki_calloc(1, sizeof(*l));
    l->hub = hub;
    l->agent = a;
    l->id = hub->next_id++;
    l->efd = -1;
    TAILQ_INIT(&l->inbox);
    TAILQ_INIT(&l->running);
    TAILQ_INIT(&l->out);
    TAILQ_INIT(&l->outbox);
    LIST_INSERT_HEAD(&a->lanes, l, alink);
    return l;
}

/* Make sure the running agent knows lane l and x's settings. */
static void introduce(struct suki_agent *a, struct lane *l, struct tconf *c)
{
    struct suki_buf *b = &a->out;
    if (l->gen != a->gen) {
        w_begin(b, F_LANE);
        w_u64(b, l->id);
        w_end(b, a->bev);
        l->gen = a->gen;
    }
    if (c->agent == a && c->wire_gen == a->gen)
        return;
    if (!c->wire_id)
        c->wire_id = ++a->next_conf;
    c->agent = a;
    c->wire_gen = a->gen;
    w_begin(b, F_CONF);
    w_u64(b, c->wire_id);
    w_str(b, c->name);
    w_u64(b, (uint64_t)c->kind);
    w_str(b, c->url);
    w_str(b, c->spool_dir);
    w_u64(b, (uint64_t)c->starttls);
    w_str(b, c->username);
    w_str(b, c->password);
    w_str(b, c->ca_file);
    w_u64(b, c->tls_verify);
    w_u64(b, (uint64_t)c->max_connections);
    w_u64(b, (uint64_t)c->timeout_ms);
    uint64_t n = 0;
    for (struct curl_slist *h = c->headers; h; h = h->next)
        n++;
    w_u64(b, n);
    for (struct curl_slist *h = c->headers; h; h = h->next)
        w_str(b, h->data);
    w_end(b, a->bev);
}

void suki_agent_lane_post(struct lane *l, struct xq *batch)
{
    struct suki_agent *a = l->agent;
    struct suki_buf *b = &a->out;
    struct xfer *x;

    while ((x = TAILQ_FIRST(batch)) != NULL) {
        TAILQ_REMOVE(batch, x, link);
        if (!a->bev) {
            fail_xfer(l, x, SUKI_DISPATCH_TEMPFAIL,
                      "no delivery agent is running (not sent)");
            continue;
        }
        if (x->body_len > FRAME_MAX - (1u << 20)) {
            fail_xfer(l, x, SUKI_DISPATCH_PERMFAIL,
                      "message too large for the delivery agent (not sent)");
            continue;
        }
        introduce(a, l, x->conf);
        x->token = ++a->next_token;
        w_begin(b, F_POST);
        w_u64(b, l->id);
        w_u64(b, x->token);
        w_u64(b, x->conf->wire_id);
        w_str(b, x->message_id);
        w_str(b, x->from);
        w_u64(b, x->n_rcpt);
        for (size_t i = 0; i < x->n_rcpt; i++)
            w_str(b, x->rcpt[i]);
        w_mem(b, x->body, x->body_len);
        w_str(b, x->sent_marker);
        w_u64(b, (uint64_t)x->sent_marker_ttl_s);
        w_end(b, a->bev);
        if (TAILQ_EMPTY(&l->inbox))
            l->agent_progress_ms = suki_mono_ms();
        TAILQ_INSERT_TAIL(&l->inbox, x, link);
    }
}

void suki_agent_lane_stop(struct lane *l, bool abort)
{
    struct suki_agent *a = l->agent;
    pthread_mutex_lock(&l->hub->mu);
    l->stop = true;
    pthread_mutex_unlock(&l->hub->mu);
    if (!a->bev || l->gen != a->gen) {
        /* the running agent never had it: nothing to give back */
        set_exited(l);
        return;
    }
    w_begin(&a->out, F_STOP);
    w_u64(&a->out, l->id);
    w_u64(&a->out, abort);
    w_end(&a->out, a->bev);
}

/* One round of synchronous channel traffic (only at shutdown, outside the
 * loop): write what is queued, read what came, handle the frames. */
static void sync_step(struct suki_agent *a, int wait_ms)
{
    int fd = bufferevent_getfd(a->bev);
    struct evbuffer *out = bufferevent_get_output(a->bev);
    struct pollfd p = {fd, POLLIN, 0};
    if (evbuffer_get_length(out) > 0)
        p.events |= POLLOUT;
    if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
        return;
    /* A socket bufferevent freezes the ends of its buffers that only it
     * may move; outside the loop we move them, as it does. */
    if (p.revents & POLLOUT) {
        evbuffer_unfreeze(out, 1);
        int n = evbuffer_write(out, fd);
        evbuffer_freeze(out, 1);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            agent_lost(a, "its channel failed");
            return;
        }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        struct evbuffer *in = bufferevent_get_input(a->bev);
        evbuffer_unfreeze(in, 0);
        int n = evbuffer_read(in, fd, -1);
        evbuffer_freeze(in, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            parent_frames(a);
            agent_lost(a, "its channel closed");
        } else if (!parent_frames(a)) {
            agent_lost(a, "it sent a garbled frame");
        }
    }
}

void suki_agent_lane_join(struct lane *l)
{
    struct suki_agent *a = l->agent;
    int64_t end = suki_mono_ms() + JOIN_WAIT_MS;
    struct xfer *x;

    while (!suki_dispatch_lane_exited(l) && a->bev) {
        int64_t left = end - suki_mono_ms();
        if (left <= 0)
            break;
        sync_step(a, (int)(left < 100 ? left : 100));
    }
    while ((x = TAILQ_FIRST(&l->inbox)) != NULL) {
        TAILQ_REMOVE(&l->inbox, x, link);
        x->res_cancelled = true;
        fail_xfer(l, x, SUKI_DISPATCH_TEMPFAIL, SUKI_DISPATCH_CANCELLED);
    }
    LIST_REMOVE(l, alink);
    free(l);
}

void suki_agent_reload(struct suki_agent *a)
{
    const struct suki_conf *c = *a->confp;
    struct suki_buf *b = &a->out;
    if (!a->bev)
        return; /* a new agent reads the settings when it starts */
    w_begin(b, F_REDIS);
    w_str(b, c->redis_url);
    w_str(b, c->redis_host);
    w_u64(b, (uint64_t)c->redis_port);
    w_str(b, c->redis_unix);
    w_u64(b, (uint64_t)c->redis_db);
    w_str(b, c->redis_password);
    w_u64(b, (uint64_t)c->redis_connect_timeout_ms);
    w_u64(b, (uint64_t)c->redis_command_timeout_ms);
    w_u64(b, (uint64_t)c->log_level);
    w_end(b, a->bev);
}

void suki_agent_conf_gone(struct suki_agent *a, struct tconf *c)
{
    if (!a->bev || c->wire_gen != a->gen)
        return;
    w_begin(&a->out, F_UNCONF);
    w_u64(&a->out, c->wire_id);
    w_end(&a->out, a->bev);
}

int suki_agent_free(struct suki_agent *a, int64_t wait_ms)
{
    int rc = 0, st = 0;
    if (!a)
        return 0;
    a->closing = true;
    pid_t pid = a->pid;
    if (a->bev) {
        struct evbuffer *out = bufferevent_get_output(a->bev);
        int64_t end = suki_mono_ms() + 1000;
        while (evbuffer_get_length(out) > 0 && a->bev && suki_mono_ms() < end)
            sync_step(a, 100);
    }
    if (a->bev) {
        /* the agent sees the end and exits; shut down now, as the close
         * of a bufferevent freed outside the loop may wait for it */
        shutdown(bufferevent_getfd(a->bev), SHUT_RDWR);
        bufferevent_free(a->bev);
        a->bev = NULL;
    }
    /* It holds nothing now (every lane was joined), so it exits at once. */
    if (pid > 0) {
        int64_t end = suki_mono_ms() + wait_ms;
        pid_t p;
        while ((p = waitpid(pid, &st, WNOHANG)) == 0 && suki_mono_ms() < end)
            usleep(10 * 1000);
        if (p == 0) {
            suki_warnx("delivery agent (pid %d) still running at exit",
                       (int)pid);
            rc = -1;
        } else if (p > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            suki_warnx("delivery agent (pid %d) ended badly (wait status "
                       "%d)",
                       (int)pid, st);
            rc = -1;
        }
    }
    for (size_t i = 0; i < a->n_zombies; i++)
        waitpid(a->zombies[i], NULL, WNOHANG);
    event_free(a->respawn);
    event_free(a->reap);
    event_free(a->watch);
    free(a->out.p);
    free(a);
    return rc;
}
