/* log.c - stderr logging: journald priority prefixes or timestamped lines. */
#include "config.h"

#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-journal.h>
#endif

int suki_log_level = LOG_INFO;
static bool use_journal;
static char log_ident[32] = "suki";
static int log_pid; /* cached: getpid() on every line costs in hot paths */

void suki_log_init(const char *ident)
{
    log_pid = (int)getpid();
    if (ident) {
        strncpy(log_ident, ident, sizeof(log_ident) - 1);
        log_ident[sizeof(log_ident) - 1] = '\0';
    }
    /* JOURNAL_STREAM is "DEV:INO" of the journal socket; it only counts if
     * our stderr is still that socket (not redirected by a wrapper). */
    use_journal = false;
    const char *js = getenv("JOURNAL_STREAM");
    if (js) {
        unsigned long long dev, ino;
        struct stat st;
        if (sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
            fstat(STDERR_FILENO, &st) == 0 &&
            (unsigned long long)st.st_dev == dev &&
            (unsigned long long)st.st_ino == ino)
            use_journal = true;
    }
}

void suki_log_own_stream(const char *ident)
{
#ifdef HAVE_SYSTEMD
    if (!use_journal)
        return;
    /* level_prefix 1: our "<N>" prefixes keep setting each line's level */
    int fd = sd_journal_stream_fd(ident, LOG_INFO, 1);
    if (fd < 0)
        return;
    if (fd != STDERR_FILENO) {
        int r = dup2(fd, STDERR_FILENO);
        close(fd);
        if (r < 0)
            return;
    }
    /* So that a later suki_log_init still recognises stderr. */
    struct stat st;
    char v[64];
    if (fstat(STDERR_FILENO, &st) == 0) {
        snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", v, 1);
    }
#else
    (void)ident;
#endif
}

static const char *level_name(int level)
{
    static const char *names[] = {"emerg", "alert",  "crit", "error",
                                  "warn",  "notice", "info", "debug"};
    if (level < 0 || level > 7)
        return "?";
    return names[level];
}

static void vlog(int level, const char *fmt, va_list ap, const char *suffix)
{
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* A log line is one line: fold control characters that may come from
     * user data so nobody can forge log entries. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            *p = '?';
    if (use_journal) {
        fprintf(stderr, "<%d>%s%s%s\n", level, msg, suffix ? ": " : "",
                suffix ? suffix : "");
    } else {
        struct timespec ts;
        struct tm tm;
        char tbuf[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ %s[%d] %s: %s%s%s\n", tbuf,
                ts.tv_nsec / 1000000, log_ident,
                log_pid ? log_pid : (int)getpid(), level_name(level), msg,
                suffix ? ": " : "", suffix ? suffix : "");
    }
}

void suki_log_write(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap, NULL);
    va_end(ap);
}

void suki_warn(const char *fmt, ...)
{
    int e = errno;
    if (LOG_WARNING > suki_log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_WARNING, fmt, ap, strerror(e));
    va_end(ap);
}
