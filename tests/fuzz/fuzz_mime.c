/* fuzz_mime.c - address parsing and message building (mime.c).
 *
 * The input is NUL-separated fields: from, to (several separated by
 * \x01), reply-to ("" for none), subject, text, html (absent for none),
 * List-Unsubscribe URL, job key. Properties of a built message, which is
 * what mime.h promises and what SMTP servers and the spool rely on:
 *   - only the fixed header fields, each at most once: no text from a
 *     template, event or profile adds a header or a recipient;
 *   - 7-bit ASCII, every line CRLF-terminated and at most 998 bytes;
 *   - the same input gives the same bytes;
 *   - a text-only body decodes (quoted-printable) back to the text with
 *     its line ends made CRLF. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NF 8

static const char *const allowed[] = {"Date",
                                      "From",
                                      "To",
                                      "Reply-To",
                                      "Subject",
                                      "Message-ID",
                                      "MIME-Version",
                                      "Auto-Submitted",
                                      "List-Unsubscribe",
                                      "List-Unsubscribe-Post",
                                      "X-Suki-Job",
                                      "Content-Type",
                                      "Content-Transfer-Encoding"};

static void check_mailbox(const char *s, const struct suki_mailbox *m)
{
    if (!suki_mime_addr_valid(m->addr))
        FAIL("'%s' parsed to the invalid address '%s'", s, m->addr);
    if (strlen(m->addr) > SUKI_MIME_ADDR_MAX)
        FAIL("address too long");
    if (m->name) {
        if (!*m->name || strlen(m->name) > SUKI_MIME_NAME_MAX)
            FAIL("'%s' parsed to an empty or long name", s);
        for (const char *p = m->name; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                FAIL("control character in a parsed name");
    }
}

static void check_headers(const char *msg, size_t len)
{
    int seen[sizeof(allowed) / sizeof(allowed[0])] = {0};
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(msg + i, "\r\n\r\n", 4) == 0) {
            end = msg + i + 2;
            break;
        }
    if (!end)
        FAIL("no end of the header section");
    for (const char *l = msg; l < end;) {
        const char *eol = strstr(l, "\r\n");
        if (*l == ' ' || *l == '\t') { /* folded continuation */
            l = eol + 2;
            continue;
        }
        const char *colon = memchr(l, ':', (size_t)(eol - l));
        if (!colon)
            FAIL("header line without a name: %.*s", (int)(eol - l), l);
        size_t n = (size_t)(colon - l), k;
        for (k = 0; k < sizeof(allowed) / sizeof(allowed[0]); k++)
            if (strlen(allowed[k]) == n && memcmp(allowed[k], l, n) == 0)
                break;
        if (k == sizeof(allowed) / sizeof(allowed[0]))
            FAIL("unexpected header field: %.*s", (int)(eol - l), l);
        if (seen[k]++)
            FAIL("header field twice: %s", allowed[k]);
        l = eol + 2;
    }
}

static void check_lines(const char *msg, size_t len)
{
    size_t col = 0;
    if (strlen(msg) != len)
        FAIL("NUL in the message");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c >= 0x80)
            FAIL("8-bit byte at %zu", i);
        if (c == '\r') {
            if (i + 1 >= len || msg[i + 1] != '\n')
                FAIL("bare CR at %zu", i);
            i++;
            col = 0;
        } else if (c == '\n') {
            FAIL("bare LF at %zu", i);
        } else if (++col > 998) {
            FAIL("line over 998 bytes at %zu", i);
        }
    }
    if (col)
        FAIL("message does not end with CRLF");
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The text-only body, decoded, against the text with CRLF line ends. */
static void check_body(const char *msg, const char *text)
{
    const char *body = strstr(msg, "\r\n\r\n") + 4;
    struct suki_buf got = {0}, want = {0};
    for (const char *p = body; *p;) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=') {
            int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);
            if (l < 0)
                FAIL("bad quoted-printable escape");
            char c = (char)(h << 4 | l);
            suki_buf_add(&got, &c, 1);
            p += 3;
        } else {
            suki_buf_add(&got, p++, 1);
        }
    }
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\r' || text[i] == '\n') {
            if (text[i] == '\r' && text[i + 1] == '\n')
                i++;
            suki_buf_add(&want, "\r\n", 2);
        } else {
            suki_buf_add(&want, text + i, 1);
        }
    }
    if (n == 0 || (text[n - 1] != '\n' && text[n - 1] != '\r'))
        suki_buf_add(&want, "\r\n", 2);
    if (got.len != want.len || memcmp(got.p, want.p, got.len) != 0)
        FAIL("body does not decode back to the text");
    free(got.p);
    free(want.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* a copy with a NUL after the last field */
    char *buf = suki_malloc(size + 1), *f[NF] = {0};
    memcpy(buf, data, size);
    buf[size] = '\0';
    int nf = 0;
    for (char *p = buf; nf < NF && p <= buf + size; p += strlen(p) + 1)
        f[nf++] = p;

    struct suki_mailbox from = {0}, reply = {0}, to[8];
    size_t n_to = 0;
    struct suki_err err = {{0}};
    memset(to, 0, sizeof(to));
    bool ok = suki_mime_mailbox_parse(f[0], &from, &err) == 0;
    if (ok)
        check_mailbox(f[0], &from);
    else if (from.addr || from.name || !err.msg[0])
        FAIL("refused address left parts or no reason");
    /* the other addresses after the first go through the same checks */
    for (char *p = f[1]; p && n_to < 8;) {
        char *sep = strchr(p, '\x01');
        if (sep)
            *sep = '\0';
        if (suki_mime_mailbox_parse(p, &to[n_to], &err) == 0)
            check_mailbox(p, &to[n_to++]);
        p = sep ? sep + 1 : NULL;
    }
    bool have_reply = f[2] && *f[2];
    if (have_reply && suki_mime_mailbox_parse(f[2], &reply, &err) != 0)
        have_reply = false;

    if (ok && n_to > 0) {
        char *msgid = suki_mime_message_id(f[7] ? f[7] : "", from.addr);
        struct suki_mime_msg m = {
            .from = &from,
            .to = to,
            .n_to = n_to,
            .reply_to = have_reply ? &reply : NULL,
            .subject = f[3] ? f[3] : "",
            .text = f[4] ? f[4] : "",
            .html = f[5],
            .date_ms = 1796032800000LL,
            .message_id = msgid,
            .list_unsubscribe = f[6] && *f[6] ? f[6] : NULL,
            .job_key = f[7],
        };
        char *out = NULL, *again = NULL;
        size_t len = 0, len2 = 0;
        int rc = suki_mime_build(&m, &out, &len, &err);
        if (rc == 0) {
            check_lines(out, len);
            check_headers(out, len);
            if (suki_mime_build(&m, &again, &len2, &err) != 0 || len2 != len ||
                memcmp(out, again, len) != 0)
                FAIL("same message, different bytes");
            if (!m.html)
                check_body(out, m.text);
            free(again);
        } else if (out || !err.msg[0]) {
            FAIL("refused message left output or no reason");
        }
        free(out);
        free(msgid);
    }
    suki_mime_mailbox_clear(&from);
    suki_mime_mailbox_clear(&reply);
    for (size_t i = 0; i < n_to; i++)
        suki_mime_mailbox_clear(&to[i]);
    free(buf);
    return 0;
}
