/* check_util.c - durations, rates, numbers, globs. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"
#include "util.h"

START_TEST(duration_units)
{
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {{"90s", 90000},    {"15m", 900000},    {"24h", 86400000},
              {"3d", 259200000}, {"2w", 1209600000}, {"250ms", 250},
              {"0s", 0},         {"1s", 1000}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -1;
        struct suki_err err = {{0}};
        ck_assert_int_eq(suki_parse_duration(ok[i].in, &ms, &err), 0);
        ck_assert_int_eq(ms, ok[i].ms);
    }
}
END_TEST

START_TEST(duration_bad)
{
    static const char *bad[] = {"",    "3x",  "s",  "-1s", "1.5h", " 1s",
                                "1s ", "1 s", "1S", "d3",  "1sec", "+1s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 0;
        struct suki_err err = {{0}};
        ck_assert_int_eq(suki_parse_duration(bad[i], &ms, &err), -EINVAL);
        ck_assert_msg(err.msg[0] != '\0', "no message for '%s'", bad[i]);
    }
}
END_TEST

START_TEST(duration_overflow)
{
    int64_t ms = 0;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_parse_duration("99999999999999999999999s", &ms, &err),
                     -ERANGE);
    ck_assert_int_eq(suki_parse_duration("9223372036854775807w", &ms, &err),
                     -ERANGE);
    ck_assert_int_eq(suki_parse_duration("5300w", &ms, &err), -ERANGE);
    ck_assert_int_eq(suki_parse_duration("5200w", &ms, &err), 0);
}
END_TEST

START_TEST(duration_format)
{
    char buf[32];
    suki_format_duration(259200000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "3d");
    suki_format_duration(90000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "90s");
    suki_format_duration(1209600000, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2w");
    suki_format_duration(1500, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1500ms");
}
END_TEST

START_TEST(rate_ok)
{
    double r = 0;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_parse_rate("20/s", &r, &err), 0);
    ck_assert_double_eq(r, 20.0);
    ck_assert_int_eq(suki_parse_rate("600/m", &r, &err), 0);
    ck_assert_double_eq(r, 10.0);
    ck_assert_int_eq(suki_parse_rate("3600/h", &r, &err), 0);
    ck_assert_double_eq(r, 1.0);
}
END_TEST

START_TEST(rate_bad)
{
    static const char *bad[] = {"",    "20",    "/s",  "20/",   "20/d", "-5/s",
                                "0/s", "1.5/s", "x/s", "20/ s", "20 /s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double r = 0;
        struct suki_err err = {{0}};
        ck_assert_msg(suki_parse_rate(bad[i], &r, &err) < 0, "accepted '%s'",
                      bad[i]);
        ck_assert(err.msg[0] != '\0');
    }
    double r = 0;
    ck_assert_int_eq(suki_parse_rate("99999999999999999999/s", &r, NULL),
                     -ERANGE);
}
END_TEST

START_TEST(i64_parse)
{
    int64_t v;
    ck_assert_int_eq(suki_parse_i64("42", 0, 100, &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(suki_parse_i64("101", 0, 100, &v), -ERANGE);
    ck_assert_int_eq(suki_parse_i64("-1", 0, 100, &v), -ERANGE);
    ck_assert_int_eq(suki_parse_i64("4x", 0, 100, &v), -EINVAL);
    ck_assert_int_eq(suki_parse_i64("", 0, 100, &v), -EINVAL);
    ck_assert_int_eq(
        suki_parse_i64("99999999999999999999", INT64_MIN, INT64_MAX, &v),
        -ERANGE);
}
END_TEST

START_TEST(glob)
{
    ck_assert(suki_glob_match("contact.*", "contact.call"));
    ck_assert(suki_glob_match("*", "deal.won"));
    ck_assert(!suki_glob_match("contact.*", "contract.signed"));
    ck_assert(suki_glob_match("contract.signed", "contract.signed"));
}
END_TEST

START_TEST(utf8)
{
    static const struct {
        const char *s;
        size_t bad_at; /* SIZE_MAX: valid */
    } cases[] = {
        {"plain ascii", SIZE_MAX},
        {"Salamat po \xf0\x9f\x99\x8f \xc3\xb1", SIZE_MAX},
        {"\xc0\xaf", 0},         /* overlong '/' */
        {"ab\xe0\x80\xaf", 2},   /* overlong, 3 bytes */
        {"\xed\xa0\x80", 0},     /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 0}, /* above U+10FFFF */
        {"x\xe2\x82", 1},        /* truncated sequence */
        {"\x80", 0},             /* stray continuation byte */
        {"ok\xff", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].s);
        size_t want = cases[i].bad_at == SIZE_MAX ? n : cases[i].bad_at;
        ck_assert_msg(suki_utf8_bad_at((const unsigned char *)cases[i].s, n) ==
                          want,
                      "case %zu", i);
    }
    ck_assert_uint_eq(suki_utf8_seq((const unsigned char *)"\xc3\xb1", 2), 2);
    ck_assert_uint_eq(suki_utf8_seq((const unsigned char *)"\xc3\xb1", 1), 0);
}
END_TEST

/* Which Redis errors are worth sending again: a settle or a sent marker
 * refused for now is retried, one refused for good is not. */
START_TEST(redis_temporary_errors)
{
    static const struct {
        const char *msg;
        bool temp;
    } cases[] = {
        {"LOADING Redis is loading the dataset in memory", true},
        {"OOM command not allowed when used memory > 'maxmemory'.", true},
        {"READONLY You can't write against a read only replica.", true},
        {"BUSY Redis is busy running a script.", true},
        {"MASTERDOWN Link with MASTER is down", true},
        {"NOREPLICAS Not enough good replicas to write.", true},
        {"ERR bad settle record", false},
        {"WRONGTYPE Operation against a key holding the wrong kind", false},
        {"LOADINGX not the word", false},
        {"ERR Error running script: OOM in a message", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply r = {.type = REDIS_REPLY_ERROR,
                        .str = (char *)cases[i].msg,
                        .len = strlen(cases[i].msg)};
        ck_assert_msg(suki_redis_error_is_temporary(&r) == cases[i].temp, "%s",
                      cases[i].msg);
    }
    redisReply ok = {.type = REDIS_REPLY_STATUS, .str = (char *)"OK", .len = 2};
    ck_assert(!suki_redis_error_is_temporary(&ok));
    ck_assert(!suki_redis_error_is_temporary(NULL));
}
END_TEST

static Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("durations");
    tcase_add_test(tc, duration_units);
    tcase_add_test(tc, duration_bad);
    tcase_add_test(tc, duration_overflow);
    tcase_add_test(tc, duration_format);
    suite_add_tcase(s, tc);
    tc = tcase_create("rates");
    tcase_add_test(tc, rate_ok);
    tcase_add_test(tc, rate_bad);
    suite_add_tcase(s, tc);
    tc = tcase_create("misc");
    tcase_add_test(tc, i64_parse);
    tcase_add_test(tc, glob);
    tcase_add_test(tc, utf8);
    tcase_add_test(tc, redis_temporary_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(util_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
