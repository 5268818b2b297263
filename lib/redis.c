/* redis.c - hiredis async glue: connect, auth, timeouts, reconnects. */
#include "redis.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCRIPTS 32

enum link_state {
    LINK_DOWN,       /* waiting for the reconnect timer */
    LINK_ASKING,     /* asking a sentinel for the primary's address */
    LINK_RESOLVING,  /* looking the host name up (evdns) */
    LINK_CONNECTING, /* TCP/unix connect in progress */
    LINK_HANDSHAKE,  /* AUTH/SELECT/SCRIPT LOAD sent */
    LINK_UP,
};

struct pending {
    struct suki_redis *r;
    suki_redis_cb cb; /* NULL once called (cancelled) or not wanted */
    void *arg;
    const void *owner; /* for suki_redis_cancel, or NULL */
    int64_t deadline;  /* monotonic ms */
    struct pending *prev, *next;
    bool script; /* an EVALSHA: NOSCRIPT drops the link */
};

struct suki_redis {
    struct event_base *base;
    char *name;
    /* connection settings (copied: conf may be replaced on reload) */
    char *host, *unix_path, *password, *username;
    int port, db;
    /* Sentinel (n_sent > 0): host and port are the primary the sentinels
     * named last (host NULL until one did), asked again at every
     * reconnect. */
    size_t n_sent;
    char **sent_host;                  /* owned, as configured */
    int *sent_port;                    /* owned */
    char (*sent_ip)[INET6_ADDRSTRLEN]; /* owned: last address, "" unknown */
    char *master, *sent_user, *sent_pass;
    size_t sent_idx;     /* the sentinel asked now (or first next time) */
    size_t sent_tried;   /* sentinels asked in this round */
    size_t sub_idx;      /* the sentinel of the subscription */
    unsigned lookup_gen; /* detects a lookup answered inside the call */
    bool lookup_pending;
    redisAsyncContext *ask; /* the sentinel being asked */
    redisAsyncContext *sub; /* subscribed to +switch-master */
    struct event *sub_ev;   /* subscribe (again) */
    int64_t connect_timeout_ms, command_timeout_ms;
    int min_replicas;
    int64_t wait_timeout_ms;
    redisAsyncContext *ac;
    struct evdns_getaddrinfo_request *dns_req; /* lookup in flight */
    enum link_state state;
    int handshake_left;
    bool handshake_failed;
    struct event *reconnect_ev; /* also the connect timeout */
    struct event *watch_ev;     /* command timeouts */
    int64_t backoff_ms;
    suki_redis_state_cb state_cb;
    void *state_arg;
    struct pending *head, *tail; /* in send order */
    struct suki_redis_script *scripts[MAX_SCRIPTS];
    size_t n_scripts;
    size_t string_cap; /* 0: none; the reader's privdata points here */
};

static void start_connect(struct suki_redis *r);
static void sub_start(struct suki_redis *r);

/* ---- cut strings ---- */

/* NUL first: no text (and no JSON event) starts like this. */
static const char cut_magic[] = "\0suki-cut\0";
#define CUT_MAGIC_LEN (sizeof(cut_magic) - 1)
#define CUT_HEAD_LEN (CUT_MAGIC_LEN + 20 + 1 + 64 + 1)

static redisReplyObjectFunctions *hiredis_fn; /* hiredis's own */
static redisReplyObjectFunctions cut_fn;

/* hiredis has the whole bulk in its buffer here; only the cut copy is
 * kept. */
static void *cut_string(const redisReadTask *task, char *str, size_t len)
{
    const size_t *cap = NULL;
    for (const redisReadTask *t = task; t && !cap; t = t->parent)
        cap = t->privdata;
    if (task->type != REDIS_REPLY_STRING || !cap || !*cap || len <= *cap)
        return hiredis_fn->createString(task, str, len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
    if (EVP_Digest(str, len, md, &mdlen, EVP_sha256(), NULL) == 1)
        suki_hex(md, mdlen, hex);
    size_t keep = len < SUKI_REDIS_CUT_PREFIX ? len : SUKI_REDIS_CUT_PREFIX;
    char *buf = malloc(CUT_HEAD_LEN + keep);
    if (!buf)
        return NULL; /* hiredis: out of memory */
    memcpy(buf, cut_magic, CUT_MAGIC_LEN);
    snprintf(buf + CUT_MAGIC_LEN, CUT_HEAD_LEN - CUT_MAGIC_LEN + 1,
             "%020zu %-64.64s\n", len, hex);
    memcpy(buf + CUT_HEAD_LEN, str, keep);
    void *obj = hiredis_fn->createString(task, buf, CUT_HEAD_LEN + keep);
    free(buf);
    return obj;
}

static void cap_reader(struct suki_redis *r, redisAsyncContext *ac)
{
    if (!ac || !r->string_cap)
        return;
    redisReader *rd = ac->c.reader;
    if (!hiredis_fn) {
        hiredis_fn = rd->fn;
        cut_fn = *hiredis_fn;
        cut_fn.createString = cut_string;
    }
    rd->fn = &cut_fn;
    rd->privdata = &r->string_cap;
}

void suki_redis_cap_strings(struct suki_redis *r, size_t cap)
{
    r->string_cap = cap;
    cap_reader(r, r->ac);
}

bool suki_redis_cut(const redisReply *x, size_t *size, char sha256[65],
                    const char **prefix, size_t *prefix_len)
{
    if (!x || x->type != REDIS_REPLY_STRING || x->len < CUT_HEAD_LEN ||
        memcmp(x->str, cut_magic, CUT_MAGIC_LEN) != 0)
        return false;
    const char *h = x->str + CUT_MAGIC_LEN;
    *size = (size_t)strtoull(h, NULL, 10);
    memcpy(sha256, h + 21, 64);
    sha256[64] = '\0';
    for (int i = 63; i >= 0 && sha256[i] == ' '; i--)
        sha256[i] = '\0';
    *prefix = x->str + CUT_HEAD_LEN;
    *prefix_len = x->len - CUT_HEAD_LEN;
    return true;
}

/* hiredis resolves a host name with a blocking getaddrinfo(); names are
 * looked up with evdns first, so the loop never waits. One resolver per
 * event base (sukid's and, in its own process, the agent's), kept until
 * suki_redis_cleanup: a cancelled lookup frees itself in a callback that
 * libevent defers to the loop, and needs its resolver until then. */
static struct {
    struct event_base *base;
    struct evdns_base *dns;
} resolvers[4];

static struct evdns_base *resolver(struct event_base *base)
{
    for (size_t i = 0; i < SUKI_ARRAY_LEN(resolvers); i++)
        if (resolvers[i].base == base)
            return resolvers[i].dns;
    for (size_t i = 0; i < SUKI_ARRAY_LEN(resolvers); i++) {
        if (resolvers[i].base)
            continue;
        resolvers[i].dns =
            evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (resolvers[i].dns)
            resolvers[i].base = base;
        return resolvers[i].dns;
    }
    return NULL;
}

void suki_redis_cleanup(struct event_base *base)
{
    for (size_t i = 0; i < SUKI_ARRAY_LEN(resolvers); i++) {
        if (resolvers[i].base != base)
            continue;
        /* Only libevent's deferred callbacks are left: let them run. */
        event_base_loop(base, EVLOOP_NONBLOCK);
        evdns_base_free(resolvers[i].dns, 0);
        resolvers[i].base = NULL;
        resolvers[i].dns = NULL;
    }
}
static void drop_link(struct suki_redis *r, const char *why);
static void cancel_resolve(struct suki_redis *r);
static void schedule_reconnect(struct suki_redis *r);
static void sentinel_next(struct suki_redis *r, const char *why);

/* Free a side context of ours (a sentinel link) and clear the pointer:
 * its callbacks then find no data and do nothing. */
static void close_ctx(redisAsyncContext **acp)
{
    redisAsyncContext *ac = *acp;
    *acp = NULL;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

void suki_redis_script_init(struct suki_redis_script *s)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s->src, strlen(s->src), md);
    suki_hex(md, sizeof(md), s->sha);
}

static char *dup_or_null(const char *s)
{
    return s ? suki_strdup(s) : NULL;
}

static void free_sentinels(struct suki_redis *r)
{
    for (size_t i = 0; i < r->n_sent; i++)
        free(r->sent_host[i]);
    free(r->sent_host);
    free(r->sent_port);
    free(r->sent_ip);
    free(r->master);
    free(r->sent_user);
    free(r->sent_pass);
    r->sent_host = NULL;
    r->sent_port = NULL;
    r->sent_ip = NULL;
    r->master = r->sent_user = r->sent_pass = NULL;
    r->n_sent = r->sent_idx = r->sub_idx = r->sent_tried = 0;
}

static bool is_numeric(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, addr) == 1 ||
           inet_pton(AF_INET6, host, addr) == 1;
}

static void copy_conf(struct suki_redis *r, const struct suki_conf *c)
{
    /* The sentinel links follow the old list: close them. */
    close_ctx(&r->sub);
    if (r->state == LINK_ASKING) { /* asking, or looking a sentinel up */
        close_ctx(&r->ask);
        cancel_resolve(r);
        evtimer_del(r->reconnect_ev);
        schedule_reconnect(r);
    }
    free(r->unix_path);
    free(r->password);
    free(r->username);
    free_sentinels(r);
    if (!c->n_redis_sentinels) {
        free(r->host);
        r->host = dup_or_null(c->redis_host);
        r->port = c->redis_port;
    } /* else: the primary named last, until the sentinels are asked */
    r->unix_path = dup_or_null(c->redis_unix);
    r->password = dup_or_null(c->redis_password);
    r->username = dup_or_null(c->redis_username);
    if (c->n_redis_sentinels) {
        r->sent_host = suki_calloc(c->n_redis_sentinels, sizeof(char *));
        r->sent_port = suki_calloc(c->n_redis_sentinels, sizeof(int));
        r->sent_ip = suki_calloc(c->n_redis_sentinels, sizeof(*r->sent_ip));
        for (size_t i = 0; i < c->n_redis_sentinels; i++) {
            char *h;
            int port;
            if (suki_conf_hostport(c->redis_sentinels[i], &h, &port) < 0)
                continue; /* suki_conf_load reported it */
            r->sent_host[r->n_sent] = h;
            r->sent_port[r->n_sent] = port;
            if (is_numeric(h))
                snprintf(r->sent_ip[r->n_sent], sizeof(r->sent_ip[0]), "%s", h);
            r->n_sent++;
        }
        r->master = dup_or_null(c->redis_master);
        r->sent_user = dup_or_null(c->redis_sentinel_username);
        r->sent_pass = dup_or_null(c->redis_sentinel_password);
        if (r->sub_ev && r->state == LINK_UP)
            suki_timer_ms(r->sub_ev, 0);
    }
    r->db = c->redis_db;
    r->connect_timeout_ms = c->redis_connect_timeout_ms;
    r->command_timeout_ms = c->redis_command_timeout_ms;
    r->min_replicas = c->redis_min_replicas;
    r->wait_timeout_ms = c->redis_wait_timeout_ms;
}

static const char *where(const struct suki_redis *r, char *buf, size_t len)
{
    if (r->unix_path)
        snprintf(buf, len, "unix:%s", r->unix_path);
    else if (!r->host)
        snprintf(buf, len, "primary '%s' (not yet named by a sentinel)",
                 r->master ? r->master : "?");
    else
        snprintf(buf, len, "%s:%d", r->host, r->port);
    return buf;
}

static void pending_unlink(struct suki_redis *r, struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        r->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        r->tail = p->prev;
}

static void pending_free(struct pending *p)
{
    free(p);
}

static void set_state(struct suki_redis *r, enum link_state s)
{
    bool was_up = r->state == LINK_UP;
    r->state = s;
    bool up = s == LINK_UP;
    if (was_up != up && r->state_cb)
        r->state_cb(r, up, r->state_arg);
}

static void arm_watch(struct suki_redis *r)
{
    struct timeval tv = {0, 250000};
    if (!evtimer_pending(r->watch_ev, NULL))
        evtimer_add(r->watch_ev, &tv);
}

/* Every reply passes here: unlink the pending record, then hand over. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct pending *p = privdata;
    struct suki_redis *r = p->r;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR && p->script &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0 && r->ac == ac) {
        /* The script cache was flushed (SCRIPT FLUSH, a restart or a
         * failover). Commands pipelined behind this call have run already,
         * so resending it alone would run it out of order: the link is
         * dropped instead, this call and everything behind it fail as on
         * any lost link, and the handshake loads the scripts again. */
        drop_link(r, "script cache flushed (NOSCRIPT)");
        rep = NULL;
    } else if (rep && rep->type == REDIS_REPLY_ERROR && r->n_sent &&
               r->ac == ac &&
               (strncmp(rep->str, "READONLY", 8) == 0 ||
                strncmp(rep->str, "UNBLOCKED", 9) == 0)) {
        /* This server was the primary and is a replica now (a failover
         * the subscription has not told of yet): ask the sentinels again.
         * The caller still sees the error, which says "not now". */
        drop_link(r, "the server is a replica now; asking the sentinels");
    }
    pending_unlink(r, p);
    if (p->cb)
        p->cb(r, rep, p->arg);
    pending_free(p);
}

/* Append p to the in-order list of commands awaiting a reply. */
static void pending_push(struct suki_redis *r, struct pending *p)
{
    p->prev = r->tail;
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    arm_watch(r);
}

static int send_argv(struct suki_redis *r, const void *owner, suki_redis_cb cb,
                     void *arg, int64_t timeout_ms, int argc, const char **argv,
                     const size_t *lens, struct suki_redis_script *script,
                     bool handshake)
{
    if (!r->ac || (r->state != LINK_UP && !handshake))
        return -ENOTCONN;
    struct pending *p = suki_calloc(1, sizeof(*p));
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    p->owner = owner;
    p->deadline =
        suki_mono_ms() + (timeout_ms > 0 ? timeout_ms : r->command_timeout_ms);
    p->script = script != NULL;
    if (redisAsyncCommandArgv(r->ac, on_reply, p, argc, argv, lens) !=
        REDIS_OK) {
        pending_free(p);
        return -EIO;
    }
    pending_push(r, p);
    return 0;
}

int suki_redis_argv(struct suki_redis *r, suki_redis_cb cb, void *arg,
                    int64_t timeout_ms, int argc, const char **argv,
                    const size_t *lens)
{
    return send_argv(r, NULL, cb, arg, timeout_ms, argc, argv, lens, NULL,
                     false);
}

int suki_redis_argv_owned(struct suki_redis *r, const void *owner,
                          suki_redis_cb cb, void *arg, int64_t timeout_ms,
                          int argc, const char **argv, const size_t *lens)
{
    return send_argv(r, owner, cb, arg, timeout_ms, argc, argv, lens, NULL,
                     false);
}

void suki_redis_cancel(struct suki_redis *r, const void *owner)
{
    if (!r || !owner)
        return;
    /* The records stay queued: their replies are still on the way, in
     * pipeline order, and on_reply frees each when it comes. */
    for (struct pending *p = r->head; p; p = p->next) {
        if (p->owner != owner || !p->cb)
            continue;
        suki_redis_cb cb = p->cb;
        p->cb = NULL;
        p->owner = NULL;
        cb(NULL, NULL, p->arg);
    }
}

static void on_load_reply(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)arg;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        suki_warnx("redis %s: SCRIPT LOAD failed: %s", r->name, reply->str);
}

int suki_redis_eval(struct suki_redis *r, struct suki_redis_script *s,
                    suki_redis_cb cb, void *arg, int nkeys, int argc,
                    const char **argv, const size_t *lens)
{
    return suki_redis_eval_owned(r, NULL, s, cb, arg, nkeys, argc, argv, lens);
}

int suki_redis_eval_owned(struct suki_redis *r, const void *owner,
                          struct suki_redis_script *s, suki_redis_cb cb,
                          void *arg, int nkeys, int argc, const char **argv,
                          const size_t *lens)
{
    /* A script this link has not loaded yet is loaded now, ahead of the
     * call on the same link, and again by every handshake after. */
    bool known = false;
    for (size_t i = 0; i < r->n_scripts && !known; i++)
        known = r->scripts[i] == s;
    if (!known) {
        suki_redis_add_script(r, s);
        const char *lv[3] = {"SCRIPT", "LOAD", s->src};
        if (send_argv(r, NULL, on_load_reply, NULL, 0, 3, lv, NULL, NULL,
                      false) < 0)
            return -ENOTCONN;
    }
    int total = argc + 3;
    const char **av = suki_calloc((size_t)total, sizeof(char *));
    size_t *al = suki_calloc((size_t)total, sizeof(size_t));
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = s->sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    int rc = send_argv(r, owner, cb, arg, 0, total, av, al, s, false);
    free(av);
    free(al);
    return rc;
}

void suki_redis_add_script(struct suki_redis *r, struct suki_redis_script *s)
{
    SUKI_ASSERT(r->n_scripts < MAX_SCRIPTS);
    if (!s->sha[0])
        suki_redis_script_init(s);
    r->scripts[r->n_scripts++] = s;
}

/* ---- argument vectors ------------------------------------------------ */

void suki_redis_args_add(struct suki_redis_args *a, const char *s, size_t len)
{
    if (a->n == a->cap_n) {
        a->cap_n = a->cap_n ? a->cap_n * 2 : 64;
        a->off = suki_realloc(a->off, a->cap_n * sizeof(*a->off));
        a->len = suki_realloc(a->len, a->cap_n * sizeof(*a->len));
    }
    if (a->used + len + 1 > a->cap) {
        size_t c = a->cap ? a->cap * 2 : 4096;
        while (c < a->used + len + 1)
            c *= 2;
        a->buf = suki_realloc(a->buf, c);
        a->cap = c;
    }
    if (len)
        memcpy(a->buf + a->used, s, len);
    a->buf[a->used + len] = '\0';
    a->off[a->n] = a->used;
    a->len[a->n] = len;
    a->used += len + 1;
    a->n++;
}

void suki_redis_args_str(struct suki_redis_args *a, const char *s)
{
    suki_redis_args_add(a, s ? s : "", s ? strlen(s) : 0);
}

void suki_redis_args_int(struct suki_redis_args *a, int64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
    suki_redis_args_add(a, buf, (size_t)n);
}

void suki_redis_args_ptrs(const struct suki_redis_args *a, const char **argv,
                          size_t *lens)
{
    for (size_t i = 0; i < a->n; i++) {
        argv[i] = a->buf + a->off[i];
        lens[i] = a->len[i];
    }
}

void suki_redis_args_clear(struct suki_redis_args *a)
{
    free(a->buf);
    free(a->off);
    free(a->len);
    memset(a, 0, sizeof(*a));
}

/* ---- connection lifecycle ------------------------------------------- */

static void schedule_reconnect(struct suki_redis *r)
{
    /* Capped exponential backoff with +-25% jitter so that many daemons
     * do not hammer a Redis that just came back in lockstep. */
    int64_t base_ms = r->backoff_ms ? r->backoff_ms : 100;
    int64_t jitter = (int64_t)(suki_rand64() % (uint64_t)(base_ms / 2 + 1));
    int64_t delay = base_ms - base_ms / 4 + jitter;
    r->backoff_ms = base_ms * 2 > 5000 ? 5000 : base_ms * 2;
    r->state = LINK_DOWN;
    suki_timer_ms(r->reconnect_ev, delay);
}

static void on_handshake_reply(struct suki_redis *r, redisReply *reply,
                               void *arg)
{
    const char *what = arg;
    char wbuf[128];
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        if (!r->handshake_failed)
            suki_warnx("redis %s (%s): %s failed: %s%s%s%s", r->name,
                       where(r, wbuf, sizeof(wbuf)), what,
                       reply ? reply->str : "no reply",
                       r->username ? " (ACL user " : "",
                       r->username ? r->username : "",
                       r->username ? "; see sukid(8), REDIS ACL)" : "");
        r->handshake_failed = true;
    }
    if (--r->handshake_left > 0 || r->state != LINK_HANDSHAKE)
        return;
    if (r->handshake_failed) {
        drop_link(r, NULL);
        return;
    }
    r->backoff_ms = 0;
    suki_info("redis %s: connected to %s", r->name,
              where(r, wbuf, sizeof(wbuf)));
    if (r->n_sent && !r->sub)
        sub_start(r);
    set_state(r, LINK_UP);
}

/* The sentinels may name a server that is not the primary (yet, or any
 * more): refuse to use a replica. */
static void on_role_reply(struct suki_redis *r, redisReply *reply, void *arg)
{
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "master") != 0) {
        char wbuf[128];
        if (!r->handshake_failed)
            suki_warnx("redis %s (%s): the server is a replica (ROLE %s), "
                       "not the primary; asking the sentinels again",
                       r->name, where(r, wbuf, sizeof(wbuf)),
                       reply->element[0]->str);
        r->handshake_failed = true;
    }
    on_handshake_reply(r, reply, arg);
}

static void handshake(struct suki_redis *r)
{
    r->state = LINK_HANDSHAKE;
    r->handshake_left = 0;
    r->handshake_failed = false;
    const char *av[4];
    char db[16], nm[96];
    if (r->password) {
        int n = 0;
        av[n++] = "AUTH";
        if (r->username)
            av[n++] = r->username;
        av[n++] = r->password;
        if (send_argv(r, NULL, on_handshake_reply, "AUTH", 0, n, av, NULL, NULL,
                      true) == 0)
            r->handshake_left++;
    }
    if (r->n_sent) {
        av[0] = "ROLE";
        if (send_argv(r, NULL, on_role_reply, "ROLE", 0, 1, av, NULL, NULL,
                      true) == 0)
            r->handshake_left++;
    }
    snprintf(db, sizeof(db), "%d", r->db);
    av[0] = "SELECT";
    av[1] = db;
    if (send_argv(r, NULL, on_handshake_reply, "SELECT", 0, 2, av, NULL, NULL,
                  true) == 0)
        r->handshake_left++;
    snprintf(nm, sizeof(nm), "sukid-%s", r->name);
    av[0] = "CLIENT";
    av[1] = "SETNAME";
    av[2] = nm;
    if (send_argv(r, NULL, on_handshake_reply, "CLIENT SETNAME", 0, 3, av, NULL,
                  NULL, true) == 0)
        r->handshake_left++;
    for (size_t i = 0; i < r->n_scripts; i++) {
        av[0] = "SCRIPT";
        av[1] = "LOAD";
        av[2] = r->scripts[i]->src;
        if (send_argv(r, NULL, on_handshake_reply, "SCRIPT LOAD", 0, 3, av,
                      NULL, NULL, true) == 0)
            r->handshake_left++;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct suki_redis *r = ac->data;
    if (!r)
        return;
    evtimer_del(r->reconnect_ev);
    if (status != REDIS_OK) {
        char wbuf[128];
        /* hiredis frees the context after this callback. */
        if (r->backoff_ms <= 100 || r->backoff_ms >= 5000)
            suki_warnx("redis %s: cannot connect to %s: %s (retrying)", r->name,
                       where(r, wbuf, sizeof(wbuf)), ac->errstr);
        r->ac = NULL;
        schedule_reconnect(r);
        return;
    }
    handshake(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct suki_redis *r = ac->data;
    if (!r)
        return; /* we freed it ourselves */
    char wbuf[128];
    if (status != REDIS_OK)
        suki_warnx("redis %s: lost connection to %s: %s", r->name,
                   where(r, wbuf, sizeof(wbuf)), ac->errstr);
    r->ac = NULL; /* hiredis frees the context after this callback */
    set_state(r, LINK_DOWN);
    schedule_reconnect(r);
}

/* Close our side: pending callbacks run with NULL, then reconnect. */
static void drop_link(struct suki_redis *r, const char *why)
{
    char wbuf[128];
    if (why)
        suki_warnx("redis %s (%s): %s; reconnecting", r->name,
                   where(r, wbuf, sizeof(wbuf)), why);
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    set_state(r, LINK_DOWN);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    close_ctx(&r->ask);
    cancel_resolve(r);
    schedule_reconnect(r);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_redis *r = arg;
    if (r->state == LINK_ASKING) {
        sentinel_next(r, "timed out");
        return;
    }
    if (r->state == LINK_CONNECTING || r->state == LINK_RESOLVING) {
        drop_link(r, r->state == LINK_RESOLVING ? "host name lookup timed out"
                                                : "connect timed out");
        return;
    }
    start_connect(r);
}

static void connect_to(struct suki_redis *r, const char *ip);
static void sentinel_connect(struct suki_redis *r, const char *ip);

static void on_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
    struct suki_redis *r = arg;
    if (err == EVUTIL_EAI_CANCEL)
        return; /* cancel_resolve: r may be going away */
    r->dns_req = NULL;
    r->lookup_pending = false;
    char ip[INET6_ADDRSTRLEN] = "";
    for (struct evutil_addrinfo *a = res; a && !ip[0]; a = a->ai_next) {
        if (a->ai_family == AF_INET)
            evutil_inet_ntop(AF_INET,
                             &((struct sockaddr_in *)a->ai_addr)->sin_addr, ip,
                             sizeof(ip));
        else if (a->ai_family == AF_INET6)
            evutil_inet_ntop(AF_INET6,
                             &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr,
                             ip, sizeof(ip));
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (r->state == LINK_ASKING) {
        if (ip[0])
            sentinel_connect(r, ip);
        else
            sentinel_next(r, err ? evutil_gai_strerror(err)
                                 : "host name has no address");
        return;
    }
    if (!ip[0]) {
        char wbuf[128];
        if (r->backoff_ms <= 100 || r->backoff_ms >= 5000)
            suki_warnx("redis %s: cannot resolve %s: %s (retrying)", r->name,
                       where(r, wbuf, sizeof(wbuf)),
                       err ? evutil_gai_strerror(err) : "no address");
        evtimer_del(r->reconnect_ev);
        schedule_reconnect(r);
        return;
    }
    connect_to(r, ip);
}

static void cancel_resolve(struct suki_redis *r)
{
    if (r->dns_req) {
        struct evdns_getaddrinfo_request *q = r->dns_req;
        r->dns_req = NULL;
        evdns_getaddrinfo_cancel(q);
    }
}

/* Look host up with evdns; on_resolved goes on (for a sentinel when the
 * state is LINK_ASKING, else for the server). */
static void lookup(struct suki_redis *r, const char *host)
{
    struct evdns_base *dns = resolver(r->base);
    if (!dns) {
        suki_warnx("redis %s: cannot set up host name lookups", r->name);
        close_ctx(&r->ask);
        schedule_reconnect(r);
        return;
    }
    struct evutil_addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    struct timeval tv = {r->connect_timeout_ms / 1000,
                         (r->connect_timeout_ms % 1000) * 1000};
    evtimer_add(r->reconnect_ev, &tv);
    /* The answer may come at once (a numeric or /etc/hosts name), from
     * inside this call, and start another lookup from there: dns_req is
     * kept only if this one is still under way. */
    unsigned gen = ++r->lookup_gen;
    r->lookup_pending = true;
    struct evdns_getaddrinfo_request *q =
        evdns_getaddrinfo(dns, host, NULL, &hints, on_resolved, r);
    if (r->lookup_gen == gen && r->lookup_pending && q)
        r->dns_req = q;
}

static void connect_server(struct suki_redis *r)
{
    if (r->unix_path || is_numeric(r->host)) {
        connect_to(r, r->unix_path ? NULL : r->host);
        return;
    }
    r->state = LINK_RESOLVING;
    lookup(r, r->host);
}

/* ---- Sentinel --------------------------------------------------------
 * hiredis 0.14 has no Sentinel client. What suki needs is small: ask one
 * sentinel after another for the primary's address (SENTINEL
 * get-master-addr-by-name), check ROLE on the server named (handshake),
 * and follow a failover: a +switch-master message on a subscription, or
 * a READONLY reply or a lost link, makes the link ask again. */

static void ask_sentinel(struct suki_redis *r);

/* This sentinel did not answer: ask the next, or after a whole round
 * wait for the reconnect timer. */
static void sentinel_next(struct suki_redis *r, const char *why)
{
    close_ctx(&r->ask);
    cancel_resolve(r);
    evtimer_del(r->reconnect_ev);
    suki_debug("redis %s: sentinel %s:%d: %s", r->name,
               r->sent_host[r->sent_idx], r->sent_port[r->sent_idx], why);
    r->sent_idx = (r->sent_idx + 1) % r->n_sent;
    if (++r->sent_tried < r->n_sent) {
        ask_sentinel(r);
        return;
    }
    if (r->backoff_ms <= 100 || r->backoff_ms >= 5000)
        suki_warnx("redis %s: no sentinel named the primary '%s' (last: "
                   "%s:%d: %s); retrying",
                   r->name, r->master,
                   r->sent_host[(r->sent_idx + r->n_sent - 1) % r->n_sent],
                   r->sent_port[(r->sent_idx + r->n_sent - 1) % r->n_sent],
                   why);
    schedule_reconnect(r);
}

static void on_sentinel_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct suki_redis *r = ac->data;
    redisReply *rep = reply;
    if (r && rep && rep->type == REDIS_REPLY_ERROR)
        suki_warnx("redis %s: sentinel AUTH failed: %s", r->name, rep->str);
}

static void on_sentinel_answer(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct suki_redis *r = ac->data;
    redisReply *rep = reply;
    if (!r || ac != r->ask)
        return;
    if (!rep) {
        sentinel_next(r, ac->errstr[0] ? ac->errstr : "no reply");
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        sentinel_next(r, rep->str);
        return;
    }
    int64_t port = 0;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING ||
        suki_parse_i64(rep->element[1]->str, 1, 65535, &port) < 0) {
        sentinel_next(r, rep->type == REDIS_REPLY_NIL
                             ? "does not know that master name"
                             : "unexpected reply to SENTINEL "
                               "get-master-addr-by-name");
        return;
    }
    close_ctx(&r->ask); /* freed once this callback returns */
    evtimer_del(r->reconnect_ev);
    const char *h = rep->element[0]->str;
    if (!r->host || strcmp(r->host, h) != 0 || r->port != (int)port)
        suki_info("redis %s: sentinel %s:%d names %s:%d as primary '%s'",
                  r->name, r->sent_host[r->sent_idx], r->sent_port[r->sent_idx],
                  h, (int)port, r->master);
    free(r->host);
    r->host = suki_strdup(h);
    r->port = (int)port;
    r->sub_idx = r->sent_idx; /* subscribe where the answer came from */
    connect_server(r);
}

static void on_sentinel_connect(const redisAsyncContext *ac, int status)
{
    struct suki_redis *r = ac->data;
    if (!r || status == REDIS_OK)
        return;
    /* hiredis frees the context after this callback */
    if (ac == r->ask) {
        r->ask = NULL;
        sentinel_next(r, ac->errstr);
    } else if (ac == r->sub) {
        r->sub = NULL;
        r->sub_idx = (r->sub_idx + 1) % r->n_sent;
        suki_timer_ms(r->sub_ev, 1000);
    }
}

static void on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct suki_redis *r = ac->data;
    if (!r)
        return; /* we freed it ourselves */
    if (ac == r->ask) {
        r->ask = NULL;
        sentinel_next(r, ac->errstr[0] ? ac->errstr : "connection closed");
    } else if (ac == r->sub) {
        r->sub = NULL;
        r->sub_idx = (r->sub_idx + 1) % r->n_sent;
        suki_timer_ms(r->sub_ev, 1000);
    }
}

/* A connection to sentinel i at ip, authenticated if configured. */
static redisAsyncContext *sentinel_open(struct suki_redis *r, size_t i,
                                        const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, r->sent_port[i]);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_sentinel_connect);
    redisAsyncSetDisconnectCallback(ac, on_sentinel_disconnect);
    if (r->sent_pass) {
        const char *av[3];
        int n = 0;
        av[n++] = "AUTH";
        if (r->sent_user)
            av[n++] = r->sent_user;
        av[n++] = r->sent_pass;
        redisAsyncCommandArgv(ac, on_sentinel_auth, NULL, n, av, NULL);
    }
    return ac;
}

static void sentinel_connect(struct suki_redis *r, const char *ip)
{
    size_t i = r->sent_idx;
    snprintf(r->sent_ip[i], sizeof(r->sent_ip[0]), "%s", ip);
    redisAsyncContext *ac = sentinel_open(r, i, ip);
    if (!ac) {
        sentinel_next(r, "cannot connect");
        return;
    }
    r->ask = ac;
    const char *av[3] = {"SENTINEL", "get-master-addr-by-name", r->master};
    redisAsyncCommandArgv(ac, on_sentinel_answer, NULL, 3, av, NULL);
    struct timeval tv = {r->connect_timeout_ms / 1000,
                         (r->connect_timeout_ms % 1000) * 1000};
    evtimer_add(r->reconnect_ev, &tv);
}

static void ask_sentinel(struct suki_redis *r)
{
    r->state = LINK_ASKING;
    const char *h = r->sent_host[r->sent_idx];
    if (is_numeric(h))
        sentinel_connect(r, h);
    else
        lookup(r, h);
}

/* A +switch-master message: "<name> <old ip> <old port> <new ip> <new
 * port>". The link leaves a primary that is one no longer. */
static void on_switch(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct suki_redis *r = ac->data;
    redisReply *rep = reply;
    if (!r || ac != r->sub || !rep || rep->type != REDIS_REPLY_ARRAY ||
        rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(rep->element[0]->str, "message") != 0 ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return;
    char name[256], oip[64], nip[64];
    int oport, nport;
    if (sscanf(rep->element[2]->str, "%255s %63s %d %63s %d", name, oip, &oport,
               nip, &nport) != 5 ||
        strcmp(name, r->master) != 0)
        return;
    suki_info("redis %s: sentinels switched primary '%s' from %s:%d to "
              "%s:%d",
              r->name, name, oip, oport, nip, nport);
    if (r->state == LINK_DOWN) {
        /* lost with the old primary: ask now, not after the backoff */
        r->backoff_ms = 0;
        suki_timer_ms(r->reconnect_ev, 0);
    } else if (r->state != LINK_ASKING &&
               (!r->host || strcmp(r->host, nip) != 0 || r->port != nport)) {
        drop_link(r, "failover");
    }
}

static void sub_start(struct suki_redis *r)
{
    /* the first sentinel from sub_idx on whose address is known */
    for (size_t k = 0; k < r->n_sent && !r->sub; k++) {
        size_t i = (r->sub_idx + k) % r->n_sent;
        if (!r->sent_ip[i][0])
            continue;
        r->sub = sentinel_open(r, i, r->sent_ip[i]);
        if (!r->sub)
            continue;
        r->sub_idx = i;
        redisAsyncCommand(r->sub, on_switch, NULL, "SUBSCRIBE +switch-master");
    }
}

static void on_sub_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_redis *r = arg;
    if (r->n_sent && !r->sub && r->state == LINK_UP)
        sub_start(r);
}

static void start_connect(struct suki_redis *r)
{
    if (r->n_sent) {
        r->sent_tried = 0;
        ask_sentinel(r);
        return;
    }
    connect_server(r);
}

/* Connect to ip (numeric), or to the unix socket when ip is NULL. */
static void connect_to(struct suki_redis *r, const char *ip)
{
    char wbuf[128];
    redisAsyncContext *ac = ip ? redisAsyncConnect(ip, r->port)
                               : redisAsyncConnectUnix(r->unix_path);
    if (!ac || ac->err) {
        suki_warnx("redis %s: cannot connect to %s: %s", r->name,
                   where(r, wbuf, sizeof(wbuf)),
                   ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    cap_reader(r, ac);
    if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = LINK_CONNECTING;
    struct timeval tv = {r->connect_timeout_ms / 1000,
                         (r->connect_timeout_ms % 1000) * 1000};
    evtimer_add(r->reconnect_ev, &tv);
}

static void on_watch_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_redis *r = arg;
    if (!r->head)
        return;
    int64_t now = suki_mono_ms();
    /* Replies come in order, but blocking reads have longer deadlines, so
     * look at all of them (the list is short: a pipeline's worth). */
    for (struct pending *p = r->head; p; p = p->next) {
        if (p->deadline <= now) {
            drop_link(r, "command timed out");
            return;
        }
    }
    arm_watch(r);
}

struct suki_redis *suki_redis_new(struct event_base *base,
                                  const struct suki_conf *conf,
                                  const char *name, suki_redis_state_cb cb,
                                  void *arg)
{
    struct suki_redis *r = suki_calloc(1, sizeof(*r));
    r->base = base;
    r->name = suki_strdup(name);
    r->state_cb = cb;
    r->state_arg = arg;
    copy_conf(r, conf);
    r->reconnect_ev = evtimer_new(base, on_reconnect_timer, r);
    r->watch_ev = evtimer_new(base, on_watch_timer, r);
    r->sub_ev = evtimer_new(base, on_sub_timer, r);
    SUKI_ASSERT(r->reconnect_ev && r->watch_ev && r->sub_ev);
    /* Connect from the loop so the caller finishes its setup first. */
    struct timeval tv = {0, 0};
    evtimer_add(r->reconnect_ev, &tv);
    return r;
}

void suki_redis_set_conf(struct suki_redis *r, const struct suki_conf *conf)
{
    copy_conf(r, conf);
}

void suki_redis_free(struct suki_redis *r)
{
    if (!r)
        return;
    r->state_cb = NULL;
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    close_ctx(&r->ask);
    close_ctx(&r->sub);
    cancel_resolve(r);
    event_free(r->reconnect_ev);
    event_free(r->watch_ev);
    event_free(r->sub_ev);
    free(r->name);
    free(r->host);
    free(r->unix_path);
    free(r->password);
    free(r->username);
    free_sentinels(r);
    free(r);
}

bool suki_redis_error_is_temporary(const redisReply *reply)
{
    static const char *const temp[] = {"LOADING",    "BUSY",       "OOM",
                                       "READONLY",   "MASTERDOWN", "TRYAGAIN",
                                       "NOREPLICAS", "CLUSTERDOWN"};
    if (!reply || reply->type != REDIS_REPLY_ERROR || !reply->str)
        return false;
    for (size_t i = 0; i < SUKI_ARRAY_LEN(temp); i++) {
        size_t n = strlen(temp[i]);
        if (strncmp(reply->str, temp[i], n) == 0 &&
            (reply->str[n] == ' ' || reply->str[n] == '\0'))
            return true;
    }
    return false;
}

bool suki_redis_is_up(const struct suki_redis *r)
{
    return r && r->state == LINK_UP;
}

/* ---- redis.min_replicas ---------------------------------------------- */

int suki_redis_min_replicas(const struct suki_redis *r)
{
    return r ? r->min_replicas : 0;
}

int suki_redis_wait(struct suki_redis *r, const void *owner, suki_redis_cb cb,
                    void *arg)
{
    char n[16], ms[24];
    snprintf(n, sizeof(n), "%d", r->min_replicas);
    snprintf(ms, sizeof(ms), "%" PRId64, r->wait_timeout_ms);
    const char *av[3] = {"WAIT", n, ms};
    /* Redis answers WAIT at its timeout at the latest: the command
     * timeout runs from there. */
    return suki_redis_argv_owned(r, owner, cb, arg,
                                 r->wait_timeout_ms + r->command_timeout_ms, 3,
                                 av, NULL);
}

bool suki_redis_wait_ok(const struct suki_redis *r, const redisReply *reply)
{
    if (!reply)
        return false;
    if (reply->type == REDIS_REPLY_INTEGER &&
        reply->integer >= r->min_replicas) {
        if (suki_metrics.redis_replicas_short)
            suki_notice("redis %s: WAIT counts %lld replicas again (%d "
                        "wanted); work held for them goes on",
                        r->name, reply->integer, r->min_replicas);
        suki_metrics.redis_replicas_short = 0;
        suki_metrics.redis_replicas_acked = (int)reply->integer;
        return true;
    }
    suki_metrics.redis_wait_short++;
    long long got = reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (!suki_metrics.redis_replicas_short) {
        /* Once, not per batch: while replicas are short every batch,
         * marker and settle answers short. */
        if (got >= 0)
            suki_warnx("redis %s: WAIT %d %" PRId64 " counted %lld replicas; "
                       "applied events, sent markers and settles stay "
                       "pending and are retried until %d replicas have them "
                       "(redis.min_replicas; suki_redis_wait_short_total "
                       "counts)",
                       r->name, r->min_replicas, r->wait_timeout_ms, got,
                       r->min_replicas);
        else
            suki_warnx("redis %s: WAIT failed: %s; the work it guards stays "
                       "pending and is retried",
                       r->name,
                       reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
    }
    suki_metrics.redis_replicas_short = 1;
    suki_metrics.redis_replicas_acked = got > 0 ? (int)got : 0;
    return false;
}

/* AUTH [user] password on a blocking context; NULL reply or error fills
 * err. */
static int sync_auth(redisContext *ctx, const char *user, const char *pass,
                     const char *what, struct suki_err *err)
{
    if (!pass)
        return 0;
    const char *av[3];
    int n = 0;
    av[n++] = "AUTH";
    if (user)
        av[n++] = user;
    av[n++] = pass;
    redisReply *rep = redisCommandArgv(ctx, n, av, NULL);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        suki_err_set(err, -EACCES, "%s AUTH%s%s failed: %s", what,
                     user ? " as " : "", user ? user : "",
                     rep ? rep->str : ctx->errstr);
        freeReplyObject(rep);
        return -EACCES;
    }
    freeReplyObject(rep);
    return 0;
}

static redisContext *sync_open(const char *host, int port, const char *upath,
                               int64_t timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return upath ? redisConnectUnixWithTimeout(upath, tv)
                 : redisConnectWithTimeout(host, port, tv);
}

/* Ask the sentinels in turn for the primary (blocking: sukictl, and the
 * heartbeat's last write after the loop has stopped, which can then wait
 * up to each sentinel's connect and command timeout).
 * Returns 0 and an owned *host, or -EHOSTUNREACH with err filled. */
static int sync_ask(const struct suki_conf *c, char **host, int *port,
                    struct suki_err *err)
{
    char last[512] = "no sentinel configured";
    for (size_t i = 0; i < c->n_redis_sentinels; i++) {
        char *sh;
        int sp;
        if (suki_conf_hostport(c->redis_sentinels[i], &sh, &sp) < 0)
            continue;
        redisContext *ctx =
            sync_open(sh, sp, NULL, c->redis_connect_timeout_ms);
        free(sh);
        if (!ctx || ctx->err) {
            snprintf(last, sizeof(last), "%.200s: %.250s",
                     c->redis_sentinels[i],
                     ctx ? ctx->errstr : "out of memory");
            redisFree(ctx);
            continue;
        }
        struct timeval ctv = {c->redis_command_timeout_ms / 1000,
                              (c->redis_command_timeout_ms % 1000) * 1000};
        redisSetTimeout(ctx, ctv);
        struct suki_err aerr = {{0}};
        if (sync_auth(ctx, c->redis_sentinel_username,
                      c->redis_sentinel_password, "sentinel", &aerr) < 0) {
            snprintf(last, sizeof(last), "%.200s: %.250s",
                     c->redis_sentinels[i], aerr.msg);
            redisFree(ctx);
            continue;
        }
        const char *av[3] = {"SENTINEL", "get-master-addr-by-name",
                             c->redis_master};
        redisReply *rep = redisCommandArgv(ctx, 3, av, NULL);
        int64_t p = 0;
        if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
            rep->element[0]->type == REDIS_REPLY_STRING &&
            rep->element[1]->type == REDIS_REPLY_STRING &&
            suki_parse_i64(rep->element[1]->str, 1, 65535, &p) == 0) {
            *host = suki_strdup(rep->element[0]->str);
            *port = (int)p;
            freeReplyObject(rep);
            redisFree(ctx);
            return 0;
        }
        snprintf(last, sizeof(last), "%.200s: %.250s", c->redis_sentinels[i],
                 !rep                             ? ctx->errstr
                 : rep->type == REDIS_REPLY_ERROR ? rep->str
                 : rep->type == REDIS_REPLY_NIL   ? "does not know that name"
                                                  : "unexpected reply");
        freeReplyObject(rep);
        redisFree(ctx);
    }
    suki_err_set(err, -EHOSTUNREACH,
                 "no sentinel named the redis primary '%s' (last: %s)",
                 c->redis_master, last);
    return -EHOSTUNREACH;
}

redisContext *suki_redis_connect_sync(const struct suki_conf *c,
                                      struct suki_err *err)
{
    char *shost = NULL;
    int sport = 0;
    if (c->n_redis_sentinels && sync_ask(c, &shost, &sport, err) < 0)
        return NULL;
    const char *host = shost ? shost : c->redis_host;
    int port = shost ? sport : c->redis_port;
    redisContext *ctx = sync_open(host, port, shost ? NULL : c->redis_unix,
                                  c->redis_connect_timeout_ms);
    if (!ctx || ctx->err) {
        if (shost)
            suki_err_set(err, -ECONNREFUSED,
                         "cannot connect to redis primary '%s' at %s:%d: %s",
                         c->redis_master, host, port,
                         ctx ? ctx->errstr : "out of memory");
        else
            suki_err_set(err, -ECONNREFUSED, "cannot connect to redis %s: %s",
                         c->redis_url, ctx ? ctx->errstr : "out of memory");
        if (ctx)
            redisFree(ctx);
        free(shost);
        return NULL;
    }
    struct timeval ctv = {c->redis_command_timeout_ms / 1000,
                          (c->redis_command_timeout_ms % 1000) * 1000};
    redisSetTimeout(ctx, ctv);
    redisReply *rep;
    if (sync_auth(ctx, c->redis_username, c->redis_password, "redis", err) <
        0) {
        redisFree(ctx);
        free(shost);
        return NULL;
    }
    if (shost) {
        rep = redisCommand(ctx, "ROLE");
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(rep->element[0]->str, "master") != 0) {
            suki_err_set(err, -EAGAIN,
                         "redis %s:%d, named primary '%s' by a sentinel, is "
                         "not the primary (%s); try again",
                         host, port, c->redis_master,
                         !rep                             ? ctx->errstr
                         : rep->type == REDIS_REPLY_ERROR ? rep->str
                         : rep->type == REDIS_REPLY_ARRAY && rep->elements &&
                                 rep->element[0]->type == REDIS_REPLY_STRING
                             ? rep->element[0]->str
                             : "unexpected ROLE reply");
            freeReplyObject(rep);
            redisFree(ctx);
            free(shost);
            return NULL;
        }
        freeReplyObject(rep);
    }
    free(shost);
    rep = redisCommand(ctx, "SELECT %d", c->redis_db);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        suki_err_set(err, -EIO, "redis SELECT %d failed: %s", c->redis_db,
                     rep ? rep->str : ctx->errstr);
        freeReplyObject(rep);
        redisFree(ctx);
        return NULL;
    }
    freeReplyObject(rep);
    return ctx;
}
