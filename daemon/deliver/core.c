/* core.c - the small pieces every part of daemon/deliver/ shares: eventfd
 * wake-ups, the hand-back to the front, an xfer's outcome and lifetime,
 * settings snapshots' lifetime, and libcurl's TLS options. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lane.h"
#include "transport.h"

void deliver_copy_clean(char *dst, size_t size, const char *s, size_t n)
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

void deliver_efd_signal(int efd)
{
    uint64_t one = 1;
    ssize_t w;

    do {
        w = write(efd, &one, sizeof(one));
    } while (w < 0 && errno == EINTR);
    /* EAGAIN means the counter is already non-zero: a wake-up is pending */
}

void deliver_efd_drain(int efd)
{
    uint64_t v;
    ssize_t r;

    do {
        r = read(efd, &v, sizeof(v));
    } while (r < 0 && errno == EINTR);
}

void deliver_hub_put(struct deliver_hub *hub, struct deliver_xfer *x)
{
    pthread_mutex_lock(&hub->mu);
    TAILQ_INSERT_TAIL(&hub->done, x, link);
    pthread_mutex_unlock(&hub->mu);
    deliver_efd_signal(hub->efd);
}

void deliver_xfer_set_result(struct deliver_xfer *x,
                             enum suki_dispatch_status st, int code,
                             const char *reply)
{
    x->res_status = st;
    x->res_code = code;
    free(x->res_reply);
    x->res_reply = suki_strdup(reply ? reply : "");
}

void deliver_xfer_clear(struct deliver_xfer *x)
{
    free(x->message_id);
    free(x->from);
    for (size_t i = 0; i < x->n_rcpt; i++) {
        free(x->rcpt[i]);
        if (x->rcpt_reply)
            free(x->rcpt_reply[i]);
    }
    free(x->rcpt);
    free(x->rcpt_reply);
    free(x->rcpt_code);
    curl_slist_free_all(x->rcpt_list);
    free(x->body);
    free(x->sent_marker);
    free(x->sent_value);
    free(x->res_reply);
}

void deliver_tconf_unref(struct deliver_tconf *c)
{
    if (!c || --c->refs > 0)
        return;
    if (c->be && c->be->conf_gone)
        c->be->conf_gone(c->be_ctx, c);
    free(c->name);
    free(c->url);
    free(c->spool_dir);
    free(c->username);
    free(c->password);
    free(c->ca_file);
    curl_slist_free_all(c->headers);
    free(c);
}

bool suki_dispatch_curl_is_tls(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
        return true;
    default:
        return false;
    }
}

const char *deliver_curl_tls(CURL *e, const struct deliver_tconf *c)
{
    const char *bad = NULL;
    if (c->ca_file)
        SETOPT(e, CURLOPT_CAINFO, c->ca_file);
    SETOPT(e, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
    SETOPT(e, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
    return bad;
}
