/* renewal.c - alerts anchored on a date in the event.
 *
 * Settings (besides the generic rule keys):
 *   anchor   = "ends_at";                    data field, default ends_at
 *   before   = [ "90d", "60d", "30d", "7d" ]; required, one job per offset
 *   at_local = "09:00";                      local time of whole-day alerts
 *
 * The anchor is data.<anchor> (a date or an RFC 3339 date-time); an integer
 * data.notice_days moves it that many days earlier. For each offset the
 * alert is due at anchor - offset (calendar days in the client's zone when
 * the offset is whole days, then at at_local on that date; shorter offsets
 * are exact). Alerts already in the past are skipped. Every trigger first
 * cancels the subject's pending alerts, so a contract.updated with a new
 * end date moves them all and one that no longer applies disappears.
 * When an alert falls due after the anchor itself has passed, it is
 * dropped.
 *
 * Pure: everything goes through the host table. Plugins cannot link the
 * daemon's allocator, so this file uses calloc/free and checks for NULL. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <suki/plugin.h>

#define DAY_MS (24LL * 60 * 60 * 1000)
#define MAX_OFFSETS 32

struct renewal {
    const char *anchor; /* borrowed from the host (life of the rule) */
    int hh, mm;
    size_t n;
    const char *slot[MAX_OFFSETS]; /* offsets as written (host-owned) */
    int64_t off_ms[MAX_OFFSETS];
};

/* "HH:MM", 00:00..23:59. Returns 0 or -EINVAL. */
static int parse_hhmm(const char *s, int *hh, int *mm)
{
    if (strlen(s) != 5 || s[2] != ':')
        return -EINVAL;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -EINVAL;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -EINVAL;
    *hh = h;
    *mm = m;
    return 0;
}

/* A duration as the daemon writes them: digits and one unit of s, m, h, d,
 * w (no sign, no space), at most 100 years. Returns 0 or -EINVAL. */
static int parse_offset(const char *s, int64_t *ms)
{
    int64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > 100000000)
            return -EINVAL;
        p++;
    }
    int64_t unit;
    switch (*p) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 60 * 60 * 1000;
        break;
    case 'd':
        unit = DAY_MS;
        break;
    case 'w':
        unit = 7 * DAY_MS;
        break;
    default:
        return -EINVAL;
    }
    if (p[1] != '\0')
        return -EINVAL;
    if (v * unit > 36600 * DAY_MS)
        return -EINVAL;
    *ms = v * unit;
    return 0;
}

static int renewal_check(const struct suki_host *h, struct suki_rule *rule)
{
    struct renewal r = {.anchor = "ends_at", .hh = 9, .mm = 0};
    int bad = 0;

    int rc = h->rule_string(rule, "anchor", &r.anchor);
    if (rc < 0) {
        bad = 1;
    } else if (rc == 0 && r.anchor[0] == '\0') {
        h->rule_error(rule, "anchor", "must name a data field");
        bad = 1;
    }

    const char *const *before = NULL;
    size_t n = 0;
    rc = h->rule_strings(rule, "before", &before, &n);
    if (rc == 1) {
        h->rule_error(rule, NULL,
                      "'before' is required (e.g. before = [\"30d\", "
                      "\"7d\"])");
        bad = 1;
    } else if (rc < 0) {
        bad = 1;
    } else if (n == 0) {
        h->rule_error(rule, "before", "must list at least one offset");
        bad = 1;
    } else if (n > MAX_OFFSETS) {
        h->rule_error(rule, "before", "at most %d offsets", MAX_OFFSETS);
        bad = 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            int64_t ms = 0;
            if (parse_offset(before[i], &ms) < 0 || ms <= 0) {
                h->rule_error(rule, "before",
                              "'%s' is not a duration like \"30d\" "
                              "(s, m, h, d, w; more than 0)",
                              before[i]);
                bad = 1;
                continue;
            }
            for (size_t k = 0; k < r.n; k++) {
                if (r.off_ms[k] == ms) {
                    h->rule_error(rule, "before",
                                  "'%s' is the same offset as '%s'", before[i],
                                  r.slot[k]);
                    bad = 1;
                }
            }
            r.slot[r.n] = before[i];
            r.off_ms[r.n] = ms;
            r.n++;
        }
    }

    const char *at = NULL;
    rc = h->rule_string(rule, "at_local", &at);
    if (rc < 0) {
        bad = 1;
    } else if (rc == 0 && parse_hhmm(at, &r.hh, &r.mm) < 0) {
        h->rule_error(rule, "at_local",
                      "'%s' is not a local time HH:MM (00:00-23:59)", at);
        bad = 1;
    }
    if (bad)
        return -EINVAL;

    struct renewal *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    *p = r;
    h->rule_set_data(rule, p);
    return 0;
}

/* data.notice_days as a whole number of days (0 when absent). */
static int notice_days(const struct suki_host *h, struct suki_rule *rule,
                       const struct suki_event *ev, int *out)
{
    *out = 0;
    const char *s = h->event_data(ev, "notice_days");
    if (!s || !*s)
        return 0;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || end == s || v < 0 || v > 3660) {
        h->log(rule, LOG_WARNING,
               "data.notice_days '%s' is not a number of days (0-3660)", s);
        return -EINVAL;
    }
    *out = (int)v;
    return 0;
}

/* The event's anchor time with notice_days applied. Returns 0, 1 when the
 * anchor is absent, negative (logged) when malformed. */
static int anchor_time(const struct suki_host *h, struct suki_rule *rule,
                       const struct renewal *r, const struct suki_event *ev,
                       const char *tz, int64_t *anchor, int64_t *effective)
{
    int rc = h->event_time(ev, r->anchor, tz, anchor);
    if (rc < 0) {
        const char *raw = h->event_data(ev, r->anchor);
        h->log(rule, LOG_WARNING,
               "data.%s '%s' is not a date (YYYY-MM-DD) or an RFC 3339 time",
               r->anchor, raw ? raw : "(not a string)");
        return rc;
    }
    if (rc == 1)
        return 1;
    int nd = 0;
    rc = notice_days(h, rule, ev, &nd);
    if (rc < 0)
        return rc;
    *effective = nd ? h->add_days(*anchor, -nd, tz) : *anchor;
    return 0;
}

static int renewal_on_event(const struct suki_host *h, struct suki_rule *rule,
                            const struct suki_event *ev,
                            const struct suki_client *cl, int64_t now_ms,
                            struct suki_actions *acts)
{
    const struct renewal *r = h->rule_data(rule);
    if (!r)
        return -EINVAL;
    const char *tz = h->timezone(cl, rule);
    const char *subject = h->event_subject(ev, rule);

    /* Every trigger restates the subject's alerts from scratch. */
    int rc = h->cancel(acts, subject);
    if (rc < 0)
        return rc;

    int64_t anchor = 0, eff = 0;
    rc = anchor_time(h, rule, r, ev, tz, &anchor, &eff);
    if (rc == 1)
        return 0; /* no anchor in this event: nothing to schedule */
    if (rc < 0)
        return rc;

    for (size_t i = 0; i < r->n; i++) {
        int64_t off = r->off_ms[i];
        int64_t due;
        if (off % DAY_MS == 0) {
            due = h->add_days(eff, -(int)(off / DAY_MS), tz);
            due = h->on_local_date(due, r->hh, r->mm, tz);
        } else {
            due = eff - off;
        }
        if (due < now_ms)
            continue; /* that alert's time has already passed */
        struct suki_jobspec spec = {
            .size = sizeof(spec),
            .subject = subject,
            .slot = r->slot[i],
            .due_ms = due,
        };
        rc = h->schedule(acts, &spec);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int renewal_on_due(const struct suki_host *h, struct suki_rule *rule,
                          const struct suki_job *job,
                          const struct suki_client *cl, int64_t now_ms,
                          struct suki_actions *acts)
{
    (void)acts;
    const struct renewal *r = h->rule_data(rule);
    const struct suki_event *ev = h->job_event(job);
    if (!r || !ev)
        return SUKI_DUE_SEND;
    int64_t anchor = 0;
    int rc = h->event_time(ev, r->anchor, h->timezone(cl, rule), &anchor);
    if (rc == 0 && anchor <= now_ms) {
        h->log(rule, LOG_INFO, "%s has passed; alert '%s' not sent", r->anchor,
               h->job_slot(job));
        return SUKI_DUE_DROP;
    }
    return SUKI_DUE_SEND;
}

static void renewal_fini(const struct suki_host *h, struct suki_rule *rule)
{
    free(h->rule_data(rule));
    h->rule_set_data(rule, NULL);
}

SUKI_PLUGIN_EXPORT const struct suki_plugin suki_plugin = {
    .abi = SUKI_PLUGIN_ABI,
    .size = sizeof(struct suki_plugin),
    .name = "renewal",
    .version = "1.0",
    .check = renewal_check,
    .on_event = renewal_on_event,
    .on_due = renewal_on_due,
    .fini = renewal_fini,
};
