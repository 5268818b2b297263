/* bench_smtp.c - SMTP throughput of suki_dispatch against a sink.
 *
 *   bench_smtp --url smtp://127.0.0.1:PORT [--mode dispatch|bare]
 *              [--conns N] [--count M] [--size BYTES] [--window W]
 *
 * dispatch: messages go through suki_dispatch_send on a libevent loop (the
 *   daemon's path: each message copied, queued, started under the
 *   transport's max_connections, the SMTP dialogue traced for per-recipient
 *   results), keeping at most W (default 4 x conns) outstanding, refilled
 *   from the callbacks the way the caller refills under backpressure.
 * bare: the ceiling: a minimal libcurl multi loop (curl_multi_poll) with N
 *   easy handles and one pre-built message, each handle re-added as soon as
 *   it finishes so the connection cache reuses its connection.
 *
 * Prints one line: mode conns messages wall_s msgs_per_s cpu_s
 * cpu_us_per_msg maxrss_kib failed. Not a test; see bench/run-smtp.sh. */
#include "config.h"

#include <sys/resource.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "conf.h"
#include "deliver.h"
#include "log.h"
#include "util.h"

static char *msg;
static size_t msg_len;
static long count = 20000, sent, done, failed, window;
static const char *rcpt[] = {"sink@bench.test"};
static struct suki_dispatch *disp;
static struct event_base *base;

static void build_msg(long size)
{
    size_t o = 0, cap = (size_t)size + 512;

    msg = suki_malloc(cap);
    o += (size_t)snprintf(msg, cap,
                          "From: <bench@suki.test>\r\nTo: <sink@bench.test>"
                          "\r\nSubject: bench\r\nMessage-ID: <b@suki.test>"
                          "\r\n\r\n");
    while (o + 78 <= (size_t)size) {
        memset(msg + o, 'x', 76);
        o += 76;
        msg[o++] = '\r';
        msg[o++] = '\n';
    }
    msg_len = o;
}

static void send_more(void);

static void on_result(const struct suki_dispatch_result *r, void *arg)
{
    (void)arg;
    done++;
    if (r->status != SUKI_DISPATCH_SENT) {
        failed++;
        if (failed < 5)
            fprintf(stderr, "bench: %s: %s\n",
                    suki_dispatch_status_name(r->status), r->reply);
    }
    if (done == count)
        event_base_loopbreak(base);
    else
        send_more();
}

static void send_more(void)
{
    struct suki_outmsg m;

    memset(&m, 0, sizeof(m));
    m.channel = "email";
    m.from = "bench@suki.test";
    m.rcpt = rcpt;
    m.n_rcpt = 1;
    m.body = msg;
    m.body_len = msg_len;
    m.message_id = "<b@suki.test>";
    while (sent < count && sent - done < window) {
        if (suki_dispatch_send(disp, &m, on_result, NULL) != 0)
            break;
        sent++;
    }
}

static int run_dispatch(const char *url, int conns)
{
    struct suki_transport_conf tc;
    struct suki_err err = {{0}};

    memset(&tc, 0, sizeof(tc));
    tc.name = "email";
    tc.kind = SUKI_TRANSPORT_SMTP;
    tc.url = (char *)url;
    tc.starttls = SUKI_STARTTLS_OFF;
    tc.max_connections = conns;
    tc.timeout_ms = 30000;
    tc.breaker_failures = 0;
    base = event_base_new();
    disp = suki_dispatch_new(base, &err);
    if (!disp || suki_dispatch_configure(disp, &tc, 1) != 0) {
        fprintf(stderr, "bench: setup failed: %s\n", err.msg);
        return -1;
    }
    suki_dispatch_set_max_pending(disp, (size_t)window + 1);
    send_more();
    event_base_dispatch(base);
    suki_dispatch_free(disp);
    event_base_free(base);
    return 0;
}

struct bare {
    CURL *e;
    size_t off;
};

static size_t bare_read(char *buf, size_t size, size_t n, void *userp)
{
    struct bare *b = userp;
    size_t want = size * n, left = msg_len - b->off;
    if (want > left)
        want = left;
    memcpy(buf, msg + b->off, want);
    b->off += want;
    return want;
}

static int run_bare(const char *url, int conns)
{
    CURLM *multi = curl_multi_init();
    struct bare *h = suki_calloc((size_t)conns, sizeof(*h));
    struct curl_slist *rl = curl_slist_append(NULL, rcpt[0]);
    long started = 0;
    int running = 1;

    for (int i = 0; i < conns && started < count; i++) {
        CURL *e = curl_easy_init();
        h[i].e = e;
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_MAIL_FROM, "bench@suki.test");
        curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rl);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, bare_read);
        curl_easy_setopt(e, CURLOPT_READDATA, &h[i]);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg_len);
        curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)&h[i]);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
        curl_multi_add_handle(multi, e);
        started++;
    }
    while (done < count && running >= 0) {
        CURLMsg *m;
        int left;
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            char *p;
            struct bare *b;
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            if (m->data.result != CURLE_OK)
                failed++;
            done++;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, &p);
            b = (struct bare *)(void *)p;
            curl_multi_remove_handle(multi, e);
            if (started < count) {
                b->off = 0;
                curl_multi_add_handle(multi, e);
                started++;
            }
        }
        if (done < count)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    for (int i = 0; i < conns; i++) {
        if (h[i].e) {
            curl_multi_remove_handle(multi, h[i].e);
            curl_easy_cleanup(h[i].e);
        }
    }
    curl_multi_cleanup(multi);
    curl_slist_free_all(rl);
    free(h);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"mode", required_argument, NULL, 'm'},
        {"conns", required_argument, NULL, 'c'},
        {"count", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *mode = "dispatch";
    int64_t conns = 1, size = 4096, v;
    int o;
    struct rusage ru;
    int64_t t0, t1;
    double cpu;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o == 'u')
            url = optarg;
        else if (o == 'm')
            mode = optarg;
        else if (o == 'c' && suki_parse_i64(optarg, 1, 1024, &v) == 0)
            conns = v;
        else if (o == 'n' && suki_parse_i64(optarg, 1, 1 << 30, &v) == 0)
            count = (long)v;
        else if (o == 's' && suki_parse_i64(optarg, 64, 1 << 26, &v) == 0)
            size = v;
        else if (o == 'w' && suki_parse_i64(optarg, 1, 1 << 20, &v) == 0)
            window = (long)v;
        else {
            fprintf(stderr, "usage: bench_smtp --url URL [--mode "
                            "dispatch|bare] [--conns N] [--count M] "
                            "[--size BYTES] [--window W]\n");
            return 2;
        }
    }
    if (!url)
        return 2;
    if (!window)
        window = 4 * (long)conns;
    suki_log_init("bench_smtp");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    build_msg((long)size);
    t0 = suki_mono_ms();
    if (strcmp(mode, "bare") == 0)
        run_bare(url, (int)conns);
    else
        run_dispatch(url, (int)conns);
    t1 = suki_mono_ms();
    getrusage(RUSAGE_SELF, &ru);
    cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("%-8s conns=%-2lld msgs=%ld wall_s=%.2f msgs_per_s=%.0f "
           "cpu_s=%.2f cpu_us_per_msg=%.0f maxrss_kib=%ld failed=%ld\n",
           mode, (long long)conns, done, (double)(t1 - t0) / 1000.0,
           (double)done * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1), cpu,
           cpu * 1e6 / (double)(done ? done : 1), ru.ru_maxrss, failed);
    free(msg);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
