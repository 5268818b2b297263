/* check_campaign.c - the pure parts of campaigns: audience syntax, names,
 * the SCAN progress estimate, the error-rate rule and message ids. */
#include <check.h>
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "deliver/compose.h"

START_TEST(audience_ok)
{
    static const struct {
        const char *in;
        enum suki_audience_kind kind;
        const char *value;
    } ok[] = {{"all", SUKI_AUDIENCE_ALL, NULL},
              {"segment=retail", SUKI_AUDIENCE_SEGMENT, "retail"},
              {"tag=vip", SUKI_AUDIENCE_TAG, "vip"},
              {"set=crm:picked", SUKI_AUDIENCE_SET, "crm:picked"},
              {"segment=a=b", SUKI_AUDIENCE_SEGMENT, "a=b"},
              {"segment=Tindahan ng Bayan", SUKI_AUDIENCE_SEGMENT,
               "Tindahan ng Bayan"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        enum suki_audience_kind k;
        char *v = (char *)1;
        struct suki_err err = {{0}};
        ck_assert_int_eq(suki_audience_parse(ok[i].in, &k, &v, &err), 0);
        ck_assert_int_eq(k, ok[i].kind);
        if (ok[i].value)
            ck_assert_str_eq(v, ok[i].value);
        else
            ck_assert_ptr_null(v);
        free(v);
    }
    ck_assert_str_eq(suki_audience_kind_name(SUKI_AUDIENCE_TAG), "tag");
    ck_assert_str_eq(suki_audience_kind_name(SUKI_AUDIENCE_ALL), "all");
}
END_TEST

START_TEST(audience_bad)
{
    static const char *bad[] = {
        "",     "All",     "everyone", "segment=",   "segment",
        "tag=", "tag=a,b", "set=",     "seg=retail", "segment=a\n",
        " all", "all ",    "group=x",  "tag=\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum suki_audience_kind k;
        char *v = (char *)1;
        struct suki_err err = {{0}};
        ck_assert_msg(suki_audience_parse(bad[i], &k, &v, &err) == -EINVAL,
                      "accepted '%s'", bad[i]);
        ck_assert_ptr_null(v);
        ck_assert(err.msg[0] != '\0');
    }
}
END_TEST

START_TEST(names)
{
    ck_assert(suki_campaign_name_ok("spring-2026"));
    ck_assert(suki_campaign_name_ok("a"));
    ck_assert(suki_campaign_name_ok("Q4_promo.v2"));
    ck_assert(!suki_campaign_name_ok(""));
    ck_assert(!suki_campaign_name_ok("-x"));
    ck_assert(!suki_campaign_name_ok(".x"));
    ck_assert(!suki_campaign_name_ok("a b"));
    ck_assert(!suki_campaign_name_ok("a:b"));
    ck_assert(!suki_campaign_name_ok("a/b"));
    ck_assert(!suki_campaign_name_ok("ñ"));
    char longn[SUKI_CAMPAIGN_NAME_MAX + 2];
    memset(longn, 'n', sizeof(longn) - 1);
    longn[sizeof(longn) - 1] = '\0';
    ck_assert(!suki_campaign_name_ok(longn));
    longn[SUKI_CAMPAIGN_NAME_MAX] = '\0';
    ck_assert(suki_campaign_name_ok(longn));
}
END_TEST

/* Redis's SCAN cursor for a table of 2^n buckets: the reverse of the
 * bucket counter in its low n bits. Build cursors the way Redis does and
 * check the estimate follows the counter. */
static unsigned long long rev(unsigned long long v)
{
    unsigned long long r = 0;
    for (int i = 0; i < 64; i++) {
        r = (r << 1) | (v & 1);
        v >>= 1;
    }
    return r;
}

START_TEST(scan_fraction)
{
    ck_assert(suki_campaign_scan_fraction(0) == 0.0);
    const unsigned bits = 16;
    const unsigned long long mask = (1ull << bits) - 1;
    unsigned long long v = 0;
    for (unsigned long long step = 1; step < 60000; step++) {
        /* one step of Redis's reverse-binary iteration */
        v |= ~mask;
        v = rev(v);
        v++;
        v = rev(v);
        if (step % 4999 == 0) {
            double f = suki_campaign_scan_fraction(v);
            double want = (double)step / (double)(mask + 1);
            ck_assert_msg(f > want - 1e-9 && f < want + 1e-9,
                          "step %llu: %f vs %f", step, f, want);
        }
    }
}
END_TEST

START_TEST(error_rule)
{
    ck_assert(!suki_campaign_error_trips(0, 0, 50, 0.2));
    ck_assert(!suki_campaign_error_trips(49, 49, 50, 0.2)); /* too few */
    ck_assert(suki_campaign_error_trips(11, 50, 50, 0.2));
    ck_assert(!suki_campaign_error_trips(10, 50, 50, 0.2)); /* not over */
    ck_assert(suki_campaign_error_trips(1, 1, 1, 0.0));
    ck_assert(!suki_campaign_error_trips(100, 100, 1, 1.0));
}
END_TEST

START_TEST(message_id)
{
    char *a = suki_compose_campaign_id("spring", "c1", "shop@Tindahan.PH");
    char *b = suki_compose_campaign_id("spring", "c1", "other@tindahan.ph");
    char *c = suki_compose_campaign_id("spring", "c2", "shop@tindahan.ph");
    char *d = suki_compose_campaign_id("summer", "c1", "shop@tindahan.ph");
    char *e = suki_compose_campaign_id("spring", "c1", NULL);
    ck_assert_str_eq(a, b); /* stable: depends on campaign, client, domain */
    ck_assert_str_ne(a, c);
    ck_assert_str_ne(a, d);
    ck_assert_ptr_nonnull(strstr(e, ".campaign@suki.invalid>"));
    /* the Lua scripts compute '<' .. sha1hex(name .. '\n' .. id) ..
     * '.campaign@' .. domain .. '>' */
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)"spring\nc1", 9, md);
    char want[128];
    int n = snprintf(want, sizeof(want), "<");
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        n += snprintf(want + n, sizeof(want) - (size_t)n, "%02x", md[i]);
    snprintf(want + n, sizeof(want) - (size_t)n, ".campaign@tindahan.ph>");
    ck_assert_str_eq(a, want);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
}
END_TEST

static Suite *campaign_suite(void)
{
    Suite *s = suite_create("campaign");
    TCase *t = tcase_create("audience");
    tcase_add_test(t, audience_ok);
    tcase_add_test(t, audience_bad);
    tcase_add_test(t, names);
    suite_add_tcase(s, t);
    t = tcase_create("progress");
    tcase_add_test(t, scan_fraction);
    tcase_add_test(t, error_rule);
    suite_add_tcase(s, t);
    t = tcase_create("ids");
    tcase_add_test(t, message_id);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(campaign_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
