/* dispatch_thread.h - private to dispatch.c and dispatch_thread.c: the
 * records both halves of the dispatcher share, and the worker thread
 * ("lane") interface.
 *
 * The front (dispatch.c) runs on the caller's loop and owns every decision:
 * per-transport queues, priorities, token buckets, circuit breakers,
 * counters, metrics, callbacks. A lane (dispatch_thread.c) is a thread with
 * its own event_base and libcurl multi handle that only carries out the
 * transfers the front hands it and hands each one back with its outcome.
 * An xfer moves between the two through mutex-protected lists and an
 * eventfd on each side; whoever holds it on one of its lists owns it, and
 * no field of it is touched by two threads at once. */
#ifndef SUKI_DISPATCH_THREAD_H
#define SUKI_DISPATCH_THREAD_H

#include <sys/queue.h>

#include <pthread.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "conf.h"
#include "dispatch.h"
#include "util.h"

#define SUKI_DISPATCH_REPLY_MAX 512
#define SUKI_DISPATCH_HTTP_KEEP 200
#define SUKI_DISPATCH_POOL_MAX 32
#define SUKI_DISPATCH_NAME_MAX 256
#define SUKI_DISPATCH_CANCELLED "cancelled: dispatcher shut down"

/* Immutable snapshot of one transport's settings. A running transfer holds
 * a reference so a reload can replace the transport's settings under it.
 * refs is changed on the caller's thread only; lanes read the other fields,
 * which never change after creation. */
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
    /* delivery agent (agent.c): the id it knows these settings by, and the
     * agent (and its generation) that has them; front only */
    uint64_t wire_id;
    struct suki_agent *agent;
    unsigned wire_gen;
};

enum xstate {
    X_QUEUED,   /* on its transport's queue (front) */
    X_HANDED,   /* given to a lane: outbox, inbox, running, or coming back */
    X_DEFERRED, /* on the front's deferred list: a local result */
};

struct transport;
struct lane;

/* One message. The front fills the message part and the settings before
 * handing it over; the lane fills the trace and the outcome; the front
 * reads the outcome after it came back. */
struct xfer {
    TAILQ_ENTRY(xfer) link; /* on exactly one list at a time */
    /* front only */
    struct transport *t; /* alive while this xfer exists (nxfers) */
    struct lane *lane;   /* while handed to a lane */
    enum xstate state;
    bool in_slot;                    /* counted in t->in_flight */
    int prio;                        /* 0 or 1 */
    bool probe;                      /* the breaker's half-open probe */
    struct suki_dispatch_gate *gate; /* ref or NULL: see suki_outmsg */
    suki_dispatch_cb cb;
    void *arg;
    /* the message: written by the front before the hand-over, read-only
     * afterwards */
    struct tconf *conf; /* ref taken when started */
    char *message_id;   /* owned, "" when none */
    char *from;         /* owned (SMTP) */
    char **rcpt;        /* owned (SMTP) */
    size_t n_rcpt;
    struct curl_slist *rcpt_list;
    char *body; /* owned */
    size_t body_len;
    char *sent_marker; /* owned or NULL: see suki_outmsg */
    int64_t sent_marker_ttl_s;
    uint64_t token; /* names it on the delivery agent's channel */
    /* lane only, while running */
    size_t body_off;
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    /* SMTP protocol trace, from CURLOPT_DEBUGFUNCTION (lane while running,
     * front afterwards) */
    enum suki_smtp_stage stage; /* what the next reply answers */
    size_t rcpt_sent;           /* RCPT TO commands sent */
    size_t cur_rcpt;            /* index of the last RCPT TO sent */
    int *rcpt_code;             /* owned, n_rcpt */
    char **rcpt_reply;          /* owned, n_rcpt, entries owned or NULL */
    int last_code;
    enum suki_smtp_stage last_stage;
    char last_reply[SUKI_DISPATCH_REPLY_MAX];
    /* HTTP (lane) */
    char http_body[SUKI_DISPATCH_HTTP_KEEP + 1];
    size_t http_body_len;
    char retry_after[96];
    /* outcome: set by whoever decided it (a lane, or the front for local
     * results and cancellations) */
    enum suki_dispatch_status res_status;
    int res_code;
    char *res_reply; /* owned */
    int64_t res_retry_after_ms;
    bool res_cancelled;
    bool local; /* decided without the network: not counted by the breaker */
};

TAILQ_HEAD(xq, xfer);

/* What the lanes share with the front: the way back. */
struct hub {
    pthread_mutex_t mu; /* guards done, every lane's inbox, stop, exited
                           and fds */
    struct xq done;     /* finished xfers for the caller's loop */
    int efd;            /* eventfd the caller's loop watches */
    unsigned next_id;   /* lane ids (front only) */
};

struct sockinfo;
struct suki_agent;

/* A socket of a lane, with the identity it had when it was opened: libcurl
 * 7.88 closes a socket that never finished connecting with a plain close(),
 * not through the close callback, so a number on the list may since belong
 * to another lane's connection (or to anything else of the process). */
struct lane_fd {
    int fd;
    dev_t dev;
    ino_t ino;
};

/* A worker thread. The front creates it, hands it xfers, asks it to stop
 * and joins it; the thread runs its own loop until asked to stop. */
struct lane {
    TAILQ_ENTRY(lane) link; /* front: the dispatcher's dying list */
    struct hub *hub;
    unsigned id;
    pthread_t thread;
    int efd; /* eventfd: inbox or stop */
    /* under hub->mu */
    struct xq inbox;
    bool stop;           /* leave the loop, cancel what is left */
    bool exited;         /* the thread is about to return: join it */
    struct lane_fd *fds; /* every socket libcurl holds open in this lane */
    size_t n_fds, cap_fds;
    /* lane thread only (set up by the front before the thread starts,
     * freed by the thread before it returns) */
    struct event_base *base;
    struct event *wake;  /* efd readable */
    struct event *timer; /* curl's timeout */
    CURLM *multi;
    long maxconnects;
    struct xq running; /* in the multi handle */
    struct xq out;     /* finished, not yet posted to the hub */
    LIST_HEAD(, sockinfo) socks;
    CURL *pool[SUKI_DISPATCH_POOL_MAX]; /* reset easy handles for reuse */
    size_t n_pool;
    uint64_t seq; /* spool temporary names */
    pid_t pid;    /* spool temporary names: getpid() at the start */
    /* front only */
    struct xq outbox; /* started, to be posted at the next flush */
    size_t busy;      /* xfers handed over and not back yet */
    /* A lane run by the delivery agent (agent.c) instead of a thread here:
     * every call below goes to the agent, `inbox` holds what the agent
     * has, and no thread field is used. gen is the agent generation that
     * knows this lane. */
    struct suki_agent *agent;
    unsigned gen;
    int64_t agent_progress_ms; /* monotonic: last hand-over or answer */
    LIST_ENTRY(lane) alink;    /* on the agent's list of lanes */
};

/* Start a lane: its loop, multi handle and thread (all signals blocked in
 * it). hub is borrowed and must outlive the lane. Returns owned (free with
 * suki_dispatch_lane_join), or NULL with err filled. Caller's thread. */
struct lane *suki_dispatch_lane_new(struct hub *hub, struct suki_err *err);

/* Move every xfer on batch (emptied) to l's inbox and wake l. Ownership of
 * the xfers passes to the lane until they come back through the hub.
 * Caller's thread. */
void suki_dispatch_lane_post(struct lane *l, struct xq *batch);
/* Empty an eventfd's counter (a wake-up was seen; its count is not). */
void suki_dispatch_efd_drain(int efd);
/* Wake whoever watches an eventfd. */
void suki_dispatch_efd_signal(int efd);

/* Ask l to leave its loop. What it still holds comes back through the hub:
 * transfers it finished with their outcome, the rest cancelled. With abort,
 * also shut down the read side of every socket of l, which ends any wait
 * for a server at once (libcurl 7.88 waits blocking for the reply to the
 * final "." and to QUIT). Without abort the lane should hold no transfers.
 * Caller's thread; does not wait. */
void suki_dispatch_lane_stop(struct lane *l, bool abort);

/* True when l has stopped and suki_dispatch_lane_join will not wait. */
bool suki_dispatch_lane_exited(struct lane *l);

/* Wait for l's thread (stop it first) and free l (NULL is fine). Caller's
 * thread. */
void suki_dispatch_lane_join(struct lane *l);

/* Drop a reference to transport settings (frees them at zero). */
void suki_dispatch_tconf_unref(struct tconf *c);

/* Free an xfer's message and trace (not its conf or front fields). */
void suki_dispatch_xfer_clear(struct xfer *x);

/* Copy n bytes of s into dst (size bytes) replacing control bytes with '?'
 * and dropping a trailing CRLF; always terminated. Either thread. */
void suki_dispatch_copy_clean(char *dst, size_t size, const char *s, size_t n);

#endif
