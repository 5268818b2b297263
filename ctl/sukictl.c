/* sukictl.c - control and inspection CLI: option parsing, command table,
 * Redis helpers shared by the ctl_*.c command files. */
#include "config.h"

#include "ctl.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONF SYSCONFDIR "/suki/sukid.conf"

static const struct sukictl_cmd commands[] = {
    {"status", "", "reachability of Redis, config validity, queue figures",
     sukictl_status, false,
     "exit 0 when the configuration is valid, Redis is reachable, at least\n"
     "one sukid is alive and no transport's circuit breaker is open; else 1"},
    {"jobs", "[--client ID] [--due-before TIME] | run|hold|release|cancel KEY",
     "scheduled jobs in due order; send one now, hold or release it",
     sukictl_jobs, true,
     "  jobs run KEY       make the job due now (sent at the next claim)\n"
     "  jobs hold KEY      keep it from being sent until released\n"
     "  jobs release KEY   schedule a held job again, at its time\n"
     "  jobs cancel KEY    as sukictl cancel KEY\n"
     "  --client ID        only this client's jobs\n"
     "  --due-before TIME  only jobs due before TIME: RFC 3339, a date\n"
     "                     (YYYY-MM-DD, UTC) or a duration from now (2h)"},
    {"cancel", "KEY", "cancel one scheduled job", sukictl_cancel, true, NULL},
    {"campaign", "SUBCOMMAND [NAME] [OPTIONS]",
     "promotional campaigns (see sukictl campaign --help)", sukictl_campaign,
     true,
     "  campaign create NAME --template T --audience A [--rate R]\n"
     "                  [--start-at TIME] [--owner ADDR]\n"
     "      A: all, segment=X, tag=X or set=KEY; TIME: RFC 3339 or now\n"
     "  campaign pause|resume|cancel|retry NAME\n"
     "  campaign status [NAME]\n"
     "  campaign list"},
    {"suppress", "ADDRESS", "never send campaign mail to ADDRESS",
     sukictl_suppress, true, NULL},
    {"unsuppress", "ADDRESS", "lift a suppression", sukictl_unsuppress, true,
     NULL},
    {"push", "[FILE|-]", "validate JSON lines and add them to the stream",
     sukictl_push, true,
     "reads standard input without FILE or with -; exit 1 when a line was\n"
     "refused (each is reported with its line number)"},
    {"dead", "[list|replay [--force] ID|drop ID]", "dead letters", sukictl_dead,
     true,
     "  dead [list]      every dead letter with its reason\n"
     "  dead replay ID   an event back into the stream after a fix; a\n"
     "                   message or job back into the schedule, due now,\n"
     "                   under the same Message-ID (nothing sent twice)\n"
     "  dead replay --force ID\n"
     "                   the same, sent even past its rule's max_lateness\n"
     "  dead drop ID     delete one"},
    {"console", "passwd NAME", "set a console user's password (from stdin)",
     sukictl_console, true,
     "reads the password from standard input (without echo on a terminal)\n"
     "and adds or replaces NAME's line in console.users_file (mode 0600)"},
    {"client", "ID", "a client's stored profile and pending jobs",
     sukictl_client, true, NULL},
    {"digest", "[list|send] [--to ADDR]", "held digest items; send them now",
     sukictl_digest, true,
     "  digest [list] [--to ADDR]  every held item (with --json: one object\n"
     "                             per item: to, key, client, rule, subject,\n"
     "                             due)\n"
     "  digest send [--to ADDR]    send the digests now (sukid sends them)"},
    {"report", "[--manager ADDR] [--month YYYY-MM] [--json] [--send]",
     "the monthly report of each manager", sukictl_report, true,
     "  --manager ADDR    only this manager's report\n"
     "  --month YYYY-MM   that month (default: the last one, in\n"
     "                    reports.monthly.timezone)\n"
     "  --json            one object per manager: manager, month, events\n"
     "                    {type: count} and the other figures\n"
     "  --send            send the reports now (sukid sends them): each\n"
     "                    manager's, and without --manager the roll-up to\n"
     "                    the other reports.monthly.to addresses"},
    {"inbound", "status [--json]",
     "the replies-and-bounces mailbox: last poll, messages by kind",
     sukictl_inbound, true,
     "  inbound status   last poll and its error, UIDs processed, counts by\n"
     "                   kind (with --json: one object with kinds, an object\n"
     "                   of kind -> count)"},
};

void sukictl_errx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sukictl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

redisContext *sukictl_redis(struct sukictl *ctl)
{
    if (ctl->redis)
        return ctl->redis;
    if (!ctl->conf) {
        sukictl_errx("no valid configuration (%s); see sukid -t",
                     ctl->conf_path);
        return NULL;
    }
    struct suki_err err = {{0}};
    ctl->redis = suki_redis_connect_sync(ctl->conf, &err);
    if (!ctl->redis)
        sukictl_errx("%s", err.msg);
    return ctl->redis;
}

static redisReply *check_reply(struct sukictl *ctl, redisReply *r)
{
    if (!r) {
        sukictl_errx("redis: %s", ctl->redis->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        sukictl_errx("redis: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *sukictl_cmd(struct sukictl *ctl, const char *fmt, ...)
{
    if (!sukictl_redis(ctl))
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctl->redis, fmt, ap);
    va_end(ap);
    return check_reply(ctl, r);
}

redisReply *sukictl_cmdargv(struct sukictl *ctl, int argc, const char **argv,
                            const size_t *lens)
{
    if (!sukictl_redis(ctl))
        return NULL;
    return check_reply(ctl, redisCommandArgv(ctl->redis, argc, argv, lens));
}

redisReply *sukictl_eval(struct sukictl *ctl, const char *src, int nkeys,
                         const struct suki_redis_args *a)
{
    size_t n = a->n + 3;
    const char **argv = suki_calloc(n, sizeof(char *));
    size_t *lens = suki_calloc(n, sizeof(size_t));
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = src;
    argv[2] = nk;
    suki_redis_args_ptrs(a, argv + 3, lens + 3);
    for (size_t i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = sukictl_cmdargv(ctl, (int)n, argv, lens);
    free(argv);
    free(lens);
    return r;
}

char *sukictl_diag(const struct suki_conf_diag *d)
{
    /* as sukid -t prints it: no line number for a problem of the file as
     * a whole (a missing directory) */
    if (d->line > 0)
        return suki_asprintf("%s:%d: %s", d->file, d->line, d->msg);
    return suki_asprintf("%s: %s", d->file, d->msg);
}

char *sukictl_key(struct sukictl *ctl, const char *suffix)
{
    return suki_key(ctl->conf->prefix, suffix);
}

int sukictl_queue_job(struct sukictl *ctl, const char *client, const char *key,
                      const char *body, int64_t due)
{
    char *jh = suki_job_hash_key(ctl->conf->prefix, client, key);
    char *jobs = sukictl_key(ctl, SUKI_KEY_JOBS);
    char ds[24];
    snprintf(ds, sizeof(ds), "%" PRId64, due);
    redisReply *m = sukictl_cmd(ctl, "MULTI");
    if (m)
        freeReplyObject(m);
    const char *hs[] = {"HSET", jh, key, body};
    const char *za[] = {"ZADD", jobs, ds, key};
    redisReply *a = m ? sukictl_cmdargv(ctl, 4, hs, NULL) : NULL;
    redisReply *b = a ? sukictl_cmdargv(ctl, 4, za, NULL) : NULL;
    redisReply *e = b ? sukictl_cmd(ctl, "EXEC") : NULL;
    int rc = e && e->type == REDIS_REPLY_ARRAY ? 0 : -1;
    if (a)
        freeReplyObject(a);
    if (b)
        freeReplyObject(b);
    if (e)
        freeReplyObject(e);
    free(jh);
    free(jobs);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sukictl [-c FILE] [--json] COMMAND [ARGS]\n\n"
               "commands:\n");
    for (size_t i = 0; i < SUKI_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-10s %-28s %s\n", commands[i].name, commands[i].usage,
                commands[i].help);
    fprintf(f,
            "\noptions:\n"
            "  -c FILE   configuration file (default %s)\n"
            "  --json    machine-readable output, one object per line\n"
            "  -h        this help;  -V  version\n"
            "exit codes: 0 ok, 1 failed, 2 usage\n",
            DEFAULT_CONF);
}

/* COMMAND ... --help: answered here, before the config is read or Redis
 * is touched, so that every command (and its subcommands) has it and none
 * takes "--help" for a key, a file or an address. "--" ends the scan. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

static void cmd_usage(FILE *f, const struct sukictl_cmd *cmd)
{
    fprintf(f, "usage: sukictl [-c FILE] [--json] %s%s%s\n%s\n", cmd->name,
            *cmd->usage ? " " : "", cmd->usage, cmd->help);
    if (cmd->more)
        fprintf(f, "%s\n", cmd->more);
}

int main(int argc, char **argv)
{
    struct sukictl ctl = {.conf_path = DEFAULT_CONF};
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int opt;
    /* '+' stops at the command so its own options stay its own. */
    while ((opt = getopt_long(argc, argv, "+c:jhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            ctl.conf_path = optarg;
            break;
        case 'j':
            ctl.json = true;
            break;
        case 'h':
            usage(stdout);
            return SUKICTL_OK;
        case 'V':
            printf("sukictl %s\n", PACKAGE_VERSION);
            return SUKICTL_OK;
        default:
            usage(stderr);
            return SUKICTL_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return SUKICTL_USAGE;
    }
    const char *name = argv[optind];
    const struct sukictl_cmd *cmd = NULL;
    for (size_t i = 0; i < SUKI_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        sukictl_errx("unknown command '%s'", name);
        usage(stderr);
        return SUKICTL_USAGE;
    }
    if (wants_help(argc - optind - 1, argv + optind + 1)) {
        cmd_usage(stdout, cmd);
        return SUKICTL_OK;
    }
    suki_log_level = LOG_WARNING;
    ctl.conf = suki_conf_load(ctl.conf_path, &ctl.diags);
    int rc;
    if (!ctl.conf && cmd->needs_conf) {
        for (size_t i = 0; i < ctl.diags.n; i++) {
            char *s = sukictl_diag(&ctl.diags.v[i]);
            fprintf(stderr, "%s\n", s);
            free(s);
        }
        sukictl_errx("configuration %s has errors", ctl.conf_path);
        rc = SUKICTL_FAILED;
    } else {
        optind++;
        /* "--" ended the help scan; the commands take what follows */
        if (optind < argc && strcmp(argv[optind], "--") == 0)
            optind++;
        rc = cmd->run(&ctl, argc - optind, argv + optind);
    }
    if (ctl.redis)
        redisFree(ctl.redis);
    suki_conf_unref(ctl.conf);
    suki_conf_diags_clear(&ctl.diags);
    return rc;
}
