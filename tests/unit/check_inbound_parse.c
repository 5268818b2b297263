/* check_inbound_parse.c - classifying mail from the replies-and-bounces
 * mailbox: the fixtures of tests/fixtures/inbound (shaped like what
 * Gmail, Postfix, Exchange and feedback loops send) and generated hostile
 * input. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbound_parse.h"
#include "util.h"

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/fixtures/inbound/%s", SRCDIR, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = suki_malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void parse_fixture(const char *name, struct suki_inbound_msg *m)
{
    size_t len;
    char *b = slurp(name, &len);
    suki_inbound_parse(b, len, m);
    free(b);
}

static void parse_str(const char *s, struct suki_inbound_msg *m)
{
    suki_inbound_parse(s, strlen(s), m);
}

START_TEST(reply_gmail)
{
    struct suki_inbound_msg m;
    parse_fixture("reply.eml", &m);
    ck_assert_str_eq(suki_inbound_kind_name(m.kind), "reply");
    ck_assert_ptr_null(m.why);
    /* In-Reply-To first, then References newest first, no repeats */
    ck_assert_uint_eq(m.n_refs, 2);
    ck_assert_str_eq(m.refs[0],
                     "<0123456789abcdef0123456789abcdef@tindahan.ph>");
    ck_assert_str_eq(m.refs[1], "<older.thread@mail.example.ph>");
    /* RFC 2047 words in two encodings, joined */
    ck_assert_str_eq(m.subject, "Re: Salamat po! \xe2\x80\x94 meeting");
    ck_assert_str_eq(m.from, "maria@example.ph");
    ck_assert_str_eq(m.message_id, "<CAJ5a+reply.1@mail.example.ph>");
    suki_inbound_msg_clear(&m);
    ck_assert_ptr_null(m.refs);
}
END_TEST

START_TEST(dsn_permanent)
{
    struct suki_inbound_msg m;
    parse_fixture("dsn-5.eml", &m);
    /* Postfix marks bounces Auto-Submitted: still a DSN, not an
     * auto-reply */
    ck_assert_int_eq(m.kind, SUKI_INBOUND_DSN);
    ck_assert_uint_eq(m.n_rcpts, 1);
    ck_assert_str_eq(m.rcpts[0].address, "gone@example.org");
    ck_assert_str_eq(m.rcpts[0].status, "5.1.1");
    ck_assert_str_eq(m.rcpts[0].action, "failed");
    ck_assert_str_eq(m.rcpts[0].diagnostic,
                     "550 5.1.1 <gone@example.org>: Recipient address "
                     "rejected: User unknown");
    ck_assert(suki_inbound_status_permanent(m.rcpts[0].status));
    /* from the text/rfc822-headers part */
    ck_assert_str_eq(
        m.orig_id,
        "<aaaabbbbccccddddeeeeffff0000111122223333.campaign@tindahan.ph>");
    suki_inbound_msg_clear(&m);
}
END_TEST

START_TEST(dsn_temporary)
{
    struct suki_inbound_msg m;
    parse_fixture("dsn-4.eml", &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_DSN);
    ck_assert_uint_eq(m.n_rcpts, 1);
    ck_assert_str_eq(m.rcpts[0].address, "slow@example.net");
    ck_assert_str_eq(m.rcpts[0].status, "4.4.1");
    ck_assert(!suki_inbound_status_permanent(m.rcpts[0].status));
    /* from the message/rfc822 part */
    ck_assert_str_eq(m.orig_id,
                     "<ffffeeeeddddccccbbbbaaaa99998888@tindahan.ph>");
    suki_inbound_msg_clear(&m);
}
END_TEST

START_TEST(dsn_action_only)
{
    struct suki_inbound_msg m;
    parse_str("From: mailer-daemon@x.ph\nMessage-ID: <d@x.ph>\n"
              "Content-Type: multipart/report; report-type=delivery-status;"
              " boundary=B\n\n--B\nContent-Type: text/plain\n\nfailed\n"
              "--B\nContent-Type: message/delivery-status\n\n"
              "Reporting-MTA: dns; x.ph\n\n"
              "Final-Recipient: rfc822; a@b.ph\nAction: failed\n\n"
              "Final-Recipient: rfc822; c@d.ph\nAction: delayed\n"
              "Status: bogus\n\n--B--\n",
              &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_DSN);
    ck_assert_uint_eq(m.n_rcpts, 2);
    ck_assert_str_eq(m.rcpts[0].status, "5.0.0");
    ck_assert_str_eq(m.rcpts[1].status, "4.0.0");
    ck_assert_ptr_null(m.orig_id); /* no original part */
    suki_inbound_msg_clear(&m);
    /* a report that is not one */
    parse_str("From: x@y.ph\nContent-Type: multipart/report; "
              "report-type=delivery-status; boundary=B\n\n--B\n"
              "Content-Type: text/plain\n\nhi\n--B--\n",
              &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_MALFORMED);
    ck_assert_str_eq(m.why, "a delivery report without its status part");
    suki_inbound_msg_clear(&m);
}
END_TEST

START_TEST(complaint_arf)
{
    struct suki_inbound_msg m;
    parse_fixture("arf.eml", &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_COMPLAINT);
    ck_assert_str_eq(m.feedback_type, "abuse");
    ck_assert_str_eq(m.complainant, "angry@example.com");
    ck_assert_str_eq(
        m.orig_id,
        "<1111222233334444555566667777888899990000.campaign@tindahan.ph>");
    suki_inbound_msg_clear(&m);
}
END_TEST

START_TEST(autoreplies)
{
    struct suki_inbound_msg m;
    parse_fixture("ooo.eml", &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_AUTOREPLY);
    ck_assert_uint_eq(m.n_refs, 1); /* kept, for the log */
    suki_inbound_msg_clear(&m);
    parse_fixture("ooo-subject.eml", &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_AUTOREPLY);
    suki_inbound_msg_clear(&m);
    parse_str("From: a@b.ph\nSubject: Re: x\nIn-Reply-To: <r@s>\n"
              "Precedence: auto_reply\n\nbody\n",
              &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_AUTOREPLY);
    suki_inbound_msg_clear(&m);
    /* "no" is a person's mail (RFC 3834) */
    parse_str("From: a@b.ph\nSubject: Re: x\nIn-Reply-To: <r@s>\n"
              "Auto-Submitted: no\n\nbody\n",
              &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_REPLY);
    suki_inbound_msg_clear(&m);
    parse_str("From: a@b.ph\nSubject: Re: x\nIn-Reply-To: <r@s>\n"
              "Auto-Submitted: notification\n\nbody\n",
              &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_AUTOREPLY);
    suki_inbound_msg_clear(&m);
}
END_TEST

START_TEST(other_mail)
{
    struct suki_inbound_msg m;
    parse_fixture("other.eml", &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_OTHER);
    ck_assert_uint_eq(m.n_refs, 0);
    suki_inbound_msg_clear(&m);
}
END_TEST

START_TEST(malformed_fixtures)
{
    struct suki_inbound_msg m;
    parse_fixture("truncated.eml", &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_MALFORMED);
    ck_assert_str_eq(m.why, "truncated");
    ck_assert_uint_eq(m.n_refs, 0); /* nothing acted upon */
    suki_inbound_msg_clear(&m);
    parse_fixture("bad-encoding.eml", &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_MALFORMED);
    ck_assert_ptr_nonnull(m.why);
    suki_inbound_msg_clear(&m);
    suki_inbound_parse(NULL, 0, &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_MALFORMED);
    suki_inbound_msg_clear(&m);
}
END_TEST

/* count parts of text/plain in a multipart/mixed with In-Reply-To */
static char *many_parts(size_t count)
{
    struct suki_buf b = {0};
    suki_buf_str(&b, "From: a@b.ph\nIn-Reply-To: <x@y>\nMIME-Version: 1.0\n"
                     "Content-Type: multipart/mixed; boundary=zz\n\n");
    for (size_t i = 0; i < count; i++)
        suki_buf_str(&b, "--zz\nContent-Type: text/plain\n\npart\n");
    suki_buf_str(&b, "--zz--\n");
    return b.p;
}

START_TEST(limits)
{
    struct suki_inbound_msg m;
    char *s = many_parts(10000);
    parse_str(s, &m);
    free(s);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_MALFORMED);
    ck_assert_str_eq(m.why, "too many MIME parts");
    suki_inbound_msg_clear(&m);
    /* the top Content-Type counts too: one part fewer fits */
    s = many_parts(SUKI_INBOUND_MAX_PARTS - 1);
    parse_str(s, &m);
    free(s);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_REPLY);
    suki_inbound_msg_clear(&m);
    /* size */
    size_t big = SUKI_INBOUND_MAX_BYTES + 1;
    char *p = suki_malloc(big);
    const char *h = "From: a@b.ph\nIn-Reply-To: <x@y>\n\n";
    memcpy(p, h, strlen(h));
    memset(p + strlen(h), 'x', big - strlen(h));
    suki_inbound_parse(p, big, &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_MALFORMED);
    ck_assert_str_eq(m.why, "larger than the limit");
    suki_inbound_msg_clear(&m);
    suki_inbound_parse(p, big - 1, &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_REPLY);
    suki_inbound_msg_clear(&m);
    free(p);
    /* deep nesting: GMime's own limit, or the truncation, not a crash */
    struct suki_buf d = {0};
    suki_buf_str(&d, "From: a@b.ph\nContent-Type: multipart/mixed; "
                     "boundary=b0\n\n");
    for (int i = 1; i < 400; i++) {
        char line[96];
        snprintf(line, sizeof(line),
                 "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n",
                 i - 1, i);
        suki_buf_str(&d, line);
    }
    parse_str(d.p, &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_MALFORMED);
    suki_inbound_msg_clear(&m);
    free(d.p);
}
END_TEST

START_TEST(refs_and_text_cleaned)
{
    struct suki_inbound_msg m;
    struct suki_buf b = {0};
    suki_buf_str(&b, "From: a@b.ph\nIn-Reply-To: <ok@x>\n"
                     "References: <bad id@x>");
    for (int i = 0; i < 100; i++) {
        char r[32];
        snprintf(r, sizeof(r), " <r%d@x>", i);
        suki_buf_str(&b, r);
    }
    /* a subject of 300 two-byte characters, with a tab and a NUL-free
     * control byte */
    suki_buf_str(&b, "\nSubject: =?UTF-8?Q?a=09b=01c?= ");
    for (int i = 0; i < 300; i++)
        suki_buf_str(&b, "\xc3\xb1");
    suki_buf_str(&b, "\n\nbody\n");
    parse_str(b.p, &m);
    free(b.p);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_REPLY);
    ck_assert_uint_eq(m.n_refs, SUKI_INBOUND_MAX_REFS);
    for (size_t i = 0; i < m.n_refs; i++)
        ck_assert(strchr(m.refs[i], ' ') == NULL);
    ck_assert_str_eq(m.refs[0], "<ok@x>");
    ck_assert_str_eq(m.refs[1], "<r99@x>"); /* newest first */
    ck_assert_uint_le(strlen(m.subject), SUKI_INBOUND_TEXT_MAX);
    ck_assert(strncmp(m.subject, "a b c ", 6) == 0);
    /* cut on a character boundary: ends with a whole ñ */
    size_t n = strlen(m.subject);
    ck_assert_uint_eq((unsigned char)m.subject[n - 1], 0xb1);
    suki_inbound_msg_clear(&m);
}
END_TEST

START_TEST(crlf_and_names)
{
    struct suki_inbound_msg m;
    parse_str("From: A <A@B.PH>\r\nSubject: Re: hi\r\n"
              "References: <one@x>\r\n\r\nbody\r\n",
              &m);
    ck_assert_int_eq(m.kind, SUKI_INBOUND_REPLY);
    ck_assert_str_eq(m.from, "a@b.ph");
    ck_assert_str_eq(m.refs[0], "<one@x>");
    suki_inbound_msg_clear(&m);
    ck_assert_str_eq(suki_inbound_kind_name(SUKI_INBOUND_COMPLAINT),
                     "complaint");
    ck_assert_str_eq(suki_inbound_kind_name((enum suki_inbound_kind)99),
                     "other");
    ck_assert(!suki_inbound_status_permanent(NULL));
    ck_assert(!suki_inbound_status_permanent("4.0.0"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("inbound_parse");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, reply_gmail);
    tcase_add_test(t, dsn_permanent);
    tcase_add_test(t, dsn_temporary);
    tcase_add_test(t, dsn_action_only);
    tcase_add_test(t, complaint_arf);
    tcase_add_test(t, autoreplies);
    tcase_add_test(t, other_mail);
    tcase_add_test(t, malformed_fixtures);
    tcase_add_test(t, limits);
    tcase_add_test(t, refs_and_text_cleaned);
    tcase_add_test(t, crlf_and_names);
    suite_add_tcase(s, t);
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
