/* check_followup.c - the followup plugin against a mock host table:
 * settings validation and due-time computation, table-driven. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../fixtures/plugins/mock_host.h"

#define MNL "Asia/Manila"

static struct suki_rule make_rule(const char *after, int bd, int has_bd,
                                  const char *at)
{
    struct suki_rule r;
    memset(&r, 0, sizeof(r));
    r.name = "fu";
    int i = 0;
    if (after)
        r.set[i++] =
            (struct mock_setting){.key = "after", .type = M_STR, .s = after};
    if (has_bd)
        r.set[i++] = (struct mock_setting){
            .key = "business_days", .type = M_BOOL, .b = bd};
    if (at)
        r.set[i++] =
            (struct mock_setting){.key = "at_local", .type = M_STR, .s = at};
    return r;
}

/* ---- due times ---- */

static const struct {
    const char *name;
    const char *after;
    int bd;
    const char *at;
    const char *tz;       /* client's zone, NULL = mock default Manila */
    const char *event_at; /* local in the zone */
    const char *due;      /* local in the zone */
} due_cases[] = {
    {"plain 3d", "3d", 0, NULL, NULL, "2026-11-27 10:00", "2026-11-30 10:00"},
    {"plain 90m", "90m", 0, NULL, NULL, "2026-11-27 10:00", "2026-11-27 11:30"},
    {"3 business days at 09:00 from Friday", "3d", 1, "09:00", NULL,
     "2026-11-27 10:00", "2026-12-02 09:00"},
    {"3 business days keep time of day", "3d", 1, NULL, NULL,
     "2026-11-27 10:00", "2026-12-02 10:00"},
    {"1 business day from Saturday", "1d", 1, NULL, NULL, "2026-11-28 15:00",
     "2026-11-30 15:00"},
    {"1 business day from Saturday at 09:00", "1d", 1, "09:00", NULL,
     "2026-11-28 15:00", "2026-11-30 09:00"},
    {"business days skip holiday", "1d", 1, "09:00", NULL, "2026-12-24 10:00",
     "2026-12-28 09:00"},
    {"business days skip two holidays", "3d", 1, "09:00", NULL,
     "2026-12-24 10:00", "2026-12-31 09:00"},
    {"1w business days", "1w", 1, "09:00", NULL, "2026-11-27 10:00",
     "2026-12-08 09:00"},
    {"whole days calendar at_local", "2d", 0, "09:00", NULL, "2026-11-27 23:30",
     "2026-11-29 09:00"},
    {"whole days at_local earlier than event time", "1d", 0, "08:00", NULL,
     "2026-11-27 10:00", "2026-11-28 08:00"},
    {"hours then next at_local (next day)", "4h", 0, "09:00", NULL,
     "2026-11-27 10:00", "2026-11-28 09:00"},
    {"hours then next at_local (same day)", "4h", 0, "09:00", NULL,
     "2026-11-27 03:00", "2026-11-27 09:00"},
    {"hours landing exactly on at_local", "2h", 0, "09:00", NULL,
     "2026-11-27 07:00", "2026-11-27 09:00"},
    {"client zone Lima", "1d", 0, "09:00", "America/Lima", "2026-11-27 22:00",
     "2026-11-28 09:00"},
    {"client zone UTC business", "2d", 1, "17:30", "UTC", "2026-11-26 12:00",
     "2026-11-30 17:30"},
};

START_TEST(due_table)
{
    const char *tz = due_cases[_i].tz ? due_cases[_i].tz : MNL;
    struct suki_rule r =
        make_rule(due_cases[_i].after, due_cases[_i].bd, 1, due_cases[_i].at);
    ck_assert_int_eq(mock_check(&r), 0);
    ck_assert_int_eq(r.n_errors, 0);
    struct suki_event ev = {.type = "meeting.held",
                            .client = "acme",
                            .at_ms = T(due_cases[_i].event_at, tz)};
    struct suki_client cl = {.tz = due_cases[_i].tz};
    struct suki_actions acts = {.n = 0};
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &ev, &cl, ev.at_ms, &acts), 0);
    ck_assert_int_eq(acts.n, 1);
    ck_assert_int_eq(acts.v[0].kind, A_SCHEDULE);
    char got[40];
    L(acts.v[0].due_ms, tz, got, sizeof(got));
    ck_assert_msg(strcmp(got, due_cases[_i].due) == 0, "%s: due %s, want %s",
                  due_cases[_i].name, got, due_cases[_i].due);
    ck_assert_int_eq(acts.v[0].due_ms, T(due_cases[_i].due, tz));
    mock_fini(&r);
}
END_TEST

/* The rule's timezone is used when the profile has none. */
START_TEST(rule_timezone)
{
    struct suki_rule r = make_rule("1d", 0, 0, "09:00");
    r.tz = "UTC";
    ck_assert_int_eq(mock_check(&r), 0);
    struct suki_event ev = {.type = "meeting.held",
                            .client = "acme",
                            .at_ms = T("2026-11-27 10:00", "UTC")};
    struct suki_actions acts = {.n = 0};
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &ev, NULL, ev.at_ms, &acts), 0);
    ck_assert_int_eq(acts.n, 1);
    ck_assert_int_eq(acts.v[0].due_ms, T("2026-11-28 09:00", "UTC"));
    mock_fini(&r);
}
END_TEST

/* ---- subject and replacement ---- */

START_TEST(subject_and_replace)
{
    struct suki_rule r = make_rule("3d", 1, 1, "09:00");
    ck_assert_int_eq(mock_check(&r), 0);
    struct suki_event e1 = {.type = "proposal.sent",
                            .client = "acme",
                            .at_ms = T("2026-11-23 10:00", MNL),
                            .data = {{"deal", "D-7"}}};
    struct suki_event e2 = e1;
    e2.at_ms = T("2026-11-25 10:00", MNL);
    struct suki_event e3 = {.type = "meeting.held",
                            .client = "acme",
                            .at_ms = T("2026-11-25 10:00", MNL),
                            .data = {{"contract", "C-1"}, {"deal", "D-7"}}};
    struct suki_actions acts = {.n = 0};
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &e1, NULL, e1.at_ms, &acts), 0);
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &e2, NULL, e2.at_ms, &acts), 0);
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &e3, NULL, e3.at_ms, &acts), 0);
    ck_assert_int_eq(acts.n, 3);
    /* Same subject and slot: the host turns it into the same key, so the
     * newer trigger replaces the first (upsert). */
    ck_assert_str_eq(acts.v[0].subject, "D-7");
    ck_assert_str_eq(acts.v[1].subject, "D-7");
    ck_assert_str_eq(acts.v[0].slot, acts.v[1].slot);
    ck_assert_int_eq(acts.v[1].due_ms, T("2026-11-30 09:00", MNL));
    ck_assert_int_eq(acts.v[0].due_ms, T("2026-11-26 09:00", MNL));
    /* contract comes first in the default subject order */
    ck_assert_str_eq(acts.v[2].subject, "C-1");
    mock_fini(&r);
}
END_TEST

START_TEST(no_subject)
{
    struct suki_rule r = make_rule("14d", 0, 0, NULL);
    ck_assert_int_eq(mock_check(&r), 0);
    struct suki_event ev = {.type = "meeting.held",
                            .client = "acme",
                            .at_ms = T("2026-11-27 10:00", MNL)};
    struct suki_actions acts = {.n = 0};
    ck_assert_int_eq(
        suki_plugin.on_event(&mock_host, &r, &ev, NULL, ev.at_ms, &acts), 0);
    ck_assert_int_eq(acts.n, 1);
    ck_assert_str_eq(acts.v[0].subject, "");
    ck_assert_int_eq(acts.v[0].due_ms, T("2026-12-11 10:00", MNL));
    mock_fini(&r);
}
END_TEST

START_TEST(on_due_sends)
{
    struct suki_rule r = make_rule("1h", 0, 0, NULL);
    ck_assert_int_eq(mock_check(&r), 0);
    struct suki_event ev = {.type = "complaint.opened",
                            .client = "acme",
                            .at_ms = T("2026-11-27 10:00", MNL)};
    struct suki_job job = {.key = "k",
                           .subject = "",
                           .slot = "",
                           .due_ms = ev.at_ms + 3600000,
                           .ev = &ev};
    struct suki_actions acts = {.n = 0};
    ck_assert_int_eq(suki_plugin.on_due(&mock_host, &r, &job, NULL,
                                        job.due_ms + 1000, &acts),
                     SUKI_DUE_SEND);
    ck_assert_int_eq(acts.n, 0);
    mock_fini(&r);
}
END_TEST

/* ---- settings ---- */

static const struct {
    const char *name;
    const char *after;
    int has_bd, bd;
    const char *at;
    const char *error; /* substring of the first error; NULL = accepted */
} check_cases[] = {
    {"minimal", "3d", 0, 0, NULL, NULL},
    {"all keys", "3d", 1, 1, "09:00", NULL},
    {"midnight", "12h", 0, 0, "00:00", NULL},
    {"last minute", "1d", 0, 0, "23:59", NULL},
    {"after missing", NULL, 0, 0, NULL, "'after' is required"},
    {"after zero", "0s", 0, 0, NULL, "after: must be longer than 0"},
    {"after not a duration", "soon", 0, 0, NULL, "after: not a duration"},
    {"business days need whole days", "36h", 1, 1, NULL,
     "after: must be whole days"},
    {"hours fine without business days", "36h", 1, 0, NULL, NULL},
    {"at_local hour", "1d", 0, 0, "24:00", "at_local: '24:00' is not"},
    {"at_local minute", "1d", 0, 0, "09:60", "at_local"},
    {"at_local format", "1d", 0, 0, "9:00", "at_local"},
    {"at_local seconds", "1d", 0, 0, "09:00:00", "at_local"},
};

START_TEST(check_table)
{
    struct suki_rule r = make_rule(check_cases[_i].after, check_cases[_i].bd,
                                   check_cases[_i].has_bd, check_cases[_i].at);
    int rc = mock_check(&r);
    if (!check_cases[_i].error) {
        ck_assert_msg(rc == 0 && r.n_errors == 0, "%s: refused: %s",
                      check_cases[_i].name, r.errors[0]);
        ck_assert_ptr_nonnull(r.data);
    } else {
        ck_assert_msg(rc < 0, "%s: accepted", check_cases[_i].name);
        ck_assert_int_ge(r.n_errors, 1);
        ck_assert_msg(strstr(r.errors[0], check_cases[_i].error) != NULL,
                      "%s: error '%s' lacks '%s'", check_cases[_i].name,
                      r.errors[0], check_cases[_i].error);
        ck_assert_ptr_null(r.data);
    }
    mock_fini(&r);
}
END_TEST

START_TEST(check_wrong_type)
{
    struct suki_rule r = make_rule("3d", 0, 0, NULL);
    r.set[1] = (struct mock_setting){
        .key = "business_days", .type = M_STR, .s = "yes"};
    ck_assert_int_lt(mock_check(&r), 0);
    ck_assert_int_eq(r.n_errors, 1);
    ck_assert_ptr_nonnull(strstr(r.errors[0], "business_days"));
}
END_TEST

START_TEST(plugin_header)
{
    ck_assert_int_eq(suki_plugin.abi, SUKI_PLUGIN_ABI);
    ck_assert_int_eq(suki_plugin.size, sizeof(struct suki_plugin));
    ck_assert_str_eq(suki_plugin.name, "followup");
    ck_assert_ptr_nonnull(suki_plugin.check);
    ck_assert_ptr_nonnull(suki_plugin.on_due);
}
END_TEST

static Suite *followup_suite(void)
{
    Suite *s = suite_create("followup");
    TCase *tc = tcase_create("due");
    tcase_add_loop_test(tc, due_table, 0, MOCK_LEN(due_cases));
    tcase_add_test(tc, rule_timezone);
    suite_add_tcase(s, tc);
    tc = tcase_create("subject");
    tcase_add_test(tc, subject_and_replace);
    tcase_add_test(tc, no_subject);
    tcase_add_test(tc, on_due_sends);
    suite_add_tcase(s, tc);
    tc = tcase_create("check");
    tcase_add_loop_test(tc, check_table, 0, MOCK_LEN(check_cases));
    tcase_add_test(tc, check_wrong_type);
    tcase_add_test(tc, plugin_header);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(followup_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
