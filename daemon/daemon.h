/* daemon.h - the running daemon's shared context.
 *
 * One instance lives in main.c. Modules (intake, scheduler, dispatch, http,
 * campaigns) receive a pointer at creation and read the live configuration
 * and the shared Redis link through it; a reload swaps conf and rules and
 * calls every module's reload hook. */
#ifndef SUKI_DAEMON_H
#define SUKI_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct suki_conf;
struct suki_redis;
struct suki_ruleset;
struct suki_templates;
struct suki_holidays;
struct suki_dispatch;

struct suki_daemon {
    struct event_base *base;
    struct suki_conf *conf;           /* owned ref: the live config */
    struct suki_ruleset *rules;       /* owned: live rules + plugins */
    struct suki_templates *templates; /* owned: live templates */
    struct suki_holidays *holidays;   /* owned or NULL */
    struct suki_redis *redis;         /* owned: commands and scripts */
    struct suki_dispatch *dispatch;   /* owned: outgoing messages */
    char consumer[128];               /* unique consumer name host:pid:time */
    bool stopping;                    /* graceful stop in progress */
    int64_t started_ms;
};

#endif
