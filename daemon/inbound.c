/* inbound.c - the IMAP poller (inbound.h): one transfer at a time on a
 * libcurl multi handle driven by the daemon's libevent loop.
 *
 * The multi handle runs on the loop through lib/curl_ev.h, and the finished
 * transfer is taken out with curl_multi_info_read after each socket action,
 * so nothing here runs inside a libcurl callback but the byte sinks.
 *
 * libcurl 7.88 blocks in one place for IMAP: closing a connection that is
 * not known dead sends LOGOUT and waits for the answer (imap_disconnect ->
 * imap_block_statemach). That happens in curl_multi_cleanup. Every socket
 * is recorded (CURLOPT_OPENSOCKETFUNCTION) and shut for reading first, so
 * the wait ends at once; a failed transfer's connection is shut as well,
 * so a late answer is never read as the next command's. */
#include "config.h"

#include "inbound.h"
#include "store/job.h"
#include "store/keys.h"
#include "store/scripts.h"
#include "conf.h"
#include "curl_ev.h"
#include "daemon.h"
#include "event.h"
#include "inbound_parse.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* How often a poller without an inbound section (or without Redis) looks
 * again. */
#define IDLE_CHECK_MS 1000
/* Bytes of a listing kept (a line per message). */
#define LIST_MAX (1024 * 1024)
/* Messages listed by one command. libcurl 7.88 fails a command whose
 * answer it has counted past 300 KiB of "headers" ("Too large response
 * headers"), and it counts more than the bytes: against Dovecot, FETCH
 * 1:200 (UID RFC822.SIZE), 9 KiB, failed at line 136. 50 lines stay far
 * below that. */
#define LIST_WINDOW 50
/* Sockets one poller may hold at once (one connection, plus a spare while
 * libcurl replaces a dead one). */
#define MAX_SOCKS 8

static struct suki_redis_script poll_script = {
    "inbound-poll", suki_lua_inbound_poll, {0}};
static struct suki_redis_script apply_script = {
    "inbound-apply", suki_lua_inbound_apply, {0}};

enum step {
    ST_IDLE,   /* waiting for the next poll */
    ST_LEASE,  /* inbound-poll L */
    ST_SYNC,   /* NOOP */
    ST_STATUS, /* STATUS "MAILBOX" (MESSAGES UIDNEXT UIDVALIDITY) */
    ST_STATE,  /* inbound-poll V */
    ST_LIST,   /* FETCH a:b (UID RFC822.SIZE) */
    ST_FETCH,  /* one message */
    ST_LOOKUP, /* the records of the ids it names */
    ST_APPLY,  /* inbound-apply */
    ST_FLAG,   /* UID STORE +FLAGS (\Seen) */
};

struct todo {
    uint64_t uid;
    uint64_t size;
};

struct suki_inbound {
    struct suki_daemon *D;
    struct suki_curl_ev *ce; /* curl on the daemon's loop */
    CURLM *multi;            /* ce's */
    struct event *poll_ev;   /* the next poll */
    curl_socket_t socks[MAX_SOCKS];
    size_t n_socks;
    struct suki_conf *conf; /* ref held for one poll */
    char token[40];         /* the lease's */
    enum step st;
    bool stopped;
    /* the transfer in flight */
    CURL *easy;
    struct suki_buf body, hdrs;
    size_t body_max;
    bool over; /* the body passed body_max */
    /* the mailbox */
    char uidvalidity[24];
    uint64_t last;       /* the highest UID done */
    uint64_t exists;     /* STATUS MESSAGES */
    uint64_t uidnext;    /* STATUS UIDNEXT */
    uint64_t window_end; /* the last sequence number listed */
    struct todo *todo;
    size_t n_todo, i_todo;
    bool more;         /* messages after the window listed */
    size_t batch_done; /* messages done in this poll */
    uint64_t fail_uid;
    int fail_count;
    /* the message being processed */
    struct suki_inbound_msg msg;
    char digest[65];               /* sha256 of its bytes: the events' id */
    enum suki_inbound_result kind; /* what apply() was asked to record */
    char **looked;                 /* the P:sent keys asked for */
    size_t n_looked;
    char *error; /* the last error logged, to log only changes */
};

/* ---- small helpers ------------------------------------------------ */

static int64_t lease_ttl(const struct suki_conf *c)
{
    return 2 * c->inbound_poll_ms + 5000;
}

static const char *kind_label(enum suki_inbound_result k)
{
    return suki_metrics_inbound_name(k);
}

static void report_error(struct suki_inbound *in, const char *msg)
{
    if (in->error && strcmp(in->error, msg) == 0)
        return;
    suki_warnx("inbound: %s", msg);
    free(in->error);
    in->error = suki_strdup(msg);
}

static void clear_error(struct suki_inbound *in)
{
    if (!in->error)
        return;
    suki_notice("inbound: polling %s again", in->conf->inbound_url);
    free(in->error);
    in->error = NULL;
}

static void msg_reset(struct suki_inbound *in)
{
    suki_inbound_msg_clear(&in->msg);
    for (size_t i = 0; i < in->n_looked; i++)
        free(in->looked[i]);
    free(in->looked);
    in->looked = NULL;
    in->n_looked = 0;
    in->digest[0] = '\0';
}

static void schedule(struct suki_inbound *in, int64_t ms)
{
    in->st = ST_IDLE;
    if (!in->stopped)
        suki_timer_ms(in->poll_ev, ms);
}

/* The poll is over: the next in ms. */
static void end_round(struct suki_inbound *in, int64_t ms)
{
    msg_reset(in);
    free(in->todo);
    in->todo = NULL;
    in->n_todo = in->i_todo = 0;
    suki_conf_unref(in->conf);
    in->conf = NULL;
    schedule(in, ms);
}

static void end_round_normal(struct suki_inbound *in)
{
    end_round(in, in->more ? 0 : in->conf->inbound_poll_ms);
}

/* Every socket libcurl opens, recorded so that free can shut them. */
static curl_socket_t open_sock(void *arg, curlsocktype purpose,
                               struct curl_sockaddr *a)
{
    struct suki_inbound *in = arg;
    (void)purpose;
    if (in->n_socks >= MAX_SOCKS)
        return CURL_SOCKET_BAD;
    curl_socket_t s = socket(a->family, a->socktype, a->protocol);
    if (s != CURL_SOCKET_BAD)
        in->socks[in->n_socks++] = s;
    return s;
}

static int close_sock(void *arg, curl_socket_t s)
{
    struct suki_inbound *in = arg;
    for (size_t i = 0; i < in->n_socks; i++)
        if (in->socks[i] == s) {
            in->socks[i] = in->socks[--in->n_socks];
            break;
        }
    return close(s);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct suki_inbound *in = arg;
    size_t len = size * n;
    if (in->body.len + len > in->body_max) {
        in->over = true;
        return 0; /* CURLE_WRITE_ERROR: the connection is dropped */
    }
    suki_buf_add(&in->body, p, len);
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct suki_inbound *in = arg;
    size_t len = size * n;
    /* the greeting, CAPABILITY, SELECT: small, but bounded anyway */
    if (in->hdrs.len + len <= 65536)
        suki_buf_add(&in->hdrs, p, len);
    return len;
}

static void transfer_done(struct suki_inbound *in, CURLcode cc);

static void drain(void *arg)
{
    struct suki_inbound *in = arg;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(in->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE || m->easy_handle != in->easy)
            continue;
        CURLcode cc = m->data.result;
        CURL *e = in->easy;
        if (cc != CURLE_OK) {
            /* see the top: never reuse a connection a transfer failed on */
            curl_socket_t s = CURL_SOCKET_BAD;
            if (curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &s) == CURLE_OK &&
                s != CURL_SOCKET_BAD)
                shutdown(s, SHUT_RDWR);
        }
        curl_multi_remove_handle(in->multi, e);
        curl_easy_cleanup(e);
        in->easy = NULL;
        transfer_done(in, cc);
        return; /* m belongs to the handle just freed */
    }
}

/* Start one IMAP command: url, and custom (or NULL for a fetch). The body
 * goes to in->body (at most body_max bytes), the server's other lines to
 * in->hdrs. Returns 0, or -1 with the error reported. */
static int start(struct suki_inbound *in, const char *url, const char *custom,
                 size_t body_max)
{
    const struct suki_conf *c = in->conf;
    in->body.len = 0;
    in->hdrs.len = 0;
    in->over = false;
    in->body_max = body_max;
    CURL *e = curl_easy_init();
    if (!e) {
        report_error(in, "curl_easy_init failed");
        return -1;
    }
    long secs = (long)((c->inbound_timeout_ms + 999) / 1000);
    bool plain = strncmp(c->inbound_url, "imap://", 7) == 0;
    CURLcode rc = CURLE_OK;
#define SET(o, v)                                                              \
    do {                                                                       \
        if (rc == CURLE_OK)                                                    \
            rc = curl_easy_setopt(e, o, v);                                    \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "imap,imaps");
    SET(CURLOPT_USERNAME, c->inbound_username);
    SET(CURLOPT_PASSWORD, c->inbound_password ? c->inbound_password : "");
    if (plain)
        SET(CURLOPT_USE_SSL, c->inbound_starttls == SUKI_STARTTLS_OFF
                                 ? (long)CURLUSESSL_NONE
                                 : (long)CURLUSESSL_ALL);
    if (c->inbound_ca_file)
        SET(CURLOPT_CAINFO, c->inbound_ca_file);
    SET(CURLOPT_SSL_VERIFYPEER, c->inbound_tls_verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, c->inbound_tls_verify ? 2L : 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->inbound_timeout_ms);
    SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, secs);
    /* a slow server may take long over a large message, but never stall */
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME, secs);
    if (custom)
        SET(CURLOPT_CUSTOMREQUEST, custom);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, in);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, in);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_sock);
    SET(CURLOPT_OPENSOCKETDATA, in);
    SET(CURLOPT_CLOSESOCKETFUNCTION, close_sock);
    SET(CURLOPT_CLOSESOCKETDATA, in);
#undef SET
    if (rc != CURLE_OK) {
        char *m =
            suki_asprintf("curl option refused: %s", curl_easy_strerror(rc));
        report_error(in, m);
        free(m);
        curl_easy_cleanup(e);
        return -1;
    }
    CURLMcode mc = curl_multi_add_handle(in->multi, e);
    if (mc != CURLM_OK) {
        char *m =
            suki_asprintf("curl_multi_add_handle: %s", curl_multi_strerror(mc));
        report_error(in, m);
        free(m);
        curl_easy_cleanup(e);
        return -1;
    }
    in->easy = e;
    return 0;
}

/* ---- Redis -------------------------------------------------------- */

static void poll_eval(struct suki_inbound *in, suki_redis_cb cb,
                      const char **args, int nargs)
{
    char *kl = suki_key(in->conf->prefix, SUKI_KEY_INBOUND_LEASE);
    char *kh = suki_key(in->conf->prefix, SUKI_KEY_INBOUND);
    const char *av[8] = {kl, kh};
    for (int i = 0; i < nargs && i < 6; i++)
        av[2 + i] = args[i];
    int rc = suki_redis_eval_owned(in->D->redis, in, &poll_script, cb, in, 2,
                                   2 + nargs, av, NULL);
    free(kl);
    free(kh);
    if (rc < 0) {
        report_error(in, "redis is not reachable");
        end_round(in, IDLE_CHECK_MS);
    }
}

static bool reply_error(struct suki_inbound *in, redisReply *rep,
                        const char *what)
{
    if (rep && rep->type != REDIS_REPLY_ERROR)
        return false;
    char *m = suki_asprintf("%s: %s", what, rep ? rep->str : "redis link down");
    report_error(in, m);
    free(m);
    return true;
}

/* ---- one message -------------------------------------------------- */

static void process_next(struct suki_inbound *in);
static void list_window(struct suki_inbound *in, uint64_t first);
static void apply(struct suki_inbound *in, enum suki_inbound_result kind,
                  const char *suppress, const char *event);

static void on_flagged(struct suki_inbound *in, CURLcode cc)
{
    if (cc != CURLE_OK)
        /* the fetch set \Seen already; the flag is for servers that did
         * not (a read-only or PEEK-ing setup), and nothing depends on it */
        suki_info("inbound: UID %" PRIu64 ": cannot flag \\Seen: %s",
                  in->todo[in->i_todo].uid, curl_easy_strerror(cc));
    in->i_todo++;
    msg_reset(in);
    process_next(in);
}

static void flag(struct suki_inbound *in)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "UID STORE %" PRIu64 " +FLAGS (\\Seen)",
             in->todo[in->i_todo].uid);
    in->st = ST_FLAG;
    if (start(in, in->conf->inbound_url, cmd, 65536) < 0) {
        in->i_todo++;
        msg_reset(in);
        process_next(in);
    }
}

static void on_applied(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct suki_inbound *in = arg;
    if (!r)
        return; /* cancelled: freeing */
    if (reply_error(in, rep, "recording a message")) {
        end_round(in, in->conf->inbound_poll_ms);
        return;
    }
    const char *st = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
                             rep->element[0]->type == REDIS_REPLY_STRING
                         ? rep->element[0]->str
                         : "";
    uint64_t uid = in->todo[in->i_todo].uid;
    if (strcmp(st, "ok") == 0) {
        /* counted once it is done: not for a lost lease, nor twice */
        if (in->kind < SUKI_IN__COUNT)
            suki_metrics.inbound[in->kind]++;
        in->last = uid;
        in->fail_uid = 0;
        in->fail_count = 0;
    } else if (strcmp(st, "done") == 0) {
        suki_info("inbound: UID %" PRIu64 " was done before; flagging it", uid);
        in->last = uid;
    } else if (strcmp(st, "lease") == 0) {
        suki_warnx("inbound: lost the poller's lease; another sukid polls");
        end_round(in, in->conf->inbound_poll_ms);
        return;
    } else {
        suki_info("inbound: the mailbox changed (UIDVALIDITY); listing "
                  "again");
        end_round(in, 0);
        return;
    }
    flag(in);
}

/* in->msg classified as kind: count it with its events and suppression in
 * one script, then flag it. */
static void apply(struct suki_inbound *in, enum suki_inbound_result kind,
                  const char *suppress, const char *event)
{
    const struct suki_conf *c = in->conf;
    uint64_t uid = in->todo[in->i_todo].uid;
    char *kl = suki_key(c->prefix, SUKI_KEY_INBOUND_LEASE);
    char *kh = suki_key(c->prefix, SUKI_KEY_INBOUND);
    char *ks = suki_key(c->prefix, SUKI_KEY_SUPPRESSED);
    char uids[24], now[24], ttl[24];
    snprintf(uids, sizeof(uids), "%" PRIu64, uid);
    snprintf(now, sizeof(now), "%" PRId64, suki_now_ms());
    snprintf(ttl, sizeof(ttl), "%" PRId64, lease_ttl(c));
    const char *av[12] = {kl,
                          kh,
                          c->stream,
                          ks,
                          in->token,
                          in->uidvalidity,
                          uids,
                          kind_label(kind),
                          now,
                          ttl,
                          suppress ? suppress : "",
                          event};
    int argc = event ? 12 : 11;
    in->st = ST_APPLY;
    in->kind = kind;
    int rc = suki_redis_eval_owned(in->D->redis, in, &apply_script, on_applied,
                                   in, 4, argc, av, NULL);
    free(kl);
    free(kh);
    free(ks);
    if (rc < 0) {
        report_error(in, "redis is not reachable");
        end_round(in, IDLE_CHECK_MS);
        return;
    }
    suki_info("inbound: UID %" PRIu64 " %s%s%s%s%s", uid, kind_label(kind),
              in->msg.why ? " (" : "", in->msg.why ? in->msg.why : "",
              in->msg.why ? ")" : "",
              suppress ? ": address suppressed for campaigns" : "");
}

/* The event document for the message (validated the way the intake and
 * POST /v1/events validate), or NULL with the reason logged. Steals
 * data. */
static char *make_event(struct suki_inbound *in, const char *type,
                        const char *client, json_t *data)
{
    char *id = suki_asprintf("inbound:%s", in->digest);
    struct suki_event_parts p = {.type = type,
                                 .client = client,
                                 .id = id,
                                 .at_ms = suki_now_ms(),
                                 .data = data};
    struct suki_event *ev = NULL, *chk = NULL;
    struct suki_err err = {{0}};
    char *doc = NULL;
    if (suki_event_new(&p, &ev, &err) == 0) {
        doc = suki_event_dump(ev);
        struct suki_event_limits lim = {.max_size =
                                            (size_t)in->conf->max_event_size};
        if (suki_event_parse(doc, strlen(doc), &lim, suki_now_ms(), &chk,
                             &err) < 0) {
            free(doc);
            doc = NULL;
        }
    }
    if (!doc)
        suki_warnx("inbound: UID %" PRIu64 ": no %s event for client '%s': %s",
                   in->todo[in->i_todo].uid, type, client, err.msg);
    suki_event_free(chk);
    suki_event_free(ev);
    json_decref(data);
    free(id);
    return doc;
}

/* A record (a P:sent value): the job key or ~campaign:<client>:<name>:.
 * Returns 0 and the owned parts, or -1 for a record about no client. */
static int record_split(const char *rec, char **rule, char **client,
                        char **subject)
{
    *rule = *client = *subject = NULL;
    if (rec && strncmp(rec, "c\n", 2) == 0)
        rec += 2; /* counted for the monthly report (sched-settle.lua's I) */
    if (!rec || !*rec || strcmp(rec, "1") == 0)
        return -1;
    if (suki_job_key_split(rec, rule, client, subject, NULL) < 0)
        return -1;
    if (strcmp(*rule, SUKI_DIGEST_RULE) == 0) {
        free(*rule);
        free(*client);
        free(*subject);
        *rule = *client = *subject = NULL;
        return -1;
    }
    return 0;
}

static void data_origin(json_t *d, const char *rule, const char *subject,
                        const char *rec)
{
    if (strcmp(rule, SUKI_CAMPAIGN_RULE) == 0) {
        json_object_set_new(d, "campaign", json_string(subject));
    } else {
        json_object_set_new(d, "rule", json_string(rule));
        json_object_set_new(d, "job", json_string(rec));
    }
}

static const char *str_elem(redisReply *rep, size_t i)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || i >= rep->elements)
        return NULL;
    redisReply *x = rep->element[i];
    return x->type == REDIS_REPLY_STRING ? x->str : NULL;
}

struct replyctx {
    struct suki_inbound *in;
    char *rule, *client, *subject, *rec, *ref;
};

static void replyctx_free(struct replyctx *x)
{
    free(x->rule);
    free(x->client);
    free(x->subject);
    free(x->rec);
    free(x->ref);
    free(x);
}

/* The client's manager read: a reply from the manager is not the client
 * answering (the record says what the message was about, not to whom it
 * went). */
static void on_profile(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct replyctx *x = arg;
    struct suki_inbound *in = x->in;
    if (!r) {
        replyctx_free(x);
        return;
    }
    if (reply_error(in, rep, "reading a client's profile")) {
        replyctx_free(x);
        end_round(in, in->conf->inbound_poll_ms);
        return;
    }
    const char *mgr = str_elem(rep, 0);
    if (mgr && in->msg.from && strcasecmp(mgr, in->msg.from) == 0) {
        replyctx_free(x);
        apply(in, SUKI_IN_OTHER, NULL, NULL);
        return;
    }
    json_t *d = json_object();
    json_object_set_new(d, "direction", json_string("in"));
    json_object_set_new(d, "summary",
                        json_string(in->msg.subject ? in->msg.subject : ""));
    if (in->msg.from)
        json_object_set_new(d, "from", json_string(in->msg.from));
    json_object_set_new(d, "in_reply_to", json_string(x->ref));
    if (in->msg.message_id)
        json_object_set_new(d, "message_id", json_string(in->msg.message_id));
    data_origin(d, x->rule, x->subject, x->rec);
    char *doc = make_event(in, "contact.email", x->client, d);
    replyctx_free(x);
    apply(in, doc ? SUKI_IN_REPLY : SUKI_IN_OTHER, NULL, doc);
    free(doc);
}

/* The records of the ids the message names: what it becomes. */
static void on_records(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct suki_inbound *in = arg;
    if (!r)
        return;
    if (reply_error(in, rep, "reading the records of sent mail")) {
        end_round(in, in->conf->inbound_poll_ms);
        return;
    }
    const struct suki_inbound_msg *m = &in->msg;
    char *rule = NULL, *client = NULL, *subject = NULL;
    size_t hit = 0;
    bool found = false, ours = false;
    for (size_t i = 0; i < in->n_looked && !found; i++) {
        const char *rec = str_elem(rep, i);
        ours = ours || rec;
        if (rec && record_split(rec, &rule, &client, &subject) == 0) {
            found = true;
            hit = i;
        }
    }
    const char *rec = found ? str_elem(rep, hit) : NULL;
    if (m->kind == SUKI_INBOUND_REPLY) {
        if (!found) {
            apply(in, SUKI_IN_OTHER, NULL, NULL);
        } else {
            struct replyctx *x = suki_calloc(1, sizeof(*x));
            x->in = in;
            x->rule = rule;
            x->client = client;
            x->subject = subject;
            x->rec = suki_strdup(rec);
            x->ref = suki_strdup(m->refs[hit]);
            rule = client = subject = NULL;
            char *pk =
                suki_key_id(in->conf->prefix, SUKI_KEY_CLIENT, x->client);
            const char *av[3] = {"HMGET", pk, "manager"};
            in->st = ST_LOOKUP;
            int rc = suki_redis_argv_owned(in->D->redis, in, on_profile, x, 0,
                                           3, av, NULL);
            free(pk);
            if (rc < 0) {
                replyctx_free(x);
                report_error(in, "redis is not reachable");
                end_round(in, IDLE_CHECK_MS);
            }
        }
    } else if (m->kind == SUKI_INBOUND_DSN) {
        /* the first recipient that failed for good, else the first */
        const struct suki_inbound_rcpt *rc = &m->rcpts[0];
        for (size_t i = 0; i < m->n_rcpts; i++)
            if (suki_inbound_status_permanent(m->rcpts[i].status)) {
                rc = &m->rcpts[i];
                break;
            }
        if (!ours) {
            apply(in, SUKI_IN_OTHER, NULL, NULL);
        } else if (!suki_inbound_status_permanent(rc->status)) {
            apply(in, SUKI_IN_DELAY, NULL, NULL);
        } else {
            char *doc = NULL;
            if (found) {
                json_t *d = json_object();
                json_object_set_new(d, "address", json_string(rc->address));
                json_object_set_new(d, "status", json_string(rc->status));
                json_object_set_new(
                    d, "diagnostic",
                    json_string(rc->diagnostic ? rc->diagnostic : ""));
                json_object_set_new(d, "message_id", json_string(m->orig_id));
                data_origin(d, rule, subject, rec);
                doc = make_event(in, "email.bounced", client, d);
            }
            apply(in, SUKI_IN_BOUNCE, rc->address, doc);
            free(doc);
        }
    } else if (m->kind == SUKI_INBOUND_COMPLAINT) {
        if (!ours || !m->complainant) {
            apply(in, SUKI_IN_OTHER, NULL, NULL);
        } else {
            char *doc = NULL;
            if (found) {
                json_t *d = json_object();
                json_object_set_new(d, "address", json_string(m->complainant));
                json_object_set_new(d, "feedback_type",
                                    json_string(m->feedback_type));
                json_object_set_new(d, "message_id", json_string(m->orig_id));
                data_origin(d, rule, subject, rec);
                doc = make_event(in, "email.complained", client, d);
            }
            apply(in, SUKI_IN_COMPLAINT, m->complainant, doc);
            free(doc);
        }
    } else {
        apply(in, SUKI_IN_OTHER, NULL, NULL);
    }
    free(rule);
    free(client);
    free(subject);
}

/* The fetched message in in->body: classify it and look up what it
 * names. */
static void classify(struct suki_inbound *in)
{
    struct suki_inbound_msg *m = &in->msg;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)in->body.p, in->body.len, md);
    suki_hex(md, sizeof(md), in->digest);
    suki_inbound_parse(in->body.p, in->body.len, m);
    const char *ids[SUKI_INBOUND_MAX_REFS];
    size_t n = 0;
    switch (m->kind) {
    case SUKI_INBOUND_REPLY:
        for (size_t i = 0; i < m->n_refs; i++)
            ids[n++] = m->refs[i];
        break;
    case SUKI_INBOUND_DSN:
    case SUKI_INBOUND_COMPLAINT:
        if (m->orig_id)
            ids[n++] = m->orig_id;
        break;
    case SUKI_INBOUND_AUTOREPLY:
        apply(in, SUKI_IN_AUTOREPLY, NULL, NULL);
        return;
    case SUKI_INBOUND_MALFORMED:
        apply(in, SUKI_IN_MALFORMED, NULL, NULL);
        return;
    default:
        break;
    }
    if (n == 0) {
        apply(in, SUKI_IN_OTHER, NULL, NULL);
        return;
    }
    in->looked = suki_calloc(n, sizeof(char *));
    const char **av = suki_calloc(n + 1, sizeof(char *));
    av[0] = "MGET";
    for (size_t i = 0; i < n; i++) {
        in->looked[i] = suki_key_id(in->conf->prefix, SUKI_KEY_SENT, ids[i]);
        av[i + 1] = in->looked[i];
    }
    in->n_looked = n;
    in->st = ST_LOOKUP;
    int rc = suki_redis_argv_owned(in->D->redis, in, on_records, in, 0,
                                   (int)n + 1, av, NULL);
    free(av);
    if (rc < 0) {
        report_error(in, "redis is not reachable");
        end_round(in, IDLE_CHECK_MS);
    }
}

static void on_fetched(struct suki_inbound *in, CURLcode cc)
{
    uint64_t uid = in->todo[in->i_todo].uid;
    if (cc == CURLE_OK) {
        clear_error(in);
        classify(in);
        return;
    }
    if (cc == CURLE_WRITE_ERROR && in->over) {
        /* larger than its listed size said */
        in->msg.kind = SUKI_INBOUND_MALFORMED;
        in->msg.why = suki_strdup("larger than the limit");
        apply(in, SUKI_IN_MALFORMED, NULL, NULL);
        return;
    }
    if (cc == CURLE_REMOTE_FILE_NOT_FOUND) {
        /* expunged since the listing (or the mailbox was recreated: then
         * the next listing starts again under the new UIDVALIDITY) */
        apply(in, SUKI_IN_GONE, NULL, NULL);
        return;
    }
    if (in->fail_uid != uid) {
        in->fail_uid = uid;
        in->fail_count = 0;
    }
    char *m = suki_asprintf("fetching UID %" PRIu64 " from %s: %s", uid,
                            in->conf->inbound_url, curl_easy_strerror(cc));
    report_error(in, m);
    free(m);
    if (++in->fail_count >= SUKI_INBOUND_FETCH_TRIES) {
        in->msg.kind = SUKI_INBOUND_MALFORMED;
        in->msg.why = suki_strdup("cannot be fetched");
        apply(in, SUKI_IN_MALFORMED, NULL, NULL);
        return;
    }
    end_round(in, in->conf->inbound_poll_ms);
}

static void process_next(struct suki_inbound *in)
{
    if (in->stopped)
        return;
    if (in->i_todo >= in->n_todo) {
        in->batch_done += in->n_todo;
        if (in->more && in->batch_done < SUKI_INBOUND_BATCH) {
            /* the next window in the same poll (the lease is renewed by
             * each message done); past a batch, a new poll renews it */
            list_window(in, in->window_end + 1);
            return;
        }
        end_round_normal(in);
        return;
    }
    const struct todo *t = &in->todo[in->i_todo];
    if (t->size > SUKI_INBOUND_MAX_BYTES) {
        /* not fetched at all */
        in->msg.kind = SUKI_INBOUND_MALFORMED;
        in->msg.why = suki_strdup("larger than the limit");
        apply(in, SUKI_IN_MALFORMED, NULL, NULL);
        return;
    }
    char *url = suki_asprintf("%s;UIDVALIDITY=%s/;UID=%" PRIu64,
                              in->conf->inbound_url, in->uidvalidity, t->uid);
    in->st = ST_FETCH;
    int rc = start(in, url, NULL, SUKI_INBOUND_MAX_BYTES);
    free(url);
    if (rc < 0)
        end_round(in, in->conf->inbound_poll_ms);
}

/* ---- listing ------------------------------------------------------ */

static int cmp_todo(const void *a, const void *b)
{
    uint64_t x = ((const struct todo *)a)->uid,
             y = ((const struct todo *)b)->uid;
    return x < y ? -1 : x > y;
}

/* "* 5 FETCH (UID 12 RFC822.SIZE 3456)", the items in any order. */
static bool parse_fetch_line(const char *l, size_t n, struct todo *t)
{
    char line[256];
    if (n >= sizeof(line) || n < 8 || l[0] != '*')
        return false;
    memcpy(line, l, n);
    line[n] = '\0';
    const char *u = strstr(line, "UID ");
    const char *s = strstr(line, "RFC822.SIZE ");
    if (!u || !s || !strstr(line, " FETCH ("))
        return false;
    char *end;
    unsigned long long uid = strtoull(u + 4, &end, 10);
    if (end == u + 4 || uid == 0)
        return false;
    unsigned long long size = strtoull(s + 12, &end, 10);
    if (end == s + 12)
        return false;
    t->uid = uid;
    t->size = size;
    return true;
}

/* The number after "NAME " in the STATUS line of body, or false. */
static bool status_item(const struct suki_buf *b, const char *name, uint64_t *v,
                        char *text, size_t size)
{
    size_t nl = strlen(name);
    for (size_t i = 0; b->p && i + nl + 1 < b->len; i++) {
        if (memcmp(b->p + i, name, nl) != 0 || b->p[i + nl] != ' ' ||
            (i > 0 && b->p[i - 1] != ' ' && b->p[i - 1] != '('))
            continue;
        const char *p = b->p + i + nl + 1;
        size_t k = 0;
        while (k < 20 && i + nl + 1 + k < b->len && p[k] >= '0' && p[k] <= '9')
            k++;
        if (k == 0 || k >= 20)
            return false;
        char num[24];
        memcpy(num, p, k);
        num[k] = '\0';
        *v = strtoull(num, NULL, 10);
        if (text)
            suki_strlcpy(text, num, size);
        return true;
    }
    return false;
}

static void list_window(struct suki_inbound *in, uint64_t first);

static void on_state(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct suki_inbound *in = arg;
    if (!r)
        return;
    if (reply_error(in, rep, "recording the poll")) {
        end_round(in, in->conf->inbound_poll_ms);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[0]->integer != 1) {
        suki_warnx("inbound: lost the poller's lease; another sukid polls");
        end_round(in, in->conf->inbound_poll_ms);
        return;
    }
    const char *last = str_elem(rep, 1);
    uint64_t l = last ? strtoull(last, NULL, 10) : 0;
    if (l != in->last)
        /* a new UIDVALIDITY: everything from 1 again (the events' ids make
         * what was done before harmless) */
        suki_notice("inbound: %s has UIDVALIDITY %s; reading it from the "
                    "start",
                    in->conf->inbound_url, in->uidvalidity);
    in->last = l;
    /* UIDs grow with sequence numbers, and at most uidnext - 1 - last
     * messages have a UID above last: the first of them is at this
     * sequence number or later */
    uint64_t top = in->uidnext > 0 ? in->uidnext - 1 : 0;
    if (in->exists == 0 || top <= in->last) {
        end_round_normal(in);
        return;
    }
    uint64_t above = top - in->last;
    list_window(in, above >= in->exists ? 1 : in->exists - above + 1);
}

static void on_error_recorded(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct suki_inbound *in = arg;
    (void)rep;
    if (!r)
        return;
    end_round(in, in->conf->inbound_poll_ms);
}

/* A listing failed: say so, and record it for sukictl inbound status. */
static void list_failed(struct suki_inbound *in, const char *what, CURLcode cc)
{
    char *m = cc != CURLE_OK
                  ? suki_asprintf("%s %s: %s", what, in->conf->inbound_url,
                                  curl_easy_strerror(cc))
                  : suki_asprintf("%s %s: the server's answer is not "
                                  "understood",
                                  what, in->conf->inbound_url);
    report_error(in, m);
    char now[24];
    snprintf(now, sizeof(now), "%" PRId64, suki_now_ms());
    const char *args[5] = {"V", in->token, "", now, m};
    in->st = ST_STATE;
    poll_eval(in, on_error_recorded, args, 5);
    free(m);
}

/* STATUS answered: the mailbox's size, next UID and UIDVALIDITY. Asked
 * of the server every poll rather than read from SELECT, which libcurl
 * sends only on a new connection. */
static void on_status(struct suki_inbound *in, CURLcode cc)
{
    char v[24];
    uint64_t validity;
    if (cc != CURLE_OK ||
        !status_item(&in->body, "UIDVALIDITY", &validity, v, sizeof(v)) ||
        !status_item(&in->body, "MESSAGES", &in->exists, NULL, 0) ||
        !status_item(&in->body, "UIDNEXT", &in->uidnext, NULL, 0)) {
        list_failed(in, "asking the STATUS of", cc);
        return;
    }
    clear_error(in);
    suki_strlcpy(in->uidvalidity, v, sizeof(in->uidvalidity));
    char now[24];
    snprintf(now, sizeof(now), "%" PRId64, suki_now_ms());
    const char *args[5] = {"V", in->token, in->uidvalidity, now, ""};
    in->st = ST_STATE;
    poll_eval(in, on_state, args, 5);
}

static void on_listed(struct suki_inbound *in, CURLcode cc)
{
    if (cc != CURLE_OK) {
        list_failed(in, "listing", cc);
        return;
    }
    size_t cap = LIST_WINDOW;
    free(in->todo);
    in->todo = suki_calloc(cap, sizeof(*in->todo));
    in->n_todo = 0;
    const char *p = in->body.p, *end = p ? p + in->body.len : p;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        while (n > 0 && p[n - 1] == '\r')
            n--;
        struct todo t;
        if (parse_fetch_line(p, n, &t) && t.uid > in->last && in->n_todo < cap)
            in->todo[in->n_todo++] = t;
        p = nl ? nl + 1 : end;
    }
    qsort(in->todo, in->n_todo, sizeof(*in->todo), cmp_todo);
    in->more = in->window_end < in->exists;
    if (in->n_todo == 0 && in->more) {
        /* only messages done before in this window (UIDs with gaps) */
        list_window(in, in->window_end + 1);
        return;
    }
    process_next(in);
}

/* The messages of sequence numbers first.. (a batch at most): their UIDs
 * and sizes. By sequence number, not UID, so that one listing is at most
 * a batch of short lines (libcurl 7.88 refuses a command's answer over
 * 300 KiB, which UID FETCH last+1:* passes at some 7,000 messages). */
static void list_window(struct suki_inbound *in, uint64_t first)
{
    char cmd[80];
    uint64_t last = first + LIST_WINDOW - 1;
    if (last > in->exists)
        last = in->exists;
    in->window_end = last;
    snprintf(cmd, sizeof(cmd),
             "FETCH %" PRIu64 ":%" PRIu64 " (UID RFC822.SIZE)", first, last);
    in->st = ST_LIST;
    if (start(in, in->conf->inbound_url, cmd, LIST_MAX) < 0)
        end_round(in, in->conf->inbound_poll_ms);
}

/* NOOP first: on the connection libcurl keeps, the mailbox stays
 * selected, and STATUS of the selected mailbox answers from the session's
 * view (Dovecot does), which takes in new mail only at a command such as
 * NOOP. */
static void sync_view(struct suki_inbound *in)
{
    in->st = ST_SYNC;
    if (start(in, in->conf->inbound_url, "NOOP", 65536) < 0)
        end_round(in, in->conf->inbound_poll_ms);
}

/* STATUS "MAILBOX" (MESSAGES UIDNEXT UIDVALIDITY), the name from the url
 * (one name of letters, digits, - _ . and %XX escapes: sukid.conf(5)). */
static void status(struct suki_inbound *in)
{
    const char *u = in->conf->inbound_url;
    const char *path = strchr(strstr(u, "://") + 3, '/');
    int len = 0;
    char *name = curl_easy_unescape(NULL, path ? path + 1 : "INBOX", 0, &len);
    struct suki_buf cmd = {0};
    suki_buf_str(&cmd, "STATUS \"");
    for (int i = 0; name && i < len; i++) {
        char c = name[i];
        if (c == '"' || c == '\\')
            suki_buf_add(&cmd, "\\", 1);
        if ((unsigned char)c >= 0x20 && c != 0x7f)
            suki_buf_add(&cmd, &c, 1);
    }
    suki_buf_str(&cmd, "\" (MESSAGES UIDNEXT UIDVALIDITY)");
    curl_free(name);
    in->st = ST_STATUS;
    int rc = start(in, in->conf->inbound_url, cmd.p, 65536);
    free(cmd.p);
    if (rc < 0)
        end_round(in, in->conf->inbound_poll_ms);
}

static void on_lease(struct suki_redis *r, redisReply *rep, void *arg)
{
    struct suki_inbound *in = arg;
    if (!r)
        return;
    if (reply_error(in, rep, "taking the poller's lease")) {
        end_round(in, in->conf->inbound_poll_ms);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[0]->integer != 1) {
        /* another sukid polls; look again within a lease */
        end_round(in, in->conf->inbound_poll_ms);
        return;
    }
    const char *v = str_elem(rep, 1), *last = str_elem(rep, 2);
    suki_strlcpy(in->uidvalidity, v ? v : "", sizeof(in->uidvalidity));
    in->last = last && *last ? strtoull(last, NULL, 10) : 0;
    sync_view(in);
}

static void transfer_done(struct suki_inbound *in, CURLcode cc)
{
    switch (in->st) {
    case ST_SYNC:
        if (cc == CURLE_OK)
            status(in);
        else
            list_failed(in, "NOOP on", cc);
        break;
    case ST_STATUS:
        on_status(in, cc);
        break;
    case ST_LIST:
        on_listed(in, cc);
        break;
    case ST_FETCH:
        on_fetched(in, cc);
        break;
    case ST_FLAG:
        on_flagged(in, cc);
        break;
    default:
        break;
    }
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_inbound *in = arg;
    struct suki_daemon *D = in->D;
    if (in->stopped || in->st != ST_IDLE)
        return;
    if (!D->conf->inbound || !suki_redis_is_up(D->redis) || D->stopping) {
        schedule(in, IDLE_CHECK_MS);
        return;
    }
    in->conf = suki_conf_ref(D->conf);
    in->more = false;
    in->batch_done = 0;
    char ttl[24], now[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, lease_ttl(in->conf));
    snprintf(now, sizeof(now), "%" PRId64, suki_now_ms());
    const char *args[4] = {"L", in->token, ttl, now};
    in->st = ST_LEASE;
    poll_eval(in, on_lease, args, 4);
}

/* ---- life cycle --------------------------------------------------- */

struct suki_inbound *suki_inbound_new(struct suki_daemon *D)
{
    if (!poll_script.sha[0])
        suki_redis_script_init(&poll_script);
    if (!apply_script.sha[0])
        suki_redis_script_init(&apply_script);
    struct suki_inbound *in = suki_calloc(1, sizeof(*in));
    in->D = D;
    uint64_t a = suki_rand64(), b = suki_rand64();
    snprintf(in->token, sizeof(in->token), "%016" PRIx64 "%016" PRIx64, a, b);
    in->ce = suki_curl_ev_new(D->base, drain, in);
    SUKI_ASSERT(in->ce);
    in->multi = suki_curl_ev_multi(in->ce);
    in->poll_ev = evtimer_new(D->base, on_poll, in);
    SUKI_ASSERT(in->poll_ev);
    schedule(in, 0);
    return in;
}

void suki_inbound_stop(struct suki_inbound *in)
{
    if (!in || in->stopped)
        return;
    in->stopped = true;
    evtimer_del(in->poll_ev);
    if (in->easy) {
        curl_multi_remove_handle(in->multi, in->easy);
        curl_easy_cleanup(in->easy);
        in->easy = NULL;
    }
    suki_redis_cancel(in->D->redis, in);
    if (in->conf || in->D->conf->inbound) {
        /* let another sukid take over at once (fire and forget) */
        const struct suki_conf *c = in->conf ? in->conf : in->D->conf;
        char *kl = suki_key(c->prefix, SUKI_KEY_INBOUND_LEASE);
        char *kh = suki_key(c->prefix, SUKI_KEY_INBOUND);
        const char *av[4] = {kl, kh, "R", in->token};
        (void)suki_redis_eval(in->D->redis, &poll_script, NULL, NULL, 2, 4, av,
                              NULL);
        free(kl);
        free(kh);
    }
    msg_reset(in);
    free(in->todo);
    in->todo = NULL;
    in->n_todo = in->i_todo = 0;
    suki_conf_unref(in->conf);
    in->conf = NULL;
    in->st = ST_IDLE;
}

void suki_inbound_free(struct suki_inbound *in)
{
    if (!in)
        return;
    suki_inbound_stop(in);
    /* see the top: LOGOUT's answer is not waited for */
    for (size_t i = 0; i < in->n_socks; i++)
        shutdown(in->socks[i], SHUT_RD);
    suki_curl_ev_free(in->ce); /* may call close_sock */
    event_free(in->poll_ev);
    free(in->body.p);
    free(in->hdrs.p);
    free(in->error);
    free(in);
}
