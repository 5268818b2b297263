/* util.h - allocation, error carrier and small checked helpers shared by
 * every module of the daemon, sukictl and the unit tests. */
#ifndef SUKI_UTIL_H
#define SUKI_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUKI_ERR_LEN 256

/* Caller-owned human-readable error detail. The callee fills it, the caller
 * logs it once at the boundary. */
struct suki_err {
    char msg[SUKI_ERR_LEN]; /* NUL-terminated; empty when no error */
};

/* Fill err (may be NULL) with a formatted message. Returns the negative errno
 * code it was given, so `return suki_err_set(err, -EINVAL, "...")` works. */
int suki_err_set(struct suki_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Allocation wrappers: never return NULL; log and abort() on exhaustion. */
void *suki_malloc(size_t n);
void *suki_calloc(size_t nmemb, size_t n);
void *suki_realloc(void *p, size_t n);
char *suki_strdup(const char *s);
char *suki_strndup(const char *s, size_t n);
/* Returns owned, formatted string. */
char *suki_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Free and clear a pointer. */
#define suki_sfree(p)                                                          \
    do {                                                                       \
        free(p);                                                               \
        (p) = NULL;                                                            \
    } while (0)

#define SUKI_ASSERT(cond)                                                      \
    do {                                                                       \
        if (!(cond))                                                           \
            suki_assert_fail(#cond, __FILE__, __LINE__);                       \
    } while (0)
_Noreturn void suki_assert_fail(const char *expr, const char *file, int line);

#define SUKI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Checked number parsing: whole string must be a number in [min,max].
 * Return 0, or -EINVAL (not a number) / -ERANGE (out of bounds). */
int suki_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Durations: "90s" "15m" "24h" "3d" "2w" and "250ms" -> milliseconds (> 0
 * unless allow_zero). Returns 0 or -EINVAL/-ERANGE with err filled. */
int suki_parse_duration(const char *s, int64_t *ms, struct suki_err *err);
/* Format ms as the largest exact unit ("3d", "90s", "250ms") into buf. */
void suki_format_duration(int64_t ms, char *buf, size_t len);

/* Rates: "20/s" "600/m" "1000/h" -> events per second (double > 0). */
int suki_parse_rate(const char *s, double *per_sec, struct suki_err *err);

/* Glob match (fnmatch semantics without FNM_PATHNAME): used by rules. */
bool suki_glob_match(const char *pattern, const char *s);

/* Wall clock and monotonic clock in milliseconds. */
int64_t suki_now_ms(void);
int64_t suki_mono_ms(void);

/* Read a whole small secret file (strips one trailing newline). Refuses a
 * file that is group- or world-readable. When $CREDENTIALS_DIRECTORY is set
 * (systemd credentials) and holds a credential named "suki_" + the file's
 * basename, that is read instead of path: the shipped unit passes
 * /etc/suki/credentials/ as LoadCredential=suki:/etc/suki/credentials,
 * which systemd names that way. Returns owned string or NULL with err
 * filled. */
char *suki_read_secret(const char *path, struct suki_err *err);

/* Make sure dir is a directory this process can create files in. With
 * create, a missing dir (and its missing parents) is made with mode 0700;
 * without, a missing dir only has to be creatable (its nearest existing
 * parent writable). Returns 0, or a negative errno with err filled. */
int suki_dir_prepare(const char *dir, bool create, struct suki_err *err);

/* Read a whole file. Returns owned NUL-terminated buffer (len in *len) or
 * NULL with err filled. */
char *suki_read_file(const char *path, size_t *len, size_t max,
                     struct suki_err *err);

/* Bounded string copy that always NUL-terminates; returns strlen(src). */
size_t suki_strlcpy(char *dst, const char *src, size_t size);

/* (Re)arm the libevent timer ev to fire in ms milliseconds (0 when
 * negative). Returns evtimer_add's result. */
struct event;
int suki_timer_ms(struct event *ev, int64_t ms);

/* A growable NUL-terminated byte string; zero-initialise it. The caller
 * owns p (free it, or take it with suki_buf_take). */
struct suki_buf {
    char *p;
    size_t len, cap;
};
/* Append n bytes / a C string / formatted text. */
void suki_buf_add(struct suki_buf *b, const void *s, size_t n);
void suki_buf_str(struct suki_buf *b, const char *s);
void suki_buf_printf(struct suki_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns the owned string ("" when empty) and leaves b empty. */
char *suki_buf_take(struct suki_buf *b);

/* Length of the strict UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) at s, with n bytes available; 0 when
 * it is not one. */
size_t suki_utf8_seq(const unsigned char *s, size_t n);

/* Lower-case hex of in[0..n) into out, which holds 2 * n + 1 bytes. */
void suki_hex(const unsigned char *in, size_t n, char *out);
/* Offset of the first byte of s[0..len) that is not strict UTF-8, or len
 * when all of it is. */
size_t suki_utf8_bad_at(const unsigned char *s, size_t len);

/* Random 64-bit value (not cryptographic; for jitter and ids). Thread-safe:
 * each thread keeps its own state. */
uint64_t suki_rand64(void);

#endif
