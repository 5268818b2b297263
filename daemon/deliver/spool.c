/* spool.c - the spool transport: each message becomes DIR/<name>.eml,
 * written to a temporary file, fsynced and renamed into place (a retry
 * replaces, never duplicates), and reported once the directory is fsynced
 * too. Runs on a lane thread and blocks it, which is why lanes exist. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport.h"

/* x goes back with its outcome; a failed write is not "local": a full or
 * read-only disk is a transport problem the breaker should count. */
static void spool_done(struct deliver_lane *l, struct deliver_xfer *x,
                       enum suki_dispatch_status st, const char *reply)
{
    deliver_xfer_set_result(x, st, 0, reply);
    TAILQ_INSERT_TAIL(&l->out, x, link);
}

static bool spool_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
           c == '+' || c == '=' || c == '-';
}

int suki_dispatch_spool_name(const char *message_id, char *buf, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p, *end;
    size_t o = 0;
    size_t n;
    uint64_t h = UINT64_C(14695981039346656037);
    char tail[24];

    if (!message_id)
        return -EINVAL;
    n = strlen(message_id);
    p = (const unsigned char *)message_id;
    if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
        p++;
        n -= 2;
    }
    if (n == 0)
        return -EINVAL;
    end = p + n;
    for (const unsigned char *q = p; q < end; q++) {
        h ^= *q;
        h *= UINT64_C(1099511628211);
    }
    /* 160 encoded bytes + "-" + 16 hex + ".eml" < 256 */
    for (; p < end && o < 160; p++) {
        if (spool_char_ok(*p) && !(o == 0 && *p == '.')) {
            if (o + 1 >= len)
                return -ENOSPC;
            buf[o++] = (char)*p;
        } else {
            if (o + 3 >= len)
                return -ENOSPC;
            buf[o++] = '%';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        }
    }
    if (p < end)
        snprintf(tail, sizeof(tail), "-%016llx.eml", (unsigned long long)h);
    else
        snprintf(tail, sizeof(tail), ".eml");
    n = strlen(tail);
    if (o + n + 1 > len)
        return -ENOSPC;
    memcpy(buf + o, tail, n + 1);
    return 0;
}

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

/* Files per directory fsync (and per hand-back of their results). */
#define SPOOL_CHUNK 32

void deliver_spool_init(struct deliver_spool *ss)
{
    ss->dir = NULL;
    ss->dirfd = -1;
    TAILQ_INIT(&ss->wrote);
    ss->n = 0;
}

/* fsync the directory, report the files written into it, close it. */
void deliver_spool_sync(struct deliver_lane *l, struct deliver_spool *ss)
{
    struct deliver_xfer *x;
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
            spool_done(l, x, SUKI_DISPATCH_TEMPFAIL, why);
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
 * x then waits on ss for the directory's fsync (deliver_spool_sync). Blocking,
 * on the lane. The directory is opened once per chunk and the names are
 * resolved relative to it. */
void deliver_spool_write(struct deliver_lane *l, struct deliver_xfer *x,
                         struct deliver_spool *ss)
{
    const char *dir = x->conf->spool_dir;
    char name[SUKI_DISPATCH_NAME_MAX];
    char tmp[96];
    char *reply = NULL;
    int fd = -1, rc;

    if (suki_dispatch_spool_name(x->message_id, name, sizeof(name)) != 0) {
        spool_done(l, x, SUKI_DISPATCH_PERMFAIL,
                   "spool: message has no usable Message-ID");
        return;
    }
    snprintf(tmp, sizeof(tmp), "tmp-%ld-%u-%llu-%016llx", (long)l->pid, l->id,
             (unsigned long long)++l->seq, (unsigned long long)suki_rand64());
    if (ss->dirfd >= 0 && strcmp(ss->dir, dir) != 0)
        deliver_spool_sync(l, ss);
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
        deliver_spool_sync(l, ss);
    return;
out:
    spool_done(l, x, SUKI_DISPATCH_TEMPFAIL, reply);
    free(reply);
}
