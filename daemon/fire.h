/* fire.h - what happens to a job that fell due.
 *
 * For each claimed job: parse the key and body; read the client profile
 * (HGETALL P:client:<id>); ask the rule's plugin (suki_rules_on_due: SEND,
 * DROP, DEFER); resolve the recipients; render the rule's template in the
 * client's locale; build one message per recipient (MIME for email, a JSON
 * body for webhooks); skip those whose P:sent:<message id> marker exists
 * (a previous run died after sending; one MGET for all the jobs that got
 * that far in one turn of the loop); hand the rest to dispatch and settle
 * the job from the results: complete, reschedule with backoff (TEMPFAIL),
 * dead-letter per recipient (PERMFAIL, exhausted retries).
 *
 * Without a dispatcher (D->dispatch NULL) the built-in log action stands in
 * for delivery: the message is logged and counts as sent. */
#ifndef SUKI_FIRE_H
#define SUKI_FIRE_H

#include <stddef.h>
#include <stdint.h>

struct suki_daemon;
struct suki_fire;
struct suki_sched;
struct suki_sched_job;

/* Create the fire path of scheduler s on D (both borrowed, must outlive
 * it). Never NULL. */
struct suki_fire *suki_fire_new(struct suki_daemon *D, struct suki_sched *s);

/* Free (NULL is fine). Jobs in flight are not touched: they were orphaned
 * by the scheduler and free themselves when their callbacks come. */
void suki_fire_free(struct suki_fire *f);

/* Fire one claimed job. Ownership of j stays with the scheduler; the fire
 * path calls suki_sched_settle(j, ...) exactly once, possibly from inside
 * this call. Each accepted message is logged at info level: job key,
 * recipient, channel, Message-ID and the server's reply. */
void suki_fire_job(struct suki_fire *f, struct suki_sched_job *j);

/* ---- pure helpers, exported for the unit tests ---- */

/* Stable Message-ID of the message for recipient rcpt of job key due at
 * due_ms: the same three always give the same id, so a retry replaces a
 * spool file and meets its P:sent marker. from_addr gives the domain.
 * Returns owned "<hex@domain>". */
char *suki_fire_message_id(const char *key, int64_t due_ms, const char *rcpt,
                           const char *from_addr);

/* Webhook request body for format ("json" or "slack"; NULL = json).
 * Returns owned compact JSON. */
char *suki_fire_webhook_body(const char *format, const char *subject,
                             const char *text, const char *client,
                             const char *rule);

#endif
