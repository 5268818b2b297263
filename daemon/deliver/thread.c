/* thread.c - the thread backend (lane.h): worker threads ("lanes"), each
 * running its own libevent loop and libcurl multi handle, that carry out
 * the SMTP, HTTP and spool transfers (smtp.c, http.c, spool.c) the front
 * (front.c) hands them. The delivery agent (agent.c) runs its lanes with
 * this backend too.
 *
 * Why threads: libcurl 7.88 waits blocking, even in the multi interface,
 * for the SMTP server's reply to the final "." (smtp_done ->
 * smtp_block_statemach) and to QUIT, and the spool transport writes, fsyncs
 * and renames files. On the daemon's one loop a slow mail server or disk
 * froze intake, timers and /healthz. Here such a wait stops only the lane
 * it happens in; the front never blocks.
 *
 * A lane drives one curl multi handle on its own base (lib/curl_ev.h,
 * after curl's docs/examples/hiperfifo.c); after every socket action the
 * finished transfers are drained with curl_multi_info_read.
 *
 * Hand-over: the front appends xfers to the lane's inbox under hub->mu and
 * writes the lane's eventfd when the inbox was empty; the lane reads the
 * eventfd first and then takes the whole inbox, so no wake-up is lost.
 * Finished xfers go back the same way through hub->done and hub->efd. The
 * lane touches no global state of the daemon: no metrics, no logging, no
 * configuration; suki_rand64 keeps per-thread state. */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "curl_ev.h"
#include "lane.h"
#include "transport.h"

static bool lane_stopping(struct deliver_lane *l)
{
    bool stop;

    pthread_mutex_lock(&l->hub->mu);
    stop = l->stop;
    pthread_mutex_unlock(&l->hub->mu);
    return stop;
}

/* Record x's outcome and put it on the lane's out list. */
static void finish(struct deliver_lane *l, struct deliver_xfer *x,
                   enum suki_dispatch_status st, int code, const char *reply)
{
    deliver_xfer_set_result(x, st, code, reply);
    TAILQ_INSERT_TAIL(&l->out, x, link);
}

static void finish_cancelled(struct deliver_lane *l, struct deliver_xfer *x)
{
    x->res_cancelled = true;
    finish(l, x, SUKI_DISPATCH_TEMPFAIL, 0, SUKI_DISPATCH_CANCELLED);
}

static void finish_local(struct deliver_lane *l, struct deliver_xfer *x,
                         enum suki_dispatch_status st, const char *reply)
{
    x->local = true;
    finish(l, x, st, 0, reply);
}

/* Post the finished xfers to the front. The front's eventfd is written only
 * when its list was empty: it reads the eventfd before taking the list. */
static void lane_flush(struct deliver_lane *l)
{
    struct deliver_hub *h = l->hub;
    bool was_empty;

    if (TAILQ_EMPTY(&l->out))
        return;
    pthread_mutex_lock(&h->mu);
    was_empty = TAILQ_EMPTY(&h->done);
    TAILQ_CONCAT(&h->done, &l->out, link);
    pthread_mutex_unlock(&h->mu);
    if (was_empty)
        deliver_efd_signal(h->efd);
}

static CURL *easy_get(struct deliver_lane *l)
{
    if (l->n_pool > 0)
        return l->pool[--l->n_pool];
    return curl_easy_init();
}

/* Give x's easy handle back (reset: no pointer into x survives). */
static void easy_put(struct deliver_lane *l, struct deliver_xfer *x)
{
    CURL *e = x->easy;

    x->easy = NULL;
    if (!e)
        return;
    if (l->n_pool < SUKI_DISPATCH_POOL_MAX) {
        curl_easy_reset(e);
        l->pool[l->n_pool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* ------------------------------------------------------------------ */
/* socket bookkeeping                                                  */

/* Whether e still names the socket it was opened as (see struct
 * deliver_lane_fd): every socket has an inode of its own, which no later socket
 * reuses while the number could still be on a list. */
static bool lane_fd_same(const struct deliver_lane_fd *e)
{
    struct stat st;

    return fstat(e->fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
           st.st_dev == e->dev && st.st_ino == e->ino;
}

/* libcurl's sockets are tracked so that a stop can end any wait on them
 * (deliver_threads.stop). The callbacks live in each connection, which
 * may outlive its easy handle, so their data is the lane itself. Once a
 * stop was asked for no new socket is opened, so none escapes the
 * shutdown. Entries whose socket libcurl closed without the callback are
 * dropped here, so the list does not grow with every cut connect. */
static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *a)
{
    struct deliver_lane *l = clientp;
    int fd = CURL_SOCKET_BAD;
    struct stat st;
    (void)purpose;

    pthread_mutex_lock(&l->hub->mu);
    if (l->stop)
        goto out;
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0) {
        fd = CURL_SOCKET_BAD;
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        fd = CURL_SOCKET_BAD;
        goto out;
    }
    for (size_t i = 0; i < l->n_fds;) {
        if (l->fds[i].fd == fd || !lane_fd_same(&l->fds[i]))
            l->fds[i] = l->fds[--l->n_fds];
        else
            i++;
    }
    if (l->n_fds == l->cap_fds) {
        l->cap_fds = l->cap_fds ? l->cap_fds * 2 : 8;
        l->fds = suki_realloc(l->fds, l->cap_fds * sizeof(*l->fds));
    }
    l->fds[l->n_fds++] = (struct deliver_lane_fd){fd, st.st_dev, st.st_ino};
out:
    pthread_mutex_unlock(&l->hub->mu);
    return fd;
}

static int close_socket_cb(void *clientp, curl_socket_t fd)
{
    struct deliver_lane *l = clientp;

    pthread_mutex_lock(&l->hub->mu);
    for (size_t i = 0; i < l->n_fds; i++) {
        if (l->fds[i].fd == fd) {
            l->fds[i] = l->fds[--l->n_fds];
            break;
        }
    }
    pthread_mutex_unlock(&l->hub->mu);
    return close(fd);
}

/* Shut down the read side of every socket of l: a wait for a reply ends at
 * once (the read sees EOF), and a QUIT can still be sent. Only sockets
 * that are still the lane's: a stale number may be another lane's
 * connection in the middle of a transfer, which would then fail "response
 * reading failed". Caller holds hub->mu. */
static void shut_reads_locked(struct deliver_lane *l)
{
    for (size_t i = 0; i < l->n_fds;) {
        if (lane_fd_same(&l->fds[i])) {
            shutdown(l->fds[i].fd, SHUT_RD);
            i++;
        } else {
            l->fds[i] = l->fds[--l->n_fds];
        }
    }
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
/* running transfers                                                   */

/* Start x in l: a spool write now (reported with its chunk, ss), SMTP and
 * HTTP in the multi handle. */
static void run(struct deliver_lane *l, struct deliver_xfer *x,
                struct deliver_spool *ss)
{
    const char *bad = NULL;
    CURL *e;

    if (x->conf->kind == SUKI_TRANSPORT_SPOOL) {
        deliver_spool_write(l, x, ss);
        return;
    }
    /* idle connections kept for reuse: this transport's worth */
    long want = x->conf->max_connections > 4 ? x->conf->max_connections : 4;
    if (want != l->maxconnects) {
        curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, want);
        l->maxconnects = want;
    }
    e = easy_get(l);
    if (!e) {
        finish_local(l, x, SUKI_DISPATCH_TEMPFAIL, "curl_easy_init failed");
        return;
    }
    x->easy = e;
    x->errbuf[0] = '\0';
    SETOPT(e, CURLOPT_PRIVATE, (void *)x);
    SETOPT(e, CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* an aborted transfer does not wait for a name lookup to finish */
    SETOPT(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    SETOPT(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    SETOPT(e, CURLOPT_OPENSOCKETDATA, l);
    SETOPT(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    SETOPT(e, CURLOPT_CLOSESOCKETDATA, l);
    SETOPT(e, CURLOPT_TIMEOUT_MS, (long)x->conf->timeout_ms);
    SETOPT(e, CURLOPT_URL, x->conf->url);
    const char *kbad = x->conf->kind == SUKI_TRANSPORT_SMTP
                           ? deliver_smtp_setup(x, e)
                           : deliver_http_setup(x, e);
    if (kbad)
        bad = kbad;
    if (bad) {
        char *msg = suki_asprintf("curl option %s not supported", bad);
        easy_put(l, x);
        finish_local(l, x, SUKI_DISPATCH_TEMPFAIL, msg);
        free(msg);
        return;
    }
    TAILQ_INSERT_TAIL(&l->running, x, link);
    CURLMcode mc = curl_multi_add_handle(l->multi, e);
    if (mc != CURLM_OK) {
        TAILQ_REMOVE(&l->running, x, link);
        char *msg =
            suki_asprintf("curl_multi_add_handle: %s", curl_multi_strerror(mc));
        easy_put(l, x);
        finish_local(l, x, SUKI_DISPATCH_TEMPFAIL, msg);
        free(msg);
    }
}

/* Take the finished transfers out of the multi handle. A failure after a
 * stop was asked for is reported as cancelled: it is most likely the
 * shutdown of its socket. */
static void drain(void *arg)
{
    struct deliver_lane *l = arg;
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode cc = msg->data.result;
        char *priv = NULL;
        struct deliver_xfer *x;

        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        x = (struct deliver_xfer *)(void *)priv;
        if (cc != CURLE_OK && x->conf->kind == SUKI_TRANSPORT_SMTP)
            kill_connection(e); /* not HTTP: an h2 connection is shared */
        curl_multi_remove_handle(l->multi, e);
        TAILQ_REMOVE(&l->running, x, link);
        if (cc != CURLE_OK && lane_stopping(l)) {
            finish_cancelled(l, x);
        } else {
            if (x->conf->kind == SUKI_TRANSPORT_SMTP)
                deliver_smtp_outcome(x, cc);
            else
                deliver_http_outcome(x, cc);
            TAILQ_INSERT_TAIL(&l->out, x, link);
        }
        easy_put(l, x);
    }
    lane_flush(l);
}

/* ------------------------------------------------------------------ */
/* the lane's loop                                                     */

/* The inbox has work, or a stop was asked for. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_lane *l = arg;
    struct deliver_xq batch;
    struct deliver_xfer *x;
    struct deliver_spool ss;
    bool stop;

    (void)fd;
    (void)what;
    deliver_spool_init(&ss);
    deliver_efd_drain(l->efd);
    TAILQ_INIT(&batch);
    pthread_mutex_lock(&l->hub->mu);
    TAILQ_CONCAT(&batch, &l->inbox, link);
    stop = l->stop;
    pthread_mutex_unlock(&l->hub->mu);
    while ((x = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, x, link);
        /* A batch may hold a whole spool window: a stop asked for
         * meanwhile waits for the file being written only. */
        if (!stop && x->conf->kind == SUKI_TRANSPORT_SPOOL && lane_stopping(l))
            stop = true;
        if (stop)
            finish_cancelled(l, x);
        else
            run(l, x, &ss);
        if (ss.n == 0)
            lane_flush(l); /* spool results go back by the chunk */
    }
    deliver_spool_sync(l, &ss);
    lane_flush(l);
    if (!stop)
        return;
    while ((x = TAILQ_FIRST(&l->running)) != NULL) {
        TAILQ_REMOVE(&l->running, x, link);
        curl_multi_remove_handle(l->multi, x->easy);
        easy_put(l, x);
        finish_cancelled(l, x);
    }
    lane_flush(l);
    event_base_loopbreak(l->base);
}

/* Free the lane's loop and curl state (the thread's last act before it
 * reports itself exited). */
static void lane_teardown(struct deliver_lane *l)
{
    /* curl_multi_cleanup closes the cached connections; for SMTP it sends
     * QUIT and then blocks waiting for the reply, for as long as a hung
     * server likes. Shutting down the read side first keeps the QUIT but
     * makes that wait end at once. */
    pthread_mutex_lock(&l->hub->mu);
    shut_reads_locked(l);
    pthread_mutex_unlock(&l->hub->mu);
    suki_curl_ev_free(l->ce);
    l->ce = NULL;
    l->multi = NULL;
    for (size_t i = 0; i < l->n_pool; i++)
        curl_easy_cleanup(l->pool[i]);
    l->n_pool = 0;
    if (l->wake)
        event_free(l->wake);
    l->wake = NULL;
    if (l->base)
        event_base_free(l->base);
    l->base = NULL;
}

static void *lane_main(void *arg)
{
    struct deliver_lane *l = arg;
    struct deliver_hub *h = l->hub;

    event_base_dispatch(l->base);
    lane_teardown(l);
    lane_flush(l);
    pthread_mutex_lock(&h->mu);
    l->exited = true;
    pthread_mutex_unlock(&h->mu);
    /* l may be freed from here on */
    deliver_efd_signal(h->efd);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* front side                                                          */

static struct deliver_lane *thread_new(void *ctx, struct deliver_hub *hub,
                                       struct suki_err *err)
{
    struct deliver_lane *l = suki_calloc(1, sizeof(*l));
    sigset_t all, old;
    int rc;

    (void)ctx;
    l->be = &deliver_threads;
    l->hub = hub;
    l->id = hub->next_id++;
    l->pid = getpid();
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    TAILQ_INIT(&l->inbox);
    TAILQ_INIT(&l->running);
    TAILQ_INIT(&l->out);
    TAILQ_INIT(&l->outbox);
    if (l->efd < 0) {
        suki_err_set(err, -errno, "dispatch: eventfd: %s", strerror(errno));
        goto fail;
    }
    l->base = event_base_new();
    l->ce = l->base ? suki_curl_ev_new(l->base, drain, l) : NULL;
    l->multi = l->ce ? suki_curl_ev_multi(l->ce) : NULL;
    if (!l->base || !l->multi) {
        suki_err_set(err, -ENOMEM,
                     "dispatch: cannot create a worker's event "
                     "loop or curl multi handle");
        goto fail;
    }
    l->wake = event_new(l->base, l->efd, EV_READ | EV_PERSIST, wake_cb, l);
    if (!l->wake || event_add(l->wake, NULL) != 0) {
        suki_err_set(err, -ENOMEM, "dispatch: cannot create a worker's events");
        goto fail;
    }
    /* signals are for the main thread's loop */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&l->thread, NULL, lane_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        suki_err_set(err, -rc, "dispatch: cannot start a worker thread: %s",
                     strerror(rc));
        goto fail;
    }
    return l;
fail:
    lane_teardown(l);
    if (l->efd >= 0)
        close(l->efd);
    free(l);
    return NULL;
}

static void thread_post(struct deliver_lane *l, struct deliver_xq *batch)
{
    bool was_empty;

    if (TAILQ_EMPTY(batch))
        return;
    pthread_mutex_lock(&l->hub->mu);
    was_empty = TAILQ_EMPTY(&l->inbox);
    TAILQ_CONCAT(&l->inbox, batch, link);
    pthread_mutex_unlock(&l->hub->mu);
    if (was_empty)
        deliver_efd_signal(l->efd);
}

static void thread_stop(struct deliver_lane *l, bool abort)
{
    pthread_mutex_lock(&l->hub->mu);
    l->stop = true;
    if (abort)
        shut_reads_locked(l);
    pthread_mutex_unlock(&l->hub->mu);
    deliver_efd_signal(l->efd);
}

static bool thread_exited(struct deliver_lane *l)
{
    bool e;

    pthread_mutex_lock(&l->hub->mu);
    e = l->exited;
    pthread_mutex_unlock(&l->hub->mu);
    return e;
}

static void thread_join(struct deliver_lane *l)
{
    if (!l)
        return;
    pthread_join(l->thread, NULL);
    close(l->efd);
    free(l->fds);
    free(l);
}

const struct deliver_backend deliver_threads = {
    .lane_new = thread_new,
    .post = thread_post,
    .stop = thread_stop,
    .exited = thread_exited,
    .join = thread_join,
    .conf_gone = NULL, /* the lanes hold their own references */
};
