/* ctl.h - sukictl's command table and shared helpers.
 *
 * sukictl is a short-lived CLI: it uses synchronous hiredis (never the
 * daemon's loop). Each area adds its commands in its own ctl_*.c file and
 * lists them in the table in sukictl.c. */
#ifndef SUKI_CTL_H
#define SUKI_CTL_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>

#include "conf.h"
#include "redis.h"
#include "store/job.h"
#include "store/keys.h"

/* Exit codes, as documented in sukictl(1). */
#define SUKICTL_OK 0
#define SUKICTL_FAILED 1
#define SUKICTL_USAGE 2

struct sukictl {
    const char *conf_path;
    struct suki_conf *conf;       /* owned; NULL when the file did not load */
    struct suki_conf_diags diags; /* problems found loading it */
    redisContext *redis;          /* lazily connected; owned */
    bool json;                    /* --json: one JSON object per line */
};

struct sukictl_cmd {
    const char *name;
    const char *usage; /* arguments, for the help text */
    const char *help;  /* one line */
    int (*run)(struct sukictl *ctl, int argc, char **argv);
    bool needs_conf;  /* refuse to run without a valid config */
    const char *more; /* further usage lines for COMMAND --help, or
                         NULL */
};

/* Connect on first use. Returns the context or NULL after printing why. */
redisContext *sukictl_redis(struct sukictl *ctl);

/* Run a command; prints the Redis error and returns NULL on failure.
 * The reply is owned by the caller (freeReplyObject). */
redisReply *sukictl_cmd(struct sukictl *ctl, const char *fmt, ...);
redisReply *sukictl_cmdargv(struct sukictl *ctl, int argc, const char **argv,
                            const size_t *lens);

/* EVAL src with nkeys keys then arguments, all in a (lib/ops.h builds
 * them); like sukictl_cmd for the reply. */
redisReply *sukictl_eval(struct sukictl *ctl, const char *src, int nkeys,
                         const struct suki_redis_args *a);

/* Queue job key (body as its hash entry) in client's job hash and the
 * jobs index, due at due (ms), in one MULTI: a hash entry without its
 * index entry would never fire. Returns 0, or -1 after printing why. */
int sukictl_queue_job(struct sukictl *ctl, const char *client, const char *key,
                      const char *body, int64_t due);

/* Build "<prefix>:<suffix>". Returns owned. */
char *sukictl_key(struct sukictl *ctl, const char *suffix);

/* "FILE:LINE: message", or "FILE: message" without a line. Owned. */
char *sukictl_diag(const struct suki_conf_diag *d);

/* Print an error line "sukictl: ..." to stderr. */
void sukictl_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Commands of the areas (ctl_*.c). */
int sukictl_status(struct sukictl *ctl, int argc, char **argv);
/* ctl_jobs.c: list scheduled jobs; cancel one by key (exit 1 if none). */
int sukictl_jobs(struct sukictl *ctl, int argc, char **argv);
int sukictl_cancel(struct sukictl *ctl, int argc, char **argv);
/* ctl_console.c: console passwd NAME (the password on standard input). */
int sukictl_console(struct sukictl *ctl, int argc, char **argv);
/* ctl_digest.c: digest list [--to ADDR] | digest send [--to ADDR]. */
int sukictl_digest(struct sukictl *ctl, int argc, char **argv);
/* ctl_report.c: report [--manager ADDR] [--month YYYY-MM] [--send]. */
int sukictl_report(struct sukictl *ctl, int argc, char **argv);
/* ctl_inbound.c: inbound status [--json]: the IMAP poller's state. */
int sukictl_inbound(struct sukictl *ctl, int argc, char **argv);
/* ctl_campaign.c */
int sukictl_campaign(struct sukictl *ctl, int argc, char **argv);
int sukictl_suppress(struct sukictl *ctl, int argc, char **argv);
int sukictl_unsuppress(struct sukictl *ctl, int argc, char **argv);
/* ctl_intake.c: push JSON lines; dead letters; a client's profile and
 * jobs. */
int sukictl_push(struct sukictl *ctl, int argc, char **argv);
int sukictl_dead(struct sukictl *ctl, int argc, char **argv);
int sukictl_client(struct sukictl *ctl, int argc, char **argv);

#endif
