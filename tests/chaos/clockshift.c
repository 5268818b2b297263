/* clockshift.so - LD_PRELOAD: the wall clock of a process runs
 * $SUKI_CLOCK_SHIFT seconds (may be negative) away from the real one; the
 * monotonic clock stays true. Written here because libfaketime deadlocks
 * redis-server (its jemalloc reads the clock while libfaketime is still
 * starting): this shim asks the kernel directly and allocates nothing. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long shift(void)
{
    static long s = -1;
    static int known;
    if (!known) {
        const char *e = getenv("SUKI_CLOCK_SHIFT");
        s = e ? strtol(e, NULL, 10) : 0;
        known = 1;
    }
    return s;
}

static int real_clock(clockid_t c, struct timespec *ts)
{
    return (int)syscall(SYS_clock_gettime, c, ts);
}

int clock_gettime(clockid_t c, struct timespec *ts)
{
    int rc = real_clock(c, ts);
    if (rc == 0 && (c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE))
        ts->tv_sec += shift();
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz)
{
    (void)tz;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec; /* glibc declares tv nonnull */
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *t)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t)
        *t = ts.tv_sec;
    return ts.tv_sec;
}
