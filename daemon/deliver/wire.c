/* wire.c - the delivery agent's frames (layout and rules in wire.h). */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "log.h"

#include "wire.h"

#define NULL_STR 0xffffffffu

/* ------------------------------------------------------------------ */
/* fields                                                              */

void deliver_wire_begin(struct suki_buf *b, char type)
{
    uint32_t z = 0;
    b->len = 0;
    suki_buf_add(b, &z, sizeof(z));
    suki_buf_add(b, &type, 1);
}

void deliver_wire_put_u64(struct suki_buf *b, uint64_t v)
{
    suki_buf_add(b, &v, sizeof(v));
}

void deliver_wire_put_i64(struct suki_buf *b, int64_t v)
{
    deliver_wire_put_u64(b, (uint64_t)v);
}

void deliver_wire_put_bool(struct suki_buf *b, bool v)
{
    deliver_wire_put_u64(b, v ? 1 : 0);
}

void deliver_wire_put_mem(struct suki_buf *b, const char *s, size_t n)
{
    uint32_t len = s ? (uint32_t)n : NULL_STR;
    suki_buf_add(b, &len, sizeof(len));
    if (s && n)
        suki_buf_add(b, s, n);
}

void deliver_wire_put_str(struct suki_buf *b, const char *s)
{
    deliver_wire_put_mem(b, s, s ? strlen(s) : 0);
}

void deliver_wire_close(struct suki_buf *b)
{
    uint32_t n = (uint32_t)(b->len - sizeof(n));
    memcpy(b->p, &n, sizeof(n));
}

int deliver_wire_split(const char *p, size_t have, char *type,
                       struct deliver_wire_rd *r, size_t *whole)
{
    uint32_t n;
    if (have < sizeof(n))
        return 0;
    memcpy(&n, p, sizeof(n));
    if (n < 1 || n > DELIVER_WIRE_MAX)
        return -1;
    if (have < sizeof(n) + n)
        return 0;
    *type = p[sizeof(n)];
    r->p = p + sizeof(n) + 1;
    r->n = n - 1;
    r->bad = false;
    *whole = sizeof(n) + n;
    return 1;
}

uint64_t deliver_wire_get_u64(struct deliver_wire_rd *r)
{
    uint64_t v = 0;
    if (r->bad || r->n < sizeof(v)) {
        r->bad = true;
        return 0;
    }
    memcpy(&v, r->p, sizeof(v));
    r->p += sizeof(v);
    r->n -= sizeof(v);
    return v;
}

int64_t deliver_wire_get_i64(struct deliver_wire_rd *r)
{
    return (int64_t)deliver_wire_get_u64(r);
}

int deliver_wire_get_int(struct deliver_wire_rd *r)
{
    int64_t v = deliver_wire_get_i64(r);
    if (v < INT_MIN || v > INT_MAX) {
        r->bad = true;
        return 0;
    }
    return (int)v;
}

bool deliver_wire_get_bool(struct deliver_wire_rd *r)
{
    uint64_t v = deliver_wire_get_u64(r);
    if (v > 1)
        r->bad = true;
    return v == 1;
}

char *deliver_wire_get_str(struct deliver_wire_rd *r, size_t *len)
{
    uint32_t n;
    char *s;
    if (len)
        *len = 0;
    if (r->bad || r->n < sizeof(n)) {
        r->bad = true;
        return NULL;
    }
    memcpy(&n, r->p, sizeof(n));
    r->p += sizeof(n);
    r->n -= sizeof(n);
    if (n == NULL_STR)
        return NULL;
    if (n > r->n) {
        r->bad = true;
        return NULL;
    }
    s = suki_malloc((size_t)n + 1);
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    r->n -= n;
    if (len)
        *len = n;
    return s;
}

bool deliver_wire_end(struct deliver_wire_rd *r)
{
    if (r->n != 0)
        r->bad = true;
    return !r->bad;
}

/* ------------------------------------------------------------------ */
/* D                                                                   */

void deliver_wire_put_redis(struct suki_buf *b, const struct suki_conf *c,
                            int log_level)
{
    deliver_wire_begin(b, DELIVER_WIRE_REDIS);
    deliver_wire_put_str(b, c->redis_url);
    deliver_wire_put_str(b, c->redis_host);
    deliver_wire_put_i64(b, c->redis_port);
    deliver_wire_put_str(b, c->redis_unix);
    deliver_wire_put_i64(b, c->redis_db);
    deliver_wire_put_str(b, c->redis_password);
    deliver_wire_put_i64(b, c->redis_connect_timeout_ms);
    deliver_wire_put_i64(b, c->redis_command_timeout_ms);
    deliver_wire_put_i64(b, log_level);
    deliver_wire_put_str(b, c->redis_username);
    deliver_wire_put_str(b, c->redis_master);
    deliver_wire_put_str(b, c->redis_sentinel_username);
    deliver_wire_put_str(b, c->redis_sentinel_password);
    deliver_wire_put_i64(b, (int64_t)c->n_redis_sentinels);
    for (size_t i = 0; i < c->n_redis_sentinels; i++)
        deliver_wire_put_str(b, c->redis_sentinels[i]);
    deliver_wire_put_i64(b, c->redis_min_replicas);
    deliver_wire_put_i64(b, c->redis_wait_timeout_ms);
    deliver_wire_close(b);
}

struct suki_conf *deliver_wire_get_redis(struct deliver_wire_rd *r,
                                         int *log_level)
{
    struct suki_conf *c = suki_calloc(1, sizeof(*c));
    c->refs = 1; /* only the Redis fields: the rest stay NULL */
    c->redis_url = deliver_wire_get_str(r, NULL);
    c->redis_host = deliver_wire_get_str(r, NULL);
    c->redis_port = deliver_wire_get_int(r);
    c->redis_unix = deliver_wire_get_str(r, NULL);
    c->redis_db = deliver_wire_get_int(r);
    c->redis_password = deliver_wire_get_str(r, NULL);
    c->redis_connect_timeout_ms = deliver_wire_get_i64(r);
    c->redis_command_timeout_ms = deliver_wire_get_i64(r);
    *log_level = deliver_wire_get_int(r);
    c->redis_username = deliver_wire_get_str(r, NULL);
    c->redis_master = deliver_wire_get_str(r, NULL);
    c->redis_sentinel_username = deliver_wire_get_str(r, NULL);
    c->redis_sentinel_password = deliver_wire_get_str(r, NULL);
    int64_t ns = deliver_wire_get_i64(r);
    if (ns < 0 || ns > 64) /* suki_conf_load allows 64 */
        r->bad = true;
    c->redis_sentinels =
        suki_calloc(r->bad ? 1 : (size_t)ns + 1, sizeof(char *));
    for (int64_t i = 0; i < ns && !r->bad; i++)
        c->redis_sentinels[c->n_redis_sentinels++] =
            deliver_wire_get_str(r, NULL);
    int64_t mr = deliver_wire_get_i64(r);
    if (mr < 0 || mr > 16) /* suki_conf_load allows 16 */
        r->bad = true;
    c->redis_min_replicas = (int)(r->bad ? 0 : mr);
    c->redis_wait_timeout_ms = deliver_wire_get_i64(r);
    if (!deliver_wire_end(r) || !c->redis_url) {
        r->bad = true;
        suki_conf_unref(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* C                                                                   */

void deliver_wire_put_conf(struct suki_buf *b, uint64_t id,
                           const struct deliver_tconf *c)
{
    deliver_wire_begin(b, DELIVER_WIRE_CONF);
    deliver_wire_put_u64(b, id);
    deliver_wire_put_str(b, c->name);
    deliver_wire_put_u64(b, (uint64_t)c->kind);
    deliver_wire_put_str(b, c->url);
    deliver_wire_put_str(b, c->spool_dir);
    deliver_wire_put_u64(b, (uint64_t)c->starttls);
    deliver_wire_put_str(b, c->username);
    deliver_wire_put_str(b, c->password);
    deliver_wire_put_str(b, c->ca_file);
    deliver_wire_put_bool(b, c->tls_verify);
    deliver_wire_put_i64(b, c->max_connections);
    deliver_wire_put_i64(b, c->timeout_ms);
    uint64_t n = 0;
    for (const struct curl_slist *h = c->headers; h; h = h->next)
        n++;
    deliver_wire_put_u64(b, n);
    for (const struct curl_slist *h = c->headers; h; h = h->next)
        deliver_wire_put_str(b, h->data);
    deliver_wire_close(b);
}

struct deliver_tconf *deliver_wire_get_conf(struct deliver_wire_rd *r,
                                            uint64_t *id)
{
    struct deliver_tconf *c = suki_calloc(1, sizeof(*c));
    c->refs = 1;
    *id = deliver_wire_get_u64(r);
    c->name = deliver_wire_get_str(r, NULL);
    c->kind = (enum suki_transport_kind)deliver_wire_get_u64(r);
    c->url = deliver_wire_get_str(r, NULL);
    c->spool_dir = deliver_wire_get_str(r, NULL);
    c->starttls = (enum suki_starttls)deliver_wire_get_u64(r);
    c->username = deliver_wire_get_str(r, NULL);
    c->password = deliver_wire_get_str(r, NULL);
    c->ca_file = deliver_wire_get_str(r, NULL);
    c->tls_verify = deliver_wire_get_bool(r);
    c->max_connections = deliver_wire_get_int(r);
    c->timeout_ms = deliver_wire_get_i64(r);
    uint64_t n = deliver_wire_get_u64(r);
    if (n > r->n / 4) /* each takes at least its length */
        r->bad = true;
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        char *h = deliver_wire_get_str(r, NULL);
        struct curl_slist *nl = h ? curl_slist_append(c->headers, h) : NULL;
        free(h);
        if (!nl) {
            r->bad = true;
            break;
        }
        c->headers = nl;
    }
    if (!c->name || (!c->url && c->kind != SUKI_TRANSPORT_SPOOL) ||
        (c->kind == SUKI_TRANSPORT_SPOOL && !c->spool_dir))
        r->bad = true;
    if (!deliver_wire_end(r)) {
        deliver_tconf_unref(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* U, L, X, S                                                          */

void deliver_wire_put_id(struct suki_buf *b, char type, uint64_t id)
{
    deliver_wire_begin(b, type);
    deliver_wire_put_u64(b, id);
    deliver_wire_close(b);
}

bool deliver_wire_get_id(struct deliver_wire_rd *r, uint64_t *id)
{
    *id = deliver_wire_get_u64(r);
    return deliver_wire_end(r);
}

void deliver_wire_put_stop(struct suki_buf *b, uint64_t lane_id, bool abort)
{
    deliver_wire_begin(b, DELIVER_WIRE_STOP);
    deliver_wire_put_u64(b, lane_id);
    deliver_wire_put_bool(b, abort);
    deliver_wire_close(b);
}

bool deliver_wire_get_stop(struct deliver_wire_rd *r, uint64_t *lane_id,
                           bool *abort)
{
    *lane_id = deliver_wire_get_u64(r);
    *abort = deliver_wire_get_bool(r);
    return deliver_wire_end(r);
}

/* ------------------------------------------------------------------ */
/* P                                                                   */

void deliver_wire_put_post(struct suki_buf *b, uint64_t lane_id,
                           uint64_t conf_id, const struct deliver_xfer *x)
{
    deliver_wire_begin(b, DELIVER_WIRE_POST);
    deliver_wire_put_u64(b, lane_id);
    deliver_wire_put_u64(b, x->token);
    deliver_wire_put_u64(b, conf_id);
    deliver_wire_put_str(b, x->message_id);
    deliver_wire_put_str(b, x->from);
    deliver_wire_put_u64(b, x->n_rcpt);
    for (size_t i = 0; i < x->n_rcpt; i++)
        deliver_wire_put_str(b, x->rcpt[i]);
    deliver_wire_put_mem(b, x->body, x->body_len);
    deliver_wire_put_str(b, x->sent_marker);
    deliver_wire_put_i64(b, x->sent_marker_ttl_s);
    deliver_wire_close(b);
}

struct deliver_xfer *deliver_wire_get_post(struct deliver_wire_rd *r,
                                           uint64_t *lane_id, uint64_t *conf_id)
{
    struct deliver_xfer *x = suki_calloc(1, sizeof(*x));
    *lane_id = deliver_wire_get_u64(r);
    x->token = deliver_wire_get_u64(r);
    *conf_id = deliver_wire_get_u64(r);
    x->message_id = deliver_wire_get_str(r, NULL);
    x->from = deliver_wire_get_str(r, NULL);
    uint64_t n = deliver_wire_get_u64(r);
    if (n > r->n / 4) /* each needs at least its length */
        r->bad = true;
    if (!r->bad && n) {
        x->n_rcpt = (size_t)n;
        x->rcpt = suki_calloc(x->n_rcpt, sizeof(*x->rcpt));
        x->rcpt_code = suki_calloc(x->n_rcpt, sizeof(*x->rcpt_code));
        x->rcpt_reply = suki_calloc(x->n_rcpt, sizeof(*x->rcpt_reply));
        for (size_t i = 0; i < x->n_rcpt && !r->bad; i++) {
            x->rcpt[i] = deliver_wire_get_str(r, NULL);
            struct curl_slist *nl =
                x->rcpt[i] ? curl_slist_append(x->rcpt_list, x->rcpt[i]) : NULL;
            if (!nl)
                r->bad = true;
            else
                x->rcpt_list = nl;
        }
    }
    x->body = deliver_wire_get_str(r, &x->body_len);
    x->sent_marker = deliver_wire_get_str(r, NULL);
    x->sent_marker_ttl_s = deliver_wire_get_i64(r);
    if (!deliver_wire_end(r)) {
        deliver_xfer_clear(x);
        free(x);
        return NULL;
    }
    x->stage = SUKI_SMTP_CONNECT;
    x->last_stage = SUKI_SMTP_CONNECT;
    if (!x->message_id)
        x->message_id = suki_strdup("");
    if (!x->body)
        x->body = suki_strdup("");
    return x;
}

/* ------------------------------------------------------------------ */
/* R                                                                   */

void deliver_wire_put_result(struct suki_buf *b, uint64_t lane_id,
                             const struct deliver_xfer *x)
{
    deliver_wire_begin(b, DELIVER_WIRE_RESULT);
    deliver_wire_put_u64(b, lane_id);
    deliver_wire_put_u64(b, x->token);
    deliver_wire_put_i64(b, (int)x->res_status);
    deliver_wire_put_i64(b, x->res_code);
    deliver_wire_put_str(b, x->res_reply);
    deliver_wire_put_i64(b, x->res_retry_after_ms);
    deliver_wire_put_bool(b, x->res_cancelled);
    deliver_wire_put_bool(b, x->local);
    deliver_wire_put_u64(b, x->rcpt_sent);
    deliver_wire_put_u64(b, x->n_rcpt);
    for (size_t i = 0; i < x->n_rcpt; i++) {
        deliver_wire_put_i64(b, x->rcpt_code ? x->rcpt_code[i] : 0);
        deliver_wire_put_str(b, x->rcpt_reply ? x->rcpt_reply[i] : NULL);
    }
    deliver_wire_close(b);
}

bool deliver_wire_get_result(struct deliver_wire_rd *r,
                             struct deliver_wire_result *res)
{
    memset(res, 0, sizeof(*res));
    res->lane_id = deliver_wire_get_u64(r);
    res->token = deliver_wire_get_u64(r);
    res->st = deliver_wire_get_int(r);
    res->code = deliver_wire_get_int(r);
    res->reply = deliver_wire_get_str(r, NULL);
    res->retry_after = deliver_wire_get_i64(r);
    res->cancelled = deliver_wire_get_bool(r);
    res->local = deliver_wire_get_bool(r);
    res->rcpt_sent = (size_t)deliver_wire_get_u64(r);
    res->n = deliver_wire_get_u64(r);
    if (res->n > r->n / 12) /* each takes at least a code and a length */
        r->bad = true;
    /* A garbled count is no size to allocate (up to 2^64 - 1, or 0 once
     * one is added): sukid would abort instead of replacing the agent. */
    if (r->bad)
        res->n = 0;
    res->codes = suki_calloc(res->n + 1, sizeof(*res->codes));
    res->replies = suki_calloc(res->n + 1, sizeof(*res->replies));
    for (uint64_t i = 0; i < res->n && !r->bad; i++) {
        res->codes[i] = deliver_wire_get_int(r);
        res->replies[i] = deliver_wire_get_str(r, NULL);
    }
    return deliver_wire_end(r);
}

void deliver_wire_result_clear(struct deliver_wire_result *res)
{
    if (res->replies)
        for (uint64_t i = 0; i < res->n; i++)
            free(res->replies[i]);
    free(res->replies);
    free(res->codes);
    free(res->reply);
    memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------------ */
/* on a bufferevent                                                    */

void deliver_wire_send(struct bufferevent *bev, const struct suki_buf *b)
{
    /* Only out of memory fails it; a frame lost here would pin its message
     * for good, so it ends the process as every failed allocation does. */
    if (bufferevent_write(bev, b->p, b->len) != 0) {
        suki_log_write(LOG_CRIT,
                       "delivery agent channel: out of memory "
                       "queueing a %zu-byte frame",
                       b->len);
        abort();
    }
}

int deliver_wire_next(struct evbuffer *in, char *type,
                      struct deliver_wire_rd *r, size_t *whole)
{
    uint32_t n;
    size_t have = evbuffer_get_length(in);
    if (have < sizeof(n))
        return 0;
    evbuffer_copyout(in, &n, sizeof(n));
    if (n < 1 || n > DELIVER_WIRE_MAX)
        return -1;
    if (have < sizeof(n) + n)
        return 0;
    const char *p = (const char *)evbuffer_pullup(in, (ssize_t)(sizeof(n) + n));
    return deliver_wire_split(p, sizeof(n) + n, type, r, whole);
}
