/* unsub.h - signed unsubscribe tokens (the TOKEN of PUBLIC_URL/u/TOKEN).
 *
 * A token names one client and one address and carries an HMAC-SHA256 of
 * them under the unsubscribe secret, so nobody can unsubscribe someone
 * else. Layout (every part base64url without padding):
 *
 *     B64(client NUL lower(address) NUL issued) "." B64(HMAC-SHA256(secret,
 *         "suki-unsub-2" NUL client NUL lower(address) NUL issued)[0..16))
 *
 * issued is the time the link was made, decimal seconds since the epoch,
 * so that a link made before the client's latest consent.subscribed can
 * be refused (replaying an old link must not unsubscribe again) and an
 * optional maximum age applies. Tokens of the first format, made before
 * the time was added and still in mailboxes, stay valid and count as
 * issued at 0:
 *
 *     B64(client NUL lower(address)) "." B64(HMAC-SHA256(secret,
 *         "suki-unsub-1" NUL client NUL lower(address))[0..16))
 *
 * The MAC is truncated to 128 bits (RFC 2104 section 5) to keep the URL
 * short; it is compared in constant time. The functions below the first
 * group are pure (no I/O); the secret fetch at the end talks to Redis.
 */
#ifndef SUKI_UNSUB_H
#define SUKI_UNSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SUKI_UNSUB_CLIENT_MAX 256 /* bytes of a client id in a token */
#define SUKI_UNSUB_ADDR_MAX 254   /* bytes of an address (RFC 5321) */
#define SUKI_UNSUB_MAC_LEN 16     /* truncated HMAC-SHA256 */
#define SUKI_UNSUB_SECRET_MIN 16  /* shortest secret accepted, bytes */
/* Longest token: base64url of client + NUL + address + NUL + 12 digits,
 * '.', base64url of the MAC. */
#define SUKI_UNSUB_TOKEN_MAX                                                   \
    (((SUKI_UNSUB_CLIENT_MAX + 1 + SUKI_UNSUB_ADDR_MAX + 1 + 12) * 4 + 2) /    \
         3 +                                                                   \
     1 + (SUKI_UNSUB_MAC_LEN * 4 + 2) / 3)

/* Encode len bytes of in (borrowed) as base64url without padding.
 * Returns owned NUL-terminated string. */
char *suki_b64url_encode(const void *in, size_t len);

/* Decode base64url without padding (strict: no '=', no white space, no
 * other alphabet, unused trailing bits must be zero). Borrows in. On 0,
 * *out is owned (NUL-terminated for convenience) and *out_len its length.
 * Returns -EINVAL for malformed input. */
int suki_b64url_decode(const char *in, size_t in_len, unsigned char **out,
                       size_t *out_len);

/* Lower-case an address in place (ASCII only) and return it. */
char *suki_unsub_addr_lower(char *addr);

/* Make a token for client and addr (both borrowed; addr is lower-cased
 * into the token) under secret (borrowed, secret_len >= 1), issued at
 * issued_s (seconds since the epoch, at most 12 digits; a negative
 * issued_s makes a token of the first format, without the time, which
 * only the tests need). client and addr must be non-empty, at most
 * SUKI_UNSUB_CLIENT_MAX and SUKI_UNSUB_ADDR_MAX bytes, without control
 * characters. On 0, *out is an owned token. Returns -EINVAL with err
 * filled otherwise. */
int suki_unsub_token_make(const void *secret, size_t secret_len,
                          const char *client, const char *addr,
                          int64_t issued_s, char **out, struct suki_err *err);

/* Check a token (borrowed; token_len bytes, need not be NUL-terminated)
 * under secret (borrowed). On 0, *client and *addr are owned strings (the
 * address lower-cased) and *issued_s the issue time (0 for a token of the
 * first format). Returns -EINVAL (garbled) or -EPERM (signature does not
 * match: forged, altered or made under another secret) with err filled;
 * then *client and *addr are NULL and *issued_s 0. */
int suki_unsub_token_verify(const void *secret, size_t secret_len,
                            const char *token, size_t token_len, char **client,
                            char **addr, int64_t *issued_s,
                            struct suki_err *err);

/* public_url (borrowed; trailing '/' ignored) + "/u/" + token (borrowed).
 * Returns owned. */
char *suki_unsub_url(const char *public_url, const char *token);

/* ---- the shared secret (not pure: talks to Redis) ---- */

struct suki_redis;

/* Called once with the secret (borrowed, valid during the call) or with
 * NULL/0 when Redis did not answer. */
typedef void (*suki_unsub_secret_cb)(const char *secret, size_t len, void *arg);

/* Fetch the secret shared by every sukid on one Redis: store a fresh
 * random one (256 bits, hex) at key (borrowed, e.g. "suki:secret") with
 * SET NX, then GET whatever is there, so the first daemon's secret wins
 * and the others adopt it. cb(arg) is called exactly once on 0 (with
 * NULL/0 from inside suki_redis_cancel(r, owner) when owner cancels);
 * returns -ENOTCONN (cb not called) when the link is down. */
int suki_unsub_secret_fetch(struct suki_redis *r, const void *owner,
                            const char *key, suki_unsub_secret_cb cb,
                            void *arg);

#endif
