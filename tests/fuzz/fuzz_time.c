/* fuzz_time.c - the text parsers of durations, rates, dates and times
 * (util.c, timeutil.c) on the input as a string, plus their formatters on
 * the input's first bytes as a number.
 *
 * Properties: whatever a parser accepts is in the range its header gives,
 * and formatting it parses back to the same value (the daemon writes
 * durations and instants it has parsed into logs, Redis and job
 * documents, and reads them back). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DUR_MAX (100LL * 366 * 86400 * 1000) /* util.c's bound */
/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the instants an
 * RFC 3339 text (four-digit year) can name. */
#define T_MIN (-62167219200000LL)
#define T_MAX (253402300799999LL)

static void duration_back(int64_t ms, const char *from)
{
    char buf[64];
    int64_t back = -1;
    struct suki_err err = {{0}};
    suki_format_duration(ms, buf, sizeof(buf));
    if (suki_parse_duration(buf, &back, &err) != 0 || back != ms)
        FAIL("duration %" PRId64 " (from \"%s\") formats as \"%s\" which "
             "parses as %" PRId64 " (%s)",
             ms, from, buf, back, err.msg);
}

static void instant_back(int64_t ms, const char *from)
{
    char buf[64], b5322[64];
    int64_t back = 0;
    struct suki_err err = {{0}};
    suki_time_format_rfc3339(ms, buf, sizeof(buf));
    if (suki_time_parse_rfc3339(buf, &back, &err) != 0 || back != ms)
        FAIL("instant %" PRId64 " (from \"%s\") formats as \"%s\" which "
             "parses as %" PRId64 " (%s)",
             ms, from, buf, back, err.msg);
    /* the Date: header is a fixed-width line: 31 bytes for 4-digit years */
    suki_time_format_rfc5322(ms, b5322, sizeof(b5322));
    if (strlen(b5322) != 31)
        FAIL("RFC 5322 date of %" PRId64 " is \"%s\"", ms, b5322);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = suki_strndup((const char *)data, size); /* stops at a NUL */
    struct suki_err err = {{0}};
    int64_t ms;
    double rate;
    int a, b, c;
    char buf[64];

    if (suki_parse_duration(s, &ms, &err) == 0) {
        if (ms < 0 || ms > DUR_MAX)
            FAIL("duration \"%s\" = %" PRId64 " out of range", s, ms);
        duration_back(ms, s);
    } else if (!err.msg[0]) {
        FAIL("duration \"%s\" refused without a reason", s);
    }

    err.msg[0] = '\0';
    if (suki_parse_rate(s, &rate, &err) == 0) {
        if (!isfinite(rate) || rate <= 0 || rate > 1e8)
            FAIL("rate \"%s\" = %g out of range", s, rate);
    } else if (!err.msg[0]) {
        FAIL("rate \"%s\" refused without a reason", s);
    }

    err.msg[0] = '\0';
    if (suki_time_parse_rfc3339(s, &ms, &err) == 0) {
        /* a UTC offset may push the instant just past the 4-digit years;
         * within them it must read back */
        if (ms >= T_MIN && ms <= T_MAX)
            instant_back(ms, s);
    } else if (!err.msg[0]) {
        FAIL("date-time \"%s\" refused without a reason", s);
    }

    if (suki_time_parse_date(s, &a, &b, &c) == 0) {
        snprintf(buf, sizeof(buf), "%04d-%02d-%02d", a, b, c);
        if (strcmp(buf, s) != 0)
            FAIL("date \"%s\" read as %s", s, buf);
    }
    if (suki_time_parse_hhmm(s, &a, &b) == 0) {
        snprintf(buf, sizeof(buf), "%02d:%02d", a, b);
        if (strcmp(buf, s) != 0 || a > 23 || b > 59)
            FAIL("time \"%s\" read as %s", s, buf);
    }

    /* the first 8 bytes as a number, folded into the formatters' domains */
    if (size >= 8) {
        int64_t v;
        memcpy(&v, data, sizeof(v));
        uint64_t u = (uint64_t)v;
        duration_back((int64_t)(u % (uint64_t)DUR_MAX) + 1, "bytes");
        instant_back(T_MIN + (int64_t)(u % (uint64_t)(T_MAX - T_MIN + 1)),
                     "bytes");
    }
    free(s);
    return 0;
}
