/* check_dispatch.c - dispatch: classification, Retry-After, token bucket,
 * address refusal, spool naming; and, on a real event loop with the spool
 * transport (no network), deferral of callbacks, priorities, rate limit,
 * backpressure, cancellation on free, reload, and the circuit breaker. */
#include "config.h"

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "metrics.h"
#include "util.h"

/* ---- classification ---- */

START_TEST(classify_smtp_table)
{
    static const struct {
        int cc, code;
        enum suki_smtp_stage st;
        enum suki_dispatch_status want;
    } t[] = {
        {CURLE_OK, 250, SUKI_SMTP_EOD, SUKI_DISPATCH_SENT},
        {CURLE_SEND_ERROR, 550, SUKI_SMTP_RCPT, SUKI_DISPATCH_PERMFAIL},
        {CURLE_SEND_ERROR, 553, SUKI_SMTP_MAIL, SUKI_DISPATCH_PERMFAIL},
        {CURLE_SEND_ERROR, 554, SUKI_SMTP_DATA, SUKI_DISPATCH_PERMFAIL},
        {CURLE_WEIRD_SERVER_REPLY, 552, SUKI_SMTP_EOD, SUKI_DISPATCH_PERMFAIL},
        {CURLE_SEND_ERROR, 451, SUKI_SMTP_MAIL, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_SEND_ERROR, 450, SUKI_SMTP_RCPT, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_WEIRD_SERVER_REPLY, 451, SUKI_SMTP_EOD, SUKI_DISPATCH_TEMPFAIL},
        /* 5xx before the transaction: the server/transport, not the mail */
        {CURLE_WEIRD_SERVER_REPLY, 554, SUKI_SMTP_CONNECT,
         SUKI_DISPATCH_TEMPFAIL},
        {CURLE_LOGIN_DENIED, 535, SUKI_SMTP_AUTH, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_COULDNT_CONNECT, 0, SUKI_SMTP_CONNECT, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_OPERATION_TIMEDOUT, 0, SUKI_SMTP_DATA, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_PEER_FAILED_VERIFICATION, 0, SUKI_SMTP_STARTTLS,
         SUKI_DISPATCH_TEMPFAIL},
        {CURLE_USE_SSL_FAILED, 0, SUKI_SMTP_EHLO, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_GOT_NOTHING, 0, SUKI_SMTP_CONNECT, SUKI_DISPATCH_TEMPFAIL},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        ck_assert_msg(suki_dispatch_classify_smtp(t[i].cc, t[i].code,
                                                  t[i].st) == t[i].want,
                      "row %zu", i);
}
END_TEST

START_TEST(classify_http_table)
{
    static const struct {
        int cc;
        long status;
        enum suki_dispatch_status want;
    } t[] = {
        {CURLE_OK, 200, SUKI_DISPATCH_SENT},
        {CURLE_OK, 201, SUKI_DISPATCH_SENT},
        {CURLE_OK, 204, SUKI_DISPATCH_SENT},
        {CURLE_OK, 500, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_OK, 502, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_OK, 503, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_OK, 429, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_OK, 408, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_OK, 400, SUKI_DISPATCH_PERMFAIL},
        {CURLE_OK, 401, SUKI_DISPATCH_PERMFAIL},
        {CURLE_OK, 404, SUKI_DISPATCH_PERMFAIL},
        {CURLE_OK, 410, SUKI_DISPATCH_PERMFAIL},
        {CURLE_OK, 422, SUKI_DISPATCH_PERMFAIL},
        {CURLE_OK, 301, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_COULDNT_CONNECT, 0, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_OPERATION_TIMEDOUT, 0, SUKI_DISPATCH_TEMPFAIL},
        {CURLE_PEER_FAILED_VERIFICATION, 0, SUKI_DISPATCH_TEMPFAIL},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        ck_assert_msg(suki_dispatch_classify_http(t[i].cc, t[i].status) ==
                          t[i].want,
                      "row %zu (%ld)", i, t[i].status);
}
END_TEST

START_TEST(tls_codes)
{
    ck_assert(suki_dispatch_curl_is_tls(CURLE_PEER_FAILED_VERIFICATION));
    ck_assert(suki_dispatch_curl_is_tls(CURLE_SSL_CACERT_BADFILE));
    ck_assert(suki_dispatch_curl_is_tls(CURLE_USE_SSL_FAILED));
    ck_assert(suki_dispatch_curl_is_tls(CURLE_SSL_CONNECT_ERROR));
    ck_assert(!suki_dispatch_curl_is_tls(CURLE_COULDNT_CONNECT));
    ck_assert(!suki_dispatch_curl_is_tls(CURLE_OK));
}
END_TEST

/* ---- Retry-After ---- */

static int64_t epoch_ms(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm) * 1000;
}

START_TEST(retry_after_seconds)
{
    int64_t ms = -1;
    ck_assert_int_eq(suki_dispatch_parse_retry_after("120", 0, &ms), 0);
    ck_assert_int_eq(ms, 120000);
    ck_assert_int_eq(suki_dispatch_parse_retry_after(" 5 \r\n", 0, &ms), 0);
    ck_assert_int_eq(ms, 5000);
    ck_assert_int_eq(suki_dispatch_parse_retry_after("0", 0, &ms), 0);
    ck_assert_int_eq(ms, 0);
}
END_TEST

START_TEST(retry_after_dates)
{
    int64_t when = epoch_ms(2015, 10, 21, 7, 28, 0);
    int64_t now = when - 30000;
    int64_t ms = -1;

    /* IMF-fixdate, RFC 850 and asctime forms of the same instant */
    ck_assert_int_eq(suki_dispatch_parse_retry_after(
                         "Wed, 21 Oct 2015 07:28:00 GMT", now, &ms),
                     0);
    ck_assert_int_eq(ms, 30000);
    ms = -1;
    ck_assert_int_eq(suki_dispatch_parse_retry_after(
                         "Wednesday, 21-Oct-15 07:28:00 GMT", now, &ms),
                     0);
    ck_assert_int_eq(ms, 30000);
    ms = -1;
    ck_assert_int_eq(
        suki_dispatch_parse_retry_after("Wed Oct 21 07:28:00 2015", now, &ms),
        0);
    ck_assert_int_eq(ms, 30000);
    /* a date in the past means "now" */
    ck_assert_int_eq(suki_dispatch_parse_retry_after(
                         "Wed, 21 Oct 2015 07:28:00 GMT", when + 5000, &ms),
                     0);
    ck_assert_int_eq(ms, 0);
}
END_TEST

START_TEST(retry_after_bad)
{
    static const char *bad[] = {"",   "   ", "abc",
                                "-5", "1.5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 77;
        ck_assert_msg(suki_dispatch_parse_retry_after(bad[i], 0, &ms) ==
                          -EINVAL,
                      "'%s' accepted", bad[i]);
        ck_assert_int_eq(ms, 77);
    }
    ck_assert_int_eq(suki_dispatch_parse_retry_after(NULL, 0, NULL), -EINVAL);
}
END_TEST

/* ---- token bucket ---- */

START_TEST(bucket_slow_rate)
{
    struct suki_dispatch_bucket b;
    suki_dispatch_bucket_init(&b, 10.0, 1000); /* burst 1 */
    ck_assert(suki_dispatch_bucket_take(&b, 1000));
    ck_assert(!suki_dispatch_bucket_take(&b, 1000));
    ck_assert_int_eq(suki_dispatch_bucket_wait_ms(&b, 1000), 100);
    ck_assert_int_eq(suki_dispatch_bucket_wait_ms(&b, 1050), 50);
    ck_assert(!suki_dispatch_bucket_take(&b, 1099));
    ck_assert(suki_dispatch_bucket_take(&b, 1100));
    /* a long pause does not bank more than the burst */
    ck_assert(suki_dispatch_bucket_take(&b, 60000));
    ck_assert(!suki_dispatch_bucket_take(&b, 60000));
}
END_TEST

START_TEST(bucket_burst)
{
    struct suki_dispatch_bucket b;
    int n = 0;
    suki_dispatch_bucket_init(&b, 100.0, 0); /* burst 10 */
    while (suki_dispatch_bucket_take(&b, 0))
        n++;
    ck_assert_int_eq(n, 10);
    ck_assert_int_eq(suki_dispatch_bucket_wait_ms(&b, 0), 10);
}
END_TEST

START_TEST(bucket_long_run)
{
    /* over 10 s of simulated time, taking whenever allowed at 1 ms
     * steps, a 20/s bucket gives 200 plus its burst (2) */
    struct suki_dispatch_bucket b;
    int n = 0;
    suki_dispatch_bucket_init(&b, 20.0, 0);
    for (int64_t t = 0; t < 10000; t++)
        while (suki_dispatch_bucket_take(&b, t))
            n++;
    ck_assert_int_ge(n, 200);
    ck_assert_int_le(n, 202);
}
END_TEST

START_TEST(bucket_unlimited_and_clock)
{
    struct suki_dispatch_bucket b;
    suki_dispatch_bucket_init(&b, 0, 0);
    for (int i = 0; i < 1000; i++)
        ck_assert(suki_dispatch_bucket_take(&b, 0));
    ck_assert_int_eq(suki_dispatch_bucket_wait_ms(&b, 0), 0);

    /* a clock going backwards adds nothing */
    suki_dispatch_bucket_init(&b, 1.0, 5000);
    ck_assert(suki_dispatch_bucket_take(&b, 5000));
    ck_assert(!suki_dispatch_bucket_take(&b, 1000));
    ck_assert(!suki_dispatch_bucket_take(&b, 5999));
    ck_assert(suki_dispatch_bucket_take(&b, 6000));
}
END_TEST

START_TEST(bucket_set_rate)
{
    struct suki_dispatch_bucket b;
    suki_dispatch_bucket_init(&b, 100.0, 0); /* 10 tokens */
    for (int i = 0; i < 7; i++)
        ck_assert(suki_dispatch_bucket_take(&b, 0));
    /* tokens (3) kept across a change that leaves room for them */
    suki_dispatch_bucket_set_rate(&b, 200.0, 0);
    for (int i = 0; i < 3; i++)
        ck_assert(suki_dispatch_bucket_take(&b, 0));
    ck_assert(!suki_dispatch_bucket_take(&b, 0));
    /* a lower rate clamps to the new burst */
    suki_dispatch_bucket_init(&b, 100.0, 0);
    suki_dispatch_bucket_set_rate(&b, 5.0, 0);
    ck_assert(suki_dispatch_bucket_take(&b, 0));
    ck_assert(!suki_dispatch_bucket_take(&b, 0));
    ck_assert_int_eq(suki_dispatch_bucket_wait_ms(&b, 0), 200);
}
END_TEST

/* ---- addresses ---- */

START_TEST(addr_checks)
{
    static const char *good[] = {"a@b.example", "first.last+tag@x.ph",
                                 "\"q\"@x.ph", "user@[127.0.0.1]"};
    static const struct {
        const char *a;
        const char *why;
    } bad[] = {
        {"a@b\r\nRCPT TO:<evil@x>", "contains CR or LF"},
        {"a@b\n", "contains CR or LF"},
        {"a b@c", "contains white space"},
        {"a\t@c", "contains white space"},
        {"<a@b>", "contains '<' or '>'"},
        {"a@b>", "contains '<' or '>'"},
        {"a\x01@b", "contains a control character"},
        {"a\x7f@b", "contains a control character"},
    };
    const char *why = NULL;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(suki_dispatch_addr_ok(good[i], false, NULL), "%s",
                      good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        ck_assert_msg(!suki_dispatch_addr_ok(bad[i].a, true, &why), "%zu", i);
        ck_assert_str_eq(why, bad[i].why);
    }
    ck_assert(suki_dispatch_addr_ok("", true, NULL));
    ck_assert(!suki_dispatch_addr_ok("", false, &why));
    ck_assert_str_eq(why, "empty");
    ck_assert(!suki_dispatch_addr_ok(NULL, true, NULL));
    char longaddr[400];
    memset(longaddr, 'a', sizeof(longaddr) - 1);
    longaddr[sizeof(longaddr) - 1] = '\0';
    ck_assert(!suki_dispatch_addr_ok(longaddr, false, &why));
    ck_assert_str_eq(why, "too long");
}
END_TEST

/* ---- spool names ---- */

START_TEST(spool_names)
{
    char buf[256], buf2[256];

    ck_assert_int_eq(suki_dispatch_spool_name("<abc.1@x.ph>", buf, 256), 0);
    ck_assert_str_eq(buf, "abc.1@x.ph.eml");
    ck_assert_int_eq(suki_dispatch_spool_name("abc.1@x.ph", buf, 256), 0);
    ck_assert_str_eq(buf, "abc.1@x.ph.eml");
    ck_assert_int_eq(suki_dispatch_spool_name("<../../etc/passwd>", buf, 256),
                     0);
    ck_assert_str_eq(buf, "%2E.%2F..%2Fetc%2Fpasswd.eml");
    ck_assert_ptr_null(strchr(buf, '/'));
    ck_assert_int_eq(suki_dispatch_spool_name("a/b", buf, 256), 0);
    ck_assert_int_eq(suki_dispatch_spool_name("a_b", buf2, 256), 0);
    ck_assert_str_ne(buf, buf2);
    ck_assert_int_eq(suki_dispatch_spool_name("a%2Fb", buf2, 256), 0);
    ck_assert_str_eq(buf2, "a%252Fb.eml");
    ck_assert_str_ne(buf, buf2);
    ck_assert_int_eq(suki_dispatch_spool_name("x y\r\n", buf, 256), 0);
    ck_assert_str_eq(buf, "x%20y%0D%0A.eml");
    ck_assert_int_eq(suki_dispatch_spool_name("", buf, 256), -EINVAL);
    ck_assert_int_eq(suki_dispatch_spool_name("<>", buf, 256), -EINVAL);
    ck_assert_int_eq(suki_dispatch_spool_name(NULL, buf, 256), -EINVAL);
    ck_assert_int_eq(suki_dispatch_spool_name("abcdef", buf, 8), -ENOSPC);
}
END_TEST

START_TEST(spool_names_long)
{
    char a[600], b[600], na[256], nb[256];
    memset(a, 'x', 599);
    a[599] = '\0';
    memcpy(b, a, sizeof(a));
    b[598] = 'y';
    ck_assert_int_eq(suki_dispatch_spool_name(a, na, sizeof(na)), 0);
    ck_assert_int_eq(suki_dispatch_spool_name(b, nb, sizeof(nb)), 0);
    ck_assert_uint_lt(strlen(na), 256);
    ck_assert_str_ne(na, nb);
    ck_assert_int_eq(strncmp(na, nb, 160), 0);
    ck_assert_str_eq(na + strlen(na) - 4, ".eml");
    /* all-encoded long ids stay in bounds too */
    memset(a, '/', 599);
    ck_assert_int_eq(suki_dispatch_spool_name(a, na, sizeof(na)), 0);
    ck_assert_uint_lt(strlen(na), 256);
}
END_TEST

/* ---- on the loop, with the spool transport ---- */

struct rec {
    int n;
    char ids[64][64];
    enum suki_dispatch_status st[64];
    bool cancelled[64];
    char reply[64][256];
    int code[64];
    size_t n_rcpts[64];
    int in_send; /* set while inside suki_dispatch_send */
    int reentered;
    struct suki_dispatch *d; /* for the send-from-callback check */
    int send_rc;
};

static struct event_base *base;
static struct suki_dispatch *disp;
static char spool[256];

static void rec_cb(const struct suki_dispatch_result *r, void *arg)
{
    struct rec *rc = arg;
    int i = rc->n++;
    if (rc->in_send)
        rc->reentered++;
    if (i >= 64)
        return;
    suki_strlcpy(rc->ids[i], r->message_id, sizeof(rc->ids[i]));
    rc->st[i] = r->status;
    rc->cancelled[i] = r->cancelled;
    rc->code[i] = r->code;
    rc->n_rcpts[i] = r->n_rcpts;
    suki_strlcpy(rc->reply[i], r->reply, sizeof(rc->reply[i]));
    if (rc->d) {
        struct suki_outmsg m = {.channel = "spool",
                                .body = "x",
                                .body_len = 1,
                                .message_id = "<again@x>"};
        rc->send_rc = suki_dispatch_send(rc->d, &m, rec_cb, rc);
    }
}

static void setup(void)
{
    suki_strlcpy(spool, "/tmp/check_dispatch.XXXXXX", sizeof(spool));
    ck_assert_ptr_nonnull(mkdtemp(spool));
    base = event_base_new();
    struct suki_err err = {{0}};
    disp = suki_dispatch_new(base, &err);
    ck_assert_msg(disp != NULL, "%s", err.msg);
}

static void rm_rf(const char *dir)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    if (!dh)
        return;
    while ((de = readdir(dh)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *p = suki_asprintf("%s/%s", dir, de->d_name);
        unlink(p);
        free(p);
    }
    closedir(dh);
    rmdir(dir);
}

static void teardown(void)
{
    suki_dispatch_free(disp);
    disp = NULL;
    event_base_free(base);
    rm_rf(spool);
}

static struct suki_transport_conf spool_conf(const char *name, double rate,
                                             int maxconn)
{
    struct suki_transport_conf c;
    memset(&c, 0, sizeof(c));
    c.name = (char *)name;
    c.kind = SUKI_TRANSPORT_SPOOL;
    c.spool_dir = spool;
    c.max_connections = maxconn;
    c.rate = rate;
    c.timeout_ms = 5000;
    c.breaker_failures = 5;
    c.breaker_cooldown_ms = 30000;
    return c;
}

/* Run the loop until rc->n reaches n or 5 s pass. */
static void run_until(struct rec *rc, int n)
{
    int64_t end = suki_mono_ms() + 5000;
    while (rc->n < n && suki_mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

static int send_spool(struct rec *rc, const char *chan, const char *id,
                      const char *body, int prio)
{
    struct suki_outmsg m;
    int r;
    memset(&m, 0, sizeof(m));
    m.channel = chan;
    m.body = body;
    m.body_len = strlen(body);
    m.message_id = id;
    m.priority = prio;
    rc->in_send = 1;
    r = suki_dispatch_send(disp, &m, rec_cb, rc);
    rc->in_send = 0;
    return r;
}

static char *slurp(const char *dir, const char *name)
{
    char *p = suki_asprintf("%s/%s", dir, name);
    struct suki_err err;
    size_t len;
    char *s = suki_read_file(p, &len, 1 << 20, &err);
    free(p);
    return s;
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    int n = 0;
    ck_assert_ptr_nonnull(dh);
    while ((de = readdir(dh)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(dh);
    return n;
}

START_TEST(spool_delivers_later)
{
    struct suki_transport_conf c = spool_conf("spool", 0, 4);
    struct rec rc = {0};
    char *s;

    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<a@x>", "A\r\n", 0), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<b@x>", "B\r\n", 0), 0);
    ck_assert_int_eq(rc.n, 0); /* never from inside send */
    ck_assert_uint_eq(suki_dispatch_pending(disp), 2);
    run_until(&rc, 2);
    ck_assert_int_eq(rc.n, 2);
    ck_assert_int_eq(rc.reentered, 0);
    ck_assert_uint_eq(suki_dispatch_pending(disp), 0);
    ck_assert_int_eq(rc.st[0], SUKI_DISPATCH_SENT);
    ck_assert_int_eq(rc.st[1], SUKI_DISPATCH_SENT);
    ck_assert_str_eq(rc.ids[0], "<a@x>");
    ck_assert_ptr_nonnull(strstr(rc.reply[0], "a@x.eml"));
    s = slurp(spool, "a@x.eml");
    ck_assert_str_eq(s, "A\r\n");
    free(s);
    s = slurp(spool, "b@x.eml");
    ck_assert_str_eq(s, "B\r\n");
    free(s);
    ck_assert_int_eq(count_files(spool, "tmp-"), 0);
}
END_TEST

/* A message whose gate has closed when a slot frees up is not started:
 * TEMPFAIL, cancelled, nothing written (a campaign runner whose lease may
 * have ended must not start transfers another daemon now owns). */
START_TEST(gate_closed_not_started)
{
    struct suki_transport_conf c = spool_conf("spool", 0, 1);
    struct rec rc = {0};
    struct suki_dispatch_gate *g =
        suki_dispatch_gate_new(suki_mono_ms() + 60000);
    struct suki_outmsg m = {.channel = "spool", .body = "G\r\n", .body_len = 3};

    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<a@x>", "A\r\n", 0), 0);
    m.gate = g;
    m.message_id = "<b@x>";
    ck_assert_int_eq(suki_dispatch_send(disp, &m, rec_cb, &rc), 0);
    m.message_id = "<c@x>";
    ck_assert_int_eq(suki_dispatch_send(disp, &m, rec_cb, &rc), 0);
    g->open_until_ms = 0; /* closes while b and c wait for the slot */
    run_until(&rc, 3);
    ck_assert_int_eq(rc.n, 3);
    ck_assert_str_eq(rc.ids[0], "<a@x>");
    ck_assert_int_eq(rc.st[0], SUKI_DISPATCH_SENT);
    for (int i = 1; i < 3; i++) {
        ck_assert_int_eq(rc.st[i], SUKI_DISPATCH_TEMPFAIL);
        ck_assert(rc.cancelled[i]);
    }
    ck_assert_int_eq(count_files(spool, "b@x"), 0);
    ck_assert_int_eq(count_files(spool, "c@x"), 0);
    /* an open gate lets its message through; the dispatcher's references
     * went with its messages */
    g->open_until_ms = suki_mono_ms() + 60000;
    m.message_id = "<d@x>";
    ck_assert_int_eq(suki_dispatch_send(disp, &m, rec_cb, &rc), 0);
    run_until(&rc, 4);
    ck_assert_int_eq(rc.st[3], SUKI_DISPATCH_SENT);
    ck_assert_int_eq(count_files(spool, "d@x"), 1);
    ck_assert_int_eq(g->refs, 1);
    suki_dispatch_gate_unref(g);
}
END_TEST

START_TEST(spool_same_id_replaces)
{
    struct suki_transport_conf c = spool_conf("spool", 0, 1);
    struct rec rc = {0};
    char *s;

    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<same@x>", "first", 0), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<same@x>", "second", 0), 0);
    run_until(&rc, 2);
    ck_assert_int_eq(rc.n, 2);
    ck_assert_int_eq(count_files(spool, ""), 3); /* ".", "..", one file */
    s = slurp(spool, "same@x.eml");
    ck_assert_str_eq(s, "second");
    free(s);
}
END_TEST

START_TEST(spool_error_is_tempfail)
{
    struct suki_transport_conf c = spool_conf("spool", 0, 1);
    struct rec rc = {0};
    char *missing = suki_asprintf("%s/nope", spool);
    c.spool_dir = missing;
    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<a@x>", "A", 0), 0);
    run_until(&rc, 1);
    ck_assert_int_eq(rc.st[0], SUKI_DISPATCH_TEMPFAIL);
    ck_assert_ptr_nonnull(strstr(rc.reply[0], "No such file"));
    free(missing);
}
END_TEST

START_TEST(spool_window_grows_and_shrinks)
{
    /* A spool transport's window starts at max_connections, grows by one
     * with each message written, and falls back to max_connections on a
     * failure (so a broken spool fails few messages before the breaker). */
    struct suki_transport_conf c = spool_conf("spool", 0, 1);
    struct suki_dispatch_tstate st;
    struct rec rc = {0};
    char id[32];
    char *moved = suki_asprintf("%s.moved", spool);

    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<w0@x>", "w", 0), 0);
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "spool", &st), 0);
    ck_assert_uint_eq(st.in_flight, 1);
    run_until(&rc, 1);
    /* one written: two may be out now */
    for (int i = 1; i <= 5; i++) {
        snprintf(id, sizeof(id), "<w%d@x>", i);
        ck_assert_int_eq(send_spool(&rc, "spool", id, "w", 0), 0);
    }
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "spool", &st), 0);
    ck_assert_uint_eq(st.in_flight, 2);
    ck_assert_uint_eq(st.queued, 3);
    run_until(&rc, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(rc.st[i], SUKI_DISPATCH_SENT);
    /* six written: seven may be out; a failing spool shrinks it back */
    ck_assert_int_eq(rename(spool, moved), 0);
    for (int i = 6; i < 9; i++) {
        snprintf(id, sizeof(id), "<w%d@x>", i);
        ck_assert_int_eq(send_spool(&rc, "spool", id, "w", 0), 0);
    }
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "spool", &st), 0);
    ck_assert_uint_eq(st.in_flight, 3);
    run_until(&rc, 9);
    for (int i = 6; i < 9; i++)
        ck_assert_int_eq(rc.st[i], SUKI_DISPATCH_TEMPFAIL);
    for (int i = 9; i < 12; i++) {
        snprintf(id, sizeof(id), "<w%d@x>", i);
        ck_assert_int_eq(send_spool(&rc, "spool", id, "w", 0), 0);
    }
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "spool", &st), 0);
    ck_assert_uint_eq(st.in_flight, 1);
    ck_assert_int_eq(rename(moved, spool), 0);
    run_until(&rc, 12);
    for (int i = 9; i < 12; i++)
        ck_assert_int_eq(rc.st[i], SUKI_DISPATCH_SENT);
    free(moved);
}
END_TEST

START_TEST(send_errors)
{
    struct suki_transport_conf c[2];
    struct rec rc = {0};
    struct suki_outmsg m;
    const char *to[] = {"a@x"};

    c[0] = spool_conf("spool", 0, 1);
    memset(&c[1], 0, sizeof(c[1]));
    c[1].name = "email";
    c[1].kind = SUKI_TRANSPORT_SMTP;
    c[1].url = "smtp://127.0.0.1:1";
    ck_assert_int_eq(suki_dispatch_configure(disp, c, 2), 0);
    ck_assert_int_eq(send_spool(&rc, "nope", "<a@x>", "A", 0), -ENOENT);
    /* spool needs a Message-ID */
    ck_assert_int_eq(send_spool(&rc, "spool", "<>", "A", 0), -EINVAL);
    memset(&m, 0, sizeof(m));
    m.channel = "email";
    m.from = "f@x";
    m.body = "x";
    m.body_len = 1;
    ck_assert_int_eq(suki_dispatch_send(disp, &m, rec_cb, &rc), -EINVAL);
    m.rcpt = to;
    m.n_rcpt = 1;
    ck_assert_int_eq(suki_dispatch_send(disp, &m, NULL, &rc), -EINVAL);
    ck_assert_int_eq(suki_dispatch_send(disp, NULL, rec_cb, &rc), -EINVAL);
    ck_assert_int_eq(rc.n, 0);
    ck_assert_uint_eq(suki_dispatch_pending(disp), 0);
    /* duplicate names and nameless transports are refused whole */
    c[1].name = "spool";
    ck_assert_int_eq(suki_dispatch_configure(disp, c, 2), -EINVAL);
    c[1].name = NULL;
    ck_assert_int_eq(suki_dispatch_configure(disp, c, 2), -EINVAL);
    /* the old configuration still stands */
    struct suki_dispatch_tstate st;
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "email", &st), 0);
}
END_TEST

START_TEST(refused_address_no_network)
{
    struct suki_transport_conf c;
    struct rec rc = {0};
    struct suki_outmsg m;
    const char *to[] = {"ok@x.ph", "bad@x.ph\r\nRCPT TO:<evil@x.ph>"};

    memset(&c, 0, sizeof(c));
    c.name = "email";
    c.kind = SUKI_TRANSPORT_SMTP;
    /* nothing listens on port 1: a connection attempt would give a
     * TEMPFAIL "connect" error, not this PERMFAIL */
    c.url = "smtp://127.0.0.1:1";
    c.starttls = SUKI_STARTTLS_OFF;
    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    memset(&m, 0, sizeof(m));
    m.channel = "email";
    m.from = "from@x.ph";
    m.rcpt = to;
    m.n_rcpt = 2;
    m.body = "Subject: x\r\n\r\nhi\r\n";
    m.body_len = strlen(m.body);
    m.message_id = "<r@x>";
    rc.in_send = 1;
    ck_assert_int_eq(suki_dispatch_send(disp, &m, rec_cb, &rc), 0);
    rc.in_send = 0;
    ck_assert_int_eq(rc.n, 0);
    run_until(&rc, 1);
    ck_assert_int_eq(rc.n, 1);
    ck_assert_int_eq(rc.reentered, 0);
    ck_assert_int_eq(rc.st[0], SUKI_DISPATCH_PERMFAIL);
    ck_assert_int_eq(rc.code[0], 0);
    ck_assert_uint_eq(rc.n_rcpts[0], 2);
    ck_assert_ptr_nonnull(strstr(rc.reply[0], "contains CR or LF"));
    ck_assert_ptr_nonnull(strstr(rc.reply[0], "not sent"));

    /* a bad sender too */
    m.from = "a<b@x";
    m.n_rcpt = 1;
    ck_assert_int_eq(suki_dispatch_send(disp, &m, rec_cb, &rc), 0);
    run_until(&rc, 2);
    ck_assert_int_eq(rc.st[1], SUKI_DISPATCH_PERMFAIL);
    ck_assert_ptr_nonnull(strstr(rc.reply[1], "'<' or '>'"));
}
END_TEST

START_TEST(priorities)
{
    struct suki_transport_conf c = spool_conf("spool", 0, 1);
    struct rec rc = {0};

    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    /* c0 takes the only slot at once; the rest queue */
    ck_assert_int_eq(send_spool(&rc, "spool", "<c0@x>", "c", 1), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<c1@x>", "c", 1), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<c2@x>", "c", 1), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<r0@x>", "r", 0), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<r1@x>", "r", 0), 0);
    run_until(&rc, 5);
    ck_assert_int_eq(rc.n, 5);
    ck_assert_str_eq(rc.ids[0], "<c0@x>");
    ck_assert_str_eq(rc.ids[1], "<r0@x>");
    ck_assert_str_eq(rc.ids[2], "<r1@x>");
    ck_assert_str_eq(rc.ids[3], "<c1@x>");
    ck_assert_str_eq(rc.ids[4], "<c2@x>");
}
END_TEST

START_TEST(rate_limit_paces)
{
    /* 20/s with a burst of 2: 8 messages need at least 300 ms. This is the
     * limiter's guarantee (a lower bound), not a speed assertion. */
    struct suki_transport_conf c = spool_conf("spool", 20.0, 8);
    struct rec rc = {0};
    char id[32];
    int64_t t0;

    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    t0 = suki_mono_ms();
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "<p%d@x>", i);
        ck_assert_int_eq(send_spool(&rc, "spool", id, "p", 0), 0);
    }
    run_until(&rc, 8);
    ck_assert_int_eq(rc.n, 8);
    ck_assert_int_ge(suki_mono_ms() - t0, 280);
}
END_TEST

START_TEST(backpressure)
{
    struct suki_transport_conf c = spool_conf("spool", 0, 1);
    struct rec rc = {0};

    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    suki_dispatch_set_max_pending(disp, 2);
    ck_assert(!suki_dispatch_full(disp));
    ck_assert_int_eq(send_spool(&rc, "spool", "<a@x>", "A", 0), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<b@x>", "B", 0), 0);
    ck_assert(suki_dispatch_full(disp));
    ck_assert_int_eq(send_spool(&rc, "spool", "<c@x>", "C", 0), -ENOBUFS);
    ck_assert_uint_eq(suki_dispatch_pending(disp), 2);
    run_until(&rc, 2);
    ck_assert_uint_eq(suki_dispatch_pending(disp), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<c@x>", "C", 0), 0);
    run_until(&rc, 3);
    ck_assert_int_eq(rc.n, 3);
}
END_TEST

START_TEST(free_cancels)
{
    struct suki_transport_conf c = spool_conf("spool", 0.5, 1);
    struct rec rc = {0};

    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<a@x>", "A", 0), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<b@x>", "B", 0), 0);
    ck_assert_int_eq(send_spool(&rc, "spool", "<c@x>", "C", 1), 0);
    rc.d = disp; /* try to send from the cancelled callbacks */
    suki_dispatch_free(disp);
    disp = NULL;
    ck_assert_int_eq(rc.n, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert(rc.cancelled[i]);
        ck_assert_int_eq(rc.st[i], SUKI_DISPATCH_TEMPFAIL);
        ck_assert_str_eq(rc.reply[i], "cancelled: dispatcher shut down");
    }
    ck_assert_int_eq(rc.send_rc, -ECANCELED);
    ck_assert_int_eq(count_files(spool, ""), 2); /* nothing written */
}
END_TEST

START_TEST(reload_keeps_and_retires)
{
    struct suki_transport_conf a = spool_conf("a", 2.0, 1); /* burst 1 */
    struct suki_transport_conf b = spool_conf("b", 0, 1);
    struct suki_dispatch_tstate st;
    struct rec rc = {0};

    ck_assert_int_eq(suki_dispatch_configure(disp, &a, 1), 0);
    ck_assert_int_eq(send_spool(&rc, "a", "<a0@x>", "0", 0), 0);
    ck_assert_int_eq(send_spool(&rc, "a", "<a1@x>", "1", 0), 0);
    ck_assert_int_eq(send_spool(&rc, "a", "<a2@x>", "2", 0), 0);
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "a", &st), 0);
    ck_assert_uint_eq(st.queued, 2);
    /* reload: "a" keeps its queue under a new (unlimited) rate */
    a.rate = 0;
    struct suki_transport_conf both[2] = {a, b};
    ck_assert_int_eq(suki_dispatch_configure(disp, both, 2), 0);
    ck_assert_int_eq(rc.n, 0); /* configure never calls back */
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "a", &st), 0);
    ck_assert_uint_eq(st.queued + st.in_flight, 3);
    run_until(&rc, 3);
    ck_assert_int_eq(rc.n, 3);

    /* drop "a" while it holds messages: they still go, new ones don't */
    a.rate = 5.0;
    ck_assert_int_eq(suki_dispatch_configure(disp, &a, 1), 0);
    ck_assert_int_eq(send_spool(&rc, "a", "<a3@x>", "3", 0), 0);
    ck_assert_int_eq(send_spool(&rc, "a", "<a4@x>", "4", 0), 0);
    ck_assert_int_eq(suki_dispatch_configure(disp, &b, 1), 0);
    ck_assert_int_eq(send_spool(&rc, "a", "<a5@x>", "5", 0), -ENOENT);
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "a", &st), 0);
    ck_assert(st.retired);
    run_until(&rc, 5);
    ck_assert_int_eq(rc.n, 5);
    ck_assert_int_eq(rc.st[4], SUKI_DISPATCH_SENT);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "a", &st), -ENOENT);
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "b", &st), 0);
}
END_TEST

START_TEST(breaker_opens_and_probes)
{
    struct suki_transport_conf c = spool_conf("brk", 0, 1);
    struct suki_dispatch_tstate st;
    struct suki_channel_metrics *cm;
    struct rec rc = {0};
    char *dir = suki_asprintf("%s/later", spool);
    char id[32];

    c.spool_dir = dir; /* does not exist yet: every write TEMPFAILs */
    c.breaker_failures = 2;
    c.breaker_cooldown_ms = 300;
    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "<k%d@x>", i);
        ck_assert_int_eq(send_spool(&rc, "brk", id, "k", 0), 0);
    }
    run_until(&rc, 2);
    ck_assert_int_eq(rc.n, 2);
    /* give it a moment: nothing more may happen while open */
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(rc.n, 2);
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "brk", &st), 0);
    ck_assert_int_eq(st.breaker, SUKI_BREAKER_OPEN);
    ck_assert_int_eq(st.consecutive_failures, 2);
    ck_assert_uint_eq(st.queued, 3);
    cm = suki_metrics_channel("brk");
    ck_assert_ptr_nonnull(cm);
    ck_assert_int_eq(cm->breaker_open, 1);

    /* fix the problem; after the cooldown one probe goes, succeeds, and
     * the rest follow */
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    run_until(&rc, 5);
    ck_assert_int_eq(rc.n, 5);
    for (int i = 2; i < 5; i++)
        ck_assert_int_eq(rc.st[i], SUKI_DISPATCH_SENT);
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "brk", &st), 0);
    ck_assert_int_eq(st.breaker, SUKI_BREAKER_CLOSED);
    ck_assert_int_eq(cm->breaker_open, 0);
    ck_assert_uint_eq(st.sent, 3);
    ck_assert_uint_eq(st.tempfail, 2);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(breaker_failed_probe_reopens)
{
    struct suki_transport_conf c = spool_conf("brk2", 0, 4);
    struct suki_dispatch_tstate st;
    struct rec rc = {0};
    char *dir = suki_asprintf("%s/never", spool);
    char id[32];

    c.spool_dir = dir;
    c.breaker_failures = 1;
    c.breaker_cooldown_ms = 100;
    ck_assert_int_eq(suki_dispatch_configure(disp, &c, 1), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "<f%d@x>", i);
        ck_assert_int_eq(send_spool(&rc, "brk2", id, "f", 0), 0);
    }
    /* max_connections 4: all three start before the first failure */
    run_until(&rc, 3);
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "brk2", &st), 0);
    ck_assert_int_eq(st.breaker, SUKI_BREAKER_OPEN);
    for (int i = 3; i < 5; i++) {
        snprintf(id, sizeof(id), "<f%d@x>", i);
        ck_assert_int_eq(send_spool(&rc, "brk2", id, "f", 0), 0);
    }
    /* one probe after ~100 ms fails and reopens; the next probe ~100 ms
     * later; each time exactly one message is tried */
    run_until(&rc, 4);
    ck_assert_int_eq(rc.n, 4);
    ck_assert_int_eq(suki_dispatch_transport_state(disp, "brk2", &st), 0);
    ck_assert_int_eq(st.breaker, SUKI_BREAKER_OPEN);
    ck_assert_uint_eq(st.queued, 1);
    run_until(&rc, 5);
    ck_assert_int_eq(rc.n, 5);
    free(dir);
}
END_TEST

static Suite *dispatch_suite(void)
{
    Suite *s = suite_create("dispatch");
    TCase *tc;

    tc = tcase_create("classify");
    tcase_add_test(tc, classify_smtp_table);
    tcase_add_test(tc, classify_http_table);
    tcase_add_test(tc, tls_codes);
    suite_add_tcase(s, tc);

    tc = tcase_create("retry_after");
    tcase_add_test(tc, retry_after_seconds);
    tcase_add_test(tc, retry_after_dates);
    tcase_add_test(tc, retry_after_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("bucket");
    tcase_add_test(tc, bucket_slow_rate);
    tcase_add_test(tc, bucket_burst);
    tcase_add_test(tc, bucket_long_run);
    tcase_add_test(tc, bucket_unlimited_and_clock);
    tcase_add_test(tc, bucket_set_rate);
    suite_add_tcase(s, tc);

    tc = tcase_create("addresses_and_names");
    tcase_add_test(tc, addr_checks);
    tcase_add_test(tc, spool_names);
    tcase_add_test(tc, spool_names_long);
    suite_add_tcase(s, tc);

    tc = tcase_create("loop");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, spool_delivers_later);
    tcase_add_test(tc, spool_same_id_replaces);
    tcase_add_test(tc, gate_closed_not_started);
    tcase_add_test(tc, spool_error_is_tempfail);
    tcase_add_test(tc, spool_window_grows_and_shrinks);
    tcase_add_test(tc, send_errors);
    tcase_add_test(tc, refused_address_no_network);
    tcase_add_test(tc, priorities);
    tcase_add_test(tc, rate_limit_paces);
    tcase_add_test(tc, backpressure);
    tcase_add_test(tc, free_cancels);
    tcase_add_test(tc, reload_keeps_and_retires);
    tcase_add_test(tc, breaker_opens_and_probes);
    tcase_add_test(tc, breaker_failed_probe_reopens);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dispatch_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
