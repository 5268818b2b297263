/* ops.h - the operator's operations, one implementation behind sukictl
 * (synchronous hiredis) and the console's JSON API (the daemon's loop).
 *
 * Each operation is a script of lib/store (ops-*.lua, ctl-*.lua) plus what
 * is here: the arguments it takes and the JSON its reply becomes. The two
 * callers only send the script their own way and print or serve the JSON,
 * so `sukictl status --json` and GET /api/v1/overview cannot disagree. */
#ifndef SUKI_OPS_H
#define SUKI_OPS_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "redis.h"

/* Keys then arguments of ops-overview.lua (SUKI_OPS_OVERVIEW_KEYS keys). */
#define SUKI_OPS_OVERVIEW_KEYS 5
void suki_ops_overview_args(const struct suki_conf *c,
                            struct suki_redis_args *a);
/* Its reply as JSON: stream_length, group, consumers, pending, lag,
 * lag_seconds, dead_entries, jobs_scheduled, events_*, daemons (each with
 * its transports), breaker_open, replicas_short. *breaker_open: a transport's
 * breaker is not closed. Returns a new object, or NULL when the reply is not
 * the script's. */
json_t *suki_ops_overview_json(const struct suki_conf *c, const redisReply *r,
                               bool *breaker_open);

/* A JSON string of a producer's bytes: valid UTF-8 as is, otherwise each
 * byte that is not printable ASCII as \xNN. Returns a new reference. */
json_t *suki_ops_json_bytes(const char *s, size_t n);

/* One dead letter, an XRANGE element {id, {field, value...}}: an object
 * with id, every field ("at" as RFC 3339 too: at_ms is the number).
 * NULL when e is not an entry. */
json_t *suki_ops_dead_json(const redisReply *e);

/* One scheduled job: key, due (RFC 3339) and due_ms, next_ms (its score),
 * rule, client, subject, template, channel, attempt, and error when the
 * body does not parse (body NULL: gone meanwhile). */
json_t *suki_ops_job_json(const struct suki_conf *c, const char *key,
                          int64_t score, const char *body, size_t body_len);

/* Keys and arguments of ops-job.lua for op ("run", "hold", "release"):
 * 2 keys; its reply 1 done, 0 no such job, -1 in flight (see the
 * script). Of ctl-jobs-cancel.lua: 2 keys. Of ctl-intake-replay.lua: 3
 * keys. Of ops-jobs-page.lua: 1 key (min, max: scores; skip, count). */
void suki_ops_job_args(const struct suki_conf *c, const char *op,
                       const char *key, struct suki_redis_args *a);
void suki_ops_cancel_args(const struct suki_conf *c, const char *key,
                          struct suki_redis_args *a);
/* force: the replayed job is sent however late (max_lateness). */
void suki_ops_replay_args(const struct suki_conf *c, const char *id, bool force,
                          struct suki_redis_args *a);
void suki_ops_jobs_page_args(const struct suki_conf *c, int64_t min,
                             int64_t max, int64_t skip, int64_t count,
                             struct suki_redis_args *a);

/* Keys and arguments of ops-campaigns.lua (1 key): one campaign, or all
 * of them with name NULL. */
void suki_ops_campaigns_args(const struct suki_conf *c, const char *name,
                             struct suki_redis_args *a);
/* Its reply as an array of campaign objects: campaign, state, reason,
 * template, audience, rate, owner, created/start_at/started/finished
 * (RFC 3339 or null), recipients, sent, failed, skipped,
 * skipped_by_reason, queued, remaining (null: unknown yet),
 * remaining_exact, walk_progress, summary, runner. NULL when the reply is
 * not the script's. */
json_t *suki_ops_campaigns_json(const redisReply *r);
/* Keys and arguments of ctl-campaign-control.lua (1 key) for cmd (pause,
 * resume, cancel). */
void suki_ops_campaign_control_args(const struct suki_conf *c, const char *name,
                                    const char *cmd, struct suki_redis_args *a);
/* Keys and arguments of ops-client.lua (SUKI_OPS_CLIENT_NKEYS keys) for
 * client id. */
#define SUKI_OPS_CLIENT_NKEYS 6
void suki_ops_client_args(const struct suki_conf *c, const char *id,
                          struct suki_redis_args *a);
/* Its reply: {client, profile (fields as strings, "updated" RFC 3339,
 * "events" the events applied; the "at:" fields left out), jobs (as
 * suki_ops_job_json, plus "held", in the order they are next looked at),
 * timeline (newest first: {kind "event", type, at (ms), time (RFC 3339),
 * id?, summary?} or {kind "message", rule, to, at, time, message_id})}.
 * *found: a profile, a job or a timeline entry exists. NULL when the reply is
 * not the script's. */
json_t *suki_ops_client_json(const struct suki_conf *c, const char *id,
                             const redisReply *r, bool *found);

/* Whether s is a stream entry id ("ms-seq" or "ms"): what may go to XRANGE
 * and XDEL from outside. */
bool suki_ops_stream_id_ok(const char *s);

#endif
