/* unsub.c - signed unsubscribe tokens and the shared secret. */
#include "unsub.h"
#include "redis.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Domain separation: a MAC made for something else under the same secret
 * is never a valid token, and one of the first format (no issue time)
 * never passes for the second. Both labels have the same length. */
static const char mac_label_v1[] = "suki-unsub-1";
static const char mac_label_v2[] = "suki-unsub-2";
#define MAC_LABEL_SIZE sizeof(mac_label_v1)
/* Digits of an issue time: seconds up to 10^12 (year 33658). */
#define ISSUED_DIGITS_MAX 12

char *suki_b64url_encode(const void *in, size_t len)
{
    const unsigned char *p = in;
    char *out = suki_malloc((len + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alpha[v >> 18];
        out[o++] = b64_alpha[(v >> 12) & 63];
        out[o++] = b64_alpha[(v >> 6) & 63];
        out[o++] = b64_alpha[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64_alpha[v >> 18];
        out[o++] = b64_alpha[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64_alpha[v >> 18];
        out[o++] = b64_alpha[(v >> 12) & 63];
        out[o++] = b64_alpha[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int suki_b64url_decode(const char *in, size_t in_len, unsigned char **out,
                       size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (in_len % 4 == 1)
        return -EINVAL;
    unsigned char *buf = suki_malloc(in_len / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < in_len; i++) {
        int v = b64_val((unsigned char)in[i]);
        if (v < 0) {
            free(buf);
            return -EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero, so each byte string has exactly one
     * encoding (a token cannot be varied without changing its bytes). */
    if (acc != 0) {
        free(buf);
        return -EINVAL;
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}

char *suki_unsub_addr_lower(char *addr)
{
    for (char *p = addr; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return addr;
}

static bool field_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* HMAC over label NUL payload, truncated. payload is client NUL addr
 * (label v1) or client NUL addr NUL issued (label v2). */
static void mac_of(const char *label, const void *secret, size_t secret_len,
                   const unsigned char *payload, size_t len,
                   unsigned char mac[SUKI_UNSUB_MAC_LEN])
{
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int full_len = 0;
    size_t n = MAC_LABEL_SIZE + len; /* label + its NUL + payload */
    unsigned char *msg = suki_malloc(n);
    memcpy(msg, label, MAC_LABEL_SIZE);
    memcpy(msg + MAC_LABEL_SIZE, payload, len);
    unsigned char *r =
        HMAC(EVP_sha256(), secret, (int)secret_len, msg, n, full, &full_len);
    SUKI_ASSERT(r != NULL && full_len >= SUKI_UNSUB_MAC_LEN);
    memcpy(mac, full, SUKI_UNSUB_MAC_LEN);
    OPENSSL_cleanse(full, sizeof(full));
    free(msg);
}

int suki_unsub_token_make(const void *secret, size_t secret_len,
                          const char *client, const char *addr,
                          int64_t issued_s, char **out, struct suki_err *err)
{
    *out = NULL;
    size_t cl = strlen(client), al = strlen(addr);
    if (!secret || secret_len == 0)
        return suki_err_set(err, -EINVAL, "unsubscribe secret is empty");
    if (!field_ok(client, cl, SUKI_UNSUB_CLIENT_MAX))
        return suki_err_set(err, -EINVAL,
                            "client id is empty, too long or has control "
                            "characters");
    if (!field_ok(addr, al, SUKI_UNSUB_ADDR_MAX))
        return suki_err_set(err, -EINVAL,
                            "address is empty, too long or has control "
                            "characters");
    char when[ISSUED_DIGITS_MAX + 2] = "";
    if (issued_s >= 0) {
        int w = snprintf(when, sizeof(when), "%" PRId64, issued_s);
        if (w < 1 || w > ISSUED_DIGITS_MAX)
            return suki_err_set(err, -EINVAL, "issue time out of range");
    }
    size_t wl = strlen(when);
    size_t n = cl + 1 + al + (issued_s >= 0 ? 1 + wl : 0);
    unsigned char *payload = suki_malloc(n + 1);
    memcpy(payload, client, cl);
    payload[cl] = '\0';
    memcpy(payload + cl + 1, addr, al);
    payload[cl + 1 + al] = '\0';
    if (issued_s >= 0)
        memcpy(payload + cl + 2 + al, when, wl + 1);
    payload[n] = '\0';
    suki_unsub_addr_lower((char *)payload + cl + 1);
    unsigned char mac[SUKI_UNSUB_MAC_LEN];
    mac_of(issued_s >= 0 ? mac_label_v2 : mac_label_v1, secret, secret_len,
           payload, n, mac);
    char *p64 = suki_b64url_encode(payload, n);
    char *m64 = suki_b64url_encode(mac, sizeof(mac));
    *out = suki_asprintf("%s.%s", p64, m64);
    free(p64);
    free(m64);
    free(payload);
    return 0;
}

int suki_unsub_token_verify(const void *secret, size_t secret_len,
                            const char *token, size_t token_len, char **client,
                            char **addr, int64_t *issued_s,
                            struct suki_err *err)
{
    *client = NULL;
    *addr = NULL;
    *issued_s = 0;
    if (!secret || secret_len == 0)
        return suki_err_set(err, -EINVAL, "unsubscribe secret is empty");
    if (token_len == 0 || token_len > SUKI_UNSUB_TOKEN_MAX)
        return suki_err_set(err, -EINVAL, "token is empty or too long");
    const char *dot = memchr(token, '.', token_len);
    if (!dot || memchr(dot + 1, '.', token_len - (size_t)(dot + 1 - token)))
        return suki_err_set(err, -EINVAL, "token is not PAYLOAD.MAC");
    unsigned char *payload = NULL, *mac = NULL;
    size_t plen = 0, mlen = 0;
    int rc = -EINVAL;
    if (suki_b64url_decode(token, (size_t)(dot - token), &payload, &plen) < 0 ||
        suki_b64url_decode(dot + 1, token_len - (size_t)(dot + 1 - token), &mac,
                           &mlen) < 0) {
        suki_err_set(err, -EINVAL, "token is not base64url");
        goto out;
    }
    if (mlen != SUKI_UNSUB_MAC_LEN || plen < 3) {
        suki_err_set(err, -EINVAL, "token has the wrong length");
        goto out;
    }
    /* a second NUL means the format with the issue time (the address and
     * the client cannot hold one) */
    const unsigned char *nul = memchr(payload, '\0', plen);
    const unsigned char *nul2 =
        nul ? memchr(nul + 1, '\0', plen - (size_t)(nul + 1 - payload)) : NULL;
    unsigned char want[SUKI_UNSUB_MAC_LEN];
    mac_of(nul2 ? mac_label_v2 : mac_label_v1, secret, secret_len, payload,
           plen, want);
    if (CRYPTO_memcmp(want, mac, SUKI_UNSUB_MAC_LEN) != 0) {
        rc = suki_err_set(err, -EPERM, "token signature does not match");
        goto out;
    }
    /* Signed by us, so well-formed unless the secret leaked; check anyway
     * because the caller will use the parts as keys. */
    if (!nul) {
        suki_err_set(err, -EINVAL, "token payload has no separator");
        goto out;
    }
    size_t cl = (size_t)(nul - payload), al = plen - cl - 1;
    if (nul2) {
        const unsigned char *w = nul2 + 1;
        size_t wl = plen - (size_t)(w - payload);
        int64_t v = 0;
        al = (size_t)(nul2 - nul) - 1;
        if (wl == 0 || wl > ISSUED_DIGITS_MAX || (wl > 1 && w[0] == '0')) {
            suki_err_set(err, -EINVAL, "token issue time is malformed");
            goto out;
        }
        for (size_t i = 0; i < wl; i++) {
            if (w[i] < '0' || w[i] > '9') {
                suki_err_set(err, -EINVAL, "token issue time is malformed");
                goto out;
            }
            v = v * 10 + (w[i] - '0');
        }
        *issued_s = v;
    }
    if (!field_ok((const char *)payload, cl, SUKI_UNSUB_CLIENT_MAX) ||
        !field_ok((const char *)nul + 1, al, SUKI_UNSUB_ADDR_MAX)) {
        suki_err_set(err, -EINVAL, "token payload is malformed");
        goto out;
    }
    *client = suki_strndup((const char *)payload, cl);
    *addr = suki_unsub_addr_lower(suki_strndup((const char *)nul + 1, al));
    rc = 0;
out:
    free(payload);
    free(mac);
    return rc;
}

char *suki_unsub_url(const char *public_url, const char *token)
{
    size_t n = strlen(public_url);
    while (n > 0 && public_url[n - 1] == '/')
        n--;
    return suki_asprintf("%.*s/u/%s", (int)n, public_url, token);
}

/* ---- the shared secret ---- */

struct secret_op {
    const void *owner;
    suki_unsub_secret_cb cb;
    void *arg;
    char *key;
};

static void secret_done(struct secret_op *op, const char *s, size_t len)
{
    op->cb(s, len, op->arg);
    free(op->key);
    free(op);
}

static void on_secret_get(struct suki_redis *r, redisReply *reply, void *arg)
{
    (void)r;
    struct secret_op *op = arg;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len > 0)
        secret_done(op, reply->str, reply->len);
    else
        secret_done(op, NULL, 0);
}

static void on_secret_set(struct suki_redis *r, redisReply *reply, void *arg)
{
    struct secret_op *op = arg;
    if (!r || !reply || reply->type == REDIS_REPLY_ERROR) {
        secret_done(op, NULL, 0);
        return;
    }
    const char *av[2] = {"GET", op->key};
    if (suki_redis_argv_owned(r, op->owner, on_secret_get, op, 0, 2, av, NULL) <
        0)
        secret_done(op, NULL, 0);
}

int suki_unsub_secret_fetch(struct suki_redis *r, const void *owner,
                            const char *key, suki_unsub_secret_cb cb, void *arg)
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    char hex[2 * sizeof(raw) + 1];
    suki_hex(raw, sizeof(raw), hex);
    OPENSSL_cleanse(raw, sizeof(raw));
    struct secret_op *op = suki_calloc(1, sizeof(*op));
    op->owner = owner;
    op->cb = cb;
    op->arg = arg;
    op->key = suki_strdup(key);
    const char *av[4] = {"SET", key, hex, "NX"};
    int rc = suki_redis_argv_owned(r, owner, on_secret_set, op, 0, 4, av, NULL);
    OPENSSL_cleanse(hex, sizeof(hex));
    if (rc < 0) {
        free(op->key);
        free(op);
    }
    return rc;
}
