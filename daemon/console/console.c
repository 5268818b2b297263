/* console.c - the operator console's pages and JSON API. */
#include "console.h"
#include "assets.h"
#include "campaign.h"
#include "conf.h"
#include "console_users.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "ops.h"
#include "redis.h"
#include "store/job.h"
#include "store/keys.h"
#include "store/scripts.h"
#include "timeutil.h"
#include "util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

/* Request bodies: a login or a list of ids; anything larger is 413. */
#define CONSOLE_MAX_BODY 16384
#define SESSION_TTL_S 43200 /* 12 h */
#define COOKIE "suki_console"
/* Failed logins are counted per user and per address for this long; from
 * the FAIL_FREE-th on, each answer waits FAIL_BASE_MS doubled per further
 * failure, up to FAIL_MAX_MS. */
#define FAIL_WINDOW_S 900
#define FAIL_FREE 3
#define FAIL_BASE_MS 500
#define FAIL_MAX_MS 8000
/* Logins waiting for the hash worker; more get 503. */
#define VERIFY_QUEUE_MAX 16
#define PAGE_DEFAULT 50
#define PAGE_MAX 500
/* A dead letter's payload in a list (the entry itself has it whole). */
#define LIST_PAYLOAD_MAX 512

static const char CSP[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

static struct suki_redis_script overview_script = {
    "ops-overview", suki_lua_ops_overview, {0}};
static struct suki_redis_script charts_script = {
    "ops-charts", suki_lua_ops_charts, {0}};
static struct suki_redis_script campaigns_script = {
    "ops-campaigns", suki_lua_ops_campaigns, {0}};
static struct suki_redis_script control_script = {
    "ctl-campaign-control", suki_lua_ctl_campaign_control, {0}};
static struct suki_redis_script retry_chunk_script = {
    "ctl-campaign-retry-chunk", suki_lua_ctl_campaign_retry_chunk, {0}};
static struct suki_redis_script retry_done_script = {
    "ctl-campaign-retry-done", suki_lua_ctl_campaign_retry_done, {0}};
static struct suki_redis_script client_script = {
    "ops-client", suki_lua_ops_client, {0}};
static struct suki_redis_script job_script = {"ops-job", suki_lua_ops_job, {0}};
static struct suki_redis_script page_script = {
    "ops-jobs-page", suki_lua_ops_jobs_page, {0}};
static struct suki_redis_script cancel_script = {
    "ctl-jobs-cancel", suki_lua_ctl_jobs_cancel, {0}};
static struct suki_redis_script replay_script = {
    "ctl-intake-replay", suki_lua_ctl_intake_replay, {0}};

struct creq;

/* A login's password check, done by the worker thread: Argon2id takes
 * tens of milliseconds and 19 MiB, which the event loop must not wait
 * for. One worker, so that a flood of logins costs one hash at a time;
 * the result comes back through a pipe the loop watches. */
struct vjob {
    struct vjob *next;
    struct creq *q; /* NULL: its request went away */
    char *path, *user, *password;
    int result; /* 1 ok, 0 wrong, <0 error */
    char error[256];
};

struct suki_console {
    struct suki_daemon *D;
    struct suki_http *http;
    pthread_t thread;
    bool thread_up;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct vjob *todo, *todo_tail, *done;
    size_t ntodo;
    bool stop;
    int pipe[2];
    struct event *done_ev;
    LIST_HEAD(, creq) reqs; /* every request in flight */
};

enum route {
    R_LOGIN,
    R_LOGOUT,
    R_SESSION,
    R_OVERVIEW,
    R_CHARTS,
    R_JOBS,
    R_JOB_ACTION,
    R_DEAD,
    R_DEAD_ONE,
    R_DEAD_ACTION,
    R_CAMPAIGNS,
    R_CAMPAIGN,
    R_CAMPAIGN_ACTION,
    R_CLIENT,
    R_DEAD_BULK,
};

struct creq {
    LIST_ENTRY(creq) link;
    struct suki_console *C;
    struct evhttp_request *req;
    enum route route;
    char *arg;    /* the job key or dead letter id, decoded */
    char *action; /* run, cancel, replay, ... */
    json_t *body; /* the POST's JSON, or NULL */
    char *user;   /* the session's */
    char *csrf;
    char *sid; /* P:csession:<hash> of the request's cookie */
    struct event *timer;
    struct vjob *vj;
    /* jobs paging */
    int64_t min, max, skip, limit;
    char *kind; /* dead letters of this kind only */
    char *fail_user, *fail_ip;
    /* campaign retry: the ledger's SCAN cursor, recipients queued again */
    char cursor[32];
    int64_t moved;
    /* bulk dead-letter actions: the ids, the next one, the results */
    size_t next;
    json_t *results;
};

/* ---- replies ---- */

static void security_headers(struct evhttp_request *req, const char *ctype,
                             bool cache)
{
    struct evkeyvalq *o = evhttp_request_get_output_headers(req);
    evhttp_add_header(o, "Content-Type", ctype);
    evhttp_add_header(o, "Cache-Control", cache ? "no-cache" : "no-store");
    evhttp_add_header(o, "Content-Security-Policy", CSP);
    evhttp_add_header(o, "X-Frame-Options", "DENY");
    evhttp_add_header(o, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(o, "Referrer-Policy", "no-referrer");
    evhttp_add_header(o, "Cross-Origin-Opener-Policy", "same-origin");
    evhttp_add_header(o, "Cross-Origin-Resource-Policy", "same-origin");
}

static const char *reason_of(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* Steals o. */
static void reply_json(struct evhttp_request *req, int code, json_t *o)
{
    security_headers(req, "application/json", false);
    struct evbuffer *b = evbuffer_new();
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        evbuffer_add(b, s, strlen(s));
    evbuffer_add(b, "\n", 1);
    free(s);
    json_decref(o);
    evhttp_send_reply(req, code, reason_of(code), b);
    evbuffer_free(b);
}

static void reply_error(struct evhttp_request *req, int code, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));
static void reply_error(struct evhttp_request *req, int code, const char *fmt,
                        ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_json(req, code, json_pack("{s:s}", "error", msg));
}

/* ---- requests in flight ---- */

static struct creq *creq_new(struct suki_console *C, struct evhttp_request *req,
                             enum route r)
{
    struct creq *q = suki_calloc(1, sizeof(*q));
    q->C = C;
    q->req = req;
    q->route = r;
    LIST_INSERT_HEAD(&C->reqs, q, link);
    return q;
}

static void creq_free(struct creq *q)
{
    if (!q)
        return;
    LIST_REMOVE(q, link);
    if (q->timer)
        event_free(q->timer);
    if (q->vj)
        q->vj->q = NULL; /* the worker's result is thrown away */
    free(q->arg);
    free(q->action);
    json_decref(q->body);
    free(q->user);
    if (q->csrf)
        sodium_memzero(q->csrf, strlen(q->csrf));
    free(q->csrf);
    free(q->sid);
    free(q->kind);
    free(q->fail_user);
    free(q->fail_ip);
    json_decref(q->results);
    free(q);
}

/* Answer and free q (it is done). Steals o. */
static void finish_json(struct creq *q, int code, json_t *o)
{
    reply_json(q->req, code, o);
    creq_free(q);
}

static void finish_error(struct creq *q, int code, const char *msg)
{
    reply_error(q->req, code, "%s", msg);
    creq_free(q);
}

/* A reply that is not what the script returns: the link failed (NULL) or
 * Redis said no. q is answered and freed; true when that happened. */
static bool redis_failed(struct creq *q, struct suki_redis *r,
                         redisReply *reply)
{
    if (!r) { /* cancelled: the console is going away */
        creq_free(q);
        return true;
    }
    if (!reply) {
        finish_error(q, 503, "redis is unreachable; try again");
        return true;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        suki_warnx("console: redis: %s", reply->str);
        finish_error(q, 500, reply->str);
        return true;
    }
    return false;
}

static int eval(struct creq *q, struct suki_redis_script *s, int nkeys,
                struct suki_redis_args *a, suki_redis_cb cb)
{
    const char **argv = suki_calloc(a->n + 1, sizeof(char *));
    size_t *lens = suki_calloc(a->n + 1, sizeof(size_t));
    suki_redis_args_ptrs(a, argv, lens);
    int rc = suki_redis_eval_owned(q->C->D->redis, q->C, s, cb, q, nkeys,
                                   (int)a->n, argv, lens);
    free(argv);
    free(lens);
    suki_redis_args_clear(a);
    if (rc < 0)
        finish_error(q, 503, "redis is unreachable; try again");
    return rc;
}

static int command(struct creq *q, suki_redis_cb cb, int argc,
                   const char **argv)
{
    int rc =
        suki_redis_argv_owned(q->C->D->redis, q->C, cb, q, 0, argc, argv, NULL);
    if (rc < 0)
        finish_error(q, 503, "redis is unreachable; try again");
    return rc;
}

static char *key(struct suki_console *C, const char *suffix)
{
    return suki_key(C->D->conf->prefix, suffix);
}

/* ---- the password worker ---- */

static void *worker(void *arg)
{
    struct suki_console *C = arg;
    pthread_mutex_lock(&C->mu);
    for (;;) {
        while (!C->todo && !C->stop)
            pthread_cond_wait(&C->cv, &C->mu);
        if (C->stop)
            break;
        struct vjob *j = C->todo;
        C->todo = j->next;
        if (!C->todo)
            C->todo_tail = NULL;
        C->ntodo--;
        pthread_mutex_unlock(&C->mu);
        struct suki_err err = {{0}};
        j->result =
            suki_console_users_check(j->path, j->user, j->password, &err);
        if (j->result < 0)
            suki_strlcpy(j->error, err.msg, sizeof(j->error));
        sodium_memzero(j->password, strlen(j->password));
        pthread_mutex_lock(&C->mu);
        j->next = C->done;
        C->done = j;
        ssize_t w = write(C->pipe[1], "x", 1);
        (void)w; /* a full pipe already says there is something to read */
    }
    pthread_mutex_unlock(&C->mu);
    return NULL;
}

static void vjob_free(struct vjob *j)
{
    if (j->password) {
        sodium_memzero(j->password, strlen(j->password));
        free(j->password);
    }
    free(j->path);
    free(j->user);
    free(j);
}

static void login_checked(struct creq *q, const struct vjob *j);

static void on_verified(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct suki_console *C = arg;
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&C->mu);
    struct vjob *done = C->done;
    C->done = NULL;
    pthread_mutex_unlock(&C->mu);
    while (done) {
        struct vjob *j = done;
        done = j->next;
        if (j->q) {
            j->q->vj = NULL;
            login_checked(j->q, j);
        }
        vjob_free(j);
    }
}

/* ---- login ---- */

static void hex_of(const unsigned char *b, size_t n, char *out)
{
    suki_hex(b, n, out);
}

/* P:csession:<sha256 hex of the cookie value>: Redis never holds the
 * cookie itself. */
static char *session_key(struct suki_console *C, const char *token)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    char hx[2 * sizeof(h) + 1];
    hex_of(h, sizeof(h), hx);
    return suki_key_id(C->D->conf->prefix, SUKI_KEY_CSESSION, hx);
}

static void peer_ip(struct evhttp_request *req, char *out, size_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    const char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon)
        evhttp_connection_get_peer(evcon, (char **)&addr, &port);
    suki_strlcpy(out, addr ? addr : "-", len);
}

static void on_fail_noted(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    (void)reply;
    (void)arg;
}

static void note_failure(struct creq *q)
{
    struct suki_redis *R = q->C->D->redis;
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", FAIL_WINDOW_S);
    const char *keys[2] = {q->fail_user, q->fail_ip};
    for (size_t i = 0; i < 2; i++) {
        const char *incr[2] = {"INCR", keys[i]};
        const char *exp[3] = {"EXPIRE", keys[i], ttl};
        (void)suki_redis_argv(R, on_fail_noted, NULL, 0, 2, incr, NULL);
        (void)suki_redis_argv(R, on_fail_noted, NULL, 0, 3, exp, NULL);
    }
}

static void on_session_made(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    /* the cookie value was kept in q->arg for this moment only */
    char *cookie = suki_asprintf(
        COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s", q->arg,
        SESSION_TTL_S, q->C->D->conf->console_secure_cookie ? "; Secure" : "");
    evhttp_add_header(evhttp_request_get_output_headers(q->req), "Set-Cookie",
                      cookie);
    sodium_memzero(cookie, strlen(cookie));
    free(cookie);
    sodium_memzero(q->arg, strlen(q->arg));
    suki_notice("console: %s logged in", q->user);
    finish_json(q, 200,
                json_pack("{s:s,s:s}", "csrf", q->csrf, "user", q->user));
}

static void login_checked(struct creq *q, const struct vjob *j)
{
    if (j->result < 0) {
        suki_warnx("console: login of %s: %s", q->user, j->error);
        finish_error(q, 500, "the console's users file cannot be read");
        return;
    }
    if (j->result == 0) {
        char ip[64];
        peer_ip(q->req, ip, sizeof(ip));
        suki_notice("console: wrong password for '%s' from %s", q->user, ip);
        note_failure(q);
        finish_error(q, 401, "wrong user name or password");
        return;
    }
    unsigned char tok[32], csrf[32];
    randombytes_buf(tok, sizeof(tok));
    randombytes_buf(csrf, sizeof(csrf));
    char thex[65], chex[65];
    hex_of(tok, sizeof(tok), thex);
    hex_of(csrf, sizeof(csrf), chex);
    sodium_memzero(tok, sizeof(tok));
    q->arg = suki_strdup(thex);
    q->csrf = suki_strdup(chex);
    sodium_memzero(thex, sizeof(thex));
    char *sk = session_key(q->C, q->arg);
    char created[32], ttl[16];
    snprintf(created, sizeof(created), "%" PRId64, suki_now_ms());
    snprintf(ttl, sizeof(ttl), "%d", SESSION_TTL_S);
    const char *del[2] = {"DEL", q->fail_user};
    (void)suki_redis_argv(q->C->D->redis, on_fail_noted, NULL, 0, 2, del, NULL);
    const char *hset[] = {"HSET", sk,      "user",    q->user,
                          "csrf", q->csrf, "created", created};
    const char *exp[] = {"EXPIRE", sk, ttl};
    (void)suki_redis_argv(q->C->D->redis, on_fail_noted, NULL, 0, 8, hset,
                          NULL);
    (void)command(q, on_session_made, 3, exp);
    free(sk);
}

static void login_verify(struct creq *q)
{
    struct suki_console *C = q->C;
    pthread_mutex_lock(&C->mu);
    bool full = C->ntodo >= VERIFY_QUEUE_MAX;
    pthread_mutex_unlock(&C->mu);
    if (full) {
        finish_error(q, 503, "too many logins at once; try again");
        return;
    }
    struct vjob *j = suki_calloc(1, sizeof(*j));
    j->q = q;
    j->path = suki_strdup(C->D->conf->console_users_file);
    j->user = suki_strdup(q->user);
    const char *pw = json_string_value(json_object_get(q->body, "password"));
    j->password = suki_strdup(pw);
    q->vj = j;
    pthread_mutex_lock(&C->mu);
    if (C->todo_tail)
        C->todo_tail->next = j;
    else
        C->todo = j;
    C->todo_tail = j;
    C->ntodo++;
    pthread_cond_signal(&C->cv);
    pthread_mutex_unlock(&C->mu);
}

static void on_login_delay(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    login_verify(arg);
}

static int64_t reply_int(const redisReply *e)
{
    int64_t v = 0;
    if (e && e->type == REDIS_REPLY_STRING)
        (void)suki_parse_i64(e->str, 0, INT64_MAX, &v);
    return v;
}

/* The failure counters read: answer now, or after the delay they earn (a
 * timer, never a sleep). */
static void on_fail_counts(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    int64_t fails = 0;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
         i++) {
        int64_t n = reply_int(reply->element[i]);
        if (n > fails)
            fails = n;
    }
    if (fails < FAIL_FREE) {
        login_verify(q);
        return;
    }
    int64_t ms = FAIL_BASE_MS;
    for (int64_t i = FAIL_FREE; i < fails && ms < FAIL_MAX_MS; i++)
        ms *= 2;
    if (ms > FAIL_MAX_MS)
        ms = FAIL_MAX_MS;
    q->timer = evtimer_new(q->C->D->base, on_login_delay, q);
    SUKI_ASSERT(q->timer);
    suki_timer_ms(q->timer, ms);
}

static void serve_login(struct creq *q)
{
    const char *user = json_string_value(json_object_get(q->body, "user"));
    const char *pw = json_string_value(json_object_get(q->body, "password"));
    if (!user || !pw) {
        finish_error(q, 400,
                     "the body must be {\"user\": string, "
                     "\"password\": string}");
        return;
    }
    if (!q->C->D->conf->console_users_file) {
        finish_error(q, 500, "no console.users_file configured");
        return;
    }
    q->user = suki_strdup(user);
    char ip[64];
    peer_ip(q->req, ip, sizeof(ip));
    /* an unknown or strange name is counted like any other: its own key,
     * hashed so that the key stays short and printable */
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)user, strlen(user));
    char hx[2 * sizeof(h) + 1];
    hex_of(h, 8, hx);
    char *su = suki_asprintf("u:%s", hx);
    char *si = suki_asprintf("ip:%s", ip);
    q->fail_user = suki_key_id(q->C->D->conf->prefix, SUKI_KEY_CFAIL, su);
    q->fail_ip = suki_key_id(q->C->D->conf->prefix, SUKI_KEY_CFAIL, si);
    free(su);
    free(si);
    const char *av[3] = {"MGET", q->fail_user, q->fail_ip};
    (void)command(q, on_fail_counts, 3, av);
}

/* ---- sessions ---- */

static const char *cookie_value(struct evhttp_request *req, char *out,
                                size_t len)
{
    const char *c =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    for (const char *p = c; p && *p;) {
        p += strspn(p, " ;");
        size_t n = strcspn(p, ";");
        size_t kl = strlen(COOKIE);
        if (n > kl + 1 && strncmp(p, COOKIE "=", kl + 1) == 0 &&
            n - kl - 1 < len) {
            memcpy(out, p + kl + 1, n - kl - 1);
            out[n - kl - 1] = '\0';
            return out;
        }
        p += n;
    }
    return NULL;
}

static void dispatch(struct creq *q);

static void on_session(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        finish_error(q, 401, "not logged in (or the session expired)");
        return;
    }
    q->user = suki_strdup(reply->element[0]->str);
    q->csrf = suki_strdup(reply->element[1]->str);
    if (evhttp_request_get_command(q->req) == EVHTTP_REQ_POST) {
        const char *t = evhttp_find_header(
            evhttp_request_get_input_headers(q->req), "X-CSRF-Token");
        if (!t || strlen(t) != strlen(q->csrf) ||
            sodium_memcmp(t, q->csrf, strlen(t)) != 0) {
            finish_error(q, 403,
                         t ? "X-CSRF-Token does not match the session"
                           : "X-CSRF-Token is missing");
            return;
        }
    }
    dispatch(q);
}

static void check_session(struct creq *q)
{
    char tok[128];
    if (!cookie_value(q->req, tok, sizeof(tok))) {
        finish_error(q, 401, "not logged in");
        return;
    }
    q->sid = session_key(q->C, tok);
    sodium_memzero(tok, sizeof(tok));
    const char *av[4] = {"HMGET", q->sid, "user", "csrf"};
    (void)command(q, on_session, 4, av);
}

static void on_logged_out(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    evhttp_add_header(evhttp_request_get_output_headers(q->req), "Set-Cookie",
                      COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    finish_json(q, 200, json_pack("{s:b}", "logged_out", 1));
}

/* ---- overview ---- */

static void on_overview(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    bool open = false;
    json_t *o = suki_ops_overview_json(q->C->D->conf, reply, &open);
    if (!o) {
        finish_error(q, 500, "unexpected reply from ops-overview");
        return;
    }
    finish_json(q, 200, o);
}

/* ---- charts ---- */

#define CHART_MINUTES 60
#define CHART_FIELDS 7

/* Per minute, oldest first: events/s, messages/s by result, and the
 * scheduler's lateness (mean and max, seconds). The current minute's rates
 * are over the seconds it has had so far. */
static void on_charts(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2 + CHART_MINUTES * CHART_FIELDS) {
        finish_error(q, 500, "unexpected reply from ops-charts");
        return;
    }
    int64_t now = reply->element[0]->integer;
    int64_t first = reply->element[1]->integer;
    json_t *t = json_array(), *ev = json_array(), *sent = json_array(),
           *failed = json_array(), *retried = json_array(),
           *lavg = json_array(), *lmax = json_array();
    for (size_t m = 0; m < CHART_MINUTES; m++) {
        const redisReply *const *v =
            (const redisReply *const *)reply->element + 2 + m * CHART_FIELDS;
        int64_t start = (first + (int64_t)m) * 60000;
        double secs =
            m + 1 == CHART_MINUTES ? (double)(now - start) / 1000.0 : 60.0;
        if (secs < 1.0)
            secs = 1.0;
        json_array_append_new(t, json_integer(start));
        json_array_append_new(ev, json_real((double)v[0]->integer / secs));
        json_array_append_new(sent, json_real((double)v[1]->integer / secs));
        json_array_append_new(failed, json_real((double)v[2]->integer / secs));
        json_array_append_new(retried, json_real((double)v[3]->integer / secs));
        json_array_append_new(
            lavg, v[4]->integer > 0 ? json_real((double)v[5]->integer / 1000.0 /
                                                (double)v[4]->integer)
                                    : json_null());
        json_array_append_new(
            lmax, v[4]->integer > 0 ? json_real((double)v[6]->integer / 1000.0)
                                    : json_null());
    }
    json_t *o = json_object();
    json_object_set_new(o, "minute_ms", t);
    json_object_set_new(o, "events_per_s", ev);
    json_object_set_new(o, "messages_per_s",
                        json_pack("{s:o,s:o,s:o}", "sent", sent, "failed",
                                  failed, "retried", retried));
    json_object_set_new(o, "lateness_avg_s", lavg);
    json_object_set_new(o, "lateness_max_s", lmax);
    json_object_set_new(o, "now_ms", json_integer(now));
    finish_json(q, 200, o);
}

/* ---- jobs ---- */

static void on_jobs_page(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    json_t *a = json_array();
    size_t n = reply->type == REDIS_REPLY_ARRAY ? reply->elements / 3 : 0;
    int64_t last = 0, same = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = reply->element[3 * i];
        const redisReply *s = reply->element[3 * i + 1];
        const redisReply *b = reply->element[3 * i + 2];
        int64_t score = 0;
        if (s->type == REDIS_REPLY_STRING)
            (void)suki_parse_i64(s->str, INT64_MIN, INT64_MAX, &score);
        if (i == 0 || score != last) {
            /* the skip counts jobs scored exactly min before this page */
            same = score == q->min ? q->skip : 0;
            last = score;
        }
        same++;
        if (k->type != REDIS_REPLY_STRING)
            continue;
        json_array_append_new(
            a, suki_ops_job_json(q->C->D->conf, k->str, score,
                                 b->type == REDIS_REPLY_STRING ? b->str : NULL,
                                 b->type == REDIS_REPLY_STRING ? b->len : 0));
    }
    json_t *o = json_object();
    json_object_set_new(o, "jobs", a);
    if ((int64_t)n == q->limit) {
        /* where the next page starts: the last score, after the jobs of
         * that score already shown */
        char cur[64];
        snprintf(cur, sizeof(cur), "%" PRId64 ".%" PRId64, last, same);
        json_object_set_new(o, "cursor", json_string(cur));
    } else {
        json_object_set_new(o, "cursor", json_null());
    }
    finish_json(q, 200, o);
}

static void on_client_jobs(struct suki_redis *r, redisReply *reply, void *arg);

/* A client's jobs: its own hash (few), each with its score. */
static void client_jobs(struct creq *q, const char *client)
{
    char *jh = suki_job_hash_key(q->C->D->conf->prefix, client, NULL);
    const char *av[2] = {"HGETALL", jh};
    (void)command(q, on_client_jobs, 2, av);
    free(jh);
}

struct crow {
    const char *key;
    int64_t score;
    const redisReply *body;
};

static int crow_cmp(const void *a, const void *b)
{
    const struct crow *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return strcmp(x->key, y->key);
}

static void on_client_scores(struct suki_redis *r, redisReply *reply,
                             void *arg);

static void on_client_jobs(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        finish_json(q, 200, json_pack("{s:[],s:n}", "jobs", "cursor"));
        return;
    }
    /* the bodies are kept in q->body until the scores come */
    json_t *bodies = json_object();
    struct suki_redis_args a = {0};
    suki_redis_args_str(&a, "ZMSCORE");
    char *kj = key(q->C, SUKI_KEY_JOBS);
    suki_redis_args_str(&a, kj);
    free(kj);
    json_t *order = json_array();
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *b = reply->element[i + 1];
        suki_redis_args_add(&a, k->str, k->len);
        json_array_append_new(order, json_stringn(k->str, k->len));
        json_object_set_new(bodies, k->str, json_stringn(b->str, b->len));
    }
    json_decref(q->body);
    q->body = json_pack("{s:o,s:o}", "bodies", bodies, "order", order);
    const char **argv = suki_calloc(a.n, sizeof(char *));
    size_t *lens = suki_calloc(a.n, sizeof(size_t));
    suki_redis_args_ptrs(&a, argv, lens);
    int rc = suki_redis_argv_owned(q->C->D->redis, q->C, on_client_scores, q, 0,
                                   (int)a.n, argv, lens);
    free(argv);
    free(lens);
    suki_redis_args_clear(&a);
    if (rc < 0)
        finish_error(q, 503, "redis is unreachable; try again");
}

static void on_client_scores(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    json_t *order = json_object_get(q->body, "order");
    json_t *bodies = json_object_get(q->body, "bodies");
    size_t n = json_array_size(order);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        finish_error(q, 500, "unexpected reply from ZMSCORE");
        return;
    }
    struct crow *rows = suki_calloc(n + 1, sizeof(*rows));
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *s = reply->element[i];
        int64_t score;
        if (s->type != REDIS_REPLY_STRING ||
            suki_parse_i64(s->str, INT64_MIN, INT64_MAX, &score) < 0)
            continue; /* held, or being removed */
        if (score < q->min || score > q->max)
            continue;
        rows[kept].key = json_string_value(json_array_get(order, i));
        rows[kept].score = score;
        kept++;
    }
    qsort(rows, kept, sizeof(*rows), crow_cmp);
    json_t *a = json_array();
    size_t from = 0;
    /* the same cursor as the whole schedule's: skip that many of min */
    for (int64_t s = 0;
         from < kept && rows[from].score == q->min && s < q->skip; s++)
        from++;
    int64_t last = 0, same = 0;
    size_t i;
    for (i = from; i < kept && (int64_t)(i - from) < q->limit; i++) {
        if (i == from || rows[i].score != last) {
            same = rows[i].score == q->min ? q->skip : 0;
            last = rows[i].score;
        }
        same++;
        json_t *b = json_object_get(bodies, rows[i].key);
        json_array_append_new(
            a, suki_ops_job_json(q->C->D->conf, rows[i].key, rows[i].score,
                                 json_string_value(b), json_string_length(b)));
    }
    json_t *o = json_pack("{s:o}", "jobs", a);
    if (i < kept) {
        char cur[64];
        snprintf(cur, sizeof(cur), "%" PRId64 ".%" PRId64, last, same);
        json_object_set_new(o, "cursor", json_string(cur));
    } else {
        json_object_set_new(o, "cursor", json_null());
    }
    free(rows);
    finish_json(q, 200, o);
}

/* A time in a query: epoch ms, or RFC 3339. */
static int parse_when(const char *s, int64_t *ms)
{
    if (suki_parse_i64(s, 0, INT64_MAX, ms) == 0)
        return 0;
    struct suki_err err = {{0}};
    return suki_time_parse_rfc3339(s, ms, &err);
}

static void serve_jobs(struct creq *q, const struct evkeyvalq *qs)
{
    q->min = 0;
    q->max = INT64_MAX / 2;
    q->limit = PAGE_DEFAULT;
    const char *from = evhttp_find_header(qs, "from");
    const char *to = evhttp_find_header(qs, "to");
    const char *cursor = evhttp_find_header(qs, "cursor");
    const char *limit = evhttp_find_header(qs, "limit");
    const char *client = evhttp_find_header(qs, "client");
    if ((from && *from && parse_when(from, &q->min) < 0) ||
        (to && *to && parse_when(to, &q->max) < 0)) {
        finish_error(q, 400, "from and to are epoch ms or RFC 3339 times");
        return;
    }
    if (limit && suki_parse_i64(limit, 1, PAGE_MAX, &q->limit) < 0) {
        finish_error(q, 400, "limit is 1 to 500");
        return;
    }
    if (cursor && *cursor) {
        char a[32], b[32];
        size_t dot = strcspn(cursor, ".");
        if (cursor[dot] != '.' || dot >= sizeof(a) ||
            strlen(cursor + dot + 1) >= sizeof(b)) {
            finish_error(q, 400, "cursor is not one this API gave");
            return;
        }
        memcpy(a, cursor, dot);
        a[dot] = '\0';
        suki_strlcpy(b, cursor + dot + 1, sizeof(b));
        if (suki_parse_i64(a, 0, INT64_MAX, &q->min) < 0 ||
            suki_parse_i64(b, 0, INT64_MAX, &q->skip) < 0) {
            finish_error(q, 400, "cursor is not one this API gave");
            return;
        }
    }
    if (client && *client) {
        client_jobs(q, client);
        return;
    }
    struct suki_redis_args a = {0};
    suki_ops_jobs_page_args(q->C->D->conf, q->min, q->max, q->skip, q->limit,
                            &a);
    (void)eval(q, &page_script, 1, &a, on_jobs_page);
}

static void on_job_action(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == -1) {
        finish_error(q, 409,
                     "the job is being sent right now (claimed by a "
                     "scheduler); try again when it has settled");
        return;
    }
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        finish_error(q, 404,
                     strcmp(q->action, "release") == 0 ? "no such held job"
                                                       : "no such job");
        return;
    }
    suki_notice("console: %s: %s job %s", q->user, q->action, q->arg);
    finish_json(q, 200,
                json_pack("{s:s,s:s,s:b}", "key", q->arg, "action", q->action,
                          "done", 1));
}

static void serve_job_action(struct creq *q)
{
    struct suki_redis_args a = {0};
    if (strcmp(q->action, "cancel") == 0) {
        suki_ops_cancel_args(q->C->D->conf, q->arg, &a);
        (void)eval(q, &cancel_script, 2, &a, on_job_action);
    } else {
        suki_ops_job_args(q->C->D->conf, q->action, q->arg, &a);
        (void)eval(q, &job_script, 2, &a, on_job_action);
    }
}

/* ---- dead letters ---- */

static void on_dead_list(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    json_t *a = json_array();
    size_t n = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
    const char *last = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *e = suki_ops_dead_json(reply->element[i]);
        if (!e)
            continue;
        last = reply->element[i]->element[0]->str;
        const char *kind = json_string_value(json_object_get(e, "kind"));
        if (q->kind && (!kind || strcmp(kind, q->kind) != 0)) {
            json_decref(e);
            continue;
        }
        json_t *p = json_object_get(e, "payload");
        size_t pl = json_string_length(p);
        json_object_set_new(e, "payload_size", json_integer((json_int_t)pl));
        if (pl > LIST_PAYLOAD_MAX) {
            const char *ps = json_string_value(p);
            size_t cut = LIST_PAYLOAD_MAX;
            while (cut > 0 && ((unsigned char)ps[cut] & 0xc0) == 0x80)
                cut--; /* not inside a UTF-8 sequence */
            json_object_set_new(e, "payload", json_stringn(ps, cut));
            json_object_set_new(e, "payload_cut", json_true());
        }
        json_array_append_new(a, e);
    }
    json_t *o = json_pack("{s:o}", "entries", a);
    json_object_set_new(o, "cursor",
                        (int64_t)n == q->limit && last ? json_string(last)
                                                       : json_null());
    finish_json(q, 200, o);
}

static void serve_dead(struct creq *q, const struct evkeyvalq *qs)
{
    q->limit = PAGE_DEFAULT;
    const char *cursor = evhttp_find_header(qs, "cursor");
    const char *limit = evhttp_find_header(qs, "limit");
    const char *kind = evhttp_find_header(qs, "kind");
    if (limit && suki_parse_i64(limit, 1, PAGE_MAX, &q->limit) < 0) {
        finish_error(q, 400, "limit is 1 to 500");
        return;
    }
    if (cursor && *cursor && !suki_ops_stream_id_ok(cursor)) {
        finish_error(q, 400, "cursor is not one this API gave");
        return;
    }
    if (kind && *kind)
        q->kind = suki_strdup(kind);
    char *kd = key(q->C, SUKI_KEY_DEAD);
    char *start =
        cursor && *cursor ? suki_asprintf("(%s", cursor) : suki_strdup("+");
    char count[24];
    snprintf(count, sizeof(count), "%" PRId64, q->limit);
    /* newest first */
    const char *av[6] = {"XREVRANGE", kd, start, "-", "COUNT", count};
    (void)command(q, on_dead_list, 6, av);
    free(kd);
    free(start);
}

static void on_dead_one(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    json_t *e = reply->type == REDIS_REPLY_ARRAY && reply->elements == 1
                    ? suki_ops_dead_json(reply->element[0])
                    : NULL;
    if (!e) {
        finish_error(q, 404, "no such dead letter");
        return;
    }
    finish_json(q, 200, e);
}

static void on_dead_replayed(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (!r) {
        creq_free(q);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        /* the script's refusals, before any write */
        if (strstr(reply->str, "no dead letter"))
            finish_error(q, 404, "no such dead letter");
        else if (strstr(reply->str, "scheduled again"))
            finish_error(q, 409, reply->str);
        else if (strstr(reply->str, "can be replayed") ||
                 strstr(reply->str, "no payload") ||
                 strstr(reply->str, "no job key"))
            finish_error(q, 409, reply->str);
        else
            (void)redis_failed(q, r, reply);
        return;
    }
    if (redis_failed(q, r, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        finish_error(q, 500, "unexpected reply from the replay");
        return;
    }
    const char *kind = reply->element[0]->str, *as = reply->element[1]->str;
    suki_notice("console: %s: replayed dead letter %s (%s %s)", q->user, q->arg,
                kind, as);
    json_t *o =
        json_pack("{s:s,s:s,s:b}", "id", q->arg, "kind", kind, "replayed", 1);
    json_object_set_new(o, strcmp(kind, "event") == 0 ? "stream_id" : "job",
                        json_string(as));
    finish_json(q, 200, o);
}

static void on_dead_dropped(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        finish_error(q, 404, "no such dead letter");
        return;
    }
    suki_notice("console: %s: dropped dead letter %s", q->user, q->arg);
    finish_json(q, 200, json_pack("{s:s,s:b}", "id", q->arg, "dropped", 1));
}

static void serve_dead_one(struct creq *q)
{
    if (!suki_ops_stream_id_ok(q->arg)) {
        finish_error(q, 404, "no such dead letter");
        return;
    }
    char *kd = key(q->C, SUKI_KEY_DEAD);
    if (q->route == R_DEAD_ONE) {
        const char *av[4] = {"XRANGE", kd, q->arg, q->arg};
        (void)command(q, on_dead_one, 4, av);
    } else if (strcmp(q->action, "drop") == 0) {
        const char *av[3] = {"XDEL", kd, q->arg};
        (void)command(q, on_dead_dropped, 3, av);
    } else {
        struct suki_redis_args a = {0};
        suki_ops_replay_args(q->C->D->conf, q->arg,
                             json_is_true(json_object_get(q->body, "force")),
                             &a);
        (void)eval(q, &replay_script, 3, &a, on_dead_replayed);
    }
    free(kd);
}

/* ---- dead letters in bulk: one after the other, each as alone ---- */

#define BULK_MAX 500

static void bulk_next(struct creq *q);

static void bulk_result(struct creq *q, int status, const char *what,
                        const char *detail)
{
    const char *id = json_string_value(
        json_array_get(json_object_get(q->body, "ids"), q->next - 1));
    json_t *o = json_pack("{s:s,s:i}", "id", id ? id : "", "status", status);
    if (what)
        json_object_set_new(o, status == 200 ? "kind" : "error",
                            json_string(what));
    if (detail)
        json_object_set_new(o, "as", json_string(detail));
    json_array_append_new(q->results, o);
}

static void on_bulk_one(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (!r) {
        creq_free(q);
        return;
    }
    if (!reply) {
        finish_error(q, 503, "redis is unreachable; try again");
        return;
    }
    if (strcmp(q->action, "drop") == 0) {
        bool ok = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
        bulk_result(q, ok ? 200 : 404, ok ? NULL : "no such dead letter", NULL);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        bool none = strstr(reply->str, "no dead letter") != NULL;
        bulk_result(q, none ? 404 : 409,
                    none ? "no such dead letter" : reply->str, NULL);
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        bulk_result(q, 200, reply->element[0]->str, reply->element[1]->str);
    } else {
        bulk_result(q, 500, "unexpected reply", NULL);
    }
    bulk_next(q);
}

static void bulk_next(struct creq *q)
{
    json_t *ids = json_object_get(q->body, "ids");
    if (q->next >= json_array_size(ids)) {
        suki_notice("console: %s: %s of %zu dead letters", q->user, q->action,
                    json_array_size(ids));
        finish_json(q, 200, json_pack("{s:O}", "results", q->results));
        return;
    }
    const char *id = json_string_value(json_array_get(ids, q->next++));
    if (!suki_ops_stream_id_ok(id)) {
        bulk_result(q, 404, "no such dead letter", NULL);
        bulk_next(q); /* bounded by BULK_MAX */
        return;
    }
    if (strcmp(q->action, "drop") == 0) {
        char *kd = key(q->C, SUKI_KEY_DEAD);
        const char *av[3] = {"XDEL", kd, id};
        (void)command(q, on_bulk_one, 3, av);
        free(kd);
    } else {
        struct suki_redis_args a = {0};
        suki_ops_replay_args(q->C->D->conf, id,
                             json_is_true(json_object_get(q->body, "force")),
                             &a);
        (void)eval(q, &replay_script, 3, &a, on_bulk_one);
    }
}

static void serve_dead_bulk(struct creq *q)
{
    json_t *ids = json_object_get(q->body, "ids");
    size_t i;
    json_t *v;
    bool ok = json_is_array(ids) && json_array_size(ids) > 0 &&
              json_array_size(ids) <= BULK_MAX;
    json_array_foreach(ids, i, v) if (!json_is_string(v)) ok = false;
    if (!ok) {
        finish_error(q, 400,
                     "the body must be {\"ids\": [1 to 500 dead "
                     "letter ids]}");
        return;
    }
    q->action = suki_strdup(q->arg); /* /dead/replay, /dead/drop */
    q->results = json_array();
    bulk_next(q);
}

/* ---- campaigns ---- */

#define RETRY_CHUNK 1000

static void on_campaigns(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    json_t *a = suki_ops_campaigns_json(reply);
    if (!a) {
        finish_error(q, 500, "unexpected reply from ops-campaigns");
        return;
    }
    if (q->route == R_CAMPAIGNS) {
        finish_json(q, 200, json_pack("{s:o}", "campaigns", a));
        return;
    }
    json_t *o = json_incref(json_array_get(a, 0));
    json_decref(a);
    if (!o)
        finish_error(q, 404, "no such campaign");
    else
        finish_json(q, 200, o);
}

/* The control script's refusals come before any write: an unknown
 * campaign is 404, one in the wrong state 409. */
static bool campaign_refused(struct creq *q, struct suki_redis *r,
                             redisReply *reply)
{
    if (!r || !reply || reply->type != REDIS_REPLY_ERROR)
        return false;
    if (strstr(reply->str, "no such campaign"))
        finish_error(q, 404, "no such campaign");
    else
        finish_error(q, 409, reply->str);
    return true;
}

static void on_campaign_control(struct suki_redis *r, redisReply *reply,
                                void *arg)
{
    struct creq *q = arg;
    if (campaign_refused(q, r, reply) || redis_failed(q, r, reply))
        return;
    const char *st =
        reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING
            ? reply->str
            : "";
    suki_notice("console: %s: campaign %s: %s (%s)", q->user, q->arg, q->action,
                st);
    json_t *o = json_pack("{s:s,s:s,s:s}", "campaign", q->arg, "action",
                          q->action, "state", st);
    if (strcmp(q->action, "retry") == 0)
        json_object_set_new(o, "retried", json_integer(q->moved));
    finish_json(q, 200, o);
}

static void retry_chunk(struct creq *q);

static void on_retry_chunk(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        finish_error(q, 500, "unexpected reply from the retry");
        return;
    }
    suki_strlcpy(q->cursor, reply->element[0]->str, sizeof(q->cursor));
    q->moved += reply->element[1]->integer;
    if (strcmp(q->cursor, "0") != 0) {
        retry_chunk(q); /* the ledger is walked a chunk per call */
        return;
    }
    if (q->moved == 0) {
        finish_json(q, 200,
                    json_pack("{s:s,s:s,s:i}", "campaign", q->arg, "action",
                              "retry", "retried", 0));
        return;
    }
    struct suki_redis_args a = {0};
    char *kh = suki_key_id(q->C->D->conf->prefix, SUKI_KEY_CAMPAIGN, q->arg);
    suki_redis_args_str(&a, kh);
    free(kh);
    (void)eval(q, &retry_done_script, 1, &a, on_campaign_control);
}

static void retry_chunk(struct creq *q)
{
    const char *p = q->C->D->conf->prefix;
    struct suki_redis_args a = {0};
    const char *kinds[3] = {SUKI_KEY_CAMPAIGN, SUKI_KEY_CLEDGER,
                            SUKI_KEY_CPENDING};
    for (size_t i = 0; i < 3; i++) {
        char *k = suki_key_id(p, kinds[i], q->arg);
        suki_redis_args_str(&a, k);
        free(k);
    }
    suki_redis_args_str(&a, q->cursor);
    suki_redis_args_int(&a, RETRY_CHUNK);
    (void)eval(q, &retry_chunk_script, 3, &a, on_retry_chunk);
}

/* Retry as sukictl campaign retry: not for a missing or cancelled one. */
static void on_retry_state(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        finish_error(q, 404, "no such campaign");
        return;
    }
    if (strcmp(reply->str, "cancelled") == 0) {
        finish_error(q, 409, "the campaign was cancelled; create a new one");
        return;
    }
    suki_strlcpy(q->cursor, "0", sizeof(q->cursor));
    retry_chunk(q);
}

static void serve_campaign(struct creq *q)
{
    if (q->route != R_CAMPAIGNS && !suki_campaign_name_ok(q->arg)) {
        finish_error(q, 404, "no such campaign");
        return;
    }
    struct suki_redis_args a = {0};
    if (q->route != R_CAMPAIGN_ACTION) {
        suki_ops_campaigns_args(q->C->D->conf,
                                q->route == R_CAMPAIGN ? q->arg : NULL, &a);
        (void)eval(q, &campaigns_script, 1, &a, on_campaigns);
    } else if (strcmp(q->action, "retry") == 0) {
        char *kh =
            suki_key_id(q->C->D->conf->prefix, SUKI_KEY_CAMPAIGN, q->arg);
        const char *av[3] = {"HGET", kh, "state"};
        (void)command(q, on_retry_state, 3, av);
        free(kh);
    } else {
        suki_ops_campaign_control_args(q->C->D->conf, q->arg, q->action, &a);
        (void)eval(q, &control_script, 1, &a, on_campaign_control);
    }
}

/* ---- clients ---- */

static void on_client(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct creq *q = arg;
    if (redis_failed(q, r, reply))
        return;
    bool found = false;
    json_t *o = suki_ops_client_json(q->C->D->conf, q->arg, reply, &found);
    if (!o) {
        finish_error(q, 500, "unexpected reply from ops-client");
    } else if (!found) {
        json_decref(o);
        finish_error(q, 404, "no such client (no profile, no pending jobs)");
    } else {
        finish_json(q, 200, o);
    }
}

/* ---- routing ---- */

static void dispatch(struct creq *q)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(q->req);
    struct evkeyvalq qs;
    TAILQ_INIT(&qs);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (query && evhttp_parse_query_str(query, &qs) < 0) {
        finish_error(q, 400, "malformed query string");
        return;
    }
    switch (q->route) {
    case R_LOGIN:
        serve_login(q);
        break;
    case R_LOGOUT: {
        const char *av[2] = {"DEL", q->sid};
        suki_notice("console: %s logged out", q->user);
        (void)command(q, on_logged_out, 2, av);
        break;
    }
    case R_SESSION:
        finish_json(q, 200,
                    json_pack("{s:s,s:s}", "user", q->user, "csrf", q->csrf));
        break;
    case R_OVERVIEW: {
        struct suki_redis_args a = {0};
        suki_ops_overview_args(q->C->D->conf, &a);
        (void)eval(q, &overview_script, SUKI_OPS_OVERVIEW_KEYS, &a,
                   on_overview);
        break;
    }
    case R_CHARTS: {
        struct suki_redis_args a = {0};
        char *cp = suki_key_id(q->C->D->conf->prefix, SUKI_KEY_CHART, "");
        suki_redis_args_str(&a, cp);
        free(cp);
        suki_redis_args_int(&a, CHART_MINUTES);
        (void)eval(q, &charts_script, 0, &a, on_charts);
        break;
    }
    case R_JOBS:
        serve_jobs(q, &qs);
        break;
    case R_JOB_ACTION:
        serve_job_action(q);
        break;
    case R_DEAD:
        serve_dead(q, &qs);
        break;
    case R_DEAD_ONE:
    case R_DEAD_ACTION:
        serve_dead_one(q);
        break;
    case R_DEAD_BULK:
        serve_dead_bulk(q);
        break;
    case R_CLIENT: {
        struct suki_redis_args a = {0};
        suki_ops_client_args(q->C->D->conf, q->arg, &a);
        (void)eval(q, &client_script, SUKI_OPS_CLIENT_NKEYS, &a, on_client);
        break;
    }
    case R_CAMPAIGNS:
    case R_CAMPAIGN:
    case R_CAMPAIGN_ACTION:
        serve_campaign(q);
        break;
    }
    evhttp_clear_headers(&qs);
}

/* Path segments after /api/v1/, percent-decoded (a job key holds '%'
 * escapes of its own, sent encoded again). At most 4. */
static size_t split_path(const char *path, char *seg[4])
{
    size_t n = 0;
    const char *p = path;
    while (*p && n < 4) {
        size_t l = strcspn(p, "/");
        char *raw = suki_strndup(p, l);
        size_t dl = 0;
        seg[n] = evhttp_uridecode(raw, 0, &dl);
        if (seg[n] && strlen(seg[n]) != dl) { /* a NUL inside */
            free(seg[n]);
            seg[n] = NULL;
        }
        free(raw);
        if (!seg[n])
            break;
        n++;
        p += l;
        if (*p == '/')
            p++;
        else
            break;
    }
    if (*p) { /* too many, or undecodable */
        for (size_t i = 0; i < n; i++)
            free(seg[i]);
        return SIZE_MAX;
    }
    return n;
}

static bool in(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* Which route, and the method it wants: 0 not found. */
static int route_of(size_t n, char *seg[4], enum route *r, bool *post)
{
    static const char *const job_acts[] = {"cancel", "run", "hold", "release",
                                           NULL};
    static const char *const dead_acts[] = {"replay", "drop", NULL};
    static const char *const camp_acts[] = {"pause", "resume", "cancel",
                                            "retry", NULL};
    if (n == 2 && strcmp(seg[0], "clients") == 0 && *seg[1])
        return *r = R_CLIENT, 1;
    if (n == 1 && strcmp(seg[0], "campaigns") == 0)
        return *r = R_CAMPAIGNS, 1;
    if (n == 2 && strcmp(seg[0], "campaigns") == 0 && *seg[1])
        return *r = R_CAMPAIGN, 1;
    if (n == 3 && strcmp(seg[0], "campaigns") == 0 && *seg[1] &&
        in(seg[2], camp_acts))
        return *r = R_CAMPAIGN_ACTION, *post = true, 1;
    *post = false;
    if (n == 1 && strcmp(seg[0], "login") == 0)
        return *r = R_LOGIN, *post = true, 1;
    if (n == 1 && strcmp(seg[0], "logout") == 0)
        return *r = R_LOGOUT, *post = true, 1;
    if (n == 1 && strcmp(seg[0], "session") == 0)
        return *r = R_SESSION, 1;
    if (n == 1 && strcmp(seg[0], "overview") == 0)
        return *r = R_OVERVIEW, 1;
    if (n == 1 && strcmp(seg[0], "charts") == 0)
        return *r = R_CHARTS, 1;
    if (n == 1 && strcmp(seg[0], "jobs") == 0)
        return *r = R_JOBS, 1;
    if (n == 3 && strcmp(seg[0], "jobs") == 0 && *seg[1] &&
        in(seg[2], job_acts))
        return *r = R_JOB_ACTION, *post = true, 1;
    if (n == 1 && strcmp(seg[0], "dead") == 0)
        return *r = R_DEAD, 1;
    if (n == 2 && strcmp(seg[0], "dead") == 0 && in(seg[1], dead_acts))
        return *r = R_DEAD_BULK, *post = true, 1;
    if (n == 2 && strcmp(seg[0], "dead") == 0 && *seg[1])
        return *r = R_DEAD_ONE, 1;
    if (n == 3 && strcmp(seg[0], "dead") == 0 && *seg[1] &&
        in(seg[2], dead_acts))
        return *r = R_DEAD_ACTION, *post = true, 1;
    return 0;
}

static void serve_api(struct suki_console *C, struct evhttp_request *req,
                      const char *rest)
{
    char *seg[4] = {NULL};
    size_t n = split_path(rest, seg);
    enum route r = R_LOGIN;
    bool want_post = false;
    if (n == SIZE_MAX || !route_of(n, seg, &r, &want_post)) {
        for (size_t i = 0; n != SIZE_MAX && i < n; i++)
            free(seg[i]);
        reply_error(req, 404, "no such API endpoint");
        return;
    }
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    bool ok = want_post ? m == EVHTTP_REQ_POST
                        : m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            free(seg[i]);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          want_post ? "POST" : "GET, HEAD");
        reply_error(req, 405, "use %s", want_post ? "POST" : "GET");
        return;
    }
    struct creq *q = creq_new(C, req, r);
    if (n >= 2)
        q->arg = suki_strdup(seg[1]);
    if (n >= 3)
        q->action = suki_strdup(seg[2]);
    for (size_t i = 0; i < n; i++)
        free(seg[i]);
    if (want_post) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        if (len > CONSOLE_MAX_BODY) {
            finish_error(q, 413, "request body too large");
            return;
        }
        if (len > 0 || r == R_LOGIN) {
            const char *ct = evhttp_find_header(
                evhttp_request_get_input_headers(req), "Content-Type");
            /* not one a cross-site form can send without asking first */
            if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
                finish_error(q, 415, "the body must be application/json");
                return;
            }
            json_error_t je;
            q->body =
                json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, &je);
            if (!q->body || !json_is_object(q->body)) {
                char msg[300];
                if (q->body)
                    snprintf(msg, sizeof(msg),
                             "the body must be a JSON "
                             "object");
                else
                    snprintf(msg, sizeof(msg),
                             "malformed JSON: %s (line %d, column %d)", je.text,
                             je.line, je.column);
                finish_error(q, 400, msg);
                return;
            }
        }
    }
    if (r == R_LOGIN)
        dispatch(q);
    else
        check_session(q);
}

static void serve_asset(struct evhttp_request *req, const char *path)
{
    const struct suki_console_asset *a = suki_console_asset(path);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!a) {
        reply_error(req, 404, "not found");
        return;
    }
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD");
        reply_error(req, 405, "use GET");
        return;
    }
    security_headers(req, a->ctype, true);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_reference(b, a->data, a->len, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct suki_console *C = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path) {
        reply_error(req, 400, "bad request");
        return;
    }
    if (strncmp(path, "/api/v1/", 8) == 0)
        serve_api(C, req, path + 8);
    else if (strncmp(path, "/api/", 5) == 0)
        reply_error(req, 404, "no such API endpoint (the API is /api/v1/)");
    else
        serve_asset(req, strcmp(path, "/") == 0 ? "/index.html" : path);
}

/* ---- setup ---- */

struct suki_console *suki_console_new(struct suki_daemon *D,
                                      struct suki_err *err)
{
    if (sodium_init() < 0) {
        suki_err_set(err, -ENOMEM, "console: libsodium cannot initialise");
        return NULL;
    }
    struct suki_redis_script *scripts[] = {
        &client_script,      &campaigns_script,  &control_script,
        &retry_chunk_script, &retry_done_script, &overview_script,
        &charts_script,      &job_script,        &page_script,
        &cancel_script,      &replay_script};
    for (size_t i = 0; i < SUKI_ARRAY_LEN(scripts); i++)
        if (!scripts[i]->sha[0])
            suki_redis_script_init(scripts[i]);
    struct suki_console *C = suki_calloc(1, sizeof(*C));
    C->D = D;
    LIST_INIT(&C->reqs);
    C->http = suki_http_listener_new(D, "console", D->conf->console_listen,
                                     CONSOLE_MAX_BODY, on_request, C, err);
    if (!C->http) {
        free(C);
        return NULL;
    }
    int prc = pipe(C->pipe);
    SUKI_ASSERT(prc == 0);
    for (int i = 0; i < 2; i++) {
        (void)fcntl(C->pipe[i], F_SETFD, FD_CLOEXEC);
        (void)fcntl(C->pipe[i], F_SETFL, O_NONBLOCK);
    }
    C->done_ev =
        event_new(D->base, C->pipe[0], EV_READ | EV_PERSIST, on_verified, C);
    SUKI_ASSERT(C->done_ev);
    event_add(C->done_ev, NULL);
    pthread_mutex_init(&C->mu, NULL);
    pthread_cond_init(&C->cv, NULL);
    int trc = pthread_create(&C->thread, NULL, worker, C);
    SUKI_ASSERT(trc == 0);
    C->thread_up = true;
    return C;
}

void suki_console_tick(struct suki_console *C)
{
    if (C)
        suki_http_tick(C->http);
}

void suki_console_free(struct suki_console *C)
{
    if (!C)
        return;
    /* the calls on Redis first: their callbacks free their requests */
    suki_redis_cancel(C->D->redis, C);
    pthread_mutex_lock(&C->mu);
    C->stop = true;
    pthread_cond_broadcast(&C->cv);
    pthread_mutex_unlock(&C->mu);
    if (C->thread_up)
        pthread_join(C->thread, NULL);
    for (struct vjob *j = C->todo, *nx; j; j = nx) {
        nx = j->next;
        vjob_free(j);
    }
    for (struct vjob *j = C->done, *nx; j; j = nx) {
        nx = j->next;
        vjob_free(j);
    }
    C->todo = C->done = NULL;
    /* the rest wait for a timer or the worker: never answered */
    while (!LIST_EMPTY(&C->reqs)) {
        struct creq *q = LIST_FIRST(&C->reqs);
        q->vj = NULL;
        creq_free(q);
    }
    suki_http_free(C->http);
    event_free(C->done_ev);
    close(C->pipe[0]);
    close(C->pipe[1]);
    pthread_mutex_destroy(&C->mu);
    pthread_cond_destroy(&C->cv);
    free(C);
}

int suki_console_port(const struct suki_console *C)
{
    return suki_http_port(C->http);
}
