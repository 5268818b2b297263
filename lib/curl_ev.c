/* curl_ev.c - libcurl's multi interface on a libevent loop. */
#include "curl_ev.h"

#include "util.h"

#include <event2/event.h>
#include <sys/queue.h>

#include <stdlib.h>

struct sock {
    LIST_ENTRY(sock) link;
    struct suki_curl_ev *ce;
    struct event *ev;
};

struct suki_curl_ev {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    void (*drain)(void *);
    void *arg;
    LIST_HEAD(, sock) socks; /* what curl_multi_cleanup may leave */
};

static void on_sock(evutil_socket_t fd, short kind, void *arg)
{
    struct suki_curl_ev *ce = ((struct sock *)arg)->ce;
    int action = 0, running = 0;
    if (kind & EV_READ)
        action |= CURL_CSELECT_IN;
    if (kind & EV_WRITE)
        action |= CURL_CSELECT_OUT;
    /* arg may be freed inside (CURL_POLL_REMOVE) */
    curl_multi_socket_action(ce->multi, fd, action, &running);
    ce->drain(ce->arg);
}

static void on_timer(evutil_socket_t fd, short kind, void *arg)
{
    struct suki_curl_ev *ce = arg;
    int running = 0;
    (void)fd;
    (void)kind;
    curl_multi_socket_action(ce->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    ce->drain(ce->arg);
}

/* Only (re)arm or delete the timer: calling libcurl from here recurses. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct suki_curl_ev *ce = userp;
    (void)multi;
    if (timeout_ms < 0)
        evtimer_del(ce->timer);
    else
        suki_timer_ms(ce->timer, timeout_ms);
    return 0;
}

static void sock_free(struct sock *s)
{
    LIST_REMOVE(s, link);
    event_free(s->ev);
    free(s);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *userp,
                   void *sockp)
{
    struct suki_curl_ev *ce = userp;
    struct sock *s = sockp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(s);
        return 0;
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (!s) {
        s = suki_calloc(1, sizeof(*s));
        s->ce = ce;
        s->ev = event_new(ce->base, fd, kind, on_sock, s);
        if (!s->ev) {
            free(s);
            return -1;
        }
        LIST_INSERT_HEAD(&ce->socks, s, link);
        curl_multi_assign(ce->multi, fd, s);
    } else {
        event_del(s->ev);
        if (event_assign(s->ev, ce->base, fd, kind, on_sock, s) != 0)
            return -1;
    }
    return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

struct suki_curl_ev *suki_curl_ev_new(struct event_base *base,
                                      void (*drain)(void *arg), void *arg)
{
    struct suki_curl_ev *ce = suki_calloc(1, sizeof(*ce));
    ce->base = base;
    ce->drain = drain;
    ce->arg = arg;
    LIST_INIT(&ce->socks);
    ce->multi = curl_multi_init();
    ce->timer = evtimer_new(base, on_timer, ce);
    if (!ce->multi || !ce->timer ||
        curl_multi_setopt(ce->multi, CURLMOPT_SOCKETFUNCTION, sock_cb) ||
        curl_multi_setopt(ce->multi, CURLMOPT_SOCKETDATA, ce) ||
        curl_multi_setopt(ce->multi, CURLMOPT_TIMERFUNCTION, timer_cb) ||
        curl_multi_setopt(ce->multi, CURLMOPT_TIMERDATA, ce)) {
        suki_curl_ev_free(ce);
        return NULL;
    }
    return ce;
}

CURLM *suki_curl_ev_multi(const struct suki_curl_ev *ce)
{
    return ce->multi;
}

void suki_curl_ev_free(struct suki_curl_ev *ce)
{
    if (!ce)
        return;
    if (ce->multi)
        curl_multi_cleanup(ce->multi); /* may call sock_cb */
    struct sock *s;
    while ((s = LIST_FIRST(&ce->socks)) != NULL)
        sock_free(s);
    if (ce->timer)
        event_free(ce->timer);
    free(ce);
}
