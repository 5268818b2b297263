/* keys.h - the Redis key schema: every key suki keeps, how its name is
 * built from the configured prefix P (redis.prefix, default "suki"), and the
 * job key and job body formats.
 *
 * This list is the one place the schema is written down. C builds names
 * with the functions below (docs/ARCHITECTURE.md has the same table with
 * every field); scripts get their key names (or P) in KEYS
 * and ARGV, except where a script spells a name itself: that is noted as
 * "Lua:" next to the key, and a rename must change those files too.
 *
 *   name                  type    holds                              TTL
 *   P:jobs                zset    job keys, scored by due time (epoch ms;
 *                                 while claimed: the lease end)      none
 *                                 Lua: intake-apply.lua
 *   P:job:<client>        hash    job key -> job body (below); client
 *                                 percent-encoded as in job keys     none
 *                                 Lua: intake-apply.lua; sched-*.lua and
 *                                 ctl-jobs-cancel.lua get "P:job:"
 *   P:dead                stream  dead letters (kind, reason, payload)
 *                                 trimmed by intake-trim.lua         none
 *                                 Lua: intake-apply.lua
 *   P:lasterr             hash    stream entry id -> why it could not be
 *                                 applied (cleared on ack)           none
 *                                 Lua: intake-apply.lua
 *   P:stats               hash    event counters (applied, duplicate,
 *                                 invalid, poison)                   none
 *                                 Lua: intake-apply.lua
 *   P:client-events       hash    client id -> events applied        none
 *                                 Lua: intake-apply.lua
 *   P:suppressed          set     lower-cased addresses no campaign
 *                                 mails                              none
 *                                 Lua: intake-apply.lua
 *   P:seen:<event id>     string  the stream id that applied the event
 *                                 (duplicate check)     intake.dedup_window
 *                                 Lua: intake-apply.lua
 *   P:client:<id>         hash    the client's profile fields        none
 *                                 Lua: intake-apply.lua, campaign-take.lua,
 *                                 campaign-walk.lua
 *   P:sent:<message id>   string  sent marker: the message went out
 *                                 SUKI_KEY_SENT_TTL_S (30 days)
 *                                 Lua: campaign-take.lua, campaign-walk.lua
 *   P:daemon:<consumer>   hash    heartbeat: pid, version, started,
 *                                 updated, counters, transports
 *                                 SUKI_HEARTBEAT_TTL_S (heartbeat.h)
 *   P:secret              string  the unsubscribe secret shared by every
 *                                 sukid on this Redis                none
 *   P:campaigns           set     campaign names                     none
 *   P:campaign:<name>     hash    the campaign: state, counters, settings
 *                                 none; Lua: campaign-claim.lua
 *   P:cledger:<name>      hash    client id -> outcome               none
 *   P:cpending:<name>     set     client ids queued, waiting for a runner
 *   P:cinflight:<name>    set     client ids taken by the runner holding
 *                                 the lease                          none
 *   P:clock:<name>        string  the runner lease: its token
 *                                 SUKI_CAMPAIGN_LEASE_MS (campaign.h)
 *                                 Lua: campaign-claim.lua
 *
 *   P:events              stream  the intake stream, unless intake.stream
 *                                 names another                      none
 *
 * The stream's consumer group and the intake lists are named in the
 * configuration (intake.group, intake.lists). */
#ifndef SUKI_STORE_KEYS_H
#define SUKI_STORE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct suki_event;

/* Names of the keys above, without "P:" (and without ":<id>"). */
#define SUKI_KEY_EVENTS "events"
#define SUKI_KEY_JOBS "jobs"
#define SUKI_KEY_JOB "job"
#define SUKI_KEY_DEAD "dead"
#define SUKI_KEY_LASTERR "lasterr"
#define SUKI_KEY_STATS "stats"
#define SUKI_KEY_CLIENT_EVENTS "client-events"
#define SUKI_KEY_SUPPRESSED "suppressed"
#define SUKI_KEY_SEEN "seen"
#define SUKI_KEY_CLIENT "client"
#define SUKI_KEY_SENT "sent"
#define SUKI_KEY_DAEMON "daemon"
#define SUKI_KEY_SECRET "secret"
#define SUKI_KEY_CAMPAIGNS "campaigns"
#define SUKI_KEY_CAMPAIGN "campaign"
#define SUKI_KEY_CLEDGER "cledger"
#define SUKI_KEY_CPENDING "cpending"
#define SUKI_KEY_CINFLIGHT "cinflight"
#define SUKI_KEY_CLOCK "clock"

/* How long a sent marker stays: a message is not sent twice within it. */
#define SUKI_KEY_SENT_TTL_S (30 * 86400)

/* "P:name". Returns owned. */
char *suki_key(const char *prefix, const char *name);
/* "P:kind:id" (id as given: callers pass what the schema says, e.g. a
 * message id or a campaign name). id "" gives "P:kind:", the prefix of
 * every such key (for a SCAN pattern or a script's ARGV). Returns owned. */
char *suki_key_id(const char *prefix, const char *kind, const char *id);
/* The same into buf[size]: returns the length, or -1 when it does not fit
 * (buf then holds a truncated name). For hot paths that build many. */
int suki_key_id_buf(char *buf, size_t size, const char *prefix,
                    const char *kind, const char *id);

/* ---- job keys ------------------------------------------------------ */

/* Longest job key schedule() accepts (bytes). */
#define SUKI_JOB_KEY_MAX 512

/* "rule:client:subject:slot", each component percent-encoded for ':',
 * '%', whitespace and control characters ("%3A"), so keys are unambiguous
 * and safe on a command line. subject and slot may be NULL (empty).
 * Returns owned. */
char *suki_job_key(const char *rule, const char *client, const char *subject,
                   const char *slot);
/* Prefix of every key of rule+client (subject NULL) or of rule+client+
 * subject ("" is the empty subject). Returns owned. */
char *suki_job_key_prefix(const char *rule, const char *client,
                          const char *subject);

/* Split a job key into its components, percent-decoded. On success
 * returns 0 and the four owned strings (subject and slot "" when empty);
 * returns -EINVAL when key does not have four components, rule or client
 * is empty, or an escape is malformed. Any out pointer may be NULL. */
int suki_job_key_split(const char *key, char **rule, char **client,
                       char **subject, char **slot);
/* The Redis hash holding the bodies of client's jobs:
 * "<prefix>:job:<client, percent-encoded as in job keys>". client may be
 * NULL when key (a job key or a key prefix) is given instead: the client
 * component of the key is used as it is. Returns owned, or NULL when key has
 * no client component. */
char *suki_job_hash_key(const char *prefix, const char *client,
                        const char *key);
/* The client component of a job key or key prefix, as encoded in it
 * (borrowed: *c points into key, *len bytes). false when there is none. */
bool suki_job_key_client(const char *key, const char **c, size_t *len);

/* ---- job bodies ---------------------------------------------------- */

/* Members of a stored job body (a compact JSON object): the body holds
 * only what the key and the rule's configuration do not say. */
#define SUKI_JOB_DUE "d"      /* due time, UTC epoch ms (required) */
#define SUKI_JOB_EVENT "e"    /* the triggering event (see below) */
#define SUKI_JOB_TEMPLATE "t" /* plugin's template, when not the rule's */
#define SUKI_JOB_CHANNEL "c"  /* plugin's channel, when not the rule's */
#define SUKI_JOB_NOTIFY "n"   /* plugin's notify list, when not the rule's */
#define SUKI_JOB_ATTEMPT "a"  /* failed delivery attempts so far */
#define SUKI_JOB_RETRY "r"    /* time of the next attempt, epoch ms */
/* Members of the stored event; its client is the key's. */
#define SUKI_JOB_EV_TYPE "t"
#define SUKI_JOB_EV_AT "a" /* epoch ms */
#define SUKI_JOB_EV_ID "i"
#define SUKI_JOB_EV_MANAGER "m"
#define SUKI_JOB_EV_DATA "d"

/* What a new job's body says (all borrowed; NULL / 0 = absent). */
struct suki_job_fields {
    int64_t due_ms;                 /* > 0 */
    const struct suki_event *event; /* the triggering event */
    const char *template_name;      /* the plugin's own choices */
    const char *channel;
    const char *const *notify;
    size_t n_notify;
};

/* Encode a new job's body. Returns owned, or NULL when a string is not
 * valid UTF-8 (JSON cannot carry it). */
char *suki_job_body(const struct suki_job_fields *f);

/* A job rebuilt from its key and stored body. All owned; release with
 * suki_jobdata_clear(). */
struct suki_jobdata {
    char *key; /* the key as given */
    char *rule;
    char *client;
    char *subject;       /* "" when none */
    char *slot;          /* "" when none */
    char *template_name; /* NULL: the rule's (suki_jobdata_defaults) */
    char *channel;       /* NULL: the rule's (suki_jobdata_defaults) */
    char **notify;       /* n_notify == 0: the rule's */
    size_t n_notify;
    int64_t due_ms;
    int attempt;              /* failed delivery attempts so far */
    int64_t retry_at_ms;      /* next attempt when retrying, else 0 */
    struct suki_event *event; /* the triggering event, or NULL */
};

/* Parse a job from its key and body (body[0..len), need not end in NUL).
 * The event is built from the parsed JSON directly (suki_event_new). On
 * success returns 0 and fills *out (caller owns; clear it with
 * suki_jobdata_clear()); on a malformed key or body returns -EINVAL with
 * err filled and *out left cleared. Bodies written before the compact
 * format (with "rule", "client", ... members) are refused. */
int suki_job_parse(const char *key, const char *body, size_t len,
                   struct suki_jobdata *out, struct suki_err *err);
/* Fill what the body left to the rule from conf's rule j->rule: template,
 * channel and notify (the job's own values win); channel "email" when the
 * rule is not configured. Returns true when the rule was found. conf
 * borrowed. */
bool suki_jobdata_defaults(struct suki_jobdata *j,
                           const struct suki_conf *conf);
/* Free what a suki_jobdata owns and zero it. Accepts a zeroed struct. */
void suki_jobdata_clear(struct suki_jobdata *j);

/* The body with its retry state replaced: attempt and retry_at_ms (0
 * removes them), and the due time when due_ms > 0. Every other member is
 * kept. Returns owned, or NULL when body is not a JSON object. */
char *suki_job_body_update(const char *body, int attempt, int64_t retry_at_ms,
                           int64_t due_ms);
/* Read the retry state of a body (0 when absent or out of range). Returns
 * 0, or -EINVAL when body is not a JSON object. */
int suki_job_body_retry(const char *body, int *attempt, int64_t *retry_at_ms);

#endif
