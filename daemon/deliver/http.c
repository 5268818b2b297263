/* http.c - the webhook transport: libcurl's options for one POST, the
 * first bytes of the answer and its Retry-After, and the classification of
 * the outcome. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "transport.h"

enum suki_dispatch_status suki_dispatch_classify_http(int curl_code,
                                                      long http_status)
{
    if (curl_code != CURLE_OK)
        return SUKI_DISPATCH_TEMPFAIL;
    if (http_status >= 200 && http_status <= 299)
        return SUKI_DISPATCH_SENT;
    if (http_status == 408 || http_status == 429)
        return SUKI_DISPATCH_TEMPFAIL;
    if (http_status >= 400 && http_status <= 499)
        return SUKI_DISPATCH_PERMFAIL;
    return SUKI_DISPATCH_TEMPFAIL;
}

int suki_dispatch_parse_retry_after(const char *value, int64_t now_ms,
                                    int64_t *out_ms)
{
    char buf[96];
    const char *p;
    size_t n;
    bool digits = true;

    if (!value)
        return -EINVAL;
    while (*value == ' ' || *value == '\t')
        value++;
    n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t' ||
                     value[n - 1] == '\r' || value[n - 1] == '\n'))
        n--;
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, value, n);
    buf[n] = '\0';
    for (p = buf; *p; p++)
        if (*p < '0' || *p > '9')
            digits = false;
    if (digits) {
        int64_t s;
        /* cap at a year: a larger delay is a server bug, not a plan */
        if (suki_parse_i64(buf, 0, INT64_C(366) * 86400, &s) != 0)
            return -EINVAL;
        *out_ms = s * 1000;
        return 0;
    }
    /* HTTP-date in any of the three RFC 9110 forms; curl_getdate parses
     * them all (and a few more lenient ones). */
    time_t t = curl_getdate(buf, NULL);
    if (t == (time_t)-1)
        return -EINVAL;
    int64_t ms = (int64_t)t * 1000 - now_ms;
    *out_ms = ms > 0 ? ms : 0;
    return 0;
}

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct deliver_xfer *x = ud;
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
    struct deliver_xfer *x = ud;
    size_t n = size * nmemb;
    static const char ra[] = "retry-after:";

    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue, say) starts over */
        x->retry_after[0] = '\0';
        x->http_body_len = 0;
        x->http_body[0] = '\0';
    } else if (n > sizeof(ra) - 1 &&
               strncasecmp(ptr, ra, sizeof(ra) - 1) == 0) {
        deliver_copy_clean(x->retry_after, sizeof(x->retry_after),
                           ptr + sizeof(ra) - 1, n - (sizeof(ra) - 1));
    }
    return n;
}

const char *deliver_http_setup(struct deliver_xfer *x, CURL *e)
{
    const struct deliver_tconf *c = x->conf;
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
    const char *tbad = deliver_curl_tls(e, c);
    if (tbad)
        bad = tbad;
    return bad;
}

void deliver_http_outcome(struct deliver_xfer *x, CURLcode cc)
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
        deliver_copy_clean(body, sizeof(body), x->http_body, x->http_body_len);
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
    deliver_xfer_set_result(x, st, code, reply);
}
