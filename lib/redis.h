/* redis.h - hiredis async connections on the libevent loop.
 *
 * A suki_redis is one logical connection that reconnects by itself (capped
 * exponential backoff with jitter), authenticates from the password file,
 * selects the database, names itself, and loads registered Lua scripts
 * before it reports itself up. Every command carries a timeout: when the
 * oldest outstanding command is overdue the link is dropped and every
 * pending callback runs with a NULL reply. */
#ifndef SUKI_REDIS_H
#define SUKI_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct event_base;
struct suki_redis;

/* Reply callback: reply is borrowed (freed by hiredis after the callback)
 * and NULL when the link failed, timed out or was closed. r is NULL only
 * when the call's owner cancelled it (suki_redis_cancel): free what
 * belongs to the call, and send nothing. */
typedef void (*suki_redis_cb)(struct suki_redis *r, redisReply *reply,
                              void *arg);
/* Link state change: up after connect + AUTH + SELECT + script load. */
typedef void (*suki_redis_state_cb)(struct suki_redis *r, bool up, void *arg);

/* A Lua script run with EVALSHA (falls back to EVAL on NOSCRIPT). Static
 * storage; sha is filled by suki_redis_script_init. */
struct suki_redis_script {
    const char *name; /* for logs */
    const char *src;
    char sha[41];
};

/* Compute the script's SHA1 (call once before use). */
void suki_redis_script_init(struct suki_redis_script *s);

/* Create a connection and start connecting. name tags log lines and the
 * CLIENT SETNAME. conf is borrowed (only read here). Never NULL. */
struct suki_redis *suki_redis_new(struct event_base *base,
                                  const struct suki_conf *conf,
                                  const char *name, suki_redis_state_cb cb,
                                  void *arg);
/* Close the link (pending callbacks run with NULL) and free. NULL-safe. */
void suki_redis_free(struct suki_redis *r);

/* After every link and every other event of base is freed, just before
 * event_base_free(base): runs what libevent deferred (a cancelled lookup
 * frees itself there) and frees the host name resolver of that base. */
void suki_redis_cleanup(struct event_base *base);
/* Use new connection settings on the next reconnect (SIGHUP). */
void suki_redis_set_conf(struct suki_redis *r, const struct suki_conf *conf);

bool suki_redis_is_up(const struct suki_redis *r);

/* Whether an error reply says "not now" (loading, out of memory, a replica
 * or a failover, a busy script) rather than "never": the first kind is
 * worth sending again, the second fails the same way every time. */
bool suki_redis_error_is_temporary(const redisReply *reply);

/* Send a command. timeout_ms 0 = the configured command timeout (use a
 * larger value for blocking reads). Returns 0 (cb will be called exactly
 * once) or -ENOTCONN when the link is down (cb will not be called).
 * argv/lens are copied by hiredis. */
int suki_redis_argv(struct suki_redis *r, suki_redis_cb cb, void *arg,
                    int64_t timeout_ms, int argc, const char **argv,
                    const size_t *lens);
/* EVALSHA script with nkeys keys then args (argv holds keys then args). */
int suki_redis_eval(struct suki_redis *r, struct suki_redis_script *s,
                    suki_redis_cb cb, void *arg, int nkeys, int argc,
                    const char **argv, const size_t *lens);

/* The same, sent on behalf of owner (any pointer that names the caller,
 * usually its own object; NULL = no owner), so that suki_redis_cancel can
 * take the callback back. */
int suki_redis_argv_owned(struct suki_redis *r, const void *owner,
                          suki_redis_cb cb, void *arg, int64_t timeout_ms,
                          int argc, const char **argv, const size_t *lens);
int suki_redis_eval_owned(struct suki_redis *r, const void *owner,
                          struct suki_redis_script *s, suki_redis_cb cb,
                          void *arg, int nkeys, int argc, const char **argv,
                          const size_t *lens);
/* redis.min_replicas: the replicas to wait for (0: none, no WAIT is
 * ever sent). */
int suki_redis_min_replicas(const struct suki_redis *r);
/* WAIT min_replicas wait_timeout on r's link, on behalf of owner: cb gets
 * the reply once every write sent on r before it has reached that many
 * replicas or the timeout has passed (the loop never blocks: it is one
 * more command in the pipeline, whose later commands wait behind it in
 * Redis). Returns as suki_redis_argv_owned. */
int suki_redis_wait(struct suki_redis *r, const void *owner, suki_redis_cb cb,
                    void *arg);
/* Whether a WAIT reply counts enough replicas. A short answer is counted
 * (suki_metrics.redis_wait_short) and logged once until one counts enough
 * again; a NULL reply (the link is gone) is just false. */
bool suki_redis_wait_ok(const struct suki_redis *r, const redisReply *reply);

/* Cancel every pending call of owner: each callback runs now, once, with
 * r and reply NULL, and never again; the replies are still read off the
 * link in order and thrown away. For an owner going away before the link
 * does: call it first in the owner's free, while the owner is still whole.
 * NULL-safe (r or owner). A cancelled callback must not free or reset r. */
void suki_redis_cancel(struct suki_redis *r, const void *owner);

/* A growing argument vector for one command: the arguments are copied
 * one after the other into one buffer (no allocation per argument).
 * Zero-initialise; release with suki_redis_args_clear. */
struct suki_redis_args {
    char *buf; /* the arguments, each NUL-terminated */
    size_t used, cap;
    size_t *off, *len; /* per argument: offset in buf, length */
    size_t n, cap_n;   /* arguments so far */
};

/* Append s[0..len) (copied; may hold NULs). */
void suki_redis_args_add(struct suki_redis_args *a, const char *s, size_t len);
/* Append a string (NULL: the empty one). */
void suki_redis_args_str(struct suki_redis_args *a, const char *s);
/* Append an integer in decimal. */
void suki_redis_args_int(struct suki_redis_args *a, int64_t v);
/* Fill argv[0..a->n) with pointers into the buffer (valid until the next
 * append or the clear) and lens with the lengths. */
void suki_redis_args_ptrs(const struct suki_redis_args *a, const char **argv,
                          size_t *lens);
/* Free what a holds and zero it (reusable). */
void suki_redis_args_clear(struct suki_redis_args *a);

/* Strings in replies longer than cap (0: no limit) arrive cut: a string
 * the size of the original, its SHA-256 and its first
 * SUKI_REDIS_CUT_PREFIX bytes, recognised by suki_redis_cut(). A producer's
 * huge stream entry then costs sukid the one bulk hiredis is reading, not
 * a copy of every entry of a reply (and of the reply's raw bytes). */
#define SUKI_REDIS_CUT_PREFIX 4096
void suki_redis_cap_strings(struct suki_redis *r, size_t cap);

/* Whether x is a cut string; then its original *size, *sha256 (64 hex
 * digits, NUL-terminated) and the kept prefix. */
bool suki_redis_cut(const redisReply *x, size_t *size, char sha256[65],
                    const char **prefix, size_t *prefix_len);

/* Register a script to be loaded at every (re)connect. */
void suki_redis_add_script(struct suki_redis *r, struct suki_redis_script *s);

/* Synchronous connection for sukictl and tests (never in the daemon loop).
 * Returns a connected, authenticated context or NULL with err filled. */
redisContext *suki_redis_connect_sync(const struct suki_conf *conf,
                                      struct suki_err *err);

#endif
