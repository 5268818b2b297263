/* check_keys.c - the key schema: key names, job keys, and the job body
 * encode/decode round trip (store/keys.h). */
#include "event.h"
#include "store/job.h"
#include "store/keys.h"
#include "util.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

START_TEST(key_names)
{
    char *k = suki_key("suki", SUKI_KEY_JOBS);
    ck_assert_str_eq(k, "suki:jobs");
    free(k);
    k = suki_key_id("p", SUKI_KEY_SENT, "<a@b>");
    ck_assert_str_eq(k, "p:sent:<a@b>");
    free(k);
    k = suki_key_id("p", SUKI_KEY_JOB, "");
    ck_assert_str_eq(k, "p:job:");
    free(k);
    char buf[16];
    ck_assert_int_eq(
        suki_key_id_buf(buf, sizeof(buf), "p", SUKI_KEY_CLIENT, "c1"), 11);
    ck_assert_str_eq(buf, "p:client:c1");
    /* one byte short of the NUL: refused, not silently cut */
    ck_assert_int_eq(suki_key_id_buf(buf, 11, "p", SUKI_KEY_CLIENT, "c1"), -1);
}
END_TEST

START_TEST(job_key_roundtrip)
{
    char *key = suki_job_key("r:1", "c%x y", "s\tt", NULL);
    ck_assert_str_eq(key, "r%3A1:c%25x%20y:s%09t:");
    char *rule, *client, *subject, *slot;
    ck_assert_int_eq(suki_job_key_split(key, &rule, &client, &subject, &slot),
                     0);
    ck_assert_str_eq(rule, "r:1");
    ck_assert_str_eq(client, "c%x y");
    ck_assert_str_eq(subject, "s\tt");
    ck_assert_str_eq(slot, "");
    char *h = suki_job_hash_key("p", NULL, key);
    char *h2 = suki_job_hash_key("p", client, NULL);
    ck_assert_str_eq(h, "p:job:c%25x%20y");
    ck_assert_str_eq(h, h2);
    free(h);
    free(h2);
    free(rule);
    free(client);
    free(subject);
    free(slot);
    free(key);
}
END_TEST

START_TEST(body_roundtrip_full)
{
    json_t *data = json_pack("{s:s,s:i}", "plan", "gold", "seats", 7);
    struct suki_event_parts p = {.type = "meeting.held",
                                 .client = "c:1",
                                 .id = "ev-9",
                                 .manager = "ann",
                                 .at_ms = 1700000000123LL,
                                 .data = data};
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_event_new(&p, &ev, &err), 0);
    const char *notify[] = {"owner", "ops@example.com"};
    struct suki_job_fields f = {.due_ms = 1800000000000LL,
                                .event = ev,
                                .template_name = "followup-2",
                                .channel = "webhook",
                                .notify = notify,
                                .n_notify = 2};
    char *body = suki_job_body(&f);
    ck_assert_ptr_nonnull(body);
    char *key = suki_job_key("fu", "c:1", "deal", "3d");

    struct suki_jobdata jd;
    ck_assert_int_eq(suki_job_parse(key, body, strlen(body), &jd, &err), 0);
    ck_assert_str_eq(jd.key, key);
    ck_assert_str_eq(jd.rule, "fu");
    ck_assert_str_eq(jd.client, "c:1");
    ck_assert_str_eq(jd.subject, "deal");
    ck_assert_str_eq(jd.slot, "3d");
    ck_assert_int_eq(jd.due_ms, 1800000000000LL);
    ck_assert_str_eq(jd.template_name, "followup-2");
    ck_assert_str_eq(jd.channel, "webhook");
    ck_assert_uint_eq(jd.n_notify, 2);
    ck_assert_str_eq(jd.notify[0], "owner");
    ck_assert_str_eq(jd.notify[1], "ops@example.com");
    ck_assert_int_eq(jd.attempt, 0);
    ck_assert_int_eq(jd.retry_at_ms, 0);
    ck_assert_ptr_nonnull(jd.event);
    ck_assert_str_eq(jd.event->type, "meeting.held");
    ck_assert_str_eq(jd.event->client, "c:1"); /* from the key */
    ck_assert_str_eq(jd.event->id, "ev-9");
    ck_assert_str_eq(jd.event->manager, "ann");
    ck_assert_int_eq(jd.event->at_ms, 1700000000123LL);
    ck_assert(json_equal(jd.event->data, data));
    /* the client is the key's: the body does not repeat it */
    ck_assert_ptr_null(strstr(body, "c:1"));

    /* a retry keeps everything else */
    char *nb = suki_job_body_update(body, 2, 1800000060000LL, 0);
    ck_assert_ptr_nonnull(nb);
    struct suki_jobdata jr;
    ck_assert_int_eq(suki_job_parse(key, nb, strlen(nb), &jr, &err), 0);
    ck_assert_int_eq(jr.attempt, 2);
    ck_assert_int_eq(jr.retry_at_ms, 1800000060000LL);
    ck_assert_int_eq(jr.due_ms, 1800000000000LL);
    ck_assert_str_eq(jr.template_name, "followup-2");
    ck_assert_str_eq(jr.event->id, "ev-9");
    suki_job_clear(&jr);

    suki_job_clear(&jd);
    ck_assert_ptr_null(jd.key);
    free(nb);
    free(key);
    free(body);
    suki_event_free(ev);
    json_decref(data);
}
END_TEST

START_TEST(body_roundtrip_minimal)
{
    struct suki_job_fields f = {.due_ms = 5};
    char *body = suki_job_body(&f);
    ck_assert_str_eq(body, "{\"" SUKI_JOB_DUE "\":5}");
    struct suki_jobdata jd;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_job_parse("r:c::", body, strlen(body), &jd, &err), 0);
    ck_assert_int_eq(jd.due_ms, 5);
    ck_assert_ptr_null(jd.event);
    ck_assert_ptr_null(jd.template_name);
    ck_assert_ptr_null(jd.channel);
    ck_assert_uint_eq(jd.n_notify, 0);
    ck_assert(!jd.forced);
    suki_job_clear(&jd);
    free(body);
    /* a replay with force (ctl-intake-replay.lua) adds "f":1 at the end */
    const char *fb = "{\"" SUKI_JOB_DUE "\":5,\"" SUKI_JOB_FORCED "\":1}";
    ck_assert_int_eq(suki_job_parse("r:c::", fb, strlen(fb), &jd, &err), 0);
    ck_assert(jd.forced);
    suki_job_clear(&jd);
}
END_TEST

START_TEST(body_not_encodable)
{
    /* JSON carries only UTF-8: refused rather than stored mangled */
    struct suki_job_fields f = {.due_ms = 5, .template_name = "bad\xff"};
    ck_assert_ptr_null(suki_job_body(&f));
    const char *notify[] = {"ok", "bad\xc3"};
    struct suki_job_fields g = {.due_ms = 5, .notify = notify, .n_notify = 2};
    ck_assert_ptr_null(suki_job_body(&g));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("schema");
    tcase_add_test(tc, key_names);
    tcase_add_test(tc, job_key_roundtrip);
    tcase_add_test(tc, body_roundtrip_full);
    tcase_add_test(tc, body_roundtrip_minimal);
    tcase_add_test(tc, body_not_encodable);
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
