/* fuzz_inbound_parse.c - classifying mail from the replies-and-bounces
 * mailbox (inbound_parse.c, GMime underneath). The input is one raw
 * message. Properties, which the poller relies on when it turns the
 * result into events and Redis keys:
 *   - the kind is one of the six; MALFORMED says why and carries nothing
 *     that could be acted upon;
 *   - every string is valid UTF-8 without control characters and within
 *     SUKI_INBOUND_TEXT_MAX bytes (ids: 252);
 *   - ids are "<...>" of printable ASCII without white space;
 *   - DSN recipients have an address with '@' and a status;
 *   - the same bytes give the same result. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbound_parse.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80             ? 0
                : (c & 0xe0) == 0xc0 ? 1
                : (c & 0xf0) == 0xe0 ? 2
                : (c & 0xf8) == 0xf0 ? 3
                                     : -1;
        if (n < 0 || (c < 0x80 && (c < 0x20 || c == 0x7f)))
            return false;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return false;
    }
    return true;
}

static void check_text(const char *what, const char *s, size_t max)
{
    if (!s)
        return;
    if (!*s || strlen(s) > max || !utf8_ok(s))
        FAIL("%s is empty, long or not clean UTF-8", what);
}

static void check_id(const char *what, const char *s)
{
    if (!s)
        return;
    size_t n = strlen(s);
    if (n < 3 || n > 252 || s[0] != '<' || s[n - 1] != '>')
        FAIL("%s '%s' is not <id>", what, s);
    for (size_t i = 1; i + 1 < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f ||
            s[i] == '<' || s[i] == '>')
            FAIL("%s '%s' has a bad byte", what, s);
}

static void check(const struct suki_inbound_msg *m)
{
    if ((unsigned)m->kind >= SUKI_INBOUND_KINDS)
        FAIL("kind %d", (int)m->kind);
    if (m->kind == SUKI_INBOUND_MALFORMED) {
        if (!m->why)
            FAIL("malformed without a reason");
        if (m->n_refs || m->n_rcpts || m->orig_id || m->complainant)
            FAIL("malformed with something to act upon");
        return;
    }
    if (m->why)
        FAIL("a reason (%s) for a message that is not malformed", m->why);
    check_id("message id", m->message_id);
    check_id("original id", m->orig_id);
    check_text("from", m->from, SUKI_INBOUND_TEXT_MAX);
    check_text("subject", m->subject, SUKI_INBOUND_TEXT_MAX);
    check_text("feedback type", m->feedback_type, SUKI_INBOUND_TEXT_MAX);
    check_text("complainant", m->complainant, SUKI_INBOUND_TEXT_MAX);
    if (m->n_refs > SUKI_INBOUND_MAX_REFS ||
        m->n_rcpts > SUKI_INBOUND_MAX_RCPTS)
        FAIL("too many refs or recipients");
    if (m->kind == SUKI_INBOUND_REPLY && m->n_refs == 0)
        FAIL("a reply to nothing");
    for (size_t i = 0; i < m->n_refs; i++)
        check_id("ref", m->refs[i]);
    if (m->kind == SUKI_INBOUND_DSN && m->n_rcpts == 0)
        FAIL("a DSN without recipients");
    for (size_t i = 0; i < m->n_rcpts; i++) {
        const struct suki_inbound_rcpt *r = &m->rcpts[i];
        if (!r->address || !strchr(r->address, '@') || !r->status)
            FAIL("a DSN recipient without address or status");
        check_text("address", r->address, SUKI_INBOUND_TEXT_MAX);
        check_text("status", r->status, 16);
        check_text("action", r->action, SUKI_INBOUND_TEXT_MAX);
        check_text("diagnostic", r->diagnostic, SUKI_INBOUND_TEXT_MAX);
    }
    if (m->kind == SUKI_INBOUND_COMPLAINT && !m->feedback_type)
        FAIL("a complaint without a feedback type");
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct suki_inbound_msg a, b;
    suki_inbound_parse((const char *)data, size, &a);
    check(&a);
    suki_inbound_parse((const char *)data, size, &b);
    if (a.kind != b.kind || a.n_refs != b.n_refs || a.n_rcpts != b.n_rcpts ||
        !same_str(a.subject, b.subject) || !same_str(a.orig_id, b.orig_id))
        FAIL("the same bytes parsed differently");
    suki_inbound_msg_clear(&a);
    suki_inbound_msg_clear(&b);
    return 0;
}
