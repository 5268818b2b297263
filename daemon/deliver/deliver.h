/* deliver.h - message delivery over SMTP, HTTP webhooks and a spool
 * directory with the libcurl multi-socket interface: the one header of
 * daemon/deliver/ for the rest of the daemon (the dispatcher, and the
 * delivery agent it can run its transfers in).
 *
 * The dispatcher delivers one message and classifies the outcome; the caller
 * does the bookkeeping (recording sent messages, retry schedules,
 * dead-letters). Per transport it keeps a bounded in-flight count
 * (max_connections; for a spool, whose one worker writes one file after the
 * other, a window that grows from max_connections to 256 while files are
 * written and falls back on a failure), a priority queue (reminders before
 * campaign mail), a token bucket for `rate`, and a circuit breaker.
 * libcurl's connection cache reuses SMTP and HTTP connections across
 * messages.
 *
 * Threads: the transfers run on worker threads of the dispatcher's own
 * (each with its own event loop), because libcurl waits blocking for some
 * SMTP replies and the spool transport fsyncs; the caller's loop never
 * waits for a server or a disk. Everything in this header is called from
 * the caller's thread (the one running the base given to
 * suki_dispatch_new), and every callback runs there. The dispatcher keeps
 * no other global state of the daemon: it sets suki_metrics' breaker_open
 * from the caller's thread only.
 *
 * Callbacks are never called from inside suki_dispatch_send() or
 * suki_dispatch_configure(); they run from the caller's event loop (or from
 * suki_dispatch_free(), see there). A callback may call suki_dispatch_send(),
 * suki_dispatch_configure() and the query functions, but must not call
 * suki_dispatch_free(). */
#ifndef SUKI_DELIVER_H
#define SUKI_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "util.h"

struct event_base;
struct suki_dispatch;

enum suki_dispatch_status {
    SUKI_DISPATCH_SENT,     /* the server accepted the message */
    SUKI_DISPATCH_TEMPFAIL, /* try again later (4xx, network, TLS, timeout) */
    SUKI_DISPATCH_PERMFAIL, /* do not retry (SMTP 5xx, HTTP 4xx, bad input) */
};

enum suki_dispatch_prio {
    SUKI_DISPATCH_PRIO_REMINDER = 0, /* goes first on a shared transport */
    SUKI_DISPATCH_PRIO_CAMPAIGN = 1,
};

/* One message to deliver. Everything is borrowed for the duration of
 * suki_dispatch_send(), which copies what it keeps. */
struct suki_outmsg {
    const char *channel;     /* transport name from the configuration */
    const char *from;        /* SMTP envelope sender, bare addr-spec
                                ("" = null sender); unused otherwise */
    const char *const *rcpt; /* SMTP envelope recipients, bare addr-specs */
    size_t n_rcpt;           /* >= 1 for SMTP; unused otherwise */
    const char *body;        /* RFC 5322 message with CRLF (SMTP, spool) or
                                the request body (webhook) */
    size_t body_len;
    const char *message_id; /* Message-ID, with or without <>; required for
                               spool (names the file), else for reports */
    int priority;           /* enum suki_dispatch_prio */
    /* Redis key (or NULL) the delivery agent sets, EX sent_marker_ttl_s,
     * as soon as the server has taken the message for every recipient:
     * the record that survives a kill -9 of sukid between the server's
     * "250" and the caller's own bookkeeping (which should set it too).
     * Ignored without an agent (suki_dispatch_set_agent). */
    const char *sent_marker;
    int64_t sent_marker_ttl_s;
    /* The marker's value (NULL = "1"): the record of what the message was
     * about (a job key, see lib/store/keys.h), read back when a reply or a
     * bounce names this Message-ID. The caller's own write sets the same. */
    const char *sent_value;
    /* NULL, or a gate (the dispatcher takes a reference) that must be open
     * when the message is handed to a transfer: see suki_dispatch_gate. */
    struct suki_dispatch_gate *gate;
};

/* A sender's permission to start transfers: a message whose gate has
 * closed (suki_mono_ms() >= open_until_ms) when a slot frees up is not
 * started but completed TEMPFAIL with cancelled set. A campaign runner
 * closes its gate where its lease may end, so that no transfer of a runner
 * that lost its lease (stalled, or cut from Redis) starts after another
 * daemon took its campaign over. Owned by whoever holds a reference; used
 * on the caller's thread only. */
struct suki_dispatch_gate {
    int refs;
    int64_t open_until_ms; /* monotonic ms; 0 = closed */
};

/* A new gate open until open_until_ms, with one reference (returned
 * owned). */
struct suki_dispatch_gate *suki_dispatch_gate_new(int64_t open_until_ms);

/* Drop one reference to g (NULL is fine); the last frees it. */
void suki_dispatch_gate_unref(struct suki_dispatch_gate *g);

/* Outcome for one SMTP recipient. */
struct suki_dispatch_rcpt {
    const char *addr;                 /* borrowed (the message's copy) */
    enum suki_dispatch_status status; /* SENT = the server took it */
    int code;                         /* reply code to RCPT; 0 when RCPT
                                         was never answered */
    const char *reply;                /* reply line to RCPT, or "" */
};

/* What the callback gets. Every pointer is borrowed and valid only until
 * the callback returns. */
struct suki_dispatch_result {
    enum suki_dispatch_status status;
    int code;               /* SMTP reply code or HTTP status of the deciding
                               reply; 0 when there was none (network error,
                               spool, refused locally) */
    const char *reply;      /* human-readable: the server's reply line, HTTP
                               status + first bytes of the body, or the
                               curl / system error; never NULL */
    int64_t retry_after_ms; /* from Retry-After on HTTP 429/503, else 0 */
    bool cancelled;         /* TEMPFAIL because the dispatcher was freed */
    const char *channel;
    const char *message_id; /* as given, or "" */
    /* SMTP only (NULL/0 otherwise): one entry per recipient, in order. When
     * status is SENT, entries whose status is not SENT were refused by the
     * server at RCPT while the message went to the others: resend only to
     * those (TEMPFAIL) or give them up (PERMFAIL). When status is not SENT
     * nobody received the message. */
    const struct suki_dispatch_rcpt *rcpts;
    size_t n_rcpts;
    size_t n_rcpt_failed; /* entries not SENT while status is SENT */
};

/* Result callback; r and everything it points to is borrowed. */
typedef void (*suki_dispatch_cb)(const struct suki_dispatch_result *r,
                                 void *arg);

enum suki_breaker_state {
    SUKI_BREAKER_CLOSED,    /* normal */
    SUKI_BREAKER_OPEN,      /* cooling down; queued messages wait */
    SUKI_BREAKER_HALF_OPEN, /* one probe message is allowed through */
};

/* Snapshot of one transport for `sukictl status` and metrics. */
struct suki_dispatch_tstate {
    enum suki_breaker_state breaker;
    int consecutive_failures; /* TEMPFAILs since the last success */
    int64_t reopen_in_ms;     /* OPEN: time until the probe, else 0 */
    size_t queued;            /* waiting for a slot, a token or the breaker */
    size_t in_flight;         /* started: handed to a worker thread */
    uint64_t sent, tempfail, permfail; /* totals since the transport was
                                          first configured */
    bool retired;                      /* removed by a reload, still draining */
};

/* Create a dispatcher whose callbacks run on base (borrowed; must outlive
 * the dispatcher). Calls curl_global_init (reference-counted by libcurl;
 * call this before starting other threads that use libcurl). No transports
 * and no threads until suki_dispatch_configure() and the first message.
 * Returns owned, or NULL with err filled. */
struct suki_dispatch *suki_dispatch_new(struct event_base *base,
                                        struct suki_err *err);

/* ---- the delivery agent ----
 *
 * A process of its own (sukid-agent) that runs the dispatcher's transfers,
 * and finishes them when sukid dies.
 *
 * Why a process: a message whose final "." the server has taken, but whose
 * "250" has not reached sukid's bookkeeping yet, is in doubt. If sukid is
 * killed then, the next runner cannot tell it went out and sends it again.
 * The agent owns the connections: when sukid dies (kill -9, a crash) it
 * keeps going until every transfer it holds is over, sets the sent marker
 * (suki_outmsg.sent_marker) of each message a server took, and only then
 * exits. The next runner finds the marker and does not send again. This is
 * Postfix's split between qmgr and its smtp(8) delivery agents.
 *
 * The front (queues, buckets, breakers, callbacks) stays in sukid; its
 * lanes are proxies whose transfers run on real lane threads in the agent.
 * The agent is sukid's own binary executed afresh (it inherits no heap),
 * and talks to sukid over a socketpair (wire.h).
 *
 * If the agent dies while sukid lives, its transfers come back TEMPFAIL
 * (they may have gone out: at-least-once, as before) and sukid starts a new
 * agent. Everything here runs on sukid's loop. */
struct suki_agent;

/* Start the agent. *confp (borrowed, read at each start and reload) gives
 * the Redis settings for the sent markers and the log level; base is
 * sukid's loop. Returns owned, or NULL with err filled. */
struct suki_agent *suki_agent_new(struct event_base *base,
                                  struct suki_conf *const *confp,
                                  struct suki_err *err);

/* Close the channel (the agent exits once it holds nothing) and wait up to
 * wait_ms for it; call after suki_dispatch_free. Returns 0 when it exited
 * with status 0, else -1 (logged). NULL is fine. */
int suki_agent_free(struct suki_agent *a, int64_t wait_ms);

/* sukid reloaded *confp: pass its Redis settings and log level on. */
void suki_agent_reload(struct suki_agent *a);

/* Run the transfers in delivery agent a (borrowed, must outlive d)
 * instead of threads of this process. Call before suki_dispatch_configure
 * and the first message. */
void suki_dispatch_set_agent(struct suki_dispatch *d, struct suki_agent *a);

/* The argument by which suki_agent_new starts sukid's binary as the agent:
 * argv = {"sukid-agent", SUKI_AGENT_ARG, "<channel fd>", NULL}. */
#define SUKI_AGENT_ARG "--delivery-agent"

/* The agent's main: argv as above (sukid's main hands it over when
 * argv[1] is SUKI_AGENT_ARG). Returns the exit status. */
int suki_agent_main(int argc, char **argv);

/* Abort every transfer, stop and join the worker threads, and free d (NULL
 * is fine). Each message not yet reported gets its callback now: one whose
 * outcome was already known gets that outcome (a message refused locally
 * its PERMFAIL, one a server answered before the stop its answer), every
 * other one TEMPFAIL, cancelled = true and reply "cancelled: dispatcher
 * shut down". Those callbacks must not call suki_dispatch_send (it returns
 * -ECANCELED). The wait is bounded: the read side of every socket is shut
 * down first, so neither a pending reply nor the QUIT of an idle cached
 * SMTP connection is waited for; at most one spool file write per spool
 * transport finishes. Must not be called from a dispatch callback. */
void suki_dispatch_free(struct suki_dispatch *d);

/* Apply a transport list (borrowed; copied). A transport whose name stays
 * keeps its queue, in-flight transfers, token bucket, breaker and counters;
 * transfers started after the call use the new settings, running ones finish
 * with the old. A transport no longer listed accepts no new messages but
 * finishes what it holds with its last settings, then goes away. Zero or
 * negative numbers mean the defaults (max_connections 4, timeout 30 s,
 * cooldown 30 s); rate <= 0 is unlimited; breaker_failures <= 0 disables
 * the breaker. Returns 0, or -EINVAL (a transport without a name, a
 * duplicate name, no url, a spool without a directory, a header name or
 * value with CR/LF) and then nothing is changed. Never calls callbacks. */
int suki_dispatch_configure(struct suki_dispatch *d,
                            const struct suki_transport_conf *transports,
                            size_t n);

/* Queue message m (borrowed, copied) on its channel. On 0, cb(arg) is called
 * exactly once later from the caller's event loop, never from inside this
 * call.
 * SMTP envelope addresses with CR, LF, control characters, spaces, '<' or
 * '>' (libcurl 7.88 would pass them into MAIL FROM / RCPT TO), or that
 * suki_mime_addr_valid() refuses, are refused without touching the network:
 * the callback gets PERMFAIL, code 0, "refused envelope address ...". (An
 * embedded NUL cannot be seen in a C string: it ends the address.)
 * Returns 0; -ENOENT for an unknown (or retired) channel; -ENOBUFS when
 * suki_dispatch_pending() has reached the limit (backpressure: stop claiming
 * work until a callback frees room); -EINVAL for a malformed m (no body, no
 * recipient for SMTP, no message_id for spool); -ECANCELED while being
 * freed. On error cb is not called. */
int suki_dispatch_send(struct suki_dispatch *d, const struct suki_outmsg *m,
                       suki_dispatch_cb cb, void *arg);

/* Messages accepted and not yet reported (queued + in flight + awaiting
 * their callback). The count drops just before each callback runs. This
 * and the other queries read the caller's-thread state: no lock, no wait. */
size_t suki_dispatch_pending(const struct suki_dispatch *d);

/* Limit for suki_dispatch_pending() (default 1024; 0 restores it). */
void suki_dispatch_set_max_pending(struct suki_dispatch *d, size_t max);

/* True when suki_dispatch_send() would return -ENOBUFS. */
bool suki_dispatch_full(const struct suki_dispatch *d);

/* Fill *out for transport name (borrowed). Returns 0 or -ENOENT. */
int suki_dispatch_transport_state(const struct suki_dispatch *d,
                                  const char *name,
                                  struct suki_dispatch_tstate *out);

/* Name of a status ("sent", "tempfail", "permfail"); static string. */
const char *suki_dispatch_status_name(enum suki_dispatch_status s);
/* Name of a breaker state ("closed", "open", "half-open"); static string. */
const char *suki_dispatch_breaker_name(enum suki_breaker_state s);

/* ---- pure helpers, exported for the unit tests ---- */

/* Which SMTP command a reply answered. */
enum suki_smtp_stage {
    SUKI_SMTP_CONNECT, /* greeting */
    SUKI_SMTP_EHLO,    /* EHLO/HELO */
    SUKI_SMTP_STARTTLS,
    SUKI_SMTP_AUTH,
    SUKI_SMTP_MAIL,
    SUKI_SMTP_RCPT,
    SUKI_SMTP_DATA, /* the DATA command itself */
    SUKI_SMTP_EOD,  /* the final "." */
    SUKI_SMTP_OTHER,
};

/* Classify an SMTP transfer: curl_code is the CURLcode, smtp_code the last
 * reply code (0 none), stage what it answered. 5xx to MAIL/RCPT/DATA/EOD
 * is PERMFAIL; 5xx before MAIL (greeting, EHLO, AUTH) is a transport
 * problem and TEMPFAIL; 4xx, network, TLS, timeouts TEMPFAIL. */
enum suki_dispatch_status suki_dispatch_classify_smtp(int curl_code,
                                                      int smtp_code,
                                                      enum suki_smtp_stage st);

/* Classify an HTTP transfer: 2xx SENT; 408, 429, 5xx TEMPFAIL; other 4xx
 * PERMFAIL; 1xx/3xx (redirects are not followed: a config problem) and
 * every curl error TEMPFAIL. */
enum suki_dispatch_status suki_dispatch_classify_http(int curl_code,
                                                      long http_status);

/* True when curl_code is a TLS setup/verification failure. */
bool suki_dispatch_curl_is_tls(int curl_code);

/* Parse a Retry-After value (borrowed): delta-seconds or an HTTP-date
 * (IMF-fixdate, RFC 850, asctime). now_ms is the wall clock in ms. Sets
 * *out_ms (a date in the past gives 0). Returns 0 or -EINVAL. */
int suki_dispatch_parse_retry_after(const char *value, int64_t now_ms,
                                    int64_t *out_ms);

/* Token bucket: `rate` tokens per second, at most `burst` stored. */
struct suki_dispatch_bucket {
    double rate;     /* tokens per second; <= 0 = unlimited */
    double burst;    /* capacity */
    double tokens;   /* current content */
    int64_t last_ms; /* monotonic time of the last refill */
};

/* Start full, with burst = max(1, rate / 10) (100 ms worth). */
void suki_dispatch_bucket_init(struct suki_dispatch_bucket *b, double rate,
                               int64_t now_ms);
/* Change the rate keeping the tokens (clamped to the new burst). */
void suki_dispatch_bucket_set_rate(struct suki_dispatch_bucket *b, double rate,
                                   int64_t now_ms);
/* Take one token if there is one. */
bool suki_dispatch_bucket_take(struct suki_dispatch_bucket *b, int64_t now_ms);
/* Milliseconds until one token is available (0 when one is). */
int64_t suki_dispatch_bucket_wait_ms(struct suki_dispatch_bucket *b,
                                     int64_t now_ms);

/* True when addr (borrowed) may go into MAIL FROM / RCPT TO: no bytes
 * below 0x21, no DEL, no '<', '>' and not empty unless allow_empty. On
 * false, *why (may be NULL) gets a static reason. */
bool suki_dispatch_addr_ok(const char *addr, bool allow_empty,
                           const char **why);

/* Spool file name for message_id (borrowed): surrounding <> dropped, bytes
 * outside [A-Za-z0-9._@+=-] and a leading '.' written as %XX (so distinct
 * ids give distinct names), ".eml" appended; ids over 160 bytes keep a
 * prefix plus a hash. Writes into buf. Returns 0, -EINVAL (empty id) or
 * -ENOSPC (buf too small; 256 bytes always suffice). */
int suki_dispatch_spool_name(const char *message_id, char *buf, size_t len);

#endif
