/* rules.h - the rule engine: plugin loading, the host table handed to rule
 * plugins, job keys and bodies, and the actions the caller applies.
 *
 * Everything here is synchronous and does no I/O except dlopen() while a
 * ruleset is loaded. The caller (intake, scheduler) reads the event and the
 * client profile, asks the ruleset for actions and applies them to Redis in
 * one atomic step together with the stream acknowledgement. Single-threaded:
 * call these functions from the loop thread only. */
#ifndef SUKI_RULES_H
#define SUKI_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "store/job.h"
#include "store/keys.h"
#include "util.h"

#include <suki/plugin.h>

struct suki_holidays;
struct suki_ruleset;

/* ---- client profile ------------------------------------------------ */

/* A client's profile: a small owned list of field/value pairs, filled by
 * the intake from Redis HGETALL. */
struct suki_rules_client_field {
    char *field; /* owned */
    char *value; /* owned */
};

struct suki_client {
    char *id;                          /* owned or NULL */
    struct suki_rules_client_field *v; /* owned array */
    size_t n, cap;
};

/* New empty profile for client id (may be NULL). Returns owned; free with
 * suki_rules_client_free(). */
struct suki_client *suki_rules_client_new(const char *id);
/* Free a profile and everything it owns. Accepts NULL. */
void suki_rules_client_free(struct suki_client *cl);
/* Set field to value (both copied; replaces an existing value). */
void suki_rules_client_set(struct suki_client *cl, const char *field,
                           const char *value);
/* The value of field or NULL (borrowed until the next set/free). cl may be
 * NULL (no profile). */
const char *suki_rules_client_get(const struct suki_client *cl,
                                  const char *field);

/* ---- actions ------------------------------------------------------- */

enum suki_action_kind {
    SUKI_ACTION_SCHEDULE, /* upsert job `key` with `body`, due at due_ms */
    SUKI_ACTION_CANCEL,   /* delete every job whose key starts with prefix */
};

/* One action. Apply them in order: a CANCEL followed by a SCHEDULE whose
 * key has the cancelled prefix leaves the new job in place. */
struct suki_action {
    enum suki_action_kind kind;
    char *key;      /* owned: SCHEDULE: the job key; CANCEL: NULL */
    char *prefix;   /* owned: CANCEL: key prefix ("rule:client:subject:"
                       or "rule:client:"); SCHEDULE: NULL */
    char *rule;     /* owned: the rule's name */
    char *client;   /* owned: the client id */
    int64_t due_ms; /* SCHEDULE: UTC epoch ms; CANCEL: 0 */
    char *body;     /* owned: SCHEDULE: compact JSON job body; else NULL */
};

/* The actions of one event (or one due job). The fields after n/cap are
 * the host's call state, private to rules.c. Initialise with
 * suki_rules_actions_init(), release with suki_rules_actions_clear(). */
struct suki_actions {
    struct suki_action *v; /* owned array of n actions */
    size_t n, cap;

    /* private to rules.c: the call in progress */
    const struct suki_ruleset *set;
    const struct suki_rule *rule;
    const struct suki_event *ev;
    const char *client;
    int64_t now_ms;
    int in_due;          /* 1 inside on_due (only defer allowed) */
    int failed;          /* a host action call was refused */
    struct suki_err err; /* why */
    int deferred;
    int64_t defer_ms;
};

/* Prepare an empty action list. */
void suki_rules_actions_init(struct suki_actions *a);
/* Free every action and leave the list empty (reusable). */
void suki_rules_actions_clear(struct suki_actions *a);

/* ---- rulesets ------------------------------------------------------ */

/* Load the plugins named by conf's rules (dlopen of
 * "<plugins_dir>/<use>.so" with RTLD_NOW|RTLD_LOCAL), check every rule's
 * settings through its plugin and report unknown keys. Every problem is
 * appended to d as FILE:LINE: message. Returns an owned ruleset (it keeps a
 * reference on conf and its own dlopen handles, so a new ruleset can be
 * loaded while an old one is still in use) or NULL when anything was wrong.
 * hol (may be NULL) is borrowed and must outlive the ruleset. */
struct suki_ruleset *suki_rules_load(struct suki_conf *conf,
                                     const struct suki_holidays *hol,
                                     struct suki_conf_diags *d);
/* Release a ruleset: plugins' fini, dlclose, conf unref. Accepts NULL. */
void suki_rules_free(struct suki_ruleset *set);
/* Load and release (for sukid -t). Returns 0 or -EINVAL (problems in d). */
int suki_rules_check(struct suki_conf *conf, const struct suki_holidays *hol,
                     struct suki_conf_diags *d);
/* The configuration the ruleset was built from (borrowed). */
struct suki_conf *suki_rules_conf(const struct suki_ruleset *set);
/* Number of rules. */
size_t suki_rules_count(const struct suki_ruleset *set);

/* Run every rule for one event: for each rule whose `unless` patterns match
 * the type, cancel that rule's pending jobs for the client (those of the
 * event's subject and those without subject; every subject when the event
 * has none); then, for rules whose `on` patterns match, call the plugin's
 * on_event. Appends to acts (borrowed, caller-initialised). cl (may be
 * NULL) and ev are borrowed. Events without a client match no rule.
 * Returns 0, or a negative errno when a plugin failed or asked for
 * something the host refused: err then says which rule and why, the whole
 * event must be failed (acts may hold partial actions: discard them), and
 * suki_metrics.rule_errors was bumped. A refusal (the event makes a job key
 * too long, a bad due time...) is -EBADMSG: the same event is refused
 * again every time, so it is not worth a retry. Does not log. */
int suki_rules_on_event(struct suki_ruleset *set, struct suki_event *ev,
                        const struct suki_client *cl, int64_t now_ms,
                        struct suki_actions *acts, struct suki_err *err);

/* Decide what to do with a job that fell due. *verdict gets a
 * suki_due_verdict: SEND, DROP (err holds the reason: "stale ..." when
 * older than the rule's max_lateness, counted in jobs_dropped_stale; "rule
 * ... no longer configured", counted in jobs_dropped_rule; or the plugin's
 * reason) or DEFER (*defer_to gets the new due time). Returns 0, or a
 * negative errno with err filled when the plugin failed (rule_errors
 * bumped). job and cl (may be NULL) are borrowed. */
int suki_rules_on_due(struct suki_ruleset *set, const struct suki_jobdata *job,
                      const struct suki_client *cl, int64_t now_ms,
                      int *verdict, int64_t *defer_to, struct suki_err *err);

/* Resolve the job's recipients (its notify list, else the rule's):
 * "manager" (the stored event's manager, else the profile's), "client"
 * (the profile's email), "role:NAME" (conf roles) or a literal address.
 * Duplicates are removed (case-insensitively). On success returns 0 with
 * *addrs an owned array of *n owned strings (free each and the array);
 * returns -ENOENT with err ("no recipient address (manager unset)") when
 * nothing resolved. Specs that do not resolve are skipped when others do. */
int suki_rules_recipients(struct suki_ruleset *set,
                          const struct suki_jobdata *job,
                          const struct suki_client *cl, char ***addrs,
                          size_t *n, struct suki_err *err);

/* The host table handed to plugins (exposed for tests). Borrowed. */
const struct suki_host *suki_rules_host(void);

#endif
