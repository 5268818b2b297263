/* ctl_report.c - sukictl report: the monthly report of each manager (or
 * one), from the counters the intake keeps (store/report.h), with the
 * contracts that end within 60 days read from the scheduled renewal jobs;
 * --send queues the report jobs now (sukid sends them). */
#include "ctl.h"
#include "store/report.h"
#include "store/scripts.h"
#include "timeutil.h"
#include "util.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define DAY_MS ((int64_t)86400000)

/* Whether rule name r is triggered by contract.* events (its jobs are the
 * contracts' renewal alerts). */
static bool contract_rule(const struct suki_conf *c, const char *r)
{
    for (size_t i = 0; i < c->n_rules; i++) {
        if (strcmp(c->rules[i].name, r) != 0)
            continue;
        for (size_t j = 0; j < c->rules[i].n_on; j++)
            if (strncmp(c->rules[i].on[j], "contract.", 9) == 0)
                return true;
    }
    return false;
}

/* Contracts ending in [now, now + 60 d), from the renewal jobs due before
 * the end of that window (a contract's alerts are due before it ends):
 * each added to the report of its client's manager in reps (manager ->
 * report; a manager without a report there is skipped). */
static int contracts(struct sukictl *ctl, json_t *reps, int64_t now)
{
    const struct suki_conf *c = ctl->conf;
    char *jobs = sukictl_key(ctl, SUKI_KEY_JOBS);
    char hi[24];
    snprintf(hi, sizeof(hi), "%" PRId64, (int64_t)(now + 60 * DAY_MS));
    redisReply *z = sukictl_cmd(ctl, "ZRANGEBYSCORE %s -inf %s", jobs, hi);
    free(jobs);
    if (!z)
        return -1;
    json_t *seen = json_object();
    for (size_t i = 0; i < z->elements; i++) {
        const char *key = z->element[i]->str;
        char *rule = NULL;
        if (!key || suki_job_key_split(key, &rule, NULL, NULL, NULL) < 0 ||
            !contract_rule(c, rule)) {
            free(rule);
            continue;
        }
        free(rule);
        char *jh = suki_job_hash_key(c->prefix, NULL, key);
        redisReply *b = jh ? sukictl_cmd(ctl, "HGET %s %s", jh, key) : NULL;
        free(jh);
        char *cl = NULL, *ct = NULL;
        int64_t ends;
        if (b && b->type == REDIS_REPLY_STRING &&
            suki_report_contract(key, b->str, now, now + 60 * DAY_MS, &cl, &ct,
                                 &ends)) {
            char *id = suki_asprintf("%s\n%s\n%" PRId64, cl, ct, ends);
            if (!json_object_get(seen, id)) {
                json_object_set_new(seen, id, json_true());
                char *ck = suki_key_id(c->prefix, SUKI_KEY_CLIENT, cl);
                redisReply *m = sukictl_cmd(ctl, "HMGET %s manager name", ck);
                free(ck);
                const char *mgr =
                    m && m->elements == 2 &&
                            m->element[0]->type == REDIS_REPLY_STRING
                        ? m->element[0]->str
                        : "";
                const char *nm =
                    m && m->elements == 2 &&
                            m->element[1]->type == REDIS_REPLY_STRING
                        ? m->element[1]->str
                        : "";
                json_t *r = json_object_get(reps, mgr);
                char e[40];
                suki_time_format_rfc3339(ends, e, sizeof(e));
                if (r)
                    json_array_append_new(
                        json_object_get(r, "contracts_ending"),
                        json_pack("{s:s, s:s, s:s, s:s}", "client", cl, "name",
                                  nm, "contract", ct, "ends_at", e));
                if (m)
                    freeReplyObject(m);
            }
            free(id);
        }
        free(cl);
        free(ct);
        if (b)
            freeReplyObject(b);
    }
    json_decref(seen);
    freeReplyObject(z);
    return 0;
}

static void print_text(const json_t *r)
{
    const char *m = json_string_value(json_object_get(r, "manager"));
    printf("report %s for %s\n", json_string_value(json_object_get(r, "month")),
           m && *m ? m : "(clients without a manager)");
    const char *k;
    json_t *v;
    json_int_t total = 0;
    json_object_foreach(json_object_get(r, "events"), k, v) total +=
        json_integer_value(v);
    printf("  events: %lld\n", (long long)total);
    json_t *ev = json_object_get(r, "events");
    size_t ne = json_object_size(ev), n = 0;
    const char **tv = suki_calloc(ne + 1, sizeof(*tv));
    json_object_foreach(ev, k, v) tv[n++] = k;
    qsort(tv, ne, sizeof(*tv), cmp_str);
    for (size_t i = 0; i < ne; i++)
        printf("    %-28s %lld\n", tv[i],
               (long long)json_integer_value(json_object_get(ev, tv[i])));
    free(tv);
#define I(name) ((long long)json_integer_value(json_object_get(r, name)))
#define F(name) (json_real_value(json_object_get(r, name)))
    printf("  deals won: %lld (%.2f), lost: %lld (%.2f)\n", I("deals_won"),
           F("deals_won_amount"), I("deals_lost"), F("deals_lost_amount"));
    printf("  complaints opened: %lld, resolved: %lld, still open: %lld, "
           "average time to resolve: %.1f h\n",
           I("complaints_opened"), I("complaints_resolved"),
           I("complaints_open"), F("resolve_hours_avg"));
    printf("  reminders sent: %lld, campaign mail sent: %lld\n",
           I("reminders_sent"), I("campaign_sent"));
    printf("  unsubscribes: %lld, bounces: %lld\n", I("unsubscribes"),
           I("bounces"));
#undef I
#undef F
    json_t *ce = json_object_get(r, "contracts_ending");
    printf("  contracts ending within 60 days: %zu\n", json_array_size(ce));
    size_t i;
    json_array_foreach(ce, i, v) printf(
        "    %s  %s %s%s%s\n", json_string_value(json_object_get(v, "ends_at")),
        json_string_value(json_object_get(v, "client")),
        json_string_value(json_object_get(v, "contract")),
        *json_string_value(json_object_get(v, "name")) ? "  " : "",
        json_string_value(json_object_get(v, "name")));
}

/* The report objects of month (manager -> report, owned), for manager only
 * when given, from the month's counter hash (fields "<counter> <manager>").
 * Returns NULL after printing why. */
static json_t *build(struct sukictl *ctl, const char *month,
                     const char *manager, int64_t now)
{
    /* intake's counts still in the log first (report-fold.inc.lua) */
    struct suki_redis_args a = {0};
    suki_redis_args_str(&a, ctl->conf->prefix);
    redisReply *f = sukictl_eval(ctl, suki_lua_report_fold, 0, &a);
    suki_redis_args_clear(&a);
    if (!f)
        return NULL;
    freeReplyObject(f);
    char *k = suki_key_id(ctl->conf->prefix, SUKI_KEY_REPORT, month);
    redisReply *h = sukictl_cmd(ctl, "HGETALL %s", k);
    free(k);
    if (!h)
        return NULL;
    json_t *reps = suki_report_split(h, month, manager);
    freeReplyObject(h);
    if (contracts(ctl, reps, now) < 0) {
        json_decref(reps);
        return NULL;
    }
    return reps;
}

/* One report job due now (sukid sends it as the monthly one: template,
 * sent markers, retries), its report in the body. Returns 0 or -1. */
static int queue(struct sukictl *ctl, const char *subject, const char *month,
                 json_t *r, int64_t now)
{
    char slot[48];
    snprintf(slot, sizeof(slot), "%s.now-%" PRId64, month, now);
    char *key = suki_job_key(SUKI_REPORT_RULE, SUKI_REPORT_RULE, subject, slot);
    json_t *b = json_pack("{s:I, s:O}", SUKI_JOB_DUE, (json_int_t)now, "rp", r);
    char *body = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(b);
    int rc = sukictl_queue_job(ctl, SUKI_REPORT_RULE, key, body, now);
    free(key);
    free(body);
    return rc;
}

/* --send: each manager's report (with an address) and, without --manager,
 * the roll-up for every other address in reports.monthly.to. */
static int send_now(struct sukictl *ctl, json_t *reps, const char *month,
                    const char *manager, int64_t now)
{
    const struct suki_conf *c = ctl->conf;
    bool to_managers = false;
    for (size_t i = 0; i < c->n_report_to; i++)
        to_managers = to_managers || strcmp(c->report_to[i], "manager") == 0;
    json_t *all = suki_report_new("", month, NULL, 0);
    const char *m;
    json_t *r;
    size_t queued = 0;
    int ret = SUKICTL_OK;
    json_object_foreach(reps, m, r)
    {
        suki_report_add(all, r);
        if (!(to_managers || manager) || !strchr(m, '@'))
            continue;
        suki_report_finish(r);
        if (queue(ctl, m, month, r, now) < 0) {
            ret = SUKICTL_FAILED;
            continue;
        }
        printf("report %s for %s queued\n", month, m);
        queued++;
    }
    suki_report_finish(all);
    json_object_set_new(all, "rollup", json_true());
    json_object_set_new(all, "managers",
                        json_integer((json_int_t)json_object_size(reps)));
    for (size_t i = 0; !manager && i < c->n_report_to; i++) {
        if (strcmp(c->report_to[i], "manager") == 0)
            continue;
        char *sub = suki_asprintf("*%s", c->report_to[i]);
        if (queue(ctl, sub, month, all, now) < 0)
            ret = SUKICTL_FAILED;
        else {
            printf("roll-up %s for %s queued\n", month, c->report_to[i]);
            queued++;
        }
        free(sub);
    }
    json_decref(all);
    if (queued == 0 && ret == SUKICTL_OK)
        printf("nothing to send for %s\n", month);
    return ret;
}

int sukictl_report(struct sukictl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"manager", required_argument, NULL, 'm'},
        {"month", required_argument, NULL, 'M'},
        {"json", no_argument, NULL, 'j'},
        {"send", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0}};
    const char *manager = NULL, *month = NULL;
    bool send = false;
    int c, rc = SUKICTL_OK;
    char **av = suki_calloc((size_t)argc + 2, sizeof(char *));
    av[0] = "report";
    for (int i = 0; i < argc; i++)
        av[i + 1] = argv[i];
    int ac = argc + 1;
    optind = 0;
    while ((c = getopt_long(ac, av, "+", opts, NULL)) != -1) {
        if (c == 'm')
            manager = optarg;
        else if (c == 'M')
            month = optarg;
        else if (c == 'j')
            ctl->json = true;
        else if (c == 's')
            send = true;
        else
            rc = SUKICTL_USAGE;
    }
    if (rc == SUKICTL_OK && optind < ac) {
        sukictl_errx("report: unexpected argument '%s'", av[optind]);
        rc = SUKICTL_USAGE;
    }
    free(av);
    if (rc != SUKICTL_OK)
        return rc;
    int y, m;
    char mon[8];
    int64_t now = suki_now_ms();
    const char *tz =
        ctl->conf->reports ? ctl->conf->report_timezone : ctl->conf->timezone;
    if (month) {
        if (suki_report_parse_month(month, &y, &m) < 0) {
            sukictl_errx("report: --month %s is not a month YYYY-MM (01 to "
                         "12), e.g. 2026-11",
                         month);
            return SUKICTL_USAGE;
        }
        memcpy(mon, month, 8);
    } else {
        /* the month the next report covers: the last one in the zone */
        char cur[8];
        suki_report_month(now, tz, cur);
        suki_report_parse_month(cur, &y, &m);
        suki_report_prev_month(y, m, mon);
    }
    if (manager && (!*manager || strpbrk(manager, "\r\n"))) {
        sukictl_errx("report: --manager must be an address");
        return SUKICTL_USAGE;
    }
    if (send && !ctl->conf->reports) {
        sukictl_errx("report --send: reports.monthly is not configured");
        return SUKICTL_FAILED;
    }
    if (!ctl->conf->reports)
        fprintf(stderr, "sukictl: report: reports.monthly is not configured: "
                        "no counters are kept\n");
    if (!sukictl_redis(ctl))
        return SUKICTL_FAILED;
    json_t *reps = build(ctl, mon, manager, now);
    if (!reps)
        return SUKICTL_FAILED;
    if (send) {
        rc = send_now(ctl, reps, mon, manager, now);
        json_decref(reps);
        return rc;
    }
    /* managers in order, "" (clients without one) first */
    size_t nm = json_object_size(reps), shown = 0;
    const char **mv = suki_calloc(nm + 1, sizeof(*mv));
    const char *k;
    json_t *r;
    json_object_foreach(reps, k, r) mv[shown++] = k;
    qsort(mv, nm, sizeof(*mv), cmp_str);
    for (size_t i = 0; i < nm; i++) {
        r = json_object_get(reps, mv[i]);
        suki_report_finish(r);
        if (ctl->json) {
            char *s = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
            puts(s ? s : "{}");
            free(s);
        } else {
            print_text(r);
        }
    }
    free(mv);
    if (!ctl->json && shown == 0)
        printf("no report for %s: no events counted\n", mon);
    json_decref(reps);
    return SUKICTL_OK;
}
