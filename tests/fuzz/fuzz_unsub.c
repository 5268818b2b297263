/* fuzz_unsub.c - unsubscribe tokens and their base64url (unsub.c).
 *
 * The input is used three ways: as a token to verify, as bytes to encode
 * and decode, and (split at its first NUL) as the client and address to
 * make a token for. Properties: a token verifies only under the secret it
 * was made with; any one-byte change to it is refused; base64url decoding
 * is the exact inverse of encoding and accepts one spelling per byte
 * string (else a token could be varied and still pass). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unsub.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The secret of the seed tokens in corpus/unsub (see README.md). */
static const char secret[] = "fuzz-secret-0123456789abcdef";
static const char other[] = "fuzz-secret-0123456789abcdeg";

static int verify(const char *key, const char *tok, size_t len, char **client,
                  char **addr, int64_t *issued)
{
    struct suki_err err = {{0}};
    int rc = suki_unsub_token_verify(key, strlen(key), tok, len, client, addr,
                                     issued, &err);
    if (rc != 0 && (*client || *addr || *issued != 0 || !err.msg[0]))
        FAIL("refused token left parts or no reason");
    if (rc == 0 && (*issued < 0 || *issued > 999999999999))
        FAIL("issue time %lld out of range", (long long)*issued);
    if (rc != 0 && rc != -EINVAL && rc != -EPERM)
        FAIL("verify returned %d", rc);
    return rc;
}

static void check_b64(const uint8_t *data, size_t size)
{
    char *enc = suki_b64url_encode(data, size);
    unsigned char *dec = NULL;
    size_t dlen = 0;
    if (strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789-_") != strlen(enc) ||
        strlen(enc) != (size * 4 + 2) / 3)
        FAIL("encoding of %zu bytes is \"%s\"", size, enc);
    if (suki_b64url_decode(enc, strlen(enc), &dec, &dlen) != 0 ||
        dlen != size || (size && memcmp(dec, data, size) != 0))
        FAIL("decode(encode(x)) != x for %zu bytes", size);
    free(dec);
    free(enc);

    /* the input as base64url: what decodes must be its one spelling */
    if (suki_b64url_decode((const char *)data, size, &dec, &dlen) == 0) {
        enc = suki_b64url_encode(dec, dlen);
        if (strlen(enc) != size || memcmp(enc, data, size) != 0)
            FAIL("\"%.*s\" decodes but encodes back as \"%s\"", (int)size,
                 (const char *)data, enc);
        free(enc);
        free(dec);
    } else if (dec) {
        FAIL("failed decode left a buffer");
    }
}

static void check_token_in(const uint8_t *data, size_t size)
{
    char *client = NULL, *addr = NULL, *again = NULL, *old = NULL;
    int64_t issued = 0;
    struct suki_err err = {{0}};
    if (verify(secret, (const char *)data, size, &client, &addr, &issued) != 0)
        return;
    /* only a token we made verifies: making it again (with its time, or in
     * the first format without one) gives the same */
    if (suki_unsub_token_make(secret, strlen(secret), client, addr, issued,
                              &again, &err) != 0 ||
        suki_unsub_token_make(secret, strlen(secret), client, addr, -1, &old,
                              &err) != 0 ||
        !((strlen(again) == size && memcmp(again, data, size) == 0) ||
          (issued == 0 && strlen(old) == size && memcmp(old, data, size) == 0)))
        FAIL("a verified token is not the one made for its parts");
    free(again);
    free(old);
    free(client);
    free(addr);
    if (verify(other, (const char *)data, size, &client, &addr, &issued) !=
        -EPERM)
        FAIL("token verified under another secret");
}

static void check_make(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, '\0', size);
    if (!nul)
        return;
    char *client =
        suki_strndup((const char *)data, (size_t)(nul - (const char *)data));
    char *addr =
        suki_strndup(nul + 1, size - (size_t)(nul + 1 - (const char *)data));
    char *tok = NULL, *c2 = NULL, *a2 = NULL;
    int64_t issued = 0, when = (int64_t)(size * 7919) % 1000000000000;
    struct suki_err err = {{0}};
    if (suki_unsub_token_make(secret, strlen(secret), client, addr,
                              size % 2 ? when : -1, &tok, &err) != 0) {
        if (tok || !err.msg[0])
            FAIL("refused make left a token or no reason");
        goto out;
    }
    size_t n = strlen(tok);
    if (n > SUKI_UNSUB_TOKEN_MAX)
        FAIL("token of %zu bytes, max %d", n, (int)SUKI_UNSUB_TOKEN_MAX);
    if (verify(secret, tok, n, &c2, &a2, &issued) != 0)
        FAIL("a token we made does not verify: %s", tok);
    if (issued != (size % 2 ? when : 0))
        FAIL("issue time %lld came back as %lld", (long long)when,
             (long long)issued);
    suki_unsub_addr_lower(addr);
    if (strcmp(c2, client) != 0 || strcmp(a2, addr) != 0)
        FAIL("token parts changed: '%s' '%s' -> '%s' '%s'", client, addr, c2,
             a2);
    free(c2);
    free(a2);
    c2 = a2 = NULL;
    if (verify(other, tok, n, &c2, &a2, &issued) != -EPERM)
        FAIL("token verified under another secret: %s", tok);
    /* one byte changed, at a place and to a value the input picks */
    size_t at = (unsigned char)client[0] % n;
    char was = tok[at];
    tok[at] = (char)(was ^ (1 + (unsigned char)addr[0] % 127));
    if (verify(secret, tok, n, &c2, &a2, &issued) == 0)
        FAIL("altered token verifies: %s", tok);
    tok[at] = was;
    /* and cut short */
    if (verify(secret, tok, n - 1, &c2, &a2, &issued) == 0)
        FAIL("truncated token verifies");
out:
    free(tok);
    free(client);
    free(addr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    check_b64(data, size);
    check_token_in(data, size);
    check_make(data, size);
    return 0;
}
