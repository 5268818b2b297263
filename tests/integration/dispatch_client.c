/* dispatch_client.c - send N messages through suki_dispatch and print one
 * line per result. Driven by tests/integration/dispatch_*.sh against real
 * servers; also handy by hand:
 *
 *   dispatch_client --url smtp://127.0.0.1:2525 --starttls off \
 *       --from a@x.test --rcpt b@y.test --count 10 --max-conn 2
 *
 * Output (one line each, fields space-separated, reply last):
 *   RESULT i=N id=ID status=sent|tempfail|permfail code=N retry_after_ms=N
 *          cancelled=0|1 rcpt_failed=N attempt=N reply=TEXT
 *   RCPT i=N addr=A status=S code=N reply=TEXT        (SMTP, per recipient)
 *   REFUSED i=N rc=-ERRNO                  (suki_dispatch_send said no)
 *   STATE name=T breaker=S fails=N queued=N in_flight=N sent=N tempfail=N
 *         permfail=N                                  (with --state)
 *   SUMMARY sent=N tempfail=N permfail=N cancelled=N refused=N elapsed_ms=N
 * Exit status 0 unless the arguments or the setup are wrong (2). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf.h"
#include "deliver.h"
#include "log.h"
#include "util.h"

#define MAX_RCPT 16
#define MAX_HDR 8

struct client {
    struct event_base *base;
    struct suki_dispatch *d;
    struct suki_transport_conf tc;
    const char *rcpt[MAX_RCPT];
    size_t n_rcpt;
    const char *from;
    long count, campaign, resend, size;
    long sequential;
    long resend_delay_ms;
    const char *msgid_prefix;
    int same_msgid;
    char *body_file; /* owned contents */
    size_t body_file_len;
    long next; /* next message index to send */
    long done; /* results printed (final ones) */
    long refused;
    long n_sent, n_temp, n_perm, n_cancel;
    int *attempts;
    struct event *deadline;
    struct pending_resend *resends; /* waiting to be sent again */
    int64_t t0;
    int print_state;
};

struct msgctx {
    struct client *c;
    long i;
    char *id;
    char *body;
    size_t len;
};

static void send_one(struct client *c, long i, int attempt);

static char *build_body(struct client *c, long i, const char *id, size_t *len)
{
    char *b;
    size_t cap, o = 0;

    if (c->body_file) {
        *len = c->body_file_len;
        b = suki_malloc(*len + 1);
        memcpy(b, c->body_file, *len);
        b[*len] = '\0';
        return b;
    }
    if (c->tc.kind == SUKI_TRANSPORT_HTTP) {
        b = suki_asprintf("{\"i\":%ld,\"id\":\"%s\"}", i, id);
        *len = strlen(b);
        return b;
    }
    cap = (size_t)c->size + 1024;
    b = suki_malloc(cap);
    o += (size_t)snprintf(b + o, cap - o,
                          "From: <%s>\r\nTo: <%s>\r\nSubject: test %ld\r\n"
                          "Message-ID: %s\r\nMIME-Version: 1.0\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n\r\n",
                          c->from ? c->from : "", c->n_rcpt ? c->rcpt[0] : "",
                          i, id);
    /* a leading-dot line checks that dot-stuffing works */
    o += (size_t)snprintf(b + o, cap - o, ".leading dot line\r\n");
    while (o + 80 + 64 < (size_t)c->size && o + 80 + 64 < cap) {
        memset(b + o, 'x', 76);
        o += 76;
        b[o++] = '\r';
        b[o++] = '\n';
    }
    o += (size_t)snprintf(b + o, cap - o, "END %s\r\n", id);
    *len = o;
    return b;
}

static void finish_if_done(struct client *c)
{
    if (c->done + c->refused >= c->count)
        event_base_loopbreak(c->base);
}

struct pending_resend {
    struct client *c;
    long i;
    int attempt;
    struct event *ev;
    struct pending_resend *next, **prevp; /* in c->resends */
};

static void resend_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pending_resend *p = arg;
    (void)fd;
    (void)what;
    *p->prevp = p->next;
    if (p->next)
        p->next->prevp = p->prevp;
    send_one(p->c, p->i, p->attempt);
    event_free(p->ev);
    free(p);
}

static void result_cb(const struct suki_dispatch_result *r, void *arg)
{
    struct msgctx *m = arg;
    struct client *c = m->c;
    long i = m->i;
    int attempt = c->attempts[i];

    printf("RESULT i=%ld id=%s status=%s code=%d retry_after_ms=%lld "
           "cancelled=%d rcpt_failed=%zu attempt=%d elapsed_ms=%lld "
           "reply=%s\n",
           i, r->message_id, suki_dispatch_status_name(r->status), r->code,
           (long long)r->retry_after_ms, r->cancelled ? 1 : 0, r->n_rcpt_failed,
           attempt, (long long)(suki_mono_ms() - c->t0), r->reply);
    for (size_t k = 0; k < r->n_rcpts; k++)
        printf("RCPT i=%ld addr=%s status=%s code=%d reply=%s\n", i,
               r->rcpts[k].addr, suki_dispatch_status_name(r->rcpts[k].status),
               r->rcpts[k].code, r->rcpts[k].reply);
    fflush(stdout);
    free(m->id);
    free(m->body);
    free(m);

    if (r->status == SUKI_DISPATCH_TEMPFAIL && !r->cancelled &&
        attempt < c->resend) {
        struct pending_resend *p = suki_calloc(1, sizeof(*p));
        struct timeval tv;
        int64_t ms = r->retry_after_ms ? r->retry_after_ms : c->resend_delay_ms;
        p->c = c;
        p->i = i;
        p->attempt = attempt + 1;
        p->ev = evtimer_new(c->base, resend_cb, p);
        p->next = c->resends;
        if (p->next)
            p->next->prevp = &p->next;
        p->prevp = &c->resends;
        c->resends = p;
        tv.tv_sec = (time_t)(ms / 1000);
        tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
        evtimer_add(p->ev, &tv);
        return;
    }
    if (r->cancelled)
        c->n_cancel++;
    else if (r->status == SUKI_DISPATCH_SENT)
        c->n_sent++;
    else if (r->status == SUKI_DISPATCH_TEMPFAIL)
        c->n_temp++;
    else
        c->n_perm++;
    c->done++;
    if (c->sequential && !r->cancelled && c->next < c->count)
        send_one(c, c->next++, 0);
    finish_if_done(c);
}

static void send_one(struct client *c, long i, int attempt)
{
    struct suki_outmsg m;
    struct msgctx *x = suki_calloc(1, sizeof(*x));
    int rc;

    x->c = c;
    x->i = i;
    if (c->same_msgid)
        x->id = suki_asprintf("<%s@suki.test>", c->msgid_prefix);
    else
        x->id = suki_asprintf("<%s-%ld@suki.test>", c->msgid_prefix, i);
    x->body = build_body(c, i, x->id, &x->len);
    c->attempts[i] = attempt;
    memset(&m, 0, sizeof(m));
    m.channel = c->tc.name;
    m.from = c->from;
    m.rcpt = c->rcpt;
    m.n_rcpt = c->n_rcpt;
    m.body = x->body;
    m.body_len = x->len;
    m.message_id = x->id;
    m.priority = i < c->campaign ? SUKI_DISPATCH_PRIO_CAMPAIGN
                                 : SUKI_DISPATCH_PRIO_REMINDER;
    rc = suki_dispatch_send(c->d, &m, result_cb, x);
    if (rc != 0) {
        printf("REFUSED i=%ld rc=%d (%s)\n", i, rc, strerror(-rc));
        fflush(stdout);
        free(x->id);
        free(x->body);
        free(x);
        c->refused++;
        finish_if_done(c);
    }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    printf("DEADLINE\n");
    event_base_loopbreak(c->base);
}

static void print_state(struct client *c)
{
    struct suki_dispatch_tstate s;
    if (suki_dispatch_transport_state(c->d, c->tc.name, &s) != 0) {
        printf("STATE name=%s missing\n", c->tc.name);
        return;
    }
    printf("STATE name=%s breaker=%s fails=%d queued=%zu in_flight=%zu "
           "sent=%llu tempfail=%llu permfail=%llu reopen_in_ms=%lld\n",
           c->tc.name, suki_dispatch_breaker_name(s.breaker),
           s.consecutive_failures, s.queued, s.in_flight,
           (unsigned long long)s.sent, (unsigned long long)s.tempfail,
           (unsigned long long)s.permfail, (long long)s.reopen_in_ms);
}

static long num(const char *s, const char *what)
{
    int64_t v;
    if (suki_parse_i64(s, 0, INT64_C(1) << 40, &v) != 0) {
        fprintf(stderr, "dispatch_client: bad %s: %s\n", what, s);
        exit(2);
    }
    return (long)v;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: dispatch_client --url URL [--starttls required|try|off]\n"
            "  [--ca FILE] [--no-verify] [--user U] [--password P]\n"
            "  [--max-conn N] [--rate R] [--timeout-ms N] [--breaker N]\n"
            "  [--cooldown-ms N] [--header 'Name: value']... [--from A]\n"
            "  [--rcpt A]... [--count N] [--size BYTES] [--msgid PREFIX]\n"
            "  [--same-msgid] [--body-file F] [--campaign N] [--resend N]\n"
            "  [--resend-delay-ms N] [--sequential] [--deadline-ms N]\n"
            "  [--max-pending N] [--state] [--name CHANNEL]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"starttls", required_argument, NULL, 'S'},
        {"ca", required_argument, NULL, 'C'},
        {"no-verify", no_argument, NULL, 'V'},
        {"user", required_argument, NULL, 'U'},
        {"password", required_argument, NULL, 'P'},
        {"max-conn", required_argument, NULL, 'm'},
        {"rate", required_argument, NULL, 'r'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"breaker", required_argument, NULL, 'b'},
        {"cooldown-ms", required_argument, NULL, 'c'},
        {"header", required_argument, NULL, 'H'},
        {"from", required_argument, NULL, 'f'},
        {"rcpt", required_argument, NULL, 'R'},
        {"count", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"msgid", required_argument, NULL, 'i'},
        {"same-msgid", no_argument, NULL, 'I'},
        {"body-file", required_argument, NULL, 'B'},
        {"campaign", required_argument, NULL, 'k'},
        {"resend", required_argument, NULL, 'e'},
        {"resend-delay-ms", required_argument, NULL, 'E'},
        {"sequential", no_argument, NULL, 'q'},
        {"deadline-ms", required_argument, NULL, 'D'},
        {"max-pending", required_argument, NULL, 'p'},
        {"state", no_argument, NULL, 'T'},
        {"name", required_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    struct client c;
    struct suki_header_kv hdr[MAX_HDR];
    struct suki_err err = {{0}};
    long deadline_ms = 0, max_pending = 0;
    int o, rc;

    memset(&c, 0, sizeof(c));
    c.tc.name = "t";
    c.tc.starttls = SUKI_STARTTLS_REQUIRED;
    c.tc.tls_verify = true;
    c.tc.max_connections = 4;
    c.tc.timeout_ms = 10000;
    c.tc.breaker_failures = 5;
    c.tc.breaker_cooldown_ms = 30000;
    c.tc.headers = hdr;
    c.count = 1;
    c.size = 512;
    c.msgid_prefix = "m";
    c.resend_delay_ms = 0;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            c.tc.url = optarg;
            break;
        case 'S':
            if (strcmp(optarg, "required") == 0)
                c.tc.starttls = SUKI_STARTTLS_REQUIRED;
            else if (strcmp(optarg, "try") == 0)
                c.tc.starttls = SUKI_STARTTLS_TRY;
            else if (strcmp(optarg, "off") == 0)
                c.tc.starttls = SUKI_STARTTLS_OFF;
            else
                usage();
            break;
        case 'C':
            c.tc.ca_file = optarg;
            break;
        case 'V':
            c.tc.tls_verify = false;
            break;
        case 'U':
            c.tc.username = optarg;
            break;
        case 'P':
            c.tc.password = optarg;
            break;
        case 'm':
            c.tc.max_connections = (int)num(optarg, "max-conn");
            break;
        case 'r':
            if (suki_parse_rate(optarg, &c.tc.rate, &err) != 0) {
                fprintf(stderr, "dispatch_client: %s\n", err.msg);
                return 2;
            }
            break;
        case 't':
            c.tc.timeout_ms = num(optarg, "timeout-ms");
            break;
        case 'b':
            c.tc.breaker_failures = (int)num(optarg, "breaker");
            break;
        case 'c':
            c.tc.breaker_cooldown_ms = num(optarg, "cooldown-ms");
            break;
        case 'H': {
            char *colon = strchr(optarg, ':');
            if (!colon || c.tc.n_headers >= MAX_HDR)
                usage();
            *colon = '\0';
            hdr[c.tc.n_headers].name = optarg;
            hdr[c.tc.n_headers].value = colon + 1 + (colon[1] == ' ');
            c.tc.n_headers++;
            break;
        }
        case 'f':
            c.from = optarg;
            break;
        case 'R':
            if (c.n_rcpt >= MAX_RCPT)
                usage();
            c.rcpt[c.n_rcpt++] = optarg;
            break;
        case 'n':
            c.count = num(optarg, "count");
            break;
        case 's':
            c.size = num(optarg, "size");
            break;
        case 'i':
            c.msgid_prefix = optarg;
            break;
        case 'I':
            c.same_msgid = 1;
            break;
        case 'B':
            c.body_file = suki_read_file(optarg, &c.body_file_len,
                                         64 * 1024 * 1024, &err);
            if (!c.body_file) {
                fprintf(stderr, "dispatch_client: %s\n", err.msg);
                return 2;
            }
            break;
        case 'k':
            c.campaign = num(optarg, "campaign");
            break;
        case 'e':
            c.resend = num(optarg, "resend");
            break;
        case 'E':
            c.resend_delay_ms = num(optarg, "resend-delay-ms");
            break;
        case 'q':
            c.sequential = 1;
            break;
        case 'D':
            deadline_ms = num(optarg, "deadline-ms");
            break;
        case 'p':
            max_pending = num(optarg, "max-pending");
            break;
        case 'T':
            c.print_state = 1;
            break;
        case 'N':
            c.tc.name = optarg;
            break;
        default:
            usage();
        }
    }
    if (!c.tc.url)
        usage();
    if (strncmp(c.tc.url, "smtp", 4) == 0)
        c.tc.kind = SUKI_TRANSPORT_SMTP;
    else if (strncmp(c.tc.url, "http", 4) == 0)
        c.tc.kind = SUKI_TRANSPORT_HTTP;
    else if (strncmp(c.tc.url, "spool://", 8) == 0)
        c.tc.kind = SUKI_TRANSPORT_SPOOL;
    else
        usage();

    suki_log_init("dispatch_client");
    c.attempts = suki_calloc((size_t)c.count + 1, sizeof(*c.attempts));
    c.base = event_base_new();
    c.d = suki_dispatch_new(c.base, &err);
    if (!c.d) {
        fprintf(stderr, "dispatch_client: %s\n", err.msg);
        return 2;
    }
    if (max_pending)
        suki_dispatch_set_max_pending(c.d, (size_t)max_pending);
    rc = suki_dispatch_configure(c.d, &c.tc, 1);
    if (rc != 0) {
        fprintf(stderr, "dispatch_client: configure: %s\n", strerror(-rc));
        suki_dispatch_free(c.d);
        event_base_free(c.base);
        free(c.attempts);
        free(c.body_file);
        return 2;
    }
    c.t0 = suki_mono_ms();
    if (deadline_ms > 0) {
        struct timeval tv = {(time_t)(deadline_ms / 1000),
                             (suseconds_t)(deadline_ms % 1000) * 1000};
        c.deadline = evtimer_new(c.base, deadline_cb, &c);
        evtimer_add(c.deadline, &tv);
    }
    if (c.count > 0) {
        if (c.sequential)
            send_one(&c, c.next++, 0);
        else
            while (c.next < c.count)
                send_one(&c, c.next++, 0);
        if (c.done + c.refused < c.count)
            event_base_dispatch(c.base);
    }
    if (c.print_state)
        print_state(&c);
    /* anything still outstanding is reported as cancelled here */
    suki_dispatch_free(c.d);
    printf("SUMMARY sent=%ld tempfail=%ld permfail=%ld cancelled=%ld "
           "refused=%ld elapsed_ms=%lld\n",
           c.n_sent, c.n_temp, c.n_perm, c.n_cancel, c.refused,
           (long long)(suki_mono_ms() - c.t0));
    if (c.deadline)
        event_free(c.deadline);
    while (c.resends) {
        struct pending_resend *p = c.resends;
        c.resends = p->next;
        event_free(p->ev);
        free(p);
    }
    event_base_free(c.base);
    free(c.attempts);
    free(c.body_file);
    return 0;
}
