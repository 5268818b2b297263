/* check_renewal.c - the renewal plugin against a mock host table: alerts
 * anchored on a date, notice_days, past offsets, moved end dates,
 * independent contracts, on_due, settings validation. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../fixtures/plugins/mock_host.h"

#define MNL "Asia/Manila"

static const char *const std_before[] = {"90d", "60d", "30d", "7d", NULL};

static struct suki_rule make_rule(const char *anchor, const char *const *before,
                                  const char *at)
{
    struct suki_rule r;
    memset(&r, 0, sizeof(r));
    r.name = "renew";
    int i = 0;
    if (anchor)
        r.set[i++] =
            (struct mock_setting){.key = "anchor", .type = M_STR, .s = anchor};
    if (before) {
        r.set[i] = (struct mock_setting){.key = "before", .type = M_LIST};
        for (int k = 0; before[k]; k++)
            r.set[i].list[k] = before[k];
        i++;
    }
    if (at)
        r.set[i++] =
            (struct mock_setting){.key = "at_local", .type = M_STR, .s = at};
    return r;
}

/* ---- the table ---- */

#define NX 6
static const struct {
    const char *name;
    const char *anchor;    /* rule's anchor setting, NULL = default */
    const char *before[6]; /* NULL-terminated; empty = std */
    const char *at;        /* rule's at_local, NULL = default 09:00 */
    const char *ends_at;   /* data.<anchor field> */
    const char *notice;    /* data.notice_days or NULL */
    const char *now;       /* local Manila */
    const char *want[NX];  /* expected "slot@YYYY-MM-DD HH:MM" */
} cases[] = {
    {"all four ahead",
     NULL,
     {0},
     NULL,
     "2027-06-30",
     NULL,
     "2026-11-27 10:00",
     {"90d@2027-04-01 09:00", "60d@2027-05-01 09:00", "30d@2027-05-31 09:00",
      "7d@2027-06-23 09:00"}},
    {"past offsets skipped",
     NULL,
     {0},
     NULL,
     "2027-01-15",
     NULL,
     "2026-11-27 10:00",
     {"30d@2026-12-16 09:00", "7d@2027-01-08 09:00"}},
    {"offset due earlier today is skipped",
     NULL,
     {"7d", NULL},
     NULL,
     "2026-12-04",
     NULL,
     "2026-11-27 10:00",
     {0}},
    {"offset due later today is kept",
     NULL,
     {"7d", NULL},
     "18:00",
     "2026-12-04",
     NULL,
     "2026-11-27 10:00",
     {"7d@2026-11-27 18:00"}},
    {"anchor already passed: nothing",
     NULL,
     {0},
     NULL,
     "2026-11-01",
     NULL,
     "2026-11-27 10:00",
     {0}},
    {"notice_days moves the anchor",
     NULL,
     {0},
     NULL,
     "2027-06-30",
     "30",
     "2026-11-27 10:00",
     {"90d@2027-03-02 09:00", "60d@2027-04-01 09:00", "30d@2027-05-01 09:00",
      "7d@2027-05-24 09:00"}},
    {"notice_days zero",
     NULL,
     {"7d", NULL},
     NULL,
     "2027-06-30",
     "0",
     "2026-11-27 10:00",
     {"7d@2027-06-23 09:00"}},
    {"date-time anchor",
     NULL,
     {"7d", NULL},
     NULL,
     "2027-06-30T18:00:00+08:00",
     NULL,
     "2026-11-27 10:00",
     {"7d@2027-06-23 09:00"}},
    {"date-time anchor in UTC crossing the date",
     NULL,
     {"1d", NULL},
     NULL,
     "2027-06-30T20:00:00Z",
     NULL,
     "2026-11-27 10:00",
     {"1d@2027-06-30 09:00"}},
    {"at_local",
     NULL,
     {"30d", NULL},
     "14:30",
     "2027-06-30",
     NULL,
     "2026-11-27 10:00",
     {"30d@2027-05-31 14:30"}},
    {"weeks",
     NULL,
     {"2w", NULL},
     NULL,
     "2027-06-30",
     NULL,
     "2026-11-27 10:00",
     {"2w@2027-06-16 09:00"}},
    {"sub-day offset is exact",
     "starts_at",
     {"2h", "1d", NULL},
     NULL,
     "2026-12-03T10:00:00+08:00",
     NULL,
     "2026-11-27 10:00",
     {"2h@2026-12-03 08:00", "1d@2026-12-02 09:00"}},
};

START_TEST(table)
{
    struct suki_rule r = make_rule(
        cases[_i].anchor, cases[_i].before[0] ? cases[_i].before : std_before,
        cases[_i].at);
    ck_assert_int_eq(mock_check(&r), 0);
    const char *field = cases[_i].anchor ? cases[_i].anchor : "ends_at";
    struct suki_event ev = {.type = "contract.signed",
                            .client = "acme",
                            .at_ms = T("2026-11-20 10:00", MNL)};
    ev.data[0] = (struct mock_kv){"contract", "C-1"};
    ev.data[1] = (struct mock_kv){field, cases[_i].ends_at};
    if (cases[_i].notice)
        ev.data[2] = (struct mock_kv){"notice_days", cases[_i].notice};
    struct suki_actions acts = {.n = 0};
    ck_assert_int_eq(suki_plugin.on_event(&mock_host, &r, &ev, NULL,
                                          T(cases[_i].now, MNL), &acts),
                     0);
    ck_assert_int_ge(acts.n, 1);
    ck_assert_int_eq(acts.v[0].kind, A_CANCEL);
    ck_assert_int_eq(acts.v[0].all_subjects, 0);
    ck_assert_str_eq(acts.v[0].subject, "C-1");
    int nwant = 0;
    while (nwant < NX && cases[_i].want[nwant])
        nwant++;
    ck_assert_msg(acts.n - 1 == nwant, "%s: %d alerts, want %d", cases[_i].name,
                  acts.n - 1, nwant);
    for (int k = 0; k < nwant; k++) {
        const struct mock_action *a = &acts.v[k + 1];
        char got[80], when[40];
        ck_assert_int_eq(a->kind, A_SCHEDULE);
        ck_assert_str_eq(a->subject, "C-1");
        snprintf(got, sizeof(got), "%s@%s", a->slot,
                 L(a->due_ms, MNL, when, sizeof(when)));
        ck_assert_msg(strcmp(got, cases[_i].want[k]) == 0, "%s: got %s want %s",
                      cases[_i].name, got, cases[_i].want[k]);
    }
    mock_fini(&r);
}
END_TEST

/* contract.updated with a new end date: cancel the subject first, then the
 * new set; an alert that no longer applies (now past) is not re-created. */
START_TEST(moved_end_date)
{
    struct suki_rule r = make_rule(NULL, std_before, NULL);
    ck_assert_int_eq(mock_check(&r), 0);
    struct suki_event e1 = {
        .type = "contract.signed",
        .client = "acme",
        .at_ms = T("2026-11-20 10:00", MNL),
        .data = {{"contract", "C-1"}, {"ends_at", "2027-06-30"}}};
    struct suki_event e2 = {
        .type = "contract.updated",
        .client = "acme",
        .at_ms = T("2026-11-27 10:00", MNL),
        .data = {{"contract", "C-1"}, {"ends_at", "2027-01-31"}}};
    struct suki_actions a1 = {.n = 0}, a2 = {.n = 0};
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &e1, NULL, e1.at_ms, &a1), 0);
    ck_assert_int_eq(a1.n, 5);
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &e2, NULL, e2.at_ms, &a2), 0);
    /* cancel C-1, then 60d (2026-12-02), 30d (2027-01-01), 7d (01-24);
     * 90d (2026-11-02) is past and stays cancelled. */
    ck_assert_int_eq(a2.n, 4);
    ck_assert_int_eq(a2.v[0].kind, A_CANCEL);
    ck_assert_str_eq(a2.v[0].subject, "C-1");
    ck_assert_str_eq(a2.v[1].slot, "60d");
    ck_assert_int_eq(a2.v[1].due_ms, T("2026-12-02 09:00", MNL));
    ck_assert_str_eq(a2.v[2].slot, "30d");
    ck_assert_int_eq(a2.v[2].due_ms, T("2027-01-01 09:00", MNL));
    ck_assert_str_eq(a2.v[3].slot, "7d");
    ck_assert_int_eq(a2.v[3].due_ms, T("2027-01-24 09:00", MNL));
    mock_fini(&r);
}
END_TEST

/* Two contracts of one client: each trigger touches only its own. */
START_TEST(contracts_independent)
{
    struct suki_rule r =
        make_rule(NULL, (const char *const[]){"7d", NULL}, NULL);
    ck_assert_int_eq(mock_check(&r), 0);
    struct suki_event e1 = {
        .type = "contract.signed",
        .client = "acme",
        .at_ms = T("2026-11-20 10:00", MNL),
        .data = {{"contract", "C-1"}, {"ends_at", "2027-06-30"}}};
    struct suki_event e2 = {
        .type = "contract.signed",
        .client = "acme",
        .at_ms = T("2026-11-20 10:00", MNL),
        .data = {{"contract", "C-2"}, {"ends_at", "2027-03-31"}}};
    struct suki_actions a = {.n = 0};
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &e1, NULL, e1.at_ms, &a), 0);
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &e2, NULL, e2.at_ms, &a), 0);
    ck_assert_int_eq(a.n, 4);
    ck_assert_str_eq(a.v[0].subject, "C-1");
    ck_assert_str_eq(a.v[1].subject, "C-1");
    ck_assert_str_eq(a.v[2].subject, "C-2");
    ck_assert_int_eq(a.v[2].kind, A_CANCEL);
    ck_assert_str_eq(a.v[3].subject, "C-2");
    ck_assert_int_eq(a.v[3].due_ms, T("2027-03-24 09:00", MNL));
    mock_fini(&r);
}
END_TEST

/* Meeting preparation: anchored on starts_at, no subject field. */
START_TEST(meeting_prep)
{
    struct suki_rule r =
        make_rule("starts_at", (const char *const[]){"1d", NULL}, NULL);
    ck_assert_int_eq(mock_check(&r), 0);
    struct suki_event ev = {
        .type = "meeting.scheduled",
        .client = "acme",
        .at_ms = T("2026-11-27 10:00", MNL),
        .data = {{"starts_at", "2026-12-03T10:00:00+08:00"}}};
    struct suki_client cl = {.tz = "America/Lima"};
    struct suki_actions a = {.n = 0};
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &ev, &cl, ev.at_ms, &a), 0);
    ck_assert_int_eq(a.n, 2);
    ck_assert_int_eq(a.v[0].kind, A_CANCEL);
    ck_assert_str_eq(a.v[0].subject, "");
    ck_assert_int_eq(a.v[0].all_subjects, 0);
    ck_assert_str_eq(a.v[1].subject, "");
    ck_assert_str_eq(a.v[1].slot, "1d");
    /* 2026-12-03 10:00 +08 = 2026-12-02 21:00 in Lima; a day before at
     * 09:00 Lima time. */
    ck_assert_int_eq(a.v[1].due_ms, T("2026-12-01 09:00", "America/Lima"));
    mock_fini(&r);
}
END_TEST

START_TEST(no_anchor_only_cancels)
{
    struct suki_rule r = make_rule(NULL, std_before, NULL);
    ck_assert_int_eq(mock_check(&r), 0);
    struct suki_event ev = {.type = "contract.updated",
                            .client = "acme",
                            .at_ms = T("2026-11-27 10:00", MNL),
                            .data = {{"contract", "C-9"}}};
    struct suki_actions a = {.n = 0};
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &ev, NULL, ev.at_ms, &a), 0);
    ck_assert_int_eq(a.n, 1);
    ck_assert_int_eq(a.v[0].kind, A_CANCEL);
    ck_assert_str_eq(a.v[0].subject, "C-9");
    mock_fini(&r);
}
END_TEST

START_TEST(bad_event_data)
{
    static const struct {
        const char *ends_at, *notice, *log;
    } bad[] = {
        {"30 June 2027", NULL, "data.ends_at '30 June 2027' is not a date"},
        {"2027-06-30", "soon", "notice_days 'soon'"},
        {"2027-06-30", "-3", "notice_days '-3'"},
        {"2027-06-30", "2.5", "notice_days '2.5'"},
    };
    struct suki_rule r = make_rule(NULL, std_before, NULL);
    ck_assert_int_eq(mock_check(&r), 0);
    for (size_t i = 0; i < MOCK_LEN(bad); i++) {
        struct suki_event ev = {.type = "contract.signed",
                                .client = "acme",
                                .at_ms = T("2026-11-27 10:00", MNL),
                                .data = {{"contract", "C-1"},
                                         {"ends_at", bad[i].ends_at},
                                         {"notice_days", bad[i].notice}}};
        if (!bad[i].notice)
            ev.data[2].k = NULL;
        struct suki_actions a = {.n = 0};
        mock_last_log[0] = '\0';
        ck_assert_int_lt(
            suki_plugin.on_event(&mock_host, &r, &ev, NULL, ev.at_ms, &a), 0);
        ck_assert_msg(strstr(mock_last_log, bad[i].log) != NULL,
                      "log '%s' lacks '%s'", mock_last_log, bad[i].log);
    }
    mock_fini(&r);
}
END_TEST

START_TEST(on_due_drop_after_anchor)
{
    struct suki_rule r = make_rule(NULL, std_before, NULL);
    ck_assert_int_eq(mock_check(&r), 0);
    struct suki_event ev = {
        .type = "contract.signed",
        .client = "acme",
        .at_ms = T("2026-11-20 10:00", MNL),
        .data = {{"contract", "C-1"}, {"ends_at", "2027-06-30"}}};
    struct suki_job job = {.key = "renew:acme:C-1:7d",
                           .subject = "C-1",
                           .slot = "7d",
                           .due_ms = T("2027-06-23 09:00", MNL),
                           .ev = &ev};
    struct suki_actions a = {.n = 0};
    ck_assert_int_eq(suki_plugin.on_due(&mock_host, &r, &job, NULL,
                                        T("2027-06-23 09:01", MNL), &a),
                     SUKI_DUE_SEND);
    ck_assert_int_eq(suki_plugin.on_due(&mock_host, &r, &job, NULL,
                                        T("2027-06-29 23:59", MNL), &a),
                     SUKI_DUE_SEND);
    mock_last_log[0] = '\0';
    ck_assert_int_eq(suki_plugin.on_due(&mock_host, &r, &job, NULL,
                                        T("2027-06-30 00:00", MNL), &a),
                     SUKI_DUE_DROP);
    ck_assert_ptr_nonnull(strstr(mock_last_log, "ends_at has passed"));
    ck_assert_int_eq(a.n, 0);
    mock_fini(&r);
}
END_TEST

/* ---- settings ---- */

static const struct {
    const char *name;
    const char *anchor;
    const char *before[6]; /* {"-"} = key absent */
    const char *at;
    const char *error;
} check_cases[] = {
    {"shipped", NULL, {"90d", "60d", "30d", "7d"}, NULL, NULL},
    {"meeting prep", "starts_at", {"1d"}, "08:00", NULL},
    {"before missing", NULL, {"-"}, NULL, "'before' is required"},
    {"before empty", NULL, {0}, NULL, "before: must list at least one"},
    {"bad offset", NULL, {"30d", "3x"}, NULL, "before: '3x' is not a"},
    {"negative offset", NULL, {"-1d"}, NULL, "before: '-1d'"},
    {"zero offset", NULL, {"0d"}, NULL, "before: '0d'"},
    {"offset with space", NULL, {"30 d"}, NULL, "before: '30 d'"},
    {"duplicate", NULL, {"7d", "1w"}, NULL, "same offset"},
    {"bad at_local", NULL, {"7d"}, "9am", "at_local: '9am'"},
    {"empty anchor", "", {"7d"}, NULL, "anchor: must name"},
};

START_TEST(check_table)
{
    struct suki_rule r;
    if (check_cases[_i].before[0] &&
        strcmp(check_cases[_i].before[0], "-") == 0) {
        r = make_rule(check_cases[_i].anchor, NULL, check_cases[_i].at);
    } else {
        r = make_rule(check_cases[_i].anchor, check_cases[_i].before,
                      check_cases[_i].at);
        /* make_rule skips a NULL list; an empty one must still be set */
    }
    int rc = mock_check(&r);
    if (!check_cases[_i].error) {
        ck_assert_msg(rc == 0 && r.n_errors == 0, "%s: refused: %s",
                      check_cases[_i].name, r.errors[0]);
    } else {
        ck_assert_msg(rc < 0, "%s: accepted", check_cases[_i].name);
        ck_assert_msg(r.n_errors >= 1 &&
                          strstr(r.errors[0], check_cases[_i].error),
                      "%s: error '%s' lacks '%s'", check_cases[_i].name,
                      r.errors[0], check_cases[_i].error);
        ck_assert_ptr_null(r.data);
    }
    mock_fini(&r);
}
END_TEST

START_TEST(before_as_single_string)
{
    struct suki_rule r = make_rule(NULL, NULL, NULL);
    r.set[0] =
        (struct mock_setting){.key = "before", .type = M_STR, .s = "30d"};
    ck_assert_int_eq(mock_check(&r), 0);
    mock_fini(&r);
}
END_TEST

static Suite *renewal_suite(void)
{
    Suite *s = suite_create("renewal");
    TCase *tc = tcase_create("alerts");
    tcase_add_loop_test(tc, table, 0, MOCK_LEN(cases));
    tcase_add_test(tc, moved_end_date);
    tcase_add_test(tc, contracts_independent);
    tcase_add_test(tc, meeting_prep);
    tcase_add_test(tc, no_anchor_only_cancels);
    tcase_add_test(tc, bad_event_data);
    tcase_add_test(tc, on_due_drop_after_anchor);
    suite_add_tcase(s, tc);
    tc = tcase_create("check");
    tcase_add_loop_test(tc, check_table, 0, MOCK_LEN(check_cases));
    tcase_add_test(tc, before_as_single_string);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(renewal_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
