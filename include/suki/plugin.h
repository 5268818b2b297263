/* suki/plugin.h - the public, versioned interface of suki rule plugins.
 *
 * A rule plugin is pure: it looks at an event (or at a job that fell due)
 * and answers with actions through the host table. It does no I/O, keeps no
 * pointer to host data past a call, and creates no thread, timer, signal
 * handler, and never calls exit(). The host applies the actions in the same
 * atomic Redis step that acknowledges the event, which is what makes a crash
 * at any instant safe.
 *
 * A plugin exports exactly one symbol:
 *
 *     const struct suki_plugin suki_plugin = {
 *         .abi = SUKI_PLUGIN_ABI, .size = sizeof(struct suki_plugin),
 *         .name = "myrule", .version = "1.0",
 *         .check = my_check, .on_event = my_on_event, .on_due = my_on_due,
 *         .fini = my_fini,
 *     };
 *
 * Compatibility: structs only ever grow at the end; `size` says how much of a
 * struct the other side knows. Host functions added later are NULL-checked
 * through SUKI_HOST_HAS(). Any incompatible change bumps SUKI_PLUGIN_ABI and
 * the loader refuses plugins built for another version.
 */
#ifndef SUKI_PLUGIN_H
#define SUKI_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SUKI_PLUGIN_ABI 1

struct suki_rule;    /* a configured rule: settings + plugin private data */
struct suki_event;   /* a validated client event (read-only) */
struct suki_client;  /* a client profile (read-only; may have no fields) */
struct suki_job;     /* a job that fell due (read-only) */
struct suki_actions; /* where a plugin's answers are collected */

/* Return values of on_due. Negative values are errors (-errno style). */
enum suki_due_verdict {
    SUKI_DUE_SEND = 0,  /* render and deliver the message now */
    SUKI_DUE_DROP = 1,  /* drop it (reason via host->log); counted */
    SUKI_DUE_DEFER = 2, /* host->defer() was called with a new due time */
};

/* What a plugin asks the host to schedule. Unset (NULL/0) fields take the
 * rule's generic settings (template, channel, notify). */
struct suki_jobspec {
    uint32_t size;       /* sizeof(struct suki_jobspec) */
    const char *subject; /* the subject ("" when none); see DESIGN */
    const char *slot;    /* tells apart several jobs of one rule,
                            client and subject (e.g. "90d"); or NULL */
    int64_t due_ms;      /* UTC epoch milliseconds */
    const char *template_name;
    const char *channel;
    const char *const *notify; /* recipients spec, n_notify entries */
    size_t n_notify;
};

struct suki_host {
    uint32_t abi;  /* the host's SUKI_PLUGIN_ABI */
    uint32_t size; /* sizeof(struct suki_host) as the host knows it */

    /* Log a line prefixed with the rule and plugin name. */
    void (*log)(const struct suki_rule *rule, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* ---- rule settings (valid in check(); cheap in every callback) ----
     * Each getter returns 0 when the key is present and valid, 1 when it is
     * absent (*out is then left as the caller's default), and a negative
     * errno when it is present but wrong; in that case the host has already
     * recorded "FILE:LINE: message" for sukid -t. Reading a key marks it
     * known, so the host can report the keys no one read as unknown. */
    const char *(*rule_name)(const struct suki_rule *rule);
    int (*rule_string)(struct suki_rule *rule, const char *key,
                       const char **out);
    int (*rule_bool)(struct suki_rule *rule, const char *key, int *out);
    int (*rule_int)(struct suki_rule *rule, const char *key, int64_t min,
                    int64_t max, int64_t *out);
    int (*rule_duration)(struct suki_rule *rule, const char *key, int64_t *ms);
    /* A string or a list of strings; *out is a host-owned NULL-terminated
     * array valid for the life of the rule. */
    int (*rule_strings)(struct suki_rule *rule, const char *key,
                        const char *const **out, size_t *n);
    /* Record a semantic error about key (or the rule when key is NULL). */
    void (*rule_error)(struct suki_rule *rule, const char *key, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));
    /* Plugin-private data for the rule, freed by fini(). */
    void (*rule_set_data)(struct suki_rule *rule, void *data);
    void *(*rule_data)(const struct suki_rule *rule);

    /* ---- the event ---- */
    const char *(*event_type)(const struct suki_event *ev);
    const char *(*event_client)(const struct suki_event *ev);
    const char *(*event_id)(const struct suki_event *ev); /* NULL if none */
    int64_t (*event_at)(const struct suki_event *ev);     /* UTC ms */
    /* data.FIELD as text (numbers and booleans formatted); NULL if absent
     * or not a scalar. Borrowed until the callback returns. */
    const char *(*event_data)(const struct suki_event *ev, const char *field);
    /* data.FIELD as a time: RFC 3339, or a date YYYY-MM-DD taken as local
     * midnight in tz. Returns 0, 1 when absent, negative when malformed. */
    int (*event_time)(const struct suki_event *ev, const char *field,
                      const char *tz, int64_t *ms);
    /* The event's subject under this rule's `subject` setting ("" if
     * none). */
    const char *(*event_subject)(const struct suki_event *ev,
                                 const struct suki_rule *rule);

    /* ---- the client profile ---- */
    const char *(*client_field)(const struct suki_client *cl,
                                const char *field);
    /* Effective IANA timezone: profile, else rule, else global. */
    const char *(*timezone)(const struct suki_client *cl,
                            const struct suki_rule *rule);

    /* ---- time (DST-correct, in an IANA zone) ---- */
    /* t + n working days (Mon-Fri, skipping configured holidays), keeping
     * the local time of day. */
    int64_t (*add_business_days)(int64_t t_ms, int n, const char *tz);
    /* The first instant >= t whose local time is hh:mm, in tz. */
    int64_t (*at_local)(int64_t t_ms, int hh, int mm, const char *tz);
    /* Add whole calendar days keeping the local time of day. */
    int64_t (*add_days)(int64_t t_ms, int n, const char *tz);
    /* The instant at hh:mm on t's local date in tz (may be before t). */
    int64_t (*on_local_date)(int64_t t_ms, int hh, int mm, const char *tz);

    /* ---- actions (in on_event; schedule/defer also in on_due) ---- */
    /* Schedule (upsert) the job for rule, client, spec->subject and
     * spec->slot: a newer one replaces the pending one. */
    int (*schedule)(struct suki_actions *acts, const struct suki_jobspec *spec);
    /* Cancel this rule's pending jobs for the event's client and subject. */
    int (*cancel)(struct suki_actions *acts, const char *subject);
    /* In on_due: move the job to a new due time. */
    int (*defer)(struct suki_actions *acts, int64_t due_ms);

    /* ---- the job that fell due (on_due) ---- */
    const char *(*job_key)(const struct suki_job *job);
    const char *(*job_subject)(const struct suki_job *job);
    const char *(*job_slot)(const struct suki_job *job);
    int64_t (*job_due)(const struct suki_job *job);
    /* The triggering event as stored with the job. */
    const struct suki_event *(*job_event)(const struct suki_job *job);
};

/* True when the host table has member m (for members added later). */
#define SUKI_HOST_HAS(h, m)                                                    \
    ((h)->size >= offsetof(struct suki_host, m) + sizeof((h)->m) && (h)->m)

struct suki_plugin {
    uint32_t abi;  /* SUKI_PLUGIN_ABI the plugin was built for */
    uint32_t size; /* sizeof(struct suki_plugin) */
    const char *name;
    const char *version;
    /* Validate and parse the rule's settings (store them with
     * rule_set_data). Return 0, or negative after rule_error(). */
    int (*check)(const struct suki_host *host, struct suki_rule *rule);
    /* An event matched one of the rule's `on` patterns. */
    int (*on_event)(const struct suki_host *host, struct suki_rule *rule,
                    const struct suki_event *ev, const struct suki_client *cl,
                    int64_t now_ms, struct suki_actions *acts);
    /* A job of this rule fell due: return a suki_due_verdict or <0. */
    int (*on_due)(const struct suki_host *host, struct suki_rule *rule,
                  const struct suki_job *job, const struct suki_client *cl,
                  int64_t now_ms, struct suki_actions *acts);
    /* Free what check() stored. May be NULL. */
    void (*fini)(const struct suki_host *host, struct suki_rule *rule);
};

#if defined(__GNUC__)
#define SUKI_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SUKI_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
}
#endif

#endif
