/* timeutil.h - RFC 3339, IANA time zones (DST-correct), business days and
 * holidays. Pure functions: no I/O except suki_holidays_load(). */
#ifndef SUKI_TIMEUTIL_H
#define SUKI_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Broken-down local time. */
struct suki_tm {
    int year, mon, mday; /* mon 1..12, mday 1..31 */
    int hour, min, sec;  /* 0..23, 0..59, 0..60 */
    int ms;              /* 0..999 */
    int wday;            /* 0 = Sunday (output only) */
    int utc_offset_s;    /* offset of this local time from UTC (output) */
};

/* Strict RFC 3339 date-time with "Z" or "+hh:mm"/"-hh:mm" (fraction
 * allowed, truncated to ms). Rejects impossible dates (2026-02-30) and
 * out-of-range fields. Returns 0 or -EINVAL with err filled. */
int suki_time_parse_rfc3339(const char *s, int64_t *ms, struct suki_err *err);

/* "YYYY-MM-DD" alone. Returns 0 or -EINVAL. */
int suki_time_parse_date(const char *s, int *year, int *mon, int *mday);

/* Format as RFC 3339 UTC with Z: "2026-11-27T10:00:00Z" (".123" added only
 * when ms is not whole seconds). buf should be >= 32 bytes. */
void suki_time_format_rfc3339(int64_t ms, char *buf, size_t len);

/* RFC 5322 Date header value in UTC: "Fri, 27 Nov 2026 10:00:00 +0000". */
void suki_time_format_rfc5322(int64_t ms, char *buf, size_t len);

/* True when tz names a zone of the system tz database ("UTC" always). */
bool suki_tz_valid(const char *tz);

/* UTC instant -> local time in tz. Returns 0 or -EINVAL (unknown zone). */
int suki_time_to_local(int64_t ms, const char *tz, struct suki_tm *out);

/* Local time in tz -> UTC instant. A local time skipped by a DST jump is
 * moved forward by the jump; an ambiguous one takes the earlier instant.
 * Returns 0 or -EINVAL. */
int suki_time_from_local(const struct suki_tm *lt, const char *tz, int64_t *ms);

/* Holiday calendar: one ISO date per line ("2026-12-25", '#' comments), or
 * an iCalendar (.ics) file whose VEVENTs' DTSTART dates are holidays. */
struct suki_holidays;
struct suki_holidays *suki_holidays_load(const char *path,
                                         struct suki_err *err);
void suki_holidays_free(struct suki_holidays *h);
bool suki_holidays_has(const struct suki_holidays *h, int year, int mon,
                       int mday);

/* t + n calendar days in tz, keeping the local time of day. */
int64_t suki_time_add_days(int64_t t_ms, int n, const char *tz);
/* t + n working days (Mon-Fri, not in h; h may be NULL), keeping the local
 * time of day. From a weekend or holiday, the first working day counts as
 * 1. n = 0 returns t unchanged. */
int64_t suki_time_add_business_days(int64_t t_ms, int n, const char *tz,
                                    const struct suki_holidays *h);
/* The first instant >= t whose local time in tz is hh:mm. */
int64_t suki_time_at_local(int64_t t_ms, int hh, int mm, const char *tz);
/* hh:mm on t's local date in tz (may be earlier than t). */
int64_t suki_time_on_local_date(int64_t t_ms, int hh, int mm, const char *tz);

/* Parse "HH:MM" (00:00..23:59). Returns 0 or -EINVAL. */
int suki_time_parse_hhmm(const char *s, int *hh, int *mm);

#endif
