/* fuzz_agent.c - the delivery agent's frame decoding (wire.h): the input
 * is what sukid reads from the agent's channel.
 *
 * Frames are split off the input as deliver_wire_next does; R frames are
 * decoded as proxy.c does. Properties: a split frame lies inside the
 * input; a decode that succeeds read the whole frame, no byte more or
 * less, with as many recipient entries as it said; a garbled frame is
 * reported as garbled (sukid then replaces the agent), never a crash.
 * Then the first input bytes give the values of an R frame that the
 * agent's encoder (deliver_wire_put_result) writes and that must decode to
 * exactly those values, and fail to decode with a byte more or one less. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(const struct deliver_wire_rd *before,
                         const struct deliver_wire_rd *after,
                         const struct deliver_wire_result *res)
{
    if (after->p < before->p || after->p + after->n != before->p + before->n)
        FAIL("reader left its frame");
    if (after->n != 0)
        FAIL("%zu bytes left over in a frame that decoded", after->n);
    if (res->n > before->n / 12)
        FAIL("%llu recipients in a %zu-byte frame", (unsigned long long)res->n,
             before->n);
}

/* Values from the input: numbers from its bytes, strings its slices. */
struct src {
    const uint8_t *p;
    size_t n;
};

static uint64_t take_u64(struct src *s)
{
    uint64_t v = 0;
    size_t k = s->n < sizeof(v) ? s->n : sizeof(v);
    memcpy(&v, s->p, k);
    s->p += k;
    s->n -= k;
    return v;
}

static void round_trip(const uint8_t *data, size_t size)
{
    struct src s = {data, size};
    struct deliver_wire_result want = {0}, got;
    want.lane_id = take_u64(&s);
    want.token = take_u64(&s);
    want.st = (int)(int32_t)take_u64(&s);
    want.code = (int)(int32_t)take_u64(&s);
    uint64_t shape = take_u64(&s);
    want.retry_after = (int64_t)take_u64(&s);
    want.cancelled = shape & 1;
    want.local = shape & 2;
    want.rcpt_sent = (size_t)(shape >> 8 & 0xff);
    want.n = shape >> 16 & 7;
    /* strings: the rest of the input in slices, one in four NULL */
    size_t slice = want.n + 1 ? s.n / (size_t)(want.n + 1) : 0;
    const char *str[8];
    size_t len[8];
    for (uint64_t i = 0; i <= want.n; i++) {
        str[i] = (shape >> (24 + 2 * i) & 3) == 0
                     ? NULL
                     : (const char *)s.p + i * slice;
        len[i] = slice;
    }
    int codes[8];
    for (uint64_t i = 0; i < want.n; i++)
        codes[i] = (int)(int16_t)(shape >> (40 + 2 * i));

    /* the agent's side: an xfer with that outcome, through its encoder */
    struct deliver_xfer x = {0};
    char *rr[8];
    x.token = want.token;
    x.res_status = (enum suki_dispatch_status)want.st;
    x.res_code = want.code;
    x.res_reply = str[0] ? suki_strndup(str[0], len[0]) : NULL;
    x.res_retry_after_ms = want.retry_after;
    x.res_cancelled = want.cancelled;
    x.local = want.local;
    x.rcpt_sent = want.rcpt_sent;
    x.n_rcpt = (size_t)want.n;
    x.rcpt_code = codes;
    x.rcpt_reply = rr;
    for (uint64_t i = 0; i < want.n; i++)
        rr[i] = str[i + 1] ? suki_strndup(str[i + 1], len[i + 1]) : NULL;
    struct suki_buf b = {0};
    deliver_wire_put_result(&b, want.lane_id, &x);
    free(x.res_reply);
    for (uint64_t i = 0; i < want.n; i++)
        free(rr[i]);

    struct deliver_wire_rd r;
    size_t whole = 0;
    char t = 0;
    if (deliver_wire_split(b.p, b.len, &t, &r, &whole) != 1 || t != 'R' ||
        whole != b.len)
        FAIL("written frame does not split");
    if (deliver_wire_split(b.p, b.len - 1, &t, &r, &whole) != 0)
        FAIL("a frame short of one byte is not 'not all there yet'");
    deliver_wire_split(b.p, b.len, &t, &r, &whole);
    if (!deliver_wire_get_result(&r, &got))
        FAIL("written R frame does not decode");
    if (r.n != 0)
        FAIL("%zu bytes left after the R frame", r.n);
    if (got.lane_id != want.lane_id || got.token != want.token ||
        got.st != want.st || got.code != want.code ||
        got.retry_after != want.retry_after ||
        got.cancelled != want.cancelled || got.local != want.local ||
        got.rcpt_sent != want.rcpt_sent || got.n != want.n)
        FAIL("R frame numbers changed");
    for (uint64_t i = 0; i <= want.n; i++) {
        const char *g = i ? got.replies[i - 1] : got.reply;
        if (!str[i] != !g ||
            (g && (strlen(g) > len[i] || memcmp(g, str[i], strlen(g)) != 0)))
            FAIL("R frame string %llu changed", (unsigned long long)i);
        if (i && got.codes[i - 1] != codes[i - 1])
            FAIL("R frame code changed");
    }
    deliver_wire_result_clear(&got);

    /* one byte more inside the frame, or one less: garbled, not a result */
    for (int d = 1; d >= -1; d -= 2) {
        struct suki_buf c = {0};
        suki_buf_add(&c, b.p, b.len);
        if (d > 0)
            suki_buf_add(&c, "", 1);
        else
            c.len--;
        uint32_t z = (uint32_t)(c.len - sizeof(z));
        memcpy(c.p, &z, sizeof(z));
        if (deliver_wire_split(c.p, c.len, &t, &r, &whole) != 1)
            FAIL("resized frame does not split");
        if (deliver_wire_get_result(&r, &got) || !r.bad)
            FAIL("an R frame with a byte %s decodes",
                 d > 0 ? "left over" : "missing");
        deliver_wire_result_clear(&got);
        free(c.p);
    }
    free(b.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t have = size;
    for (int frames = 0; frames < 64; frames++) {
        struct deliver_wire_rd r, r0;
        char type;
        size_t whole = 0;
        int rc = deliver_wire_split(p, have, &type, &r, &whole);
        if (rc <= 0)
            break;
        if (whole > have || r.p != p + 5 || r.n + 5 != whole)
            FAIL("frame of %zu bytes in %zu", whole, have);
        r0 = r;
        if (type == 'R') {
            struct deliver_wire_result res;
            bool ok = deliver_wire_get_result(&r, &res);
            if (ok != !r.bad)
                FAIL("decode result and reader disagree");
            if (ok)
                check_result(&r0, &r, &res);
            deliver_wire_result_clear(&res);
        }
        p += whole;
        have -= whole;
    }
    round_trip(data, size);
    return 0;
}
