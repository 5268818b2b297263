/* conf.h - the parsed, validated configuration (sukid.conf).
 *
 * A suki_conf is built whole by suki_conf_load() and never modified after;
 * it is reference-counted so that a SIGHUP can swap in a new one while work
 * that started under the old one finishes with it. */
#ifndef SUKI_CONF_H
#define SUKI_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct config_t;
struct config_setting_t;

/* One error found while loading, with its location. */
struct suki_conf_diag {
    char *file; /* owned */
    int line;   /* 0 when unknown */
    char *msg;  /* owned */
};

/* All problems found in one load, printed as FILE:LINE: message. */
struct suki_conf_diags {
    struct suki_conf_diag *v; /* owned array */
    size_t n, cap;
};

void suki_conf_diags_add(struct suki_conf_diags *d, const char *file, int line,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void suki_conf_diags_clear(struct suki_conf_diags *d);

enum suki_starttls {
    SUKI_STARTTLS_REQUIRED,
    SUKI_STARTTLS_TRY,
    SUKI_STARTTLS_OFF,
};

enum suki_transport_kind {
    SUKI_TRANSPORT_SMTP,  /* smtp:// or smtps:// */
    SUKI_TRANSPORT_HTTP,  /* http:// or https:// webhook */
    SUKI_TRANSPORT_SPOOL, /* spool:///dir */
};

struct suki_header_kv {
    char *name;  /* owned */
    char *value; /* owned */
};

/* transports = { NAME = { ... }; } — NAME is the channel rules use. */
struct suki_transport_conf {
    char *name; /* owned: channel name ("email", "chat") */
    enum suki_transport_kind kind;
    char *url;       /* owned: as written */
    char *spool_dir; /* owned: for spool://, the directory */
    enum suki_starttls starttls;
    char *username;           /* owned or NULL */
    char *password;           /* owned, read from password_file, or NULL */
    char *from;               /* owned: From header ("Name <addr>") */
    char *reply_to;           /* owned or NULL; "manager" = the manager */
    char *ca_file;            /* owned or NULL: CA bundle for TLS */
    bool tls_verify;          /* default true */
    int max_connections;      /* default 4 */
    double rate;              /* messages per second; 0 = unlimited */
    int64_t timeout_ms;       /* default 30s */
    int64_t retry_initial_ms; /* default 1m */
    int64_t retry_max_ms;     /* default 1h */
    int max_attempts;         /* default 10 */
    char *format;             /* owned: webhook "json" | "slack" */
    struct suki_header_kv *headers; /* owned: webhook extra headers */
    size_t n_headers;
    int breaker_failures;        /* consecutive failures that open the
                                    circuit breaker; default 5 */
    int64_t breaker_cooldown_ms; /* default 30s */
};

struct suki_role {
    char *name;    /* owned */
    char *address; /* owned */
};

/* One entry of rules = ( ... ). Generic keys are parsed here; the plugin
 * reads its own keys through the host table (plugin.h), which marks them
 * used so that unknown keys are still reported. */
struct suki_rule_conf {
    char *name; /* owned, unique */
    char *use;  /* owned: plugin name */
    char **on;  /* owned: glob patterns */
    size_t n_on;
    char **unless; /* owned */
    size_t n_unless;
    char **notify; /* owned: manager|client|role:NAME|address */
    size_t n_notify;
    char *template_name; /* owned */
    char *channel;       /* owned, default "email" */
    char **subject;      /* owned: data fields naming the subject */
    size_t n_subject;
    int64_t max_lateness_ms; /* 0 = never drop as stale */
    char *timezone;          /* owned or NULL */
    bool digest; /* manager and role: messages wait for the digest */
    struct config_setting_t *setting; /* borrowed from suki_conf.cfg */
    const char *file;                 /* borrowed */
    int line;
    unsigned char *used; /* owned: per-child "key was read" flags */
    size_t n_used;
};

struct suki_conf {
    int refs;
    char *path;           /* owned: the file loaded */
    struct config_t *cfg; /* owned: kept so rules can read settings */

    /* redis */
    char *redis_url;  /* owned */
    char *redis_host; /* owned or NULL (unix) */
    int redis_port;
    char *redis_unix; /* owned or NULL */
    int redis_db;
    char *redis_password;             /* owned or NULL, from password_file */
    char *redis_username;             /* owned or NULL: a Redis 6 ACL user */
    char **redis_sentinels;           /* owned: "host:port" of each sentinel */
    size_t n_redis_sentinels;         /* 0 = no Sentinel: url is the primary */
    char *redis_master;               /* owned or NULL: the Sentinel name */
    char *redis_sentinel_username;    /* owned or NULL */
    char *redis_sentinel_password;    /* owned or NULL, from a file */
    char *prefix;                     /* owned, default "suki" */
    int64_t redis_connect_timeout_ms; /* default 5s */
    int64_t redis_command_timeout_ms; /* default 10s */
    /* redis.min_replicas: WAIT for this many replicas before an applied
     * batch, a sent marker or a settle counts as done (0: no WAIT) */
    int redis_min_replicas;
    int64_t redis_wait_timeout_ms; /* redis.wait_timeout, default 1s */

    /* intake */
    char *stream; /* owned, default "<prefix>:events" */
    char **lists; /* owned */
    size_t n_lists;
    char *group;             /* owned, default "sukid" */
    int batch;               /* default 256 */
    int64_t max_event_size;  /* default 65536 */
    int64_t claim_idle_ms;   /* default 60s */
    int max_deliveries;      /* default 5 */
    int64_t dedup_window_ms; /* default 7d */
    int64_t order_window_ms; /* event order kept; default 30d, 0 off */
    int64_t keep;            /* stream entries kept after ack; 100000 */
    int64_t block_ms;        /* XREADGROUP BLOCK; default 1s */
    int64_t max_body;        /* POST /v1/events body limit; default 1 MiB */

    /* scheduler */
    int64_t lease_ms;    /* default 60s */
    int sched_batch;     /* default 256 */
    char *holidays_file; /* owned or NULL */

    /* plugins, templates */
    char *plugins_dir;    /* owned */
    char *templates_dir;  /* owned */
    char *default_locale; /* owned, default "en" */
    char *timezone;       /* owned, default "UTC" */

    struct suki_transport_conf *transports; /* owned */
    size_t n_transports;
    struct suki_role *roles; /* owned */
    size_t n_roles;
    struct suki_rule_conf *rules; /* owned */
    size_t n_rules;

    /* digests = { ... }; on when the section is there */
    bool digests;
    int digest_hh, digest_mm; /* digests.at, default 08:00 */
    char *digest_timezone;    /* owned: default the global timezone */
    char *digest_template;    /* owned: default "manager-digest" */
    char **digest_locales;    /* owned: "ADDRESS LOCALE" pairs */
    size_t n_digest_locales;
    const char *digest_file; /* borrowed: where the section is */
    int digest_line;

    /* reports = { monthly = { ... }; }; on (counters kept, reports sent)
     * when reports.monthly is there */
    bool reports;
    int report_day;           /* day of the month, 1..28; default 1 */
    int report_hh, report_mm; /* at, default 08:00 */
    char *report_timezone;    /* owned: default the global timezone */
    char *report_template;    /* owned: default "monthly-report" */
    char **report_to;         /* owned: "manager" and addresses */
    size_t n_report_to;       /* default: [ "manager" ] */
    const char *report_file;  /* borrowed: where the section is */
    int report_line;

    /* campaigns */
    char *campaign_consent;          /* owned: "opt-out" | "opt-in" */
    double campaign_rate;            /* default per-campaign rate, msgs/s */
    double campaign_error_threshold; /* 0..1, default 0.2 */
    int campaign_error_min;   /* sends before the threshold applies; 50 */
    char *campaign_transport; /* owned, default "email" */

    /* http */
    char *http_listen;        /* owned "host:port"; "" disables */
    char *public_url;         /* owned */
    char *unsubscribe_secret; /* owned or NULL (from file) */
    /* unsubscribe links older are refused; 0 = none */
    int64_t unsubscribe_max_age_ms;
    int http_max_connections;        /* default 512 */
    int64_t http_request_timeout_ms; /* headers and body; default 10s */
    /* POST /v1/events bearer tokens (owned, from intake_tokens_file);
     * intake_tokens NULL: the endpoint is off (404) */
    char **intake_tokens;
    size_t n_intake_tokens;
    char *intake_signing_secret; /* owned or NULL (from file) */
    char *intake_raw; /* loading only: the tokens file before the split */

    /* inbound = { ... }: replies and bounces read over IMAP; on when the
     * section is there */
    bool inbound;
    char *inbound_url;      /* owned: imap(s)://host[:port]/MAILBOX */
    char *inbound_username; /* owned */
    char *inbound_password; /* owned, from password_file (or credential) */
    enum suki_starttls inbound_starttls; /* imap://: required (or off on
                                            loopback); never "try" */
    char *inbound_ca_file;               /* owned or NULL */
    bool inbound_tls_verify;             /* default true */
    int64_t inbound_poll_ms;             /* default 60s, at least 1s */
    int64_t inbound_timeout_ms;          /* one IMAP command; default 60s */
    /* console: the operator console's own listener (DESIGN Part 3) */
    char *console_listen;       /* owned "host:port"; "" (default) = off */
    char *console_users_file;   /* owned path; name:HASH lines */
    bool console_secure_cookie; /* Secure cookie: served over TLS by a proxy */
    int console_timeline;       /* entries kept per client (P:timeline:<c>);
                                   default 20 with a console.listen,
                                   else 0 (off); 0..1000 */

    /* daemon */
    int64_t shutdown_timeout_ms; /* default 10s */
    int log_level;               /* syslog level, default LOG_INFO */
};

/* Load and validate path. Returns an owned conf (refs = 1) or NULL with
 * every problem appended to diags. Plugins are not checked here; see
 * suki_rules_check(). */
struct suki_conf *suki_conf_load(const char *path, struct suki_conf_diags *d);
/* Like suki_conf_load, but a file that could be read and parsed is
 * returned even when d got problems: what was wrong keeps its default (a
 * rule may lack its use or template), so that templates and plugins can
 * still be checked and sukid -t reports every problem at once, not only the
 * first kind. Never run with such a conf. NULL when unreadable or not
 * libconfig. d must not be NULL. */
struct suki_conf *suki_conf_load_partial(const char *path,
                                         struct suki_conf_diags *d);

/* Reference counting; unref frees at 0. Both accept NULL. */
struct suki_conf *suki_conf_ref(struct suki_conf *c);
void suki_conf_unref(struct suki_conf *c);

/* Look up a transport by channel name; NULL when absent. Borrowed. */
const struct suki_transport_conf *suki_conf_transport(const struct suki_conf *c,
                                                      const char *name);
/* The locale digests.locales gives addr (case-insensitive), or NULL.
 * Borrowed: valid while c is. */
const char *suki_conf_digest_locale(const struct suki_conf *c,
                                    const char *addr);
/* Look up a role's address; NULL when absent. Borrowed. */
const char *suki_conf_role(const struct suki_conf *c, const char *name);

/* Split "host:port" or "[v6]:port" (a sentinel's address). Returns 0 and
 * an owned *host, or -EINVAL (nothing allocated). */
int suki_conf_hostport(const char *s, char **host, int *port);

/* Build a Redis key "<prefix>:<suffix>" (suki_key, store/keys.h, where
 * the key schema is). Returns owned. */
char *suki_conf_key(const struct suki_conf *c, const char *suffix);

#endif
