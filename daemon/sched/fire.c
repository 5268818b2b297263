/* fire.c - the fire path: a claimed job becomes messages, the dispatcher's
 * results become one settle record. */
#include "fire.h"

#include "conf.h"
#include "daemon.h"
#include "deliver/compose.h"
#include "deliver.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "rules.h"
#include "store/job.h"
#include "store/keys.h"
#include "store/report.h"
#include "store/scripts.h"
#include "template.h"
#include "timeutil.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message refused for lack of room in the dispatcher comes back after
 * this long, without counting as an attempt. */
#define REQUEUE_MS 1000
/* Dispatcher backlog above which no more jobs are claimed. */
#define DISPATCH_HIGH_WATER 768

enum fmsg_state {
    FM_NEW,      /* built, not yet handed over */
    FM_WAITING,  /* in the dispatcher */
    FM_SENT,     /* accepted now */
    FM_SKIPPED,  /* accepted by an earlier run (P:sent marker) */
    FM_TEMPFAIL, /* try again later */
    FM_PERMFAIL, /* give up on this recipient */
    FM_REQUEUE,  /* the dispatcher had no room: retry soon, no attempt */
};

struct fjob;

/* One message of a job: one recipient (email) or the one webhook post. */
struct fmsg {
    struct fjob *fj;
    char *rcpt;  /* owned: the address, or NULL for a webhook */
    char *msgid; /* owned: "<hex@domain>" */
    char *body;  /* owned */
    size_t len;
    enum fmsg_state st;
    char *reply; /* owned: the server's reply on failure */
};

/* A job on its way through the fire path. */
struct fjob {
    struct suki_fire *f;          /* valid while sj is not orphaned */
    struct suki_sched_job *sj;    /* the claimed job */
    suki_fire_settle_cb settle;   /* where sj goes at the end (f's) */
    struct suki_conf *conf;       /* owned ref: the config it started with */
    struct suki_jobdata jd;       /* the parsed key and body */
    const struct suki_client *cl; /* the profile, only while on_profile()
                                     runs */
    char *channel;                /* owned */
    char *from; /* owned: the email sender's address or NULL */
    enum suki_transport_kind kind;
    struct fmsg *msgs; /* owned array */
    size_t n_msgs;
    size_t waiting;                  /* dispatcher callbacks outstanding */
    int64_t retry_after_ms;          /* the largest Retry-After seen */
    bool cancelled;                  /* the dispatcher was freed */
    struct suki_settle_op_args *ops; /* owned array: digest ops */
    size_t n_ops;
    char **strs; /* owned: the strings the ops point at */
    size_t n_strs;
    char *rmanager; /* owned: a rule job's manager for the report's
                       "reminders sent" ("" none), NULL: not counted */
};

/* Jobs waiting for one MGET of their sent markers. */
struct markbatch {
    struct fjob **jobs;
    size_t n, cap;
    size_t keys; /* markers asked for */
};

struct suki_fire {
    struct suki_daemon *D;
    suki_fire_settle_cb settle; /* the scheduler's completion */
    struct markbatch *marks;    /* being collected; sent from mark_ev */
    struct event *mark_ev;      /* zero-delay: send the marker batch */
};

/* ---- pure helpers ------------------------------------------------- */

int64_t suki_fire_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms,
                             int64_t retry_after_ms, uint64_t rnd)
{
    if (initial_ms < 1)
        initial_ms = 1;
    if (max_ms < initial_ms)
        max_ms = initial_ms;
    if (attempt < 1)
        attempt = 1;
    int64_t d = initial_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d = d > max_ms / 2 ? max_ms : d * 2;
    if (d > max_ms)
        d = max_ms;
    /* Equal jitter: half fixed, half random, so that many jobs failing at
     * once do not come back at once and the delay still grows. */
    int64_t half = d / 2;
    int64_t v = d - half + (int64_t)(rnd % (uint64_t)(half + 1));
    if (retry_after_ms > 86400000)
        retry_after_ms = 86400000;
    if (v < retry_after_ms)
        v = retry_after_ms;
    return v < 1 ? 1 : v;
}

/* ---- job state ---------------------------------------------------- */

static void fjob_free(struct fjob *fj)
{
    for (size_t i = 0; i < fj->n_msgs; i++) {
        free(fj->msgs[i].rcpt);
        free(fj->msgs[i].msgid);
        free(fj->msgs[i].body);
        free(fj->msgs[i].reply);
    }
    free(fj->msgs);
    free(fj->ops);
    for (size_t i = 0; i < fj->n_strs; i++)
        free(fj->strs[i]);
    free(fj->strs);
    suki_job_clear(&fj->jd);
    suki_conf_unref(fj->conf);
    free(fj->channel);
    free(fj->from);
    free(fj->rmanager);
    free(fj);
}

/* End the job: settle it (which frees sj) and free our state. */
static void finish(struct fjob *fj, const struct suki_settle *st)
{
    fj->settle(fj->sj, st);
    fjob_free(fj);
}

static bool orphaned(const struct fjob *fj)
{
    return suki_sched_job_orphaned(fj->sj);
}

/* Complete the job, writing one dead letter of kind "job". */
static void finish_dead_job(struct fjob *fj, const char *reason)
{
    suki_warnx("job %s: dead-lettered: %s", fj->sj->key, reason);
    struct suki_sched_dead d = {.kind = "job",
                                .reason = reason,
                                .payload = fj->sj->body,
                                .channel = fj->channel};
    struct suki_settle st = {
        .op = SUKI_SETTLE_COMPLETE, .dead = &d, .n_dead = 1};
    finish(fj, &st);
}

static void finish_simple(struct fjob *fj, enum suki_settle_op op)
{
    struct suki_settle st = {.op = op};
    finish(fj, &st);
}

/* ---- template variables ------------------------------------------- */

struct lookup_ctx {
    struct fjob *fj;
    const char *tz;
    const char *manager;
    char **pool; /* owned values handed to the renderer */
    size_t n_pool;
};

static const char *keep(struct lookup_ctx *c, char *owned)
{
    c->pool = suki_realloc(c->pool, (c->n_pool + 1) * sizeof(*c->pool));
    c->pool[c->n_pool++] = owned;
    return owned;
}

/* v (0 <= v < 10^n) as n decimal digits at p; returns the end. */
static char *put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

/* "2026-11-27 09:00 (Asia/Manila)" in the client's zone. */
static const char *local_time(struct lookup_ctx *c, int64_t ms)
{
    struct suki_tm tm;
    if (suki_time_to_local(ms, c->tz, &tm) < 0) {
        char buf[40];
        suki_time_format_rfc3339(ms, buf, sizeof(buf));
        return keep(c, suki_strdup(buf));
    }
    if (tm.year < 0 || tm.year > 9999)
        return keep(c, suki_asprintf("%04d-%02d-%02d %02d:%02d (%s)", tm.year,
                                     tm.mon, tm.mday, tm.hour, tm.min, c->tz));
    /* By hand: printf's %d costs more than the rest of a render. */
    size_t tzl = strlen(c->tz);
    char *out = suki_malloc(16 + 2 + tzl + 2);
    char *p = out;
    p = put_digits(p, tm.year, 4);
    *p++ = '-';
    p = put_digits(p, tm.mon, 2);
    *p++ = '-';
    p = put_digits(p, tm.mday, 2);
    *p++ = ' ';
    p = put_digits(p, tm.hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.min, 2);
    *p++ = ' ';
    *p++ = '(';
    memcpy(p, c->tz, tzl);
    p += tzl;
    *p++ = ')';
    *p = '\0';
    return keep(c, out);
}

static const char *lookup(const char *var, void *arg)
{
    struct lookup_ctx *c = arg;
    struct fjob *fj = c->fj;
    struct suki_event *ev = fj->jd.event;
    if (strncmp(var, "client.", 7) == 0) {
        if (strcmp(var + 7, "id") == 0)
            return fj->jd.client;
        return suki_rules_client_get(fj->cl, var + 7);
    }
    if (strncmp(var, "data.", 5) == 0) {
        if (!ev)
            return NULL;
        const char *v = suki_event_data_str(ev, var + 5);
        return v ? keep(c, suki_strdup(v)) : NULL;
    }
    if (strncmp(var, "event.", 6) == 0) {
        const char *f = var + 6;
        if (!ev)
            return NULL;
        if (strcmp(f, "type") == 0)
            return ev->type;
        if (strcmp(f, "id") == 0)
            return ev->id;
        if (strcmp(f, "client") == 0)
            return ev->client;
        if (strcmp(f, "manager") == 0)
            return ev->manager;
        if (strcmp(f, "at") == 0)
            return local_time(c, ev->at_ms);
        if (strncmp(f, "data.", 5) == 0) {
            const char *v = suki_event_data_str(ev, f + 5);
            return v ? keep(c, suki_strdup(v)) : NULL;
        }
        return NULL;
    }
    if (strncmp(var, "rule.", 5) == 0) {
        const char *f = var + 5;
        if (strcmp(f, "name") == 0)
            return fj->jd.rule;
        if (strcmp(f, "subject") == 0)
            return fj->jd.subject;
        if (strcmp(f, "slot") == 0)
            return fj->jd.slot;
        if (strcmp(f, "template") == 0)
            return fj->jd.template_name;
        if (strcmp(f, "channel") == 0)
            return fj->jd.channel;
        return NULL;
    }
    if (strcmp(var, "due") == 0)
        return local_time(c, fj->jd.due_ms);
    if (strcmp(var, "manager") == 0)
        return c->manager;
    return NULL; /* unsubscribe_url: empty for reminders */
}

static const char *manager_of(const struct fjob *fj)
{
    const struct suki_event *ev = fj->jd.event;
    if (ev && ev->manager && *ev->manager)
        return ev->manager;
    const char *m = suki_rules_client_get(fj->cl, "manager");
    return m && *m ? m : NULL;
}

static const char *client_tz(const struct fjob *fj)
{
    const char *tz = suki_rules_client_get(fj->cl, "timezone");
    if (tz && *tz && suki_tz_valid(tz))
        return tz;
    return fj->conf->timezone ? fj->conf->timezone : "UTC";
}

/* Render the job's template (or, for a rule without one, a plain default
 * text). Returns 0 or a negative errno with err filled. */
static int render(struct fjob *fj, struct suki_rendered *out,
                  struct suki_err *err)
{
    struct suki_templates *t = fj->f->D->templates;
    struct lookup_ctx c = {
        .fj = fj, .tz = client_tz(fj), .manager = manager_of(fj)};
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (fj->jd.template_name && *fj->jd.template_name) {
        const char *loc = suki_rules_client_get(fj->cl, "locale");
        rc = suki_compose_render(t, fj->jd.template_name, loc, lookup, &c, out,
                                 err);
    } else {
        const char *name = suki_rules_client_get(fj->cl, "name");
        out->subject = suki_asprintf("Reminder (%s): %s", fj->jd.rule,
                                     name && *name ? name : fj->jd.client);
        out->text = suki_asprintf(
            "Reminder from rule \"%s\" for client %s%s%s%s.\nDue: %s\n",
            fj->jd.rule, fj->jd.client, *fj->jd.subject ? " (" : "",
            fj->jd.subject, *fj->jd.subject ? ")" : "", lookup("due", &c));
    }
    for (size_t i = 0; i < c.n_pool; i++)
        free(c.pool[i]);
    free(c.pool);
    return rc;
}

/* ---- building the messages ---------------------------------------- */

static struct fmsg *add_msg(struct fjob *fj)
{
    fj->msgs = suki_realloc(fj->msgs, (fj->n_msgs + 1) * sizeof(*fj->msgs));
    struct fmsg *m = &fj->msgs[fj->n_msgs++];
    memset(m, 0, sizeof(*m));
    m->fj = fj;
    return m;
}

static void msg_fail(struct fmsg *m, enum fmsg_state st, const char *reply)
{
    m->st = st;
    free(m->reply);
    m->reply = suki_strdup(reply);
}

/* Build the messages of the job into fj->msgs. Returns 0, or a negative
 * errno with err filled when nothing can be built (a job-level problem). */
static int build(struct fjob *fj, const struct suki_transport_conf *tc,
                 char **rcpt, size_t n_rcpt, struct suki_err *err)
{
    struct suki_rendered rd;
    int rc = render(fj, &rd, err);
    if (rc < 0)
        return rc;
    if (tc->kind == SUKI_TRANSPORT_HTTP) {
        /* One post per job: the webhook is the audience. */
        struct fmsg *m = add_msg(fj);
        m->msgid = suki_compose_webhook_id(fj->jd.key, fj->jd.due_ms, tc->name);
        m->body = suki_compose_webhook_body(tc->format, rd.subject, rd.text,
                                            fj->jd.client, fj->jd.rule);
        m->len = strlen(m->body);
        suki_rendered_clear(&rd);
        return 0;
    }
    struct suki_compose_sender snd;
    rc = suki_compose_sender_init(&snd, tc, true, manager_of(fj), err);
    if (rc < 0) {
        suki_rendered_clear(&rd);
        return rc;
    }
    /* The envelope sender only when the transport names one. */
    if (tc->from && snd.from.addr) {
        free(fj->from);
        fj->from = suki_strdup(snd.from.addr);
    }
    struct suki_compose_mail cm = {.sender = &snd,
                                   .content = &rd,
                                   .date_ms = suki_now_ms(),
                                   .job_key = fj->jd.key};
    for (size_t i = 0; i < n_rcpt; i++) {
        struct fmsg *m = add_msg(fj);
        m->rcpt = suki_strdup(rcpt[i]);
        m->msgid = suki_compose_reminder_id(fj->jd.key, fj->jd.due_ms, rcpt[i],
                                            snd.from.addr);
        cm.to = rcpt[i];
        cm.message_id = m->msgid;
        struct suki_err berr = {{0}};
        if (suki_compose_mime(&cm, &m->body, &m->len, &berr) < 0)
            msg_fail(m, FM_PERMFAIL, berr.msg);
    }
    suki_compose_sender_clear(&snd);
    suki_rendered_clear(&rd);
    return 0;
}

/* ---- concluding --------------------------------------------------- */

static const char *fj_keep(struct fjob *fj, char *s);
static struct suki_settle_op_args *add_op(struct fjob *fj);

/* The report's "reminders sent" of the job's manager, in the month it
 * went out: an I op per message sent, counted once per message id (the
 * script marks its sent marker counted), whatever becomes of the job. */
static void count_sent(struct fjob *fj, const char *msgid)
{
    const struct suki_conf *c = fj->conf;
    char mon[8];
    if (!c->reports ||
        suki_report_month(suki_now_ms(), c->report_timezone, mon) < 0)
        return;
    struct suki_settle_op_args *o = add_op(fj);
    o->v[o->n++] = "I";
    o->v[o->n++] = fj_keep(fj, suki_key_id(c->prefix, SUKI_KEY_REPORT, mon));
    o->v[o->n++] = fj_keep(fj, suki_asprintf("sent_rem %s", fj->rmanager));
    o->v[o->n++] = msgid; /* lives with fj->msgs */
}

/* A T op: the message m sent, in the timeline of the job's client
 * (P:timeline:<client>, keys.h), when console.timeline keeps one. Jobs of
 * no client (digests, reports: rules starting with '~') have none. The
 * script pushes it once per message id, whatever becomes of the job. */
static void timeline_sent(struct fjob *fj, const struct fmsg *m)
{
    const struct suki_conf *c = fj->conf;
    if (c->console_timeline <= 0 || fj->jd.rule[0] == '~' || !fj->jd.client[0])
        return;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "k", "m", "r",
                          fj->jd.rule, "to", m->rcpt ? m->rcpt : fj->channel,
                          "at", (json_int_t)suki_now_ms(), "mid", m->msgid);
    char *d = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!d)
        return;
    struct suki_settle_op_args *t = add_op(fj);
    t->v[t->n++] = "T";
    t->v[t->n++] =
        fj_keep(fj, suki_key_id(c->prefix, SUKI_KEY_TIMELINE, fj->jd.client));
    t->v[t->n++] = fj_keep(fj, d);
    t->v[t->n++] = m->msgid; /* lives with fj->msgs */
    t->v[t->n++] = fj_keep(fj, suki_asprintf("%d", c->console_timeline));
    t->v[t->n++] = fj_keep(fj, suki_asprintf("%d", SUKI_TIMELINE_TTL_S));
}

static void conclude(struct fjob *fj)
{
    if (orphaned(fj)) {
        finish_simple(fj, SUKI_SETTLE_LEAVE);
        return;
    }
    const struct suki_transport_conf *tc =
        suki_conf_transport(fj->conf, fj->channel);
    /* On the stack for the usual few messages. */
    const char *marks_s[8];
    struct suki_sched_dead dead_s[8];
    char *reasons_s[8];
    bool heap = fj->n_msgs > 8;
    const char **marks =
        heap ? suki_calloc(fj->n_msgs, sizeof(char *)) : marks_s;
    struct suki_sched_dead *dead =
        heap ? suki_calloc(fj->n_msgs, sizeof(*dead)) : dead_s;
    char **reasons = heap ? suki_calloc(fj->n_msgs, sizeof(char *)) : reasons_s;
    size_t n_marks = 0, n_dead = 0, n_temp = 0, n_requeue = 0;
    for (size_t i = 0; i < fj->n_msgs; i++) {
        struct fmsg *m = &fj->msgs[i];
        if (m->st == FM_SENT) {
            marks[n_marks++] = m->msgid;
            suki_metrics_msg(fj->channel, SUKI_MSG_SENT);
            if (fj->rmanager)
                count_sent(fj, m->msgid);
            timeline_sent(fj, m);
        } else if (m->st == FM_TEMPFAIL || m->st == FM_WAITING ||
                   m->st == FM_NEW) {
            n_temp++;
        } else if (m->st == FM_REQUEUE) {
            n_requeue++;
        }
    }
    int next_attempt = fj->jd.attempt + 1;
    int max_attempts = tc && tc->max_attempts > 0 ? tc->max_attempts : 10;
    bool give_up = n_temp > 0 && next_attempt >= max_attempts && !fj->cancelled;
    for (size_t i = 0; i < fj->n_msgs; i++) {
        struct fmsg *m = &fj->msgs[i];
        bool perm = m->st == FM_PERMFAIL;
        bool exhausted = give_up && m->st == FM_TEMPFAIL;
        if (!perm && !exhausted)
            continue;
        char *reason =
            exhausted
                ? suki_asprintf("gave up after %d attempts: %s", next_attempt,
                                m->reply ? m->reply : "temporary failure")
                : suki_strdup(m->reply ? m->reply : "permanent failure");
        reasons[n_dead] = reason;
        dead[n_dead++] = (struct suki_sched_dead){
            .kind = "message",
            .reason = reason,
            .payload = fj->sj->body,
            .recipient = m->rcpt,
            .channel = fj->channel,
            .message_id = m->msgid,
        };
        suki_warnx("job %s: message %s%s%s failed: %s", fj->sj->key, m->msgid,
                   m->rcpt ? " to " : "", m->rcpt ? m->rcpt : "", reason);
        suki_metrics_msg(fj->channel, SUKI_MSG_FAILED);
    }
    struct suki_settle st = {.marks = marks,
                             .n_marks = n_marks,
                             .dead = dead,
                             .n_dead = n_dead,
                             .ops = fj->ops,
                             .n_ops = fj->n_ops};
    char *nb = NULL;
    int64_t now = suki_now_ms();
    if (fj->cancelled) {
        /* Shutting down: the lease brings the job back; what was sent is
         * recorded so it is not sent twice. */
        st.op = SUKI_SETTLE_LEAVE;
    } else if (n_temp > 0 && !give_up) {
        int64_t delay = suki_fire_backoff_ms(
            next_attempt, tc ? tc->retry_initial_ms : 60000,
            tc ? tc->retry_max_ms : 3600000, fj->retry_after_ms, suki_rand64());
        nb = suki_job_body_update(fj->sj->body, next_attempt, now + delay, 0);
        for (size_t i = 0; i < fj->n_msgs; i++)
            if (fj->msgs[i].st == FM_TEMPFAIL)
                suki_metrics_msg(fj->channel, SUKI_MSG_RETRIED);
        char db[32];
        suki_format_duration(delay, db, sizeof(db));
        suki_info("job %s: %zu message(s) failed temporarily; attempt %d "
                  "of %d in %s",
                  fj->sj->key, n_temp, next_attempt + 1, max_attempts, db);
        st.op = nb ? SUKI_SETTLE_RESCHEDULE : SUKI_SETTLE_LEAVE;
        st.due_ms = now + delay;
        st.new_body = nb;
    } else if (n_requeue > 0) {
        /* The dispatcher was full: come back soon, same attempt. */
        st.op = SUKI_SETTLE_RESCHEDULE;
        st.due_ms = now + REQUEUE_MS + (int64_t)(suki_rand64() % REQUEUE_MS);
        st.new_body = fj->sj->body;
    } else {
        st.op = SUKI_SETTLE_COMPLETE;
    }
    finish(fj, &st);
    free(nb);
    for (size_t i = 0; i < n_dead; i++)
        free(reasons[i]);
    if (heap) {
        free(reasons);
        free(dead);
        free(marks);
    }
}

/* ---- dispatching -------------------------------------------------- */

static void on_result(const struct suki_dispatch_result *r, void *arg)
{
    struct fmsg *m = arg;
    struct fjob *fj = m->fj;
    switch (r->status) {
    case SUKI_DISPATCH_SENT:
        m->st = FM_SENT;
        /* One line per accepted message, as an MTA logs its deliveries. */
        suki_info("job %s: to=%s%s%s, channel=%s, message-id=%s, status=sent "
                  "(%s)",
                  fj->sj->key, m->rcpt ? "<" : "",
                  m->rcpt ? m->rcpt : "webhook", m->rcpt ? ">" : "",
                  fj->channel, m->msgid, r->reply);
        break;
    case SUKI_DISPATCH_TEMPFAIL:
        msg_fail(m, FM_TEMPFAIL, r->reply);
        if (r->retry_after_ms > fj->retry_after_ms)
            fj->retry_after_ms = r->retry_after_ms;
        if (r->cancelled)
            fj->cancelled = true;
        break;
    case SUKI_DISPATCH_PERMFAIL:
    default:
        msg_fail(m, FM_PERMFAIL, r->reply);
        break;
    }
    if (--fj->waiting == 0)
        conclude(fj);
}

static void send_all(struct fjob *fj)
{
    struct suki_dispatch *d = fj->f->D->dispatch;
    for (size_t i = 0; i < fj->n_msgs; i++) {
        struct fmsg *m = &fj->msgs[i];
        if (m->st != FM_NEW)
            continue;
        if (!d) {
            /* The built-in log action: the log is the delivery. */
            suki_notice("job %s fired: \"%s\" via %s%s%s (message %s)",
                        fj->sj->key, fj->jd.rule, fj->channel,
                        m->rcpt ? " to " : "", m->rcpt ? m->rcpt : "",
                        m->msgid);
            m->st = FM_SENT;
            continue;
        }
        const char *rcpt[1] = {m->rcpt};
        char *marker = suki_key_id(fj->conf->prefix, SUKI_KEY_SENT, m->msgid);
        struct suki_outmsg om = {
            .sent_marker = marker,
            .sent_marker_ttl_s = SUKI_KEY_SENT_TTL_S,
            .sent_value = fj->sj->key,
            .channel = fj->channel,
            .from = fj->from ? fj->from : "",
            .rcpt = m->rcpt ? rcpt : NULL,
            .n_rcpt = m->rcpt ? 1 : 0,
            .body = m->body,
            .body_len = m->len,
            .message_id = m->msgid,
            .priority = SUKI_DISPATCH_PRIO_REMINDER,
        };
        int rc = suki_dispatch_send(d, &om, on_result, m);
        free(marker);
        if (rc == 0) {
            m->st = FM_WAITING;
            fj->waiting++;
        } else if (rc == -ENOBUFS) {
            m->st = FM_REQUEUE;
        } else if (rc == -ECANCELED) {
            m->st = FM_TEMPFAIL;
            fj->cancelled = true;
        } else {
            char why[128];
            snprintf(why, sizeof(why), "not accepted by the dispatcher: %s",
                     rc == -ENOENT ? "no such channel" : strerror(-rc));
            msg_fail(m, FM_PERMFAIL, why);
        }
    }
    if (fj->waiting == 0)
        conclude(fj);
}

/* ---- sent markers ------------------------------------------------- */

static size_t new_msgs(const struct fjob *fj)
{
    size_t n = 0;
    for (size_t i = 0; i < fj->n_msgs; i++)
        if (fj->msgs[i].st == FM_NEW)
            n++;
    return n;
}

static void markbatch_free(struct markbatch *b)
{
    if (!b)
        return;
    free(b->jobs);
    free(b);
}

/* The MGET of a batch answered: skip what an earlier run sent, send the
 * rest. Each job takes as many replies as it has new messages, in order. */
static void on_markers(struct suki_redis *r, redisReply *rep, void *arg)
{
    (void)r;
    struct markbatch *b = arg;
    bool ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == b->keys;
    if (!ok)
        suki_warnx("scheduler: cannot read the sent markers of %zu jobs (%s); "
                   "they come back when their lease ends",
                   b->n,
                   rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                                                         : "redis link down");
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct fjob *fj = b->jobs[i];
        if (!ok || orphaned(fj)) {
            k += new_msgs(fj);
            finish_simple(fj, SUKI_SETTLE_LEAVE);
            continue;
        }
        for (size_t x = 0; x < fj->n_msgs; x++) {
            struct fmsg *m = &fj->msgs[x];
            if (m->st != FM_NEW)
                continue;
            if (rep->element[k]->type == REDIS_REPLY_STRING) {
                m->st = FM_SKIPPED;
                suki_metrics_msg(fj->channel, SUKI_MSG_SKIPPED);
                suki_info("job %s: message %s was sent before; not again",
                          fj->sj->key, m->msgid);
            }
            k++;
        }
        send_all(fj);
    }
    markbatch_free(b);
}

/* Send the collected MGET (zero-delay timer: every job that got this far
 * in one turn of the loop shares it). */
static void on_mark_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_fire *f = arg;
    struct markbatch *b = f->marks;
    f->marks = NULL;
    if (!b)
        return;
    struct suki_redis_args a = {0};
    suki_redis_args_str(&a, "MGET");
    for (size_t i = 0; i < b->n; i++) {
        struct fjob *fj = b->jobs[i];
        for (size_t x = 0; x < fj->n_msgs; x++) {
            if (fj->msgs[x].st != FM_NEW)
                continue;
            char *k =
                suki_key_id(fj->conf->prefix, SUKI_KEY_SENT, fj->msgs[x].msgid);
            suki_redis_args_str(&a, k);
            free(k);
        }
    }
    const char **argv = suki_calloc(a.n, sizeof(char *));
    size_t *lens = suki_calloc(a.n, sizeof(size_t));
    suki_redis_args_ptrs(&a, argv, lens);
    int rc =
        suki_redis_argv(f->D->redis, on_markers, b, 0, (int)a.n, argv, lens);
    suki_redis_args_clear(&a);
    free(lens);
    free(argv);
    if (rc < 0)
        on_markers(f->D->redis, NULL, b);
}

static void check_markers(struct fjob *fj)
{
    size_t n = new_msgs(fj);
    if (n == 0) {
        conclude(fj);
        return;
    }
    fj->cl = NULL; /* the claim's, gone when this turn ends */
    struct suki_fire *f = fj->f;
    if (!f->marks)
        f->marks = suki_calloc(1, sizeof(*f->marks));
    struct markbatch *b = f->marks;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->jobs = suki_realloc(b->jobs, b->cap * sizeof(*b->jobs));
    }
    b->jobs[b->n++] = fj;
    b->keys += n;
    if (!evtimer_pending(f->mark_ev, NULL)) {
        struct timeval tv = {0, 0};
        evtimer_add(f->mark_ev, &tv);
    }
}

/* ---- digests: holding ------------------------------------------- */

/* s, owned by fj until it is freed. */
static const char *fj_keep(struct fjob *fj, char *s)
{
    fj->strs = suki_realloc(fj->strs, (fj->n_strs + 1) * sizeof(*fj->strs));
    fj->strs[fj->n_strs++] = s;
    return s;
}

static struct suki_settle_op_args *add_op(struct fjob *fj)
{
    fj->ops = suki_realloc(fj->ops, (fj->n_ops + 1) * sizeof(*fj->ops));
    struct suki_settle_op_args *o = &fj->ops[fj->n_ops++];
    memset(o, 0, sizeof(*o));
    return o;
}

static char *lower_dup(const char *s)
{
    char *d = suki_strdup(s);
    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

/* The digest job of rcpt (lower case) for the first digests.at after
 * now: appends dhash, dkey, dbody and ddue to o. */
static void digest_job_args(struct fjob *fj, struct suki_settle_op_args *o,
                            const char *rcpt, int64_t after_ms)
{
    const struct suki_conf *c = fj->conf;
    int64_t due = suki_time_at_local(after_ms, c->digest_hh, c->digest_mm,
                                     c->digest_timezone);
    struct suki_tm tm = {0};
    (void)suki_time_to_local(due, c->digest_timezone, &tm);
    char slot[16];
    snprintf(slot, sizeof(slot), "%04d-%02d-%02d", tm.year % 10000, tm.mon,
             tm.mday);
    char *key = suki_job_key(SUKI_DIGEST_RULE, SUKI_DIGEST_RULE, rcpt, slot);
    o->v[o->n++] =
        fj_keep(fj, suki_job_hash_key(c->prefix, SUKI_DIGEST_RULE, key));
    o->v[o->n++] = fj_keep(fj, key);
    o->v[o->n++] = fj_keep(fj, suki_asprintf("{\"d\":%" PRId64 "}", due));
    o->v[o->n++] = fj_keep(fj, suki_asprintf("%" PRId64, due));
}

/* P:held-by:<client> of job key, with the client part as the key spells
 * it (percent-encoded), as intake-apply.lua builds it from the job hash. */
static char *held_by_key(const char *prefix, const char *jobkey)
{
    const char *c = "";
    size_t n = 0;
    (void)suki_job_key_client(jobkey, &c, &n);
    return suki_asprintf("%s:%s:%.*s", prefix, SUKI_KEY_HELD_BY, (int)n, c);
}

static bool rule_digests(const struct fjob *fj)
{
    if (!fj->conf->digests)
        return false;
    for (size_t i = 0; i < fj->conf->n_rules; i++)
        if (strcmp(fj->conf->rules[i].name, fj->jd.rule) == 0)
            return fj->conf->rules[i].digest;
    return false;
}

/* The held item of this job (JSON, owned): what the digest lists. */
static char *held_item(const struct fjob *fj, int64_t now)
{
    struct suki_event *ev = fj->jd.event;
    const char *name = suki_rules_client_get(fj->cl, "name");
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "c", fj->jd.client, "n",
                  name ? name : "", "r", fj->jd.rule, "s", fj->jd.subject, "d",
                  (json_int_t)fj->jd.due_ms, "h", (json_int_t)now);
    static const char *const fields[] = {"contract", "ends_at", "ticket",
                                         "order",    "deal",    "summary"};
    for (size_t i = 0; ev && i < SUKI_ARRAY_LEN(fields); i++) {
        const char *v = suki_event_data_str(ev, fields[i]);
        if (v && *v)
            json_object_set_new(o, fields[i], json_string(v));
    }
    if (ev && ev->type)
        json_object_set_new(o, "t", json_string(ev->type));
    char *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return out;
}

/* A digest = true rule: take its manager and role: recipients out of
 * rcpt and hold them (ops written with the job's completion). The client's
 * own address is never held. */
static void hold_recipients(struct fjob *fj, char **rcpt, size_t *n_rcpt)
{
    char *const *spec = fj->jd.notify;
    size_t nspec = fj->jd.n_notify;
    for (size_t i = 0; nspec == 0 && i < fj->conf->n_rules; i++)
        if (strcmp(fj->conf->rules[i].name, fj->jd.rule) == 0) {
            spec = fj->conf->rules[i].notify;
            nspec = fj->conf->rules[i].n_notify;
        }
    const char *cmail = suki_rules_client_get(fj->cl, "email");
    int64_t now = suki_now_ms();
    const char *item = NULL;
    size_t k = 0;
    for (size_t i = 0; i < *n_rcpt; i++) {
        bool held = false;
        for (size_t j = 0; j < nspec && !held; j++) {
            const char *a = NULL;
            if (strcmp(spec[j], "manager") == 0)
                a = manager_of(fj);
            else if (strncmp(spec[j], "role:", 5) == 0)
                a = suki_conf_role(fj->conf, spec[j] + 5);
            held = a && strcasecmp(a, rcpt[i]) == 0;
        }
        if (held && cmail && strcasecmp(cmail, rcpt[i]) == 0)
            held = false;
        if (!held) {
            rcpt[k++] = rcpt[i];
            continue;
        }
        if (!item)
            item = fj_keep(fj, held_item(fj, now));
        char *lc = lower_dup(rcpt[i]);
        free(rcpt[i]);
        struct suki_settle_op_args *o = add_op(fj);
        o->v[o->n++] = "H";
        o->v[o->n++] =
            fj_keep(fj, suki_key_id(fj->conf->prefix, SUKI_KEY_HELD, lc));
        o->v[o->n++] = fj_keep(fj, held_by_key(fj->conf->prefix, fj->jd.key));
        o->v[o->n++] = fj_keep(fj, suki_asprintf("%s\n%s", fj->jd.key, lc));
        o->v[o->n++] =
            fj_keep(fj, suki_key(fj->conf->prefix, SUKI_KEY_HELD_TO));
        o->v[o->n++] = fj_keep(fj, lc);
        o->v[o->n++] = fj->jd.key;
        o->v[o->n++] = item;
        digest_job_args(fj, o, lc, now);
        suki_info("job %s: to=<%s> held for the digest", fj->sj->key, lc);
    }
    *n_rcpt = k;
}

/* ---- digests: sending ------------------------------------------- */

struct ditem {
    json_t *o;         /* owned */
    const char *field; /* borrowed from the reply: the job key */
    const char *raw;   /* borrowed: the stored item */
    int64_t due;
};

struct digest_ctx {
    struct fjob *fj;
    struct ditem *v;
    size_t n;
    size_t *client_start; /* index of each client's first item */
    size_t n_clients;
    int cur_client; /* -1: none */
    size_t cur_item;
    const char *tz;
    char count[24], clients[24], date[16];
    char **pool;
    size_t n_pool;
};

static int ditem_cmp(const void *a, const void *b)
{
    const struct ditem *x = a, *y = b;
    int c = strcmp(json_string_value(json_object_get(x->o, "c")),
                   json_string_value(json_object_get(y->o, "c")));
    if (c)
        return c;
    return x->due < y->due ? -1 : x->due > y->due;
}

static size_t d_count(const char *list, void *arg)
{
    struct digest_ctx *c = arg;
    if (strcmp(list, "clients") == 0)
        return c->n_clients;
    if (c->cur_client < 0)
        return c->n;
    size_t k = (size_t)c->cur_client;
    size_t end = k + 1 < c->n_clients ? c->client_start[k + 1] : c->n;
    return end - c->client_start[k];
}

static void d_enter(const char *list, size_t i, void *arg)
{
    struct digest_ctx *c = arg;
    if (strcmp(list, "clients") == 0) {
        c->cur_client = i == SUKI_TEMPLATE_LIST_END ? -1 : (int)i;
        c->cur_item = c->cur_client >= 0 ? c->client_start[i] : 0;
        return;
    }
    if (i == SUKI_TEMPLATE_LIST_END)
        return;
    c->cur_item = (c->cur_client >= 0 ? c->client_start[c->cur_client] : 0) + i;
}

static const char *d_keep(struct digest_ctx *c, char *s)
{
    c->pool = suki_realloc(c->pool, (c->n_pool + 1) * sizeof(*c->pool));
    c->pool[c->n_pool++] = s;
    return s;
}

static const char *d_lookup(const char *var, void *arg)
{
    struct digest_ctx *c = arg;
    if (strcmp(var, "digest.count") == 0)
        return c->count;
    if (strcmp(var, "digest.clients") == 0)
        return c->clients;
    if (strcmp(var, "digest.date") == 0)
        return c->date;
    if (strcmp(var, "manager") == 0)
        return c->fj->jd.subject;
    const struct ditem *it = NULL;
    if (c->cur_client >= 0 && strncmp(var, "client.", 7) == 0)
        it = &c->v[c->client_start[c->cur_client]];
    else if (strncmp(var, "item.", 5) == 0 && c->cur_item < c->n)
        it = &c->v[c->cur_item];
    if (!it)
        return NULL;
    const char *f = strchr(var, '.') + 1;
    if (var[0] == 'c')
        f = strcmp(f, "id") == 0 ? "c" : strcmp(f, "name") == 0 ? "n" : "";
    else if (strcmp(f, "rule") == 0)
        f = "r";
    else if (strcmp(f, "subject") == 0)
        f = "s";
    else if (strcmp(f, "event") == 0)
        f = "t";
    else if (strcmp(f, "about") == 0) {
        const char *s = json_string_value(json_object_get(it->o, "s"));
        const char *t = json_string_value(json_object_get(it->o, "t"));
        if (s && *s)
            return s;
        return t;
    } else if (strcmp(f, "due") == 0) {
        struct suki_tm tm;
        if (suki_time_to_local(it->due, c->tz, &tm) < 0)
            return NULL;
        return d_keep(c,
                      suki_asprintf("%04d-%02d-%02d %02d:%02d (%s)", tm.year,
                                    tm.mon, tm.mday, tm.hour, tm.min, c->tz));
    }
    json_t *v = json_object_get(it->o, f);
    const char *sv = json_string_value(v);
    return sv && *sv ? sv : NULL;
}

/* HGETALL P:held:<rcpt> answered: compose the digest of every item held
 * by the digest's due time, one message with the usual marker check;
 * the completion removes exactly these items. */
/* One message a job renders itself (a digest, a report) to rcpt, under
 * the reminder Message-ID of its key and due, so a resend reuses it. */
static int add_rendered_msg(struct fjob *fj,
                            const struct suki_transport_conf *tc,
                            const char *rcpt, const struct suki_rendered *rd,
                            struct suki_err *err)
{
    struct suki_compose_sender snd = {0};
    int rc = suki_compose_sender_init(&snd, tc, false, NULL, err);
    if (rc == 0) {
        if (tc->from && snd.from.addr)
            fj->from = suki_strdup(snd.from.addr);
        struct fmsg *m = add_msg(fj);
        m->rcpt = suki_strdup(rcpt);
        m->msgid = suki_compose_reminder_id(fj->jd.key, fj->jd.due_ms, rcpt,
                                            snd.from.addr);
        struct suki_compose_mail cm = {.sender = &snd,
                                       .to = rcpt,
                                       .content = rd,
                                       .message_id = m->msgid,
                                       .date_ms = suki_now_ms(),
                                       .job_key = fj->jd.key};
        if (suki_compose_mime(&cm, &m->body, &m->len, err) < 0)
            msg_fail(m, FM_PERMFAIL, err->msg);
    }
    suki_compose_sender_clear(&snd);
    return rc;
}

static void on_held(struct suki_redis *r, redisReply *rep, void *arg)
{
    (void)r;
    struct fjob *fj = arg;
    if (orphaned(fj) || !rep || rep->type != REDIS_REPLY_ARRAY) {
        finish_simple(fj, SUKI_SETTLE_LEAVE);
        return;
    }
    const char *rcpt = fj->jd.subject;
    struct digest_ctx c = {
        .fj = fj, .cur_client = -1, .tz = fj->conf->digest_timezone};
    c.v = suki_calloc(rep->elements / 2 + 1, sizeof(*c.v));
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        redisReply *k = rep->element[i], *v = rep->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        json_t *o = json_loads(v->str, 0, NULL);
        json_int_t h = json_integer_value(json_object_get(o, "h"));
        if (!o || !json_is_string(json_object_get(o, "c")) ||
            h > fj->jd.due_ms) {
            json_decref(o); /* held after this digest's time: the next */
            continue;
        }
        c.v[c.n++] = (struct ditem){
            .o = o,
            .field = k->str,
            .raw = v->str,
            .due = (int64_t)json_integer_value(json_object_get(o, "d"))};
    }
    /* The next digest for what stays (held later, or a bad item). */
    char *lc = lower_dup(rcpt);
    fj_keep(fj, lc);
    const char *heldk =
        fj_keep(fj, suki_key_id(fj->conf->prefix, SUKI_KEY_HELD, lc));
    const char *heldto =
        fj_keep(fj, suki_key(fj->conf->prefix, SUKI_KEY_HELD_TO));
    struct suki_err err = {{0}};
    int rc = 0;
    if (c.n > 0) {
        qsort(c.v, c.n, sizeof(*c.v), ditem_cmp);
        c.client_start = suki_calloc(c.n, sizeof(size_t));
        for (size_t i = 0; i < c.n; i++)
            if (i == 0 ||
                ditem_cmp(&(struct ditem){.o = c.v[i - 1].o, .due = 0},
                          &(struct ditem){.o = c.v[i].o, .due = 0}))
                c.client_start[c.n_clients++] = i;
        snprintf(c.count, sizeof(c.count), "%zu", c.n);
        snprintf(c.clients, sizeof(c.clients), "%zu", c.n_clients);
        struct suki_tm tm = {0};
        (void)suki_time_to_local(fj->jd.due_ms, c.tz, &tm);
        snprintf(c.date, sizeof(c.date), "%04d-%02d-%02d", tm.year % 10000,
                 tm.mon, tm.mday);
        for (size_t i = 0; i < c.n; i++) {
            struct suki_settle_op_args *o = add_op(fj);
            o->v[o->n++] = "X";
            o->v[o->n++] = heldk;
            o->v[o->n++] =
                fj_keep(fj, held_by_key(fj->conf->prefix, c.v[i].field));
            o->v[o->n++] =
                fj_keep(fj, suki_asprintf("%s\n%s", c.v[i].field, lc));
            o->v[o->n++] = heldto;
            o->v[o->n++] = lc;
            o->v[o->n++] = fj_keep(fj, suki_strdup(c.v[i].field));
            o->v[o->n++] = fj_keep(fj, suki_strdup(c.v[i].raw));
        }
        const struct suki_transport_conf *tc =
            suki_conf_transport(fj->conf, fj->channel);
        struct suki_rendered rd = {0};
        const struct suki_template_lists lists = {d_count, d_enter};
        const char *loc = suki_conf_digest_locale(fj->conf, rcpt);
        if (!tc || tc->kind == SUKI_TRANSPORT_HTTP)
            rc = suki_err_set(&err, -EINVAL,
                              "digest: channel '%s' is not email", fj->channel);
        else
            rc = suki_template_render_lists(fj->f->D->templates,
                                            fj->conf->digest_template, loc,
                                            d_lookup, &lists, &c, &rd, &err);
        if (rc == 0)
            rc = add_rendered_msg(fj, tc, rcpt, &rd, &err);
        suki_rendered_clear(&rd);
    }
    struct suki_settle_op_args *o = add_op(fj);
    o->v[o->n++] = "N";
    o->v[o->n++] = heldk;
    digest_job_args(fj, o, lc, fj->jd.due_ms + 60000);
    size_t n_items = c.n;
    for (size_t i = 0; i < c.n; i++)
        json_decref(c.v[i].o);
    free(c.v);
    free(c.client_start);
    for (size_t i = 0; i < c.n_pool; i++)
        free(c.pool[i]);
    free(c.pool);
    if (rc < 0) {
        /* Nothing removed: the items wait, the job is a dead letter. */
        fj->n_ops = 0;
        finish_dead_job(fj, err.msg);
        return;
    }
    suki_info("job %s: digest of %zu item(s) to <%s>", fj->sj->key, n_items,
              rcpt);
    check_markers(fj);
}

/* ---- monthly reports ---------------------------------------------- */

static struct suki_redis_script plan_script = {
    .name = "report-plan",
    .src = suki_lua_report_plan,
};

#define REPORT_WINDOW_MS ((int64_t)60 * 86400000) /* contracts ending */

/* The report of month year-mon goes out on reports.monthly.day of the
 * month after, at its at, in its zone. */
static int64_t report_due(const struct suki_conf *c, int year, int mon)
{
    struct suki_tm tm = {.year = mon == 12 ? year + 1 : year,
                         .mon = mon == 12 ? 1 : mon + 1,
                         .mday = c->report_day,
                         .hour = c->report_hh,
                         .min = c->report_mm};
    int64_t ms = 0;
    (void)suki_time_from_local(&tm, c->report_timezone, &ms);
    return ms;
}

/* A J op: the job key (rule and client SUKI_REPORT_RULE, subject, slot
 * month) with body, due at due, unless it exists. */
static void report_job_op(struct fjob *fj, const char *subject,
                          const char *month, char *body, int64_t due)
{
    struct suki_settle_op_args *o = add_op(fj);
    char *key =
        suki_job_key(SUKI_REPORT_RULE, SUKI_REPORT_RULE, subject, month);
    o->v[o->n++] = "J";
    o->v[o->n++] =
        fj_keep(fj, suki_job_hash_key(fj->conf->prefix, SUKI_REPORT_RULE, key));
    o->v[o->n++] = fj_keep(fj, key);
    o->v[o->n++] = fj_keep(fj, body);
    o->v[o->n++] = fj_keep(fj, suki_asprintf("%" PRId64, due));
}

/* The planner's read answered: one job per recipient with its report in
 * the body (so each is sent, retried and marked on its own, without
 * reading the counters again), and the next month's planner. */
static void on_plan(struct suki_redis *r, redisReply *rep, void *arg)
{
    (void)r;
    struct fjob *fj = arg;
    if (orphaned(fj) || !rep || rep->type != REDIS_REPLY_ARRAY ||
        rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_ARRAY ||
        rep->element[1]->type != REDIS_REPLY_ARRAY) {
        if (!orphaned(fj))
            suki_warnx("job %s: cannot read the report counters (%s); the "
                       "job comes back when its lease ends",
                       fj->sj->key,
                       rep && rep->type == REDIS_REPLY_ERROR
                           ? rep->str
                           : "redis link down");
        finish_simple(fj, SUKI_SETTLE_LEAVE);
        return;
    }
    const struct suki_conf *c = fj->conf;
    const char *month = fj->jd.slot;
    const redisReply *kv = rep->element[0], *ct = rep->element[1];
    json_t *reps = suki_report_split(kv, month, NULL);
    /* the contracts ending within 60 days of the report's time */
    int64_t from = fj->jd.due_ms, to = from + REPORT_WINDOW_MS;
    json_t *seen = json_object();
    for (size_t j = 0; j + 3 < ct->elements; j += 4) {
        char *cl = NULL, *cn = NULL;
        int64_t ends;
        if (ct->element[j]->type != REDIS_REPLY_STRING ||
            ct->element[j + 1]->type != REDIS_REPLY_STRING ||
            !suki_report_contract(ct->element[j]->str, ct->element[j + 1]->str,
                                  from, to, &cl, &cn, &ends))
            continue;
        char *id = suki_asprintf("%s\n%s\n%" PRId64, cl, cn, ends);
        const char *mg = ct->element[j + 2]->type == REDIS_REPLY_STRING
                             ? ct->element[j + 2]->str
                             : "";
        const char *nm = ct->element[j + 3]->type == REDIS_REPLY_STRING
                             ? ct->element[j + 3]->str
                             : "";
        if (!json_object_get(seen, id)) {
            json_object_set_new(seen, id, json_true());
            json_t *rr = json_object_get(reps, mg);
            if (!rr) {
                rr = suki_report_new(mg, month, NULL, 0);
                json_object_set_new(reps, mg, rr);
            }
            char e[40];
            suki_time_format_rfc3339(ends, e, sizeof(e));
            json_array_append_new(json_object_get(rr, "contracts_ending"),
                                  json_pack("{s:s, s:s, s:s, s:s}", "client",
                                            cl, "name", nm, "contract", cn,
                                            "ends_at", e));
        }
        free(id);
        free(cl);
        free(cn);
    }
    json_decref(seen);
    json_t *all = suki_report_new("", month, NULL, 0);
    size_t n_jobs = 0;
    bool to_managers = false;
    for (size_t i = 0; i < c->n_report_to; i++)
        to_managers = to_managers || strcmp(c->report_to[i], "manager") == 0;
    const char *m;
    json_t *a;
    json_object_foreach(reps, m, a)
    {
        suki_report_add(all, a);
        if (!to_managers || !strchr(m, '@'))
            continue; /* no address: in the roll-up only */
        suki_report_finish(a);
        json_t *body =
            json_pack("{s:I, s:O}", SUKI_JOB_DUE, (json_int_t)from, "rp", a);
        report_job_op(fj, m, month,
                      json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS), from);
        json_decref(body);
        n_jobs++;
    }
    suki_report_finish(all);
    json_object_set_new(all, "rollup", json_true());
    json_object_set_new(all, "managers",
                        json_integer((json_int_t)json_object_size(reps)));
    for (size_t i = 0; i < c->n_report_to; i++) {
        if (strcmp(c->report_to[i], "manager") == 0)
            continue;
        char *sub = suki_asprintf("*%s", c->report_to[i]);
        json_t *body =
            json_pack("{s:I, s:O}", SUKI_JOB_DUE, (json_int_t)from, "rp", all);
        report_job_op(fj, sub, month,
                      json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS), from);
        json_decref(body);
        free(sub);
        n_jobs++;
    }
    json_decref(all);
    json_decref(reps);
    /* the next month's planner */
    int y, mo;
    char next[8];
    if (suki_report_parse_month(month, &y, &mo) == 0) {
        suki_report_next_month(y, mo, next);
        (void)suki_report_parse_month(next, &y, &mo);
        int64_t nd = report_due(c, y, mo);
        report_job_op(fj, "~plan", next,
                      suki_asprintf("{\"d\":%" PRId64 "}", nd), nd);
    }
    /* this month is done: a sukid starting before the next month's report
     * time must not schedule it again */
    struct suki_settle_op_args *mk = add_op(fj);
    mk->v[mk->n++] = "M";
    mk->v[mk->n++] =
        fj_keep(fj, suki_key_id(c->prefix, SUKI_KEY_REPORT_SENT, month));
    mk->v[mk->n++] = fj_keep(fj, suki_asprintf("%d", SUKI_REPORT_TTL_S));
    suki_info("job %s: %zu monthly report(s) for %s queued", fj->sj->key,
              n_jobs, month);
    struct suki_settle st = {
        .op = SUKI_SETTLE_COMPLETE, .ops = fj->ops, .n_ops = fj->n_ops};
    finish(fj, &st);
}

/* The template's view of one report: report.* figures, items = the
 * month's events by type (most first, with a bar width in percent of the
 * largest), clients = the contracts ending. */
struct report_ctx {
    json_t *r; /* borrowed */
    const char **types;
    size_t n_types, cur_item, cur_client;
    json_int_t max;
    char buf[64];
    char **pool;
    size_t n_pool;
};

static const char *r_keep(struct report_ctx *c, char *s)
{
    c->pool = suki_realloc(c->pool, (c->n_pool + 1) * sizeof(*c->pool));
    c->pool[c->n_pool++] = s;
    return s;
}

static size_t r_count(const char *list, void *arg)
{
    struct report_ctx *c = arg;
    if (strcmp(list, "items") == 0)
        return c->n_types;
    return json_array_size(json_object_get(c->r, "contracts_ending"));
}

static void r_enter(const char *list, size_t i, void *arg)
{
    struct report_ctx *c = arg;
    if (strcmp(list, "items") == 0)
        c->cur_item = i;
    else
        c->cur_client = i;
}

/* 1234567.5 -> "1,234,567.50" */
static const char *r_amount(struct report_ctx *c, double v)
{
    char raw[48];
    snprintf(raw, sizeof(raw), "%.2f", v);
    char *dot = strchr(raw, '.');
    size_t il = dot ? (size_t)(dot - raw) : strlen(raw), neg = raw[0] == '-';
    char out[64];
    size_t o = 0;
    for (size_t i = 0; i < il; i++) {
        if (i > neg && (il - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = raw[i];
    }
    snprintf(out + o, sizeof(out) - o, "%s", dot ? dot : "");
    return r_keep(c, suki_strdup(out));
}

static const char *r_lookup(const char *var, void *arg)
{
    struct report_ctx *c = arg;
    json_t *ev = json_object_get(c->r, "events");
    if (strncmp(var, "item.", 5) == 0) {
        if (c->cur_item >= c->n_types)
            return NULL;
        const char *t = c->types[c->cur_item];
        json_int_t n = json_integer_value(json_object_get(ev, t));
        if (strcmp(var + 5, "type") == 0)
            return t;
        if (strcmp(var + 5, "count") == 0)
            return r_keep(c, suki_asprintf("%lld", (long long)n));
        if (strcmp(var + 5, "pct") == 0) {
            json_int_t p = c->max ? n * 100 / c->max : 0;
            return r_keep(c, suki_asprintf("%lld", (long long)(p < 1 ? 1 : p)));
        }
        if (strcmp(var + 5, "rest") == 0) { /* the bar's empty part */
            json_int_t p = c->max ? n * 100 / c->max : 0;
            return r_keep(
                c, suki_asprintf("%lld", (long long)(100 - (p < 1 ? 1 : p))));
        }
        return NULL;
    }
    if (strncmp(var, "client.", 7) == 0) {
        json_t *x = json_array_get(json_object_get(c->r, "contracts_ending"),
                                   c->cur_client);
        const char *f = var + 7;
        if (strcmp(f, "id") == 0)
            f = "client";
        if (strcmp(f, "ends_at") == 0) {
            const char *e = json_string_value(json_object_get(x, "ends_at"));
            return e ? r_keep(c, suki_strndup(e, 10)) : NULL; /* the date */
        }
        return json_string_value(json_object_get(x, f));
    }
    if (strcmp(var, "manager") == 0 || strcmp(var, "report.manager") == 0) {
        const char *m = json_string_value(json_object_get(c->r, "manager"));
        return m && *m ? m : NULL;
    }
    if (strncmp(var, "report.", 7) != 0)
        return NULL;
    const char *f = var + 7;
    if (strcmp(f, "month") == 0)
        return json_string_value(json_object_get(c->r, "month"));
    if (strcmp(f, "rollup") == 0)
        return json_is_true(json_object_get(c->r, "rollup")) ? "1" : NULL;
    if (strcmp(f, "events_total") == 0) {
        json_int_t t = 0;
        const char *k;
        json_t *v;
        json_object_foreach(ev, k, v) t += json_integer_value(v);
        return r_keep(c, suki_asprintf("%lld", (long long)t));
    }
    if (strcmp(f, "contracts_count") == 0)
        return r_keep(c, suki_asprintf("%zu", json_array_size(json_object_get(
                                                  c->r, "contracts_ending"))));
    json_t *v = json_object_get(c->r, f);
    if (json_is_integer(v))
        return r_keep(c,
                      suki_asprintf("%lld", (long long)json_integer_value(v)));
    if (json_is_real(v) && strstr(f, "amount"))
        return r_amount(c, json_real_value(v));
    if (json_is_real(v))
        return r_keep(c, suki_asprintf("%.1f", json_real_value(v)));
    return NULL;
}

static json_t *r_sort_ev; /* for qsort: the events object being sorted */

static int r_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    json_int_t nx = json_integer_value(json_object_get(r_sort_ev, x));
    json_int_t ny = json_integer_value(json_object_get(r_sort_ev, y));
    if (nx != ny)
        return nx > ny ? -1 : 1;
    return strcmp(x, y);
}

/* A recipient's report job: render the monthly-report template with the
 * report its body carries and send it as other mail (sent markers, retry,
 * dead letters). */
static void report_send(struct fjob *fj)
{
    const struct suki_conf *c = fj->conf;
    const char *sub = fj->jd.subject;
    const char *rcpt = sub[0] == '*' ? sub + 1 : sub;
    json_t *body = json_loads(fj->sj->body, 0, NULL);
    json_t *r = json_object_get(body, "rp");
    struct suki_err err = {{0}};
    int rc = 0;
    if (!json_is_object(r) || !json_is_object(json_object_get(r, "events")))
        rc = suki_err_set(&err, -EINVAL, "report job without its report");
    else if (!strchr(rcpt, '@'))
        rc = suki_err_set(&err, -EINVAL,
                          "report recipient '%s' is not an "
                          "address",
                          rcpt);
    const struct suki_transport_conf *tc = suki_conf_transport(c, fj->channel);
    if (rc == 0 && (!tc || tc->kind == SUKI_TRANSPORT_HTTP))
        rc = suki_err_set(&err, -EINVAL, "report: channel '%s' is not email",
                          fj->channel);
    struct report_ctx rx = {.r = r};
    struct suki_rendered rd = {0};
    if (rc == 0) {
        json_t *ev = json_object_get(r, "events");
        rx.types = suki_calloc(json_object_size(ev) + 1, sizeof(char *));
        const char *k;
        json_t *v;
        json_object_foreach(ev, k, v)
        {
            rx.types[rx.n_types++] = k;
            if (json_integer_value(v) > rx.max)
                rx.max = json_integer_value(v);
        }
        r_sort_ev = ev;
        qsort(rx.types, rx.n_types, sizeof(*rx.types), r_cmp);
        r_sort_ev = NULL;
        const struct suki_template_lists lists = {r_count, r_enter};
        rc = suki_template_render_lists(fj->f->D->templates, c->report_template,
                                        suki_conf_digest_locale(c, rcpt),
                                        r_lookup, &lists, &rx, &rd, &err);
    }
    if (rc == 0)
        rc = add_rendered_msg(fj, tc, rcpt, &rd, &err);
    suki_rendered_clear(&rd);
    free(rx.types);
    for (size_t i = 0; i < rx.n_pool; i++)
        free(rx.pool[i]);
    free(rx.pool);
    json_decref(body);
    if (rc < 0) {
        finish_dead_job(fj, err.msg);
        return;
    }
    check_markers(fj);
}

static struct suki_redis_script ensure_script = {
    .name = "sched-ensure",
    .src = suki_lua_sched_ensure,
};

static void on_ensure(struct suki_redis *r, redisReply *rep, void *arg)
{
    (void)r;
    (void)arg;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        suki_warnx("reports: cannot schedule the monthly report: %s", rep->str);
    else if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
        suki_info("reports: the next monthly report is scheduled");
}

void suki_fire_report_ensure(struct suki_fire *f)
{
    const struct suki_conf *c = f->D->conf;
    if (!c->reports)
        return;
    /* the next report time: this month's, or next month's once it passed */
    int64_t now = suki_now_ms();
    char cur[8], mon[8];
    int y, m;
    if (suki_report_month(now, c->report_timezone, cur) < 0)
        return;
    (void)suki_report_parse_month(cur, &y, &m);
    suki_report_prev_month(y, m, mon);
    (void)suki_report_parse_month(mon, &y, &m);
    int64_t due = report_due(c, y, m);
    if (due <= now) {
        memcpy(mon, cur, sizeof(mon));
        (void)suki_report_parse_month(mon, &y, &m);
        due = report_due(c, y, m);
    }
    char *key = suki_job_key(SUKI_REPORT_RULE, SUKI_REPORT_RULE, "~plan", mon);
    char *jh = suki_job_hash_key(c->prefix, SUKI_REPORT_RULE, key);
    char *jobs = suki_key(c->prefix, SUKI_KEY_JOBS);
    char *body = suki_asprintf("{\"d\":%" PRId64 "}", due);
    char *ds = suki_asprintf("%" PRId64, due);
    char *done = suki_key_id(c->prefix, SUKI_KEY_REPORT_SENT, mon);
    const char *av[6] = {jh, jobs, key, body, ds, done};
    (void)suki_redis_eval(f->D->redis, &ensure_script, on_ensure, NULL, 2, 6,
                          av, NULL);
    free(done);
    free(key);
    free(jh);
    free(jobs);
    free(body);
    free(ds);
}

/* A ~report job fired: the month's planner reads the counters and the
 * contracts; a recipient's job sends its report. */
static void report_fire(struct fjob *fj)
{
    const struct suki_conf *c = fj->conf;
    if (strcmp(fj->jd.subject, "~plan") != 0) {
        report_send(fj);
        return;
    }
    if (!c->reports) {
        finish_dead_job(fj, "report planner: reports.monthly is not "
                            "configured");
        return;
    }
    char *kr = suki_key_id(c->prefix, SUKI_KEY_REPORT, fj->jd.slot);
    char *kj = suki_key(c->prefix, SUKI_KEY_JOBS);
    char *jp = suki_key_id(c->prefix, SUKI_KEY_JOB, "");
    char *cp = suki_key_id(c->prefix, SUKI_KEY_CLIENT, "");
    char *lim = suki_asprintf("%" PRId64, fj->jd.due_ms + REPORT_WINDOW_MS);
    char *kl = suki_key(c->prefix, SUKI_KEY_REPORT_LOG);
    size_t n = 6;
    const char **av = suki_calloc(n + c->n_rules + 1, sizeof(char *));
    char **own = suki_calloc(c->n_rules + 1, sizeof(char *));
    size_t n_own = 0;
    av[0] = kr;
    av[1] = kj;
    av[2] = kl;
    av[3] = lim;
    av[4] = jp;
    av[5] = cp;
    for (size_t i = 0; i < c->n_rules; i++) {
        bool contract = false;
        for (size_t j = 0; j < c->rules[i].n_on; j++)
            contract =
                contract || strncmp(c->rules[i].on[j], "contract.", 9) == 0;
        if (!contract)
            continue;
        /* the rule as job keys spell it */
        char *k = suki_job_key(c->rules[i].name, "x", NULL, NULL);
        *strchr(k, ':') = '\0';
        own[n_own++] = k;
        av[n++] = k;
    }
    int rc = suki_redis_eval(fj->f->D->redis, &plan_script, on_plan, fj, 3,
                             (int)n, av, NULL);
    for (size_t i = 0; i < n_own; i++)
        free(own[i]);
    free(own);
    free(av);
    free(kr);
    free(kj);
    free(kl);
    free(jp);
    free(cp);
    free(lim);
    if (rc < 0)
        finish_simple(fj, SUKI_SETTLE_LEAVE);
}

/* ---- on_due, recipients, messages --------------------------------- */

/* The job with its profile: ask the rule, resolve the recipients, build
 * the messages, then look for their sent markers. */
static void fire_with_profile(struct fjob *fj)
{
    struct suki_daemon *D = fj->f->D;
    int64_t now = suki_now_ms();
    struct suki_err err = {{0}};

    /* The rule's plugin looks again: the client may have been handled. */
    if (D->rules) {
        int verdict = SUKI_DUE_SEND;
        int64_t defer_to = 0;
        int rc = suki_rules_on_due(D->rules, &fj->jd, fj->cl, now, &verdict,
                                   &defer_to, &err);
        if (rc < 0) {
            char *why = suki_asprintf("on_due failed: %s", err.msg);
            finish_dead_job(fj, why);
            free(why);
            return;
        }
        if (verdict == SUKI_DUE_DROP) {
            suki_info("job %s dropped: %s", fj->sj->key, err.msg);
            finish_simple(fj, SUKI_SETTLE_COMPLETE);
            return;
        }
        if (verdict == SUKI_DUE_DEFER) {
            char *nb = suki_job_body_update(fj->sj->body, 0, 0, defer_to);
            char tb[40];
            suki_time_format_rfc3339(defer_to, tb, sizeof(tb));
            suki_info("job %s deferred by its rule to %s", fj->sj->key, tb);
            struct suki_settle st = {.op = nb ? SUKI_SETTLE_RESCHEDULE
                                              : SUKI_SETTLE_COMPLETE,
                                     .due_ms = defer_to,
                                     .new_body = nb};
            finish(fj, &st);
            free(nb);
            return;
        }
    }

    if (fj->conf->reports) {
        const char *m = manager_of(fj);
        fj->rmanager = suki_strdup(m ? m : "");
    }
    char **rcpt = NULL;
    size_t n_rcpt = 0;
    int rc;
    if (D->rules) {
        rc = suki_rules_recipients(D->rules, &fj->jd, fj->cl, &rcpt, &n_rcpt,
                                   &err);
    } else {
        /* No ruleset: take the stored notify list literally. */
        rc = 0;
        for (size_t i = 0; i < fj->jd.n_notify; i++) {
            const char *a = fj->jd.notify[i];
            if (strcmp(a, "manager") == 0)
                a = manager_of(fj);
            else if (strcmp(a, "client") == 0)
                a = suki_rules_client_get(fj->cl, "email");
            if (!a || !strchr(a, '@'))
                continue;
            rcpt = suki_realloc(rcpt, (n_rcpt + 1) * sizeof(*rcpt));
            rcpt[n_rcpt++] = suki_strdup(a);
        }
        if (n_rcpt == 0)
            rc = suki_err_set(&err, -ENOENT, "no recipient address");
    }
    if (rc < 0) {
        suki_metrics_msg(fj->channel, SUKI_MSG_FAILED);
        finish_dead_job(fj, err.msg);
        return;
    }
    const struct suki_transport_conf *tc =
        suki_conf_transport(fj->conf, fj->channel);
    if (tc && tc->kind != SUKI_TRANSPORT_HTTP && rule_digests(fj)) {
        hold_recipients(fj, rcpt, &n_rcpt);
        if (n_rcpt == 0) {
            free(rcpt);
            conclude(fj);
            return;
        }
    }
    if (!tc) {
        char *why = suki_asprintf("no transport for channel '%s'", fj->channel);
        suki_metrics_msg(fj->channel, SUKI_MSG_FAILED);
        finish_dead_job(fj, why);
        free(why);
    } else {
        fj->kind = tc->kind;
        rc = build(fj, tc, rcpt, n_rcpt, &err);
        if (rc < 0) {
            suki_metrics_msg(fj->channel, SUKI_MSG_FAILED);
            finish_dead_job(fj, err.msg);
        } else {
            check_markers(fj);
        }
    }
    for (size_t i = 0; i < n_rcpt; i++)
        free(rcpt[i]);
    free(rcpt);
}

/* HGETALL P:client:<id> answered: the job goes on with its profile. */
static void on_profile(struct suki_redis *r, redisReply *rep, void *arg)
{
    (void)r;
    struct fjob *fj = arg;
    if (orphaned(fj) || !rep || rep->type != REDIS_REPLY_ARRAY) {
        if (!orphaned(fj))
            suki_warnx("job %s: cannot read the client profile (%s); the "
                       "job comes back when its lease ends",
                       fj->sj->key,
                       rep && rep->type == REDIS_REPLY_ERROR
                           ? rep->str
                           : "redis link down");
        finish_simple(fj, SUKI_SETTLE_LEAVE);
        return;
    }
    struct suki_client *cl = suki_rules_client_new(fj->jd.client);
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        redisReply *k = rep->element[i], *v = rep->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            suki_rules_client_set(cl, k->str, v->str);
    }
    fj->cl = cl;
    fire_with_profile(fj); /* may free fj; clears fj->cl if it does not */
    suki_rules_client_free(cl);
}

void suki_fire_job(struct suki_fire *f, struct suki_sched_job *j)
{
    struct fjob *fj = suki_calloc(1, sizeof(*fj));
    fj->f = f;
    fj->sj = j;
    fj->settle = f->settle;
    fj->conf = suki_conf_ref(f->D->conf);
    struct suki_err err = {{0}};
    if (suki_job_parse(j->key, j->body, j->body_len, &fj->jd, &err) < 0) {
        char *why = suki_asprintf("bad job body: %s", err.msg);
        finish_dead_job(fj, why);
        free(why);
        return;
    }
    (void)suki_job_defaults(&fj->jd, fj->conf);
    fj->channel = suki_strdup(fj->jd.channel ? fj->jd.channel : "email");
    int64_t now = suki_now_ms();
    int64_t at = fj->jd.retry_at_ms > 0 ? fj->jd.retry_at_ms : fj->jd.due_ms;
    suki_metrics.jobs_fired++;
    suki_metrics_lateness(now - at);
    suki_debug("job %s fired: late %" PRId64 " ms, attempt %d", j->key,
               now - at, fj->jd.attempt);

    if (strcmp(fj->jd.rule, SUKI_REPORT_RULE) == 0) {
        report_fire(fj);
        return;
    }
    if (strcmp(fj->jd.rule, SUKI_DIGEST_RULE) == 0) {
        char *hk = suki_key_id(fj->conf->prefix, SUKI_KEY_HELD, fj->jd.subject);
        const char *hv[2] = {"HGETALL", hk};
        int hrc = suki_redis_argv(f->D->redis, on_held, fj, 0, 2, hv, NULL);
        free(hk);
        if (hrc < 0)
            finish_simple(fj, SUKI_SETTLE_LEAVE);
        return;
    }
    char kbuf[256];
    char *pk = kbuf;
    if (suki_key_id_buf(kbuf, sizeof(kbuf), fj->conf->prefix, SUKI_KEY_CLIENT,
                        fj->jd.client) < 0)
        pk = suki_key_id(fj->conf->prefix, SUKI_KEY_CLIENT, fj->jd.client);
    const char *argv[2] = {"HGETALL", pk};
    int rc = suki_redis_argv(f->D->redis, on_profile, fj, 0, 2, argv, NULL);
    if (pk != kbuf)
        free(pk);
    if (rc < 0)
        finish_simple(fj, SUKI_SETTLE_LEAVE);
}

struct suki_fire *suki_fire_new(struct suki_daemon *D,
                                suki_fire_settle_cb settle)
{
    struct suki_fire *f = suki_calloc(1, sizeof(*f));
    f->D = D;
    f->settle = settle;
    f->mark_ev = evtimer_new(D->base, on_mark_timer, f);
    SUKI_ASSERT(f->mark_ev);
    suki_redis_add_script(D->redis, &plan_script);
    suki_redis_add_script(D->redis, &ensure_script);
    return f;
}

void suki_fire_free(struct suki_fire *f)
{
    if (!f)
        return;
    /* Jobs still collecting for a marker batch were orphaned by the
     * scheduler: let them go (their leases bring them back). */
    struct markbatch *b = f->marks;
    f->marks = NULL;
    for (size_t i = 0; b && i < b->n; i++)
        finish_simple(b->jobs[i], SUKI_SETTLE_LEAVE);
    markbatch_free(b);
    event_free(f->mark_ev);
    free(f);
}

bool suki_fire_has_room(const struct suki_fire *f)
{
    struct suki_dispatch *d = f->D->dispatch;
    return !d || (!suki_dispatch_full(d) &&
                  suki_dispatch_pending(d) < DISPATCH_HIGH_WATER);
}
