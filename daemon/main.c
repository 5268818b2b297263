/* main.c - sukid: argument parsing, startup order, signals, reload, stop. */
#include "config.h"

#include "campaign.h"
#include "conf.h"
#include "daemon.h"
#include "deliver.h"
#include "http.h"
#include "console.h"
#include "heartbeat.h"
#include "inbound.h"
#include "intake.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "rules.h"
#include "sched/sched.h"
#include "template.h"
#include "timeutil.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define DEFAULT_CONF SYSCONFDIR "/suki/sukid.conf"

static struct suki_daemon D;
static const char *conf_path = DEFAULT_CONF;
static struct event *stop_timer;
static struct suki_sched *sched;         /* the scheduler and fire path */
static struct suki_agent *agent;         /* the delivery agent (deliver.h) */
static struct suki_campaigns *campaigns; /* campaign runners */
static struct suki_intake *intake;       /* the event intake */
static struct suki_heartbeat *heartbeat; /* P:daemon:<consumer> */
static struct suki_inbound *inbound;     /* the IMAP poller */
/* Modules still draining at a stop, plus one for begin_stop itself; the
 * loop ends when it reaches 0 (see stop_step). */
static int stop_pending;
static struct event *watchdog_ev;
/* The housekeeping tick: the daemon-wide chores that only need to happen
 * every so often run from this one timer, each at its own period (redis's
 * serverCron does the same), rather than each module arming its own.
 * Timers that wake work up on time (the scheduler, the dispatcher, the
 * watchdog) stay their own. */
#define SUKI_TICK_MS 500
static struct event *tick_ev;
static int64_t last_heartbeat_ms;
static int sigint_count;
static struct suki_http *http_srv;   /* NULL when http.listen is "" */
static struct suki_console *console; /* NULL unless console.listen */
static char console_listen[256];     /* console.listen at the start */

__attribute__((format(printf, 1, 2))) static void notify(const char *fmt, ...)
{
#ifdef HAVE_SYSTEMD
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sd_notify(0, buf);
#else
    (void)fmt;
#endif
}

/* A configuration that cannot work: EX_CONFIG of sysexits.h, apart from the
 * 1 of other failures, so that the unit's RestartPreventExitStatus= does not
 * restart what would fail again the same way. */
#define SUKI_EXIT_CONFIG 78

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sukid [-c FILE] [-t] [-V] [-h]\n"
            "  -c, --config FILE  configuration file (default %s)\n"
            "  -t                 check the configuration, templates and "
            "plugins, then exit 0/1\n"
            "  -V, --version      print the version and exit\n"
            "  -h, --help         this help\n",
            DEFAULT_CONF);
}

static void print_diags(const struct suki_conf_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        if (d->v[i].line > 0)
            fprintf(stderr, "%s:%d: %s\n", d->v[i].file, d->v[i].line,
                    d->v[i].msg);
        else
            fprintf(stderr, "%s: %s\n", d->v[i].file, d->v[i].msg);
    }
}

/* Everything a configuration brings with it, built and checked as a whole
 * so that a reload can swap it in at once or not at all. */
struct confset {
    struct suki_conf *conf;
    struct suki_holidays *holidays;
    struct suki_templates *templates;
    struct suki_ruleset *rules; /* borrows holidays: free it first */
};

static void confset_free(struct confset *cs)
{
    suki_rules_free(cs->rules);
    suki_conf_unref(cs->conf);
    suki_holidays_free(cs->holidays);
    suki_templates_free(cs->templates);
    memset(cs, 0, sizeof(*cs));
}

static bool is_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int confset_load(const char *path, struct confset *cs,
                        struct suki_conf_diags *d)
{
    size_t before = d->n;
    memset(cs, 0, sizeof(*cs));
    /* Go on past the file's own problems so that one run reports those of
     * the templates and plugins too; any problem fails the whole set. */
    cs->conf = suki_conf_load_partial(path, d);
    if (!cs->conf)
        return -EINVAL;
    bool conf_ok = d->n == before;
    if (cs->conf->holidays_file) {
        struct suki_err err = {{0}};
        cs->holidays = suki_holidays_load(cs->conf->holidays_file, &err);
        if (!cs->holidays)
            suki_conf_diags_add(d, path, 0, "holidays: %s", err.msg);
    }
    /* A missing directory is reported once, by the conf, not again for
     * each template or plugin it lacks. */
    if (conf_ok || is_dir(cs->conf->templates_dir))
        cs->templates = suki_templates_load(cs->conf->templates_dir,
                                            cs->conf->default_locale, d);
    /* Rules load their plugins and let each check its settings. */
    if (conf_ok || is_dir(cs->conf->plugins_dir))
        cs->rules = suki_rules_load(cs->conf, cs->holidays, d);
    for (size_t i = 0; cs->templates && i < cs->conf->n_rules; i++) {
        const struct suki_rule_conf *r = &cs->conf->rules[i];
        if (r->template_name &&
            !suki_templates_has(cs->templates, r->template_name))
            suki_conf_diags_add(d, r->file, r->line,
                                "rule '%s': no template '%s' in %s", r->name,
                                r->template_name, cs->conf->templates_dir);
    }
    /* The digest lists every held item: a template without {{#items}}
     * would send a digest that says nothing. */
    const char *df = NULL;
    if (cs->templates && cs->conf->digests &&
        !suki_templates_has_list(cs->templates, cs->conf->digest_template,
                                 "items", &df)) {
        if (df)
            suki_conf_diags_add(d, cs->conf->digest_file, cs->conf->digest_line,
                                "digests: template '%s' (%s) has no "
                                "{{#items}}...{{/items}} list in its text",
                                cs->conf->digest_template, df);
        else
            suki_conf_diags_add(d, cs->conf->digest_file, cs->conf->digest_line,
                                "digests: no template '%s' in %s",
                                cs->conf->digest_template,
                                cs->conf->templates_dir);
    }
    /* The monthly report's chart is its {{#items}} (the events by type). */
    const char *rf = NULL;
    if (cs->templates && cs->conf->reports &&
        !suki_templates_has_list(cs->templates, cs->conf->report_template,
                                 "items", &rf)) {
        if (rf)
            suki_conf_diags_add(d, cs->conf->report_file, cs->conf->report_line,
                                "reports.monthly: template '%s' (%s) has no "
                                "{{#items}}...{{/items}} list in its text",
                                cs->conf->report_template, rf);
        else
            suki_conf_diags_add(d, cs->conf->report_file, cs->conf->report_line,
                                "reports.monthly: no template '%s' in %s",
                                cs->conf->report_template,
                                cs->conf->templates_dir);
    }
    if (d->n > before || !cs->templates || !cs->rules) {
        confset_free(cs);
        return -EINVAL;
    }
    return 0;
}

/* Every spool directory of c exists and takes files, made (mode 0700) when
 * missing if create: the shipped unit only makes /var/lib/suki, and a
 * changed spool path should work without a mkdir by hand. Problems become
 * diagnostics in d; returns -EINVAL when there were any. */
static int spools_prepare(const struct suki_conf *c, bool create,
                          const char *path, struct suki_conf_diags *d)
{
    int rc = 0;
    for (size_t i = 0; i < c->n_transports; i++) {
        const struct suki_transport_conf *t = &c->transports[i];
        struct suki_err err = {{0}};
        if (t->kind != SUKI_TRANSPORT_SPOOL || !t->spool_dir)
            continue;
        if (suki_dir_prepare(t->spool_dir, create, &err) < 0) {
            suki_conf_diags_add(d, path, 0, "transport '%s': spool %s", t->name,
                                err.msg);
            rc = -EINVAL;
        }
    }
    return rc;
}

static void on_redis_state(struct suki_redis *r, bool up, void *arg)
{
    (void)r;
    (void)arg;
    suki_metrics.redis_up = up ? 1 : 0;
    suki_sched_redis_state(sched, up);
    if (up) {
        suki_heartbeat_publish(heartbeat);
        notify("READY=1\nSTATUS=running; redis connected");
    } else if (!D.stopping) {
        notify("STATUS=redis unreachable; retrying");
    }
}

/* One module finished draining (a suki_sched_done_cb). */
static void stop_step(void *arg)
{
    (void)arg;
    if (--stop_pending == 0)
        event_base_loopexit(D.base, NULL);
}

/* The intake scheduled jobs: the scheduler may need to wake sooner. */
static void nudge_sched(void *arg, int64_t due_ms)
{
    suki_sched_nudge(arg, due_ms);
}

static void finish_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop_step(arg);
}

static void begin_stop(void)
{
    if (D.stopping)
        return;
    D.stopping = true;
    suki_notice("stopping: finishing work in flight");
    notify("STOPPING=1\nSTATUS=stopping");
    stop_pending = 1;
    suki_inbound_stop(inbound);
    if (campaigns) {
        stop_pending++;
        suki_campaigns_stop(campaigns, stop_step, NULL);
    }
    if (sched) {
        stop_pending++;
        suki_sched_stop(sched, stop_step, NULL);
    }
    if (intake) {
        stop_pending++;
        suki_intake_stop(intake, stop_step, NULL);
    }
    /* Nothing long-running is in flight yet at this layer; modules that
     * hold work extend the stop through their own drain hooks. */
    struct timeval tv = {0, 0};
    stop_timer = evtimer_new(D.base, finish_stop, NULL);
    evtimer_add(stop_timer, &tv);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (sig == SIGINT && ++sigint_count > 1) {
        suki_warnx("second SIGINT: exiting now");
        exit(1);
    }
    suki_notice("received %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    begin_stop();
}

static void reload(void)
{
    struct suki_conf_diags d = {0};
    struct confset cs;
    notify("RELOADING=1\nSTATUS=reloading configuration");
    suki_notice("SIGHUP: reloading %s", conf_path);
    int rc = confset_load(conf_path, &cs, &d);
    if (rc == 0 && spools_prepare(cs.conf, true, conf_path, &d) < 0) {
        confset_free(&cs);
        rc = -EINVAL;
    }
    if (rc < 0) {
        for (size_t i = 0; i < d.n; i++)
            suki_err_log("reload: %s:%d: %s", d.v[i].file, d.v[i].line,
                         d.v[i].msg);
        suki_err_log("reload failed: keeping the running configuration");
        suki_conf_diags_clear(&d);
        notify("READY=1\nSTATUS=running; last reload failed");
        return;
    }
    suki_conf_diags_clear(&d);
    struct suki_conf *old = D.conf;
    if (strcmp(old->redis_url, cs.conf->redis_url) != 0)
        suki_warnx("reload: redis url changes take effect at the next "
                   "reconnect");
    suki_redis_set_conf(D.redis, cs.conf);
    D.conf = cs.conf;
    /* The old rules borrow the old holidays: release them first. Nothing
     * keeps a pointer to a ruleset across a callback, so the swap is safe
     * while work is in flight. */
    suki_rules_free(D.rules);
    D.rules = cs.rules;
    suki_holidays_free(D.holidays);
    D.holidays = cs.holidays;
    suki_templates_free(D.templates);
    D.templates = cs.templates;
    if (suki_dispatch_configure(D.dispatch, D.conf->transports,
                                D.conf->n_transports) < 0)
        suki_warnx("reload: the new transports were refused; keeping the "
                   "old ones");
    suki_sched_reload(sched);
    suki_intake_reload(intake);
    suki_log_level = D.conf->log_level;
    suki_agent_reload(agent);
    suki_conf_unref(old);
    suki_http_reload(http_srv);
    /* the console reads its other settings live */
    if (strcmp(D.conf->console_listen, console_listen) != 0)
        suki_warnx("console: listen changed to \"%s\"; still \"%s\" until "
                   "restart",
                   D.conf->console_listen, console_listen);
    suki_notice("configuration reloaded");
    notify("READY=1\nSTATUS=running; configuration reloaded");
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    if (!D.stopping)
        reload();
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int64_t now = suki_mono_ms();
    if (http_srv)
        suki_http_tick(http_srv);
    suki_console_tick(console);
    if (now - last_heartbeat_ms >= SUKI_HEARTBEAT_PERIOD_MS) {
        last_heartbeat_ms = now;
        suki_heartbeat_publish(heartbeat);
    }
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    /* The loop turning is what we vouch for: a stuck callback stops this
     * timer and systemd restarts us. */
    notify("WATCHDOG=1");
}

static int check_only(void)
{
    struct suki_conf_diags d = {0};
    struct confset cs;
    int rc = confset_load(conf_path, &cs, &d);
    print_diags(&d);
    suki_conf_diags_clear(&d);
    if (rc < 0) {
        fprintf(stderr, "%s: configuration has errors\n", conf_path);
        return 1;
    }
    /* The spool may well be made later, by systemd's StateDirectory= or by
     * sukid as it starts, so one that can't be is only a warning here. */
    if (spools_prepare(cs.conf, false, conf_path, &d) < 0) {
        for (size_t i = 0; i < d.n; i++)
            fprintf(stderr, "%s: warning: %s\n", d.v[i].file, d.v[i].msg);
        suki_conf_diags_clear(&d);
    }
    confset_free(&cs);
    printf("%s: configuration OK\n", conf_path);
    return 0;
}

/* The soft limit on descriptors is 1024 by default, and a few thousand
 * idle HTTP clients would take them all (Redis and nginx raise theirs the
 * same way): up to the hard limit, at most 65536. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536
                      ? 65536
                      : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            suki_info("descriptor limit raised to %llu",
                      (unsigned long long)want);
    }
}

int main(int argc, char **argv)
{
    bool test = false;
    /* The long forms are what a new user types first. */
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;
    /* Each batch allocates and frees a few hundred KiB. With the dispatch
     * threads running, glibc giving that back at once (heap trim, munmap)
     * costs a TLB shoot-down on every core each time: 16% of intake CPU in
     * a profile (the delivery agent, with its lane threads, alike). Keeping the
     * freed memory for the next batch bounds RSS by the peak, which the
     * benchmarks measure anyway. */
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    /* sukid's own binary, started again by sukid as its delivery agent */
    if (argc > 1 && strcmp(argv[1], SUKI_AGENT_ARG) == 0)
        return suki_agent_main(argc, argv);
    while ((opt = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            conf_path = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'V':
            printf("sukid %s\n", PACKAGE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    suki_log_init("sukid");
    if (test)
        return check_only();
    raise_nofile();

    struct suki_conf_diags d = {0};
    struct confset cs;
    int crc = confset_load(conf_path, &cs, &d);
    if (crc == 0 && spools_prepare(cs.conf, true, conf_path, &d) < 0) {
        confset_free(&cs);
        crc = -EINVAL;
    }
    if (crc < 0) {
        print_diags(&d);
        suki_conf_diags_clear(&d);
        suki_err_log("%s: configuration has errors; not starting", conf_path);
        return SUKI_EXIT_CONFIG;
    }
    suki_conf_diags_clear(&d);
    D.conf = cs.conf;
    D.holidays = cs.holidays;
    D.templates = cs.templates;
    D.rules = cs.rules;
    suki_log_level = D.conf->log_level;
    D.started_ms = suki_now_ms();
    char host[64];
    if (gethostname(host, sizeof(host)) < 0)
        suki_strlcpy(host, "localhost", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    snprintf(D.consumer, sizeof(D.consumer), "%s:%d:%lld", host, (int)getpid(),
             (long long)D.started_ms);

    signal(SIGPIPE, SIG_IGN);
    D.base = event_base_new();
    if (!D.base) {
        suki_err_log("cannot create the event loop");
        return 1;
    }
    struct event *sigs[3] = {
        evsignal_new(D.base, SIGTERM, on_sigterm, NULL),
        evsignal_new(D.base, SIGINT, on_sigterm, NULL),
        evsignal_new(D.base, SIGHUP, on_sighup, NULL),
    };
    for (size_t i = 0; i < 3; i++)
        evsignal_add(sigs[i], NULL);

    D.redis = suki_redis_new(D.base, D.conf, "main", on_redis_state, NULL);
    intake = suki_intake_new(&D);
    struct suki_err derr = {{0}};
    agent = suki_agent_new(D.base, &D.conf, &derr);
    if (!agent) {
        suki_err_log("%s; not starting", derr.msg);
        return 1;
    }
    D.dispatch = suki_dispatch_new(D.base, &derr);
    if (D.dispatch)
        suki_dispatch_set_agent(D.dispatch, agent);
    if (!D.dispatch || suki_dispatch_configure(D.dispatch, D.conf->transports,
                                               D.conf->n_transports) < 0) {
        suki_err_log("dispatch: %s; not starting",
                     derr.msg[0] ? derr.msg : "transports refused");
        return 1;
    }
    sched = suki_sched_new(&D);
    heartbeat = suki_heartbeat_new(&D);
    suki_intake_set_nudge(intake, nudge_sched, sched);
    campaigns = suki_campaigns_new(&D);
    inbound = suki_inbound_new(&D);
    if (D.conf->http_listen[0]) {
        /* Like a web server: a port we cannot bind is a startup error. */
        struct suki_err herr = {{0}};
        http_srv = suki_http_new(&D, &herr);
        if (!http_srv) {
            suki_err_log("%s; not starting", herr.msg);
            return 1;
        }
    }
    suki_strlcpy(console_listen, D.conf->console_listen,
                 sizeof(console_listen));
    if (D.conf->console_listen[0]) {
        struct suki_err cerr = {{0}};
        console = suki_console_new(&D, &cerr);
        if (!console) {
            suki_err_log("%s; not starting", cerr.msg);
            return 1;
        }
    }

    last_heartbeat_ms = suki_mono_ms();
    tick_ev = event_new(D.base, -1, EV_PERSIST, on_tick, NULL);
    SUKI_ASSERT(tick_ev);
    struct timeval ttv = {0, SUKI_TICK_MS * 1000};
    event_add(tick_ev, &ttv);

    const char *wd = getenv("WATCHDOG_USEC");
    int64_t wd_usec;
    if (wd && suki_parse_i64(wd, 1, INT64_MAX, &wd_usec) == 0) {
        watchdog_ev = event_new(D.base, -1, EV_PERSIST, on_watchdog, NULL);
        struct timeval tv = {(wd_usec / 2) / 1000000, (wd_usec / 2) % 1000000};
        event_add(watchdog_ev, &tv);
    }
    suki_notice("sukid %s starting (config %s, consumer %s)", PACKAGE_VERSION,
                conf_path, D.consumer);
    notify("STATUS=connecting to redis");

    event_base_dispatch(D.base);

    /* Sends still running are cancelled (their jobs stay leased), then the
     * scheduler goes. Each module cancels its own calls still waiting on
     * D.redis (suki_redis_cancel); fire's orphaned jobs are freed by
     * suki_redis_free's callbacks. */
    suki_heartbeat_free(heartbeat);
    suki_inbound_free(inbound);
    suki_campaigns_free(campaigns);
    suki_dispatch_free(D.dispatch);
    int agent_rc = suki_agent_free(agent, D.conf->shutdown_timeout_ms);
    suki_sched_free(sched);
    suki_console_free(console);
    suki_http_free(http_srv);
    suki_intake_free(intake);
    suki_redis_free(D.redis);
    for (size_t i = 0; i < 3; i++)
        event_free(sigs[i]);
    if (stop_timer)
        event_free(stop_timer);
    if (watchdog_ev)
        event_free(watchdog_ev);
    event_free(tick_ev);
    suki_rules_free(D.rules);
    suki_holidays_free(D.holidays);
    suki_templates_free(D.templates);
    suki_conf_unref(D.conf);
    suki_redis_cleanup(D.base);
    event_base_free(D.base);
    suki_notice("stopped");
    return agent_rc < 0 ? 1 : 0;
}
