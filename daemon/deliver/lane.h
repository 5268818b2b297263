/* lane.h - private to daemon/deliver/: the records the front, the two
 * backends, the transports and the agent share, and the backend ("lane")
 * interface.
 *
 * The front (front.c) runs on the caller's loop and owns every decision:
 * per-transport queues, priorities, token buckets, circuit breakers,
 * counters, metrics, callbacks. A lane only carries out the transfers the
 * front hands it and hands each one back with its outcome through the hub.
 * A lane comes from a backend: a worker thread with its own event_base and
 * libcurl multi handle (thread.c), or a proxy for such a thread in the
 * delivery agent process (proxy.c). The front never asks which.
 *
 * An xfer moves between the front and a lane through mutex-protected lists
 * and an eventfd on each side; whoever holds it on one of its lists owns
 * it, and no field of it is touched by two threads at once. */
#ifndef SUKI_DELIVER_LANE_H
#define SUKI_DELIVER_LANE_H

#include <sys/queue.h>

#include <pthread.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "conf.h"
#include "deliver.h"
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
struct deliver_tconf {
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
    /* the backend the front made these settings for, told when they go
     * (NULL in the agent process) */
    const struct deliver_backend *be;
    void *be_ctx;
    /* proxy backend (proxy.c), front only: the id the agent knows these
     * settings by, and the agent generation that has them (0: none) */
    uint64_t wire_id;
    unsigned wire_gen;
};

enum deliver_xstate {
    X_QUEUED,   /* on its transport's queue (front) */
    X_HANDED,   /* given to a lane: outbox, inbox, running, or coming back */
    X_DEFERRED, /* on the front's deferred list: a local result */
};

struct deliver_transport;
struct deliver_lane;

/* One message. The front fills the message part and the settings before
 * handing it over; the lane fills the trace and the outcome; the front
 * reads the outcome after it came back. */
struct deliver_xfer {
    TAILQ_ENTRY(deliver_xfer) link; /* on exactly one list at a time */
    /* front only */
    struct deliver_transport *t; /* alive while this xfer exists (nxfers) */
    struct deliver_lane *lane;   /* while handed to a lane */
    enum deliver_xstate state;
    bool in_slot;                    /* counted in t->in_flight */
    int prio;                        /* 0 or 1 */
    bool probe;                      /* the breaker's half-open probe */
    struct suki_dispatch_gate *gate; /* ref or NULL: see suki_outmsg */
    suki_dispatch_cb cb;
    void *arg;
    /* the message: written by the front before the hand-over, read-only
     * afterwards */
    struct deliver_tconf *conf; /* ref taken when started */
    char *message_id;           /* owned, "" when none */
    char *from;                 /* owned (SMTP) */
    char **rcpt;                /* owned (SMTP) */
    size_t n_rcpt;
    struct curl_slist *rcpt_list;
    char *body; /* owned */
    size_t body_len;
    char *sent_marker; /* owned or NULL: see suki_outmsg */
    char *sent_value;  /* owned or NULL ("1") */
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

TAILQ_HEAD(deliver_xq, deliver_xfer);

/* What the lanes share with the front: the way back. */
struct deliver_hub {
    pthread_mutex_t mu;     /* guards done, every lane's inbox, stop, exited
                               and fds */
    struct deliver_xq done; /* finished xfers for the caller's loop */
    int efd;                /* eventfd the caller's loop watches */
    unsigned next_id;       /* lane ids (front only) */
};

struct deliver_backend;
struct suki_curl_ev;

/* A socket of a lane, with the identity it had when it was opened: libcurl
 * 7.88 closes a socket that never finished connecting with a plain close(),
 * not through the close callback, so a number on the list may since belong
 * to another lane's connection (or to anything else of the process). */
struct deliver_lane_fd {
    int fd;
    dev_t dev;
    ino_t ino;
};

/* A lane. The front gets it from a backend, hands it xfers, asks it to stop
 * and joins it. `thread`, `efd`, `fds` and the lane-thread fields are the
 * thread backend's; a proxy lane leaves them unused (its own state wraps
 * the lane, proxy.c). */
struct deliver_lane {
    TAILQ_ENTRY(deliver_lane) link; /* front: the dispatcher's dying list */
    const struct deliver_backend *be;
    struct deliver_hub *hub;
    unsigned id;
    pthread_t thread;
    int efd; /* eventfd: inbox or stop */
    /* under hub->mu */
    struct deliver_xq inbox;
    bool stop;   /* leave the loop, cancel what is left */
    bool exited; /* the thread is about to return: join it */
    /* every socket libcurl holds open in this lane */
    struct deliver_lane_fd *fds;
    size_t n_fds, cap_fds;
    /* lane thread only (set up by the front before the thread starts,
     * freed by the thread before it returns) */
    struct event_base *base;
    struct event *wake;      /* efd readable */
    struct suki_curl_ev *ce; /* curl on base (lib/curl_ev.h) */
    CURLM *multi;            /* ce's */
    long maxconnects;
    struct deliver_xq running; /* in the multi handle */
    struct deliver_xq out;     /* finished, not yet posted to the hub */
    CURL *pool[SUKI_DISPATCH_POOL_MAX]; /* reset easy handles for reuse */
    size_t n_pool;
    uint64_t seq; /* spool temporary names */
    pid_t pid;    /* spool temporary names: getpid() at the start */
    /* front only */
    struct deliver_xq outbox; /* started, to be posted at the next flush */
    size_t busy;              /* xfers handed over and not back yet */
};

/* A kind of lane. Every function runs on the caller's thread (the one
 * that runs the front, or the agent's main thread). */
struct deliver_backend {
    /* Start a lane whose results come back through hub (borrowed, must
     * outlive the lane). Returns owned (free with join), or NULL with err
     * filled. */
    struct deliver_lane *(*lane_new)(void *ctx, struct deliver_hub *hub,
                                     struct suki_err *err);
    /* Move every xfer on batch (emptied) to l. Ownership of the xfers
     * passes to the lane until they come back through the hub. */
    void (*post)(struct deliver_lane *l, struct deliver_xq *batch);
    /* Ask l to stop. What it still holds comes back through the hub:
     * transfers it finished with their outcome, the rest cancelled. With
     * abort, also end any wait for a server at once (libcurl 7.88 waits
     * blocking for the reply to the final "." and to QUIT). Without abort
     * the lane should hold no transfers. Does not wait. */
    void (*stop)(struct deliver_lane *l, bool abort);
    /* True when l has stopped and join will not wait. */
    bool (*exited)(struct deliver_lane *l);
    /* Wait (bounded) for l to give everything back, then free l. */
    void (*join)(struct deliver_lane *l);
    /* Settings c made with this backend are being freed (may be NULL). */
    void (*conf_gone)(void *ctx, struct deliver_tconf *c);
};

/* Worker threads in this process (thread.c); ctx unused. */
extern const struct deliver_backend deliver_threads;

/* Lanes from be (ctx its argument) for every transport configured from
 * now on; the default is deliver_threads. Front (front.c). */
void deliver_front_set_backend(struct suki_dispatch *d,
                               const struct deliver_backend *be, void *ctx);

/* ---- core.c: shared by the front, the backends and the transports ---- */

/* Empty an eventfd's counter (a wake-up was seen; its count is not). */
void deliver_efd_drain(int efd);
/* Wake whoever watches an eventfd. */
void deliver_efd_signal(int efd);

/* Hand x (its outcome set) back to the front through hub. Either thread. */
void deliver_hub_put(struct deliver_hub *hub, struct deliver_xfer *x);

/* Set x's outcome (reply borrowed, copied; NULL is ""). */
void deliver_xfer_set_result(struct deliver_xfer *x,
                             enum suki_dispatch_status st, int code,
                             const char *reply);

/* Drop a reference to transport settings (frees them at zero). */
void deliver_tconf_unref(struct deliver_tconf *c);

/* Free an xfer's message and trace (not its conf or front fields). */
void deliver_xfer_clear(struct deliver_xfer *x);

/* Copy n bytes of s into dst (size bytes) replacing control bytes with '?'
 * and dropping a trailing CRLF; always terminated. Either thread. */
void deliver_copy_clean(char *dst, size_t size, const char *s, size_t n);

#endif
