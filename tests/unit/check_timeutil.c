/* check_timeutil.c - RFC 3339, zones and DST, business days, holidays. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timeutil.h"

#define FIXTURE(name) SRCDIR "/tests/fixtures/" name

/* Parse an RFC 3339 literal the test relies on (must be valid). */
static int64_t T(const char *s)
{
    int64_t ms = 0;
    struct suki_err err = {{0}};
    int rc = suki_time_parse_rfc3339(s, &ms, &err);
    ck_assert_msg(rc == 0, "fixture time %s: %s", s, err.msg);
    return ms;
}

static void assert_time(int64_t got, const char *want, const char *what)
{
    char buf[40];
    suki_time_format_rfc3339(got, buf, sizeof(buf));
    ck_assert_msg(strcmp(buf, want) == 0, "%s: got %s, want %s", what, buf,
                  want);
}

/* ---------------------------------------------------------------- */

START_TEST(rfc3339_good)
{
    static const struct {
        const char *in;
        const char *utc;
    } ok[] = {
        {"2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z"},
        {"2026-11-27t10:00:00z", "2026-11-27T10:00:00Z"},
        {"2026-11-27T10:00:00+08:00", "2026-11-27T02:00:00Z"},
        {"2026-11-27T10:00:00-05:30", "2026-11-27T15:30:00Z"},
        {"2026-11-27T10:00:00-00:00", "2026-11-27T10:00:00Z"},
        {"2026-01-01T03:00:00+08:00", "2025-12-31T19:00:00Z"},
        {"2028-02-29T12:00:00Z", "2028-02-29T12:00:00Z"},
        {"2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"},
        {"2026-11-27T10:00:00.5Z", "2026-11-27T10:00:00.500Z"},
        {"2026-11-27T10:00:00.123Z", "2026-11-27T10:00:00.123Z"},
        {"2026-11-27T10:00:00.123456789+08:00", "2026-11-27T02:00:00.123Z"},
        {"2026-11-27T10:00:00.000Z", "2026-11-27T10:00:00Z"},
        {"1969-12-31T23:59:59.250Z", "1969-12-31T23:59:59.250Z"},
        {"2026-12-31T23:59:60Z", "2027-01-01T00:00:00Z"},
        {"2026-06-30T23:59:59+14:00", "2026-06-30T09:59:59Z"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = 0;
        struct suki_err err = {{0}};
        int rc = suki_time_parse_rfc3339(ok[i].in, &ms, &err);
        ck_assert_msg(rc == 0, "%s rejected: %s", ok[i].in, err.msg);
        assert_time(ms, ok[i].utc, ok[i].in);
    }
    ck_assert_int_eq(T("1970-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(T("2026-11-27T10:00:00Z"), 1795773600000LL);
}
END_TEST

START_TEST(rfc3339_bad)
{
    static const struct {
        const char *in;
        const char *reason; /* substring of the message */
    } bad[] = {
        {"", "empty"},
        {"2026-02-30T10:00:00Z", "no such date 2026-02-30"},
        {"2027-02-29T10:00:00Z", "no such date 2027-02-29"},
        {"2026-04-31T10:00:00Z", "no such date"},
        {"2026-13-01T10:00:00Z", "month"},
        {"2026-00-10T10:00:00Z", "month"},
        {"2026-01-00T10:00:00Z", "no such date"},
        {"2026-11-27T25:00:00Z", "hour"},
        {"2026-11-27T24:00:00Z", "hour"},
        {"2026-11-27T10:60:00Z", "minute"},
        {"2026-11-27T10:00:61Z", "second"},
        {"2026-11-27T10:00:60Z", "second"},
        {"2026-11-27T10:00:00", "missing UTC offset"},
        {"2026-11-27T10:00:00Zjunk", "after"},
        {"2026-11-27T10:00:00+08:00 ", "after"},
        {"2026-11-27T10:00:00+0800", "offset"},
        {"2026-11-27T10:00:00+8:00", "offset"},
        {"2026-11-27T10:00:00+24:00", "offset"},
        {"2026-11-27T10:00:00+08:60", "offset"},
        {"2026-11-27T10:00:00.Z", "fraction"},
        {"2026-11-27 10:00:00Z", "T"},
        {"2026-11-27", "T"},
        {"2026-11-27T10:00Z", "time"},
        {"26-11-27T10:00:00Z", "date"},
        {"2026/11/27T10:00:00Z", "date"},
        {"tomorrow", "date"},
        {" 2026-11-27T10:00:00Z", "date"},
        {"2026-11-27T1a:00:00Z", "time"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 0;
        struct suki_err err = {{0}};
        int rc = suki_time_parse_rfc3339(bad[i].in, &ms, &err);
        ck_assert_msg(rc == -EINVAL, "'%s' accepted", bad[i].in);
        ck_assert_msg(strstr(err.msg, bad[i].reason) != NULL,
                      "'%s': message '%s' lacks '%s'", bad[i].in, err.msg,
                      bad[i].reason);
    }
}
END_TEST

START_TEST(format_both)
{
    char buf[64];
    int64_t t = T("2026-11-27T10:00:00Z");
    suki_time_format_rfc3339(t, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2026-11-27T10:00:00Z");
    suki_time_format_rfc3339(t + 7, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2026-11-27T10:00:00.007Z");
    suki_time_format_rfc5322(t, buf, sizeof(buf));
    ck_assert_str_eq(buf, "Fri, 27 Nov 2026 10:00:00 +0000");
    suki_time_format_rfc5322(T("2028-02-29T23:05:09.999+08:00"), buf,
                             sizeof(buf));
    ck_assert_str_eq(buf, "Tue, 29 Feb 2028 15:05:09 +0000");
    suki_time_format_rfc3339(-1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
    /* round trip across a span of instants */
    for (int64_t ms = -86400000LL * 400; ms < 86400000LL * 40000;
         ms += 86400000LL * 37 + 3723001) {
        int64_t back = 0;
        struct suki_err err = {{0}};
        suki_time_format_rfc3339(ms, buf, sizeof(buf));
        ck_assert_int_eq(suki_time_parse_rfc3339(buf, &back, &err), 0);
        ck_assert_int_eq(back, ms);
    }
}
END_TEST

START_TEST(date_and_hhmm)
{
    int y, m, d, hh, mm;
    ck_assert_int_eq(suki_time_parse_date("2028-02-29", &y, &m, &d), 0);
    ck_assert_int_eq(y, 2028);
    ck_assert_int_eq(m, 2);
    ck_assert_int_eq(d, 29);
    static const char *bad_dates[] = {"2027-02-29", "2026-1-01",  "2026-01-01x",
                                      "",           "2026-13-01", "20260101",
                                      "2026-01-32"};
    for (size_t i = 0; i < sizeof(bad_dates) / sizeof(bad_dates[0]); i++)
        ck_assert_msg(suki_time_parse_date(bad_dates[i], &y, &m, &d) == -EINVAL,
                      "date '%s' accepted", bad_dates[i]);
    ck_assert_int_eq(suki_time_parse_hhmm("09:00", &hh, &mm), 0);
    ck_assert_int_eq(hh, 9);
    ck_assert_int_eq(mm, 0);
    ck_assert_int_eq(suki_time_parse_hhmm("23:59", &hh, &mm), 0);
    ck_assert_int_eq(hh, 23);
    ck_assert_int_eq(mm, 59);
    static const char *bad_hm[] = {"24:00", "9:00",   "09:60", "0900",
                                   "",      "09:00 ", "ab:cd", "09:0"};
    for (size_t i = 0; i < sizeof(bad_hm) / sizeof(bad_hm[0]); i++)
        ck_assert_msg(suki_time_parse_hhmm(bad_hm[i], &hh, &mm) == -EINVAL,
                      "hh:mm '%s' accepted", bad_hm[i]);
}
END_TEST

/* ---------------------------------------------------------------- */

START_TEST(zones_valid)
{
    ck_assert(suki_tz_valid("UTC"));
    ck_assert(suki_tz_valid("Asia/Manila"));
    ck_assert(suki_tz_valid("America/New_York"));
    ck_assert(suki_tz_valid("Europe/London"));
    static const char *bad[] = {"Mars/Olympus_Mons",
                                "",
                                "asia/manila_x",
                                "../../etc/passwd",
                                "/etc/localtime",
                                "Asia/../Asia/Manila",
                                "EST+5",
                                "Asia",
                                "right/UTC",
                                "America/New York"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!suki_tz_valid(bad[i]), "zone '%s' accepted", bad[i]);
    ck_assert(!suki_tz_valid(NULL));

    struct suki_tm tm;
    int64_t ms = 0;
    ck_assert_int_eq(suki_time_to_local(0, "Mars/Olympus_Mons", &tm), -EINVAL);
    memset(&tm, 0, sizeof(tm));
    tm.year = 2026;
    tm.mon = 1;
    tm.mday = 1;
    ck_assert_int_eq(suki_time_from_local(&tm, "Nowhere/City", &ms), -EINVAL);
    ck_assert_int_eq(suki_time_from_local(&tm, "UTC", &ms), 0);
    tm.mday = 32;
    ck_assert_int_eq(suki_time_from_local(&tm, "UTC", &ms), -EINVAL);
}
END_TEST

START_TEST(to_local_table)
{
    static const struct {
        const char *utc, *tz;
        int y, mo, d, h, mi, wday, off;
    } cases[] = {
        {"2026-11-27T02:00:00Z", "Asia/Manila", 2026, 11, 27, 10, 0, 5, 28800},
        {"2026-07-01T16:30:00Z", "Asia/Manila", 2026, 7, 2, 0, 30, 4, 28800},
        {"2027-03-12T20:00:00Z", "America/New_York", 2027, 3, 12, 15, 0, 5,
         -18000},
        {"2027-03-15T13:00:00Z", "America/New_York", 2027, 3, 15, 9, 0, 1,
         -14400},
        /* the instants either side of the 2027 spring-forward */
        {"2027-03-14T06:59:59Z", "America/New_York", 2027, 3, 14, 1, 59, 0,
         -18000},
        {"2027-03-14T07:00:00Z", "America/New_York", 2027, 3, 14, 3, 0, 0,
         -14400},
        {"2026-11-01T05:59:59Z", "America/New_York", 2026, 11, 1, 1, 59, 0,
         -14400},
        {"2026-11-01T06:00:00Z", "America/New_York", 2026, 11, 1, 1, 0, 0,
         -18000},
        {"2026-03-29T01:00:00Z", "Europe/London", 2026, 3, 29, 2, 0, 0, 3600},
        {"2026-04-04T15:59:59Z", "Australia/Sydney", 2026, 4, 5, 2, 59, 0,
         39600},
        {"2026-04-04T16:00:00Z", "Australia/Sydney", 2026, 4, 5, 2, 0, 0,
         36000},
        {"2026-06-01T00:00:00Z", "UTC", 2026, 6, 1, 0, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct suki_tm tm;
        ck_assert_int_eq(suki_time_to_local(T(cases[i].utc), cases[i].tz, &tm),
                         0);
        ck_assert_msg(tm.year == cases[i].y && tm.mon == cases[i].mo &&
                          tm.mday == cases[i].d && tm.hour == cases[i].h &&
                          tm.min == cases[i].mi && tm.wday == cases[i].wday &&
                          tm.utc_offset_s == cases[i].off,
                      "%s in %s: got %04d-%02d-%02d %02d:%02d wday %d off %d",
                      cases[i].utc, cases[i].tz, tm.year, tm.mon, tm.mday,
                      tm.hour, tm.min, tm.wday, tm.utc_offset_s);
    }
}
END_TEST

START_TEST(from_local_table)
{
    static const struct {
        int y, mo, d, h, mi;
        const char *tz, *utc;
    } cases[] = {
        {2026, 11, 27, 10, 0, "Asia/Manila", "2026-11-27T02:00:00Z"},
        {2026, 1, 1, 3, 0, "Asia/Manila", "2025-12-31T19:00:00Z"},
        {2027, 3, 15, 9, 0, "America/New_York", "2027-03-15T13:00:00Z"},
        {2027, 1, 15, 9, 0, "America/New_York", "2027-01-15T14:00:00Z"},
        /* DST gap: 02:30 does not exist, moved forward by the jump */
        {2027, 3, 14, 2, 30, "America/New_York", "2027-03-14T07:30:00Z"},
        {2027, 3, 14, 2, 0, "America/New_York", "2027-03-14T07:00:00Z"},
        {2027, 3, 14, 3, 0, "America/New_York", "2027-03-14T07:00:00Z"},
        /* DST overlap: 01:30 happens twice, the earlier (EDT) one wins */
        {2026, 11, 1, 1, 30, "America/New_York", "2026-11-01T05:30:00Z"},
        {2026, 11, 1, 0, 59, "America/New_York", "2026-11-01T04:59:00Z"},
        {2026, 11, 1, 2, 0, "America/New_York", "2026-11-01T07:00:00Z"},
        {2026, 3, 29, 1, 30, "Europe/London", "2026-03-29T01:30:00Z"},
        {2026, 10, 25, 1, 30, "Europe/London", "2026-10-25T00:30:00Z"},
        {2026, 6, 1, 12, 0, "UTC", "2026-06-01T12:00:00Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct suki_tm tm = {0};
        tm.year = cases[i].y;
        tm.mon = cases[i].mo;
        tm.mday = cases[i].d;
        tm.hour = cases[i].h;
        tm.min = cases[i].mi;
        int64_t ms = 0;
        ck_assert_int_eq(suki_time_from_local(&tm, cases[i].tz, &ms), 0);
        char what[80];
        snprintf(what, sizeof(what), "%04d-%02d-%02d %02d:%02d %s", tm.year,
                 tm.mon, tm.mday, tm.hour, tm.min, cases[i].tz);
        assert_time(ms, cases[i].utc, what);
    }
    /* the gap result reads back as 03:30 EDT */
    struct suki_tm lt;
    ck_assert_int_eq(
        suki_time_to_local(T("2027-03-14T07:30:00Z"), "America/New_York", &lt),
        0);
    ck_assert_int_eq(lt.hour, 3);
    ck_assert_int_eq(lt.min, 30);
    ck_assert_int_eq(lt.utc_offset_s, -14400);
}
END_TEST

/* The cached offsets must agree with glibc's localtime_r on the system tz
 * database (the same check that found libical's builtin zones losing DST
 * seasons of America/Sao_Paulo, Asia/Tehran and Asia/Gaza). Zones alternate
 * between lookups, as they do per client in the daemon. */
START_TEST(zones_agree_with_glibc)
{
    static const char *zones[] = {
        "America/New_York",  "Asia/Manila", "Europe/London", "Australia/Sydney",
        "America/Sao_Paulo", "Asia/Tehran", "Asia/Gaza",     "Pacific/Auckland",
        "Africa/Casablanca", "Asia/Kolkata"};
    const size_t nz = sizeof(zones) / sizeof(zones[0]);
    const time_t from = 1199145600; /* 2008-01-01 */
    const time_t to = 1988150400;   /* 2033-01-01 */
    const time_t step = 7 * 3600 + 13 * 60 + 7;
    /* reference offsets, one zone at a time */
    size_t n = (size_t)((to - from) / step) + 1;
    int *ref = malloc(n * nz * sizeof(*ref));
    ck_assert_ptr_nonnull(ref);
    for (size_t z = 0; z < nz; z++) {
        char tzv[64];
        snprintf(tzv, sizeof(tzv), ":%s", zones[z]);
        setenv("TZ", tzv, 1);
        tzset();
        for (size_t k = 0; k < n; k++) {
            time_t t = from + (time_t)k * step;
            struct tm tm;
            localtime_r(&t, &tm);
            ref[k * nz + z] = (int)tm.tm_gmtoff;
        }
    }
    unsetenv("TZ");
    tzset();
    size_t mismatches = 0;
    for (size_t k = 0; k < n; k++) {
        for (size_t z = 0; z < nz; z++) {
            struct suki_tm tm;
            int64_t ms = (int64_t)(from + (time_t)k * step) * 1000;
            ck_assert_int_eq(suki_time_to_local(ms, zones[z], &tm), 0);
            if (tm.utc_offset_s != ref[k * nz + z] && mismatches++ < 5)
                fprintf(stderr, "%s at %lld: %d vs glibc %d\n", zones[z],
                        (long long)ms, tm.utc_offset_s, ref[k * nz + z]);
        }
    }
    free(ref);
    ck_assert_uint_eq(mismatches, 0);
    /* TZ of the process is left as it was */
    setenv("TZ", "Europe/Berlin", 1);
    struct suki_tm tm;
    ck_assert_int_eq(
        suki_time_to_local(T("2031-07-01T00:00:00Z"), "America/Sao_Paulo", &tm),
        0);
    ck_assert_str_eq(getenv("TZ"), "Europe/Berlin");
    unsetenv("TZ");
}
END_TEST

/* ---------------------------------------------------------------- */

START_TEST(business_days_table)
{
    static const struct {
        const char *from, *tz;
        int n;
        const char *want;
    } cases[] = {
        /* Friday + 1 = Monday, same local time, DST began on Sunday */
        {"2027-03-12T15:00:00-05:00", "America/New_York", 1,
         "2027-03-15T19:00:00Z"},
        {"2026-11-27T10:00:00+08:00", "Asia/Manila", 1, "2026-11-30T02:00:00Z"},
        {"2026-11-27T10:00:00+08:00", "Asia/Manila", 5, "2026-12-04T02:00:00Z"},
        {"2026-11-23T10:00:00+08:00", "Asia/Manila", 3, "2026-11-26T02:00:00Z"},
        /* a weekend trigger: Saturday + 1 = Monday, Sunday + 1 = Monday */
        {"2026-11-28T10:00:00+08:00", "Asia/Manila", 1, "2026-11-30T02:00:00Z"},
        {"2026-11-29T23:30:00+08:00", "Asia/Manila", 1, "2026-11-30T15:30:00Z"},
        {"2026-11-28T10:00:00+08:00", "Asia/Manila", 2, "2026-12-01T02:00:00Z"},
        /* 0 is t unchanged, even on a weekend */
        {"2026-11-28T10:00:00+08:00", "Asia/Manila", 0, "2026-11-28T02:00:00Z"},
        /* backwards: Monday - 1 = Friday */
        {"2026-11-30T10:00:00+08:00", "Asia/Manila", -1,
         "2026-11-27T02:00:00Z"},
        /* the local date, not the UTC one, decides the weekday: Friday
         * 2026-11-27 20:00Z is Saturday 04:00 in Manila */
        {"2026-11-27T20:00:00Z", "Asia/Manila", 1, "2026-11-29T20:00:00Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t r = suki_time_add_business_days(T(cases[i].from), cases[i].n,
                                                cases[i].tz, NULL);
        char what[96];
        snprintf(what, sizeof(what), "%s %+d bd in %s", cases[i].from,
                 cases[i].n, cases[i].tz);
        assert_time(r, cases[i].want, what);
    }
}
END_TEST

START_TEST(friday_plus_one_then_nine)
{
    /* the shape of a follow-up rule: +1 business day, then 09:00 local */
    int64_t t = T("2027-03-12T15:00:00-05:00");
    int64_t d = suki_time_add_business_days(t, 1, "America/New_York", NULL);
    int64_t at = suki_time_on_local_date(d, 9, 0, "America/New_York");
    assert_time(at, "2027-03-15T13:00:00Z", "NY Fri+1bd@09:00");

    t = T("2026-11-27T16:45:00+08:00");
    d = suki_time_add_business_days(t, 1, "Asia/Manila", NULL);
    at = suki_time_on_local_date(d, 9, 0, "Asia/Manila");
    assert_time(at, "2026-11-30T01:00:00Z", "Manila Fri+1bd@09:00");
}
END_TEST

START_TEST(add_days_table)
{
    /* calendar days keep the local time across DST */
    assert_time(suki_time_add_days(T("2027-03-13T15:00:00-05:00"), 1,
                                   "America/New_York"),
                "2027-03-14T19:00:00Z", "NY +1d over spring-forward");
    assert_time(suki_time_add_days(T("2026-10-31T09:00:00-04:00"), 1,
                                   "America/New_York"),
                "2026-11-01T14:00:00Z", "NY +1d over fall-back");
    assert_time(
        suki_time_add_days(T("2026-11-27T10:00:00+08:00"), 30, "Asia/Manila"),
        "2026-12-27T02:00:00Z", "Manila +30d");
    assert_time(
        suki_time_add_days(T("2028-02-28T10:00:00+08:00"), 1, "Asia/Manila"),
        "2028-02-29T02:00:00Z", "leap day");
    assert_time(
        suki_time_add_days(T("2026-11-27T10:00:00+08:00"), -27, "Asia/Manila"),
        "2026-10-31T02:00:00Z", "Manila -27d");
    /* landing inside the gap moves forward */
    assert_time(suki_time_add_days(T("2027-03-13T02:30:00-05:00"), 1,
                                   "America/New_York"),
                "2027-03-14T07:30:00Z", "NY +1d into the gap");
}
END_TEST

START_TEST(at_local_table)
{
    static const struct {
        const char *from, *tz;
        int hh, mm;
        const char *want;
    } cases[] = {
        /* later the same day */
        {"2026-11-27T07:00:00+08:00", "Asia/Manila", 9, 0,
         "2026-11-27T01:00:00Z"},
        /* at_local earlier than the trigger's local time -> next day */
        {"2026-11-27T10:00:00+08:00", "Asia/Manila", 9, 0,
         "2026-11-28T01:00:00Z"},
        /* exactly hh:mm is >= t */
        {"2026-11-27T09:00:00+08:00", "Asia/Manila", 9, 0,
         "2026-11-27T01:00:00Z"},
        {"2026-11-27T09:00:00.001+08:00", "Asia/Manila", 9, 0,
         "2026-11-28T01:00:00Z"},
        /* the local date counts: 2026-11-27 20:00Z is 04:00 on the 28th */
        {"2026-11-27T20:00:00Z", "Asia/Manila", 9, 0, "2026-11-28T01:00:00Z"},
        /* next day after the spring-forward: EDT */
        {"2027-03-13T10:00:00-05:00", "America/New_York", 9, 0,
         "2027-03-14T13:00:00Z"},
        /* hh:mm inside the gap moves forward */
        {"2027-03-14T00:00:00-05:00", "America/New_York", 2, 30,
         "2027-03-14T07:30:00Z"},
        /* overlap: after the first 01:30 the second one (EST) is next */
        {"2026-11-01T01:45:00-04:00", "America/New_York", 1, 30,
         "2026-11-01T06:30:00Z"},
        {"2026-11-01T00:10:00-04:00", "America/New_York", 1, 30,
         "2026-11-01T05:30:00Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t r = suki_time_at_local(T(cases[i].from), cases[i].hh,
                                       cases[i].mm, cases[i].tz);
        char what[96];
        snprintf(what, sizeof(what), "%s at %02d:%02d %s", cases[i].from,
                 cases[i].hh, cases[i].mm, cases[i].tz);
        assert_time(r, cases[i].want, what);
    }
    /* on_local_date may go back in time */
    assert_time(suki_time_on_local_date(T("2026-11-27T10:00:00+08:00"), 9, 0,
                                        "Asia/Manila"),
                "2026-11-27T01:00:00Z", "on_local_date earlier");
}
END_TEST

/* ---------------------------------------------------------------- */

START_TEST(holidays_plain)
{
    struct suki_err err = {{0}};
    struct suki_holidays *h = suki_holidays_load(FIXTURE("holidays.txt"), &err);
    ck_assert_msg(h != NULL, "%s", err.msg);
    ck_assert(suki_holidays_has(h, 2027, 1, 1));
    ck_assert(suki_holidays_has(h, 2027, 4, 9));
    ck_assert(suki_holidays_has(h, 2027, 6, 12));
    ck_assert(suki_holidays_has(h, 2027, 12, 30));
    ck_assert(!suki_holidays_has(h, 2027, 12, 31));
    ck_assert(!suki_holidays_has(h, 2026, 1, 1));
    ck_assert(!suki_holidays_has(NULL, 2027, 1, 1));

    /* Wed + 1: Thursday 12-30 is a holiday -> Friday 12-31 */
    int64_t t = T("2027-12-29T10:00:00+08:00");
    assert_time(suki_time_add_business_days(t, 1, "Asia/Manila", h),
                "2027-12-31T02:00:00Z", "holiday skipped");
    assert_time(suki_time_add_business_days(t, 1, "Asia/Manila", NULL),
                "2027-12-30T02:00:00Z", "no calendar");
    /* from a holiday (Friday 2027-01-01) the first working day counts 1 */
    assert_time(suki_time_add_business_days(T("2027-01-01T10:00:00+08:00"), 1,
                                            "Asia/Manila", h),
                "2027-01-04T02:00:00Z", "from a holiday");
    /* Thursday 04-08 + 1: Friday is a holiday, then the weekend */
    assert_time(suki_time_add_business_days(T("2027-04-08T10:00:00+08:00"), 1,
                                            "Asia/Manila", h),
                "2027-04-12T02:00:00Z", "holiday before weekend");
    suki_holidays_free(h);
}
END_TEST

START_TEST(holidays_bad_line)
{
    struct suki_err err = {{0}};
    struct suki_holidays *h =
        suki_holidays_load(FIXTURE("holidays-bad.txt"), &err);
    ck_assert_ptr_null(h);
    char want[512];
    snprintf(want, sizeof(want), "%s:4: bad date \"2027-02-30\"",
             FIXTURE("holidays-bad.txt"));
    ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "got '%s'",
                  err.msg);

    err.msg[0] = '\0';
    ck_assert_ptr_null(suki_holidays_load(FIXTURE("no-such-file.txt"), &err));
    ck_assert(err.msg[0] != '\0');
}
END_TEST

START_TEST(holidays_ics)
{
    struct suki_err err = {{0}};
    struct suki_holidays *h = suki_holidays_load(FIXTURE("holidays.ics"), &err);
    ck_assert_msg(h != NULL, "%s", err.msg);
    ck_assert(suki_holidays_has(h, 2027, 1, 1));
    /* all-day event over two days (DTEND exclusive) */
    ck_assert(suki_holidays_has(h, 2027, 3, 25));
    ck_assert(suki_holidays_has(h, 2027, 3, 26));
    ck_assert(!suki_holidays_has(h, 2027, 3, 27));
    /* yearly rule, three occurrences, 2027 excluded */
    ck_assert(suki_holidays_has(h, 2026, 12, 25));
    ck_assert(!suki_holidays_has(h, 2027, 12, 25));
    ck_assert(suki_holidays_has(h, 2028, 12, 25));
    ck_assert(!suki_holidays_has(h, 2029, 12, 25));
    /* a timed event counts for its date */
    ck_assert(suki_holidays_has(h, 2027, 6, 14));
    ck_assert(!suki_holidays_has(h, 2027, 6, 15));

    /* Wednesday 03-24 + 1: Thursday and Friday off -> Monday 03-29 */
    assert_time(suki_time_add_business_days(T("2027-03-24T10:00:00+08:00"), 1,
                                            "Asia/Manila", h),
                "2027-03-29T02:00:00Z", "ics holidays skipped");
    suki_holidays_free(h);
}
END_TEST

static Suite *timeutil_suite(void)
{
    Suite *s = suite_create("timeutil");
    TCase *tc = tcase_create("rfc3339");
    tcase_add_test(tc, rfc3339_good);
    tcase_add_test(tc, rfc3339_bad);
    tcase_add_test(tc, format_both);
    tcase_add_test(tc, date_and_hhmm);
    suite_add_tcase(s, tc);

    tc = tcase_create("zones");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, zones_valid);
    tcase_add_test(tc, to_local_table);
    tcase_add_test(tc, from_local_table);
    tcase_add_test(tc, zones_agree_with_glibc);
    suite_add_tcase(s, tc);

    tc = tcase_create("days");
    tcase_add_test(tc, business_days_table);
    tcase_add_test(tc, friday_plus_one_then_nine);
    tcase_add_test(tc, add_days_table);
    tcase_add_test(tc, at_local_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("holidays");
    tcase_add_test(tc, holidays_plain);
    tcase_add_test(tc, holidays_bad_line);
    tcase_add_test(tc, holidays_ics);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(timeutil_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
