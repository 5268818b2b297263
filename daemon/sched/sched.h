/* sched.h - the durable scheduler: jobs in Redis, claimed with a lease,
 * fired through the fire path (fire.h, private to this folder), settled in
 * batches.
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

#endif
