/* check_rules.c - the rule engine with real dlopen of the built plugins
 * (BUILDDIR/plugins/.libs) and the fixture plugins: loader errors with
 * FILE:LINE, unknown keys, settings errors, unless/subject semantics, job
 * keys and bodies, plugin failures, on_due (max_lateness, unknown rule,
 * verdicts), recipients, loading a new ruleset while the old one lives. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "event.h"
#include "metrics.h"
#include "rules.h"
#include "timeutil.h"

#define MNL "Asia/Manila"

static char tmpdir[256];
static char plugdir[300];
static char confpath[300];

static void link_plugin(const char *from_dir, const char *name)
{
    char src[512], dst[512];
    snprintf(src, sizeof(src), "%s/%s.so", from_dir, name);
    snprintf(dst, sizeof(dst), "%s/%s.so", plugdir, name);
    ck_assert_msg(access(src, R_OK) == 0, "%s not built", src);
    ck_assert_int_eq(symlink(src, dst), 0);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_rules.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(plugdir, sizeof(plugdir), "%s/plugins", tmpdir);
    ck_assert_int_eq(mkdir(plugdir, 0755), 0);
    link_plugin(BUILDDIR "/plugins/.libs", "followup");
    link_plugin(BUILDDIR "/plugins/.libs", "renewal");
    link_plugin(BUILDDIR "/tests/fixtures/plugins/.libs", "badabi");
    link_plugin(BUILDDIR "/tests/fixtures/plugins/.libs", "nosym");
    link_plugin(BUILDDIR "/tests/fixtures/plugins/.libs", "failing");
    link_plugin(BUILDDIR "/tests/fixtures/plugins/.libs", "small");
    snprintf(confpath, sizeof(confpath), "%s/sukid.conf", tmpdir);
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Write a config whose rules list is `rules` (the text between the
 * parentheses). The rules start on line 6 of the file. */
static struct suki_conf *conf_with(const char *rules)
{
    FILE *f = fopen(confpath, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "plugins = { dir = \"%s\"; };\n"
            "templates = { dir = \"%s\"; };\n"
            "timezone = \"Asia/Manila\";\n"
            "roles = { head-of-sales = \"lead@example.ph\"; };\n"
            "rules = (\n"
            "%s\n"
            ");\n",
            plugdir, tmpdir, rules);
    ck_assert_int_eq(fclose(f), 0);
    struct suki_conf_diags d = {0};
    struct suki_conf *c = suki_conf_load(confpath, &d);
    ck_assert_msg(c != NULL, "config refused: %s:%d: %s",
                  d.n ? d.v[0].file : "", d.n ? d.v[0].line : 0,
                  d.n ? d.v[0].msg : "");
    suki_conf_diags_clear(&d);
    return c;
}

/* Load rules that must fail; returns the diagnostics (caller clears). */
static struct suki_conf_diags load_bad(const char *rules)
{
    struct suki_conf *c = conf_with(rules);
    struct suki_conf_diags d = {0};
    struct suki_ruleset *set = suki_rules_load(c, NULL, &d);
    ck_assert_ptr_null(set);
    ck_assert_int_ge(d.n, 1);
    ck_assert_int_eq(suki_rules_check(c, NULL, NULL), -EINVAL);
    suki_conf_unref(c);
    return d;
}

static struct suki_ruleset *load_ok(const char *rules)
{
    struct suki_conf *c = conf_with(rules);
    struct suki_conf_diags d = {0};
    struct suki_ruleset *set = suki_rules_load(c, NULL, &d);
    ck_assert_msg(set != NULL, "rules refused: %s:%d: %s",
                  d.n ? d.v[0].file : "", d.n ? d.v[0].line : 0,
                  d.n ? d.v[0].msg : "");
    ck_assert_int_eq(d.n, 0);
    suki_conf_unref(c); /* the ruleset keeps its own reference */
    return set;
}

static struct suki_event *ev_parse(const char *json)
{
    struct suki_event_limits lim = {.max_size = 65536, .max_depth = 32};
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    int rc = suki_event_parse(json, strlen(json), &lim, 1000, &ev, &err);
    ck_assert_msg(rc == 0, "event refused: %s", err.msg);
    return ev;
}

static int64_t T(const char *s)
{
    int64_t ms = 0;
    struct suki_err err = {{0}};
    ck_assert_msg(suki_time_parse_rfc3339(s, &ms, &err) == 0, "%s", err.msg);
    return ms;
}

/* The rules shipped in conf/sukid.conf (as reported to the lead). */
static const char shipped[] =
    "{ name = \"follow-up-after-meeting\"; use = \"followup\";\n"
    "  on = [ \"meeting.held\", \"proposal.sent\" ]; after = \"3d\";\n"
    "  business_days = true; at_local = \"09:00\";\n"
    "  unless = [ \"contact.*\", \"deal.*\" ]; notify = [ \"manager\" ];\n"
    "  template = \"followup-reminder\"; channel = \"email\";\n"
    "  max_lateness = \"2d\"; },\n"
    "{ name = \"contract-renewal\"; use = \"renewal\";\n"
    "  on = [ \"contract.signed\", \"contract.updated\", "
    "\"contract.renewed\" ];\n"
    "  anchor = \"ends_at\"; before = [ \"90d\", \"60d\", \"30d\", \"7d\" ];\n"
    "  unless = [ \"contract.terminated\" ];\n"
    "  notify = [ \"manager\", \"client\" ]; template = \"renewal-alert\";\n"
    "  channel = \"email\"; },\n"
    "{ name = \"complaint-escalation\"; use = \"followup\";\n"
    "  on = [ \"complaint.opened\" ]; after = \"24h\";\n"
    "  unless = [ \"complaint.resolved\" ];\n"
    "  notify = [ \"role:head-of-sales\", \"manager\" ];\n"
    "  template = \"complaint-escalation\"; },\n"
    "{ name = \"referral-request\"; use = \"followup\";\n"
    "  on = [ \"order.fulfilled\" ]; after = \"14d\"; at_local = \"10:00\";\n"
    "  notify = [ \"client\" ]; template = \"referral-request\"; },\n"
    "{ name = \"meeting-prep\"; use = \"renewal\";\n"
    "  on = [ \"meeting.scheduled\" ]; anchor = \"starts_at\";\n"
    "  before = [ \"1d\" ]; at_local = \"08:00\"; subject = [ \"meeting\" ];\n"
    "  notify = [ \"manager\" ]; template = \"meeting-prep\"; }";

static const struct suki_action *find_action(const struct suki_actions *a,
                                             enum suki_action_kind kind,
                                             const char *key_or_prefix)
{
    for (size_t i = 0; i < a->n; i++) {
        const struct suki_action *x = &a->v[i];
        if (x->kind != kind)
            continue;
        const char *k = kind == SUKI_ACTION_SCHEDULE ? x->key : x->prefix;
        if (strcmp(k, key_or_prefix) == 0)
            return x;
    }
    return NULL;
}

static void dump_actions(const struct suki_actions *a)
{
    for (size_t i = 0; i < a->n; i++)
        fprintf(stderr, "  %s %s\n",
                a->v[i].kind == SUKI_ACTION_SCHEDULE ? "SCHEDULE" : "CANCEL",
                a->v[i].kind == SUKI_ACTION_SCHEDULE ? a->v[i].key
                                                     : a->v[i].prefix);
}

/* ---- loading ---- */

START_TEST(load_shipped)
{
    struct suki_ruleset *set = load_ok(shipped);
    ck_assert_int_eq(suki_rules_count(set), 5);
    ck_assert_ptr_nonnull(suki_rules_conf(set));
    suki_rules_free(set);
}
END_TEST

START_TEST(abi_mismatch)
{
    struct suki_conf_diags d =
        load_bad("{ name = \"x\";\n use = \"badabi\"; on = [\"a.b\"];\n"
                 "  notify = [\"manager\"]; template = \"t\"; }");
    ck_assert_int_eq(d.n, 1);
    ck_assert_str_eq(d.v[0].file, confpath);
    ck_assert_int_eq(d.v[0].line, 7);
    ck_assert_msg(strstr(d.v[0].msg, "/badabi.so") &&
                      strstr(d.v[0].msg, "ABI version 2") &&
                      strstr(d.v[0].msg, "ABI version 1"),
                  "message: %s", d.v[0].msg);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(missing_symbol)
{
    struct suki_conf_diags d =
        load_bad("{ name = \"x\"; use = \"nosym\"; on = [\"a.b\"];\n"
                 "  notify = [\"manager\"]; template = \"t\"; }");
    ck_assert_int_eq(d.n, 1);
    ck_assert_int_eq(d.v[0].line, 6);
    ck_assert_msg(strstr(d.v[0].msg, "/nosym.so") &&
                      strstr(d.v[0].msg, "no 'suki_plugin' symbol"),
                  "message: %s", d.v[0].msg);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(struct_too_small)
{
    struct suki_conf_diags d =
        load_bad("{ name = \"x\"; use = \"small\"; on = [\"a.b\"];\n"
                 "  notify = [\"manager\"]; template = \"t\"; }");
    ck_assert_int_eq(d.n, 1);
    ck_assert_int_eq(d.v[0].line, 6);
    ck_assert_msg(strstr(d.v[0].msg, "/small.so") &&
                      strstr(d.v[0].msg, "too small (16 bytes") &&
                      strstr(d.v[0].msg, "ABI version 1"),
                  "message: %s", d.v[0].msg);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(missing_plugin)
{
    /* Two rules using the same missing plugin: reported once. */
    struct suki_conf_diags d =
        load_bad("{ name = \"x\"; use = \"nothere\"; on = [\"a.b\"];\n"
                 "  notify = [\"manager\"]; template = \"t\"; },\n"
                 "{ name = \"y\"; use = \"nothere\"; on = [\"a.b\"];\n"
                 "  notify = [\"manager\"]; template = \"t\"; }");
    ck_assert_int_eq(d.n, 1);
    ck_assert_msg(strstr(d.v[0].msg, "cannot load plugin 'nothere'") &&
                      strstr(d.v[0].msg, "nothere.so"),
                  "message: %s", d.v[0].msg);
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(unknown_key)
{
    struct suki_conf_diags d =
        load_bad("{ name = \"fu\"; use = \"followup\"; on = [\"a.b\"];\n"
                 "  after = \"3d\";\n"
                 "  aftr = \"4d\";\n"
                 "  notify = [\"manager\"]; template = \"t\"; bogus = 1; }");
    ck_assert_int_eq(d.n, 2);
    ck_assert_str_eq(d.v[0].file, confpath);
    ck_assert_int_eq(d.v[0].line, 8);
    ck_assert_str_eq(d.v[0].msg,
                     "unknown key 'aftr' in rule 'fu' (plugin followup)");
    ck_assert_int_eq(d.v[1].line, 9);
    ck_assert_str_eq(d.v[1].msg,
                     "unknown key 'bogus' in rule 'fu' (plugin followup)");
    suki_conf_diags_clear(&d);
}
END_TEST

/* A followup key is unknown to renewal and the other way round. */
START_TEST(unknown_key_other_plugin)
{
    struct suki_conf_diags d =
        load_bad("{ name = \"rn\"; use = \"renewal\"; on = [\"a.b\"];\n"
                 "  before = [\"7d\"]; business_days = true;\n"
                 "  notify = [\"manager\"]; template = \"t\"; }");
    ck_assert_int_eq(d.n, 1);
    ck_assert_int_eq(d.v[0].line, 7);
    ck_assert_str_eq(d.v[0].msg, "unknown key 'business_days' in rule 'rn' "
                                 "(plugin renewal)");
    suki_conf_diags_clear(&d);
}
END_TEST

static const struct {
    const char *rule;
    int line;
    const char *msg;
} bad_settings[] = {
    {"{ name = \"fu\"; use = \"followup\"; on = [\"a.b\"];\n"
     "  notify = [\"manager\"]; template = \"t\";\n"
     "  after = \"3x\"; }",
     8, "rule 'fu': 'after':"},
    {"{ name = \"fu\"; use = \"followup\"; on = [\"a.b\"];\n"
     "  notify = [\"manager\"]; template = \"t\";\n"
     "  after = \"36h\";\n  business_days = true; }",
     8, "rule 'fu': 'after': must be whole days"},
    {"{ name = \"fu\"; use = \"followup\"; on = [\"a.b\"];\n"
     "  after = \"1d\"; business_days = \"yes\";\n"
     "  notify = [\"manager\"]; template = \"t\"; }",
     7, "rule 'fu': 'business_days' must be true or false, not a string"},
    {"{ name = \"fu\"; use = \"followup\"; on = [\"a.b\"];\n"
     "  after = \"1d\";\n  at_local = \"9:00\";\n"
     "  notify = [\"manager\"]; template = \"t\"; }",
     8, "rule 'fu': 'at_local': '9:00' is not a local time"},
    {"{ name = \"fu\"; use = \"followup\"; on = [\"a.b\"];\n"
     "  notify = [\"manager\"]; template = \"t\"; }",
     6, "rule 'fu': 'after' is required"},
    {"{ name = \"rn\"; use = \"renewal\"; on = [\"a.b\"];\n"
     "  notify = [\"manager\"]; template = \"t\";\n"
     "  before = [ \"30d\",\n \"3x\" ]; }",
     8, "rule 'rn': 'before': '3x' is not a duration"},
    {"{ name = \"rn\"; use = \"renewal\"; on = [\"a.b\"];\n"
     "  notify = [\"manager\"]; template = \"t\";\n"
     "  before = ( \"30d\", 7 ); }",
     8, "rule 'rn': 'before' must hold only strings"},
    {"{ name = \"rn\"; use = \"renewal\"; on = [\"a.b\"];\n"
     "  before = \"7d\"; anchor = 5;\n"
     "  notify = [\"manager\"]; template = \"t\"; }",
     7, "rule 'rn': 'anchor' must be a string, not an integer"},
    {"{ name = \"fl\"; use = \"failing\"; on = [\"a.b\"];\n"
     "  notify = [\"manager\"]; template = \"t\";\n"
     "  mode = \"weird\"; }",
     8, "rule 'fl': 'mode': unknown mode 'weird'"},
};

START_TEST(bad_setting)
{
    struct suki_conf_diags d = load_bad(bad_settings[_i].rule);
    ck_assert_str_eq(d.v[0].file, confpath);
    ck_assert_msg(d.v[0].line == bad_settings[_i].line &&
                      strstr(d.v[0].msg, bad_settings[_i].msg),
                  "got %d: %s; want %d: %s", d.v[0].line, d.v[0].msg,
                  bad_settings[_i].line, bad_settings[_i].msg);
    suki_conf_diags_clear(&d);
}
END_TEST

/* SIGHUP: a new ruleset is loaded while the old one is in use; freeing
 * the old one leaves the new one working. */
START_TEST(reload_overlap)
{
    struct suki_ruleset *a = load_ok(shipped);
    struct suki_ruleset *b = load_ok(shipped);
    struct suki_event *ev =
        ev_parse("{\"type\":\"meeting.held\",\"client\":\"acme\","
                 "\"at\":\"2026-11-27T10:00:00+08:00\"}");
    struct suki_actions acts;
    suki_rules_actions_init(&acts);
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_rules_on_event(a, ev, NULL, ev->at_ms, &acts, &err),
                     0);
    suki_rules_free(a);
    suki_rules_actions_clear(&acts);
    ck_assert_int_eq(suki_rules_on_event(b, ev, NULL, ev->at_ms, &acts, &err),
                     0);
    ck_assert_int_eq(acts.n, 1);
    ck_assert_str_eq(acts.v[0].key, "follow-up-after-meeting:acme::");
    ck_assert_int_eq(acts.v[0].due_ms, T("2026-12-02T09:00:00+08:00"));
    suki_rules_actions_clear(&acts);
    suki_event_free(ev);
    suki_rules_free(b);
}
END_TEST

/* ---- keys ---- */

START_TEST(job_keys)
{
    char *k = suki_job_key("a:b", "c %d", "x\ny\t", "90d");
    ck_assert_str_eq(k, "a%3Ab:c%20%25d:x%0Ay%09:90d");
    free(k);
    k = suki_job_key("r", "c", NULL, NULL);
    ck_assert_str_eq(k, "r:c::");
    free(k);
    k = suki_job_key("r", "c", "s\x7f", "\x01");
    ck_assert_str_eq(k, "r:c:s%7F:%01");
    free(k);
    k = suki_job_key("r", "c", "ñ", "x");
    ck_assert_str_eq(k, "r:c:ñ:x");
    free(k);
    k = suki_job_key_prefix("r", "c:1", NULL);
    ck_assert_str_eq(k, "r:c%3A1:");
    free(k);
    k = suki_job_key_prefix("r", "c", "");
    ck_assert_str_eq(k, "r:c::");
    free(k);
    k = suki_job_key_prefix("r", "c", "T 1");
    ck_assert_str_eq(k, "r:c:T%201:");
    free(k);
}
END_TEST

/* ---- events ---- */

START_TEST(schedule_body_roundtrip)
{
    struct suki_ruleset *set = load_ok(shipped);
    struct suki_event *ev = ev_parse(
        "{\"id\":\"e1\",\"type\":\"contract.signed\",\"client\":\"acme ph\","
        "\"at\":\"2026-11-20T10:00:00+08:00\",\"manager\":\"maria@example.ph\","
        "\"data\":{\"contract\":\"C:1\",\"ends_at\":\"2027-06-30\","
        "\"value\":12000}}");
    struct suki_actions acts;
    suki_rules_actions_init(&acts);
    struct suki_err err = {{0}};
    int64_t now = T("2026-11-27T10:00:00+08:00");
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, now, &acts, &err), 0);
    /* cancel the contract's alerts, then four new ones */
    ck_assert_int_eq(acts.n, 5);
    ck_assert_int_eq(acts.v[0].kind, SUKI_ACTION_CANCEL);
    ck_assert_str_eq(acts.v[0].prefix, "contract-renewal:acme%20ph:C%3A1:");
    ck_assert_ptr_null(acts.v[0].key);
    const struct suki_action *x = find_action(
        &acts, SUKI_ACTION_SCHEDULE, "contract-renewal:acme%20ph:C%3A1:90d");
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->due_ms, T("2027-04-01T09:00:00+08:00"));
    ck_assert_str_eq(x->client, "acme ph");
    ck_assert_str_eq(x->rule, "contract-renewal");
    ck_assert_ptr_null(x->prefix);

    struct suki_jobdata jd;
    ck_assert_int_eq(
        suki_job_parse(x->key, x->body, strlen(x->body), &jd, &err), 0);
    ck_assert_str_eq(jd.key, x->key);
    ck_assert_str_eq(jd.rule, "contract-renewal");
    ck_assert_str_eq(jd.client, "acme ph");
    ck_assert_str_eq(jd.subject, "C:1");
    ck_assert_str_eq(jd.slot, "90d");
    /* the rule's template, channel and notify are not stored... */
    ck_assert_ptr_null(jd.template_name);
    ck_assert_ptr_null(jd.channel);
    ck_assert_int_eq(jd.n_notify, 0);
    /* ...they come from the configuration */
    ck_assert(suki_job_defaults(&jd, suki_rules_conf(set)));
    ck_assert_str_eq(jd.template_name, "renewal-alert");
    ck_assert_str_eq(jd.channel, "email");
    ck_assert_int_eq(jd.n_notify, 2);
    ck_assert_str_eq(jd.notify[0], "manager");
    ck_assert_str_eq(jd.notify[1], "client");
    ck_assert_int_eq(jd.due_ms, x->due_ms);
    ck_assert_int_eq(jd.attempt, 0);
    ck_assert_int_eq(jd.retry_at_ms, 0);
    ck_assert_ptr_nonnull(jd.event);
    ck_assert_str_eq(jd.event->type, "contract.signed");
    ck_assert_str_eq(jd.event->client, "acme ph");
    ck_assert_str_eq(jd.event->id, "e1");
    ck_assert_str_eq(jd.event->manager, "maria@example.ph");
    ck_assert_int_eq(jd.event->at_ms, ev->at_ms);
    ck_assert_str_eq(suki_event_data_str(jd.event, "ends_at"), "2027-06-30");
    ck_assert_str_eq(suki_event_data_str(jd.event, "value"), "12000");
    /* compact JSON of what the key and the rule do not say */
    char want[400];
    snprintf(want, sizeof(want),
             "{\"d\":%lld,\"e\":{\"t\":\"contract.signed\",\"a\":%lld,"
             "\"i\":\"e1\",\"m\":\"maria@example.ph\",\"d\":{\"contract\":"
             "\"C:1\",\"ends_at\":\"2027-06-30\",\"value\":12000}}}",
             (long long)x->due_ms, (long long)ev->at_ms);
    ck_assert_str_eq(x->body, want);
    suki_job_clear(&jd);
    (void)now;
    suki_rules_actions_clear(&acts);
    suki_event_free(ev);
    suki_rules_free(set);
}
END_TEST

START_TEST(job_parse_errors)
{
    static const char *bad[][2] = {
        {"r:c::", ""},
        {"r:c::", "[]"},
        {"r:c::", "{}"},
        {"r:c::", "{\"d\":0}"},
        {"r:c::", "{\"d\":\"5\"}"},
        {"r:c::", "{\"d\":5,\"n\":[1]}"},
        {"r:c::", "{\"d\":5,\"n\":\"manager\"}"},
        {"r:c::", "{\"d\":5,\"t\":\"\"}"},
        {"r:c::", "{\"d\":5,\"c\":7}"},
        {"r:c::", "{\"d\":5,\"a\":-1}"},
        {"r:c::", "{\"d\":5,\"e\":{\"x\":1}}"},
        {"r:c::", "{\"d\":5,\"e\":{\"t\":\"Bad Type\",\"a\":1}}"},
        {"r:c::", "{\"d\":5,\"e\":{\"t\":\"a.b\",\"d\":[]}}"},
        {"r:c::", "{\"d\":5,\"e\":{\"t\":\"a.b\",\"i\":\"\"}}"},
        {"r:c::", "{\"d\":5,\"e\":{\"t\":\"a.b\",\"m\":\"a\\nb\"}}"},
        {"r:c::", "{\"d\":5,\"d\":6}"},
        /* old bodies (before the compact format) are refused */
        {"r:c::", "{\"rule\":\"r\",\"client\":\"c\",\"due\":5}"},
        /* keys */
        {"r:c:", "{\"d\":5}"},
        {"r:c:s:x:y", "{\"d\":5}"},
        {":c::", "{\"d\":5}"},
        {"r:::", "{\"d\":5}"},
        {"r:c%3:s:", "{\"d\":5}"},
        {"r:c%00::", "{\"d\":5}"},
        {"r:c%zz::", "{\"d\":5}"},
    };
    for (size_t i = 0; i < SUKI_ARRAY_LEN(bad); i++) {
        struct suki_jobdata jd;
        struct suki_err err = {{0}};
        ck_assert_msg(suki_job_parse(bad[i][0], bad[i][1], strlen(bad[i][1]),
                                     &jd, &err) == -EINVAL,
                      "accepted %s %s", bad[i][0], bad[i][1]);
        ck_assert_msg(err.msg[0] != '\0', "no message for %s", bad[i][1]);
        ck_assert_ptr_null(jd.rule);
        ck_assert_ptr_null(jd.key);
    }
    struct suki_jobdata jd;
    const char *b = "{\"d\":5,\"a\":2,\"r\":99,\"t\":\"tt\",\"c\":\"chat\","
                    "\"n\":[\"x@y.ph\"]}";
    ck_assert_int_eq(
        suki_job_parse("r%3A1:c%25x:s%20t:90d", b, strlen(b), &jd, NULL), 0);
    ck_assert_str_eq(jd.key, "r%3A1:c%25x:s%20t:90d");
    ck_assert_str_eq(jd.rule, "r:1");
    ck_assert_str_eq(jd.client, "c%x");
    ck_assert_str_eq(jd.subject, "s t");
    ck_assert_str_eq(jd.slot, "90d");
    ck_assert_int_eq(jd.due_ms, 5);
    ck_assert_int_eq(jd.attempt, 2);
    ck_assert_int_eq(jd.retry_at_ms, 99);
    ck_assert_str_eq(jd.template_name, "tt");
    ck_assert_str_eq(jd.channel, "chat");
    ck_assert_int_eq(jd.n_notify, 1);
    ck_assert_ptr_null(jd.event);
    /* the job's own values win over the rule's; an unknown rule: email */
    ck_assert(!suki_job_defaults(&jd, NULL));
    ck_assert_str_eq(jd.channel, "chat");
    suki_job_clear(&jd);
    ck_assert_int_eq(suki_job_parse("r:c::", "{\"d\":5}", 7, &jd, NULL), 0);
    ck_assert_ptr_null(jd.channel);
    ck_assert(!suki_job_defaults(&jd, NULL));
    ck_assert_str_eq(jd.channel, "email");
    ck_assert_ptr_null(jd.template_name);
    suki_job_clear(&jd);

    /* the hash of a client's bodies, from the id or from a key */
    char *h = suki_job_hash_key("suki", "acme ph", NULL);
    ck_assert_str_eq(h, "suki:job:acme%20ph");
    free(h);
    h = suki_job_hash_key("suki", NULL, "r:acme%20ph:s:");
    ck_assert_str_eq(h, "suki:job:acme%20ph");
    free(h);
    ck_assert_ptr_null(suki_job_hash_key("suki", NULL, "r::s:"));
    ck_assert_ptr_null(suki_job_hash_key("suki", NULL, "nocolon"));
}
END_TEST

/* unless with a subject cancels that subject's jobs and the subject-less
 * ones; without a subject it cancels all of the rule's jobs for the
 * client. Other rules are not touched. */
START_TEST(unless_semantics)
{
    struct suki_ruleset *set = load_ok(shipped);
    struct suki_actions acts;
    suki_rules_actions_init(&acts);
    struct suki_err err = {{0}};

    struct suki_event *ev =
        ev_parse("{\"type\":\"complaint.resolved\",\"client\":\"acme\","
                 "\"data\":{\"ticket\":\"T-9\"}}");
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, 5000, &acts, &err), 0);
    ck_assert_int_eq(acts.n, 2);
    ck_assert_ptr_nonnull(find_action(&acts, SUKI_ACTION_CANCEL,
                                      "complaint-escalation:acme:T-9:"));
    ck_assert_ptr_nonnull(
        find_action(&acts, SUKI_ACTION_CANCEL, "complaint-escalation:acme::"));
    suki_event_free(ev);
    suki_rules_actions_clear(&acts);

    ev = ev_parse("{\"type\":\"contact.call\",\"client\":\"acme\","
                  "\"data\":{\"direction\":\"in\"}}");
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, 5000, &acts, &err), 0);
    if (acts.n != 1)
        dump_actions(&acts);
    ck_assert_int_eq(acts.n, 1);
    ck_assert_str_eq(acts.v[0].prefix, "follow-up-after-meeting:acme:");
    ck_assert_str_eq(acts.v[0].rule, "follow-up-after-meeting");
    ck_assert_str_eq(acts.v[0].client, "acme");
    suki_event_free(ev);
    suki_rules_actions_clear(&acts);

    /* deal.won with a deal: only that deal and subject-less follow-ups */
    ev = ev_parse("{\"type\":\"deal.won\",\"client\":\"acme\","
                  "\"data\":{\"deal\":42}}");
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, 5000, &acts, &err), 0);
    ck_assert_int_eq(acts.n, 2);
    ck_assert_str_eq(acts.v[0].prefix, "follow-up-after-meeting:acme:42:");
    ck_assert_str_eq(acts.v[1].prefix, "follow-up-after-meeting:acme::");
    suki_event_free(ev);
    suki_rules_actions_clear(&acts);

    /* contract.terminated cancels that contract's renewal alerts only */
    ev = ev_parse("{\"type\":\"contract.terminated\",\"client\":\"acme\","
                  "\"data\":{\"contract\":\"C-2\"}}");
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, 5000, &acts, &err), 0);
    ck_assert_int_eq(acts.n, 2);
    ck_assert_str_eq(acts.v[0].prefix, "contract-renewal:acme:C-2:");
    suki_event_free(ev);
    suki_rules_actions_clear(&acts);

    /* no client (not a client event): no rule applies */
    ev = ev_parse("{\"type\":\"contact.call\",\"client\":\"acme\"}");
    free(ev->client);
    ev->client = NULL;
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, 5000, &acts, &err), 0);
    ck_assert_int_eq(acts.n, 0);
    suki_event_free(ev);
    suki_rules_free(set);
}
END_TEST

/* A rule matching an event in both `unless` and `on`: cancel first. */
START_TEST(unless_before_on)
{
    struct suki_ruleset *set = load_ok(
        "{ name = \"fu\"; use = \"followup\"; on = [\"deal.*\"];\n"
        "  unless = [\"deal.*\"]; after = \"1h\"; notify = [\"manager\"];\n"
        "  template = \"t\"; }");
    struct suki_event *ev =
        ev_parse("{\"type\":\"deal.lost\",\"client\":\"acme\",\"at\":"
                 "\"2026-11-27T10:00:00Z\",\"data\":{\"deal\":\"D1\"}}");
    struct suki_actions acts;
    suki_rules_actions_init(&acts);
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, 5000, &acts, &err), 0);
    ck_assert_int_eq(acts.n, 3);
    ck_assert_int_eq(acts.v[0].kind, SUKI_ACTION_CANCEL);
    ck_assert_int_eq(acts.v[1].kind, SUKI_ACTION_CANCEL);
    ck_assert_int_eq(acts.v[2].kind, SUKI_ACTION_SCHEDULE);
    ck_assert_str_eq(acts.v[2].key, "fu:acme:D1:");
    ck_assert_int_eq(acts.v[2].due_ms, T("2026-11-27T11:00:00Z"));
    suki_rules_actions_clear(&acts);
    suki_event_free(ev);
    suki_rules_free(set);
}
END_TEST

/* The rule's `subject` setting, numeric subjects, and the profile / rule /
 * global timezone order. */
START_TEST(subject_and_timezone)
{
    struct suki_ruleset *set = load_ok(
        "{ name = \"ref\"; use = \"followup\"; on = [\"order.*\"];\n"
        "  after = \"1d\"; at_local = \"10:00\"; subject = [\"order\"];\n"
        "  notify = [\"client\"]; template = \"t\"; },\n"
        "{ name = \"utc\"; use = \"followup\"; on = [\"order.*\"];\n"
        "  after = \"1d\"; at_local = \"10:00\"; timezone = \"UTC\";\n"
        "  notify = [\"client\"]; template = \"t\"; }");
    struct suki_event *ev =
        ev_parse("{\"type\":\"order.fulfilled\",\"client\":\"acme\",\"at\":"
                 "\"2026-11-27T12:00:00Z\",\"data\":{\"order\":1234,"
                 "\"contract\":\"C1\"}}");
    struct suki_actions acts;
    suki_rules_actions_init(&acts);
    struct suki_err err = {{0}};

    /* no profile: "ref" uses the global Asia/Manila, "utc" its own */
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, 5000, &acts, &err), 0);
    ck_assert_int_eq(acts.n, 2);
    ck_assert_str_eq(acts.v[0].key, "ref:acme:1234:");
    ck_assert_int_eq(acts.v[0].due_ms, T("2026-11-28T10:00:00+08:00"));
    ck_assert_str_eq(acts.v[1].key, "utc:acme:C1:");
    ck_assert_int_eq(acts.v[1].due_ms, T("2026-11-28T10:00:00Z"));
    suki_rules_actions_clear(&acts);

    /* the profile's zone wins over both */
    struct suki_client *cl = suki_rules_client_new("acme");
    suki_rules_client_set(cl, "timezone", "America/New_York");
    ck_assert_int_eq(suki_rules_on_event(set, ev, cl, 5000, &acts, &err), 0);
    ck_assert_int_eq(acts.v[0].due_ms, T("2026-11-28T10:00:00-05:00"));
    ck_assert_int_eq(acts.v[1].due_ms, T("2026-11-28T10:00:00-05:00"));
    suki_rules_actions_clear(&acts);

    /* an unknown zone in the profile falls back to the rule / global */
    suki_rules_client_set(cl, "timezone", "Mars/Olympus");
    ck_assert_str_eq(suki_rules_client_get(cl, "timezone"), "Mars/Olympus");
    ck_assert_int_eq(suki_rules_on_event(set, ev, cl, 5000, &acts, &err), 0);
    ck_assert_int_eq(acts.v[0].due_ms, T("2026-11-28T10:00:00+08:00"));
    ck_assert_int_eq(acts.v[1].due_ms, T("2026-11-28T10:00:00Z"));
    suki_rules_actions_clear(&acts);
    suki_rules_client_free(cl);
    suki_event_free(ev);
    suki_rules_free(set);
}
END_TEST

/* Business days skip the holidays handed to suki_rules_load. */
START_TEST(holidays)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/holidays.txt", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("# test\n2026-11-30\n", f);
    fclose(f);
    struct suki_err err = {{0}};
    struct suki_holidays *hol = suki_holidays_load(path, &err);
    ck_assert_msg(hol != NULL, "%s", err.msg);
    struct suki_conf *c = conf_with(shipped);
    struct suki_conf_diags d = {0};
    struct suki_ruleset *set = suki_rules_load(c, hol, &d);
    ck_assert_ptr_nonnull(set);
    suki_conf_unref(c);
    struct suki_event *ev =
        ev_parse("{\"type\":\"meeting.held\",\"client\":\"acme\","
                 "\"at\":\"2026-11-27T10:00:00+08:00\"}");
    struct suki_actions acts;
    suki_rules_actions_init(&acts);
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, 5000, &acts, &err), 0);
    ck_assert_int_eq(acts.n, 1);
    /* Fri + 3 working days, Monday 30 being a holiday: Thursday */
    ck_assert_int_eq(acts.v[0].due_ms, T("2026-12-03T09:00:00+08:00"));
    suki_rules_actions_clear(&acts);
    suki_event_free(ev);
    suki_rules_free(set);
    suki_holidays_free(hol);
}
END_TEST

/* ---- plugin failures ---- */

static const struct {
    const char *mode;
    int rc;
    const char *msg;
} failures[] = {
    {"eio", -EIO,
     "rule 'fl' (plugin failing): on_event failed: backend exploded on "
     "purpose"},
    /* a refusal is -EBADMSG: the event is not worth a retry */
    {"due0", -EBADMSG,
     "rule 'fl' (plugin failing): schedule() refused: due time 0 is not a "
     "valid time"},
    {"ignore", -EBADMSG, "schedule() refused: due time 0"},
    {"longkey", -EBADMSG,
     "rule 'fl' (plugin failing): schedule() refused: job key too long"},
};

START_TEST(plugin_failure)
{
    char rules[400];
    snprintf(rules, sizeof(rules),
             "{ name = \"fl\"; use = \"failing\"; on = [\"a.*\"];\n"
             "  mode = \"%s\"; notify = [\"manager\"]; template = \"t\"; }",
             failures[_i].mode);
    struct suki_ruleset *set = load_ok(rules);
    struct suki_event *ev =
        ev_parse("{\"type\":\"a.b\",\"client\":\"acme\",\"at\":"
                 "\"2026-11-27T10:00:00Z\"}");
    struct suki_actions acts;
    suki_rules_actions_init(&acts);
    struct suki_err err = {{0}};
    uint64_t before = suki_metrics.rule_errors;
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, 5000, &acts, &err),
                     failures[_i].rc);
    ck_assert_msg(strstr(err.msg, failures[_i].msg) != NULL,
                  "error '%s' lacks '%s'", err.msg, failures[_i].msg);
    ck_assert_int_eq(suki_metrics.rule_errors, before + 1);
    suki_rules_actions_clear(&acts);
    suki_event_free(ev);
    suki_rules_free(set);
}
END_TEST

/* ---- on_due ---- */

static struct suki_jobdata job_for(struct suki_ruleset *set,
                                   const char *event_json, int64_t now,
                                   const char *key)
{
    struct suki_event *ev = ev_parse(event_json);
    struct suki_actions acts;
    suki_rules_actions_init(&acts);
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_rules_on_event(set, ev, NULL, now, &acts, &err), 0);
    const struct suki_action *x = find_action(&acts, SUKI_ACTION_SCHEDULE, key);
    if (!x)
        dump_actions(&acts);
    ck_assert_ptr_nonnull(x);
    struct suki_jobdata jd;
    ck_assert_int_eq(
        suki_job_parse(x->key, x->body, strlen(x->body), &jd, &err), 0);
    suki_rules_actions_clear(&acts);
    suki_event_free(ev);
    return jd;
}

START_TEST(due_max_lateness)
{
    struct suki_ruleset *set = load_ok(shipped);
    struct suki_jobdata jd = job_for(
        set,
        "{\"type\":\"meeting.held\",\"client\":\"acme\","
        "\"at\":\"2026-11-27T10:00:00+08:00\"}",
        T("2026-11-27T10:00:00+08:00"), "follow-up-after-meeting:acme::");
    int verdict = -1;
    int64_t defer = -1;
    struct suki_err err = {{0}};
    /* 1 day late, max_lateness 2d: send */
    ck_assert_int_eq(suki_rules_on_due(set, &jd, NULL, jd.due_ms + 86400000,
                                       &verdict, &defer, &err),
                     0);
    ck_assert_int_eq(verdict, SUKI_DUE_SEND);
    /* exactly max_lateness late: still sent */
    ck_assert_int_eq(suki_rules_on_due(set, &jd, NULL, jd.due_ms + 2 * 86400000,
                                       &verdict, &defer, &err),
                     0);
    ck_assert_int_eq(verdict, SUKI_DUE_SEND);
    uint64_t stale = suki_metrics.jobs_dropped_stale;
    ck_assert_int_eq(suki_rules_on_due(set, &jd, NULL, jd.due_ms + 3 * 86400000,
                                       &verdict, &defer, &err),
                     0);
    ck_assert_int_eq(verdict, SUKI_DUE_DROP);
    ck_assert_msg(strncmp(err.msg, "stale", 5) == 0, "%s", err.msg);
    ck_assert_ptr_nonnull(strstr(err.msg, "3d late"));
    ck_assert_int_eq(suki_metrics.jobs_dropped_stale, stale + 1);
    /* replayed with --force ("f":1): sent however late */
    jd.forced = true;
    ck_assert_int_eq(suki_rules_on_due(set, &jd, NULL, jd.due_ms + 3 * 86400000,
                                       &verdict, &defer, &err),
                     0);
    ck_assert_int_eq(verdict, SUKI_DUE_SEND);
    ck_assert_int_eq(suki_metrics.jobs_dropped_stale, stale + 1);
    suki_job_clear(&jd);

    /* a rule without max_lateness never drops as stale */
    jd = job_for(set,
                 "{\"type\":\"complaint.opened\",\"client\":\"acme\","
                 "\"at\":\"2026-11-27T10:00:00+08:00\","
                 "\"data\":{\"ticket\":\"T1\"}}",
                 5000, "complaint-escalation:acme:T1:");
    ck_assert_int_eq(jd.due_ms, T("2026-11-28T10:00:00+08:00"));
    ck_assert_int_eq(suki_rules_on_due(set, &jd, NULL,
                                       jd.due_ms + 400LL * 86400000, &verdict,
                                       &defer, &err),
                     0);
    ck_assert_int_eq(verdict, SUKI_DUE_SEND);
    suki_job_clear(&jd);
    suki_rules_free(set);
}
END_TEST

START_TEST(due_unknown_rule)
{
    struct suki_ruleset *set = load_ok(shipped);
    struct suki_jobdata jd;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_job_parse("gone:c::", "{\"d\":5}", 7, &jd, &err), 0);
    int verdict = -1;
    int64_t defer = -1;
    uint64_t before = suki_metrics.jobs_dropped_rule;
    ck_assert_int_eq(
        suki_rules_on_due(set, &jd, NULL, 10, &verdict, &defer, &err), 0);
    ck_assert_int_eq(verdict, SUKI_DUE_DROP);
    ck_assert_str_eq(err.msg, "rule 'gone' is no longer configured");
    ck_assert_int_eq(suki_metrics.jobs_dropped_rule, before + 1);
    suki_job_clear(&jd);
    suki_rules_free(set);
}
END_TEST

START_TEST(due_renewal_anchor_passed)
{
    struct suki_ruleset *set = load_ok(shipped);
    struct suki_jobdata jd =
        job_for(set,
                "{\"type\":\"contract.signed\",\"client\":\"acme\","
                "\"data\":{\"contract\":\"C1\",\"ends_at\":\"2027-06-30\"}}",
                T("2026-11-27T10:00:00+08:00"), "contract-renewal:acme:C1:7d");
    int verdict = -1;
    int64_t defer = -1;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_rules_on_due(set, &jd, NULL, jd.due_ms + 1000,
                                       &verdict, &defer, &err),
                     0);
    ck_assert_int_eq(verdict, SUKI_DUE_SEND);
    ck_assert_int_eq(suki_rules_on_due(set, &jd, NULL,
                                       T("2027-07-01T00:00:00+08:00"), &verdict,
                                       &defer, &err),
                     0);
    ck_assert_int_eq(verdict, SUKI_DUE_DROP);
    ck_assert_msg(strstr(err.msg, "ends_at has passed") != NULL, "%s", err.msg);
    suki_job_clear(&jd);
    suki_rules_free(set);
}
END_TEST

static const struct {
    const char *mode;
    int rc, verdict;
    const char *msg;
} due_modes[] = {
    {"drop", 0, SUKI_DUE_DROP,
     "dropped by rule 'fl' (plugin failing): client already handled"},
    {"defer", 0, SUKI_DUE_DEFER, ""},
    {"nodefer", -EINVAL, -1, "on_due returned DEFER without calling defer()"},
    {"dueerr", -EIO, -1, "rule 'fl' (plugin failing): on_due failed"},
    {"ok", 0, SUKI_DUE_SEND, ""},
};

START_TEST(due_verdicts)
{
    char rules[400];
    snprintf(rules, sizeof(rules),
             "{ name = \"fl\"; use = \"failing\"; on = [\"a.*\"];\n"
             "  mode = \"%s\"; notify = [\"manager\"]; template = \"t\"; }",
             due_modes[_i].mode);
    struct suki_ruleset *set = load_ok(rules);
    struct suki_jobdata jd;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_job_parse("fl:c::", "{\"d\":5000}", 10, &jd, &err),
                     0);
    int verdict = -1;
    int64_t defer = -1;
    uint64_t errors = suki_metrics.rule_errors;
    ck_assert_int_eq(
        suki_rules_on_due(set, &jd, NULL, 6000, &verdict, &defer, &err),
        due_modes[_i].rc);
    if (due_modes[_i].rc == 0) {
        ck_assert_int_eq(verdict, due_modes[_i].verdict);
        ck_assert_int_eq(suki_metrics.rule_errors, errors);
    } else {
        ck_assert_int_eq(suki_metrics.rule_errors, errors + 1);
    }
    if (due_modes[_i].verdict == SUKI_DUE_DEFER)
        ck_assert_int_eq(defer, 6000 + 3600000);
    ck_assert_msg(strstr(err.msg, due_modes[_i].msg) != NULL,
                  "error '%s' lacks '%s'", err.msg, due_modes[_i].msg);
    suki_job_clear(&jd);
    suki_rules_free(set);
}
END_TEST

/* ---- recipients ---- */

static int recipients(struct suki_ruleset *set, const char *key,
                      const char *body, const struct suki_client *cl, char *out,
                      size_t len, struct suki_err *err)
{
    struct suki_jobdata jd;
    ck_assert_int_eq(suki_job_parse(key, body, strlen(body), &jd, err), 0);
    char **v = NULL;
    size_t n = 0;
    int rc = suki_rules_recipients(set, &jd, cl, &v, &n, err);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(out, " ", len - strlen(out) - 1);
        strncat(out, v[i], len - strlen(out) - 1);
        free(v[i]);
    }
    free(v);
    suki_job_clear(&jd);
    return rc;
}

START_TEST(recipient_resolution)
{
    struct suki_ruleset *set = load_ok(shipped);
    struct suki_client *cl = suki_rules_client_new("acme");
    char got[400];
    struct suki_err err = {{0}};

    /* the stored event's manager wins over the profile's; dedupe */
    suki_rules_client_set(cl, "manager", "old@example.ph");
    suki_rules_client_set(cl, "email", "buyer@acme.ph");
    ck_assert_int_eq(
        recipients(set, "complaint-escalation:acme::",
                   "{\"d\":5,\"n\":[\"manager\",\"client\","
                   "\"role:head-of-sales\",\"x@example.ph\","
                   "\"MARIA@example.ph\",\"LEAD@example.ph\"],"
                   "\"e\":{\"t\":\"complaint.opened\",\"a\":1795744800000,"
                   "\"m\":\"maria@example.ph\"}}",
                   cl, got, sizeof(got), &err),
        0);
    ck_assert_str_eq(got, "maria@example.ph buyer@acme.ph lead@example.ph "
                          "x@example.ph");

    /* no manager on the event: the profile's */
    ck_assert_int_eq(
        recipients(set, "follow-up-after-meeting:acme::",
                   "{\"d\":5,\"n\":[\"manager\"],"
                   "\"e\":{\"t\":\"meeting.held\",\"a\":1795744800000}}",
                   cl, got, sizeof(got), &err),
        0);
    ck_assert_str_eq(got, "old@example.ph");

    /* notify absent from the job: the rule's (manager, client) */
    ck_assert_int_eq(recipients(set, "contract-renewal:acme::", "{\"d\":5}", cl,
                                got, sizeof(got), &err),
                     0);
    ck_assert_str_eq(got, "old@example.ph buyer@acme.ph");

    /* nothing resolves */
    struct suki_client *empty = suki_rules_client_new("acme");
    ck_assert_int_eq(recipients(set, "follow-up-after-meeting:acme::",
                                "{\"d\":5,\"n\":[\"manager\"]}", empty, got,
                                sizeof(got), &err),
                     -ENOENT);
    ck_assert_str_eq(err.msg, "no recipient address (manager unset)");
    ck_assert_int_eq(
        recipients(set, "x:acme::",
                   "{\"d\":5,\"n\":[\"manager\",\"client\",\"role:nobody\"]}",
                   NULL, got, sizeof(got), &err),
        -ENOENT);
    ck_assert_str_eq(err.msg, "no recipient address (manager unset, client "
                              "email unset, role 'nobody' not configured)");

    /* a profile value that could inject a header is refused */
    suki_rules_client_set(empty, "email", "a@b.ph\r\nBcc: evil@x.ph");
    ck_assert_int_eq(recipients(set, "x:acme::", "{\"d\":5,\"n\":[\"client\"]}",
                                empty, got, sizeof(got), &err),
                     -ENOENT);
    ck_assert_str_eq(err.msg,
                     "no recipient address (client address is not valid)");
    suki_rules_client_free(empty);
    suki_rules_client_free(cl);
    suki_rules_free(set);
}
END_TEST

START_TEST(client_profile)
{
    struct suki_client *cl = suki_rules_client_new(NULL);
    ck_assert_ptr_null(suki_rules_client_get(cl, "email"));
    for (int i = 0; i < 20; i++) {
        char f[16];
        snprintf(f, sizeof(f), "f%d", i);
        suki_rules_client_set(cl, f, f);
    }
    suki_rules_client_set(cl, "f3", "three");
    ck_assert_str_eq(suki_rules_client_get(cl, "f3"), "three");
    ck_assert_str_eq(suki_rules_client_get(cl, "f19"), "f19");
    ck_assert_int_eq(cl->n, 20);
    ck_assert_ptr_null(suki_rules_client_get(NULL, "f1"));
    suki_rules_client_free(cl);
    suki_rules_client_free(NULL);
}
END_TEST

START_TEST(host_table)
{
    const struct suki_host *h = suki_rules_host();
    ck_assert_int_eq(h->abi, SUKI_PLUGIN_ABI);
    ck_assert_int_eq(h->size, sizeof(struct suki_host));
    ck_assert(SUKI_HOST_HAS(h, job_event));
    ck_assert(SUKI_HOST_HAS(h, defer));
}
END_TEST

static Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, load_shipped);
    tcase_add_test(tc, abi_mismatch);
    tcase_add_test(tc, missing_symbol);
    tcase_add_test(tc, struct_too_small);
    tcase_add_test(tc, missing_plugin);
    tcase_add_test(tc, unknown_key);
    tcase_add_test(tc, unknown_key_other_plugin);
    tcase_add_loop_test(tc, bad_setting, 0, SUKI_ARRAY_LEN(bad_settings));
    tcase_add_test(tc, reload_overlap);
    suite_add_tcase(s, tc);

    tc = tcase_create("events");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, job_keys);
    tcase_add_test(tc, schedule_body_roundtrip);
    tcase_add_test(tc, job_parse_errors);
    tcase_add_test(tc, unless_semantics);
    tcase_add_test(tc, unless_before_on);
    tcase_add_test(tc, subject_and_timezone);
    tcase_add_test(tc, holidays);
    tcase_add_loop_test(tc, plugin_failure, 0, SUKI_ARRAY_LEN(failures));
    suite_add_tcase(s, tc);

    tc = tcase_create("due");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, due_max_lateness);
    tcase_add_test(tc, due_unknown_rule);
    tcase_add_test(tc, due_renewal_anchor_passed);
    tcase_add_loop_test(tc, due_verdicts, 0, SUKI_ARRAY_LEN(due_modes));
    suite_add_tcase(s, tc);

    tc = tcase_create("recipients");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, recipient_resolution);
    tcase_add_test(tc, client_profile);
    tcase_add_test(tc, host_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rules_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
