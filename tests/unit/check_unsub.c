/* check_unsub.c - unsubscribe tokens: make/verify, forgeries, truncation,
 * wrong secrets, garbage, and the base64url codec underneath. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unsub.h"

static const char secret[] = "0123456789abcdef0123456789abcdef";
#define SLEN (sizeof(secret) - 1)

static char *make(const char *client, const char *addr)
{
    char *tok = NULL;
    struct suki_err err = {{0}};
    ck_assert_int_eq(
        suki_unsub_token_make(secret, SLEN, client, addr, -1, &tok, &err), 0);
    ck_assert_ptr_nonnull(tok);
    return tok;
}

static int verify(const char *tok, size_t len)
{
    char *c = (char *)1, *a = (char *)1;
    int64_t issued = -1;
    struct suki_err err = {{0}};
    int rc =
        suki_unsub_token_verify(secret, SLEN, tok, len, &c, &a, &issued, &err);
    if (rc == 0) {
        free(c);
        free(a);
    } else {
        ck_assert_ptr_null(c);
        ck_assert_ptr_null(a);
        ck_assert_msg(err.msg[0] != '\0', "no message for rc %d", rc);
    }
    return rc;
}

/* ---- base64url ---- */

START_TEST(b64_roundtrip)
{
    unsigned char in[64];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(in); n++) {
        char *e = suki_b64url_encode(in, n);
        ck_assert_uint_eq(strlen(e), (n * 4 + 2) / 3);
        ck_assert_ptr_null(strpbrk(e, "+/="));
        unsigned char *d = NULL;
        size_t dl = 0;
        ck_assert_int_eq(suki_b64url_decode(e, strlen(e), &d, &dl), 0);
        ck_assert_uint_eq(dl, n);
        ck_assert_int_eq(memcmp(d, in, n), 0);
        free(d);
        free(e);
    }
}
END_TEST

START_TEST(b64_known)
{
    char *e = suki_b64url_encode("\xfb\xff", 2);
    ck_assert_str_eq(e, "-_8");
    free(e);
    e = suki_b64url_encode("hello", 5);
    ck_assert_str_eq(e, "aGVsbG8");
    free(e);
}
END_TEST

START_TEST(b64_strict)
{
    /* padding, the standard alphabet, white space, impossible lengths and
     * non-zero leftover bits (a second spelling of the same bytes) */
    static const char *bad[] = {"aGVsbG8=",  "ab+/",  "ab/c", "aGV sbG8",
                                "a",         "aGVsb", "AB",   "aGVsbG9",
                                "aGVsbG8\n", "%41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char *d = (unsigned char *)1;
        size_t dl = 7;
        ck_assert_msg(suki_b64url_decode(bad[i], strlen(bad[i]), &d, &dl) ==
                          -EINVAL,
                      "accepted '%s'", bad[i]);
        ck_assert_ptr_null(d);
    }
}
END_TEST

/* ---- tokens ---- */

START_TEST(token_roundtrip)
{
    char *tok = make("acme-ph", "Maria@Example.PH");
    char *c = NULL, *a = NULL;
    int64_t issued = -1;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_unsub_token_verify(secret, SLEN, tok, strlen(tok), &c,
                                             &a, &issued, &err),
                     0);
    ck_assert_str_eq(c, "acme-ph");
    ck_assert_str_eq(a, "maria@example.ph");
    ck_assert_ptr_null(strpbrk(tok, "+/=%?#&"));
    ck_assert_int_eq(issued, 0); /* the first format: as if made at 0 */
    free(c);
    free(a);
    free(tok);
}
END_TEST

START_TEST(token_known_vector)
{
    /* Fixed so that links in mail already sent stay valid across
     * versions; computed independently with Python's hmac module. */
    char *tok = make("acme-ph", "maria@example.ph");
    ck_assert_str_eq(tok,
                     "YWNtZS1waABtYXJpYUBleGFtcGxlLnBo.juKt0LDDe6v8wgCPrbxRqg");
    free(tok);
}
END_TEST

static char *make_at(const char *client, const char *addr, int64_t at)
{
    char *tok = NULL;
    struct suki_err err = {{0}};
    ck_assert_int_eq(
        suki_unsub_token_make(secret, SLEN, client, addr, at, &tok, &err), 0);
    return tok;
}

START_TEST(token_issued_roundtrip)
{
    static const int64_t when[] = {0, 1, 1700000000, 999999999999};
    for (size_t i = 0; i < sizeof(when) / sizeof(when[0]); i++) {
        char *tok = make_at("acme-ph", "Maria@Example.PH", when[i]);
        char *c = NULL, *a = NULL;
        int64_t issued = -1;
        struct suki_err err = {{0}};
        ck_assert_int_eq(suki_unsub_token_verify(secret, SLEN, tok, strlen(tok),
                                                 &c, &a, &issued, &err),
                         0);
        ck_assert_str_eq(c, "acme-ph");
        ck_assert_str_eq(a, "maria@example.ph");
        ck_assert_int_eq(issued, when[i]);
        free(c);
        free(a);
        free(tok);
    }
    char *tok = (char *)1;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_unsub_token_make(secret, SLEN, "c", "a@b.ph",
                                           1000000000000, &tok, &err),
                     -EINVAL);
    ck_assert_ptr_null(tok);
}
END_TEST

START_TEST(token_issued_known_vector)
{
    /* computed independently with Python's hmac module (label
     * suki-unsub-2); tests/integration/http_unsubscribe.sh builds the
     * same in shell */
    char *tok = make_at("acme-ph", "maria@example.ph", 1700000000);
    ck_assert_str_eq(tok, "YWNtZS1waABtYXJpYUBleGFtcGxlLnBoADE3MDAwMDAwMDA."
                          "0raKESFKIN-sL4hyl2aoqA");
    free(tok);
}
END_TEST

START_TEST(token_issued_not_forgeable)
{
    /* the time is signed: a later one, or the old format's MAC over the
     * same client and address, does not pass */
    char *v2 = make_at("acme-ph", "maria@example.ph", 1700000000);
    char *v1 = make("acme-ph", "maria@example.ph");
    char *later = make_at("acme-ph", "maria@example.ph", 1800000000);
    char mix[2 * SUKI_UNSUB_TOKEN_MAX];
    int p2 = (int)(strchr(later, '.') - later);
    snprintf(mix, sizeof(mix), "%.*s%s", p2, later, strchr(v2, '.'));
    ck_assert_int_eq(verify(mix, strlen(mix)), -EPERM);
    snprintf(mix, sizeof(mix), "%.*s%s", p2, v2, strchr(v1, '.'));
    ck_assert_int_eq(verify(mix, strlen(mix)), -EPERM);
    free(v1);
    free(v2);
    free(later);
}
END_TEST

START_TEST(token_deterministic_and_distinct)
{
    char *a = make("c1", "x@example.ph");
    char *b = make("c1", "X@EXAMPLE.PH");
    char *c = make("c2", "x@example.ph");
    char *d = make("c1", "y@example.ph");
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_str_ne(a, d);
    free(a);
    free(b);
    free(c);
    free(d);
}
END_TEST

START_TEST(token_wrong_secret)
{
    char *tok = make("acme-ph", "maria@example.ph");
    static const char other[] = "0123456789abcdef0123456789abcdeF";
    char *c = NULL, *a = NULL;
    int64_t issued = -1;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_unsub_token_verify(other, sizeof(other) - 1, tok,
                                             strlen(tok), &c, &a, &issued,
                                             &err),
                     -EPERM);
    ck_assert_ptr_null(c);
    ck_assert_ptr_null(a);
    /* a prefix of the right secret is another secret */
    ck_assert_int_eq(suki_unsub_token_verify(secret, SLEN - 1, tok, strlen(tok),
                                             &c, &a, &issued, &err),
                     -EPERM);
    free(tok);
}
END_TEST

START_TEST(token_every_change_rejected)
{
    char *tok = make("acme-ph", "maria@example.ph");
    size_t n = strlen(tok);
    static const char alts[] = "AaZz09-_.+/=%";
    char *t = suki_strdup(tok);
    for (size_t i = 0; i < n; i++) {
        for (const char *p = alts; *p; p++) {
            if (*p == tok[i])
                continue;
            t[i] = *p;
            ck_assert_msg(verify(t, n) != 0, "accepted change at %zu to %c", i,
                          *p);
            t[i] = tok[i];
        }
    }
    ck_assert_int_eq(verify(t, n), 0);
    free(t);
    free(tok);
}
END_TEST

START_TEST(token_truncated_and_extended)
{
    char *tok = make("acme-ph", "maria@example.ph");
    size_t n = strlen(tok);
    for (size_t len = 0; len < n; len++)
        ck_assert_msg(verify(tok, len) != 0, "accepted prefix of %zu", len);
    /* suffixes (a dropped head) too */
    for (size_t off = 1; off < n; off++)
        ck_assert_msg(verify(tok + off, n - off) != 0, "accepted suffix at %zu",
                      off);
    char *longer = suki_malloc(n + 3);
    memcpy(longer, tok, n);
    memcpy(longer + n, "AA", 3);
    ck_assert_int_ne(verify(longer, n + 2), 0);
    free(longer);
    free(tok);
}
END_TEST

START_TEST(token_mix_and_match)
{
    /* another client's payload with a valid MAC of someone else */
    char *a = make("victim", "victim@example.ph");
    char *b = make("attacker", "attacker@example.ph");
    const char *ad = strchr(a, '.'), *bd = strchr(b, '.');
    char *mixed = NULL;
    size_t alen = (size_t)(ad - a);
    mixed = suki_malloc(alen + strlen(bd) + 1);
    memcpy(mixed, a, alen);
    memcpy(mixed + alen, bd, strlen(bd) + 1);
    ck_assert_int_eq(verify(mixed, strlen(mixed)), -EPERM);
    free(mixed);
    /* a self-made payload with a zero MAC */
    char *p64 = suki_b64url_encode("victim\0victim@example.ph", 24);
    char *m64 = suki_b64url_encode("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    size_t fl = strlen(p64) + strlen(m64) + 2;
    char *forged = suki_malloc(fl);
    snprintf(forged, fl, "%s.%s", p64, m64);
    ck_assert_int_eq(verify(forged, strlen(forged)), -EPERM);
    free(forged);
    free(p64);
    free(m64);
    free(a);
    free(b);
}
END_TEST

START_TEST(token_garbage)
{
    static const char *bad[] = {"",
                                ".",
                                "..",
                                "a.b",
                                "abc",
                                "YWNtZS1waA",
                                "YWNtZS1waABtYXJpYUBleGFtcGxlLnBo.",
                                ".juKt0LDDe6v8wgCPrbxRqg",
                                "YWNt.ZS1w.juKt0LDDe6v8wgCPrbxRqg",
                                "YWNtZS1waABtYXJpYUBleGFtcGxlLnBo.juKt0LDDe6v8"
                                "wgCPrbxRqg=",
                                "YWNtZS1waABtYXJpYUBleGFtcGxlLnBo.juKt0LDDe6v8"
                                "wgCPrbxRqgAA",
                                "../../etc/passwd",
                                "%00%00.%00",
                                "\xff\xfe\xfd.\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(verify(bad[i], strlen(bad[i])) != 0, "accepted '%s'",
                      bad[i]);
    /* a NUL inside the given length */
    ck_assert_int_ne(verify("YWJj\0.AAAA", 10), 0);
    /* random bytes */
    unsigned int seed = 12345;
    char buf[128];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = "ABCxyz019-_."[rand_r(&seed) % 12];
        ck_assert_int_ne(verify(buf, len), 0);
    }
    /* far too long */
    size_t huge = SUKI_UNSUB_TOKEN_MAX + 10;
    char *h = suki_malloc(huge);
    memset(h, 'A', huge);
    h[huge / 2] = '.';
    ck_assert_int_eq(verify(h, huge), -EINVAL);
    free(h);
}
END_TEST

START_TEST(token_make_refuses)
{
    char *tok = (char *)1;
    struct suki_err err = {{0}};
    char longc[SUKI_UNSUB_CLIENT_MAX + 2];
    memset(longc, 'c', sizeof(longc) - 1);
    longc[sizeof(longc) - 1] = '\0';
    char longa[SUKI_UNSUB_ADDR_MAX + 2];
    memset(longa, 'a', sizeof(longa) - 1);
    longa[sizeof(longa) - 1] = '\0';
    const char *cases[][2] = {{"", "a@b.ph"},      {"c", ""},
                              {"c\n", "a@b.ph"},   {"c", "a@b.ph\r\nBcc: x"},
                              {"c\x7f", "a@b.ph"}, {longc, "a@b.ph"},
                              {"c", longa}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(suki_unsub_token_make(secret, SLEN, cases[i][0],
                                               cases[i][1], 1700000000, &tok,
                                               &err),
                         -EINVAL);
        ck_assert_ptr_null(tok);
        tok = (char *)1;
    }
    ck_assert_int_eq(
        suki_unsub_token_make(secret, 0, "c", "a@b.ph", 1, &tok, &err),
        -EINVAL);
}
END_TEST

START_TEST(token_longest)
{
    char c[SUKI_UNSUB_CLIENT_MAX + 1];
    memset(c, 'c', sizeof(c) - 1);
    c[sizeof(c) - 1] = '\0';
    char a[SUKI_UNSUB_ADDR_MAX + 1];
    memset(a, 'a', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    a[10] = '@';
    char *tok = make(c, a);
    ck_assert_uint_le(strlen(tok), SUKI_UNSUB_TOKEN_MAX);
    ck_assert_int_eq(verify(tok, strlen(tok)), 0);
    free(tok);
}
END_TEST

START_TEST(token_utf8_client)
{
    char *tok = make("kliyente-ñ", "juan@example.ph");
    char *c = NULL, *a = NULL;
    int64_t issued = -1;
    struct suki_err err = {{0}};
    ck_assert_int_eq(suki_unsub_token_verify(secret, SLEN, tok, strlen(tok), &c,
                                             &a, &issued, &err),
                     0);
    ck_assert_str_eq(c, "kliyente-ñ");
    free(c);
    free(a);
    free(tok);
}
END_TEST

START_TEST(url_join)
{
    char *u = suki_unsub_url("https://suki.example.ph/", "T.K");
    ck_assert_str_eq(u, "https://suki.example.ph/u/T.K");
    free(u);
    u = suki_unsub_url("http://127.0.0.1:9187", "T.K");
    ck_assert_str_eq(u, "http://127.0.0.1:9187/u/T.K");
    free(u);
    u = suki_unsub_url("https://x.ph/suki//", "T");
    ck_assert_str_eq(u, "https://x.ph/suki/u/T");
    free(u);
}
END_TEST

static Suite *unsub_suite(void)
{
    Suite *s = suite_create("unsub");
    TCase *b = tcase_create("base64url");
    tcase_add_test(b, b64_roundtrip);
    tcase_add_test(b, b64_known);
    tcase_add_test(b, b64_strict);
    suite_add_tcase(s, b);
    TCase *t = tcase_create("token");
    tcase_add_test(t, token_roundtrip);
    tcase_add_test(t, token_known_vector);
    tcase_add_test(t, token_issued_roundtrip);
    tcase_add_test(t, token_issued_known_vector);
    tcase_add_test(t, token_issued_not_forgeable);
    tcase_add_test(t, token_deterministic_and_distinct);
    tcase_add_test(t, token_wrong_secret);
    tcase_add_test(t, token_every_change_rejected);
    tcase_add_test(t, token_truncated_and_extended);
    tcase_add_test(t, token_mix_and_match);
    tcase_add_test(t, token_garbage);
    tcase_add_test(t, token_make_refuses);
    tcase_add_test(t, token_longest);
    tcase_add_test(t, token_utf8_client);
    tcase_set_timeout(t, 60);
    suite_add_tcase(s, t);
    TCase *u = tcase_create("url");
    tcase_add_test(u, url_join);
    suite_add_tcase(s, u);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(unsub_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
