/* sched.h - the durable scheduler: jobs in Redis, claimed with a lease,
 * fired through the fire path (fire.h), settled in batches.
 *
 * Storage (docs/ARCHITECTURE.md): P:jobs (sorted set key -> due ms; a
 * claimed job's score is its lease end) and P:job:<client> (one hash per
 * client: key -> body JSON, see rules.h). The intake writes jobs; this
 * module claims due jobs with one Lua script (take up to N due keys, move
 * their score to now + lease, return them with their bodies), hands each
 * to the fire path, and
 * settles it with another script: complete (remove with its indexes, only
 * when the stored body is still the claimed one), reschedule (new due and
 * body, same condition) or leave (the lease runs out and the job comes back
 * by itself). Two daemons never hold the same lease; a dead daemon's jobs
 * come back when their lease ends.
 *
 * Wake-ups: one libevent timer armed for the earliest due time, capped at
 * 1 s (another daemon may schedule something sooner) and re-armed earlier by
 * suki_sched_nudge(). Everything runs on the daemon's loop thread. */
#ifndef SUKI_SCHED_H
#define SUKI_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct suki_daemon;
struct suki_sched;

/* Longest wait between two claims (another daemon may schedule sooner). */
#define SUKI_SCHED_MAX_SLEEP_MS 1000

/* One claimed job, owned by the scheduler until it is settled. */
struct suki_sched_job {
    char *key;  /* the job key (in the job's own allocation) */
    char *body; /* the body exactly as claimed (likewise) */
    size_t body_len;
    int64_t claimed_ms;   /* wall clock at the claim */
    int64_t lease_end_ms; /* local clock: when the lease in Redis ends */
    uint64_t renew_gen;   /* the renewal that last asked for it */
    struct suki_sched *s; /* NULL once orphaned by suki_sched_free() */
    void *fire;           /* the fire path's state (fire.c) */
    struct suki_sched_job *prev, *next; /* in-flight list */
};

enum suki_settle_op {
    SUKI_SETTLE_COMPLETE,   /* remove the job and its indexes */
    SUKI_SETTLE_RESCHEDULE, /* store new_body, due at due_ms */
    SUKI_SETTLE_LEAVE,      /* touch nothing: the lease brings it back */
};

/* A dead-letter entry written to P:dead with the settle (fields as in
 * docs/ARCHITECTURE.md; NULL fields are left out). */
struct suki_sched_dead {
    const char *kind; /* "job" | "message" */
    const char *reason;
    const char *payload;    /* the job body */
    const char *recipient;  /* for kind message, or NULL */
    const char *channel;    /* or NULL */
    const char *message_id; /* or NULL */
};

/* How a fired job ends. Everything is borrowed for the call (copied). */
struct suki_settle {
    enum suki_settle_op op;
    int64_t due_ms;           /* RESCHEDULE: next due time */
    const char *new_body;     /* RESCHEDULE: the body to store */
    const char *const *marks; /* message ids to record as sent */
    size_t n_marks;
    const struct suki_sched_dead *dead; /* dead letters to write */
    size_t n_dead;
};

/* Called when a stop has finished (or timed out). */
typedef void (*suki_sched_done_cb)(void *arg);

/* Create the scheduler on D (borrowed; must outlive it): registers its Lua
 * scripts on D->redis and starts claiming as soon as the link is up. Reads
 * D->conf, D->rules, D->templates and D->dispatch at each use, so a reload
 * that swaps them needs no call here except suki_sched_reload(). Never
 * NULL. */
struct suki_sched *suki_sched_new(struct suki_daemon *D);

/* Re-read the configuration (lease, batch, key names) after D->conf was
 * swapped. Jobs in flight finish with what they started with. */
void suki_sched_reload(struct suki_sched *s);

/* This daemon just scheduled a job due at due_ms (UTC epoch ms): wake up
 * earlier if that is sooner than the armed timer. Cheap; call it after every
 * successful write of a job. May be called from any callback. */
void suki_sched_nudge(struct suki_sched *s, int64_t due_ms);

/* Tell the scheduler the Redis link went up or down (from the link's state
 * callback): claim at once when it comes up. */
void suki_sched_redis_state(struct suki_sched *s, bool up);

/* Graceful stop: claim nothing more; jobs in flight finish and are settled
 * within D->conf->shutdown_timeout_ms, or are left leased (safe: they come
 * back when the lease ends). done(arg) is called once from the loop, never
 * from inside this call. */
void suki_sched_stop(struct suki_sched *s, suki_sched_done_cb done, void *arg);

/* Free the scheduler (NULL is fine). Jobs still waiting for a Redis or
 * dispatch callback are orphaned: their callbacks later only free them, so
 * the Redis link and the dispatcher may be freed before or after. */
void suki_sched_free(struct suki_sched *s);

/* Jobs claimed and not yet settled. */
size_t suki_sched_inflight(const struct suki_sched *s);

/* Settle a claimed job (j is consumed: it is freed here). st is borrowed.
 * Settles are batched into one script call per loop turn; the sent markers
 * are written before the job is completed, in the same atomic step. Called
 * by the fire path, possibly from inside suki_fire_job(). */
void suki_sched_settle(struct suki_sched_job *j, const struct suki_settle *st);

/* ---- pure helpers, exported for the unit tests ---- */

/* Retry delay before attempt number `attempt` (1 = the first retry):
 * initial * 2^(attempt-1) capped at max_ms, with "equal jitter" (a random
 * point in the upper half, from rnd), then at least retry_after_ms (the
 * server's Retry-After; capped at one day). Always >= 1 ms. */
int64_t suki_sched_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms,
                              int64_t retry_after_ms, uint64_t rnd);

/* The body with its attempt count set to attempt and its retry time to
 * retry_at_ms (each removed when 0); when due_ms > 0 the due time is
 * replaced too (a plugin's defer). Other members keep their order and
 * value. Returns owned JSON, or NULL when body is not a JSON object. */
char *suki_sched_body_update(const char *body, int attempt, int64_t retry_at_ms,
                             int64_t due_ms);

/* Read the attempt count and retry time of a body (0 when absent or not
 * integers). Returns 0, or -EINVAL when body is not a JSON object. */
int suki_sched_body_retry(const char *body, int *attempt, int64_t *retry_at_ms);

#endif
