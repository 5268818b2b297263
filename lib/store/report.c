/* report.c - month buckets and amounts of the report counters. */
#include "report.h"

#include "job.h"
#include "timeutil.h"
#include "util.h"

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void format_month(int year, int mon, char out[8])
{
    unsigned y = (unsigned)year % 10000u, m = (unsigned)mon % 100u;
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '\0';
}

int suki_report_month(int64_t ms, const char *tz, char out[8])
{
    struct suki_tm tm;
    if (suki_time_to_local(ms, tz, &tm) < 0)
        return -EINVAL;
    format_month(tm.year, tm.mon, out);
    return 0;
}

int suki_report_parse_month(const char *s, int *year, int *mon)
{
    if (!s || strlen(s) != 7 || s[4] != '-')
        return -EINVAL;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return -EINVAL;
    int y = atoi(s), m = atoi(s + 5);
    if (y < 1970 || m < 1 || m > 12)
        return -EINVAL;
    *year = y;
    *mon = m;
    return 0;
}

void suki_report_prev_month(int year, int mon, char out[8])
{
    if (--mon < 1) {
        mon = 12;
        year--;
    }
    format_month(year, mon, out);
}

void suki_report_next_month(int year, int mon, char out[8])
{
    if (++mon > 12) {
        mon = 1;
        year++;
    }
    format_month(year, mon, out);
}

bool suki_report_amount_cents(const char *s, int64_t *cents)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* 9e13 pesos: well inside a double's exact integers once in centavos */
    if (errno || *end || !isfinite(v) || fabs(v) > 9e13)
        return false;
    *cents = (int64_t)llround(v * 100.0);
    return true;
}

/* ---- the report of a manager-month ---------------------------------- */

/* Counter field -> report member: the plain counts. */
static const struct {
    const char *field, *member;
} counts[] = {
    {"won", "deals_won"},
    {"lost", "deals_lost"},
    {"c_opened", "complaints_opened"},
    {"c_resolved", "complaints_resolved"},
    {"c_open", "complaints_open"},
    {"sent_rem", "reminders_sent"},
    {"sent_camp", "campaign_sent"},
    {"unsub", "unsubscribes"},
};

static json_int_t jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* The members shown that derive from the sums: amounts in pesos, the
 * average time to resolve in hours (one decimal), bounces from the
 * email.bounced events. */
static void derive(json_t *r)
{
    json_object_set_new(r, "deals_won_amount",
                        json_real((double)jint(r, "_won_cents") / 100.0));
    json_object_set_new(r, "deals_lost_amount",
                        json_real((double)jint(r, "_lost_cents") / 100.0));
    json_int_t n = jint(r, "_ttr_n");
    double h = n ? (double)jint(r, "_ttr_ms") / (double)n / 3600000.0 : 0;
    json_object_set_new(r, "resolve_hours_avg", json_real(round(h * 10) / 10));
    json_object_set_new(
        r, "bounces",
        json_integer(jint(json_object_get(r, "events"), "email.bounced")));
}

json_t *suki_report_new(const char *manager, const char *month,
                        const char *const *kv, size_t n)
{
    json_t *r = json_object(), *ev = json_object();
    json_object_set_new(r, "manager", json_string(manager));
    json_object_set_new(r, "month", json_string(month));
    json_object_set_new(r, "events", ev);
    for (size_t i = 0; i < SUKI_ARRAY_LEN(counts); i++)
        json_object_set_new(r, counts[i].member, json_integer(0));
    static const char *const sums[] = {"_won_cents", "_lost_cents", "_ttr_ms",
                                       "_ttr_n"};
    for (size_t i = 0; i < SUKI_ARRAY_LEN(sums); i++)
        json_object_set_new(r, sums[i], json_integer(0));
    for (size_t i = 0; i + 1 < n; i += 2) {
        const char *f = kv[i];
        json_int_t v = strtoll(kv[i + 1], NULL, 10);
        if (strncmp(f, "e:", 2) == 0) {
            if (v)
                json_object_set_new(ev, f + 2, json_integer(v));
            continue;
        }
        for (size_t j = 0; j < SUKI_ARRAY_LEN(counts); j++)
            if (strcmp(f, counts[j].field) == 0)
                json_object_set_new(r, counts[j].member, json_integer(v));
        if (strcmp(f, "won_cents") == 0)
            json_object_set_new(r, "_won_cents", json_integer(v));
        else if (strcmp(f, "lost_cents") == 0)
            json_object_set_new(r, "_lost_cents", json_integer(v));
        else if (strcmp(f, "c_ttr_ms") == 0)
            json_object_set_new(r, "_ttr_ms", json_integer(v));
        else if (strcmp(f, "c_ttr_n") == 0)
            json_object_set_new(r, "_ttr_n", json_integer(v));
    }
    json_object_set_new(r, "contracts_ending", json_array());
    derive(r);
    return r;
}

void suki_report_add(json_t *sum, const json_t *one)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)one, k, v)
    {
        if (json_is_integer(v) && strcmp(k, "bounces") != 0)
            json_object_set_new(
                sum, k, json_integer(jint(sum, k) + json_integer_value(v)));
    }
    json_t *se = json_object_get(sum, "events");
    json_object_foreach(json_object_get(one, "events"), k, v)
    {
        json_object_set_new(se, k,
                            json_integer(jint(se, k) + json_integer_value(v)));
    }
    json_array_extend(json_object_get(sum, "contracts_ending"),
                      json_object_get(one, "contracts_ending"));
    derive(sum);
}

void suki_report_finish(json_t *r)
{
    static const char *const sums[] = {"_won_cents", "_lost_cents", "_ttr_ms",
                                       "_ttr_n"};
    for (size_t i = 0; i < SUKI_ARRAY_LEN(sums); i++)
        json_object_del(r, sums[i]);
}

bool suki_report_contract(const char *key, const char *body, int64_t from,
                          int64_t to, char **client, char **contract,
                          int64_t *ends_at)
{
    json_t *b = json_loads(body, 0, NULL);
    json_t *e = json_object_get(b, SUKI_JOB_EVENT);
    const char *t = json_string_value(json_object_get(e, SUKI_JOB_EV_TYPE));
    json_t *d = json_object_get(e, SUKI_JOB_EV_DATA);
    const char *ea = json_string_value(json_object_get(d, "ends_at"));
    int64_t ms = 0;
    struct suki_err err = {{0}};
    int dy, dm, dd;
    bool ok = t && strncmp(t, "contract.", 9) == 0 && ea;
    if (ok && suki_time_parse_rfc3339(ea, &ms, &err) < 0) {
        /* a date alone is the start of that day (UTC) */
        struct suki_tm tm = {0};
        ok = suki_time_parse_date(ea, &dy, &dm, &dd) == 0;
        tm.year = dy;
        tm.mon = dm;
        tm.mday = dd;
        ok = ok && suki_time_from_local(&tm, "UTC", &ms) == 0;
    }
    ok = ok && ms >= from && ms < to;
    if (ok && suki_job_key_split(key, NULL, client, NULL, NULL) < 0)
        ok = false;
    if (ok) {
        const char *c = json_string_value(json_object_get(d, "contract"));
        *contract = suki_strdup(c ? c : "");
        *ends_at = ms;
    }
    json_decref(b);
    return ok;
}

json_t *suki_report_split(const redisReply *h, const char *month,
                          const char *only)
{
    /* manager -> [field index, ...] (the strings stay h's) */
    json_t *by = json_object();
    for (size_t j = 0; j + 1 < h->elements; j += 2) {
        const redisReply *f = h->element[j], *v = h->element[j + 1];
        const char *sp =
            f->type == REDIS_REPLY_STRING ? strchr(f->str, ' ') : NULL;
        if (!sp || v->type != REDIS_REPLY_STRING ||
            (only && strcmp(sp + 1, only) != 0))
            continue;
        json_t *a = json_object_get(by, sp + 1);
        if (!a) {
            a = json_array();
            json_object_set_new(by, sp + 1, a);
        }
        json_array_append_new(a, json_integer((json_int_t)j));
    }
    if (only && !json_object_get(by, only))
        json_object_set_new(by, only, json_array());
    json_t *reps = json_object();
    const char *m;
    json_t *a;
    json_object_foreach(by, m, a)
    {
        size_t n = json_array_size(a), i;
        const char **kv = suki_calloc(2 * n + 1, sizeof(*kv));
        char **names = suki_calloc(n + 1, sizeof(*names));
        json_t *x;
        json_array_foreach(a, i, x)
        {
            size_t j = (size_t)json_integer_value(x);
            const char *f = h->element[j]->str;
            names[i] = suki_strndup(f, (size_t)(strchr(f, ' ') - f));
            kv[2 * i] = names[i];
            kv[2 * i + 1] = h->element[j + 1]->str;
        }
        json_object_set_new(reps, m, suki_report_new(m, month, kv, 2 * n));
        for (i = 0; i < n; i++)
            free(names[i]);
        free(names);
        free(kv);
    }
    json_decref(by);
    return reps;
}
