/* check_sched.c - the pure parts of the scheduler and the fire path:
 * backoff arithmetic, body updates, Message-ID stability, webhook bodies. */
#include "deliver/compose.h"
#include "event.h"
#include "rules.h"
#include "sched/fire.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

START_TEST(backoff_grows_and_caps)
{
    /* rnd 0 gives the low end of the jitter window (half), a huge rnd
     * modulo the window anything in it; check the window itself. */
    const int64_t ini = 60000, max = 3600000;
    for (int a = 1; a <= 12; a++) {
        int64_t d = ini;
        for (int i = 1; i < a; i++)
            d = d * 2 > max ? max : d * 2;
        int64_t lo = suki_fire_backoff_ms(a, ini, max, 0, 0);
        ck_assert_int_eq(lo, d - d / 2);
        for (uint64_t r = 1; r < 2000000; r += 99991) {
            int64_t v = suki_fire_backoff_ms(a, ini, max, 0, r);
            ck_assert_int_ge(v, d - d / 2);
            ck_assert_int_le(v, d);
        }
        /* the top of the window */
        ck_assert_int_eq(
            suki_fire_backoff_ms(a, ini, max, 0, (uint64_t)(d / 2)), d);
    }
    ck_assert_int_eq(suki_fire_backoff_ms(1, 1000, 8000, 0, 0), 500);
    ck_assert_int_eq(suki_fire_backoff_ms(2, 1000, 8000, 0, 0), 1000);
    ck_assert_int_eq(suki_fire_backoff_ms(4, 1000, 8000, 0, 0), 4000);
    ck_assert_int_eq(suki_fire_backoff_ms(5, 1000, 8000, 0, 0), 4000);
    ck_assert_int_eq(suki_fire_backoff_ms(500, 1000, 8000, 0, 0), 4000);
}
END_TEST

START_TEST(backoff_edges)
{
    /* Retry-After wins when longer, capped at a day. */
    ck_assert_int_eq(suki_fire_backoff_ms(1, 1000, 8000, 120000, 0), 120000);
    ck_assert_int_eq(suki_fire_backoff_ms(1, 1000, 8000, 10, 0), 500);
    ck_assert_int_eq(suki_fire_backoff_ms(1, 1000, 8000, 999999999999LL, 0),
                     86400000);
    /* Nonsense inputs still give a positive delay. */
    ck_assert_int_ge(suki_fire_backoff_ms(0, 0, 0, 0, 0), 1);
    ck_assert_int_ge(suki_fire_backoff_ms(-3, -1, -1, -1, 77), 1);
    /* max below initial: initial is the cap */
    ck_assert_int_le(suki_fire_backoff_ms(9, 5000, 10, 0, 12345), 5000);
    /* no overflow at huge attempt numbers and a huge cap */
    int64_t v = suki_fire_backoff_ms(100000, 1, INT64_MAX / 4, 0, 0);
    ck_assert_int_gt(v, 0);
}
END_TEST

static const char *key = "r:c:s:";
static const char *body =
    "{\"d\":1795000000000,\"e\":{\"t\":\"meeting.held\","
    "\"a\":1795485600000},\"t\":\"t\",\"n\":[\"manager\"]}";

START_TEST(body_update_roundtrip)
{
    int att;
    int64_t ra;
    ck_assert_int_eq(suki_job_body_retry(body, &att, &ra), 0);
    ck_assert_int_eq(att, 0);
    ck_assert_int_eq(ra, 0);

    char *b1 = suki_job_body_update(body, 3, 1795000123456LL, 0);
    ck_assert_ptr_nonnull(b1);
    ck_assert_int_eq(suki_job_body_retry(b1, &att, &ra), 0);
    ck_assert_int_eq(att, 3);
    ck_assert_int_eq(ra, 1795000123456LL);
    /* Everything else is kept, in order: the body still parses as the
     * same job, with the same key, due time and event. */
    struct suki_jobdata a, b;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_job_parse(key, body, strlen(body), &a, &err), 0);
    ck_assert_int_eq(suki_job_parse(key, b1, strlen(b1), &b, &err), 0);
    ck_assert_str_eq(a.key, b.key);
    ck_assert_int_eq(a.due_ms, b.due_ms);
    ck_assert_int_eq(a.attempt, 0);
    ck_assert_int_eq(b.attempt, 3);
    ck_assert_int_eq(b.retry_at_ms, 1795000123456LL);
    ck_assert_str_eq(b.event->type, "meeting.held");
    ck_assert_str_eq(b.event->client, "c");
    ck_assert_str_eq(b.template_name, "t");
    ck_assert_str_eq(b1, "{\"d\":1795000000000,\"e\":{\"t\":\"meeting.held\","
                         "\"a\":1795485600000},\"t\":\"t\",\"n\":[\"manager\"],"
                         "\"a\":3,\"r\":1795000123456}");
    suki_job_clear(&a);
    suki_job_clear(&b);

    /* A defer moves "due" and clears the retry state. */
    char *b2 = suki_job_body_update(b1, 0, 0, 1796000000000LL);
    ck_assert_int_eq(suki_job_body_retry(b2, &att, &ra), 0);
    ck_assert_int_eq(att, 0);
    ck_assert_int_eq(ra, 0);
    ck_assert_ptr_null(strstr(b2, "\"r\":"));
    ck_assert_ptr_null(strstr(b2, "\"a\":3"));
    ck_assert_int_eq(suki_job_parse(key, b2, strlen(b2), &b, &err), 0);
    ck_assert_int_eq(b.attempt, 0);
    ck_assert_int_eq(b.due_ms, 1796000000000LL);
    suki_job_clear(&b);
    /* Updating twice gives the same bytes (no duplicate fields). */
    char *b3 = suki_job_body_update(b1, 3, 1795000123456LL, 0);
    ck_assert_str_eq(b1, b3);
    free(b1);
    free(b2);
    free(b3);
}
END_TEST

START_TEST(body_bad)
{
    int att = 7;
    int64_t ra = 7;
    ck_assert_ptr_null(suki_job_body_update("not json", 1, 1, 0));
    ck_assert_ptr_null(suki_job_body_update("[1,2]", 1, 1, 0));
    ck_assert_ptr_null(suki_job_body_update(NULL, 1, 1, 0));
    ck_assert_int_eq(suki_job_body_retry("nope", &att, &ra), -EINVAL);
    ck_assert_int_eq(att, 0);
    ck_assert_int_eq(ra, 0);
    /* wrong types read as absent */
    ck_assert_int_eq(suki_job_body_retry("{\"a\":\"3\",\"r\":-5}", &att, &ra),
                     0);
    ck_assert_int_eq(att, 0);
    ck_assert_int_eq(ra, 0);
}
END_TEST

START_TEST(message_id_stable)
{
    const char *k = "follow-up:acme-ph:deal-7:";
    char *a = suki_compose_reminder_id(k, 1795000000000LL, "maria@example.ph",
                                       "accounts@example.ph");
    char *b = suki_compose_reminder_id(k, 1795000000000LL, "maria@example.ph",
                                       "accounts@example.ph");
    char *c = suki_compose_reminder_id(k, 1795000000000LL, "MARIA@example.ph",
                                       "accounts@example.ph");
    char *d = suki_compose_reminder_id(k, 1795000000000LL, "juan@example.ph",
                                       "accounts@example.ph");
    char *e = suki_compose_reminder_id(k, 1795000000001LL, "maria@example.ph",
                                       "accounts@example.ph");
    char *f =
        suki_compose_reminder_id("follow-up:acme-ph:deal-8:", 1795000000000LL,
                                 "maria@example.ph", "accounts@example.ph");
    ck_assert_str_eq(a, b);
    ck_assert_str_eq(a, c); /* one mailbox, one id */
    ck_assert_str_ne(a, d);
    ck_assert_str_ne(a, e);
    ck_assert_str_ne(a, f);
    ck_assert_int_eq(a[0], '<');
    ck_assert_int_eq(a[strlen(a) - 1], '>');
    ck_assert_ptr_nonnull(strstr(a, "@example.ph>"));
    /* A pinned value: the id must not change between releases, or a
     * restart after an upgrade would resend what was sent. */
    char *g = suki_compose_reminder_id("r:c:s:", 1000, "x@y.z", NULL);
    ck_assert_str_eq(g, "<4047daa186bec0030ccf813df4cb297e@suki.invalid>");
    char *g2 = suki_compose_reminder_id("r:c:s:", 1000, "x@y.z", NULL);
    ck_assert_str_eq(g, g2);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(f);
    free(g);
    free(g2);
}
END_TEST

START_TEST(webhook_bodies)
{
    char *j = suki_compose_webhook_body("json", "Sub \"q\"", "line1\nline2",
                                        "acme", "rule-1");
    json_t *o = json_loads(j, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "text")),
                     "line1\nline2");
    ck_assert_str_eq(json_string_value(json_object_get(o, "subject")),
                     "Sub \"q\"");
    ck_assert_str_eq(json_string_value(json_object_get(o, "client")), "acme");
    ck_assert_str_eq(json_string_value(json_object_get(o, "rule")), "rule-1");
    json_decref(o);
    free(j);
    j = suki_compose_webhook_body(NULL, "S", "T", "c", "r");
    ck_assert_ptr_nonnull(strstr(j, "\"subject\":\"S\""));
    free(j);
    j = suki_compose_webhook_body("slack", "Renewal", "Text here", "c", "r");
    o = json_loads(j, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "text")),
                     "*Renewal*\nText here");
    ck_assert_int_eq(json_object_size(o), 1);
    json_decref(o);
    free(j);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, backoff_grows_and_caps);
    tcase_add_test(tc, backoff_edges);
    tcase_add_test(tc, body_update_roundtrip);
    tcase_add_test(tc, body_bad);
    tcase_add_test(tc, message_id_stable);
    tcase_add_test(tc, webhook_bodies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
