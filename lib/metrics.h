/* metrics.h - process-wide counters and gauges, exported by /metrics.
 *
 * Single-threaded daemon: plain integers, updated in the loop. Modules bump
 * them directly through the SUKI_METRIC_* helpers. */
#ifndef SUKI_METRICS_H
#define SUKI_METRICS_H

#include <stdint.h>
#include <stddef.h>

enum suki_event_result {
    SUKI_EV_APPLIED,
    SUKI_EV_DUPLICATE,
    SUKI_EV_INVALID,
    SUKI_EV_POISON,
    SUKI_EV__COUNT
};

enum suki_msg_result {
    SUKI_MSG_SENT,
    SUKI_MSG_RETRIED,
    SUKI_MSG_FAILED,
    SUKI_MSG_SKIPPED,
    SUKI_MSG__COUNT
};

/* Outcomes of POST /v1/events, by the status answered. A 413 is not
 * among them: libevent answers it before the request reaches sukid. */
enum suki_http_intake_result {
    SUKI_HI_ACCEPTED,     /* 202 */
    SUKI_HI_INVALID,      /* 400 */
    SUKI_HI_UNAUTHORIZED, /* 401: token or signature */
    SUKI_HI_METHOD,       /* 405 */
    SUKI_HI_MEDIA_TYPE,   /* 415 */
    SUKI_HI_UNAVAILABLE,  /* 503: Redis down or failed, or stopping */
    SUKI_HI__COUNT
};

/* What a message read from the inbound mailbox was (daemon/inbound.h):
 * suki_inbound_messages_total{kind}. */
enum suki_inbound_result {
    SUKI_IN_REPLY,
    SUKI_IN_BOUNCE,
    SUKI_IN_DELAY,
    SUKI_IN_COMPLAINT,
    SUKI_IN_AUTOREPLY,
    SUKI_IN_OTHER,
    SUKI_IN_MALFORMED,
    SUKI_IN_GONE,
    SUKI_IN__COUNT
};

/* "reply", "bounce", ... (static). */
const char *suki_metrics_inbound_name(enum suki_inbound_result k);

#define SUKI_METRICS_MAX_CHANNELS 16
#define SUKI_LATENESS_BUCKETS 12

struct suki_channel_metrics {
    char name[32];                  /* channel ("email", "chat") */
    uint64_t msgs[SUKI_MSG__COUNT]; /* suki_messages_total */
    int breaker_open;               /* circuit breaker state */
};

struct suki_metrics {
    uint64_t events[SUKI_EV__COUNT]; /* suki_events_total{result} */
    /* suki_http_intake_total{result} */
    uint64_t http_intake[SUKI_HI__COUNT];
    double intake_lag_s;         /* suki_intake_lag_seconds */
    int64_t jobs_scheduled;      /* gauge, refreshed from Redis */
    uint64_t jobs_fired;         /* suki_jobs_fired_total */
    uint64_t jobs_dropped_stale; /* suki_jobs_dropped_total{reason="stale"} */
    uint64_t jobs_dropped_rule;  /* ...{reason="rule"} */
    uint64_t rule_errors;        /* suki_rule_errors_total */
    uint64_t agent_restarts;     /* suki_agent_restarts_total */
    /* suki_http_connections_shed_total{reason="limit"|"deadline"} */
    uint64_t http_shed_limit, http_shed_deadline;
    int64_t dead_entries; /* gauge, refreshed from Redis */
    int redis_up;         /* 1 when the command link is up */
    /* redis.min_replicas: WAIT answers with fewer replicas than asked
     * (suki_redis_wait_short_total); whether the last answer was short,
     * and how many replicas it counted */
    uint64_t redis_wait_short;
    int redis_replicas_short, redis_replicas_acked;
    /* lateness histogram of fired jobs (seconds, cumulative buckets) */
    uint64_t lateness_bucket[SUKI_LATENESS_BUCKETS];
    uint64_t lateness_count;
    double lateness_sum;
    /* the largest lateness (ms) since the heartbeat last took it, for the
     * console's charts (0: none) */
    int64_t lateness_window_max_ms;
    struct suki_channel_metrics channels[SUKI_METRICS_MAX_CHANNELS];
    size_t n_channels;
    uint64_t campaign_msgs[SUKI_MSG__COUNT]; /* suki_campaign_messages_total */
    uint64_t inbound[SUKI_IN__COUNT];        /* suki_inbound_messages_total */
};

/* The process-wide instance. */
extern struct suki_metrics suki_metrics;

/* Upper bounds (seconds) of the lateness buckets. */
extern const double suki_lateness_bounds[SUKI_LATENESS_BUCKETS];

/* Record one fired job's lateness in milliseconds. */
void suki_metrics_lateness(int64_t late_ms);

/* Count a message result for channel (created on first use). */
void suki_metrics_msg(const char *channel, enum suki_msg_result r);

/* Per-channel slot (created on first use; NULL past the limit). */
struct suki_channel_metrics *suki_metrics_channel(const char *channel);

/* Render the Prometheus text exposition format. Returns owned string. */
char *suki_metrics_render(void);

#endif
