/* timeutil.c - RFC 3339 / RFC 5322 dates, IANA time zones, business days and
 * holiday calendars. See timeutil.h for the contract.
 *
 * Time zones come from glibc (TZ=":Zone" + localtime_r), not from libical:
 * libical 3.0.16's builtin zones, built from this machine's
 * /usr/share/zoneinfo, drop whole DST seasons (America/Sao_Paulo 2014-15,
 * Asia/Tehran 2002 and 2018-19, Asia/Gaza 2017 are off by an hour against
 * localtime_r), so we read each zone's transitions from glibc once per (zone,
 * year) and cache them; after the first lookup an offset costs a hash probe and
 * a short scan, even when zones alternate. The cache is process-global and not
 * thread-safe (the daemon has one thread). libical is still used to parse .ics
 * holiday files.
 *
 * Calendar arithmetic (days <-> civil date) is the well-known proleptic
 * Gregorian formula; no packaged library offers it without time_t/TZ side
 * effects. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libical/ical.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "timeutil.h"

#define MS_PER_DAY 86400000LL
#define HOLIDAYS_MAX_FILE (4 * 1024 * 1024)

/* ------------------------------------------------------------------ */
/* Civil calendar */

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static int64_t floormod(int64_t a, int64_t b)
{
    return a - floordiv(a, b) * b;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floordiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floordiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && is_leap(y))
        return 29;
    return dim[m - 1];
}

/* 0 = Sunday */
static int weekday(int64_t days)
{
    return (int)floormod(days + 4, 7);
}

/* Broken-down fields of a "naive" ms count (UTC or already shifted). */
static void split_ms(int64_t ms, struct suki_tm *tm)
{
    int64_t days = floordiv(ms, MS_PER_DAY);
    int64_t rem = ms - days * MS_PER_DAY;
    civil_from_days(days, &tm->year, &tm->mon, &tm->mday);
    tm->hour = (int)(rem / 3600000);
    tm->min = (int)(rem / 60000 % 60);
    tm->sec = (int)(rem / 1000 % 60);
    tm->ms = (int)(rem % 1000);
    tm->wday = weekday(days);
}

/* ------------------------------------------------------------------ */
/* RFC 3339 / RFC 5322 */

static bool take_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_ymd(const char *s, int *y, int *m, int *d)
{
    return take_digits(s, 4, y) && s[4] == '-' && take_digits(s + 5, 2, m) &&
           s[7] == '-' && take_digits(s + 8, 2, d);
}

/* Parse a strict RFC 3339 date-time; see timeutil.h. */
int suki_time_parse_rfc3339(const char *s, int64_t *ms, struct suki_err *err)
{
    static const char want[] = "want e.g. 2026-11-27T10:00:00+08:00";
    int y, mo, d, h, mi, se;
    if (!s || !*s)
        return suki_err_set(err, -EINVAL, "empty date-time");
    if (!parse_ymd(s, &y, &mo, &d))
        return suki_err_set(err, -EINVAL, "not an RFC 3339 date (%s)", want);
    if (s[10] != 'T' && s[10] != 't')
        return suki_err_set(err, -EINVAL, "missing 'T' and time (%s)", want);
    if (!take_digits(s + 11, 2, &h) || s[13] != ':' ||
        !take_digits(s + 14, 2, &mi) || s[16] != ':' ||
        !take_digits(s + 17, 2, &se))
        return suki_err_set(err, -EINVAL, "not an RFC 3339 time (%s)", want);
    if (mo < 1 || mo > 12)
        return suki_err_set(err, -EINVAL, "month out of range");
    if (d < 1 || d > days_in_month(y, mo))
        return suki_err_set(err, -EINVAL, "no such date %04d-%02d-%02d", y, mo,
                            d);
    if (h > 23)
        return suki_err_set(err, -EINVAL, "hour out of range");
    if (mi > 59)
        return suki_err_set(err, -EINVAL, "minute out of range");
    /* A leap second (:60, only at minute 59) folds into the next second as
     * POSIX time does; epoch milliseconds cannot represent it. */
    if (se > 60 || (se == 60 && mi != 59))
        return suki_err_set(err, -EINVAL, "second out of range");
    const char *p = s + 19;
    int frac = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return suki_err_set(err, -EINVAL, "empty fraction of a second");
        int scale = 100;
        while (*p >= '0' && *p <= '9') {
            frac += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    int off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        if (!take_digits(p + 1, 2, &oh) || p[3] != ':' ||
            !take_digits(p + 4, 2, &om))
            return suki_err_set(err, -EINVAL,
                                "bad UTC offset (want Z or +hh:mm)");
        if (oh > 23 || om > 59)
            return suki_err_set(err, -EINVAL, "UTC offset out of range");
        off_s = sign * (oh * 3600 + om * 60);
        p += 6;
    } else if (*p == '\0') {
        return suki_err_set(err, -EINVAL, "missing UTC offset (Z or +hh:mm)");
    } else {
        return suki_err_set(err, -EINVAL, "bad UTC offset (want Z or +hh:mm)");
    }
    if (*p != '\0')
        return suki_err_set(err, -EINVAL, "unexpected text after date-time");
    int64_t secs =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off_s;
    *ms = secs * 1000 + frac;
    return 0;
}

/* Parse "YYYY-MM-DD"; see timeutil.h. */
int suki_time_parse_date(const char *s, int *year, int *mon, int *mday)
{
    int y, m, d;
    if (!s || strlen(s) != 10 || !parse_ymd(s, &y, &m, &d))
        return -EINVAL;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -EINVAL;
    *year = y;
    *mon = m;
    *mday = d;
    return 0;
}

/* Parse "HH:MM"; see timeutil.h. */
int suki_time_parse_hhmm(const char *s, int *hh, int *mm)
{
    int h, m;
    if (!s || strlen(s) != 5 || !take_digits(s, 2, &h) || s[2] != ':' ||
        !take_digits(s + 3, 2, &m) || h > 23 || m > 59)
        return -EINVAL;
    *hh = h;
    *mm = m;
    return 0;
}

/* Format as RFC 3339 UTC; see timeutil.h. */
void suki_time_format_rfc3339(int64_t ms, char *buf, size_t len)
{
    struct suki_tm tm;
    split_ms(ms, &tm);
    if (tm.ms)
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.year,
                 tm.mon, tm.mday, tm.hour, tm.min, tm.sec, tm.ms);
    else
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.year, tm.mon,
                 tm.mday, tm.hour, tm.min, tm.sec);
}

/* Format as an RFC 5322 Date value in UTC; see timeutil.h. */
void suki_time_format_rfc5322(int64_t ms, char *buf, size_t len)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};
    static const char *const mn[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct suki_tm tm;
    split_ms(ms, &tm);
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.wday],
             tm.mday, mn[tm.mon - 1], tm.year, tm.hour, tm.min, tm.sec);
}

/* ------------------------------------------------------------------ */
/* Zone cache */

#define ZC_SLOTS 128  /* open-addressing table; flushed at 3/4 */
#define ZC_YEAR0 1900 /* years cached: ZC_YEAR0 .. +ZC_NYEARS-1 */
#define ZC_NYEARS 300
#define ZY_MAX_TR 8          /* transitions kept per year */
#define ZY_STEP_S (3 * 3600) /* probe step; transitions are further apart */
#define ZONE_NAME_MAX 255

struct zyear {
    int off0;                /* offset (s) at 1 January 00:00 UTC */
    int n;                   /* transitions in tr_s/tr_off; -1 = too many */
    int64_t tr_s[ZY_MAX_TR]; /* UTC second the new offset starts */
    int tr_off[ZY_MAX_TR];   /* offset (s) from then on */
};

struct zone {
    char *name;                     /* owned */
    bool valid;                     /* names a tz database zone */
    bool utc;                       /* "UTC": offset always 0 */
    struct zyear *years[ZC_NYEARS]; /* owned, filled lazily */
};

static struct zone *zc_table[ZC_SLOTS];
static int zc_count;

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void zone_free(struct zone *z)
{
    if (!z)
        return;
    for (int i = 0; i < ZC_NYEARS; i++)
        free(z->years[i]);
    free(z->name);
    free(z);
}

static const char *tz_dir(void)
{
    const char *d = getenv("TZDIR");
    return d && *d ? d : "/usr/share/zoneinfo";
}

/* A zone name is a relative path under the tz directory naming a TZif file.
 * "right/" zones count leap seconds, which epoch milliseconds do not. */
static bool zone_file_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > ZONE_NAME_MAX || name[0] == '/' || name[0] == '.' ||
        strncmp(name, "right/", 6) == 0)
        return false;
    for (const char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("/_+-.", *p))
            return false;
        if (*p == '/' && p[1] == '.')
            return false;
    }
    char path[PATH_MAX];
    int w = snprintf(path, sizeof(path), "%s/%s", tz_dir(), name);
    if (w < 0 || (size_t)w >= sizeof(path))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    char magic[4];
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              read(fd, magic, 4) == 4 && memcmp(magic, "TZif", 4) == 0;
    close(fd);
    return ok;
}

static struct zone *zone_get(const char *name)
{
    if (!name || !*name || strlen(name) > ZONE_NAME_MAX)
        return NULL;
    uint32_t h = hash_str(name);
    for (uint32_t i = 0; i < ZC_SLOTS; i++) {
        struct zone *z = zc_table[(h + i) % ZC_SLOTS];
        if (!z)
            break;
        if (strcmp(z->name, name) == 0)
            return z;
    }
    if (zc_count >= ZC_SLOTS * 3 / 4) {
        for (int i = 0; i < ZC_SLOTS; i++) {
            zone_free(zc_table[i]);
            zc_table[i] = NULL;
        }
        zc_count = 0;
    }
    struct zone *z = suki_calloc(1, sizeof(*z));
    z->name = suki_strdup(name);
    z->utc = strcmp(name, "UTC") == 0;
    z->valid = z->utc || zone_file_ok(name);
    for (uint32_t i = 0;; i++) {
        if (!zc_table[(h + i) % ZC_SLOTS]) {
            zc_table[(h + i) % ZC_SLOTS] = z;
            break;
        }
    }
    zc_count++;
    return z;
}

/* glibc access: point TZ at the zone, ask, put TZ back. */
static char *saved_tz;
static bool saved_tz_set;

static void glibc_enter(const struct zone *z)
{
    const char *cur = getenv("TZ");
    saved_tz_set = cur != NULL;
    saved_tz = cur ? suki_strdup(cur) : NULL;
    char val[ZONE_NAME_MAX + 2];
    snprintf(val, sizeof(val), ":%s", z->name);
    setenv("TZ", val, 1);
    tzset();
}

static void glibc_leave(void)
{
    if (saved_tz_set)
        setenv("TZ", saved_tz, 1);
    else
        unsetenv("TZ");
    tzset();
    suki_sfree(saved_tz);
}

static int glibc_off(int64_t s)
{
    time_t t = (time_t)s;
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return 0;
    return (int)tm.tm_gmtoff;
}

static struct zyear *zyear_fill(const struct zone *z, int year)
{
    struct zyear *zy = suki_calloc(1, sizeof(*zy));
    int64_t start = days_from_civil(year, 1, 1) * 86400;
    int64_t last = days_from_civil(year + 1, 1, 1) * 86400 - 1;
    glibc_enter(z);
    zy->off0 = glibc_off(start);
    int prev = zy->off0;
    int64_t pt = start;
    while (pt < last) {
        int64_t t = pt + ZY_STEP_S < last ? pt + ZY_STEP_S : last;
        if (glibc_off(t) == prev) {
            pt = t;
            continue;
        }
        /* bisect (pt, t] for the first second with a new offset */
        int64_t lo = pt, hi = t;
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (glibc_off(mid) == prev)
                lo = mid;
            else
                hi = mid;
        }
        prev = glibc_off(hi);
        if (zy->n >= 0 && zy->n < ZY_MAX_TR) {
            zy->tr_s[zy->n] = hi;
            zy->tr_off[zy->n] = prev;
            zy->n++;
        } else {
            zy->n = -1;
        }
        pt = hi;
    }
    glibc_leave();
    return zy;
}

/* Offset in seconds of zone z at UTC ms (0 for UTC or an unknown zone). */
static int zone_offset(struct zone *z, int64_t ms)
{
    if (!z || !z->valid || z->utc)
        return 0;
    int64_t s = floordiv(ms, 1000);
    int y, m, d;
    civil_from_days(floordiv(s, 86400), &y, &m, &d);
    struct zyear *zy = NULL;
    if (y >= ZC_YEAR0 && y < ZC_YEAR0 + ZC_NYEARS) {
        zy = z->years[y - ZC_YEAR0];
        if (!zy) {
            zy = zyear_fill(z, y);
            z->years[y - ZC_YEAR0] = zy;
        }
    }
    if (!zy || zy->n < 0) {
        glibc_enter(z);
        int off = glibc_off(s);
        glibc_leave();
        return off;
    }
    int off = zy->off0;
    for (int i = 0; i < zy->n && s >= zy->tr_s[i]; i++)
        off = zy->tr_off[i];
    return off;
}

/* Valid zone name check; see timeutil.h. */
bool suki_tz_valid(const char *tz)
{
    struct zone *z = zone_get(tz);
    return z && z->valid;
}

/* UTC -> local; see timeutil.h. */
int suki_time_to_local(int64_t ms, const char *tz, struct suki_tm *out)
{
    struct zone *z = zone_get(tz);
    if (!z || !z->valid)
        return -EINVAL;
    int off = zone_offset(z, ms);
    split_ms(ms + off * 1000LL, out);
    out->utc_offset_s = off;
    return 0;
}

/* Instants whose local time in z is the naive local ms L: up to two (an
 * overlap), in increasing order. Returns how many; for none (a gap) *gap
 * gets L read with the offset before the jump, i.e. moved forward by it. */
static int local_candidates(struct zone *z, int64_t L, int64_t cand[2],
                            int64_t *gap)
{
    const int64_t win = 30 * 3600000LL;
    int oa = zone_offset(z, L - win);
    int ob = zone_offset(z, L + win);
    int n = 0;
    int64_t ta = L - oa * 1000LL;
    int64_t tb = L - ob * 1000LL;
    if (zone_offset(z, ta) == oa)
        cand[n++] = ta;
    if (ob != oa && zone_offset(z, tb) == ob)
        cand[n++] = tb;
    if (n == 2 && cand[1] < cand[0]) {
        int64_t t = cand[0];
        cand[0] = cand[1];
        cand[1] = t;
    }
    if (n == 0 && oa == ob) {
        /* more than one change inside the window: settle iteratively */
        int o = zone_offset(z, ta);
        int64_t t = L - o * 1000LL;
        if (zone_offset(z, t) == o)
            cand[n++] = t;
    }
    *gap = ta;
    return n;
}

static int64_t local_to_utc(struct zone *z, int64_t L)
{
    int64_t cand[2], gap;
    if (local_candidates(z, L, cand, &gap) == 0)
        return gap;
    return cand[0];
}

/* Local -> UTC; see timeutil.h. */
int suki_time_from_local(const struct suki_tm *lt, const char *tz, int64_t *ms)
{
    struct zone *z = zone_get(tz);
    if (!z || !z->valid || !lt)
        return -EINVAL;
    if (lt->mon < 1 || lt->mon > 12 || lt->mday < 1 ||
        lt->mday > days_in_month(lt->year, lt->mon) || lt->hour < 0 ||
        lt->hour > 23 || lt->min < 0 || lt->min > 59 || lt->sec < 0 ||
        lt->sec > 60 || lt->ms < 0 || lt->ms > 999)
        return -EINVAL;
    int64_t L = days_from_civil(lt->year, lt->mon, lt->mday) * MS_PER_DAY +
                (lt->hour * 3600LL + lt->min * 60 + lt->sec) * 1000 + lt->ms;
    *ms = local_to_utc(z, L);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Day arithmetic */

/* Local day number and time of day (ms) of t in z. */
static void local_day(struct zone *z, int64_t t, int64_t *day, int64_t *tod)
{
    int64_t L = t + zone_offset(z, t) * 1000LL;
    *day = floordiv(L, MS_PER_DAY);
    *tod = L - *day * MS_PER_DAY;
}

/* t + n calendar days keeping local time of day; see timeutil.h. An unknown
 * zone counts as UTC (zones are validated where they enter the system). */
int64_t suki_time_add_days(int64_t t_ms, int n, const char *tz)
{
    struct zone *z = zone_get(tz);
    int64_t day, tod;
    local_day(z, t_ms, &day, &tod);
    return local_to_utc(z, (day + n) * MS_PER_DAY + tod);
}

static bool working_day(const struct suki_holidays *h, int64_t day);

/* t + n working days keeping local time of day; see timeutil.h. Negative n
 * counts backwards the same way. Costs O(n) days. Unknown zone = UTC. */
int64_t suki_time_add_business_days(int64_t t_ms, int n, const char *tz,
                                    const struct suki_holidays *h)
{
    if (n == 0)
        return t_ms;
    struct zone *z = zone_get(tz);
    int64_t day, tod;
    local_day(z, t_ms, &day, &tod);
    int step = n > 0 ? 1 : -1;
    int64_t left = n > 0 ? n : -(int64_t)n;
    /* a calendar with every day a holiday must not loop forever */
    int64_t guard = left * 7 + 3660;
    while (left > 0 && guard-- > 0) {
        day += step;
        if (working_day(h, day))
            left--;
    }
    return local_to_utc(z, day * MS_PER_DAY + tod);
}

/* First instant >= t with local time hh:mm; see timeutil.h. A day whose
 * hh:mm is skipped by DST yields the moved-forward instant. Unknown zone =
 * UTC. */
int64_t suki_time_at_local(int64_t t_ms, int hh, int mm, const char *tz)
{
    struct zone *z = zone_get(tz);
    int64_t day, tod;
    local_day(z, t_ms, &day, &tod);
    int64_t hm = (hh * 60LL + mm) * 60000;
    for (int i = 0; i < 3; i++) {
        int64_t cand[2], gap;
        int n = local_candidates(z, (day + i) * MS_PER_DAY + hm, cand, &gap);
        if (n == 0) {
            cand[0] = gap;
            n = 1;
        }
        for (int k = 0; k < n; k++)
            if (cand[k] >= t_ms)
                return cand[k];
    }
    return local_to_utc(z, (day + 3) * MS_PER_DAY + hm);
}

/* hh:mm on t's local date; see timeutil.h. Unknown zone = UTC. */
int64_t suki_time_on_local_date(int64_t t_ms, int hh, int mm, const char *tz)
{
    struct zone *z = zone_get(tz);
    int64_t day, tod;
    local_day(z, t_ms, &day, &tod);
    return local_to_utc(z, day * MS_PER_DAY + (hh * 60LL + mm) * 60000);
}

/* ------------------------------------------------------------------ */
/* Holidays */

struct suki_holidays {
    int64_t *days; /* sorted, unique day numbers (days since 1970-01-01) */
    size_t n, cap;
};

static void hol_add(struct suki_holidays *h, int64_t day)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->days = suki_realloc(h->days, h->cap * sizeof(*h->days));
    }
    h->days[h->n++] = day;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void hol_finish(struct suki_holidays *h)
{
    if (h->n == 0)
        return;
    qsort(h->days, h->n, sizeof(*h->days), cmp_i64);
    size_t w = 1;
    for (size_t i = 1; i < h->n; i++)
        if (h->days[i] != h->days[w - 1])
            h->days[w++] = h->days[i];
    h->n = w;
}

static bool hol_has_day(const struct suki_holidays *h, int64_t day)
{
    if (!h)
        return false;
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->days[mid] == day)
            return true;
        if (h->days[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static bool working_day(const struct suki_holidays *h, int64_t day)
{
    int wd = weekday(day);
    return wd != 0 && wd != 6 && !hol_has_day(h, day);
}

static int load_plain(struct suki_holidays *h, const char *path, char *text,
                      struct suki_err *err)
{
    int line = 0;
    char *p = text;
    while (*p) {
        line++;
        char *eol = strchr(p, '\n');
        char *next = eol ? eol + 1 : p + strlen(p);
        if (eol)
            *eol = '\0';
        char *hash = strchr(p, '#');
        if (hash)
            *hash = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strlen(p);
        while (n > 0 &&
               (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
            p[--n] = '\0';
        if (n > 0) {
            int y, m, d;
            if (suki_time_parse_date(p, &y, &m, &d) != 0) {
                if (n > 40)
                    p[40] = '\0';
                return suki_err_set(err, -EINVAL,
                                    "%s:%d: bad date \"%s\" (want YYYY-MM-DD)",
                                    path, line, p);
            }
            hol_add(h, days_from_civil(y, m, d));
        }
        p = next;
    }
    return 0;
}

static bool ics_has_error(icalcomponent *c, char *msg, size_t len)
{
    icalproperty *p =
        icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY);
    if (p) {
        const char *t = icalproperty_get_xlicerror(p);
        snprintf(msg, len, "%s", t ? t : "parse error");
        return true;
    }
    for (icalcomponent *k =
             icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT);
         k; k = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT))
        if (ics_has_error(k, msg, len))
            return true;
    return false;
}

static int64_t ical_day(struct icaltimetype t)
{
    return days_from_civil(t.year, t.month, t.day);
}

/* The days one VEVENT covers: DTSTART (all-day events through DTEND),
 * repeated by an RRULE up to the year 2100, minus EXDATEs. */
static int ics_event(struct suki_holidays *h, icalcomponent *ev,
                     const char *path, struct suki_err *err)
{
    struct icaltimetype ds = icalcomponent_get_dtstart(ev);
    if (icaltime_is_null_time(ds) || !icaltime_is_valid_time(ds))
        return suki_err_set(err, -EINVAL, "%s: VEVENT without a valid DTSTART",
                            path);
    int64_t span = 1;
    struct icaltimetype de = icalcomponent_get_dtend(ev);
    if (ds.is_date && !icaltime_is_null_time(de) && de.is_date) {
        span = ical_day(de) - ical_day(ds);
        if (span < 1)
            span = 1;
        if (span > 366)
            return suki_err_set(err, -EINVAL,
                                "%s: VEVENT on %04d-%02d-%02d lasts over a "
                                "year",
                                path, ds.year, ds.month, ds.day);
    }
    size_t first = h->n;
    icalproperty *rp =
        icalcomponent_get_first_property(ev, ICAL_RRULE_PROPERTY);
    if (!rp) {
        for (int64_t i = 0; i < span; i++)
            hol_add(h, ical_day(ds) + i);
    } else {
        struct icalrecurrencetype r = icalproperty_get_rrule(rp);
        icalrecur_iterator *it = icalrecur_iterator_new(r, ds);
        if (!it)
            return suki_err_set(err, -EINVAL,
                                "%s: VEVENT on %04d-%02d-%02d has a bad RRULE",
                                path, ds.year, ds.month, ds.day);
        int count = 0;
        for (struct icaltimetype t = icalrecur_iterator_next(it);
             !icaltime_is_null_time(t) && t.year <= 2100 && count < 10000;
             t = icalrecur_iterator_next(it), count++)
            for (int64_t i = 0; i < span; i++)
                hol_add(h, ical_day(t) + i);
        icalrecur_iterator_free(it);
    }
    for (icalproperty *xp =
             icalcomponent_get_first_property(ev, ICAL_EXDATE_PROPERTY);
         xp; xp = icalcomponent_get_next_property(ev, ICAL_EXDATE_PROPERTY)) {
        int64_t x = ical_day(icalproperty_get_exdate(xp));
        size_t w = first;
        for (size_t i = first; i < h->n; i++)
            if (h->days[i] != x)
                h->days[w++] = h->days[i];
        h->n = w;
    }
    return 0;
}

static int ics_walk(struct suki_holidays *h, icalcomponent *c, const char *path,
                    struct suki_err *err)
{
    if (icalcomponent_isa(c) == ICAL_VEVENT_COMPONENT)
        return ics_event(h, c, path, err);
    for (icalcomponent *k =
             icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT);
         k; k = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT)) {
        int rc = ics_walk(h, k, path, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int load_ics(struct suki_holidays *h, const char *path, char *text,
                    struct suki_err *err)
{
    icalcomponent *root = icalparser_parse_string(text);
    if (!root)
        return suki_err_set(err, -EINVAL, "%s: not an iCalendar file", path);
    int rc = 0;
    char msg[160];
    icalcomponent_kind k = icalcomponent_isa(root);
    if (k != ICAL_VCALENDAR_COMPONENT && k != ICAL_XROOT_COMPONENT)
        rc = suki_err_set(err, -EINVAL, "%s: not an iCalendar file", path);
    else if (ics_has_error(root, msg, sizeof(msg)))
        rc = suki_err_set(err, -EINVAL, "%s: bad iCalendar: %s", path, msg);
    else
        rc = ics_walk(h, root, path, err);
    icalcomponent_free(root);
    return rc;
}

static bool looks_like_ics(const char *path, const char *text)
{
    size_t n = strlen(path);
    if (n >= 4 && strcasecmp(path + n - 4, ".ics") == 0)
        return true;
    while (*text == ' ' || *text == '\t' || *text == '\r' || *text == '\n')
        text++;
    return strncasecmp(text, "BEGIN:VCALENDAR", 15) == 0;
}

/* Load a holiday calendar. path borrowed. Returns owned calendar (free with
 * suki_holidays_free) or NULL with err filled ("FILE:LINE: bad date ..." for
 * a bad line of a plain file). Not for use inside the event loop: it reads
 * a file. */
struct suki_holidays *suki_holidays_load(const char *path, struct suki_err *err)
{
    size_t len;
    char *text = suki_read_file(path, &len, HOLIDAYS_MAX_FILE, err);
    if (!text)
        return NULL;
    if (memchr(text, '\0', len)) {
        free(text);
        suki_err_set(err, -EINVAL, "%s: contains a NUL byte", path);
        return NULL;
    }
    struct suki_holidays *h = suki_calloc(1, sizeof(*h));
    int rc = looks_like_ics(path, text) ? load_ics(h, path, text, err)
                                        : load_plain(h, path, text, err);
    free(text);
    if (rc) {
        suki_holidays_free(h);
        return NULL;
    }
    hol_finish(h);
    return h;
}

/* Free a calendar (NULL is fine). */
void suki_holidays_free(struct suki_holidays *h)
{
    if (!h)
        return;
    free(h->days);
    free(h);
}

/* True when the date is in the calendar (h may be NULL: no holidays). */
bool suki_holidays_has(const struct suki_holidays *h, int year, int mon,
                       int mday)
{
    if (mon < 1 || mon > 12)
        return false;
    return hol_has_day(h, days_from_civil(year, mon, mday));
}
