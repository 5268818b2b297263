/* fuzz_http.c - HTTP requests to sukid's real server (http.c on libevent's
 * evhttp), over loopback TCP.
 *
 * evhttp takes connections only from a listening socket, so the server is
 * the one suki_http_new binds (127.0.0.1, port 0) on a private loop, with
 * a conf loaded from a scratch file (an unsubscribe secret of our own, a
 * Redis socket path that does not exist: Redis stays down). Each input is
 * written on a fresh connection, the write side is shut, and the loop runs
 * until the server closes. Properties: the server closes within a bound
 * (no request holds it once the client has gone); what it sends is HTTP
 * responses; an unsubscribe page (GET /u/TOKEN answered 200) is only ever
 * shown for a token made under our secret, and POSTs are refused with
 * 503 (Redis is down), never 200. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "redis.h"
#include "unsub.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define WAIT_MS 3000 /* far above a loopback answer; below evhttp's 10 s */

/* The secret of the seed tokens in corpus/http (see README.md). */
static const char secret[] = "fuzz-secret-0123456789abcdef";

static struct suki_daemon D;
static struct suki_http *server;
static int port;
static char dir[200];

static void cleanup(void)
{
    char p[256];
    suki_http_free(server);
    suki_redis_free(D.redis);
    suki_conf_unref(D.conf);
    event_base_free(D.base);
    const char *names[] = {"sukid.conf", "secret", "plugins", "templates"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        if (unlink(p) < 0)
            rmdir(p);
    }
    rmdir(dir);
}

static void write_file(const char *name, const char *text, mode_t mode)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    size_t n = strlen(text);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n || close(fd) < 0)
        FAIL("cannot write %s", p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char p[256];
    struct suki_conf_diags d = {0};
    struct suki_err err = {{0}};
    suki_log_level = LOG_CRIT; /* refused tokens and Redis retries log */
    fuzz_tmpdir(dir, sizeof(dir), "http");
    snprintf(p, sizeof(p), "%s/plugins", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/templates", dir);
    mkdir(p, 0700);
    write_file("secret", secret, 0600);
    write_file("sukid.conf",
               "redis = { url = \"unix:///nonexistent/suki-fuzz.sock\";"
               " prefix = \"fuzz\"; };\n"
               "plugins = { dir = \"plugins\"; };\n"
               "templates = { dir = \"templates\"; };\n"
               "http = { listen = \"127.0.0.1:0\";"
               " public_url = \"https://suki.example\";"
               " unsubscribe_secret_file = \"secret\"; };\n",
               0600);
    snprintf(p, sizeof(p), "%s/sukid.conf", dir);
    D.conf = suki_conf_load(p, &d);
    if (!D.conf)
        FAIL("fuzz conf refused: %s", d.n ? d.v[0].msg : "?");
    D.base = event_base_new();
    D.redis = suki_redis_new(D.base, D.conf, "fuzz", NULL, NULL);
    D.started_ms = suki_now_ms();
    server = suki_http_new(&D, &err);
    if (!server)
        FAIL("suki_http_new: %s", err.msg);
    port = suki_http_port(server);
    atexit(cleanup);
    return 0;
}

struct conn {
    const uint8_t *out;
    size_t out_left;
    struct suki_buf in;
    bool connected, closed, shut;
    struct event *ev;
};

static void on_client(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (what & EV_WRITE) {
        if (!c->connected) {
            int e = 0;
            socklen_t el = sizeof(e);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e)
                FAIL("cannot connect to the server: %s", strerror(e));
            c->connected = true;
        }
        if (c->out_left) {
            ssize_t n = send(fd, c->out, c->out_left, MSG_NOSIGNAL);
            if (n > 0) {
                c->out += n;
                c->out_left -= (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                c->out_left = 0; /* the server closed first */
            }
        }
        if (!c->out_left && !c->shut) {
            shutdown(fd, SHUT_WR);
            c->shut = true;
            event_del(c->ev);
            event_assign(c->ev, D.base, fd, EV_READ | EV_PERSIST, on_client, c);
            event_add(c->ev, NULL);
        }
    }
    if (what & EV_READ) {
        char buf[16384];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0)
            suki_buf_add(&c->in, buf, (size_t)n);
        else if (n < 0 && !c->connected && errno != EAGAIN && errno != EINTR)
            FAIL("cannot connect to the server: %s", strerror(errno));
        else if (n == 0 || (errno != EAGAIN && errno != EINTR))
            c->closed = true;
    }
}

/* The request line's target when it is a GET or POST of /u/..., else
 * NULL. Owned. */
static char *unsub_target(const uint8_t *data, size_t size, bool *post)
{
    const char *p = (const char *)data;
    size_t m = 0;
    if (size > 4 && memcmp(p, "GET ", 4) == 0)
        m = 4;
    else if (size > 5 && memcmp(p, "POST ", 5) == 0)
        m = 5;
    if (!m || size < m + 3 || memcmp(p + m, "/u/", 3) != 0)
        return NULL;
    *post = m == 5;
    size_t e = m + 3;
    while (e < size && p[e] != ' ' && p[e] != '\r' && p[e] != '\n' &&
           p[e] != '?' && p[e] != '#' && p[e] != '\0')
        e++;
    return suki_strndup(p + m + 3, e - m - 3);
}

static void check_response(const uint8_t *data, size_t size,
                           const struct suki_buf *in)
{
    if (in->len == 0)
        return; /* closed without an answer: a request cut short */
    /* evhttp answers in the version of the request, whatever it was */
    int major, minor, code = 0;
    if (sscanf(in->p, "HTTP/%d.%d %3d ", &major, &minor, &code) != 3 ||
        code < 100 || code > 599)
        FAIL("not an HTTP response: %.40s", in->p);
    bool post = false;
    char *tok = unsub_target(data, size, &post);
    if (!tok)
        return;
    /* evhttp decodes %XX in the path only for its own matching: the
     * handler sees the raw path, so the token is these bytes */
    char *client = NULL, *addr = NULL;
    int64_t issued = 0;
    struct suki_err err = {{0}};
    bool good =
        suki_unsub_token_verify(secret, strlen(secret), tok, strlen(tok),
                                &client, &addr, &issued, &err) == 0;
    if (code == 200 && !good)
        FAIL("unsubscribe page for a token that does not verify: %s", tok);
    if (code == 200 && post)
        FAIL("POST unsubscribe answered 200 with Redis down");
    free(client);
    free(addr);
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Non-blocking from the start: libFuzzer's SIGALRM would interrupt a
     * blocking connect. Whether it worked shows at the first write. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || evutil_make_socket_nonblocking(fd) < 0)
        FAIL("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
        errno != EINPROGRESS && errno != EINTR)
        FAIL("cannot connect to the server: %s", strerror(errno));
    struct conn c = {.out = data, .out_left = size};
    c.ev =
        event_new(D.base, fd, EV_WRITE | EV_READ | EV_PERSIST, on_client, &c);
    event_add(c.ev, NULL);
    int64_t deadline = suki_mono_ms() + WAIT_MS;
    while (!c.closed) {
        if (suki_mono_ms() > deadline)
            FAIL("server neither answered nor closed within %d ms "
                 "(%zu bytes received)",
                 WAIT_MS, c.in.len);
        event_base_loop(D.base, EVLOOP_ONCE);
    }
    event_free(c.ev);
    close(fd);
    suki_buf_add(&c.in, "", 1); /* NUL for sscanf */
    c.in.len--;
    check_response(data, size, &c.in);
    free(c.in.p);
    return 0;
}
