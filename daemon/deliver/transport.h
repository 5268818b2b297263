/* transport.h - private to daemon/deliver/: the three transports as the
 * thread backend (thread.c) drives them. Each file knows its protocol
 * (libcurl options, how a reply reads, what a file write needs) and sets an
 * xfer's outcome; the lane loop, the multi handle and the hand-back stay in
 * thread.c. */
#ifndef SUKI_DELIVER_TRANSPORT_H
#define SUKI_DELIVER_TRANSPORT_H

#include <curl/curl.h>

#include "lane.h"

/* Set a curl option on e; on failure remember its name in `bad`. */
#define SETOPT(e, opt, val)                                                    \
    do {                                                                       \
        if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)                   \
            bad = #opt;                                                        \
    } while (0)

/* core.c: CA file and verification of c on e. NULL, or the option that
 * libcurl refused. */
const char *deliver_curl_tls(CURL *e, const struct deliver_tconf *c);

/* smtp.c: the SMTP options of x on e (NULL, or the option refused), and
 * the outcome of its transfer once curl reports cc. */
const char *deliver_smtp_setup(struct deliver_xfer *x, CURL *e);
void deliver_smtp_outcome(struct deliver_xfer *x, CURLcode cc);

/* http.c: likewise for a webhook. */
const char *deliver_http_setup(struct deliver_xfer *x, CURL *e);
void deliver_http_outcome(struct deliver_xfer *x, CURLcode cc);

/* spool.c: files written (fsynced and renamed into place) whose directory
 * has not been fsynced yet: they are reported only after it has, so a SENT
 * spool message is durable. One directory fsync covers a chunk of files. */
struct deliver_spool {
    char *dir;               /* owned: the directory dirfd is open on */
    int dirfd;               /* -1 when none is open */
    struct deliver_xq wrote; /* renamed into place, waiting for the fsync */
    size_t n;
};

void deliver_spool_init(struct deliver_spool *ss);
/* Write x's message into its spool directory (blocking). x then waits on
 * ss, or, when the write failed, is on l->out with its outcome. */
void deliver_spool_write(struct deliver_lane *l, struct deliver_xfer *x,
                         struct deliver_spool *ss);
/* fsync the directory, put the files written into it on l->out with their
 * outcome, close it. */
void deliver_spool_sync(struct deliver_lane *l, struct deliver_spool *ss);

#endif
