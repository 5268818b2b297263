/* http_intake.c - POST /v1/events (see http_intake.h). */
#include "http_intake.h"
#include "conf.h"
#include "daemon.h"
#include "event.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "store/scripts.h"
#include "util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A 400 lists at most this many bad events (and says how many more):
 * a megabyte of one-byte lines must not make a reply of tens. */
#define MAX_ERRORS 1000

static struct suki_redis_script events_script = {
    "http-events", suki_lua_http_events, {0}};

static void count(enum suki_http_intake_result r)
{
    suki_metrics.http_intake[r]++;
}

static void reply_json(struct evhttp_request *req, int code, const char *reason,
                       json_t *o)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    struct evbuffer *b = evbuffer_new();
    SUKI_ASSERT(b && s);
    evbuffer_add_printf(b, "%s\n", s);
    free(s);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

/* {"error": msg} with status code. */
static void reply_error(struct evhttp_request *req, int code,
                        const char *reason, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(msg));
    reply_json(req, code, reason, o);
}

static void reply_unauthorized(struct evhttp_request *req, const char *msg)
{
    count(SUKI_HI_UNAUTHORIZED);
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "WWW-Authenticate", "Bearer realm=\"suki\"");
    reply_error(req, 401, "Unauthorized", msg);
}

static void reply_unavailable(struct evhttp_request *req, const char *msg)
{
    count(SUKI_HI_UNAVAILABLE);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
                      "5");
    reply_error(req, HTTP_SERVUNAVAIL, "Service Unavailable", msg);
}

/* ---- authentication ---- */

/* Whether the Authorization header carries one of the tokens. Every token
 * is compared, by the SHA-256 of each side, so that neither the place of a
 * difference nor the tokens' lengths show in the time taken. */
static bool token_ok(const struct suki_conf *c, const char *auth)
{
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    unsigned char got[EVP_MAX_MD_SIZE], want[EVP_MAX_MD_SIZE];
    unsigned int gl = 0, wl = 0;
    if (!EVP_Digest(t, strlen(t), got, &gl, EVP_sha256(), NULL))
        return false;
    int match = 0;
    for (size_t i = 0; i < c->n_intake_tokens; i++) {
        const char *k = c->intake_tokens[i];
        if (!EVP_Digest(k, strlen(k), want, &wl, EVP_sha256(), NULL) ||
            wl != gl)
            continue;
        match |= CRYPTO_memcmp(got, want, gl) == 0;
    }
    OPENSSL_cleanse(got, sizeof(got));
    return match != 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Whether sig ("sha256=<64 hex digits>") is the HMAC-SHA256 of the body
 * under secret. */
static bool signature_ok(const char *secret, const char *sig,
                         const unsigned char *body, size_t n)
{
    if (!sig || strncasecmp(sig, "sha256=", 7) != 0)
        return false;
    const char *hex = sig + 7;
    unsigned char got[32];
    if (strlen(hex) != 2 * sizeof(got))
        return false;
    for (size_t i = 0; i < sizeof(got); i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        got[i] = (unsigned char)(hi << 4 | lo);
    }
    unsigned char want[EVP_MAX_MD_SIZE];
    unsigned int wl = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), n ? body : NULL, n,
              want, &wl) ||
        wl != sizeof(got))
        return false;
    bool ok = CRYPTO_memcmp(got, want, sizeof(got)) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

/* ---- the body ---- */

enum body_kind { BODY_JSON, BODY_LINES, BODY_OTHER };

/* The media type of Content-Type, parameters (charset) ignored. */
static enum body_kind body_kind(const char *ct)
{
    if (!ct)
        return BODY_OTHER;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 16 && strncasecmp(ct, "application/json", n) == 0)
        return BODY_JSON;
    if (n == 20 && strncasecmp(ct, "application/x-ndjson", n) == 0)
        return BODY_LINES;
    return BODY_OTHER;
}

/* The events of a body, checked: texts to add and the errors. */
struct batch {
    const struct suki_event_limits *lim;
    int64_t now_ms;
    struct suki_redis_args args; /* the stream, then each event's text */
    size_t n;                    /* events seen */
    json_t *errors;              /* owned array of {index, [line,] error} */
    size_t n_errors;             /* all of them, listed or not */
};

/* Check one event text; add it, or note why not. line 0: not JSON lines. */
static void batch_add(struct batch *b, const char *s, size_t len, long line)
{
    size_t index = b->n++;
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    if (suki_event_parse(s, len, b->lim, b->now_ms, &ev, &err) == 0) {
        suki_event_free(ev);
        suki_redis_args_add(&b->args, s, len);
        return;
    }
    if (b->n_errors++ >= MAX_ERRORS)
        return;
    json_t *e = json_object();
    json_object_set_new(e, "index", json_integer((json_int_t)index));
    if (line > 0)
        json_object_set_new(e, "line", json_integer(line));
    json_object_set_new(e, "error", json_string(err.msg));
    json_array_append_new(b->errors, e);
}

/* A body-wide problem (no index: no event could be told apart). */
static void batch_fail(struct batch *b, const char *msg)
{
    b->n_errors++;
    json_t *e = json_object();
    json_object_set_new(e, "error", json_string(msg));
    json_array_append_new(b->errors, e);
}

/* JSON lines as sukictl push reads them: CR LF or LF, blank lines
 * skipped; the index counts events, the line counts lines from 1. */
static void split_lines(struct batch *b, const char *s, size_t n)
{
    long line = 0;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) : n;
        size_t len = end - i;
        line++;
        while (len > 0 && s[i + len - 1] == '\r')
            len--;
        size_t lead = 0;
        while (lead < len && (s[i + lead] == ' ' || s[i + lead] == '\t'))
            lead++;
        if (lead < len)
            batch_add(b, s + i, len, line);
        i = nl ? end + 1 : n;
    }
}

/* One event, or a JSON array of them: each element is checked as the
 * compact text it is stored as. */
static void split_json(struct batch *b, const char *s, size_t n)
{
    size_t lead = 0;
    while (lead < n && strchr(" \t\r\n", s[lead]))
        lead++;
    if (lead == n || s[lead] != '[') {
        batch_add(b, s, n, 0);
        return;
    }
    json_error_t je;
    json_t *arr = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (!arr) {
        char msg[256];
        snprintf(msg, sizeof(msg), "body is not a JSON array: %s (offset %d)",
                 je.text, je.position);
        batch_fail(b, msg);
        return;
    }
    size_t i;
    json_t *el;
    json_array_foreach(arr, i, el)
    {
        char *txt = json_dumps(el, JSON_COMPACT | JSON_ENCODE_ANY);
        /* NULL only out of memory: refused like text that is not JSON */
        batch_add(b, txt ? txt : "", txt ? strlen(txt) : 0, 0);
        free(txt);
    }
    json_decref(arr);
}

/* ---- adding them ---- */

struct add_op {
    struct evhttp_request *req;
    size_t n;
};

static void on_added(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct add_op *op = arg;
    if (!r) { /* the server is going away, and the request with it */
        free(op);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        /* refused before its first write, or lost on the way (then
         * perhaps added: the retry this asks for is harmless by id) */
        suki_warnx("http: POST %s: adding %zu event%s failed: %s",
                   SUKI_HTTP_INTAKE_PATH, op->n, op->n == 1 ? "" : "s",
                   !reply                             ? "redis unreachable"
                   : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                      : "unexpected reply");
        reply_unavailable(op->req, "events not added; try again");
    } else {
        count(SUKI_HI_ACCEPTED);
        json_t *o = json_object();
        json_object_set_new(o, "accepted", json_integer(reply->integer));
        reply_json(op->req, 202, "Accepted", o);
    }
    free(op);
}

static void serve_post(struct suki_daemon *D, const void *owner,
                       struct evhttp_request *req)
{
    const struct suki_conf *c = D->conf;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    if (!token_ok(c, evhttp_find_header(in, "Authorization"))) {
        reply_unauthorized(req, "a valid bearer token is required");
        return;
    }
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(buf);
    if (n > (size_t)c->max_body) { /* a connection from before a reload */
        reply_error(req, 413, "Payload Too Large",
                    "body larger than intake.max_body");
        return;
    }
    const char *body = n ? (const char *)evbuffer_pullup(buf, -1) : "";
    if (c->intake_signing_secret &&
        !signature_ok(c->intake_signing_secret,
                      evhttp_find_header(in, "X-Suki-Signature"),
                      (const unsigned char *)body, n)) {
        reply_unauthorized(req, "X-Suki-Signature missing or wrong");
        return;
    }
    enum body_kind kind = body_kind(evhttp_find_header(in, "Content-Type"));
    if (kind == BODY_OTHER) {
        count(SUKI_HI_MEDIA_TYPE);
        reply_error(req, 415, "Unsupported Media Type",
                    "use application/json or application/x-ndjson");
        return;
    }
    if (D->stopping || !suki_redis_is_up(D->redis)) {
        reply_unavailable(req, D->stopping ? "stopping" : "redis unreachable");
        return;
    }
    struct suki_event_limits lim = {(size_t)c->max_event_size, 0};
    struct batch b = {.lim = &lim, .now_ms = suki_now_ms()};
    b.errors = json_array();
    suki_redis_args_str(&b.args, c->stream);
    if (kind == BODY_LINES)
        split_lines(&b, body, n);
    else
        split_json(&b, body, n);
    if (b.n_errors == 0 && b.n == 0)
        batch_fail(&b, "no event in the body");
    if (b.n_errors > 0) {
        count(SUKI_HI_INVALID);
        json_t *o = json_object();
        json_object_set_new(o, "errors", b.errors);
        if (b.n_errors > MAX_ERRORS)
            json_object_set_new(
                o, "more", json_integer((json_int_t)(b.n_errors - MAX_ERRORS)));
        suki_info("http: POST %s: refused a body of %zu event%s (%zu bad)",
                  SUKI_HTTP_INTAKE_PATH, b.n, b.n == 1 ? "" : "s", b.n_errors);
        reply_json(req, HTTP_BADREQUEST, "Bad Request", o);
        suki_redis_args_clear(&b.args);
        return;
    }
    json_decref(b.errors);
    if (!events_script.sha[0])
        suki_redis_script_init(&events_script);
    size_t argc = b.args.n;
    const char **av = suki_calloc(argc, sizeof(*av));
    size_t *lens = suki_calloc(argc, sizeof(*lens));
    suki_redis_args_ptrs(&b.args, av, lens);
    struct add_op *op = suki_calloc(1, sizeof(*op));
    op->req = req;
    op->n = b.n;
    int rc = suki_redis_eval_owned(D->redis, owner, &events_script, on_added,
                                   op, 1, (int)argc, av, lens);
    free(av);
    free(lens);
    suki_redis_args_clear(&b.args);
    if (rc < 0) {
        free(op);
        reply_unavailable(req, "redis unreachable");
    }
}

void suki_http_intake_serve(struct suki_daemon *D, const void *owner,
                            struct evhttp_request *req)
{
    const struct suki_conf *c = D->conf;
    if (!c->intake_tokens) {
        struct evbuffer *b = evbuffer_new();
        SUKI_ASSERT(b);
        evbuffer_add_printf(b, "not found\n");
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Content-Type", "text/plain; charset=utf-8");
        evhttp_send_reply(req, HTTP_NOTFOUND, "Not Found", b);
        evbuffer_free(b);
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        count(SUKI_HI_METHOD);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "POST");
        reply_error(req, HTTP_BADMETHOD, "Method Not Allowed", "use POST");
        return;
    }
    serve_post(D, owner, req);
}

size_t suki_http_intake_max_body(const struct suki_conf *c, size_t other_max)
{
    if (c->intake_tokens && (size_t)c->max_body > other_max)
        return (size_t)c->max_body;
    return other_max;
}
