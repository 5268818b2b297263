/* agent.c - the delivery agent process (deliver.h): its main, real lanes
 * (thread.c) for sukid's proxy lanes, the sent markers, and finishing up
 * after sukid is gone. sukid's side is proxy.c; the frames are wire.h.
 *
 * sukid starts it as its own binary, executed afresh with argv[0]
 * "sukid-agent", SUKI_AGENT_ARG and the channel's descriptor; sukid's main
 * hands over to suki_agent_main. It knows nothing but what comes over the
 * channel: the Redis settings first (D), then transport settings, lanes
 * and messages. */
#include "config.h"

#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "deliver.h"
#include "lane.h"
#include "log.h"
#include "redis.h"
#include "wire.h"

#define ORPHAN_SLACK_MS 5000 /* beyond the longest transfer timeout */
#define MARK_DELAY_MS 2

struct alane {
    LIST_ENTRY(alane) link;
    uint64_t id;            /* sukid's id for it */
    struct deliver_lane *l; /* NULL: no thread could be started (yet) */
    char why[128];          /* then: why */
    bool gone;              /* scratch: seen exited */
};

struct aconf {
    LIST_ENTRY(aconf) link;
    uint64_t id;
    struct deliver_tconf *c; /* the table's reference */
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
    struct deliver_hub hub;
    struct event *results;
    struct event *tick;       /* markers to retry, the orphan deadline */
    struct event *mark_ev;    /* the tick's work, 2 ms after a marker */
    struct suki_redis *redis; /* NULL until sukid's first D frame */
    struct suki_conf *rconf;  /* owned, from the last D frame */
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
static void child_redis_state(struct suki_redis *r, bool up, void *arg);

static void marker_done(struct marker *m)
{
    struct child *ch = m->ch;
    free(m->key);
    free(m);
    child_maybe_exit(ch);
}

/* redis.min_replicas: the marker counts once WAIT says enough replicas
 * have it; else it is set again at the next tick (on the new primary,
 * after a failover that lost it), so the message is never sent twice. */
static void on_marker_wait(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct marker *m = arg;
    struct child *ch = m->ch;
    ch->marking--;
    if (r && suki_redis_wait_ok(r, reply)) {
        marker_done(m);
        return;
    }
    m->next = ch->retry;
    ch->retry = m;
}

static void on_marker(struct suki_redis *r, redisReply *reply, void *arg)
{
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
    else if (suki_redis_min_replicas(r) > 0 &&
             suki_redis_wait(r, NULL, on_marker_wait, m) == 0) {
        ch->marking++;
        return;
    }
    marker_done(m);
}

static void marker_send(struct child *ch, struct marker *m)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, m->ttl_s > 0 ? m->ttl_s : 1);
    const char *argv[5] = {"SET", m->key, "1", "EX", ttl};
    /* no Redis before sukid's first D frame: the marker waits */
    if (ch->redis &&
        suki_redis_argv(ch->redis, on_marker, m, 0, 5, argv, NULL) == 0) {
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
static bool delivered(const struct deliver_xfer *x)
{
    if (x->res_status != SUKI_DISPATCH_SENT)
        return false;
    for (size_t i = 0; i < x->n_rcpt; i++)
        if (!x->rcpt_code || x->rcpt_code[i] < 200 || x->rcpt_code[i] > 299)
            return false;
    return true;
}

static void child_result(struct child *ch, uint64_t lane_id,
                         struct deliver_xfer *x)
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
        deliver_wire_put_result(&ch->out, lane_id, x);
        deliver_wire_send(ch->bev, &ch->out);
    }
    ch->held--;
    if (!ch->bev)
        orphan_progress(ch);
    deliver_tconf_unref(x->conf);
    deliver_xfer_clear(x);
    free(x);
}

static void child_exited(struct child *ch, uint64_t lane_id)
{
    if (!ch->bev)
        return;
    deliver_wire_put_id(&ch->out, DELIVER_WIRE_EXITED, lane_id);
    deliver_wire_send(ch->bev, &ch->out);
}

/* What the real lanes gave back, and the lanes that exited. */
static void child_results_cb(evutil_socket_t fd, short what, void *arg)
{
    struct child *ch = arg;
    struct deliver_xq batch;
    struct deliver_xfer *x;
    struct alane *al, *next;
    (void)what;
    deliver_efd_drain(fd);
    /* A lane posts its last results before it says it exited: note the
     * exits first, so every result of those lanes is in the batch below and
     * goes out before their X. */
    LIST_FOREACH(al, &ch->lanes, link)
    {
        al->gone = al->l && deliver_threads.exited(al->l);
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
            deliver_threads.join(al->l);
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

static struct deliver_tconf *child_conf(struct child *ch, uint64_t id)
{
    struct aconf *ac;
    LIST_FOREACH(ac, &ch->confs, link)
    {
        if (ac->id == id)
            return ac->c;
    }
    return NULL;
}

static void child_frame_conf(struct child *ch, struct deliver_wire_rd *r)
{
    uint64_t id;
    struct deliver_tconf *c = deliver_wire_get_conf(r, &id);
    if (!c)
        return;
    struct aconf *ac = suki_calloc(1, sizeof(*ac));
    ac->id = id;
    ac->c = c;
    if (c->timeout_ms > ch->max_timeout_ms)
        ch->max_timeout_ms = c->timeout_ms;
    LIST_INSERT_HEAD(&ch->confs, ac, link);
}

static void child_frame_unconf(struct child *ch, struct deliver_wire_rd *r)
{
    uint64_t id;
    struct aconf *ac;
    if (!deliver_wire_get_id(r, &id))
        return;
    LIST_FOREACH(ac, &ch->confs, link)
    {
        if (ac->id == id) {
            LIST_REMOVE(ac, link);
            deliver_tconf_unref(ac->c);
            free(ac);
            return;
        }
    }
}

static void lane_start(struct child *ch, struct alane *al)
{
    struct suki_err err = {{0}};
    al->l = deliver_threads.lane_new(NULL, &ch->hub, &err);
    if (!al->l)
        suki_strlcpy(al->why, err.msg, sizeof(al->why));
}

static void child_frame_lane(struct child *ch, struct deliver_wire_rd *r)
{
    uint64_t id;
    if (!deliver_wire_get_id(r, &id) || child_lane(ch, id))
        return;
    struct alane *al = suki_calloc(1, sizeof(*al));
    al->id = id;
    lane_start(ch, al);
    LIST_INSERT_HEAD(&ch->lanes, al, link);
}

static void child_frame_post(struct child *ch, struct deliver_wire_rd *r)
{
    uint64_t lane_id, conf_id;
    struct deliver_xfer *x = deliver_wire_get_post(r, &lane_id, &conf_id);
    if (!x)
        return; /* garbled: the link goes (child_read_cb) */
    x->conf = child_conf(ch, conf_id);
    /* the real lane's id is not sukid's; arg (a front field, unused
     * here) carries sukid's */
    x->arg = (void *)(uintptr_t)lane_id;
    ch->held++;
    struct alane *al = child_lane(ch, lane_id);
    if (x->conf && al && !al->l)
        lane_start(ch, al); /* it failed before: maybe not now */
    if (!x->conf || !al || !al->l) {
        if (x->conf)
            x->conf->refs++;
        x->local = true;
        x->res_status = SUKI_DISPATCH_TEMPFAIL;
        x->res_reply = suki_asprintf("delivery agent: %s",
                                     !x->conf ? "unknown transport settings"
                                     : !al    ? "unknown worker"
                                              : al->why);
        child_result(ch, lane_id, x);
        return;
    }
    x->conf->refs++;
    struct deliver_xq one;
    TAILQ_INIT(&one);
    TAILQ_INSERT_TAIL(&one, x, link);
    deliver_threads.post(al->l, &one);
}

static void child_frame_stop(struct child *ch, struct deliver_wire_rd *r)
{
    uint64_t id;
    bool abort;
    struct alane *al =
        deliver_wire_get_stop(r, &id, &abort) ? child_lane(ch, id) : NULL;
    if (!al)
        return;
    if (al->l) {
        deliver_threads.stop(al->l, abort);
        return;
    }
    child_exited(ch, id);
    LIST_REMOVE(al, link);
    free(al);
}

/* sukid reloaded: new Redis settings (used at the next reconnect, as in
 * sukid) and log level. */
static void child_frame_redis(struct child *ch, struct deliver_wire_rd *r)
{
    int level;
    struct suki_conf *c = deliver_wire_get_redis(r, &level);
    if (!c)
        return;
    if (ch->redis)
        suki_redis_set_conf(ch->redis, c);
    else
        ch->redis = suki_redis_new(ch->base, c, "agent", child_redis_state, ch);
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
    struct deliver_wire_rd r;
    size_t whole;
    int rc;

    while (ch->bev && (rc = deliver_wire_next(in, &type, &r, &whole)) != 0) {
        if (rc < 0) {
            child_orphan(ch, "garbled frame from sukid");
            return;
        }
        switch (type) {
        case DELIVER_WIRE_CONF:
            child_frame_conf(ch, &r);
            break;
        case DELIVER_WIRE_UNCONF:
            child_frame_unconf(ch, &r);
            break;
        case DELIVER_WIRE_LANE:
            child_frame_lane(ch, &r);
            break;
        case DELIVER_WIRE_POST:
            child_frame_post(ch, &r);
            break;
        case DELIVER_WIRE_STOP:
            child_frame_stop(ch, &r);
            break;
        case DELIVER_WIRE_REDIS:
            child_frame_redis(ch, &r);
            break;
        default:
            r.bad = true;
        }
        evbuffer_drain(in, whole);
        if (r.bad) {
            /* a field short or long: the two ends disagree on the layout,
             * and nothing more on this channel can be trusted */
            suki_err_log("delivery agent: garbled frame '%c' (%zu bytes) "
                         "from sukid; dropping the channel",
                         type, whole);
            child_orphan(ch, "garbled frame from sukid");
            return;
        }
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
static int child_main(int fd)
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
    /* Redis comes with sukid's first frame (child_frame_redis) */

    event_base_dispatch(ch.base);

    /* nothing is held any more (or the deadline passed): stop the lanes */
    struct alane *al;
    while ((al = LIST_FIRST(&ch.lanes)) != NULL) {
        LIST_REMOVE(al, link);
        if (al->l) {
            deliver_threads.stop(al->l, true);
            deliver_threads.join(al->l);
        }
        free(al);
    }
    struct deliver_xfer *x;
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
        deliver_tconf_unref(ac->c);
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

int suki_agent_main(int argc, char **argv)
{
    struct stat st;
    int64_t fd = -1;
    /* PR_SET_NAME: the process name is the binary's ("sukid") after the
     * exec, whatever argv[0] says; pgrep -x and top show this one */
    prctl(PR_SET_NAME, "sukid-agent", 0, 0, 0);
    suki_log_init("sukid-agent");
    if (argc != 3 || suki_parse_i64(argv[2], 0, INT_MAX, &fd) != 0 ||
        fstat((int)fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        suki_err_log("sukid-agent: started by sukid only (%s <channel fd>)",
                     SUKI_AGENT_ARG);
        return 2;
    }
    suki_log_own_stream("sukid-agent");
    signal(SIGPIPE, SIG_IGN);
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    evutil_make_socket_nonblocking((int)fd);
    return child_main((int)fd);
}
