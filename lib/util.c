/* util.c - allocation, errors, checked parsing and small helpers. */
#include "util.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int suki_err_set(struct suki_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

static _Noreturn void oom(size_t n)
{
    suki_log_write(LOG_CRIT, "out of memory allocating %zu bytes", n);
    abort();
}

void *suki_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *suki_calloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
    if (!p)
        oom(nmemb * n);
    return p;
}

void *suki_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *suki_strdup(const char *s)
{
    return suki_strndup(s, strlen(s));
}

char *suki_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = suki_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *suki_asprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = suki_malloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

_Noreturn void suki_assert_fail(const char *expr, const char *file, int line)
{
    suki_log_write(LOG_CRIT, "assertion failed: %s (%s:%d)", expr, file, line);
    abort();
}

int suki_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int suki_parse_duration(const char *s, int64_t *ms, struct suki_err *err)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},           {"s", 1000},
                 {"m", 60 * 1000},    {"h", 3600 * 1000},
                 {"d", 86400 * 1000}, {"w", 7 * 86400 * 1000LL}};
    if (!s || !*s)
        return suki_err_set(err, -EINVAL, "empty duration");
    const char *p = s;
    if (*p < '0' || *p > '9')
        return suki_err_set(err, -EINVAL,
                            "bad duration \"%s\" (want a number and a unit: "
                            "90s, 15m, 24h, 3d, 2w)",
                            s);
    int64_t n = 0;
    while (*p >= '0' && *p <= '9') {
        if (n > (INT64_MAX - 9) / 10)
            return suki_err_set(err, -ERANGE, "duration \"%s\" is too large",
                                s);
        n = n * 10 + (*p - '0');
        p++;
    }
    for (size_t i = 0; i < SUKI_ARRAY_LEN(units); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            /* 100 years is far past any sane reminder and keeps every sum of
             * durations and epoch milliseconds away from overflow. */
            const int64_t max_ms = 100LL * 366 * 86400 * 1000;
            if (n > max_ms / units[i].ms)
                return suki_err_set(err, -ERANGE,
                                    "duration \"%s\" is too large (max 100 "
                                    "years)",
                                    s);
            *ms = n * units[i].ms;
            return 0;
        }
    }
    return suki_err_set(err, -EINVAL,
                        "bad duration \"%s\" (unit must be ms, s, m, h, d or "
                        "w)",
                        s);
}

void suki_format_duration(int64_t ms, char *buf, size_t len)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"w", 7 * 86400 * 1000LL},
                 {"d", 86400 * 1000},
                 {"h", 3600 * 1000},
                 {"m", 60 * 1000},
                 {"s", 1000}};
    if (ms > 0) {
        for (size_t i = 0; i < SUKI_ARRAY_LEN(units); i++) {
            if (ms % units[i].ms == 0) {
                snprintf(buf, len, "%" PRId64 "%s", ms / units[i].ms,
                         units[i].unit);
                return;
            }
        }
    }
    snprintf(buf, len, "%" PRId64 "ms", ms);
}

int suki_parse_rate(const char *s, double *per_sec, struct suki_err *err)
{
    if (!s || !*s)
        return suki_err_set(err, -EINVAL, "empty rate");
    const char *slash = strchr(s, '/');
    if (!slash || slash == s)
        return suki_err_set(err, -EINVAL,
                            "bad rate \"%s\" (want N/s, N/m or N/h)", s);
    char num[32];
    size_t nlen = (size_t)(slash - s);
    if (nlen >= sizeof(num))
        return suki_err_set(err, -ERANGE, "rate \"%s\" is too large", s);
    memcpy(num, s, nlen);
    num[nlen] = '\0';
    int64_t n;
    int rc = suki_parse_i64(num, 1, 100000000, &n);
    if (rc == -ERANGE)
        return suki_err_set(err, -ERANGE,
                            "rate \"%s\" out of range (1 to 100000000)", s);
    if (rc < 0)
        return suki_err_set(err, -EINVAL,
                            "bad rate \"%s\" (want N/s, N/m or N/h with N a "
                            "positive whole number)",
                            s);
    const char *u = slash + 1;
    double div;
    if (strcmp(u, "s") == 0)
        div = 1;
    else if (strcmp(u, "m") == 0)
        div = 60;
    else if (strcmp(u, "h") == 0)
        div = 3600;
    else
        return suki_err_set(err, -EINVAL,
                            "bad rate \"%s\" (unit must be /s, /m or /h)", s);
    *per_sec = (double)n / div;
    return 0;
}

bool suki_glob_match(const char *pattern, const char *s)
{
    return fnmatch(pattern, s, 0) == 0;
}

int64_t suki_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t suki_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *suki_read_file(const char *path, size_t *len, size_t max,
                     struct suki_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        suki_err_set(err, -errno, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        suki_err_set(err, -EINVAL, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((size_t)st.st_size > max) {
        suki_err_set(err, -EFBIG, "%s: file too large (%lld bytes, max %zu)",
                     path, (long long)st.st_size, max);
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = suki_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max + 1) {
                suki_err_set(err, -EFBIG, "%s: file too large", path);
                free(buf);
                close(fd);
                return NULL;
            }
            cap *= 2;
            buf = suki_realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            suki_err_set(err, -errno, "%s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* The credential standing in for secret file path, or NULL. */
static char *credential_of(const char *path)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir)
        return NULL;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!*base)
        return NULL;
    char *cred = suki_asprintf("%s/suki_%s", dir, base);
    if (access(cred, F_OK) < 0) {
        free(cred);
        return NULL;
    }
    return cred;
}

static char *read_secret_file(const char *path, struct suki_err *err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        suki_err_set(err, -errno, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        suki_err_set(err, -EPERM,
                     "%s: secret file must not be accessible by group or "
                     "others (chmod 600)",
                     path);
        return NULL;
    }
    size_t len;
    char *s = suki_read_file(path, &len, 4096, err);
    if (!s)
        return NULL;
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
    return s;
}

char *suki_read_secret(const char *path, struct suki_err *err)
{
    char *cred = credential_of(path);
    if (!cred)
        return read_secret_file(path, err);
    char *s = read_secret_file(cred, err);
    free(cred);
    return s;
}

int suki_dir_prepare(const char *dir, bool create, struct suki_err *err)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            suki_err_set(err, -ENOTDIR, "%s: not a directory", dir);
            return -ENOTDIR;
        }
        if (access(dir, W_OK | X_OK) < 0) {
            int e = errno;
            suki_err_set(err, -e, "%s: cannot write there: %s", dir,
                         strerror(e));
            return -e;
        }
        return 0;
    }
    if (errno != ENOENT) {
        int e = errno;
        suki_err_set(err, -e, "%s: %s", dir, strerror(e));
        return -e;
    }
    char *p = suki_strdup(dir);
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = '\0';
    int rc = 0;
    if (create) {
        for (char *q = p + 1;; q++) {
            if (*q != '/' && *q != '\0')
                continue;
            char c = *q;
            *q = '\0';
            if (mkdir(p, 0700) < 0 && errno != EEXIST) {
                rc = -errno;
                suki_err_set(err, rc, "cannot create %s: %s", p,
                             strerror(errno));
            }
            *q = c;
            if (rc < 0 || c == '\0')
                break;
        }
        free(p);
        return rc < 0 ? rc : suki_dir_prepare(dir, false, err);
    }
    /* Creatable: the nearest existing ancestor takes new entries. */
    for (;;) {
        char *slash = strrchr(p, '/');
        if (!slash)
            suki_strlcpy(p, ".", len + 1);
        else if (slash == p)
            p[1] = '\0';
        else
            *slash = '\0';
        if (stat(p, &st) == 0 || !slash || slash == p)
            break;
    }
    if (access(p, W_OK | X_OK) < 0) {
        rc = -errno;
        suki_err_set(err, rc, "%s is missing and cannot be created in %s: %s",
                     dir, p, strerror(errno));
    }
    free(p);
    return rc;
}

size_t suki_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);
    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

static void buf_reserve(struct suki_buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->p = suki_realloc(b->p, cap);
    b->cap = cap;
}

int suki_timer_ms(struct event *ev, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    return evtimer_add(ev, &tv);
}

void suki_buf_add(struct suki_buf *b, const void *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void suki_buf_str(struct suki_buf *b, const char *s)
{
    suki_buf_add(b, s, strlen(s));
}

void suki_buf_printf(struct suki_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        buf_reserve(b, (size_t)n);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

char *suki_buf_take(struct suki_buf *b)
{
    char *p = b->p ? b->p : suki_strdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

size_t suki_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t suki_utf8_bad_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) { /* ASCII, the common case: no call per byte */
            i++;
            continue;
        }
        size_t k = suki_utf8_seq(s + i, len - i);
        if (k == 0)
            return i;
        i += k;
    }
    return len;
}

uint64_t suki_rand64(void)
{
    /* splitmix64 seeded from time and pid: jitter only, not security.
     * One state per thread (the dispatcher's workers call this too); the
     * state's address tells threads seeded in the same nanosecond apart. */
    static _Thread_local uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&state ^
                0x9E3779B97F4A7C15ULL;
    }
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void suki_hex(const unsigned char *in, size_t n, char *out)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[in[i] >> 4];
        out[2 * i + 1] = x[in[i] & 15];
    }
    out[2 * n] = '\0';
}
