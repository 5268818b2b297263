/* followup.c - "on X, after a delay, unless Y, notify".
 *
 * Settings (besides the generic rule keys):
 *   after         = "3d";     duration, required
 *   business_days = true;     count `after` (whole days) as working days
 *   at_local      = "09:00";  deliver at this local time
 *
 * due = event.at + after. With business_days the days are working days
 * (host add_business_days). With at_local and a whole-day `after` the job
 * goes on the target local date at at_local; with a shorter `after` it goes
 * at the first at_local not before event.at + after. One job per rule,
 * client and subject: a newer trigger replaces the pending one (same key).
 *
 * Pure: everything goes through the host table. Plugins cannot link the
 * daemon's allocator, so this file uses calloc/free and checks for NULL. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <suki/plugin.h>

#define DAY_MS (24LL * 60 * 60 * 1000)

struct followup {
    int64_t after_ms;
    int business_days;
    int has_at; /* at_local was given */
    int hh, mm;
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

static int followup_check(const struct suki_host *h, struct suki_rule *rule)
{
    struct followup f = {0};
    int bad = 0;

    int rc = h->rule_duration(rule, "after", &f.after_ms);
    if (rc == 1) {
        h->rule_error(rule, NULL, "'after' is required (e.g. after = \"3d\")");
        bad = 1;
    } else if (rc < 0) {
        bad = 1;
    } else if (f.after_ms <= 0) {
        h->rule_error(rule, "after", "must be longer than 0");
        bad = 1;
    }

    rc = h->rule_bool(rule, "business_days", &f.business_days);
    if (rc < 0)
        bad = 1;
    if (!bad && f.business_days && f.after_ms % DAY_MS != 0) {
        h->rule_error(rule, "after",
                      "must be whole days (\"3d\", \"1w\") when "
                      "business_days is true");
        bad = 1;
    }
    if (!bad && f.business_days && f.after_ms / DAY_MS > 3660) {
        h->rule_error(rule, "after", "too many business days");
        bad = 1;
    }

    const char *at = NULL;
    rc = h->rule_string(rule, "at_local", &at);
    if (rc < 0) {
        bad = 1;
    } else if (rc == 0) {
        if (parse_hhmm(at, &f.hh, &f.mm) < 0) {
            h->rule_error(rule, "at_local",
                          "'%s' is not a local time HH:MM (00:00-23:59)", at);
            bad = 1;
        } else {
            f.has_at = 1;
        }
    }
    if (bad)
        return -EINVAL;

    struct followup *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    *p = f;
    h->rule_set_data(rule, p);
    return 0;
}

static int followup_on_event(const struct suki_host *h, struct suki_rule *rule,
                             const struct suki_event *ev,
                             const struct suki_client *cl, int64_t now_ms,
                             struct suki_actions *acts)
{
    (void)now_ms;
    const struct followup *f = h->rule_data(rule);
    if (!f)
        return -EINVAL;
    const char *tz = h->timezone(cl, rule);
    int64_t t = h->event_at(ev);
    int64_t due;
    int whole_days = f->after_ms % DAY_MS == 0;
    int days = (int)(f->after_ms / DAY_MS);

    if (f->business_days) {
        due = h->add_business_days(t, days, tz);
        if (f->has_at)
            due = h->on_local_date(due, f->hh, f->mm, tz);
    } else if (f->has_at && whole_days) {
        due = h->add_days(t, days, tz);
        due = h->on_local_date(due, f->hh, f->mm, tz);
    } else {
        due = t + f->after_ms;
        if (f->has_at)
            due = h->at_local(due, f->hh, f->mm, tz);
    }

    struct suki_jobspec spec = {
        .size = sizeof(spec),
        .subject = h->event_subject(ev, rule),
        .slot = NULL,
        .due_ms = due,
    };
    return h->schedule(acts, &spec);
}

static int followup_on_due(const struct suki_host *h, struct suki_rule *rule,
                           const struct suki_job *job,
                           const struct suki_client *cl, int64_t now_ms,
                           struct suki_actions *acts)
{
    /* Staleness (max_lateness) is the host's; anything that should have
     * cancelled this job did so through `unless`. */
    (void)h;
    (void)rule;
    (void)job;
    (void)cl;
    (void)now_ms;
    (void)acts;
    return SUKI_DUE_SEND;
}

static void followup_fini(const struct suki_host *h, struct suki_rule *rule)
{
    free(h->rule_data(rule));
    h->rule_set_data(rule, NULL);
}

SUKI_PLUGIN_EXPORT const struct suki_plugin suki_plugin = {
    .abi = SUKI_PLUGIN_ABI,
    .size = sizeof(struct suki_plugin),
    .name = "followup",
    .version = "1.0",
    .check = followup_check,
    .on_event = followup_on_event,
    .on_due = followup_on_due,
    .fini = followup_fini,
};
