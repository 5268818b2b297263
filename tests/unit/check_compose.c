/* check_compose.c - the one place messages are built: the bytes are those
 * of suki_mime_build for the same fields (what every caller sent before
 * compose existed), sender and Reply-To rules, the display-name fallback,
 * Message-IDs and the sent-marker key. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "deliver/compose.h"
#include "mime.h"
#include "template.h"
#include "util.h"

static struct suki_transport_conf transport(char *from, char *reply_to)
{
    struct suki_transport_conf tc;
    memset(&tc, 0, sizeof(tc));
    tc.name = "email";
    tc.kind = SUKI_TRANSPORT_SMTP;
    tc.from = from;
    tc.reply_to = reply_to;
    return tc;
}

static struct suki_rendered content(void)
{
    struct suki_rendered rd;
    memset(&rd, 0, sizeof(rd));
    rd.subject = suki_strdup("Follow up: Dela Cruz — señor");
    rd.text = suki_strdup("Hello Maria,\nplease call back.\n");
    rd.html = suki_strdup("<p>Hello Maria,</p>\n");
    return rd;
}

/* A reminder as the fire path builds it: no display name, X-Suki-Job, a
 * fixed Reply-To. */
START_TEST(reminder_bytes_are_mime_build)
{
    struct suki_transport_conf tc =
        transport("Suki <suki@tindahan.ph>", "desk@tindahan.ph");
    struct suki_compose_sender snd;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_compose_sender_init(&snd, &tc, true, NULL, &err), 0);
    struct suki_rendered rd = content();
    char *id = suki_compose_reminder_id("follow-up:c1:deal-8:", 1795000000000LL,
                                        "Maria@Example.PH", snd.from.addr);
    struct suki_compose_mail m = {.sender = &snd,
                                  .to = "Maria@Example.PH",
                                  .content = &rd,
                                  .message_id = id,
                                  .date_ms = 1795000000000LL,
                                  .job_key = "follow-up:c1:deal-8:"};
    char *got = NULL;
    size_t got_len = 0;
    ck_assert_int_eq(suki_compose_mime(&m, &got, &got_len, &err), 0);

    struct suki_mailbox from = {0}, rt = {0};
    ck_assert_int_eq(suki_mime_mailbox_parse(tc.from, &from, &err), 0);
    ck_assert_int_eq(suki_mime_mailbox_parse(tc.reply_to, &rt, &err), 0);
    struct suki_mailbox to = {.addr = "Maria@Example.PH"};
    struct suki_mime_msg mm = {.from = &from,
                               .to = &to,
                               .n_to = 1,
                               .reply_to = &rt,
                               .subject = rd.subject,
                               .text = rd.text,
                               .html = rd.html,
                               .date_ms = 1795000000000LL,
                               .message_id = id,
                               .job_key = "follow-up:c1:deal-8:"};
    char *want = NULL;
    size_t want_len = 0;
    ck_assert_int_eq(suki_mime_build(&mm, &want, &want_len, &err), 0);
    ck_assert_uint_eq(got_len, want_len);
    ck_assert_mem_eq(got, want, want_len);
    ck_assert_ptr_nonnull(strstr(got, "Reply-To: desk@tindahan.ph\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "X-Suki-Job: follow-up:c1:deal-8:\r\n"));
    free(got);
    free(want);
    free(id);
    suki_mime_mailbox_clear(&from);
    suki_mime_mailbox_clear(&rt);
    suki_rendered_clear(&rd);
    suki_compose_sender_clear(&snd);
}
END_TEST

/* A campaign message: display name, List-Unsubscribe, Reply-To the
 * manager. */
START_TEST(campaign_bytes_are_mime_build)
{
    struct suki_transport_conf tc = transport("shop@tindahan.ph", "manager");
    struct suki_compose_sender snd;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_compose_sender_init(&snd, &tc, true,
                                              "Ana <ana@tindahan.ph>", &err),
                     0);
    ck_assert_str_eq(snd.reply_to.addr, "ana@tindahan.ph");
    struct suki_rendered rd = content();
    char *id = suki_compose_campaign_id("spring", "c1", snd.from.addr);
    const char *url = "https://suki.example/u/abc";
    struct suki_compose_mail m = {.sender = &snd,
                                  .to = "maria@example.ph",
                                  .to_name = "María Dela Cruz",
                                  .name_optional = true,
                                  .content = &rd,
                                  .message_id = id,
                                  .date_ms = 1795000000000LL,
                                  .list_unsubscribe = url};
    char *got = NULL;
    size_t got_len = 0;
    ck_assert_int_eq(suki_compose_mime(&m, &got, &got_len, &err), 0);

    struct suki_mailbox to = {.name = "María Dela Cruz",
                              .addr = "maria@example.ph"};
    struct suki_mime_msg mm = {.from = &snd.from,
                               .to = &to,
                               .n_to = 1,
                               .reply_to = &snd.reply_to,
                               .subject = rd.subject,
                               .text = rd.text,
                               .html = rd.html,
                               .date_ms = 1795000000000LL,
                               .message_id = id,
                               .list_unsubscribe = url};
    char *want = NULL;
    size_t want_len = 0;
    ck_assert_int_eq(suki_mime_build(&mm, &want, &want_len, &err), 0);
    ck_assert_uint_eq(got_len, want_len);
    ck_assert_mem_eq(got, want, want_len);
    free(got);
    free(want);
    free(id);
    suki_rendered_clear(&rd);
    suki_compose_sender_clear(&snd);
}
END_TEST

/* A display name MIME refuses: left out where the caller allows it (a
 * profile's name), an error where it does not (the owner's address). */
START_TEST(bad_display_name)
{
    struct suki_transport_conf tc = transport("shop@tindahan.ph", NULL);
    struct suki_compose_sender snd;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_compose_sender_init(&snd, &tc, true, NULL, &err), 0);
    ck_assert_ptr_null(snd.reply_to.addr);
    struct suki_rendered rd = content();
    char name[SUKI_MIME_NAME_MAX + 50];
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct suki_compose_mail m = {.sender = &snd,
                                  .to = "maria@example.ph",
                                  .to_name = name,
                                  .name_optional = false,
                                  .content = &rd,
                                  .message_id = "<a@b.c>",
                                  .date_ms = 1795000000000LL};
    char *out = (char *)"sentinel";
    size_t len = 0;
    ck_assert_int_lt(suki_compose_mime(&m, &out, &len, &err), 0);
    ck_assert_ptr_null(out);
    m.name_optional = true;
    ck_assert_int_eq(suki_compose_mime(&m, &out, &len, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "To: maria@example.ph\r\n"));
    ck_assert_ptr_null(strstr(out, "xxxx"));
    free(out);
    suki_rendered_clear(&rd);
    suki_compose_sender_clear(&snd);
}
END_TEST

START_TEST(sender_rules)
{
    struct suki_compose_sender snd;
    struct suki_err err = {{0}};
    /* No From configured: suki@localhost. */
    struct suki_transport_conf tc = transport(NULL, "manager");
    ck_assert_int_eq(suki_compose_sender_init(&snd, &tc, true, "", &err), 0);
    ck_assert_str_eq(snd.from.addr, "suki@localhost");
    ck_assert_ptr_null(snd.reply_to.addr); /* no manager */
    suki_compose_sender_clear(&snd);
    /* The owner's summary asks for no Reply-To at all. */
    tc = transport("shop@tindahan.ph", "desk@tindahan.ph");
    ck_assert_int_eq(suki_compose_sender_init(&snd, &tc, false, NULL, &err), 0);
    ck_assert_ptr_null(snd.reply_to.addr);
    suki_compose_sender_clear(&snd);
    /* A Reply-To that does not parse is left out; the From must parse. */
    tc = transport("shop@tindahan.ph", "not an address");
    ck_assert_int_eq(suki_compose_sender_init(&snd, &tc, true, NULL, &err), 0);
    ck_assert_ptr_null(snd.reply_to.addr);
    suki_compose_sender_clear(&snd);
    tc = transport("bad from", NULL);
    ck_assert_int_eq(suki_compose_sender_init(&snd, &tc, true, NULL, &err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "transport email: bad from: "));
    ck_assert_ptr_null(snd.from.addr);
    suki_compose_sender_clear(&snd);
}
END_TEST

START_TEST(ids_and_markers)
{
    char *a = suki_compose_summary_id("spring", "3", "shop@tindahan.ph");
    char *b = suki_compose_summary_id("spring", "3", "shop@tindahan.ph");
    char *c = suki_compose_summary_id("spring", "4", "shop@tindahan.ph");
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    char *m =
        suki_mime_message_id("campaign-summary:spring:3", "shop@tindahan.ph");
    ck_assert_str_eq(a, m);
    char *w = suki_compose_webhook_id("r:c:s:", 1000, "chat");
    char *w2 = suki_compose_reminder_id("r:c:s:", 1000, "webhook:chat", NULL);
    ck_assert_str_eq(w, w2);
    char *d = suki_compose_id_domain("Shop@Tindahan.PH");
    ck_assert_str_eq(d, "tindahan.ph");
    free(d);
    d = suki_compose_id_domain(NULL);
    ck_assert_str_eq(d, "suki.invalid");
    free(d);

    free(w);
    free(w2);
    free(m);
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(render_without_templates)
{
    struct suki_rendered rd;
    struct suki_err err = {{0}};
    ck_assert_int_eq(
        suki_compose_render(NULL, "follow-up", NULL, NULL, NULL, &rd, &err),
        -ENOENT);
    ck_assert_str_eq(err.msg, "templates are not loaded");
    ck_assert_ptr_null(rd.subject);
}
END_TEST

static Suite *compose_suite(void)
{
    Suite *s = suite_create("compose");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, reminder_bytes_are_mime_build);
    tcase_add_test(tc, campaign_bytes_are_mime_build);
    tcase_add_test(tc, bad_display_name);
    tcase_add_test(tc, sender_rules);
    tcase_add_test(tc, ids_and_markers);
    tcase_add_test(tc, render_without_templates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(compose_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
