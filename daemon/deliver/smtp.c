/* smtp.c - the SMTP transport: libcurl's options for one message, the
 * dialogue followed command by command (which reply answered what, per
 * recipient), and the classification of the outcome. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport.h"

#if LIBCURL_VERSION_NUM >= 0x080200
#define SUKI_CURLOPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLOWFAILS
#else
#define SUKI_CURLOPT_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLLOWFAILS
#endif

enum suki_dispatch_status suki_dispatch_classify_smtp(int curl_code,
                                                      int smtp_code,
                                                      enum suki_smtp_stage st)
{
    if (curl_code == CURLE_OK)
        return SUKI_DISPATCH_SENT;
    if (smtp_code >= 500 && smtp_code <= 599) {
        switch (st) {
        case SUKI_SMTP_MAIL:
        case SUKI_SMTP_RCPT:
        case SUKI_SMTP_DATA:
        case SUKI_SMTP_EOD:
            return SUKI_DISPATCH_PERMFAIL;
        default:
            break;
        }
    }
    return SUKI_DISPATCH_TEMPFAIL;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    struct deliver_xfer *x = userp;
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
    struct deliver_xfer *x = userp;

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
    struct deliver_xfer *x = userp;
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
    deliver_copy_clean(x->last_reply, sizeof(x->last_reply), data, size);
    if (x->stage == SUKI_SMTP_RCPT && x->cur_rcpt < x->n_rcpt) {
        x->rcpt_code[x->cur_rcpt] = code;
        free(x->rcpt_reply[x->cur_rcpt]);
        x->rcpt_reply[x->cur_rcpt] = suki_strdup(x->last_reply);
    }
    if (x->stage == SUKI_SMTP_DATA && code == 354)
        x->stage = SUKI_SMTP_EOD;
    return 0;
}

const char *deliver_smtp_setup(struct deliver_xfer *x, CURL *e)
{
    const struct deliver_tconf *c = x->conf;
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
    const char *tbad = deliver_curl_tls(e, c);
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
void deliver_smtp_outcome(struct deliver_xfer *x, CURLcode cc)
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
    deliver_xfer_set_result(x, st, code, reply);
}
