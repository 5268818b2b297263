/* proxy.c - the agent backend (lane.h) and sukid's side of the delivery
 * agent (deliver.h): starting the agent process, proxy lanes whose
 * transfers it runs, the loss of an agent (its messages come back TEMPFAIL)
 * and its restart. The agent's own side is agent.c; the frames are wire.h.
 * Everything here runs on sukid's loop. */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "deliver.h"
#include "lane.h"
#include "log.h"
#include "metrics.h"
#include "wire.h"

#define JOIN_WAIT_MS 5000     /* shutdown: how long a lane's return may take */
#define RESPAWN_DELAY_MS 1000 /* between agents that die at once */
#define MAX_ZOMBIES 16

/* Every transfer ends within its transport's timeout (libcurl's
 * CURLOPT_TIMEOUT), so a lane with messages at the agent and no answer for
 * longer than that plus this slack has a stuck agent (stopped, or hung):
 * it is killed, its messages are tried again, and a new one starts. */
#define AGENT_STUCK_SLACK_MS 10000
#define AGENT_WATCH_MS 1000

/* A lane whose transfers the agent runs: `inbox` holds what the agent has;
 * no thread field of the lane is used. */
struct plane {
    struct deliver_lane l; /* first: the front's view */
    struct suki_agent *a;
    unsigned gen;            /* the agent generation that knows it (0 none) */
    int64_t progress_ms;     /* monotonic: last hand-over or answer */
    LIST_ENTRY(plane) alink; /* on the agent's list of lanes */
};

struct suki_agent {
    struct event_base *base;
    struct suki_conf *const *confp;
    pid_t pid;
    struct bufferevent *bev; /* NULL while no agent runs */
    unsigned gen;            /* bumped at each start */
    bool closing;
    LIST_HEAD(, plane) lanes;
    uint64_t next_token, next_conf;
    struct suki_buf out;
    struct event *respawn;
    struct event *reap;
    struct event *watch; /* a stuck agent is replaced */
    int64_t started_ms;
    pid_t zombies[MAX_ZOMBIES];
    size_t n_zombies;
};

extern const struct deliver_backend deliver_proxy;

static void agent_lost(struct suki_agent *a, const char *why);

static struct plane *PL(struct deliver_lane *l)
{
    return (struct plane *)(void *)l;
}

static void send_out(struct suki_agent *a)
{
    deliver_wire_send(a->bev, &a->out);
}

static void fail_xfer(struct deliver_lane *l, struct deliver_xfer *x,
                      enum suki_dispatch_status st, const char *reply)
{
    x->local = true;
    deliver_xfer_set_result(x, st, 0, reply);
    deliver_hub_put(l->hub, x);
}

static struct plane *lane_by_id(struct suki_agent *a, uint64_t id)
{
    struct plane *p;
    LIST_FOREACH(p, &a->lanes, alink)
    {
        if (p->l.id == id)
            return p;
    }
    return NULL;
}

static void set_exited(struct deliver_lane *l)
{
    pthread_mutex_lock(&l->hub->mu);
    l->exited = true;
    pthread_mutex_unlock(&l->hub->mu);
    deliver_efd_signal(l->hub->efd);
}

/* An outcome. False only for a garbled frame; one for a message sukid no
 * longer waits for (its lane was given up at shutdown) is dropped. */
static bool frame_result(struct suki_agent *a, struct deliver_wire_rd *r)
{
    struct deliver_wire_result res;
    deliver_wire_get_result(r, &res);
    struct plane *p = r->bad ? NULL : lane_by_id(a, res.lane_id);
    struct deliver_xfer *x = NULL;
    if (p) {
        TAILQ_FOREACH(x, &p->l.inbox, link)
        {
            if (x->token == res.token)
                break;
        }
    }
    if (x && (res.st < SUKI_DISPATCH_SENT || res.st > SUKI_DISPATCH_PERMFAIL ||
              res.n != x->n_rcpt))
        r->bad = true;
    if (x && !r->bad) {
        x->res_status = (enum suki_dispatch_status)res.st;
        x->res_code = res.code;
        free(x->res_reply);
        x->res_reply = res.reply ? res.reply : suki_strdup("");
        res.reply = NULL;
        x->res_retry_after_ms = res.retry_after;
        x->res_cancelled = res.cancelled;
        x->local = res.local;
        x->rcpt_sent = res.rcpt_sent;
        for (size_t i = 0; i < x->n_rcpt; i++) {
            x->rcpt_code[i] = res.codes[i];
            free(x->rcpt_reply[i]);
            x->rcpt_reply[i] = res.replies[i];
            res.replies[i] = NULL;
        }
        TAILQ_REMOVE(&p->l.inbox, x, link);
        p->progress_ms = suki_mono_ms();
        deliver_hub_put(p->l.hub, x);
    }
    deliver_wire_result_clear(&res);
    return !r->bad;
}

/* Frames waiting in the input. False when the agent sent garbage (a frame
 * of no known type, or one field short or long). */
static bool parent_frames(struct suki_agent *a)
{
    struct evbuffer *in = bufferevent_get_input(a->bev);
    char type;
    struct deliver_wire_rd r;
    size_t whole;
    int rc;

    while ((rc = deliver_wire_next(in, &type, &r, &whole)) != 0) {
        bool ok = rc > 0;
        uint64_t id;
        if (ok && type == DELIVER_WIRE_RESULT) {
            ok = frame_result(a, &r);
        } else if (ok && type == DELIVER_WIRE_EXITED) {
            ok = deliver_wire_get_id(&r, &id);
            struct plane *p = ok ? lane_by_id(a, id) : NULL;
            if (p)
                set_exited(&p->l);
        } else {
            ok = false;
        }
        if (!ok)
            return false;
        evbuffer_drain(in, whole);
    }
    return true;
}

static void parent_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct suki_agent *a = arg;
    if (!parent_frames(a))
        agent_lost(a, "it sent a garbled frame");
}

static void parent_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct suki_agent *a = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        /* outcomes that came with the end still count */
        if (!parent_frames(a))
            agent_lost(a, "it sent a garbled frame");
        agent_lost(a, "its channel closed");
    }
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_agent *a = arg;
    for (size_t i = 0; i < a->n_zombies;) {
        int st;
        pid_t p = waitpid(a->zombies[i], &st, WNOHANG);
        if (p == 0) {
            i++;
            continue;
        }
        if (p > 0 && WIFSIGNALED(st))
            suki_warnx("delivery agent (pid %d) was killed by signal %d",
                       (int)p, WTERMSIG(st));
        else if (p > 0 && WEXITSTATUS(st) != 0)
            suki_warnx("delivery agent (pid %d) exited with status %d", (int)p,
                       WEXITSTATUS(st));
        a->zombies[i] = a->zombies[--a->n_zombies];
    }
    if (a->n_zombies > 0) {
        struct timeval tv = {0, 100 * 1000};
        evtimer_add(a->reap, &tv);
    }
}

/* Start the agent: fork, and in the child execute sukid's own binary
 * afresh as "sukid-agent" with the channel's end, so the agent starts from
 * a clean heap, no thread and no descriptor of sukid's but the channel
 * (and stdin/out/err). The binary is the one this sukid runs, by the path
 * /proc/self/exe names, and /proc/self/exe itself once a package upgrade
 * replaced the file, so both ends always speak the same frames. (The path
 * first: under valgrind /proc/self/exe is valgrind's own tool, while
 * readlink of it is the program's path.) */
static int agent_start(struct suki_agent *a, struct suki_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        suki_err_set(err, -errno, "delivery agent: socketpair: %s",
                     strerror(errno));
        return -1;
    }
    /* Everything the child needs is ready before the fork: between fork
     * and exec only async-signal-safe calls. */
    char fdarg[16];
    snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
    char *const argv[] = {(char *)"sukid-agent", (char *)SUKI_AGENT_ARG, fdarg,
                          NULL};
    static const char nomsg[] = "sukid-agent: cannot execute sukid\n";
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    static const char gone[] = " (deleted)";
    if (n <= 0 || (size_t)n >= sizeof(exe) - 1 ||
        ((size_t)n >= sizeof(gone) - 1 &&
         memcmp(exe + n - (sizeof(gone) - 1), gone, sizeof(gone) - 1) == 0))
        snprintf(exe, sizeof(exe), "/proc/self/exe");
    else
        exe[n] = '\0';
    /* Signals wait until the child has dropped sukid's handlers (which
     * would wake sukid's loop). */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        /* The agent ends when its channel closes, not on a signal sent to
         * the service's whole group: ignored signals stay ignored across
         * exec, handled ones go back to their default. */
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int fd = sv[1];
        /* Descriptors opened without O_CLOEXEC (by a library) would
         * survive the exec: close all but the channel. */
        if ((fd > 3 && close_range(3, (unsigned)fd - 1, 0) < 0) ||
            close_range((unsigned)fd + 1, ~0u, 0) < 0) {
            for (int i = 3; i < 65536; i++)
                if (i != fd)
                    close(i);
        }
        if (fcntl(fd, F_SETFD, 0) == 0)
            execv(exe, argv);
        ssize_t w = write(2, nomsg, sizeof(nomsg) - 1);
        (void)w;
        _exit(127);
    }
    int fork_errno = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        suki_err_set(err, -fork_errno, "delivery agent: fork: %s",
                     strerror(fork_errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    close(sv[1]);
    evutil_make_socket_nonblocking(sv[0]);
    a->bev = bufferevent_socket_new(a->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    if (!a->bev) {
        close(sv[0]);
        suki_err_set(err, -ENOMEM, "delivery agent: bufferevent failed");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    bufferevent_setcb(a->bev, parent_read_cb, NULL, parent_event_cb, a);
    bufferevent_set_max_single_write(a->bev, 1 << 20);
    bufferevent_enable(a->bev, EV_READ);
    a->pid = pid;
    a->gen++;
    a->started_ms = suki_mono_ms();
    /* the first frame: the agent connects to Redis only once it has it */
    deliver_wire_put_redis(&a->out, *a->confp, (*a->confp)->log_level);
    send_out(a);
    suki_notice("delivery agent started (pid %d)", (int)pid);
    return 0;
}

static void respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_agent *a = arg;
    struct suki_err err = {{0}};
    if (a->bev || a->closing)
        return;
    if (agent_start(a, &err) < 0) {
        suki_err_log("%s; trying again in 1s", err.msg);
        suki_timer_ms(a->respawn, RESPAWN_DELAY_MS);
    }
}

/* The agent died (or talks nonsense) while sukid lives: what it held may or
 * may not have gone out, so it comes back TEMPFAIL (sent again: at least
 * once), and a new agent starts. */
static void agent_lost(struct suki_agent *a, const char *why)
{
    struct plane *p;
    struct deliver_xfer *x;
    size_t n = 0;

    if (!a->bev)
        return;
    bufferevent_free(a->bev);
    a->bev = NULL;
    if (a->n_zombies < MAX_ZOMBIES) {
        a->zombies[a->n_zombies++] = a->pid;
        suki_timer_ms(a->reap, 0);
    }
    if (a->pid > 0 && a->closing == false)
        kill(a->pid, SIGKILL); /* it may be alive and confused */
    LIST_FOREACH(p, &a->lanes, alink)
    {
        while ((x = TAILQ_FIRST(&p->l.inbox)) != NULL) {
            TAILQ_REMOVE(&p->l.inbox, x, link);
            fail_xfer(&p->l, x, SUKI_DISPATCH_TEMPFAIL,
                      "delivery agent died; the message may have gone out");
            n++;
        }
        if (p->l.stop)
            set_exited(&p->l);
    }
    if (!a->closing)
        suki_metrics.agent_restarts++;
    if (!a->closing)
        suki_err_log("delivery agent (pid %d) lost: %s; %zu messages in "
                     "flight will be tried again; starting a new agent",
                     (int)a->pid, why, n);
    a->pid = 0;
    if (!a->closing)
        suki_timer_ms(a->respawn, suki_mono_ms() - a->started_ms > 10000
                                      ? 0
                                      : RESPAWN_DELAY_MS);
}

static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct suki_agent *a = arg;
    int64_t now = suki_mono_ms();
    struct plane *p;
    LIST_FOREACH(p, &a->lanes, alink)
    {
        struct deliver_xfer *x = TAILQ_FIRST(&p->l.inbox);
        if (!a->bev || !x || p->gen != a->gen)
            continue;
        int64_t limit = x->conf->timeout_ms + AGENT_STUCK_SLACK_MS;
        if (now - p->progress_ms > limit) {
            char why[96];
            snprintf(why, sizeof(why),
                     "no answer to a message for %" PRId64 " s (stuck)",
                     (now - p->progress_ms) / 1000);
            agent_lost(a, why);
            return;
        }
    }
}

struct suki_agent *suki_agent_new(struct event_base *base,
                                  struct suki_conf *const *confp,
                                  struct suki_err *err)
{
    struct suki_agent *a = suki_calloc(1, sizeof(*a));
    a->base = base;
    a->confp = confp;
    LIST_INIT(&a->lanes);
    a->respawn = evtimer_new(base, respawn_cb, a);
    a->reap = evtimer_new(base, reap_cb, a);
    a->watch = event_new(base, -1, EV_PERSIST, watch_cb, a);
    if (!a->respawn || !a->reap || !a->watch || agent_start(a, err) < 0) {
        if (!err->msg[0])
            suki_err_set(err, -ENOMEM, "delivery agent: cannot create events");
        if (a->respawn)
            event_free(a->respawn);
        if (a->reap)
            event_free(a->reap);
        if (a->watch)
            event_free(a->watch);
        free(a->out.p);
        free(a);
        return NULL;
    }
    struct timeval tv = {AGENT_WATCH_MS / 1000, 0};
    event_add(a->watch, &tv);
    return a;
}

void suki_dispatch_set_agent(struct suki_dispatch *d, struct suki_agent *a)
{
    deliver_front_set_backend(d, &deliver_proxy, a);
}

/* ------------------------------------------------------------------ */
/* the backend                                                         */

static struct deliver_lane *proxy_new(void *ctx, struct deliver_hub *hub,
                                      struct suki_err *err)
{
    (void)err;
    struct suki_agent *a = ctx;
    struct plane *p = suki_calloc(1, sizeof(*p));
    struct deliver_lane *l = &p->l;
    p->a = a;
    l->be = &deliver_proxy;
    l->hub = hub;
    l->id = hub->next_id++;
    l->efd = -1;
    TAILQ_INIT(&l->inbox);
    TAILQ_INIT(&l->running);
    TAILQ_INIT(&l->out);
    TAILQ_INIT(&l->outbox);
    LIST_INSERT_HEAD(&a->lanes, p, alink);
    return l;
}

/* Make sure the running agent knows lane p and settings c. */
static void introduce(struct suki_agent *a, struct plane *p,
                      struct deliver_tconf *c)
{
    if (p->gen != a->gen) {
        deliver_wire_put_id(&a->out, DELIVER_WIRE_LANE, p->l.id);
        send_out(a);
        p->gen = a->gen;
    }
    if (c->wire_gen == a->gen)
        return;
    if (!c->wire_id)
        c->wire_id = ++a->next_conf;
    c->wire_gen = a->gen;
    deliver_wire_put_conf(&a->out, c->wire_id, c);
    send_out(a);
}

static void proxy_post(struct deliver_lane *l, struct deliver_xq *batch)
{
    struct plane *p = PL(l);
    struct suki_agent *a = p->a;
    struct deliver_xfer *x;

    while ((x = TAILQ_FIRST(batch)) != NULL) {
        TAILQ_REMOVE(batch, x, link);
        if (!a->bev) {
            fail_xfer(l, x, SUKI_DISPATCH_TEMPFAIL,
                      "no delivery agent is running (not sent)");
            continue;
        }
        if (x->body_len > DELIVER_WIRE_MAX - (1u << 20)) {
            fail_xfer(l, x, SUKI_DISPATCH_PERMFAIL,
                      "message too large for the delivery agent (not sent)");
            continue;
        }
        introduce(a, p, x->conf);
        x->token = ++a->next_token;
        deliver_wire_put_post(&a->out, l->id, x->conf->wire_id, x);
        send_out(a);
        if (TAILQ_EMPTY(&l->inbox))
            p->progress_ms = suki_mono_ms();
        TAILQ_INSERT_TAIL(&l->inbox, x, link);
    }
}

static void proxy_stop(struct deliver_lane *l, bool abort)
{
    struct plane *p = PL(l);
    struct suki_agent *a = p->a;
    pthread_mutex_lock(&l->hub->mu);
    l->stop = true;
    pthread_mutex_unlock(&l->hub->mu);
    if (!a->bev || p->gen != a->gen) {
        /* the running agent never had it: nothing to give back */
        set_exited(l);
        return;
    }
    deliver_wire_put_stop(&a->out, l->id, abort);
    send_out(a);
}

static bool proxy_exited(struct deliver_lane *l)
{
    bool e;
    pthread_mutex_lock(&l->hub->mu);
    e = l->exited;
    pthread_mutex_unlock(&l->hub->mu);
    return e;
}

/* One round of synchronous channel traffic (only at shutdown, outside the
 * loop): write what is queued, read what came, handle the frames. */
static void sync_step(struct suki_agent *a, int wait_ms)
{
    int fd = bufferevent_getfd(a->bev);
    struct evbuffer *out = bufferevent_get_output(a->bev);
    struct pollfd p = {fd, POLLIN, 0};
    if (evbuffer_get_length(out) > 0)
        p.events |= POLLOUT;
    if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
        return;
    /* A socket bufferevent freezes the ends of its buffers that only it
     * may move; outside the loop we move them, as it does. */
    if (p.revents & POLLOUT) {
        evbuffer_unfreeze(out, 1);
        int n = evbuffer_write(out, fd);
        evbuffer_freeze(out, 1);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            agent_lost(a, "its channel failed");
            return;
        }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        struct evbuffer *in = bufferevent_get_input(a->bev);
        evbuffer_unfreeze(in, 0);
        int n = evbuffer_read(in, fd, -1);
        evbuffer_freeze(in, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            if (!parent_frames(a))
                agent_lost(a, "it sent a garbled frame");
            agent_lost(a, "its channel closed");
        } else if (!parent_frames(a)) {
            agent_lost(a, "it sent a garbled frame");
        }
    }
}

/* Only at shutdown: it reads the channel synchronously. */
static void proxy_join(struct deliver_lane *l)
{
    struct plane *p = PL(l);
    struct suki_agent *a = p->a;
    int64_t end = suki_mono_ms() + JOIN_WAIT_MS;
    struct deliver_xfer *x;

    while (!proxy_exited(l) && a->bev) {
        int64_t left = end - suki_mono_ms();
        if (left <= 0)
            break;
        sync_step(a, (int)(left < 100 ? left : 100));
    }
    while ((x = TAILQ_FIRST(&l->inbox)) != NULL) {
        TAILQ_REMOVE(&l->inbox, x, link);
        x->res_cancelled = true;
        fail_xfer(l, x, SUKI_DISPATCH_TEMPFAIL, SUKI_DISPATCH_CANCELLED);
    }
    LIST_REMOVE(p, alink);
    free(p);
}

/* Settings c are being freed: the agent may forget them. */
static void proxy_conf_gone(void *ctx, struct deliver_tconf *c)
{
    struct suki_agent *a = ctx;
    if (!a->bev || c->wire_gen != a->gen)
        return;
    deliver_wire_put_id(&a->out, DELIVER_WIRE_UNCONF, c->wire_id);
    send_out(a);
}

const struct deliver_backend deliver_proxy = {
    .lane_new = proxy_new,
    .post = proxy_post,
    .stop = proxy_stop,
    .exited = proxy_exited,
    .join = proxy_join,
    .conf_gone = proxy_conf_gone,
};

/* ------------------------------------------------------------------ */

void suki_agent_reload(struct suki_agent *a)
{
    if (!a->bev)
        return; /* a new agent reads the settings when it starts */
    deliver_wire_put_redis(&a->out, *a->confp, (*a->confp)->log_level);
    send_out(a);
}

int suki_agent_free(struct suki_agent *a, int64_t wait_ms)
{
    int rc = 0, st = 0;
    if (!a)
        return 0;
    a->closing = true;
    pid_t pid = a->pid;
    if (a->bev) {
        struct evbuffer *out = bufferevent_get_output(a->bev);
        int64_t end = suki_mono_ms() + 1000;
        while (evbuffer_get_length(out) > 0 && a->bev && suki_mono_ms() < end)
            sync_step(a, 100);
    }
    if (a->bev) {
        /* the agent sees the end and exits; shut down now, as the close
         * of a bufferevent freed outside the loop may wait for it */
        shutdown(bufferevent_getfd(a->bev), SHUT_RDWR);
        bufferevent_free(a->bev);
        a->bev = NULL;
    }
    /* It holds nothing now (every lane was joined), so it exits at once. */
    if (pid > 0) {
        int64_t end = suki_mono_ms() + wait_ms;
        pid_t p;
        while ((p = waitpid(pid, &st, WNOHANG)) == 0 && suki_mono_ms() < end)
            usleep(10 * 1000);
        if (p == 0) {
            suki_warnx("delivery agent (pid %d) still running at exit",
                       (int)pid);
            rc = -1;
        } else if (p > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            suki_warnx("delivery agent (pid %d) ended badly (wait status "
                       "%d)",
                       (int)pid, st);
            rc = -1;
        }
    }
    for (size_t i = 0; i < a->n_zombies; i++)
        waitpid(a->zombies[i], NULL, WNOHANG);
    event_free(a->respawn);
    event_free(a->reap);
    event_free(a->watch);
    free(a->out.p);
    free(a);
    return rc;
}
