/* dispatch_thread.c - the dispatcher's worker threads ("lanes"): each runs
 * its own libevent loop and libcurl multi handle and carries out the SMTP,
 * HTTP and spool transfers the front (dispatch.c) hands it.
 *
 * Why threads: libcurl 7.88 waits blocking, even in the multi interface,
 * for the SMTP server's reply to the final "." (smtp_done ->
 * smtp_block_statemach) and to QUIT, and the spool transport writes, fsyncs
 * and renames files. On the daemon's one loop a slow mail server or disk
 * froze intake, timers and /healthz. Here such a wait stops only the lane
 * it happens in; the front never blocks.
 *
 * The curl glue inside a lane follows curl's docs/examples/hiperfifo.c: one
 * multi handle; CURLMOPT_SOCKETFUNCTION maps each socket to a libevent event
 * (attached to the socket with curl_multi_assign); CURLMOPT_TIMERFUNCTION
 * only arms one evtimer (it never calls libcurl: a 0 timeout would
 * recurse); after every curl_multi_socket_action the finished transfers are
 * drained with curl_multi_info_read.
 *
 * Hand-over: the front appends xfers to the lane's inbox under hub->mu and
 * writes the lane's eventfd when the inbox was empty; the lane reads the
 * eventfd first and then takes the whole inbox, so no wake-up is lost.
 * Finished xfers go back the same way through hub->done and hub->efd. The
 * lane touches no global state of the daemon: no metrics, no logging, no
 * configuration; suki_rand64 keeps per-thread state. */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "agent.h"
#include "dispatch_thread.h"

#if LIBCURL_VERSION_NUM >= 0x080200
#define SUKI_CURLOPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLOWFAILS
#else
#define SUKI_CURLOPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLLOWFAILS
#endif

struct sockinfo {
    LIST_ENTRY(sockinfo) link;
    struct lane *l;
    curl_socket_t fd;
    struct event *ev;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

void suki_dispatch_copy_clean(char *dst, size_t size, const char *s, size_t n)
{
    size_t o = 0;

    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    for (size_t i = 0; i < n && o + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    dst[o] = '\0';
}

void suki_dispatch_efd_signal(int efd)
{
    uint64_t one = 1;
    ssize_t w;

    do {
        w = write(efd, &one, sizeof(one));
    } while (w < 0 && errno == EINTR);
    /* EAGAIN means the counter is already non-zero: a wake-up is pending */
}

void suki_dispatch_efd_drain(int efd)
{
    uint64_t v;
    ssize_t r;

    do {
        r = read(efd, &v, sizeof(v));
    } while (r < 0 && errno == EINTR);
}

static bool lane_stopping(struct lane *l)
{
    bool stop;

    pthread_mutex_lock(&l->hub->mu);
    stop = l->stop;
    pthread_mutex_unlock(&l->hub->mu);
    return stop;
}

/* Record x's outcome and put it on the lane's out list. */
static void finish(struct lane *l, struct xfer *x, enum suki_dispatch_status st,
                   int code, const char *reply)
{
    x->res_status = st;
    x->res_code = code;
    free(x->res_reply);
    x->res_reply = suki_strdup(reply ? reply : "");
    TAILQ_INSERT_TAIL(&l->out, x, link);
}

static void finish_cancelled(struct lane *l, struct xfer *x)
{
    x->res_cancelled = true;
    finish(l, x, SUKI_DISPATCH_TEMPFAIL, 0, SUKI_DISPATCH_CANCELLED);
}

static void finish_local(struct lane *l, struct xfer *x,
                         enum suki_dispatch_status st, const char *reply)
{
    x->local = true;
    finish(l, x, st, 0, reply);
}

/* Post the finished xfers to the front. The front's eventfd is written only
 * when its list was empty: it reads the eventfd before taking the list. */
static void lane_flush(struct lane *l)
{
    struct hub *h = l->hub;
    bool was_empty;

    if (TAILQ_EMPTY(&l->out))
        return;
    pthread_mutex_lock(&h->mu);
    was_empty = TAILQ_EMPTY(&h->done);
    TAILQ_CONCAT(&h->done, &l->out, link);
    pthread_mutex_unlock(&h->mu);
    if (was_empty)
        suki_dispatch_efd_signal(h->efd);
}

static CURL *easy_get(struct lane *l)
{
    if (l->n_pool > 0)
        return l->pool[--l->n_pool];
    return curl_easy_init();
}

/* Give x's easy handle back (reset: no pointer into x survives). */
static void easy_put(struct lane *l, struct xfer *x)
{
    CURL *e = x->easy;

    x->easy = NULL;
    if (!e)
        return;
    if (l->n_pool < SUKI_DISPATCH_POOL_MAX) {
        curl_easy_reset(e);
        l->pool[l->n_pool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* ------------------------------------------------------------------ */
/* spool transport                                                     */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Spool files written (fsynced and renamed into place) whose directory has
 * not been fsynced yet: they are reported only after it has, so a SENT
 * spool message is durable. One directory fsync covers a chunk of files. */
struct spool_sync {
    char *dir;       /* owned: the directory dirfd is open on, or NULL */
    int dirfd;       /* -1 when none is open */
    struct xq wrote; /* renamed into place, waiting for the fsync */
    size_t n;
};

/* Files per directory fsync (and per hand-back of their results). */
#define SPOOL_CHUNK 32

static void spool_sync_init(struct spool_sync *ss)
{
    ss->dir = NULL;
    ss->dirfd = -1;
    TAILQ_INIT(&ss->wrote);
    ss->n = 0;
}

/* fsync the directory, report the files written into it, close it. */
static void spool_sync(struct lane *l, struct spool_sync *ss)
{
    struct xfer *x;
    char *why = NULL;

    if (ss->dirfd < 0)
        return;
    if (ss->n > 0 && fsync(ss->dirfd) != 0)
        why = suki_asprintf("spool: fsync %s: %s", ss->dir, strerror(errno));
    close(ss->dirfd);
    ss->dirfd = -1;
    while ((x = TAILQ_FIRST(&ss->wrote)) != NULL) {
        TAILQ_REMOVE(&ss->wrote, x, link);
        if (why) {
            /* the file is in place; only its durability is in doubt */
            finish(l, x, SUKI_DISPATCH_TEMPFAIL, 0, why);
        } else {
            x->res_status = SUKI_DISPATCH_SENT; /* res_reply set when
                                                   written */
            x->res_code = 0;
            TAILQ_INSERT_TAIL(&l->out, x, link);
        }
    }
    ss->n = 0;
    free(why);
    free(ss->dir);
    ss->dir = NULL;
}

/* Write x's message as DIR/<name>.eml: temporary file created with O_EXCL,
 * fsync, rename over any earlier copy (a retry replaces, never duplicates);
 * x then waits on ss for the directory's fsync (spool_sync). Blocking, on
 * the lane. The directory is opened once per chunk and the names are
 * resolved relative to it. */
static void spool_deliver(struct lane *l, struct xfer *x, struct spool_sync *ss)
{
    const char *dir = x->conf->spool_dir;
    char name[SUKI_DISPATCH_NAME_MAX];
    char tmp[96];
    char *reply = NULL;
    int fd = -1, rc;

    if (suki_dispatch_spool_name(x->message_id, name, sizeof(name)) != 0) {
        finish(l, x, SUKI_DISPATCH_PERMFAIL, 0,
               "spool: message has no usable Message-ID");
        return;
    }
    snprintf(tmp, sizeof(tmp), "tmp-%ld-%u-%llu-%016llx", (long)l->pid, l->id,
             (unsigned long long)++l->seq, (unsigned long long)suki_rand64());
    if (ss->dirfd >= 0 && strcmp(ss->dir, dir) != 0)
        spool_sync(l, ss);
    if (ss->dirfd < 0) {
        ss->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ss->dirfd < 0) {
            reply = suki_asprintf("spool: create %s/%s: %s", dir, tmp,
                                  strerror(errno));
            goto out;
        }
        ss->dir = suki_strdup(dir);
    }
    fd = openat(ss->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        reply =
            suki_asprintf("spool: create %s/%s: %s", dir, tmp, strerror(errno));
        goto out;
    }
    rc = write_all(fd, x->body, x->body_len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0) {
        reply =
            suki_asprintf("spool: write %s/%s: %s", dir, tmp, strerror(-rc));
        unlinkat(ss->dirfd, tmp, 0);
        goto out;
    }
    if (renameat(ss->dirfd, tmp, ss->dirfd, name) != 0) {
        reply = suki_asprintf("spool: rename to %s/%s: %s", dir, name,
                              strerror(errno));
        unlinkat(ss->dirfd, tmp, 0);
        goto out;
    }
    free(x->res_reply);
    x->res_reply = suki_asprintf("spooled %s/%s", dir, name);
    TAILQ_INSERT_TAIL(&ss->wrote, x, link);
    if (++ss->n >= SPOOL_CHUNK)
        spool_sync(l, ss);
    return;
out:
    finish(l, x, SUKI_DISPATCH_TEMPFAIL, 0, reply);
    free(reply);
}

/* ------------------------------------------------------------------ */
/* SMTP transport                                                      */

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    struct xfer *x = userp;
    size_t n = size * nitems;
    size_t left = x->body_len - x->body_off;

    if (n > left)
        n = left;
    memcpy(buf, x->body + x->body_off, n);
    x->body_off += n;
    return n;
}

/* curl may rewind when it retries on a reused connection that died. */
static int seek_cb(void *userp, curl_off_t offset, int origin)
{
    struct xfer *x = userp;

    if (origin != SEEK_SET || offset < 0 || (size_t)offset > x->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    x->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static bool cmd_is(const char *s, size_t n, const char *verb)
{
    size_t vl = strlen(verb);
    return n >= vl && strncasecmp(s, verb, vl) == 0;
}

/* Follow the SMTP dialogue: commands out (CURLINFO_HEADER_OUT) tell which
 * command the next reply (CURLINFO_HEADER_IN, one line per call) answers.
 * curl sends RCPT TO one at a time in list order, so the n-th RCPT reply
 * belongs to the n-th recipient. AUTH lines are looked at for their verb
 * only and never stored. */
static int smtp_debug_cb(CURL *e, curl_infotype type, char *data, size_t size,
                         void *userp)
{
    struct xfer *x = userp;
    (void)e;

    if (type == CURLINFO_HEADER_OUT) {
        if (cmd_is(data, size, "MAIL FROM"))
            x->stage = SUKI_SMTP_MAIL;
        else if (cmd_is(data, size, "RCPT TO")) {
            x->stage = SUKI_SMTP_RCPT;
            x->cur_rcpt = x->rcpt_sent++;
        } else if (cmd_is(data, size, "DATA"))
            x->stage = SUKI_SMTP_DATA;
        else if (cmd_is(data, size, "EHLO") || cmd_is(data, size, "HELO"))
            x->stage = SUKI_SMTP_EHLO;
        else if (cmd_is(data, size, "STARTTLS"))
            x->stage = SUKI_SMTP_STARTTLS;
        else if (cmd_is(data, size, "AUTH"))
            x->stage = SUKI_SMTP_AUTH;
        else if (cmd_is(data, size, "QUIT"))
            x->stage = SUKI_SMTP_OTHER;
        /* else: an AUTH continuation; keep the stage */
        return 0;
    }
    if (type != CURLINFO_HEADER_IN)
        return 0;
    /* "250-..." continues a multi-line reply; the final line decides */
    if (size < 3 || !isdigit((unsigned char)data[0]) ||
        !isdigit((unsigned char)data[1]) || !isdigit((unsigned char)data[2]))
        return 0;
    if (size > 3 && data[3] == '-')
        return 0;
    int code = (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0');
    if (x->stage == SUKI_SMTP_OTHER)
        return 0; /* QUIT while closing: keep the reply that mattered */
    x->last_code = code;
    x->last_stage = x->stage;
    suki_dispatch_copy_clean(x->last_reply, sizeof(x->last_reply), data, size);
    if (x->stage == SUKI_SMTP_RCPT && x->cur_rcpt < x->n_rcpt) {
        x->rcpt_code[x->cur_rcpt] = code;
        free(x->rcpt_reply[x->cur_rcpt]);
        x->rcpt_reply[x->cur_rcpt] = suki_strdup(x->last_reply);
    }
    if (x->stage == SUKI_SMTP_DATA && code == 354)
        x->stage = SUKI_SMTP_EOD;
    return 0;
}

#define SETOPT(e, opt, val)                                                    \
    do {                                                                       \
        if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)                   \
            bad = #opt;                                                        \
    } while (0)

static const char *setup_tls(CURL *e, const struct tconf *c)
{
    const char *bad = NULL;
    if (c->ca_file)
        SETOPT(e, CURLOPT_CAINFO, c->ca_file);
    SETOPT(e, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
    SETOPT(e, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
    return bad;
}

static const char *setup_smtp(struct xfer *x, CURL *e)
{
    const struct tconf *c = x->conf;
    const char *bad = NULL;
    long usessl = CURLUSESSL_ALL;

    if (c->starttls == SUKI_STARTTLS_TRY)
        usessl = CURLUSESSL_TRY;
    else if (c->starttls == SUKI_STARTTLS_OFF)
        usessl = CURLUSESSL_NONE;
    SETOPT(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    SETOPT(e, CURLOPT_USE_SSL, usessl);
    if (c->username)
        SETOPT(e, CURLOPT_USERNAME, c->username);
    if (c->password)
        SETOPT(e, CURLOPT_PASSWORD, c->password);
    SETOPT(e, CURLOPT_SASL_IR, 1L);
    const char *tbad = setup_tls(e, c);
    if (tbad)
        bad = tbad;
    SETOPT(e, CURLOPT_MAIL_FROM, x->from);
    SETOPT(e, CURLOPT_MAIL_RCPT, x->rcpt_list);
    /* a 5xx for one recipient must not fail (or resend to) the others */
    SETOPT(e, SUKI_CURLOPT_RCPT_ALLOWFAILS, 1L);
    SETOPT(e, CURLOPT_UPLOAD, 1L);
    SETOPT(e, CURLOPT_READFUNCTION, read_cb);
    SETOPT(e, CURLOPT_READDATA, x);
    SETOPT(e, CURLOPT_SEEKFUNCTION, seek_cb);
    SETOPT(e, CURLOPT_SEEKDATA, x);
    SETOPT(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_len);
    SETOPT(e, CURLOPT_DEBUGFUNCTION, smtp_debug_cb);
    SETOPT(e, CURLOPT_DEBUGDATA, x);
    SETOPT(e, CURLOPT_VERBOSE, 1L);
    return bad;
}

/* The outcome of an SMTP transfer; the front turns the trace into
 * per-recipient results. */
static void smtp_finish(struct lane *l, struct xfer *x, CURLcode cc)
{
    char reply[SUKI_DISPATCH_REPLY_MAX + 160];
    const char *err = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
    enum suki_dispatch_status st;
    long rcode = 0;
    int code;

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &rcode);
    code = x->last_code ? x->last_code : (int)rcode;
    st = suki_dispatch_classify_smtp(cc, code, x->last_stage);
    /* With RCPT failures allowed, curl stops at RCPT only when every
     * recipient was refused (the front decides from the trace); anything
     * else ending there is a broken connection. */
    if (cc != CURLE_OK && x->last_stage == SUKI_SMTP_RCPT)
        st = SUKI_DISPATCH_TEMPFAIL;
    if (cc == CURLE_OK || code >= 400) {
        snprintf(reply, sizeof(reply), "%s", x->last_reply);
    } else if (cc == CURLE_USE_SSL_FAILED) {
        snprintf(reply, sizeof(reply),
                 "TLS required (starttls = required) but the server does not "
                 "offer STARTTLS; nothing was sent: %s",
                 err);
    } else if (suki_dispatch_curl_is_tls(cc)) {
        snprintf(reply, sizeof(reply),
                 "TLS failure, nothing was sent (check ca_file, tls_verify "
                 "and the server certificate of transport %s): %s",
                 x->conf->name, err);
    } else {
        snprintf(reply, sizeof(reply), "%s", err);
    }
    if (cc != CURLE_OK)
        code = code >= 400 ? code : 0;
    finish(l, x, st, code, reply);
}

/* ------------------------------------------------------------------ */
/* HTTP transport                                                      */

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    size_t room = SUKI_DISPATCH_HTTP_KEEP - x->http_body_len;
    size_t k = n < room ? n : room;

    memcpy(x->http_body + x->http_body_len, ptr, k);
    x->http_body_len += k;
    x->http_body[x->http_body_len] = '\0';
    return n;
}

static size_t http_header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    static const char ra[] = "retry-after:";

    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue, say) starts over */
        x->retry_after[0] = '\0';
        x->http_body_len = 0;
        x->http_body[0] = '\0';
    } else if (n > sizeof(ra) - 1 &&
               strncasecmp(ptr, ra, sizeof(ra) - 1) == 0) {
        suki_dispatch_copy_clean(x->retry_after, sizeof(x->retry_after),
                                 ptr + sizeof(ra) - 1, n - (sizeof(ra) - 1));
    }
    return n;
}

static const char *setup_http(struct xfer *x, CURL *e)
{
    const struct tconf *c = x->conf;
    const char *bad = NULL;

    SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(e, CURLOPT_POST, 1L);
    SETOPT(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
    SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
    SETOPT(e, CURLOPT_HTTPHEADER, c->headers);
    SETOPT(e, CURLOPT_WRITEFUNCTION, http_write_cb);
    SETOPT(e, CURLOPT_WRITEDATA, x);
    SETOPT(e, CURLOPT_HEADERFUNCTION, http_header_cb);
    SETOPT(e, CURLOPT_HEADERDATA, x);
    SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (c->username) {
        SETOPT(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(e, CURLOPT_USERNAME, c->username);
        if (c->password)
            SETOPT(e, CURLOPT_PASSWORD, c->password);
    }
    const char *tbad = setup_tls(e, c);
    if (tbad)
        bad = tbad;
    return bad;
}

static void http_finish(struct lane *l, struct xfer *x, CURLcode cc)
{
    char reply[SUKI_DISPATCH_REPLY_MAX + 160];
    char body[SUKI_DISPATCH_HTTP_KEEP + 1];
    long status = 0;
    const char *err = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
    enum suki_dispatch_status st;
    int code = 0;

    if (cc == CURLE_OK)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    st = suki_dispatch_classify_http(cc, status);
    x->res_retry_after_ms = 0;
    if (cc == CURLE_OK) {
        code = (int)status;
        suki_dispatch_copy_clean(body, sizeof(body), x->http_body,
                                 x->http_body_len);
        if (body[0])
            snprintf(reply, sizeof(reply), "HTTP %ld: %s", status, body);
        else
            snprintf(reply, sizeof(reply), "HTTP %ld", status);
        if ((status == 429 || status == 503) && x->retry_after[0]) {
            int64_t ms;
            if (suki_dispatch_parse_retry_after(x->retry_after, suki_now_ms(),
                                                &ms) == 0)
                x->res_retry_after_ms = ms;
        }
    } else if (suki_dispatch_curl_is_tls(cc)) {
        snprintf(reply, sizeof(reply),
                 "TLS failure, nothing was sent (check ca_file, tls_verify "
                 "and the server certificate of transport %s): %s",
                 x->conf->name, err);
    } else {
        snprintf(reply, sizeof(reply), "%s", err);
    }
    finish(l, x, st, code, reply);
}

/* ------------------------------------------------------------------ */
/* socket bookkeeping                                                  */

/* Whether e still names the socket it was opened as (see struct lane_fd):
 * every socket has an inode of its own, which no later socket reuses while
 * the number could still be on a list. */
static bool lane_fd_same(const struct lane_fd *e)
{
    struct stat st;

    return fstat(e->fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
           st.st_dev == e->dev && st.st_ino == e->ino;
}

/* libcurl's sockets are tracked so that a stop can end any wait on them
 * (suki_dispatch_lane_stop). The callbacks live in each connection, which
 * may outlive its easy handle, so their data is the lane itself. Once a
 * stop was asked for no new socket is opened, so none escapes the
 * shutdown. Entries whose socket libcurl closed without the callback are
 * dropped here, so the list does not grow with every cut connect. */
static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *a)
{
    struct lane *l = clientp;
    int fd = CURL_SOCKET_BAD;
    struct stat st;
    (void)purpose;

    pthread_mutex_lock(&l->hub->mu);
    if (l->stop)
        goto out;
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0) {
        fd = CURL_SOCKET_BAD;
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        fd = CURL_SOCKET_BAD;
        goto out;
    }
    for (size_t i = 0; i < l->n_fds;) {
        if (l->fds[i].fd == fd || !lane_fd_same(&l->fds[i]))
            l->fds[i] = l->fds[--l->n_fds];
        else
            i++;
    }
    if (l->n_fds == l->cap_fds) {
        l->cap_fds = l->cap_fds ? l->cap_fds * 2 : 8;
        l->fds = suki_realloc(l->fds, l->cap_fds * sizeof(*l->fds));
    }
    l->fds[l->n_fds++] = (struct lane_fd){fd, st.st_dev, st.st_ino};
out:
    pthread_mutex_unlock(&l->hub->mu);
    return fd;
}

static int close_socket_cb(void *clientp, curl_socket_t fd)
{
    struct lane *l = clientp;

    pthread_mutex_lock(&l->hub->mu);
    for (size_t i = 0; i < l->n_fds; i++) {
        if (l->fds[i].fd == fd) {
            l->fds[i] = l->fds[--l->n_fds];
            break;
        }
    }
    pthread_mutex_unlock(&l->hub->mu);
    return close(fd);
}

/* Shut down the read side of every socket of l: a wait for a reply ends at
 * once (the read sees EOF), and a QUIT can still be sent. Only sockets
 * that are still the lane's: a stale number may be another lane's
 * connection in the middle of a transfer, which would then fail "response
 * reading failed". Caller holds hub->mu. */
static void shut_reads_locked(struct lane *l)
{
    for (size_t i = 0; i < l->n_fds;) {
        if (lane_fd_same(&l->fds[i])) {
            shutdown(l->fds[i].fd, SHUT_RD);
            i++;
        } else {
            l->fds[i] = l->fds[--l->n_fds];
        }
    }
}

/* libcurl 7.88 puts an SMTP connection back into its cache even after a
 * "server response timeout", and the next message then reads the late
 * reply to the old one as the answer to its MAIL FROM. So after any failed
 * transfer, kill the connection it used: shutdown() leaves the descriptor
 * to libcurl, whose liveness check then sees EOF and never reuses it. Call
 * before curl_multi_remove_handle (ACTIVESOCKET needs the multi handle). */
static void kill_connection(CURL *e)
{
    curl_socket_t s = CURL_SOCKET_BAD;

    if (curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &s) == CURLE_OK &&
        s != CURL_SOCKET_BAD)
        shutdown(s, SHUT_RDWR);
}

/* ------------------------------------------------------------------ */
/* running transfers                                                   */

/* Start x in l: a spool write now (reported with its chunk, ss), SMTP and
 * HTTP in the multi handle. */
static void run(struct lane *l, struct xfer *x, struct spool_sync *ss)
{
    const char *bad = NULL;
    CURL *e;

    if (x->conf->kind == SUKI_TRANSPORT_SPOOL) {
        spool_deliver(l, x, ss);
        return;
    }
    /* idle connections kept for reuse: this transport's worth */
    long want = x->conf->max_connections > 4 ? x->conf->max_connections : 4;
    if (want != l->maxconnects) {
        curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, want);
        l->maxconnects = want;
    }
    e = easy_get(l);
    if (!e) {
        finish_local(l, x, SUKI_DISPATCH_TEMPFAIL, "curl_easy_init failed");
        return;
    }
    x->easy = e;
    x->errbuf[0] = '\0';
    SETOPT(e, CURLOPT_PRIVATE, (void *)x);
    SETOPT(e, CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* an aborted transfer does not wait for a name lookup to finish */
    SETOPT(e, CURLOPT_QUICK_EXIT, 1L);
#endif
    SETOPT(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
    SETOPT(e, CURLOPT_OPENSOCKETDATA, l);
    SETOPT(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
    SETOPT(e, CURLOPT_CLOSESOCKETDATA, l);
    SETOPT(e, CURLOPT_TIMEOUT_MS, (long)x->conf->timeout_ms);
    SETOPT(e, CURLOPT_URL, x->conf->url);
    const char *kbad = x->conf->kind == SUKI_TRANSPORT_SMTP ? setup_smtp(x, e)
                                                            : setup_http(x, e);
    if (kbad)
        bad = kbad;
    if (bad) {
        char *msg = suki_asprintf("curl option %s not supported", bad);
        easy_put(l, x);
        finish_local(l, x, SUKI_DISPATCH_TEMPFAIL, msg);
        free(msg);
        return;
    }
    TAILQ_INSERT_TAIL(&l->running, x, link);
    CURLMcode mc = curl_multi_add_handle(l->multi, e);
    if (mc != CURLM_OK) {
        TAILQ_REMOVE(&l->running, x, link);
        char *msg =
            suki_asprintf("curl_multi_add_handle: %s", curl_multi_strerror(mc));
        easy_put(l, x);
        finish_local(l, x, SUKI_DISPATCH_TEMPFAIL, msg);
        free(msg);
    }
}

#undef SETOPT

/* Take the finished transfers out of the multi handle. A failure after a
 * stop was asked for is reported as cancelled: it is most likely the
 * shutdown of its socket. */
static void drain(struct lane *l)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode cc = msg->data.result;
        char *priv = NULL;
        struct xfer *x;

        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        x = (struct xfer *)(void *)priv;
        if (cc != CURLE_OK && x->conf->kind == SUKI_TRANSPORT_SMTP)
            kill_connection(e); /* not HTTP: an h2 connection is shared */
        curl_multi_remove_handle(l->multi, e);
        TAILQ_REMOVE(&l->running, x, link);
        if (cc != CURLE_OK && lane_stopping(l))
            finish_cancelled(l, x);
        else if (x->conf->kind == SUKI_TRANSPORT_SMTP)
            smtp_finish(l, x, cc);
        else
            http_finish(l, x, cc);
        easy_put(l, x);
    }
    lane_flush(l);
}

/* ------------------------------------------------------------------ */
/* curl multi glue (hiperfifo)                                         */

static void sock_event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct sockinfo *si = arg;
    struct lane *l = si->l;
    int action = 0, running = 0;

    if (kind & EV_READ)
        action |= CURL_CSELECT_IN;
    if (kind & EV_WRITE)
        action |= CURL_CSELECT_OUT;
    /* si may be freed inside (CURL_POLL_REMOVE); do not touch it after */
    curl_multi_socket_action(l->multi, fd, action, &running);
    drain(l);
}

static void timer_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct lane *l = arg;
    int running = 0;
    (void)fd;
    (void)kind;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(l);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arm or delete the evtimer. */
static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct lane *l = userp;
    (void)multi;
    if (timeout_ms < 0)
        evtimer_del(l->timer);
    else
        suki_timer_ms(l->timer, timeout_ms);
    return 0;
}

static void sock_free(struct sockinfo *si)
{
    LIST_REMOVE(si, link);
    if (si->ev)
        event_free(si->ev);
    free(si);
}

/* CURLMOPT_SOCKETFUNCTION: keep one persistent event per socket watching
 * what curl asks for. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
    struct lane *l = userp;
    struct sockinfo *si = sockp;
    short kind;
    (void)e;

    if (what == CURL_POLL_REMOVE) {
        if (si)
            sock_free(si);
        return 0;
    }
    kind = EV_PERSIST;
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (!si) {
        si = suki_calloc(1, sizeof(*si));
        si->l = l;
        si->fd = s;
        LIST_INSERT_HEAD(&l->socks, si, link);
        curl_multi_assign(l->multi, s, si);
    }
    if (si->ev) {
        event_del(si->ev);
        if (event_assign(si->ev, l->base, s, kind, sock_event_cb, si) != 0)
            return -1;
    } else {
        si->ev = event_new(l->base, s, kind, sock_event_cb, si);
        if (!si->ev)
            return -1;
    }
    if (event_add(si->ev, NULL) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* the lane's loop                                                     */

/* The inbox has work, or a stop was asked for. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lane *l = arg;
    struct xq batch;
    struct xfer *x;
    struct spool_sync ss;
    bool stop;

    (void)fd;
    (void)what;
    spool_sync_init(&ss);
    suki_dispatch_efd_drain(l->efd);
    TAILQ_INIT(&batch);
    pthread_mutex_lock(&l->hub->mu);
    TAILQ_CONCAT(&batch, &l->inbox, link);
    stop = l->stop;
    pthread_mutex_unlock(&l->hub->mu);
    while ((x = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, x, link);
        /* A batch may hold a whole spool window: a stop asked for
         * meanwhile waits for the file being written only. */
        if (!stop && x->conf->kind == SUKI_TRANSPORT_SPOOL && lane_stopping(l))
            stop = true;
        if (stop)
            finish_cancelled(l, x);
        else
            run(l, x, &ss);
        if (ss.n == 0)
            lane_flush(l); /* spool results go back by the chunk */
    }
    spool_sync(l, &ss);
    lane_flush(l);
    if (!stop)
        return;
    while ((x = TAILQ_FIRST(&l->running)) != NULL) {
        TAILQ_REMOVE(&l->running, x, link);
        curl_multi_remove_handle(l->multi, x->easy);
        easy_put(l, x);
        finish_cancelled(l, x);
    }
    lane_flush(l);
    event_base_loopbreak(l->base);
}

/* Free the lane's loop and curl state (the thread's last act before it
 * reports itself exited). */
static void lane_teardown(struct lane *l)
{
    struct sockinfo *si;

    /* curl_multi_cleanup closes the cached connections; for SMTP it sends
     * QUIT and then blocks waiting for the reply, for as long as a hung
     * server likes. Shutting down the read side first keeps the QUIT but
     * makes that wait end at once. */
    pthread_mutex_lock(&l->hub->mu);
    shut_reads_locked(l);
    pthread_mutex_unlock(&l->hub->mu);
    if (l->multi)
        curl_multi_cleanup(l->multi); /* may call sock_cb */
    l->multi = NULL;
    while ((si = LIST_FIRST(&l->socks)) != NULL)
        sock_free(si);
    for (size_t i = 0; i < l->n_pool; i++)
        curl_easy_cleanup(l->pool[i]);
    l->n_pool = 0;
    if (l->wake)
        event_free(l->wake);
    if (l->timer)
        event_free(l->timer);
    l->wake = l->timer = NULL;
    if (l->base)
        event_base_free(l->base);
    l->base = NULL;
}

static void *lane_main(void *arg)
{
    struct lane *l = arg;
    struct hub *h = l->hub;

    event_base_dispatch(l->base);
    lane_teardown(l);
    lane_flush(l);
    pthread_mutex_lock(&h->mu);
    l->exited = true;
    pthread_mutex_unlock(&h->mu);
    /* l may be freed from here on */
    suki_dispatch_efd_signal(h->efd);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* front side                                                          */

struct lane *suki_dispatch_lane_new(struct hub *hub, struct suki_err *err)
{
    struct lane *l = suki_calloc(1, sizeof(*l));
    sigset_t all, old;
    int rc;

    l->hub = hub;
    l->id = hub->next_id++;
    l->pid = getpid();
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    TAILQ_INIT(&l->inbox);
    TAILQ_INIT(&l->running);
    TAILQ_INIT(&l->out);
    TAILQ_INIT(&l->outbox);
    LIST_INIT(&l->socks);
    if (l->efd < 0) {
        suki_err_set(err, -errno, "dispatch: eventfd: %s", strerror(errno));
        goto fail;
    }
    l->base = event_base_new();
    l->multi = curl_multi_init();
    if (!l->base || !l->multi) {
        suki_err_set(err, -ENOMEM,
                     "dispatch: cannot create a worker's event "
                     "loop or curl multi handle");
        goto fail;
    }
    l->wake = event_new(l->base, l->efd, EV_READ | EV_PERSIST, wake_cb, l);
    l->timer = evtimer_new(l->base, timer_cb, l);
    if (!l->wake || !l->timer || event_add(l->wake, NULL) != 0) {
        suki_err_set(err, -ENOMEM, "dispatch: cannot create a worker's events");
        goto fail;
    }
    if (curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, sock_cb) ||
        curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l) ||
        curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb) ||
        curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l)) {
        suki_err_set(err, -EINVAL, "dispatch: curl_multi_setopt failed");
        goto fail;
    }
    /* signals are for the main thread's loop */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&l->thread, NULL, lane_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        suki_err_set(err, -rc, "dispatch: cannot start a worker thread: %s",
                     strerror(rc));
        goto fail;
    }
    return l;
fail:
    lane_teardown(l);
    if (l->efd >= 0)
        close(l->efd);
    free(l);
    return NULL;
}

void suki_dispatch_lane_post(struct lane *l, struct xq *batch)
{
    bool was_empty;

    if (l->agent) {
        suki_agent_lane_post(l, batch);
        return;
    }
    if (TAILQ_EMPTY(batch))
        return;
    pthread_mutex_lock(&l->hub->mu);
    was_empty = TAILQ_EMPTY(&l->inbox);
    TAILQ_CONCAT(&l->inbox, batch, link);
    pthread_mutex_unlock(&l->hub->mu);
    if (was_empty)
        suki_dispatch_efd_signal(l->efd);
}

void suki_dispatch_lane_stop(struct lane *l, bool abort)
{
    if (l->agent) {
        suki_agent_lane_stop(l, abort);
        return;
    }
    pthread_mutex_lock(&l->hub->mu);
    l->stop = true;
    if (abort)
        shut_reads_locked(l);
    pthread_mutex_unlock(&l->hub->mu);
    suki_dispatch_efd_signal(l->efd);
}

bool suki_dispatch_lane_exited(struct lane *l)
{
    bool e;

    pthread_mutex_lock(&l->hub->mu);
    e = l->exited;
    pthread_mutex_unlock(&l->hub->mu);
    return e;
}

void suki_dispatch_lane_join(struct lane *l)
{
    if (!l)
        return;
    if (l->agent) {
        suki_agent_lane_join(l);
        return;
    }
    pthread_join(l->thread, NULL);
    close(l->efd);
    free(l->fds);
    free(l);
}
