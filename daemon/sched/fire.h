/* fire.h - the fire path, private to the scheduler (daemon/sched/): what
 * happens to a job that fell due. Only sched.c includes this header, and
 * fire.c includes nothing of sched.c: the scheduler hands a claimed job
 * down, the fire path hands one settle record back through the callback
 * it was created with. So a job goes one way, claim -> fire -> dispatcher,
 * and its outcome comes back as a completion, never as a call into the
 * scheduler's internals.
 *
 * For each claimed job: parse the key and body; read the client profile
 * (HGETALL P:client:<id>); ask the rule's plugin (suki_rules_on_due: SEND,
 * DROP, DEFER); resolve the recipients; compose one message per recipient
 * (deliver/compose.h: the rule's template in the client's locale, MIME for
 * email, a JSON body for webhooks); skip those whose P:sent:<message id>
 * marker exists (a previous run died after sending; one MGET for all the
 * jobs that got that far in one turn of the loop); hand the rest to
 * dispatch and settle the job from the results: complete, reschedule with
 * backoff (TEMPFAIL), dead-letter per recipient (PERMFAIL, exhausted
 * retries).
 *
 * Without a dispatcher (D->dispatch NULL) the built-in log action stands in
 * for delivery: the message is logged and counts as sent. */
#ifndef SUKI_FIRE_H
#define SUKI_FIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct suki_daemon;
struct suki_fire;
struct suki_sched;

/* One claimed job, owned by the scheduler until it is settled; the fire
 * path reads key and body and tests orphaned, nothing else. */
struct suki_sched_job {
    char *key;  /* the job key (in the job's own allocation) */
    char *body; /* the body exactly as claimed (likewise) */
    size_t body_len;
    int64_t claimed_ms;   /* wall clock at the claim */
    int64_t lease_end_ms; /* local clock: when the lease in Redis ends */
    uint64_t renew_gen;   /* the renewal that last asked for it */
    struct suki_sched *s; /* NULL once orphaned by suki_sched_free() */
    struct suki_sched_job *prev, *next; /* in-flight list */
};

/* True once the scheduler was freed: the job can only be settled LEAVE
 * (which just frees it), and nothing of the fire path's own may be
 * touched but the job's state. */
static inline bool suki_sched_job_orphaned(const struct suki_sched_job *j)
{
    return j->s == NULL;
}

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

/* One digest op written with a completion (sched-settle.lua: H, X, N). */
struct suki_settle_op_args {
    const char *v[12]; /* v[0] the op letter, then its arguments */
    size_t n;
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
    const struct suki_settle_op_args *ops; /* digest holds and releases */
    size_t n_ops;
};

/* The scheduler's completion: settle j (consumed: freed there) as st says
 * (borrowed). Called exactly once per fired job, possibly from inside
 * suki_fire_job(), and also for an orphaned job (then it only frees j). */
typedef void (*suki_fire_settle_cb)(struct suki_sched_job *j,
                                    const struct suki_settle *st);

/* reports.monthly: make sure the planner job of the next monthly report
 * exists (a deterministic key per month: every sukid may ask). */
void suki_fire_report_ensure(struct suki_fire *f);

/* Create the fire path on D (borrowed, must outlive it); every fired job
 * ends in settle. Never NULL. */
struct suki_fire *suki_fire_new(struct suki_daemon *D,
                                suki_fire_settle_cb settle);

/* Free (NULL is fine). Jobs in flight are not touched: they were orphaned
 * by the scheduler and free themselves when their callbacks come. */
void suki_fire_free(struct suki_fire *f);

/* Fire one claimed job. Ownership of j stays with the scheduler until the
 * fire path hands it to settle, possibly from inside this call. Each
 * accepted message is logged at info level: job key, recipient, channel,
 * Message-ID and the server's reply. */
void suki_fire_job(struct suki_fire *f, struct suki_sched_job *j);

/* False while the dispatcher has no room for more (full, or backlogged
 * past the high-water mark): the scheduler claims nothing then. */
bool suki_fire_has_room(const struct suki_fire *f);

/* ---- pure helpers, exported for the unit tests ---- */

/* Retry delay before attempt number `attempt` (1 = the first retry):
 * initial * 2^(attempt-1) capped at max_ms, with "equal jitter" (a random
 * point in the upper half, from rnd), then at least retry_after_ms (the
 * server's Retry-After; capped at one day). Always >= 1 ms. */
int64_t suki_fire_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms,
                             int64_t retry_after_ms, uint64_t rnd);

#endif
