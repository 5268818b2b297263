/* store/job.h - a job's key ("rule:client:subject:slot", each part
 * percent-encoded) and its body (compact JSON), the format the scheduler,
 * intake, sukictl and the scripts share. The keys they live under are in
 * store/keys.h. */
#ifndef SUKI_STORE_JOB_H
#define SUKI_STORE_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct suki_event;

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
/* 1: replayed by an operator with force, sent however late (max_lateness) */
#define SUKI_JOB_FORCED "f"
/* The event's order time (struct suki_event order_ms) when not its at;
 * right after "d", where the intake's apply script reads it. */
#define SUKI_JOB_ORDER "o"
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
 * suki_job_clear(). */
struct suki_jobdata {
    char *key; /* the key as given */
    char *rule;
    char *client;
    char *subject;       /* "" when none */
    char *slot;          /* "" when none */
    char *template_name; /* NULL: the rule's (suki_job_defaults) */
    char *channel;       /* NULL: the rule's (suki_job_defaults) */
    char **notify;       /* n_notify == 0: the rule's */
    size_t n_notify;
    int64_t due_ms;
    int attempt;              /* failed delivery attempts so far */
    int64_t retry_at_ms;      /* next attempt when retrying, else 0 */
    bool forced;              /* SUKI_JOB_FORCED: no max_lateness */
    struct suki_event *event; /* the triggering event, or NULL */
};

/* Parse a job from its key and body (body[0..len), need not end in NUL).
 * The event is built from the parsed JSON directly (suki_event_new). On
 * success returns 0 and fills *out (caller owns; clear it with
 * suki_job_clear()); on a malformed key or body returns -EINVAL with
 * err filled and *out left cleared. Bodies written before the compact
 * format (with "rule", "client", ... members) are refused. */
int suki_job_parse(const char *key, const char *body, size_t len,
                   struct suki_jobdata *out, struct suki_err *err);
/* Fill what the body left to the rule from conf's rule j->rule: template,
 * channel and notify (the job's own values win); channel "email" when the
 * rule is not configured. Returns true when the rule was found. conf
 * borrowed. */
bool suki_job_defaults(struct suki_jobdata *j, const struct suki_conf *conf);
/* Free what a suki_jobdata owns and zero it. Accepts a zeroed struct. */
void suki_job_clear(struct suki_jobdata *j);

/* The body with its retry state replaced: attempt and retry_at_ms (0
 * removes them), and the due time when due_ms > 0. Every other member is
 * kept. Returns owned, or NULL when body is not a JSON object. */
char *suki_job_body_update(const char *body, int attempt, int64_t retry_at_ms,
                           int64_t due_ms);
/* Read the retry state of a body (0 when absent or out of range). Returns
 * 0, or -EINVAL when body is not a JSON object. */
int suki_job_body_retry(const char *body, int *attempt, int64_t *retry_at_ms);

#endif
