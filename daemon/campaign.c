/* campaign.c - the campaign manager and runners (see campaign.h). */
#include "campaign.h"
#include "store/keys.h"
#include "store/report.h"
#include "store/job.h"
#include "store/scripts.h"
#include "conf.h"
#include "daemon.h"
#include "deliver/compose.h"
#include "deliver.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"
#include "redis.h"
#include "rules.h"
#include "template.h"
#include "unsub.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANAGER_TICK_MS 250
#define SCAN_COUNT 200
/* Keys every runner script gets (campaign-common.inc.lua). */
#define RUNNER_NKEYS 7
#define RETRY_BASE_MS 2000
#define WINDOW_MIN 16
#define WINDOW_MAX 512
/* Messages built per turn of the loop: building is the slow part, and
 * replies (and the outcomes they bring) should not wait behind it. */
#define PUMP_BATCH 16

/* ---- pure helpers ------------------------------------------------- */

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

int suki_audience_parse(const char *s, enum suki_audience_kind *kind,
                        char **value, struct suki_err *err)
{
    static const struct {
        const char *pfx;
        enum suki_audience_kind k;
    } kinds[] = {{"segment=", SUKI_AUDIENCE_SEGMENT},
                 {"tag=", SUKI_AUDIENCE_TAG},
                 {"set=", SUKI_AUDIENCE_SET}};
    *value = NULL;
    if (strcmp(s, "all") == 0) {
        *kind = SUKI_AUDIENCE_ALL;
        return 0;
    }
    for (size_t i = 0; i < SUKI_ARRAY_LEN(kinds); i++) {
        size_t n = strlen(kinds[i].pfx);
        if (strncmp(s, kinds[i].pfx, n) != 0)
            continue;
        const char *v = s + n;
        if (!*v || has_ctl(v) || strlen(v) > 256)
            return suki_err_set(err, -EINVAL,
                                "audience '%s': the value after '=' must be "
                                "1 to 256 printable characters",
                                s);
        if (kinds[i].k == SUKI_AUDIENCE_TAG && strchr(v, ','))
            return suki_err_set(err, -EINVAL,
                                "audience '%s': a tag cannot contain ','", s);
        *kind = kinds[i].k;
        *value = suki_strdup(v);
        return 0;
    }
    return suki_err_set(err, -EINVAL,
                        "audience '%s': use all, segment=X, tag=X or "
                        "set=KEY",
                        s);
}

const char *suki_audience_kind_name(enum suki_audience_kind k)
{
    switch (k) {
    case SUKI_AUDIENCE_SEGMENT:
        return "segment";
    case SUKI_AUDIENCE_TAG:
        return "tag";
    case SUKI_AUDIENCE_SET:
        return "set";
    default:
        return "all";
    }
}

bool suki_campaign_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SUKI_CAMPAIGN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

double suki_campaign_scan_fraction(uint64_t cursor)
{
    uint64_t r = 0;
    for (int i = 0; i < 64; i++) {
        r = (r << 1) | (cursor & 1);
        cursor >>= 1;
    }
    return (double)r / 18446744073709551616.0;
}

bool suki_campaign_error_trips(uint64_t failed, uint64_t total,
                               uint64_t min_total, double threshold)
{
    if (total == 0 || total < min_total)
        return false;
    return (double)failed / (double)total > threshold;
}

/* ---- Lua scripts -------------------------------------------------- */

static struct suki_redis_script walk_script = {
    "campaign-walk", suki_lua_campaign_walk, {0}};

static struct suki_redis_script take_script = {
    "campaign-take", suki_lua_campaign_take, {0}};

static struct suki_redis_script outcome_script = {
    "campaign-outcome", suki_lua_campaign_outcome, {0}};

static struct suki_redis_script claim_script = {
    "campaign-claim", suki_lua_campaign_claim, {0}};

static struct suki_redis_script renew_script = {
    "campaign-renew", suki_lua_campaign_renew, {0}};

static struct suki_redis_script release_script = {
    "campaign-release", suki_lua_campaign_release, {0}};

static struct suki_redis_script pause_script = {
    "campaign-pause", suki_lua_campaign_pause, {0}};

static struct suki_redis_script summary_script = {
    "campaign-summary", suki_lua_campaign_summary, {0}};

/* ---- data --------------------------------------------------------- */

enum phase {
    PH_PENDING, /* sending what is queued but taken by nobody */
    PH_WALK,    /* walking the audience */
    PH_TAIL,    /* walk done: waiting for the last outcomes */
    PH_SUMMARY, /* completed: the owner's summary is due */
    PH_END,     /* nothing more to do: release once in-flight is done */
};

struct recip {
    char *id;
    struct suki_client *prof; /* owned */
    int attempts;
    int64_t not_before; /* monotonic ms (retry backoff) */
    struct recip *next;
};

/* An outcome to write (kept and retried while Redis is away). */
struct outcome {
    char *id, *oc, *sent_key, *suppress;
    char *rfield; /* report counter field "sent_camp <manager>", or NULL */
    struct outcome *next;
};

struct runner {
    int refs;
    bool dead; /* detached from the manager: callbacks only free */
    struct suki_campaigns *cm;
    char *name, *token;
    char *k_hash, *k_ledger, *k_pending, *k_inflight, *k_supp, *k_lock;
    char *k_held;
    char *template_name, *owner;
    enum suki_audience_kind kind;
    char *aud_value;
    double rate; /* the campaign's own msgs/s; 0 = campaigns.rate */
    struct suki_dispatch_bucket bucket;
    double bucket_rate;
    enum phase phase;
    char restore;          /* the next take's restore mode ('0', '1' an earlier
                              runner's in-flight set is held, '2' it is ours) */
    int64_t held_at;       /* monotonic ms when the held set is due, or 0 */
    int64_t renew_sent_ms; /* monotonic ms the renewal in flight was sent */
    struct suki_dispatch_gate *gate; /* closes when the lease may end */
    bool fetching;                   /* a walk/take call is outstanding */
    bool stop;    /* paused, cancelled, lease lost or daemon stopping */
    bool redrain; /* retry asked: take the pending set again when idle */
    char *gen;
    struct recip *q_head, *q_tail; /* ready to send */
    size_t q_len;
    struct recip *retry; /* tempfailed, waiting for not_before */
    size_t inflight;     /* messages in the dispatcher */
    struct outcome *out_head, *out_tail; /* not yet written */
    int writes;           /* outcome writes awaiting their reply */
    int64_t out_retry_at; /* monotonic ms: no writes before (after a failure) */
    struct event *pump_ev, *renew_ev, *flush_ev;
    bool renewing;
    int64_t lease_ok_ms; /* monotonic ms of the last good renewal */
    bool summary_busy;
    struct runner *next;
};

struct suki_campaigns {
    struct suki_daemon *D;
    struct event *tick;
    bool claiming;
    bool stopping;
    suki_campaigns_done_cb done;
    void *done_arg;
    struct event *stop_ev;
    int64_t stop_deadline;
    struct runner *runners;
    size_t n_runners;
    unsigned long seq;
    char *claim_token;     /* token of the claim in flight */
    int64_t claim_sent_ms; /* monotonic ms that claim was sent */
    int releasing;         /* lease releases awaiting their answer */
    unsigned char *secret;
    size_t secret_len;
    bool secret_pending;
    bool secret_from_conf;
};

static void runner_pump(struct runner *ru);
static void runner_maybe_end(struct runner *ru);
static void check_stopped(struct suki_campaigns *cm);
static void arm_pump_later(struct runner *ru);

static struct runner *runner_ref(struct runner *ru)
{
    ru->refs++;
    return ru;
}

static void recip_free(struct recip *r)
{
    if (!r)
        return;
    free(r->id);
    suki_rules_client_free(r->prof);
    free(r);
}

static void outcome_free(struct outcome *o)
{
    free(o->id);
    free(o->oc);
    free(o->sent_key);
    free(o->suppress);
    free(o->rfield);
    free(o);
}

/* Forget what is waiting locally: those recipients stay queued in Redis
 * (in the in-flight set) and the next take with restore finds them. */
static void drop_queue(struct runner *ru)
{
    while (ru->q_head) {
        struct recip *r = ru->q_head;
        ru->q_head = r->next;
        recip_free(r);
    }
    ru->q_tail = NULL;
    ru->q_len = 0;
    while (ru->retry) {
        struct recip *r = ru->retry;
        ru->retry = r->next;
        recip_free(r);
    }
}

static void runner_unref(struct runner *ru)
{
    if (--ru->refs > 0)
        return;
    drop_queue(ru);
    while (ru->out_head) {
        struct outcome *o = ru->out_head;
        ru->out_head = o->next;
        outcome_free(o);
    }
    event_free(ru->pump_ev);
    event_free(ru->renew_ev);
    event_free(ru->flush_ev);
    free(ru->name);
    free(ru->token);
    free(ru->k_hash);
    free(ru->k_ledger);
    free(ru->k_pending);
    free(ru->k_inflight);
    free(ru->k_held);
    free(ru->k_supp);
    free(ru->k_lock);
    free(ru->template_name);
    free(ru->owner);
    free(ru->aud_value);
    free(ru->gen);
    suki_dispatch_gate_unref(ru->gate);
    free(ru);
}

static const struct suki_conf *conf_of(const struct runner *ru)
{
    return ru->cm->D->conf;
}

static struct suki_redis *redis_of(const struct runner *ru)
{
    return ru->cm->D->redis;
}

/* Messages in flight at once: a quarter second's worth, within bounds. */
static size_t window_of(double rate)
{
    if (rate <= 0)
        return WINDOW_MAX;
    double w = rate / 4;
    if (w < WINDOW_MIN)
        w = WINDOW_MIN;
    if (w > WINDOW_MAX)
        w = WINDOW_MAX;
    return (size_t)w;
}

/* min(campaign rate, transport rate); 0 = unlimited. */
static double effective_rate(const struct runner *ru)
{
    const struct suki_conf *c = conf_of(ru);
    double r = ru->rate > 0 ? ru->rate : c->campaign_rate;
    const struct suki_transport_conf *tc =
        suki_conf_transport(c, c->campaign_transport);
    if (tc && tc->rate > 0 && (r <= 0 || tc->rate < r))
        r = tc->rate;
    return r;
}

static void release_lease(struct suki_campaigns *cm, const char *lock,
                          const char *token);

/* Queue a runner-script call with the six runner keys first. The callback
 * gets a reference to ru. */
static int runner_eval(struct runner *ru, struct suki_redis_script *s,
                       suki_redis_cb cb, int nargs, const char **args)
{
    int argc = RUNNER_NKEYS + nargs;
    const char **av = suki_calloc((size_t)argc, sizeof(char *));
    const char *keys[RUNNER_NKEYS] = {
        ru->k_hash, ru->k_ledger, ru->k_pending, ru->k_inflight,
        ru->k_supp, ru->k_lock,   ru->k_held};
    for (int i = 0; i < RUNNER_NKEYS; i++)
        av[i] = keys[i];
    for (int i = 0; i < nargs; i++)
        av[RUNNER_NKEYS + i] = args[i];
    struct runner *ref = runner_ref(ru);
    int rc =
        suki_redis_eval(redis_of(ru), s, cb, ref, RUNNER_NKEYS, argc, av, NULL);
    if (rc < 0)
        runner_unref(ref);
    free(av);
    return rc;
}

static void on_ignore(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    (void)reply;
    (void)arg;
}

/* Stop sending; what is left stays queued in Redis. */
static void runner_halt(struct runner *ru)
{
    ru->stop = true;
    /* what waits in the dispatcher stays queued in Redis too */
    ru->gate->open_until_ms = 0;
    drop_queue(ru);
}

/* Pause the campaign (when it is running) with reason and stop here. */
static void runner_pause(struct runner *ru, const char *reason)
{
    suki_warnx("campaign %s: pausing: %s", ru->name, reason);
    const char *av[2] = {ru->k_hash, reason};
    (void)suki_redis_eval(redis_of(ru), &pause_script, on_ignore, NULL, 1, 2,
                          av, NULL);
    runner_halt(ru);
}

/* ---- outcomes ----------------------------------------------------- */

static void flush_outcomes(struct runner *ru);

struct wop {
    struct runner *ru;    /* ref */
    struct outcome *head; /* the batch being written (owned) */
};

static void on_outcomes(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct wop *op = arg;
    struct runner *ru = op->ru;
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY &&
              reply->elements >= 2 &&
              reply->element[0]->type == REDIS_REPLY_INTEGER &&
              reply->element[1]->type == REDIS_REPLY_INTEGER;
    if (ru->dead || ok) {
        if (!ok)
            suki_warnx("campaign %s: outcomes not recorded (daemon "
                       "stopping); their recipients stay queued",
                       ru->name);
        while (op->head) {
            struct outcome *o = op->head;
            op->head = o->next;
            outcome_free(o);
        }
    } else {
        /* Not written: put the batch back in front and retry from the
         * renewal tick. */
        suki_warnx(
            "campaign %s: cannot record outcomes (%s); retrying", ru->name,
            reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                      : "redis unreachable");
        struct outcome *t = op->head;
        while (t->next)
            t = t->next;
        t->next = ru->out_head;
        if (!ru->out_head)
            ru->out_tail = t;
        ru->out_head = op->head;
        ru->out_retry_at = suki_mono_ms() + SUKI_CAMPAIGN_RENEW_MS;
    }
    free(op);
    if (!ru->dead) {
        ru->writes--;
        if (ok) {
            if (reply->element[1]->integer == 1) {
                suki_warnx("campaign %s: paused: the error rate passed "
                           "campaigns.error_threshold",
                           ru->name);
                runner_halt(ru);
            }
            if (reply->element[0]->integer == 1) {
                suki_notice("campaign %s: completed", ru->name);
                ru->phase = *ru->owner ? PH_SUMMARY : PH_END;
            }
            if (ru->out_head)
                flush_outcomes(ru);
        }
        runner_pump(ru);
        runner_maybe_end(ru);
    }
    runner_unref(ru);
}

/* Write up to 256 buffered outcomes in one script call. Several calls may
 * be outstanding: an outcome is written as soon as it is known, because a
 * message the server took but the ledger does not show yet is what a crash
 * would send twice. */
static void flush_outcomes(struct runner *ru)
{
    if (!ru->out_head || ru->dead || suki_mono_ms() < ru->out_retry_at)
        return;
    const struct suki_conf *c = conf_of(ru);
    struct wop *op = suki_calloc(1, sizeof(*op));
    size_t n = 0;
    struct outcome **tail = &op->head;
    while (ru->out_head && n < 256) {
        struct outcome *o = ru->out_head;
        ru->out_head = o->next;
        o->next = NULL;
        *tail = o;
        tail = &o->next;
        n++;
    }
    if (!ru->out_head)
        ru->out_tail = NULL;
    size_t nargs = 6 + 6 * n;
    const char **av = suki_calloc(nargs, sizeof(char *));
    char now[32], emin[32], thr[32], ttl[32];
    snprintf(now, sizeof(now), "%" PRId64, suki_now_ms());
    snprintf(emin, sizeof(emin), "%d", c->campaign_error_min);
    snprintf(thr, sizeof(thr), "%.6f", c->campaign_error_threshold);
    snprintf(ttl, sizeof(ttl), "%d", SUKI_KEY_SENT_TTL_S);
    av[0] = ru->token;
    av[1] = ttl;
    av[2] = now;
    av[3] = emin;
    av[4] = thr;
    /* campaign mail counts in the report of the month it went out */
    char mon[8];
    char *rk = c->reports && suki_report_month(suki_now_ms(),
                                               c->report_timezone, mon) == 0
                   ? suki_key_id(c->prefix, SUKI_KEY_REPORT, mon)
                   : NULL;
    av[5] = rk ? rk : "";
    size_t k = 6;
    /* the markers' values: what inbound mail naming them is about */
    char **recs = suki_calloc(n ? n : 1, sizeof(char *));
    size_t nr = 0;
    for (struct outcome *o = op->head; o; o = o->next) {
        av[k++] = o->id;
        av[k++] = o->oc;
        av[k++] = o->sent_key ? o->sent_key : "";
        if (o->sent_key) {
            recs[nr] = suki_job_key(SUKI_CAMPAIGN_RULE, o->id, ru->name, NULL);
            av[k++] = recs[nr++];
        } else {
            av[k++] = "";
        }
        av[k++] = o->suppress ? o->suppress : "";
        av[k++] = o->rfield ? o->rfield : "";
    }
    op->ru = ru; /* the reference is taken by runner_eval */
    int argc = RUNNER_NKEYS + (int)nargs;
    const char **all = suki_calloc((size_t)argc, sizeof(char *));
    const char *keys[RUNNER_NKEYS] = {
        ru->k_hash, ru->k_ledger, ru->k_pending, ru->k_inflight,
        ru->k_supp, ru->k_lock,   ru->k_held};
    for (int i = 0; i < RUNNER_NKEYS; i++)
        all[i] = keys[i];
    for (size_t i = 0; i < nargs; i++)
        all[RUNNER_NKEYS + i] = av[i];
    runner_ref(ru);
    int rc = suki_redis_eval(redis_of(ru), &outcome_script, on_outcomes, op,
                             RUNNER_NKEYS, argc, all, NULL);
    free(all);
    free(av);
    free(rk);
    for (size_t i = 0; i < nr; i++)
        free(recs[i]);
    free(recs);
    if (rc < 0) {
        /* link down: back in front, retried from the renewal tick */
        struct outcome *t = op->head;
        while (t->next)
            t = t->next;
        t->next = ru->out_head;
        if (!ru->out_head)
            ru->out_tail = t;
        ru->out_head = op->head;
        ru->out_retry_at = suki_mono_ms() + SUKI_CAMPAIGN_RENEW_MS;
        free(op);
        runner_unref(ru);
        return;
    }
    ru->writes++;
}

static void on_flush_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_outcomes(arg);
}

/* The manager a sent campaign mail counts for in the report (the
 * client's; "" for none), or NULL when no reports are kept. */
static const char *report_manager(struct runner *ru, const struct recip *rc)
{
    if (!conf_of(ru)->reports)
        return NULL;
    const char *m = suki_rules_client_get(rc->prof, "manager");
    return m ? m : "";
}

static void add_outcome(struct runner *ru, const char *id, const char *oc,
                        const char *sent_key, const char *suppress,
                        const char *manager)
{
    struct outcome *o = suki_calloc(1, sizeof(*o));
    if (manager)
        o->rfield = suki_asprintf("sent_camp %s", manager);
    o->id = suki_strdup(id);
    o->oc = suki_strdup(oc);
    for (char *p = o->oc; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    o->sent_key = sent_key ? suki_strdup(sent_key) : NULL;
    o->suppress = suppress ? suki_strdup(suppress) : NULL;
    if (ru->out_tail)
        ru->out_tail->next = o;
    else
        ru->out_head = o;
    ru->out_tail = o;
    /* Written at the next turn of the loop, together with whatever else
     * completes in this one. */
    struct timeval tv = {0, 0};
    if (!ru->dead && !evtimer_pending(ru->flush_ev, NULL))
        evtimer_add(ru->flush_ev, &tv);
}

/* ---- sending ------------------------------------------------------ */

struct cmsg {
    struct runner *ru; /* ref */
    struct recip *rc;  /* owned */
    char *msgid;
    char *marker; /* its P:sent key */
    char *addr;   /* lower-cased recipient */
};

struct lookup_ctx {
    const struct runner *ru;
    const struct recip *rc;
    const char *unsub_url;
};

/* Template variables as for reminders: client.*, manager,
 * unsubscribe_url, plus campaign.name (rule.name gives the same). */
static const char *lookup(const char *var, void *arg)
{
    const struct lookup_ctx *c = arg;
    if (strncmp(var, "client.", 7) == 0) {
        if (strcmp(var + 7, "id") == 0)
            return c->rc->id;
        return suki_rules_client_get(c->rc->prof, var + 7);
    }
    if (strcmp(var, "unsubscribe_url") == 0)
        return c->unsub_url;
    if (strcmp(var, "campaign.name") == 0 || strcmp(var, "rule.name") == 0)
        return c->ru->name;
    if (strcmp(var, "manager") == 0) {
        const char *m = suki_rules_client_get(c->rc->prof, "manager");
        return m && *m ? m : NULL;
    }
    return NULL;
}

static void on_sent(const struct suki_dispatch_result *res, void *arg)
{
    struct cmsg *m = arg;
    struct runner *ru = m->ru;
    struct recip *rc = m->rc;
    if (!ru->dead)
        ru->inflight--;
    if (res->status == SUKI_DISPATCH_SENT) {
        /* Recorded even by a detached runner: it was delivered. */
        if (!ru->dead)
            add_outcome(ru, rc->id, "sent", m->marker, NULL,
                        report_manager(ru, rc));
        suki_metrics.campaign_msgs[SUKI_MSG_SENT]++;
        suki_metrics_msg(res->channel, SUKI_MSG_SENT);
        recip_free(rc);
    } else if (ru->dead || res->cancelled || ru->stop) {
        /* Stays queued in the ledger: the next runner sends it. */
        if (res->cancelled && !ru->dead && !ru->stop) {
            suki_warnx("campaign %s: the lease may have ended before %s "
                       "could go out; stopping here",
                       ru->name, m->addr);
            runner_halt(ru);
        }
        recip_free(rc);
    } else if (res->status == SUKI_DISPATCH_TEMPFAIL &&
               rc->attempts < SUKI_CAMPAIGN_MAX_ATTEMPTS) {
        int64_t wait = (int64_t)RETRY_BASE_MS << (rc->attempts - 1);
        if (res->retry_after_ms > wait)
            wait = res->retry_after_ms;
        rc->not_before = suki_mono_ms() + wait;
        rc->next = ru->retry;
        ru->retry = rc;
        suki_metrics.campaign_msgs[SUKI_MSG_RETRIED]++;
        suki_metrics_msg(res->channel, SUKI_MSG_RETRIED);
        suki_info("campaign %s: %s: temporary failure (%s); retry in %" PRId64
                  " ms",
                  ru->name, m->addr, res->reply, wait);
    } else {
        /* Permanent, or temporary too often. A 5xx refusal of the
         * recipient itself means the address is no good: suppress it. */
        bool addr_refused = res->n_rcpts == 1 &&
                            res->rcpts[0].status == SUKI_DISPATCH_PERMFAIL &&
                            res->rcpts[0].code >= 500 &&
                            res->rcpts[0].code < 600;
        char *oc = suki_asprintf(
            "failed:%s%.160s",
            res->status == SUKI_DISPATCH_TEMPFAIL ? "temporary: " : "",
            res->reply);
        add_outcome(ru, rc->id, oc, NULL, addr_refused ? m->addr : NULL, NULL);
        free(oc);
        suki_metrics.campaign_msgs[SUKI_MSG_FAILED]++;
        suki_metrics_msg(res->channel, SUKI_MSG_FAILED);
        if (addr_refused)
            suki_info("campaign %s: %s refused permanently (%s); suppressed",
                      ru->name, m->addr, res->reply);
        recip_free(rc);
    }
    free(m->msgid);
    free(m->marker);
    free(m->addr);
    free(m);
    if (!ru->dead) {
        runner_pump(ru);
        runner_maybe_end(ru);
    }
    runner_unref(ru);
}

static const struct suki_transport_conf *email_transport(struct runner *ru)
{
    const struct suki_conf *c = conf_of(ru);
    const struct suki_transport_conf *tc =
        suki_conf_transport(c, c->campaign_transport);
    char why[200];
    if (!tc) {
        snprintf(why, sizeof(why), "channel '%s' is not configured",
                 c->campaign_transport);
        runner_pause(ru, why);
        return NULL;
    }
    if (tc->kind == SUKI_TRANSPORT_HTTP) {
        snprintf(why, sizeof(why),
                 "channel '%s' is a webhook; campaigns need email",
                 c->campaign_transport);
        runner_pause(ru, why);
        return NULL;
    }
    return tc;
}

/* Render, build and hand one message to the dispatcher. Returns 0 when rc
 * was consumed (handed over or given an outcome), -ENOBUFS when the
 * dispatcher is full and -ECANCELED when the runner paused itself (rc
 * untouched in both cases). */
static int send_one(struct runner *ru, struct recip *rc)
{
    struct suki_campaigns *cm = ru->cm;
    const struct suki_conf *c = conf_of(ru);
    const struct suki_transport_conf *tc = email_transport(ru);
    if (!tc)
        return -ECANCELED;
    if (!cm->D->templates ||
        !suki_templates_has(cm->D->templates, ru->template_name)) {
        char why[200];
        snprintf(why, sizeof(why), "template '%.100s' is not loaded",
                 ru->template_name);
        runner_pause(ru, why);
        return -ECANCELED;
    }
    const char *email = suki_rules_client_get(rc->prof, "email");
    if (!email || !suki_mime_addr_valid(email)) {
        add_outcome(ru, rc->id, "skipped:bad-address", NULL, NULL, NULL);
        suki_metrics.campaign_msgs[SUKI_MSG_SKIPPED]++;
        recip_free(rc);
        return 0;
    }
    struct suki_compose_sender snd;
    struct suki_err err = {{0}};
    if (suki_compose_sender_init(&snd, tc, true,
                                 suki_rules_client_get(rc->prof, "manager"),
                                 &err) < 0) {
        runner_pause(ru, err.msg);
        suki_compose_sender_clear(&snd);
        return -ECANCELED;
    }
    char *token = NULL, *url = NULL;
    if (suki_unsub_token_make(cm->secret, cm->secret_len, rc->id, email,
                              suki_now_ms() / 1000, &token, &err) == 0)
        url = suki_unsub_url(c->public_url, token);
    free(token);
    struct lookup_ctx lc = {ru, rc, url};
    struct suki_rendered rd;
    char *msgid = suki_compose_campaign_id(ru->name, rc->id, snd.from.addr);
    char *body = NULL;
    size_t len = 0;
    if (url && suki_compose_render(cm->D->templates, ru->template_name,
                                   suki_rules_client_get(rc->prof, "locale"),
                                   lookup, &lc, &rd, &err) == 0) {
        const char *nm = suki_rules_client_get(rc->prof, "name");
        struct suki_compose_mail mail = {
            .sender = &snd,
            .to = email,
            .to_name = nm && *nm && !has_ctl(nm) ? nm : NULL,
            .name_optional = true,
            .content = &rd,
            .message_id = msgid,
            .date_ms = suki_now_ms(),
            .list_unsubscribe = url};
        (void)suki_compose_mime(&mail, &body, &len, &err);
        suki_rendered_clear(&rd);
    } else if (!url) {
        suki_strlcpy(err.msg, "cannot make the unsubscribe link",
                     sizeof(err.msg));
    }
    int ret = 0;
    if (!body) {
        char *oc = suki_asprintf("failed:%s", err.msg);
        add_outcome(ru, rc->id, oc, NULL, NULL, NULL);
        free(oc);
        suki_metrics.campaign_msgs[SUKI_MSG_FAILED]++;
        recip_free(rc);
    } else {
        const char *rcpt[1] = {email};
        char *marker = suki_key_id(c->prefix, SUKI_KEY_SENT, msgid);
        char *record = suki_job_key(SUKI_CAMPAIGN_RULE, rc->id, ru->name, NULL);
        struct suki_outmsg om = {.channel = c->campaign_transport,
                                 .from = snd.from.addr,
                                 .rcpt = rcpt,
                                 .n_rcpt = 1,
                                 .body = body,
                                 .body_len = len,
                                 .message_id = msgid,
                                 .priority = SUKI_DISPATCH_PRIO_CAMPAIGN,
                                 .sent_marker = marker,
                                 .sent_marker_ttl_s = SUKI_KEY_SENT_TTL_S,
                                 .sent_value = record,
                                 .gate = ru->gate};
        struct cmsg *m = suki_calloc(1, sizeof(*m));
        m->rc = rc;
        m->msgid = msgid;
        m->addr = suki_unsub_addr_lower(suki_strdup(email));
        rc->attempts++;
        m->marker = marker;
        int src = suki_dispatch_send(cm->D->dispatch, &om, on_sent, m);
        free(record);
        if (src == 0) {
            m->ru = runner_ref(ru);
            ru->inflight++;
            msgid = NULL;
        } else {
            rc->attempts--;
            free(m->marker);
            free(m->addr);
            free(m);
            if (src == -ENOBUFS || src == -ECANCELED) {
                ret = -ENOBUFS;
            } else if (src == -ENOENT) {
                char why[200];
                snprintf(why, sizeof(why), "channel '%s' is not configured",
                         c->campaign_transport);
                runner_pause(ru, why);
                ret = -ECANCELED;
            } else {
                add_outcome(ru, rc->id, "failed:refused by the dispatcher",
                            NULL, NULL, NULL);
                recip_free(rc);
            }
        }
    }
    free(msgid);
    free(body);
    free(url);
    suki_compose_sender_clear(&snd);
    return ret;
}

/* ---- fetching recipients ------------------------------------------ */

static void push_recip(struct runner *ru, struct recip *r)
{
    r->next = NULL;
    if (ru->q_tail)
        ru->q_tail->next = r;
    else
        ru->q_head = r;
    ru->q_tail = r;
    ru->q_len++;
}

/* Take the recipients (id, profile pairs) of a script reply. */
static void take_recips(struct runner *ru, redisReply *reply, size_t from)
{
    for (size_t i = from; i + 1 < reply->elements; i += 2) {
        redisReply *id = reply->element[i], *pf = reply->element[i + 1];
        if (id->type != REDIS_REPLY_STRING || pf->type != REDIS_REPLY_ARRAY)
            continue;
        struct recip *r = suki_calloc(1, sizeof(*r));
        r->id = suki_strndup(id->str, id->len);
        r->prof = suki_rules_client_new(r->id);
        for (size_t j = 0; j + 1 < pf->elements; j += 2)
            if (pf->element[j]->type == REDIS_REPLY_STRING &&
                pf->element[j + 1]->type == REDIS_REPLY_STRING)
                suki_rules_client_set(r->prof, pf->element[j]->str,
                                      pf->element[j + 1]->str);
        push_recip(ru, r);
    }
}

static void mark_completed(struct runner *ru)
{
    suki_notice("campaign %s: completed", ru->name);
    ru->phase = *ru->owner ? PH_SUMMARY : PH_END;
}

/* The held field of a take or walk reply: -1 nothing held, 0 released
 * into the pending set now (take it), else ms until it is due. */
static void note_held(struct runner *ru, const redisReply *h)
{
    if (h->type != REDIS_REPLY_INTEGER || h->integer < 0) {
        ru->held_at = 0;
    } else if (h->integer == 0) {
        ru->held_at = 0;
        if (ru->phase == PH_WALK || ru->phase == PH_TAIL)
            ru->phase = PH_PENDING;
    } else {
        ru->held_at = suki_mono_ms() + h->integer;
    }
}

static void on_fetch(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct runner *ru = arg;
    if (ru->dead) {
        runner_unref(ru);
        return;
    }
    ru->fetching = false;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        suki_warnx("campaign %s: reading recipients failed: %s", ru->name,
                   reply && reply->type == REDIS_REPLY_ERROR
                       ? reply->str
                       : "redis unreachable");
        runner_unref(ru);
        return; /* the renewal tick pumps again */
    }
    const char *tag = reply->element[0]->str;
    if (strcmp(tag, "lost") == 0) {
        suki_warnx("campaign %s: lease lost; stopping here", ru->name);
        runner_halt(ru);
    } else if (strcmp(tag, "state") == 0) {
        runner_halt(ru);
    } else if (strcmp(tag, "done") == 0) {
        ru->phase = PH_TAIL;
        if (reply->elements > 2)
            note_held(ru, reply->element[2]);
        if (reply->elements > 1 && reply->element[1]->integer == 1)
            mark_completed(ru);
    } else if (strcmp(tag, "ok") == 0 && reply->elements >= 4 && !ru->stop) {
        bool completed = reply->element[2]->integer == 1;
        take_recips(ru, reply, 4);
        if (ru->phase == PH_PENDING) {
            ru->restore = '0';
            if (reply->element[1]->integer < SCAN_COUNT)
                ru->phase = PH_WALK; /* the pending set is empty now */
        } else if (ru->phase == PH_WALK &&
                   reply->element[1]->type == REDIS_REPLY_STRING &&
                   strcmp(reply->element[1]->str, "0") == 0) {
            ru->phase = PH_TAIL;
        }
        note_held(ru, reply->element[3]);
        if (completed)
            mark_completed(ru);
    }
    runner_pump(ru);
    runner_maybe_end(ru);
    runner_unref(ru);
}

static void fetch(struct runner *ru)
{
    const struct suki_conf *c = conf_of(ru);
    bool optin = strcmp(c->campaign_consent, "opt-in") == 0;
    char now[32], count[16], want[16], hold[32], mode[2] = {ru->restore, 0};
    snprintf(now, sizeof(now), "%" PRId64, suki_now_ms());
    snprintf(count, sizeof(count), "%d", SCAN_COUNT);
    /* a small first page, so the first message goes out at once */
    size_t n_want = ru->q_len == 0 && ru->inflight == 0
                        ? 64
                        : window_of(ru->bucket_rate) * 2;
    snprintf(want, sizeof(want), "%zu", n_want);
    const struct suki_transport_conf *tc =
        suki_conf_transport(c, c->campaign_transport);
    struct suki_mailbox from = {0};
    struct suki_err err = {{0}};
    if (tc && tc->from)
        (void)suki_mime_mailbox_parse(tc->from, &from, &err);
    char *dom = suki_compose_id_domain(from.addr);
    suki_mime_mailbox_clear(&from);
    int rc;
    if (ru->phase == PH_PENDING) {
        /* every transfer ends within its transport's timeout (the agent
         * enforces it); the margin covers the agent's marker write */
        snprintf(hold, sizeof(hold), "%" PRId64,
                 (tc ? tc->timeout_ms : 30000) + SUKI_CAMPAIGN_HOLD_MARGIN_MS);
        const char *av[9] = {ru->token,         c->prefix, count,
                             optin ? "1" : "0", now,       mode,
                             ru->name,          dom,       hold};
        rc = runner_eval(ru, &take_script, on_fetch, 9, av);
    } else {
        const char *av[10] = {ru->token,
                              c->prefix,
                              suki_audience_kind_name(ru->kind),
                              ru->aud_value ? ru->aud_value : "",
                              count,
                              optin ? "1" : "0",
                              want,
                              now,
                              ru->name,
                              dom};
        rc = runner_eval(ru, &walk_script, on_fetch, 10, av);
    }
    free(dom);
    if (rc == 0)
        ru->fetching = true;
}

/* ---- the summary for the owner ------------------------------------ */

struct summary_op {
    struct runner *ru; /* ref */
    char *sent_key;
};

static void on_summary_sent(const struct suki_dispatch_result *res, void *arg)
{
    struct summary_op *op = arg;
    struct runner *ru = op->ru;
    if (!ru->dead) {
        ru->summary_busy = false;
        ru->inflight--;
        if (res->status == SUKI_DISPATCH_SENT ||
            res->status == SUKI_DISPATCH_PERMFAIL) {
            bool sent = res->status == SUKI_DISPATCH_SENT;
            if (sent)
                suki_info("campaign %s: summary sent to %s", ru->name,
                          ru->owner);
            else
                suki_warnx("campaign %s: summary to %s failed: %s", ru->name,
                           ru->owner, res->reply);
            char ttl[16];
            snprintf(ttl, sizeof(ttl), "%d", sent ? SUKI_KEY_SENT_TTL_S : 0);
            const char *av[4] = {ru->k_hash, op->sent_key,
                                 sent ? "sent" : "failed", ttl};
            (void)suki_redis_eval(redis_of(ru), &summary_script, on_ignore,
                                  NULL, 2, 4, av, NULL);
            ru->phase = PH_END;
        } else if (!res->cancelled) {
            suki_warnx("campaign %s: summary to %s: %s; trying again", ru->name,
                       ru->owner, res->reply);
            arm_pump_later(ru);
        }
        runner_maybe_end(ru);
    }
    free(op->sent_key);
    free(op);
    runner_unref(ru);
}

static void on_summary_counts(struct suki_redis *r, redisReply *reply,
                              void *arg)
{
    (void)r;
    struct runner *ru = arg;
    if (ru->dead || !reply || reply->type != REDIS_REPLY_ARRAY) {
        if (!ru->dead)
            ru->summary_busy = false;
        runner_unref(ru);
        return;
    }
    struct suki_client *h = suki_rules_client_new(NULL);
    for (size_t j = 0; j + 1 < reply->elements; j += 2)
        if (reply->element[j]->type == REDIS_REPLY_STRING &&
            reply->element[j + 1]->type == REDIS_REPLY_STRING)
            suki_rules_client_set(h, reply->element[j]->str,
                                  reply->element[j + 1]->str);
#define F(n) (suki_rules_client_get(h, n) ? suki_rules_client_get(h, n) : "0")
    const struct suki_conf *c = conf_of(ru);
    const struct suki_transport_conf *tc =
        suki_conf_transport(c, c->campaign_transport);
    struct suki_compose_sender snd = {0};
    struct suki_mailbox to = {0};
    struct suki_err err = {{0}};
    char *body = NULL, *msgid = NULL;
    size_t len = 0;
    if (!tc) {
        suki_strlcpy(err.msg, "no campaign channel", sizeof(err.msg));
    } else if (suki_compose_sender_init(&snd, tc, false, NULL, &err) == 0 &&
               suki_mime_mailbox_parse(ru->owner, &to, &err) == 0) {
        msgid = suki_compose_summary_id(ru->name, F("gen"), snd.from.addr);
        struct suki_rendered rd = {0};
        rd.subject = suki_asprintf("Campaign %s completed: %s sent, %s failed",
                                   ru->name, F("sent"), F("failed"));
        rd.text = suki_asprintf(
            "Campaign %s has completed.\n\n"
            "template:  %s\naudience:  %s\n\n"
            "sent:      %s\nfailed:    %s\n"
            "skipped:   %s suppressed, %s without an address, %s without "
            "consent, %s with a bad address\n\n"
            "sukictl campaign status %s shows the details; sukictl "
            "campaign retry %s resends to the failed recipients.\n",
            ru->name, F("template"), F("audience"), F("sent"), F("failed"),
            F("skipped_suppressed"), F("skipped_no_address"),
            F("skipped_no_consent"), F("skipped_bad_address"), ru->name,
            ru->name);
        struct suki_compose_mail mail = {.sender = &snd,
                                         .to = to.addr,
                                         .to_name = to.name,
                                         .content = &rd,
                                         .message_id = msgid,
                                         .date_ms = suki_now_ms()};
        (void)suki_compose_mime(&mail, &body, &len, &err);
        suki_rendered_clear(&rd);
    }
#undef F
    suki_rules_client_free(h);
    ru->summary_busy = false;
    if (body) {
        const char *rcpt[1] = {to.addr};
        struct suki_outmsg om = {.channel = c->campaign_transport,
                                 .from = snd.from.addr,
                                 .rcpt = rcpt,
                                 .n_rcpt = 1,
                                 .body = body,
                                 .body_len = len,
                                 .message_id = msgid,
                                 .priority = SUKI_DISPATCH_PRIO_REMINDER,
                                 .sent_marker_ttl_s = SUKI_KEY_SENT_TTL_S};
        struct summary_op *op = suki_calloc(1, sizeof(*op));
        op->sent_key = suki_key_id(c->prefix, SUKI_KEY_SENT, msgid);
        om.sent_marker = op->sent_key;
        if (suki_dispatch_send(ru->cm->D->dispatch, &om, on_summary_sent, op) ==
            0) {
            op->ru = runner_ref(ru);
            ru->inflight++;
            ru->summary_busy = true;
        } else {
            free(op->sent_key);
            free(op);
            arm_pump_later(ru);
        }
    } else {
        suki_warnx("campaign %s: cannot build the summary for %s: %s", ru->name,
                   ru->owner, err.msg);
        ru->phase = PH_END;
    }
    free(body);
    free(msgid);
    suki_compose_sender_clear(&snd);
    suki_mime_mailbox_clear(&to);
    runner_maybe_end(ru);
    runner_unref(ru);
}

static void send_summary(struct runner *ru)
{
    if (ru->summary_busy || ru->inflight > 0 || ru->out_head || ru->writes > 0)
        return;
    const char *av[2] = {"HGETALL", ru->k_hash};
    struct runner *ref = runner_ref(ru);
    if (suki_redis_argv(redis_of(ru), on_summary_counts, ref, 0, 2, av, NULL) <
        0) {
        runner_unref(ref);
        return;
    }
    ru->summary_busy = true;
}

/* ---- the pump ----------------------------------------------------- */

static void arm_pump(struct runner *ru, int64_t ms)
{
    if (ru->dead)
        return;
    suki_timer_ms(ru->pump_ev, ms);
}

static void arm_pump_later(struct runner *ru)
{
    arm_pump(ru, 1000);
}

/* Send what the rate allows, and fetch more when the queue runs low. */
static void runner_pump(struct runner *ru)
{
    if (ru->dead)
        return;
    struct suki_campaigns *cm = ru->cm;
    if (ru->out_head && !evtimer_pending(ru->flush_ev, NULL))
        flush_outcomes(ru);
    if (ru->stop || cm->stopping)
        return;
    if (ru->phase == PH_SUMMARY) {
        send_summary(ru);
        return;
    }
    if (ru->phase == PH_END)
        return;
    if (ru->redrain) {
        /* retry: take the pending set again once nothing of ours is in
         * flight, so nothing goes out twice */
        drop_queue(ru);
        if (ru->inflight > 0 || ru->fetching || ru->out_head || ru->writes > 0)
            return;
        ru->redrain = false;
        ru->restore = '2';
        ru->phase = PH_PENDING;
    }
    if (ru->phase == PH_TAIL && ru->held_at > 0 &&
        suki_mono_ms() >= ru->held_at) {
        /* what an earlier runner left in flight is due: take it */
        ru->held_at = 0;
        ru->phase = PH_PENDING;
    }
    if (!cm->secret || !cm->D->dispatch)
        return;
    int64_t now = suki_mono_ms();
    double rate = effective_rate(ru);
    if (rate != ru->bucket_rate) {
        suki_dispatch_bucket_set_rate(&ru->bucket, rate, now);
        ru->bucket_rate = rate;
    }
    /* retries that are due go first */
    struct recip **pp = &ru->retry;
    while (*pp) {
        struct recip *r = *pp;
        if (r->not_before <= now) {
            *pp = r->next;
            r->next = ru->q_head;
            ru->q_head = r;
            if (!ru->q_tail)
                ru->q_tail = r;
            ru->q_len++;
        } else {
            pp = &r->next;
        }
    }
    size_t window = window_of(rate);
    int64_t wake = -1;
    int built = 0;
    while (ru->q_head && ru->inflight < window && !ru->stop) {
        if (built++ == PUMP_BATCH) {
            wake = 0; /* go on at the next turn of the loop */
            break;
        }
        if (suki_dispatch_full(cm->D->dispatch)) {
            wake = 20;
            break;
        }
        if (!suki_dispatch_bucket_take(&ru->bucket, now)) {
            wake = suki_dispatch_bucket_wait_ms(&ru->bucket, now);
            if (wake < 1)
                wake = 1;
            break;
        }
        struct recip *r = ru->q_head;
        ru->q_head = r->next;
        if (!ru->q_head)
            ru->q_tail = NULL;
        ru->q_len--;
        int rc = send_one(ru, r);
        if (rc == -ENOBUFS) {
            push_recip(ru, r);
            wake = 20;
            break;
        }
        if (rc == -ECANCELED) {
            recip_free(r);
            break;
        }
    }
    for (struct recip *r = ru->retry; r; r = r->next) {
        int64_t w = r->not_before - now;
        if (w < 1)
            w = 1;
        if (wake < 0 || w < wake)
            wake = w;
    }
    if (wake >= 0)
        arm_pump(ru, wake);
    if (!ru->stop && !ru->fetching && ru->q_len < window &&
        (ru->phase == PH_PENDING || ru->phase == PH_WALK))
        fetch(ru);
}

static void on_pump_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    runner_pump(arg);
}

/* ---- lease renewal and the end of a runner ------------------------ */

static void runner_detach(struct runner *ru)
{
    struct suki_campaigns *cm = ru->cm;
    for (struct runner **pp = &cm->runners; *pp; pp = &(*pp)->next)
        if (*pp == ru) {
            *pp = ru->next;
            cm->n_runners--;
            break;
        }
    ru->dead = true;
    evtimer_del(ru->pump_ev);
    event_del(ru->renew_ev);
    evtimer_del(ru->flush_ev);
}

static void on_released(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)reply;
    struct suki_campaigns *cm = arg;
    if (!r)
        return; /* cancelled: the manager is going */
    cm->releasing--;
    check_stopped(cm);
}

/* Drop a lease (if it is still ours). A stop waits for the answer, so the
 * next daemon can take over at once. */
static void release_lease(struct suki_campaigns *cm, const char *lock,
                          const char *token)
{
    const char *av[2] = {lock, token};
    if (suki_redis_eval_owned(cm->D->redis, cm, &release_script, on_released,
                              cm, 1, 2, av, NULL) == 0)
        cm->releasing++;
}

/* End the runner when it has nothing more to do: stopped (or finished)
 * with nothing in flight and every outcome written. */
static void runner_maybe_end(struct runner *ru)
{
    if (ru->dead)
        return;
    bool finished = ru->phase == PH_END;
    if (!(ru->stop || finished || ru->cm->stopping))
        return;
    if (ru->inflight > 0 || ru->out_head || ru->writes > 0 || ru->fetching ||
        ru->summary_busy)
        return;
    struct suki_campaigns *cm = ru->cm;
    release_lease(cm, ru->k_lock, ru->token);
    suki_info("campaign %s: runner done (%s)", ru->name,
              finished ? "finished" : "stopped");
    runner_detach(ru);
    runner_unref(ru);
    check_stopped(cm);
}

static void on_renew(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct runner *ru = arg;
    if (ru->dead) {
        runner_unref(ru);
        return;
    }
    ru->renewing = false;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_STRING) {
        if (strcmp(reply->element[0]->str, "lost") == 0) {
            if (!ru->stop)
                suki_warnx("campaign %s: lease lost; another daemon may "
                           "continue",
                           ru->name);
            runner_halt(ru);
        } else if (reply->elements >= 4) {
            /* PEXPIRE ran after the renewal was sent: the lease lasts at
             * least LEASE_MS from then */
            ru->lease_ok_ms = ru->renew_sent_ms;
            if (!ru->stop)
                ru->gate->open_until_ms = ru->renew_sent_ms +
                                          SUKI_CAMPAIGN_LEASE_MS -
                                          SUKI_CAMPAIGN_GATE_MARGIN_MS;
            const char *st = reply->element[1]->str;
            const char *gen = reply->element[2]->str;
            const char *summary = reply->element[3]->str;
            bool done = ru->phase == PH_SUMMARY || ru->phase == PH_END;
            if (strcmp(st, "completed") == 0 && !done) {
                ru->phase = strcmp(summary, "pending") == 0 && *ru->owner
                                ? PH_SUMMARY
                                : PH_END;
                done = true;
            }
            bool ok = strcmp(st, "running") == 0 ||
                      (strcmp(st, "completed") == 0 && done);
            if (!ok && !ru->stop) {
                suki_notice("campaign %s: %s; stopping here", ru->name,
                            st[0] ? st : "deleted");
                runner_halt(ru);
            }
            if (strcmp(gen, ru->gen) != 0) {
                free(ru->gen);
                ru->gen = suki_strdup(gen);
                if (strcmp(st, "running") == 0) {
                    /* a retry while we were finishing: start over */
                    if (ru->phase == PH_END || ru->phase == PH_SUMMARY)
                        ru->phase = PH_TAIL;
                    ru->redrain = true;
                }
            }
        }
    } else if (suki_mono_ms() - ru->lease_ok_ms > SUKI_CAMPAIGN_LEASE_MS &&
               !ru->stop) {
        suki_warnx("campaign %s: cannot renew the lease; stopping here",
                   ru->name);
        runner_halt(ru);
    }
    runner_pump(ru);
    runner_maybe_end(ru);
    runner_unref(ru);
}

static void on_renew_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct runner *ru = arg;
    if (ru->renewing)
        return;
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", SUKI_CAMPAIGN_LEASE_MS);
    const char *av[4] = {ru->k_hash, ru->k_lock, ru->token, ttl};
    struct runner *ref = runner_ref(ru);
    ru->renew_sent_ms = suki_mono_ms();
    if (suki_redis_eval(redis_of(ru), &renew_script, on_renew, ref, 2, 4, av,
                        NULL) < 0) {
        runner_unref(ref);
        if (suki_mono_ms() - ru->lease_ok_ms > SUKI_CAMPAIGN_LEASE_MS &&
            !ru->stop) {
            suki_warnx("campaign %s: cannot renew the lease; stopping here",
                       ru->name);
            runner_halt(ru);
            runner_maybe_end(ru);
        }
        return;
    }
    ru->renewing = true;
}

/* ---- the manager -------------------------------------------------- */

static const char *hash_get(const redisReply *h, const char *field)
{
    for (size_t j = 0; j + 1 < h->elements; j += 2)
        if (h->element[j]->type == REDIS_REPLY_STRING &&
            strcmp(h->element[j]->str, field) == 0 &&
            h->element[j + 1]->type == REDIS_REPLY_STRING)
            return h->element[j + 1]->str;
    return NULL;
}

static void start_runner(struct suki_campaigns *cm, const char *name,
                         const char *token, const redisReply *h)
{
    const struct suki_conf *c = cm->D->conf;
    struct runner *ru = suki_calloc(1, sizeof(*ru));
    ru->refs = 1;
    ru->cm = cm;
    ru->name = suki_strdup(name);
    ru->token = suki_strdup(token);
    ru->k_hash = suki_key_id(c->prefix, SUKI_KEY_CAMPAIGN, name);
    ru->k_ledger = suki_key_id(c->prefix, SUKI_KEY_CLEDGER, name);
    ru->k_pending = suki_key_id(c->prefix, SUKI_KEY_CPENDING, name);
    ru->k_inflight = suki_key_id(c->prefix, SUKI_KEY_CINFLIGHT, name);
    ru->k_lock = suki_key_id(c->prefix, SUKI_KEY_CLOCK, name);
    ru->k_held = suki_key_id(c->prefix, SUKI_KEY_CHELD, name);
    ru->k_supp = suki_key(c->prefix, SUKI_KEY_SUPPRESSED);
    const char *t = hash_get(h, "template");
    const char *own = hash_get(h, "owner");
    const char *aud = hash_get(h, "audience");
    const char *rate = hash_get(h, "rate");
    const char *st = hash_get(h, "state");
    const char *summary = hash_get(h, "summary");
    const char *gen = hash_get(h, "gen");
    ru->template_name = suki_strdup(t ? t : "");
    ru->owner = suki_strdup(own ? own : "");
    ru->gen = suki_strdup(gen ? gen : "0");
    struct suki_err err = {{0}};
    bool bad_audience =
        !aud || suki_audience_parse(aud, &ru->kind, &ru->aud_value, &err) < 0;
    double r = 0;
    if (rate && *rate && suki_parse_rate(rate, &r, &err) < 0)
        r = 0;
    ru->rate = r;
    int64_t now = suki_mono_ms();
    ru->bucket_rate = effective_rate(ru);
    suki_dispatch_bucket_init(&ru->bucket, ru->bucket_rate, now);
    /* the lease began after the claim was sent: count from then */
    ru->lease_ok_ms = cm->claim_sent_ms;
    ru->gate =
        suki_dispatch_gate_new(cm->claim_sent_ms + SUKI_CAMPAIGN_LEASE_MS -
                               SUKI_CAMPAIGN_GATE_MARGIN_MS);
    ru->phase = PH_PENDING;
    ru->restore = '1';
    if (st && strcmp(st, "completed") == 0)
        ru->phase = summary && strcmp(summary, "pending") == 0 && *ru->owner
                        ? PH_SUMMARY
                        : PH_END;
    ru->pump_ev = evtimer_new(cm->D->base, on_pump_ev, ru);
    ru->flush_ev = evtimer_new(cm->D->base, on_flush_ev, ru);
    ru->renew_ev = event_new(cm->D->base, -1, EV_PERSIST, on_renew_ev, ru);
    SUKI_ASSERT(ru->pump_ev && ru->flush_ev && ru->renew_ev);
    struct timeval tv = {0, SUKI_CAMPAIGN_RENEW_MS * 1000};
    event_add(ru->renew_ev, &tv);
    ru->next = cm->runners;
    cm->runners = ru;
    cm->n_runners++;
    suki_notice("campaign %s: running here (template %s, audience %s, %.6g "
                "msgs/s)",
                name, ru->template_name, aud ? aud : "?", ru->bucket_rate);
    if (bad_audience) {
        char why[300];
        snprintf(why, sizeof(why), "bad audience: %s", aud ? err.msg : "none");
        runner_pause(ru, why);
        runner_maybe_end(ru);
        return;
    }
    runner_pump(ru);
    runner_maybe_end(ru);
}

static void on_claim(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct suki_campaigns *cm = arg;
    if (!r)
        return; /* cancelled: the manager is going */
    cm->claiming = false;
    char *token = cm->claim_token;
    cm->claim_token = NULL;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_ARRAY) {
        if (cm->stopping) {
            /* taken while we began to stop: give it back */
            char *k = suki_key_id(cm->D->conf->prefix, SUKI_KEY_CLOCK,
                                  reply->element[0]->str);
            release_lease(cm, k, token);
            free(k);
        } else {
            start_runner(cm, reply->element[0]->str, token, reply->element[1]);
        }
    }
    free(token);
}

/* Also called from inside suki_campaigns_free's cancel, with s NULL. */
static void on_secret(const char *s, size_t len, void *arg)
{
    struct suki_campaigns *cm = arg;
    cm->secret_pending = false;
    if (s && !cm->secret) {
        cm->secret = (unsigned char *)suki_strndup(s, len);
        cm->secret_len = len;
    }
}

static void clear_secret(struct suki_campaigns *cm)
{
    if (cm->secret) {
        OPENSSL_cleanse(cm->secret, cm->secret_len);
        suki_sfree(cm->secret);
    }
    cm->secret_len = 0;
    cm->secret_from_conf = false;
}

/* The unsubscribe secret: http.unsubscribe_secret_file, else the one
 * shared in Redis (as the HTTP server uses). */
static void refresh_secret(struct suki_campaigns *cm)
{
    const char *fs = cm->D->conf->unsubscribe_secret;
    if (fs && strlen(fs) >= SUKI_UNSUB_SECRET_MIN) {
        if (!cm->secret_from_conf || strlen(fs) != cm->secret_len ||
            CRYPTO_memcmp(fs, cm->secret, cm->secret_len) != 0) {
            clear_secret(cm);
            cm->secret = (unsigned char *)suki_strdup(fs);
            cm->secret_len = strlen(fs);
            cm->secret_from_conf = true;
        }
        return;
    }
    if (cm->secret_from_conf)
        clear_secret(cm);
    if (!cm->secret && !cm->secret_pending && suki_redis_is_up(cm->D->redis)) {
        char *k = suki_key(cm->D->conf->prefix, SUKI_KEY_SECRET);
        if (suki_unsub_secret_fetch(cm->D->redis, cm, k, on_secret, cm) == 0)
            cm->secret_pending = true;
        free(k);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_campaigns *cm = arg;
    if (cm->stopping)
        return;
    refresh_secret(cm);
    if (cm->claiming || !cm->secret || !cm->D->dispatch ||
        !suki_redis_is_up(cm->D->redis))
        return;
    size_t n = 5 + cm->n_runners;
    const char **av = suki_calloc(n, sizeof(char *));
    char *kc = suki_key(cm->D->conf->prefix, SUKI_KEY_CAMPAIGNS);
    char lease[16], now[32];
    snprintf(lease, sizeof(lease), "%d", SUKI_CAMPAIGN_LEASE_MS);
    snprintf(now, sizeof(now), "%" PRId64, suki_now_ms());
    free(cm->claim_token);
    cm->claim_token =
        suki_asprintf("%s:%lu", cm->D->consumer, (unsigned long)++cm->seq);
    av[0] = kc;
    av[1] = cm->D->conf->prefix;
    av[2] = cm->claim_token;
    av[3] = lease;
    av[4] = now;
    size_t k = 5;
    for (struct runner *ru = cm->runners; ru; ru = ru->next)
        av[k++] = ru->name;
    cm->claim_sent_ms = suki_mono_ms();
    if (suki_redis_eval_owned(cm->D->redis, cm, &claim_script, on_claim, cm, 1,
                              (int)k, av, NULL) == 0)
        cm->claiming = true;
    free(kc);
    free(av);
}

struct suki_campaigns *suki_campaigns_new(struct suki_daemon *D)
{
    struct suki_redis_script *scripts[] = {
        &walk_script,  &take_script,    &outcome_script, &claim_script,
        &renew_script, &release_script, &pause_script,   &summary_script};
    for (size_t i = 0; i < SUKI_ARRAY_LEN(scripts); i++)
        if (!scripts[i]->sha[0])
            suki_redis_script_init(scripts[i]);
    struct suki_campaigns *cm = suki_calloc(1, sizeof(*cm));
    cm->D = D;
    cm->tick = event_new(D->base, -1, EV_PERSIST, on_tick, cm);
    SUKI_ASSERT(cm->tick);
    struct timeval tv = {0, MANAGER_TICK_MS * 1000};
    event_add(cm->tick, &tv);
    return cm;
}

static void finish_stop(struct suki_campaigns *cm)
{
    if (cm->stop_ev)
        evtimer_del(cm->stop_ev);
    suki_campaigns_done_cb done = cm->done;
    cm->done = NULL;
    if (done)
        done(cm->done_arg);
}

static void check_stopped(struct suki_campaigns *cm)
{
    /* from the loop only: the stop timer calls finish_stop */
    if (cm->stopping && cm->done && cm->n_runners == 0 && cm->releasing == 0 &&
        cm->stop_ev && !evtimer_pending(cm->stop_ev, NULL)) {
        struct timeval tv = {0, 0};
        evtimer_add(cm->stop_ev, &tv);
    }
}

static void on_stop_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_campaigns *cm = arg;
    if (cm->n_runners == 0 && cm->releasing == 0) {
        finish_stop(cm);
        return;
    }
    if (suki_mono_ms() >= cm->stop_deadline) {
        suki_warnx("campaigns: %zu runner(s) still busy at the shutdown "
                   "timeout; their recipients stay queued",
                   cm->n_runners);
        finish_stop(cm);
        return;
    }
    struct timeval tv = {0, 50000};
    evtimer_add(cm->stop_ev, &tv);
}

void suki_campaigns_stop(struct suki_campaigns *cm, suki_campaigns_done_cb done,
                         void *arg)
{
    cm->stopping = true;
    cm->done = done;
    cm->done_arg = arg;
    cm->stop_deadline = suki_mono_ms() + cm->D->conf->shutdown_timeout_ms;
    if (!cm->stop_ev)
        cm->stop_ev = evtimer_new(cm->D->base, on_stop_ev, cm);
    for (struct runner *ru = cm->runners; ru; ru = ru->next) {
        runner_halt(ru);
        flush_outcomes(ru);
    }
    for (struct runner *ru = cm->runners, *nx; ru; ru = nx) {
        nx = ru->next;
        runner_maybe_end(ru);
    }
    struct timeval tv = {0, 0};
    evtimer_add(cm->stop_ev, &tv);
}

void suki_campaigns_free(struct suki_campaigns *cm)
{
    if (!cm)
        return;
    suki_redis_cancel(cm->D->redis, cm);
    while (cm->runners) {
        struct runner *ru = cm->runners;
        runner_detach(ru);
        runner_unref(ru);
    }
    event_free(cm->tick);
    if (cm->stop_ev)
        event_free(cm->stop_ev);
    clear_secret(cm);
    free(cm->claim_token);
    free(cm);
}
