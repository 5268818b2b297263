/* sched.c - claim due jobs from Redis with a lease, fire them, settle them
 * in batches; one wake-up timer at the earliest due time. */
#include "sched.h"
#include "store/job.h"
#include "store/keys.h"
#include "store/scripts.h"

#include "conf.h"
#include "daemon.h"
#include "deliver/compose.h"
#include "fire.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failed settle is sent again this often, for as long as sukid runs:
 * it carries the sent markers, and a job whose markers are lost goes out
 * again once its lease ends (a Redis loading a large AOF can refuse writes
 * for longer than a lease). Only a stop gives up on it. */
#define SETTLE_RETRY_MS 1000

static struct suki_redis_script claim_script = {
    .name = "sched-claim",
    .src = suki_lua_sched_claim,
};

static struct suki_redis_script settle_script = {
    .name = "sched-settle",
    .src = suki_lua_sched_settle,
};

static struct suki_redis_script renew_script = {
    .name = "sched-renew",
    .src = suki_lua_sched_renew,
};

/* One settle script call in flight or waiting for a retry. */
struct settle_batch {
    struct suki_sched *s;
    struct suki_redis_args args; /* the records (after the fixed ARGV) */
    size_t records;
    int64_t first_ms;          /* monotonic time of the first attempt */
    unsigned tries;            /* failed attempts, for the log */
    struct settle_batch *next; /* retry queue */
};

struct suki_sched {
    struct suki_daemon *D;
    struct suki_fire *fire;
    struct event *timer;    /* the wake-up */
    struct event *flush_ev; /* zero-delay: send the settle batch */
    struct event *retry_ev; /* resend failed settle batches */
    struct event *renew_ev; /* extend leases of slow jobs */
    bool renewing;          /* a renewal is in flight */
    uint64_t renew_gen;     /* of the last renewal sent */
    int64_t renew_sent_ms;  /* when it was sent (wall clock) */
    struct event *stop_ev;  /* stop: completion check / timeout */
    int64_t wake_ms;        /* wall clock the timer is armed for; or
                               INT64_MAX when not armed */
    bool claiming;          /* a claim script call is in flight */
    size_t asked;           /* how many jobs it asked for */
    bool again;             /* claim again when it returns */
    bool blocked;           /* backpressure: claim when room frees up */
    bool stopping;
    bool stop_done;
    bool ready;            /* the first claim succeeded */
    int64_t stop_deadline; /* monotonic */
    suki_sched_done_cb done;
    void *done_arg;

    struct suki_sched_job *head; /* jobs in flight */
    size_t inflight;
    size_t max_inflight;

    struct settle_batch *pend;  /* records being collected */
    struct settle_batch *retry; /* failed batches to resend */
    size_t settles_inflight;    /* settle calls awaiting their reply */
    int64_t settle_warn_ms;     /* monotonic: the last "settling failed" */
    size_t settle_fails;        /* failed settle calls since that line */

    /* from the configuration */
    char *k_jobs, *job_prefix, *k_dead, *sent_prefix;
    int64_t lease_ms;
    int batch;
};

static void try_claim(struct suki_sched *s);
static void check_stopped(struct suki_sched *s);

/* ---- configuration ------------------------------------------------ */

static void load_conf(struct suki_sched *s)
{
    const struct suki_conf *c = s->D->conf;
    free(s->k_jobs);
    free(s->job_prefix);
    free(s->k_dead);
    free(s->sent_prefix);
    s->k_jobs = suki_key(c->prefix, SUKI_KEY_JOBS);
    s->job_prefix = suki_key_id(c->prefix, SUKI_KEY_JOB, "");
    s->k_dead = suki_key(c->prefix, SUKI_KEY_DEAD);
    s->sent_prefix = suki_key_id(c->prefix, SUKI_KEY_SENT, "");
    s->lease_ms = c->lease_ms > 0 ? c->lease_ms : 60000;
    s->batch = c->sched_batch > 0 ? c->sched_batch : 256;
    /* Three batches: with the transfers in the delivery agent a job takes
     * two more hops, and the claims must keep the pipeline full. */
    s->max_inflight = (size_t)s->batch * 3;
    if (s->max_inflight < 64)
        s->max_inflight = 64;
}

/* ---- the wake-up timer -------------------------------------------- */

static void arm(struct suki_sched *s, int64_t delay_ms)
{
    if (s->stopping)
        return;
    if (delay_ms < 0)
        delay_ms = 0;
    if (delay_ms > SUKI_SCHED_MAX_SLEEP_MS)
        delay_ms = SUKI_SCHED_MAX_SLEEP_MS;
    s->wake_ms = suki_now_ms() + delay_ms;
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_sched *s = arg;
    s->wake_ms = INT64_MAX;
    try_claim(s);
}

void suki_sched_nudge(struct suki_sched *s, int64_t due_ms)
{
    if (!s || s->stopping)
        return;
    if (s->claiming) {
        /* The claim in flight may have missed it: look again after. */
        if (due_ms <= suki_now_ms())
            s->again = true;
        return;
    }
    if (s->blocked)
        return; /* the next settle resumes claiming */
    if (due_ms >= s->wake_ms)
        return;
    arm(s, due_ms - suki_now_ms());
}

static void on_retry(evutil_socket_t fd, short what, void *arg);

void suki_sched_redis_state(struct suki_sched *s, bool up)
{
    if (!s || s->stopping)
        return;
    if (up) {
        /* Settles first: on the same link they run before the next claim,
         * which could take back a job whose lease ran out meanwhile. */
        if (s->retry) {
            evtimer_del(s->retry_ev);
            on_retry(-1, 0, s);
        }
        arm(s, 0);
    }
}

/* ---- claiming ----------------------------------------------------- */

static size_t room(struct suki_sched *s)
{
    /* A settle waiting to be sent again holds sent markers: claim nothing
     * until it is written, or a job whose lease ran out meanwhile would be
     * taken back and find no marker. */
    if (s->inflight >= s->max_inflight || s->retry)
        return 0;
    if (!suki_fire_has_room(s->fire))
        return 0;
    size_t r = s->max_inflight - s->inflight;
    /* With work in flight, wait until a whole batch fits: claims stay
     * batched (one script run for many jobs) and the pipeline stays full
     * because max_inflight is several batches. */
    if (r < (size_t)s->batch && s->inflight > 0)
        return 0;
    return r < (size_t)s->batch ? r : (size_t)s->batch;
}

/* Room freed: claim again if backpressure held claiming back. */
static void resume(struct suki_sched *s)
{
    if (s->blocked && !s->claiming && room(s) > 0 &&
        !evtimer_pending(s->timer, NULL))
        arm(s, 0);
}

static void job_link(struct suki_sched *s, struct suki_sched_job *j)
{
    j->prev = NULL;
    j->next = s->head;
    if (s->head)
        s->head->prev = j;
    s->head = j;
    s->inflight++;
}

static void job_unlink(struct suki_sched *s, struct suki_sched_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        s->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    s->inflight--;
}

static void job_free(struct suki_sched_job *j)
{
    if (!j)
        return;
    free(j); /* key and body live in the same allocation */
}

static void on_claim(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct suki_sched *s = arg;
    if (!r)
        return; /* cancelled by suki_sched_free */
    s->claiming = false;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            suki_warnx("scheduler: claim failed: %s", rep->str);
        /* Link down: suki_sched_redis_state() claims when it is back;
         * a script error: try again in a while. */
        arm(s, SUKI_SCHED_MAX_SLEEP_MS);
        check_stopped(s);
        return;
    }
    if (!s->ready) {
        /* Tests and operators wait for this line. */
        s->ready = true;
        char lb[32];
        suki_format_duration(s->lease_ms, lb, sizeof(lb));
        suki_info("scheduler: ready (lease %s, batch %d)", lb, s->batch);
    }
    /* Leases are on Redis's clock; the local clock (which may differ)
     * counts only the time until a renewal or the next wake-up. */
    int64_t now = suki_now_ms();
    int64_t next = -1, rnow = now;
    redisReply *e0 = rep->element[0];
    if (e0->type == REDIS_REPLY_STRING)
        (void)suki_parse_i64(e0->str, INT64_MIN, INT64_MAX, &next);
    else if (e0->type == REDIS_REPLY_INTEGER)
        next = e0->integer;
    if (rep->element[1]->type == REDIS_REPLY_INTEGER)
        suki_metrics.jobs_scheduled = rep->element[1]->integer;
    if (rep->element[2]->type == REDIS_REPLY_INTEGER)
        rnow = rep->element[2]->integer;
    size_t got = (rep->elements - 3) / 2;
    if (got > 0)
        suki_debug("scheduler: claimed %zu due jobs (%zu in flight)", got,
                   s->inflight);
    /* A job still being sent here whose lease ran out in Redis (its
     * renewals refused: LOADING, OOM, an outage longer than the lease)
     * comes back in a claim once Redis takes writes again; firing it
     * again sent its message a second time while the first transfer was
     * still under way. The in-flight list is searched only when such a
     * job may exist: a lease in memory ends at most one reply (the command
     * timeout) after the lease in Redis. */
    bool lapsed = false;
    for (struct suki_sched_job *x = s->head; x && !lapsed; x = x->next)
        lapsed = x->lease_end_ms <= now + s->D->conf->redis_command_timeout_ms;
    for (size_t i = 0; i < got; i++) {
        redisReply *k = rep->element[3 + 2 * i];
        redisReply *b = rep->element[4 + 2 * i];
        if (k->type != REDIS_REPLY_STRING || b->type != REDIS_REPLY_STRING)
            continue;
        struct suki_sched_job *x = lapsed ? s->head : NULL;
        for (; x; x = x->next)
            if (strcmp(x->key, k->str) == 0 && x->body_len == b->len &&
                memcmp(x->body, b->str, b->len) == 0)
                break;
        if (x) {
            /* The claim gave its lease back to us: keep the one transfer. */
            x->lease_end_ms = now + s->lease_ms;
            suki_info("job %s: its lease ran out while it was being sent "
                      "here; taken back, not sent again",
                      x->key);
            continue;
        }
        /* One allocation for the job, its key and its body. */
        struct suki_sched_job *j =
            suki_calloc(1, sizeof(*j) + k->len + 1 + b->len + 1);
        j->key = (char *)(j + 1);
        memcpy(j->key, k->str, k->len);
        j->key[k->len] = '\0';
        j->body = j->key + k->len + 1;
        memcpy(j->body, b->str, b->len);
        j->body[b->len] = '\0';
        j->body_len = b->len;
        j->claimed_ms = now;
        j->lease_end_ms = now + s->lease_ms;
        j->s = s;
        job_link(s, j);
        if (!evtimer_pending(s->renew_ev, NULL)) {
            int64_t ms = s->lease_ms / 3;
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            evtimer_add(s->renew_ev, &tv);
        }
        suki_fire_job(s->fire, j);
    }
    if (s->stopping) {
        check_stopped(s);
        return;
    }
    /* A full batch means more may be due now; so does a nudge that came in
     * while the claim was in flight. */
    if (got >= s->asked || s->again) {
        s->again = false;
        arm(s, 0);
        return;
    }
    if (got > 0 && room(s) == 0) {
        s->blocked = true;
        return;
    }
    arm(s, next < 0 ? SUKI_SCHED_MAX_SLEEP_MS : next - rnow);
}

static void try_claim(struct suki_sched *s)
{
    if (s->stopping || s->claiming)
        return;
    if (!suki_redis_is_up(s->D->redis))
        return; /* suki_sched_redis_state() resumes */
    size_t n = room(s);
    if (n == 0) {
        s->blocked = true;
        return;
    }
    s->blocked = false;
    char lease[32], max[32];
    snprintf(lease, sizeof(lease), "%" PRId64, s->lease_ms);
    snprintf(max, sizeof(max), "%zu", n);
    const char *argv[] = {s->k_jobs, lease, max, s->job_prefix};
    if (suki_redis_eval_owned(s->D->redis, s, &claim_script, on_claim, s, 1, 4,
                              argv, NULL) == 0) {
        s->claiming = true;
        s->asked = n;
    } else
        arm(s, SUKI_SCHED_MAX_SLEEP_MS);
}

/* ---- lease renewal ------------------------------------------------ */

/* One renewal in flight: its jobs' leases move forward only when Redis
 * has moved them; a failed one is asked again at the next tick. */
static void on_renew(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct suki_sched *s = arg;
    if (!r)
        return; /* cancelled by suki_sched_free */
    s->renewing = false;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        suki_warnx("scheduler: lease renewal failed: %s; asking again",
                   rep ? rep->str : "redis link down");
    } else {
        for (struct suki_sched_job *j = s->head; j; j = j->next)
            if (j->renew_gen == s->renew_gen)
                j->lease_end_ms = s->renew_sent_ms + s->lease_ms;
    }
}

static void on_renew_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_sched *s = arg;
    if (!s->head)
        return;
    int64_t now = suki_now_ms();
    struct suki_redis_args a = {0};
    suki_redis_args_str(&a, s->k_jobs);
    suki_redis_args_int(&a, s->lease_ms);
    suki_redis_args_str(&a, s->job_prefix);
    size_t n = 0;
    /* Jobs of the renewal in flight keep its generation. */
    uint64_t gen = s->renewing ? s->renew_gen : ++s->renew_gen;
    for (struct suki_sched_job *j = s->head; j && !s->renewing; j = j->next) {
        /* Renew what has used a third of its lease; fresh claims wait. */
        if (j->lease_end_ms - now > s->lease_ms * 2 / 3)
            continue;
        suki_redis_args_str(&a, j->key);
        suki_redis_args_add(&a, j->body, j->body_len);
        j->renew_gen = gen;
        n++;
    }
    if (n > 0) {
        suki_debug("scheduler: renewing the lease of %zu slow jobs", n);
        const char **argv = suki_calloc(a.n, sizeof(char *));
        size_t *lens = suki_calloc(a.n, sizeof(size_t));
        suki_redis_args_ptrs(&a, argv, lens);
        if (suki_redis_eval_owned(s->D->redis, s, &renew_script, on_renew, s, 1,
                                  (int)a.n, argv, lens) == 0) {
            s->renewing = true;
            s->renew_sent_ms = now;
        }
        free(argv);
        free(lens);
    }
    suki_redis_args_clear(&a);
    int64_t ms = s->lease_ms / 3;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(s->renew_ev, &tv);
}

/* ---- settling ----------------------------------------------------- */

static void batch_free(struct settle_batch *b)
{
    suki_redis_args_clear(&b->args);
    free(b);
}

static void send_batch(struct suki_sched *s, struct settle_batch *b);

/* Send the collected settles at the end of this turn of the loop, unless
 * a settle call is still out: then they wait for its reply (on_settle) and
 * grow into a bigger batch. So one job settles at once when the system is
 * quiet, and under load each script call carries many jobs. */
static void arm_flush(struct suki_sched *s)
{
    if (s->pend && s->settles_inflight == 0 &&
        !evtimer_pending(s->flush_ev, NULL)) {
        struct timeval tv = {0, 0};
        evtimer_add(s->flush_ev, &tv);
    }
}

/* Keep b for the retry timer (the link is down or Redis refused it). */
static void queue_retry(struct suki_sched *s, struct settle_batch *b)
{
    b->next = s->retry;
    s->retry = b;
    if (!evtimer_pending(s->retry_ev, NULL)) {
        struct timeval tv = {SETTLE_RETRY_MS / 1000,
                             (SETTLE_RETRY_MS % 1000) * 1000};
        evtimer_add(s->retry_ev, &tv);
    }
}

static void on_settle_wait(struct suki_redis *r, redisReply *rep, void *arg);

static void on_settle(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct settle_batch *b = arg;
    struct suki_sched *s = b->s;
    if (!r) {
        batch_free(b); /* cancelled by suki_sched_free */
        return;
    }
    s->settles_inflight--;
    if (rep && rep->type == REDIS_REPLY_ERROR &&
        !suki_redis_error_is_temporary(rep)) {
        /* The same records fail the same way every time (a script error):
         * sending them again would only stop every claim behind them. */
        suki_err_log("scheduler: settling %zu jobs failed for good: %s; their "
                     "jobs come back when their lease ends and what they sent "
                     "may go out again",
                     b->records, rep->str);
        batch_free(b);
    } else if (!rep || rep->type == REDIS_REPLY_ERROR) {
        /* One line per 5 s for all batches: while Redis refuses writes,
         * every job that finishes fails its own settle call, hundreds a
         * second under load, and a line each drowned the log. */
        int64_t now = suki_mono_ms();
        b->tries++;
        s->settle_fails++;
        if (s->settle_warn_ms == 0 || now - s->settle_warn_ms >= 5000) {
            suki_warnx("scheduler: settling %zu jobs failed (%u times): %s; "
                       "retrying (%zu failed settle calls since the last "
                       "such line)",
                       b->records, b->tries, rep ? rep->str : "redis link down",
                       s->settle_fails);
            s->settle_warn_ms = now;
            s->settle_fails = 0;
        }
        if (!s->stop_done) {
            queue_retry(s, b);
        } else {
            suki_warnx("scheduler: stopped with %zu settles unwritten; their "
                       "jobs come back when their lease ends and what they "
                       "sent may go out again",
                       b->records);
            batch_free(b);
        }
    } else if (suki_redis_min_replicas(r) > 0) {
        if (suki_redis_wait(r, s, on_settle_wait, b) == 0)
            s->settles_inflight++;
        else if (!s->stop_done)
            queue_retry(s, b); /* the link went: settle again */
        else
            batch_free(b);
    } else {
        batch_free(b);
    }
    /* What was settled meanwhile went into s->pend: send it now. */
    arm_flush(s);
    resume(s);
    check_stopped(s);
}

/* redis.min_replicas: a settle (it carries the sent markers) counts once
 * WAIT says enough replicas have it. Short, or the link gone: it is sent
 * again, as a failed settle is (sched-settle.lua takes a repeat), so a
 * failover to a replica that missed it finds it there again. */
static void on_settle_wait(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct settle_batch *b = arg;
    struct suki_sched *s = b->s;
    if (!r) {
        batch_free(b); /* cancelled by suki_sched_free */
        return;
    }
    s->settles_inflight--;
    if (suki_redis_wait_ok(r, rep)) {
        batch_free(b);
    } else if (!s->stop_done) {
        queue_retry(s, b);
    } else {
        suki_warnx("scheduler: stopped with %zu settles not confirmed by "
                   "%d replicas; if the primary loses them their jobs come "
                   "back when their lease ends",
                   b->records, suki_redis_min_replicas(r));
        batch_free(b);
    }
    arm_flush(s);
    resume(s);
    check_stopped(s);
}

static void send_batch(struct suki_sched *s, struct settle_batch *b)
{
    /* Fixed part first: the keys and ARGV[1..3]. */
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", SUKI_KEY_SENT_TTL_S);
    const char *fixed[] = {s->k_jobs, s->k_dead, ttl, s->sent_prefix,
                           s->job_prefix};
    size_t nf = SUKI_ARRAY_LEN(fixed);
    const char **argv = suki_calloc(nf + b->args.n, sizeof(char *));
    size_t *lens = suki_calloc(nf + b->args.n, sizeof(size_t));
    for (size_t i = 0; i < nf; i++) {
        argv[i] = fixed[i];
        lens[i] = strlen(fixed[i]);
    }
    suki_redis_args_ptrs(&b->args, argv + nf, lens + nf);
    b->s = s;
    int rc = suki_redis_eval_owned(s->D->redis, s, &settle_script, on_settle, b,
                                   2, (int)(nf + b->args.n), argv, lens);
    free(argv);
    free(lens);
    if (rc == 0) {
        s->settles_inflight++;
        return;
    }
    /* Link down: keep it for the retry when the link is back. */
    queue_retry(s, b);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_sched *s = arg;
    struct settle_batch *b = s->pend;
    s->pend = NULL;
    if (b)
        send_batch(s, b);
    check_stopped(s);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_sched *s = arg;
    if (!suki_redis_is_up(s->D->redis)) {
        /* suki_sched_redis_state() re-arms when the link is back; keep a
         * slow timer in case a stop is waiting on these. */
        struct timeval tv = {SETTLE_RETRY_MS / 1000, 0};
        evtimer_add(s->retry_ev, &tv);
        while (s->stop_done && s->retry) {
            struct settle_batch *b = s->retry;
            s->retry = b->next;
            suki_warnx("scheduler: stopped with %zu settles unwritten; their "
                       "jobs come back when their lease ends and what they "
                       "sent may go out again",
                       b->records);
            batch_free(b);
        }
        check_stopped(s);
        return;
    }
    struct settle_batch *b = s->retry;
    s->retry = NULL;
    while (b) {
        struct settle_batch *next = b->next;
        b->next = NULL;
        send_batch(s, b);
        b = next;
    }
}

/* Records per settle call: keeps one script run short (Redis runs nothing
 * else while it runs). */
#define SETTLE_BATCH_MAX 512

/* The fire path's completion (a suki_fire_settle_cb): the job's record
 * joins the batch being collected; the sent markers are written before the
 * job is completed, in the same atomic step. */
static void settle(struct suki_sched_job *j, const struct suki_settle *st)
{
    struct suki_sched *s = j->s;
    if (!s) {
        job_free(j);
        return;
    }
    job_unlink(s, j);
    if (!s->pend) {
        s->pend = suki_calloc(1, sizeof(*s->pend));
        s->pend->first_ms = suki_mono_ms();
    }
    struct settle_batch *b = s->pend;
    struct suki_redis_args *a = &b->args;
    char hdr[64];
    int hl = snprintf(hdr, sizeof(hdr), "%c %" PRId64 " %zu %zu %zu",
                      st->op == SUKI_SETTLE_COMPLETE     ? 'C'
                      : st->op == SUKI_SETTLE_RESCHEDULE ? 'R'
                                                         : 'L',
                      st->op == SUKI_SETTLE_RESCHEDULE && st->due_ms > 0
                          ? st->due_ms
                          : (int64_t)0,
                      st->n_marks, st->n_dead, st->n_ops);
    suki_redis_args_add(a, hdr, (size_t)hl);
    suki_redis_args_str(a, j->key);
    suki_redis_args_add(a, j->body, j->body_len);
    if (st->op == SUKI_SETTLE_RESCHEDULE)
        suki_redis_args_str(a, st->new_body);
    for (size_t i = 0; i < st->n_marks; i++)
        suki_redis_args_str(a, st->marks[i]);
    for (size_t i = 0; i < st->n_dead; i++) {
        const struct suki_sched_dead *d = &st->dead[i];
        const char *f[][2] = {
            {"kind", d->kind},
            {"reason", d->reason},
            {"payload", d->payload},
            {"source", j->key},
            {"recipient", d->recipient},
            {"channel", d->channel},
            {"message_id", d->message_id},
        };
        size_t nf = 0;
        for (size_t k = 0; k < SUKI_ARRAY_LEN(f); k++)
            if (f[k][1])
                nf++;
        suki_redis_args_int(a, (int64_t)(nf * 2 + 2));
        for (size_t k = 0; k < SUKI_ARRAY_LEN(f); k++) {
            if (!f[k][1])
                continue;
            suki_redis_args_str(a, f[k][0]);
            suki_redis_args_str(a, f[k][1]);
        }
        suki_redis_args_str(a, "at");
        suki_redis_args_int(a, suki_now_ms());
    }
    for (size_t i = 0; i < st->n_ops; i++) {
        suki_redis_args_int(a, (int64_t)st->ops[i].n);
        for (size_t k = 0; k < st->ops[i].n; k++)
            suki_redis_args_str(a, st->ops[i].v[k]);
    }
    b->records++;
    job_free(j);
    if (b->records >= SETTLE_BATCH_MAX) {
        s->pend = NULL;
        send_batch(s, b);
    } else {
        arm_flush(s);
    }
    resume(s);
}

/* ---- stop and free ------------------------------------------------ */

static void on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_sched *s = arg;
    if (s->stop_done)
        return;
    if (suki_mono_ms() >= s->stop_deadline) {
        if (s->inflight)
            suki_warnx("scheduler: %zu jobs still in flight at the shutdown "
                       "timeout; they stay leased and come back later",
                       s->inflight);
        s->stop_done = true;
        if (s->done)
            s->done(s->done_arg);
        return;
    }
    check_stopped(s);
}

static void check_stopped(struct suki_sched *s)
{
    if (!s->stopping || s->stop_done)
        return;
    if (s->inflight || s->pend || s->retry || s->settles_inflight ||
        s->claiming) {
        /* Not yet: wake up at the deadline at the latest. */
        int64_t left = s->stop_deadline - suki_mono_ms();
        if (left < 0)
            left = 0;
        struct timeval tv = {left / 1000, (left % 1000) * 1000};
        evtimer_add(s->stop_ev, &tv);
        return;
    }
    s->stop_done = true;
    evtimer_del(s->stop_ev);
    suki_info("scheduler: stopped, nothing in flight");
    if (s->done)
        s->done(s->done_arg);
}

void suki_sched_stop(struct suki_sched *s, suki_sched_done_cb done, void *arg)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    evtimer_del(s->timer);
    s->wake_ms = INT64_MAX;
    s->stop_deadline = suki_mono_ms() + s->D->conf->shutdown_timeout_ms;
    /* Report from the loop, never from inside this call. */
    struct timeval tv = {0, 0};
    evtimer_add(s->stop_ev, &tv);
}

struct suki_sched *suki_sched_new(struct suki_daemon *D)
{
    struct suki_sched *s = suki_calloc(1, sizeof(*s));
    s->D = D;
    s->wake_ms = INT64_MAX;
    load_conf(s);
    s->timer = evtimer_new(D->base, on_timer, s);
    s->flush_ev = evtimer_new(D->base, on_flush, s);
    s->retry_ev = evtimer_new(D->base, on_retry, s);
    s->renew_ev = evtimer_new(D->base, on_renew_timer, s);
    s->stop_ev = evtimer_new(D->base, on_stop_timer, s);
    SUKI_ASSERT(s->timer && s->flush_ev && s->retry_ev && s->renew_ev &&
                s->stop_ev);
    suki_redis_add_script(D->redis, &claim_script);
    suki_redis_add_script(D->redis, &settle_script);
    suki_redis_add_script(D->redis, &renew_script);
    s->fire = suki_fire_new(D, settle);
    if (suki_redis_is_up(D->redis))
        arm(s, 0);
    return s;
}

void suki_sched_reload(struct suki_sched *s)
{
    load_conf(s);
    if (!s->stopping && !s->claiming && !s->blocked)
        arm(s, 0);
}

void suki_sched_free(struct suki_sched *s)
{
    if (!s)
        return;
    suki_redis_cancel(s->D->redis, s);
    /* Orphan jobs still firing: fire frees them when its calls return. */
    for (struct suki_sched_job *j = s->head; j; j = j->next)
        j->s = NULL;
    s->head = NULL;
    if (s->pend)
        batch_free(s->pend);
    while (s->retry) {
        struct settle_batch *b = s->retry;
        s->retry = b->next;
        batch_free(b);
    }
    suki_fire_free(s->fire);
    event_free(s->timer);
    event_free(s->flush_ev);
    event_free(s->retry_ev);
    event_free(s->renew_ev);
    event_free(s->stop_ev);
    free(s->k_jobs);
    free(s->job_prefix);
    free(s->k_dead);
    free(s->sent_prefix);
    free(s);
}
