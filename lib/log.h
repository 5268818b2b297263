/* log.h - the one logging entry point. */
#ifndef SUKI_LOG_H
#define SUKI_LOG_H

#include <syslog.h>

/* Process-wide minimum level (LOG_ERR..LOG_DEBUG); default LOG_INFO. */
extern int suki_log_level;

/* Decide output format once: "<N>" priority prefixes when stderr is the
 * journal (JOURNAL_STREAM matches stderr), else timestamped plain lines. */
void suki_log_init(const char *ident);

/* When logging to the journal, give this process a journal stream of its
 * own, so its lines carry ident as SYSLOG_IDENTIFIER instead of the name of
 * the process that opened the inherited stream (the delivery agent's would
 * otherwise read "sukid"). Call after suki_log_init, before any thread
 * starts. Keeps the inherited stream when a new one cannot be had. */
void suki_log_own_stream(const char *ident);

void suki_log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Test the level before evaluating arguments. */
#define suki_log(level, ...)                                                   \
    do {                                                                       \
        if ((level) <= suki_log_level)                                         \
            suki_log_write((level), __VA_ARGS__);                              \
    } while (0)

#define suki_err_log(...) suki_log(LOG_ERR, __VA_ARGS__)
#define suki_warnx(...) suki_log(LOG_WARNING, __VA_ARGS__)
#define suki_notice(...) suki_log(LOG_NOTICE, __VA_ARGS__)
#define suki_info(...) suki_log(LOG_INFO, __VA_ARGS__)
#define suki_debug(...) suki_log(LOG_DEBUG, __VA_ARGS__)
/* Like suki_warnx but appends ": strerror(errno)". */
void suki_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
