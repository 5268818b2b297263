/* metrics.c - counters and their Prometheus text rendering. */
#include "metrics.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct suki_metrics suki_metrics;

const double suki_lateness_bounds[SUKI_LATENESS_BUCKETS] = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 300, 3600};

void suki_metrics_lateness(int64_t late_ms)
{
    double s = late_ms > 0 ? (double)late_ms / 1000.0 : 0.0;
    for (size_t i = 0; i < SUKI_LATENESS_BUCKETS; i++)
        if (s <= suki_lateness_bounds[i])
            suki_metrics.lateness_bucket[i]++;
    suki_metrics.lateness_count++;
    suki_metrics.lateness_sum += s;
    if (late_ms > suki_metrics.lateness_window_max_ms)
        suki_metrics.lateness_window_max_ms = late_ms;
}

struct suki_channel_metrics *suki_metrics_channel(const char *channel)
{
    for (size_t i = 0; i < suki_metrics.n_channels; i++)
        if (strcmp(suki_metrics.channels[i].name, channel) == 0)
            return &suki_metrics.channels[i];
    if (suki_metrics.n_channels == SUKI_METRICS_MAX_CHANNELS)
        return NULL;
    struct suki_channel_metrics *c =
        &suki_metrics.channels[suki_metrics.n_channels++];
    suki_strlcpy(c->name, channel, sizeof(c->name));
    return c;
}

void suki_metrics_msg(const char *channel, enum suki_msg_result r)
{
    struct suki_channel_metrics *c = suki_metrics_channel(channel);
    if (c)
        c->msgs[r]++;
}

/* Label values come from config (channel names); escape per the text
 * format so a quote or backslash cannot break the exposition. */
static void sb_label(struct suki_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            suki_buf_printf(b, "\\%c", *v);
        else if (*v == '\n')
            suki_buf_printf(b, "\\n");
        else
            suki_buf_printf(b, "%c", *v);
    }
}

char *suki_metrics_render(void)
{
    static const char *ev_names[] = {"applied", "duplicate", "invalid",
                                     "poison"};
    static const char *msg_names[] = {"sent", "retried", "failed", "skipped"};
    struct suki_buf b = {0};
    struct suki_metrics *m = &suki_metrics;

    suki_buf_printf(&b,
                    "# HELP suki_events_total Events taken from the intake, "
                    "by result.\n# TYPE suki_events_total counter\n");
    for (int i = 0; i < SUKI_EV__COUNT; i++)
        suki_buf_printf(&b, "suki_events_total{result=\"%s\"} %llu\n",
                        ev_names[i], (unsigned long long)m->events[i]);
    static const char *hi_names[] = {"accepted", "invalid",    "unauthorized",
                                     "method",   "media_type", "unavailable"};
    suki_buf_printf(&b, "# HELP suki_inbound_messages_total Messages read "
                        "from the inbound mailbox, by what they were.\n"
                        "# TYPE suki_inbound_messages_total counter\n");
    for (int i = 0; i < SUKI_IN__COUNT; i++)
        suki_buf_printf(&b, "suki_inbound_messages_total{kind=\"%s\"} %llu\n",
                        suki_metrics_inbound_name((enum suki_inbound_result)i),
                        (unsigned long long)m->inbound[i]);
    suki_buf_printf(&b, "# HELP suki_http_intake_total Requests to POST "
                        "/v1/events, by result.\n"
                        "# TYPE suki_http_intake_total counter\n");
    for (int i = 0; i < SUKI_HI__COUNT; i++)
        suki_buf_printf(&b, "suki_http_intake_total{result=\"%s\"} %llu\n",
                        hi_names[i], (unsigned long long)m->http_intake[i]);
    suki_buf_printf(
        &b,
        "# HELP suki_intake_lag_seconds Age of the oldest event read "
        "in the last batch.\n# TYPE suki_intake_lag_seconds gauge\n"
        "suki_intake_lag_seconds %.3f\n",
        m->intake_lag_s);
    suki_buf_printf(
        &b,
        "# HELP suki_jobs_scheduled Jobs waiting in the schedule.\n"
        "# TYPE suki_jobs_scheduled gauge\nsuki_jobs_scheduled %lld\n",
        (long long)m->jobs_scheduled);
    suki_buf_printf(&b,
                    "# HELP suki_jobs_fired_total Jobs that fell due and were "
                    "handled.\n# TYPE suki_jobs_fired_total counter\n"
                    "suki_jobs_fired_total %llu\n",
                    (unsigned long long)m->jobs_fired);
    suki_buf_printf(
        &b,
        "# HELP suki_jobs_dropped_total Due jobs dropped instead of "
        "sent.\n# TYPE suki_jobs_dropped_total counter\n"
        "suki_jobs_dropped_total{reason=\"stale\"} %llu\n"
        "suki_jobs_dropped_total{reason=\"rule\"} %llu\n",
        (unsigned long long)m->jobs_dropped_stale,
        (unsigned long long)m->jobs_dropped_rule);
    suki_buf_printf(&b,
                    "# HELP suki_rule_errors_total Rule plugin failures.\n"
                    "# TYPE suki_rule_errors_total counter\n"
                    "suki_rule_errors_total %llu\n",
                    (unsigned long long)m->rule_errors);
    suki_buf_printf(&b,
                    "# HELP suki_agent_restarts_total Delivery agents that "
                    "died under sukid and were replaced.\n"
                    "# TYPE suki_agent_restarts_total counter\n"
                    "suki_agent_restarts_total %llu\n",
                    (unsigned long long)m->agent_restarts);
    suki_buf_printf(&b,
                    "# HELP suki_http_connections_shed_total HTTP "
                    "connections closed by sukid: over http.max_connections, "
                    "or past http.request_timeout.\n"
                    "# TYPE suki_http_connections_shed_total counter\n"
                    "suki_http_connections_shed_total{reason=\"limit\"} %llu\n"
                    "suki_http_connections_shed_total{reason=\"deadline\"} "
                    "%llu\n",
                    (unsigned long long)m->http_shed_limit,
                    (unsigned long long)m->http_shed_deadline);
    suki_buf_printf(&b,
                    "# HELP suki_job_lateness_seconds How late jobs fired.\n"
                    "# TYPE suki_job_lateness_seconds histogram\n");
    for (int i = 0; i < SUKI_LATENESS_BUCKETS; i++)
        suki_buf_printf(
            &b, "suki_job_lateness_seconds_bucket{le=\"%g\"} %llu\n",
            suki_lateness_bounds[i], (unsigned long long)m->lateness_bucket[i]);
    suki_buf_printf(&b,
                    "suki_job_lateness_seconds_bucket{le=\"+Inf\"} %llu\n"
                    "suki_job_lateness_seconds_sum %.6f\n"
                    "suki_job_lateness_seconds_count %llu\n",
                    (unsigned long long)m->lateness_count, m->lateness_sum,
                    (unsigned long long)m->lateness_count);
    suki_buf_printf(&b, "# HELP suki_messages_total Messages by channel and "
                        "result.\n# TYPE suki_messages_total counter\n");
    for (size_t c = 0; c < m->n_channels; c++)
        for (int i = 0; i < SUKI_MSG__COUNT; i++) {
            suki_buf_printf(&b, "suki_messages_total{channel=\"");
            sb_label(&b, m->channels[c].name);
            suki_buf_printf(&b, "\",result=\"%s\"} %llu\n", msg_names[i],
                            (unsigned long long)m->channels[c].msgs[i]);
        }
    suki_buf_printf(&b,
                    "# HELP suki_transport_breaker_open 1 while a transport's "
                    "circuit breaker is open.\n"
                    "# TYPE suki_transport_breaker_open gauge\n");
    for (size_t c = 0; c < m->n_channels; c++) {
        suki_buf_printf(&b, "suki_transport_breaker_open{channel=\"");
        sb_label(&b, m->channels[c].name);
        suki_buf_printf(&b, "\"} %d\n", m->channels[c].breaker_open);
    }
    suki_buf_printf(
        &b, "# HELP suki_campaign_messages_total Campaign messages "
            "by result.\n# TYPE suki_campaign_messages_total counter\n");
    for (int i = 0; i < SUKI_MSG__COUNT; i++)
        suki_buf_printf(&b,
                        "suki_campaign_messages_total{result=\"%s\"} %llu\n",
                        msg_names[i], (unsigned long long)m->campaign_msgs[i]);
    suki_buf_printf(
        &b,
        "# HELP suki_dead_entries Entries in the dead-letter stream.\n"
        "# TYPE suki_dead_entries gauge\nsuki_dead_entries %lld\n",
        (long long)m->dead_entries);
    suki_buf_printf(&b,
                    "# HELP suki_redis_up 1 when Redis is reachable.\n"
                    "# TYPE suki_redis_up gauge\nsuki_redis_up %d\n",
                    m->redis_up);
    suki_buf_printf(
        &b,
        "# HELP suki_redis_wait_short_total WAIT answers (redis.min_replicas) "
        "that counted fewer replicas than wanted.\n"
        "# TYPE suki_redis_wait_short_total counter\n"
        "suki_redis_wait_short_total %llu\n"
        "# HELP suki_redis_replicas_short 1 while the last WAIT counted too "
        "few replicas: work is held until they are back.\n"
        "# TYPE suki_redis_replicas_short gauge\n"
        "suki_redis_replicas_short %d\n",
        (unsigned long long)m->redis_wait_short, m->redis_replicas_short);
    return suki_buf_take(&b);
}

const char *suki_metrics_inbound_name(enum suki_inbound_result k)
{
    static const char *const names[SUKI_IN__COUNT] = {
        "reply",     "bounce", "delay",     "complaint",
        "autoreply", "other",  "malformed", "gone"};
    return (unsigned)k < SUKI_IN__COUNT ? names[k] : "other";
}
