/* intake.h - the reliable event intake of sukid.
 *
 * Reads the events stream through a consumer group on its own Redis link
 * (blocking XREADGROUP, COUNT = intake.batch), validates every entry
 * (suki_event_parse), runs the rules, and applies everything one batch
 * changes - client profiles, de-duplication markers, scheduled and cancelled
 * jobs, dead letters, shared counters and the XACKs - with one Lua script
 * call per batch, so a kill -9 at any instant leaves each event either fully
 * applied or still pending (and then redelivered). Bad input goes to the
 * dead-letter stream P:dead; entries left pending by a dead consumer are
 * claimed after intake.claim_idle; an entry delivered more than
 * intake.max_deliveries times is dead-lettered as poison with its last
 * error. Items LPUSHed on intake.lists are moved into the stream by a Lua
 * script (RPOP + XADD, atomic). Acknowledged history beyond intake.keep
 * entries is trimmed; pending entries never are. See docs/ARCHITECTURE.md
 * for the Redis keys. */
#ifndef SUKI_INTAKE_H
#define SUKI_INTAKE_H

#include <stdint.h>

struct suki_daemon;
struct suki_intake;

/* Create the intake and start it: it opens its own Redis link ("intake")
 * and starts reading once the consumer group is ready. D is borrowed and
 * must outlive the intake (D->conf, D->rules, D->redis are read live).
 * Returns owned; never NULL. */
struct suki_intake *suki_intake_new(struct suki_daemon *D);

/* D->conf was replaced (SIGHUP): take the new settings. A changed stream or
 * group name takes effect once the batch in flight is done. */
void suki_intake_reload(struct suki_intake *in);

/* Called after each batch that scheduled jobs, with the earliest due time
 * (UTC epoch ms) among them, so that a scheduler can wake up sooner. fn may
 * be NULL (no hook); arg is borrowed. */
void suki_intake_set_nudge(struct suki_intake *in,
                           void (*fn)(void *arg, int64_t earliest_due_ms),
                           void *arg);

/* Graceful stop: read nothing more (a blocking read is cut short with
 * CLIENT UNBLOCK); the batch in flight finishes applying, or is left
 * unacknowledged when Redis is unreachable. Then done(arg) is called once,
 * from the loop (never from inside this call). */
void suki_intake_stop(struct suki_intake *in, void (*done)(void *arg),
                      void *arg);

/* Close the link and free everything, before D->redis: callbacks still
 * pending there are cancelled (suki_redis_cancel). NULL-safe. */
void suki_intake_free(struct suki_intake *in);

#endif
