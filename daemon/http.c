/* http.c - /metrics, /healthz and the unsubscribe pages on evhttp. */
#include "http.h"
#include "http_intake.h"
#include "store/scripts.h"
#include "store/keys.h"
#include "store/report.h"
#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "unsub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h> /* TAILQ_FIRST for evkeyvalq */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#define GAUGE_EVERY_MS 5000
#define LOOP_STALL_MS 5000
#define MAX_HEADERS 8192
#define MAX_BODY 4096
#define CONN_TIMEOUT_S 10
/* After accept() ran out of descriptors: this long before the next try. */
#define ACCEPT_PAUSE_MS 250
/* Connections shed at the limit or cut off at the deadline: one log line
 * each at most this often. */
#define CUT_LOG_EVERY_MS 10000

/* One accepted connection, by descriptor. libevent 2.1 has no connection
 * limit, and its timeout is an idle one that each byte resets (a client
 * sending a header byte every few seconds stays for ever), so sukid keeps
 * its own account. evhttp owns and closes the descriptor without telling
 * anyone: an entry whose descriptor is closed, or is now another file
 * (st_dev/st_ino), is gone. sukid only ever shutdown()s a connection, so
 * that evhttp reads EOF and frees it itself. */
struct conn {
    dev_t dev;
    ino_t ino;     /* 0: no connection */
    int64_t since; /* accepted, or its previous request done (mono ms) */
    bool busy;     /* a request read and its reply not yet written */
};

struct suki_http {
    struct suki_daemon *D;
    const char *what;     /* "http" or "console", for logs */
    suki_http_handler fn; /* NULL: the public listener's own routes */
    void *fn_arg;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    char *listen; /* as configured when bound */
    int port;
    int64_t last_tick;     /* monotonic ms of the last tick */
    int64_t last_gauges;   /* monotonic ms of the last gauge refresh */
    int gauges_pending;    /* replies outstanding */
    unsigned char *secret; /* owned; NULL until known */
    size_t secret_len;
    bool secret_from_file;
    bool secret_pending;
    int reserve_fd;          /* given up to shed a connection on EMFILE */
    struct event *resume_ev; /* accepting again after EMFILE */
    bool fd_warned;
    struct conn *conns; /* by descriptor */
    int conns_cap;
    int nconns;                 /* live entries */
    struct bufferevent **fresh; /* connections whose fd is not set yet */
    size_t nfresh, fresh_cap;
    struct event *collect_ev;
    int64_t shed_logged; /* mono ms of the last "shedding" log */
    int cut_unlogged;    /* cut off at the deadline since the last log */
    int64_t cut_logged;  /* mono ms of that log */
};

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_http *h = arg;
    if (h->reserve_fd < 0) /* its reopening failed while descriptors ran out */
        h->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    evconnlistener_enable(evhttp_bound_socket_get_listener(h->sock));
}

/* The listeners, for on_accept_error: the listener's argument is evhttp's. */
#define MAX_SERVERS 4
static struct suki_http *servers[MAX_SERVERS];

static struct suki_http *server_of(struct evconnlistener *lev)
{
    for (size_t i = 0; i < MAX_SERVERS; i++)
        if (servers[i] &&
            evhttp_bound_socket_get_listener(servers[i]->sock) == lev)
            return servers[i];
    return NULL;
}

/* accept() failed. Out of descriptors, the pending connection would make
 * the listener readable for ever (a busy loop and a log line each time):
 * the reserve descriptor is given up to take it and close it, and accepting
 * pauses a moment. */

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)arg;
    struct suki_http *h = server_of(lev);
    if (!h)
        return;
    int e = EVUTIL_SOCKET_ERROR();
    if (e == EMFILE || e == ENFILE) {
        if (h->reserve_fd >= 0) {
            close(h->reserve_fd);
            int fd = accept(evconnlistener_get_fd(lev), NULL, NULL);
            if (fd >= 0)
                close(fd);
            h->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        if (!h->fd_warned) {
            struct rlimit rl = {0, 0};
            getrlimit(RLIMIT_NOFILE, &rl);
            suki_warnx("%s: out of file descriptors (limit %llu); "
                       "refusing connections meanwhile",
                       h->what, (unsigned long long)rl.rlim_cur);
            h->fd_warned = true;
        }
    } else if (!h->fd_warned) {
        suki_warnx("%s: accept failed: %s", h->what, strerror(e));
        h->fd_warned = true;
    }
    evconnlistener_disable(lev);
    suki_timer_ms(h->resume_ev, ACCEPT_PAUSE_MS);
}

/* ---- connections ---- */

static bool conn_alive(const struct conn *c, int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino;
}

static void conn_drop(struct suki_http *h, int fd)
{
    h->conns[fd].ino = 0;
    h->nconns--;
}

/* At the limit, the connection that has waited longest for its request
 * makes room: refusing the new one instead would let a few hundred slow
 * clients lock everyone else out (and /healthz with them) for the whole
 * request_timeout. */
static bool shed_oldest(struct suki_http *h)
{
    int old = -1;
    for (int fd = 0; fd < h->conns_cap; fd++) {
        const struct conn *c = &h->conns[fd];
        if (!c->ino || c->busy)
            continue;
        if (!conn_alive(c, fd)) {
            conn_drop(h, fd); /* closed meanwhile: room already */
            return true;
        }
        if (old < 0 || c->since < h->conns[old].since)
            old = fd;
    }
    if (old < 0)
        return false;
    shutdown(old, SHUT_RDWR);
    conn_drop(h, old);
    return true;
}

static void admit(struct suki_http *h, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return;
    if (fd >= h->conns_cap) {
        int cap = h->conns_cap ? h->conns_cap : 64;
        while (cap <= fd)
            cap *= 2;
        h->conns = suki_realloc(h->conns, (size_t)cap * sizeof(*h->conns));
        memset(h->conns + h->conns_cap, 0,
               (size_t)(cap - h->conns_cap) * sizeof(*h->conns));
        h->conns_cap = cap;
    }
    if (h->conns[fd].ino) /* its old connection is closed: fd reused */
        conn_drop(h, fd);
    int max = h->D->conf->http_max_connections;
    if (h->nconns >= max) {
        suki_metrics.http_shed_limit++;
        int64_t now = suki_mono_ms();
        if (!h->shed_logged || now - h->shed_logged >= CUT_LOG_EVERY_MS) {
            suki_warnx("%s: %d connections open (http.max_connections); "
                       "shedding the oldest waiting ones",
                       h->what, h->nconns);
            h->shed_logged = now;
        }
        if (!shed_oldest(h)) {
            shutdown(fd, SHUT_RDWR); /* every one busy: this one goes */
            return;
        }
    }
    h->conns[fd] = (struct conn){st.st_dev, st.st_ino, suki_mono_ms(), false};
    h->nconns++;
}

/* evhttp sets the descriptor on the bufferevent only after this returns;
 * the reference keeps the bufferevent (and its fd) until on_collect, later
 * in the same loop iteration, reads it. */
static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    struct suki_http *h = arg;
    struct bufferevent *bev =
        bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL; /* evhttp makes one itself: not counted */
    if (h->nfresh == h->fresh_cap) {
        h->fresh_cap = h->fresh_cap ? 2 * h->fresh_cap : 16;
        h->fresh = suki_realloc(h->fresh, h->fresh_cap * sizeof(*h->fresh));
    }
    bufferevent_incref(bev);
    h->fresh[h->nfresh++] = bev;
    event_active(h->collect_ev, EV_TIMEOUT, 1);
    return bev;
}

static void on_collect(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_http *h = arg;
    for (size_t i = 0; i < h->nfresh; i++) {
        evutil_socket_t s = bufferevent_getfd(h->fresh[i]);
        if (s >= 0)
            admit(h, s);
        bufferevent_decref(h->fresh[i]);
    }
    h->nfresh = 0;
}

/* From the tick: forget closed connections, cut off those past the
 * request deadline. */
static void sweep(struct suki_http *h, int64_t now)
{
    int64_t limit = h->D->conf->http_request_timeout_ms;
    int cut = 0;
    for (int fd = 0; fd < h->conns_cap; fd++) {
        struct conn *c = &h->conns[fd];
        if (!c->ino)
            continue;
        if (!conn_alive(c, fd)) {
            conn_drop(h, fd);
        } else if (!c->busy && now - c->since >= limit) {
            shutdown(fd, SHUT_RDWR);
            conn_drop(h, fd);
            cut++;
        }
    }
    suki_metrics.http_shed_deadline += (uint64_t)cut;
    h->cut_unlogged += cut;
    if (h->cut_unlogged && now - h->cut_logged >= CUT_LOG_EVERY_MS) {
        suki_warnx("%s: %d connections sent no whole request within "
                   "http.request_timeout; closed",
                   h->what, h->cut_unlogged);
        h->cut_unlogged = 0;
        h->cut_logged = now;
    }
}

static struct conn *req_conn(struct suki_http *h, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev =
        evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0 || fd >= h->conns_cap || !h->conns[fd].ino)
        return NULL;
    return &h->conns[fd];
}

static void on_request_done(struct evhttp_request *req, void *arg)
{
    struct conn *c = req_conn(arg, req);
    if (c) {
        c->busy = false;
        c->since = suki_mono_ms(); /* the next request's deadline */
    }
}

static char *key(struct suki_http *h, const char *suffix)
{
    return suki_key(h->D->conf->prefix, suffix);
}

/* ---- replies ---- */

static void common_headers(struct evhttp_request *req, const char *ctype)
{
    struct evkeyvalq *o = evhttp_request_get_output_headers(req);
    evhttp_add_header(o, "Content-Type", ctype);
    evhttp_add_header(o, "Cache-Control", "no-store");
    evhttp_add_header(o, "X-Content-Type-Options", "nosniff");
}

static void reply_text(struct evhttp_request *req, int code, const char *reason,
                       const char *text)
{
    common_headers(req, "text/plain; charset=utf-8");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s\n", text);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

/* HTML pages carry a strict CSP: no scripts, no outside resources, forms
 * only to ourselves. */
static void reply_html(struct evhttp_request *req, int code, const char *reason,
                       const char *title, const char *body_html)
{
    common_headers(req, "text/html; charset=utf-8");
    struct evkeyvalq *o = evhttp_request_get_output_headers(req);
    evhttp_add_header(o, "Content-Security-Policy",
                      "default-src 'none'; style-src 'unsafe-inline'; "
                      "form-action 'self'; frame-ancestors 'none'");
    evhttp_add_header(o, "Referrer-Policy", "no-referrer");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b,
                        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                        "<meta name=\"viewport\" content=\"width=device-width"
                        "\"><meta name=\"robots\" content=\"noindex\">"
                        "<title>%s</title></head>\n<body style=\"font-family:"
                        "sans-serif;max-width:36em;margin:3em auto;"
                        "padding:0 1em\">\n<h1>%s</h1>\n%s</body></html>\n",
                        title, title, body_html);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void reply_bad_token(struct evhttp_request *req)
{
    reply_html(req, HTTP_BADREQUEST, "Bad Request", "Invalid link",
               "<p>This unsubscribe link is not valid. Please use the link "
               "from the most recent message you received.</p>\n");
}

/* A genuine link that may no longer unsubscribe: made before the client
 * subscribed again, or older than http.unsubscribe_max_age. */
static void reply_stale(struct evhttp_request *req)
{
    reply_html(req, 410, "Gone", "This link has expired",
               "<p>This unsubscribe link is out of date, so nothing was "
               "changed. To unsubscribe, please use the link in the most "
               "recent message you received.</p>\n");
}

/* ---- /metrics and /healthz ---- */

static void serve_metrics(struct suki_http *h, struct evhttp_request *req)
{
    (void)h;
    char *text = suki_metrics_render();
    common_headers(req, "text/plain; version=0.0.4; charset=utf-8");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    evhttp_send_reply(req, HTTP_OK, "OK", b);
    evbuffer_free(b);
    free(text);
}

static void serve_healthz(struct suki_http *h, struct evhttp_request *req)
{
    int64_t now = suki_mono_ms();
    if (!suki_redis_is_up(h->D->redis))
        reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable",
                   "redis unreachable");
    else if (now - h->last_tick > LOOP_STALL_MS)
        reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable",
                   "event loop stalled");
    else if (h->D->stopping)
        reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable", "stopping");
    else
        reply_text(req, HTTP_OK, "OK", "ok");
}

/* ---- /u/TOKEN ---- */

static struct suki_redis_script unsub_script = {
    "unsubscribe", suki_lua_unsubscribe, {0}};

struct unsub_op {
    struct evhttp_request *req;
    char *client, *addr;
};

static void unsub_op_free(struct unsub_op *op)
{
    free(op->client);
    free(op->addr);
    free(op);
}

static void on_unsub_done(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct unsub_op *op = arg;
    if (!r) {
        unsub_op_free(op); /* server freed: the request goes with it */
        return;
    }
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        suki_warnx("http: unsubscribe of client %s failed: %s", op->client,
                   reply ? reply->str : "redis unreachable");
        reply_html(op->req, HTTP_SERVUNAVAIL, "Service Unavailable",
                   "Please try again",
                   "<p>We could not record your request just now. Please "
                   "try again in a few minutes.</p>\n");
    } else if (reply->type == REDIS_REPLY_ARRAY) {
        /* {'stale', ms}: the link predates a newer subscription */
        suki_notice("http: refused unsubscribe link of client %s: made "
                    "before the client subscribed again (nothing changed)",
                    op->client);
        reply_stale(op->req);
    } else {
        suki_info("http: client %s unsubscribed (address suppressed)",
                  op->client);
        char *esc = evhttp_htmlescape(op->addr);
        char *body = suki_asprintf(
            "<p><strong>%s</strong> will not receive these messages any "
            "more.</p>\n",
            esc ? esc : "");
        reply_html(op->req, HTTP_OK, "OK", "You are unsubscribed", body);
        free(body);
        free(esc);
    }
    unsub_op_free(op);
}

static void serve_unsub(struct suki_http *h, struct evhttp_request *req,
                        const char *token)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!h->secret) {
        reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable",
                   "not ready, try again shortly");
        return;
    }
    char *client = NULL, *addr = NULL;
    int64_t issued = 0;
    struct suki_err err = {{0}};
    if (suki_unsub_token_verify(h->secret, h->secret_len, token, strlen(token),
                                &client, &addr, &issued, &err) < 0) {
        suki_info("http: refused unsubscribe token: %s", err.msg);
        reply_bad_token(req);
        return;
    }
    int64_t max_age = h->D->conf->unsubscribe_max_age_ms;
    if (max_age > 0 && suki_now_ms() - issued * 1000 > max_age) {
        suki_notice("http: refused unsubscribe link of client %s: older "
                    "than http.unsubscribe_max_age (nothing changed)",
                    client);
        reply_stale(req);
        free(client);
        free(addr);
        return;
    }
    if (m != EVHTTP_REQ_POST) {
        /* GET/HEAD: a confirmation page only. Mail scanners follow links;
         * only the POST (the button, or a mail client's one-click)
         * changes anything. The form has no action: it posts back to this
         * same URL, whatever prefix a proxy put in front of us. */
        char *esc = evhttp_htmlescape(addr);
        char *body = suki_asprintf(
            "<p>Stop sending offers and announcements to "
            "<strong>%s</strong>?</p>\n<form method=\"post\">\n"
            "<input type=\"hidden\" name=\"List-Unsubscribe\" "
            "value=\"One-Click\">\n<button type=\"submit\">Unsubscribe"
            "</button>\n</form>\n",
            esc ? esc : "");
        reply_html(req, HTTP_OK, "OK", "Unsubscribe", body);
        free(body);
        free(esc);
        free(client);
        free(addr);
        return;
    }
    struct unsub_op *op = suki_calloc(1, sizeof(*op));
    op->req = req;
    op->client = client;
    op->addr = addr;
    char *ks = key(h, SUKI_KEY_SUPPRESSED);
    char *suffix = suki_asprintf("client:%s", client);
    char *kc = key(h, suffix);
    char *ksub = key(h, SUKI_KEY_SUBSCRIBED);
    char when[32];
    snprintf(when, sizeof(when), "%" PRId64, issued);
    /* the click counts in the report of the month it happened */
    const struct suki_conf *c = h->D->conf;
    char mon[8];
    char *kr = c->reports && suki_report_month(suki_now_ms(),
                                               c->report_timezone, mon) == 0
                   ? suki_key_id(c->prefix, SUKI_KEY_REPORT, mon)
                   : suki_strdup("");
    const char *av[7] = {ks, kc, ksub, addr, client, when, kr};
    int rc = suki_redis_eval_owned(h->D->redis, h, &unsub_script, on_unsub_done,
                                   op, 3, 7, av, NULL);
    free(kr);
    free(ks);
    free(suffix);
    free(kc);
    free(ksub);
    if (rc < 0) {
        reply_html(req, HTTP_SERVUNAVAIL, "Service Unavailable",
                   "Please try again",
                   "<p>We could not record your request just now. Please "
                   "try again in a few minutes.</p>\n");
        unsub_op_free(op);
    }
}

/* Two Content-Length headers that disagree, or one beside a
 * Transfer-Encoding, leave the end of the body to interpretation (request
 * smuggling through a proxy): refused, and the connection closed. */
static bool ambiguous_length(struct evhttp_request *req)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *cl = NULL;
    bool te = false;
    for (const struct evkeyval *kv = TAILQ_FIRST(in); kv;
         kv = TAILQ_NEXT(kv, next)) {
        if (strcasecmp(kv->key, "Transfer-Encoding") == 0)
            te = true;
        if (strcasecmp(kv->key, "Content-Length") != 0)
            continue;
        if (cl && strcmp(cl, kv->value) != 0)
            return true;
        cl = kv->value;
    }
    return cl && te;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct suki_http *h = arg;
    struct conn *c = req_conn(h, req);
    if (c)
        c->busy = true;
    evhttp_request_set_on_complete_cb(req, on_request_done, h);
    if (ambiguous_length(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection",
                          "close");
        reply_text(req, HTTP_BADREQUEST, "Bad Request",
                   "conflicting Content-Length");
        return;
    }
    if (h->fn) {
        h->fn(req, h->fn_arg);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    bool get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
    if (!path) {
        reply_text(req, HTTP_BADREQUEST, "Bad Request", "bad request");
        return;
    }
    if (strcmp(path, SUKI_HTTP_INTAKE_PATH) == 0) {
        suki_http_intake_serve(h->D, h, req);
        return;
    }
    /* the listener takes the intake's larger bodies; nobody else needs them */
    if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > MAX_BODY) {
        reply_text(req, 413, "Payload Too Large", "request body too large");
        return;
    }
    if (!get && m != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD, POST");
        reply_text(req, HTTP_BADMETHOD, "Method Not Allowed",
                   "method not allowed");
        return;
    }
    if (strncmp(path, "/u/", 3) == 0) {
        serve_unsub(h, req, path + 3);
        return;
    }
    bool known = strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0;
    if (known && !get) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD");
        reply_text(req, HTTP_BADMETHOD, "Method Not Allowed",
                   "method not allowed");
    } else if (strcmp(path, "/metrics") == 0) {
        serve_metrics(h, req);
    } else if (strcmp(path, "/healthz") == 0) {
        serve_healthz(h, req);
    } else {
        reply_text(req, HTTP_NOTFOUND, "Not Found", "not found");
    }
}

/* ---- gauges and the secret, refreshed from the tick ---- */

struct gauge_op {
    struct suki_http *h;
    int64_t *dst;
};

static void on_gauge(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct gauge_op *op = arg;
    if (r) {
        op->h->gauges_pending--;
        if (reply && reply->type == REDIS_REPLY_INTEGER)
            *op->dst = reply->integer;
    }
    free(op);
}

static void refresh_gauge(struct suki_http *h, const char *cmd,
                          const char *suffix, int64_t *dst)
{
    char *k = key(h, suffix);
    const char *av[2] = {cmd, k};
    struct gauge_op *op = suki_calloc(1, sizeof(*op));
    op->h = h;
    op->dst = dst;
    if (suki_redis_argv_owned(h->D->redis, h, on_gauge, op, 0, 2, av, NULL) ==
        0)
        h->gauges_pending++;
    else
        free(op);
    free(k);
}

/* Also called from inside suki_http_free's cancel, with s NULL. */
static void on_secret(const char *s, size_t len, void *arg)
{
    struct suki_http *h = arg;
    h->secret_pending = false;
    /* a secret from the file may have arrived by reload meanwhile */
    if (s && !h->secret_from_file) {
        if (h->secret) {
            OPENSSL_cleanse(h->secret, h->secret_len);
            free(h->secret);
        }
        h->secret = (unsigned char *)suki_strndup(s, len);
        h->secret_len = len;
        suki_info("http: using the shared unsubscribe secret from "
                  "redis");
    }
}

void suki_http_tick(struct suki_http *h)
{
    int64_t now = suki_mono_ms();
    h->last_tick = now;
    sweep(h, now);
    if (h->fd_warned && !evtimer_pending(h->resume_ev, NULL))
        h->fd_warned = false; /* accepting again: a new shortage is news */
    if (h->fn || !suki_redis_is_up(h->D->redis))
        return;
    if (!h->secret && !h->secret_pending) {
        char *k = key(h, SUKI_KEY_SECRET);
        if (suki_unsub_secret_fetch(h->D->redis, h, k, on_secret, h) == 0)
            h->secret_pending = true;
        free(k);
    }
    if (h->gauges_pending == 0 &&
        (h->last_gauges == 0 || now - h->last_gauges >= GAUGE_EVERY_MS)) {
        h->last_gauges = now;
        refresh_gauge(h, "ZCARD", SUKI_KEY_JOBS, &suki_metrics.jobs_scheduled);
        refresh_gauge(h, "XLEN", SUKI_KEY_DEAD, &suki_metrics.dead_entries);
    }
}

/* ---- setup ---- */

static int set_secret_from_conf(struct suki_http *h, struct suki_err *err)
{
    const char *s = h->D->conf->unsubscribe_secret;
    if (!s)
        return 0;
    size_t len = strlen(s);
    if (len < SUKI_UNSUB_SECRET_MIN)
        return suki_err_set(err, -EINVAL,
                            "http: unsubscribe secret is too short (%zu "
                            "bytes; use at least %d, e.g. 32 random hex "
                            "digits)",
                            len, SUKI_UNSUB_SECRET_MIN);
    if (h->secret) {
        OPENSSL_cleanse(h->secret, h->secret_len);
        free(h->secret);
    }
    h->secret = (unsigned char *)suki_strndup(s, len);
    h->secret_len = len;
    h->secret_from_file = true;
    return 0;
}

static int split_listen(const char *listen, const char *default_host,
                        char *host, size_t hlen, int *port)
{
    const char *colon = strrchr(listen, ':');
    int64_t p;
    if (!colon || suki_parse_i64(colon + 1, 0, 65535, &p) < 0)
        return -EINVAL;
    const char *hs = listen;
    size_t n = (size_t)(colon - listen);
    if (n >= 2 && hs[0] == '[' && hs[n - 1] == ']') {
        hs++;
        n -= 2;
    }
    if (n == 0) {
        hs = default_host;
        n = strlen(hs);
    }
    if (n >= hlen)
        return -EINVAL;
    memcpy(host, hs, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}

static int bound_port(struct evhttp_bound_socket *s)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(s);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* A listener on listen (an empty host: default_host) with the connection
 * accounting above; fn NULL: the public routes (on_request's own). */
static struct suki_http *listener_new(struct suki_daemon *D, const char *what,
                                      const char *listen,
                                      const char *default_host, size_t max_body,
                                      suki_http_handler fn, void *arg,
                                      struct suki_err *err)
{
    char host[256];
    int port;
    if (split_listen(listen, default_host, host, sizeof(host), &port) < 0) {
        suki_err_set(err, -EINVAL, "%s: listen \"%s\" is not HOST:PORT", what,
                     listen);
        return NULL;
    }
    size_t slot = 0;
    while (slot < MAX_SERVERS && servers[slot])
        slot++;
    SUKI_ASSERT(slot < MAX_SERVERS);
    struct suki_http *h = suki_calloc(1, sizeof(*h));
    h->D = D;
    h->what = what;
    h->fn = fn;
    h->fn_arg = arg;
    h->http = evhttp_new(D->base);
    SUKI_ASSERT(h->http);
    evhttp_set_max_headers_size(h->http, MAX_HEADERS);
    evhttp_set_max_body_size(h->http, max_body);
    /* an oversized body is read off before the 413, which the client
     * then sees instead of a reset */
    evhttp_set_flags(h->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_timeout(h->http, CONN_TIMEOUT_S);
    /* the others too, for a 405 rather than libevent's 501 */
    evhttp_set_allowed_methods(
        h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                     EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(h->http, on_request, h);
    evhttp_set_bevcb(h->http, on_new_bev, h);
    h->collect_ev = event_new(D->base, -1, 0, on_collect, h);
    SUKI_ASSERT(h->collect_ev);
    h->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    errno = 0;
    h->sock = evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
    if (!h->sock) {
        int e = errno;
        suki_err_set(err, e ? -e : -EADDRNOTAVAIL,
                     "%s: cannot listen on %s: %s (set %s.listen to "
                     "another address, or \"\" to disable)",
                     what, listen, e ? strerror(e) : "cannot bind", what);
        evhttp_free(h->http);
        event_free(h->collect_ev);
        if (h->reserve_fd >= 0)
            close(h->reserve_fd);
        free(h);
        return NULL;
    }
    h->port = bound_port(h->sock);
    h->resume_ev = evtimer_new(D->base, on_resume, h);
    SUKI_ASSERT(h->resume_ev);
    servers[slot] = h;
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(h->sock),
                                on_accept_error);
    h->listen = suki_strdup(listen);
    h->last_tick = suki_mono_ms();
    suki_notice("%s: listening on %s:%d", what, host, h->port);
    return h;
}

struct suki_http *suki_http_listener_new(struct suki_daemon *D,
                                         const char *what, const char *listen,
                                         size_t max_body, suki_http_handler fn,
                                         void *arg, struct suki_err *err)
{
    return listener_new(D, what, listen, "127.0.0.1", max_body, fn, arg, err);
}

struct suki_http *suki_http_new(struct suki_daemon *D, struct suki_err *err)
{
    if (!unsub_script.sha[0])
        suki_redis_script_init(&unsub_script);
    /* the secret first: a short one refuses to start before anything binds */
    struct suki_http probe = {.D = D};
    if (set_secret_from_conf(&probe, err) < 0)
        return NULL;
    struct suki_http *h = listener_new(
        D, "http", D->conf->http_listen, "0.0.0.0",
        suki_http_intake_max_body(D->conf, MAX_BODY), NULL, NULL, err);
    if (!h) {
        if (probe.secret) {
            OPENSSL_cleanse(probe.secret, probe.secret_len);
            free(probe.secret);
        }
        return NULL;
    }
    h->secret = probe.secret;
    h->secret_len = probe.secret_len;
    h->secret_from_file = probe.secret_from_file;
    if (!h->secret)
        suki_notice("http: unsubscribe secret: shared, in redis");
    return h;
}

void suki_http_reload(struct suki_http *h)
{
    if (!h)
        return;
    const struct suki_conf *c = h->D->conf;
    if (h->fn)
        return; /* the console reads its settings live */
    if (strcmp(c->http_listen, h->listen) != 0)
        suki_warnx("http: listen changed to \"%s\"; still on \"%s\" until "
                   "restart",
                   c->http_listen, h->listen);
    evhttp_set_max_body_size(h->http, suki_http_intake_max_body(c, MAX_BODY));
    struct suki_err err = {{0}};
    if (c->unsubscribe_secret) {
        if (set_secret_from_conf(h, &err) < 0)
            suki_warnx("%s; keeping the previous secret", err.msg);
    } else if (h->secret_from_file) {
        /* back to the shared secret: fetched at the next tick */
        OPENSSL_cleanse(h->secret, h->secret_len);
        suki_sfree(h->secret);
        h->secret_len = 0;
        h->secret_from_file = false;
    }
}

void suki_http_free(struct suki_http *h)
{
    if (!h)
        return;
    suki_redis_cancel(h->D->redis, h);
    for (size_t i = 0; i < MAX_SERVERS; i++)
        if (servers[i] == h)
            servers[i] = NULL;
    event_free(h->resume_ev);
    evhttp_free(h->http);
    for (size_t i = 0; i < h->nfresh; i++)
        bufferevent_decref(h->fresh[i]);
    event_free(h->collect_ev);
    free(h->fresh);
    free(h->conns);
    if (h->reserve_fd >= 0)
        close(h->reserve_fd);
    if (h->secret) {
        OPENSSL_cleanse(h->secret, h->secret_len);
        free(h->secret);
    }
    free(h->listen);
    free(h);
}

int suki_http_port(const struct suki_http *h)
{
    return h->port;
}
