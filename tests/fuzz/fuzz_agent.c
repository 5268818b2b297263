/* fuzz_agent.c - the delivery agent's frame decoding (agent_frame.h): the
 * input is what sukid reads from the agent's channel.
 *
 * Frames are split off the input as frame_next does; R frames are decoded
 * as frame_result does. Properties: a split frame lies inside the input;
 * a decode that succeeds read only inside its frame, with as many
 * recipient entries as it said; a garbled frame is reported as garbled
 * (sukid then replaces the agent), never a crash. Then the first input
 * bytes give the values of an R frame that is written in the channel's
 * layout (agent.c) and must decode to exactly those values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NULL_STR 0xffffffffu

static void check_result(const struct deliver_wire_rd *before,
                         const struct deliver_wire_rd *after,
                         const struct deliver_wire_result *res)
{
    if (after->p < before->p || after->p + after->n != before->p + before->n)
        FAIL("reader left its frame");
    if (res->n > before->n / 12)
        FAIL("%llu recipients in a %zu-byte frame", (unsigned long long)res->n,
             before->n);
}

/* ---- writing an R frame in the channel's layout ---- */

static void put_u64(struct suki_buf *b, uint64_t v)
{
    suki_buf_add(b, &v, sizeof(v));
}

static void put_str(struct suki_buf *b, const char *s, size_t n)
{
    uint32_t len = s ? (uint32_t)n : NULL_STR;
    suki_buf_add(b, &len, sizeof(len));
    if (s)
        suki_buf_add(b, s, n);
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

    struct suki_buf b = {0};
    uint32_t z = 0;
    char type = 'R';
    suki_buf_add(&b, &z, sizeof(z));
    suki_buf_add(&b, &type, 1);
    put_u64(&b, want.lane_id);
    put_u64(&b, want.token);
    put_u64(&b, (uint64_t)want.st);
    put_u64(&b, (uint64_t)(int64_t)want.code);
    put_str(&b, str[0], len[0]);
    put_u64(&b, (uint64_t)want.retry_after);
    put_u64(&b, want.cancelled);
    put_u64(&b, want.local);
    put_u64(&b, want.rcpt_sent);
    put_u64(&b, want.n);
    for (uint64_t i = 0; i < want.n; i++) {
        put_u64(&b, (uint64_t)(int64_t)codes[i]);
        put_str(&b, str[i + 1], len[i + 1]);
    }
    z = (uint32_t)(b.len - sizeof(z));
    memcpy(b.p, &z, sizeof(z));

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
