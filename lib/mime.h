/* mime.h - build RFC 5322 / MIME email messages from structured data.
 *
 * Every header of a built message comes from a fixed list filled from the
 * fields of struct suki_mime_msg; no text from a template, an event or a
 * profile can add a header or a recipient. Addresses are checked (RFC 5321
 * dot-atom syntax, local part <= 64, whole <= 254, no control characters);
 * display names and subjects that are not plain printable ASCII are written
 * as RFC 2047 encoded-words (control characters become spaces first).
 * Bodies are UTF-8, quoted-printable, CRLF; no line exceeds 998 bytes.
 */
#ifndef SUKI_MIME_H
#define SUKI_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SUKI_MIME_ADDR_MAX 254    /* whole address, RFC 5321 4.5.3.1.3 */
#define SUKI_MIME_LOCAL_MAX 64    /* local part, RFC 5321 4.5.3.1.1 */
#define SUKI_MIME_MAX_RCPT 100    /* To: entries per message */
#define SUKI_MIME_NAME_MAX 256    /* display name, bytes */
#define SUKI_MIME_SUBJECT_MAX 998 /* subject, bytes (before encoding) */
#define SUKI_MIME_BODY_MAX (2 * 1024 * 1024) /* per body, bytes */
#define SUKI_MIME_URL_MAX 900                /* List-Unsubscribe URL */

/* "Display Name <local@domain>" split up. */
struct suki_mailbox {
    char *name; /* owned, UTF-8, NULL when there is none */
    char *addr; /* owned, checked with suki_mime_addr_valid() */
};

/* True when addr is a plain RFC 5321 mailbox local@domain: dot-atom local
 * part of at most 64 bytes, a domain of letter/digit/hyphen labels (1-63
 * bytes, no leading or trailing hyphen), at most 254 bytes in all, ASCII
 * only, no control characters, spaces or quoting. Borrows addr. */
bool suki_mime_addr_valid(const char *addr);

/* Parse "Name <addr>", "\"Quoted, Name\" <addr>", "<addr>" or "addr" into
 * out (owned strings; free with suki_mime_mailbox_clear). Refuses control
 * characters anywhere, an invalid address, invalid UTF-8 and more than one
 * address: returns -EINVAL with err filled. Borrows s. */
int suki_mime_mailbox_parse(const char *s, struct suki_mailbox *out,
                            struct suki_err *err);

/* Free the strings of m and zero it; accepts NULL. */
void suki_mime_mailbox_clear(struct suki_mailbox *m);

/* The message to build. Every pointer is borrowed for the call. */
struct suki_mime_msg {
    const struct suki_mailbox *from; /* required */
    const struct suki_mailbox *to;   /* required, n_to >= 1 */
    size_t n_to;
    const struct suki_mailbox *reply_to; /* NULL for none */
    const char *subject;                 /* UTF-8, required */
    const char *text;                    /* UTF-8 text/plain, required */
    const char *html;                    /* UTF-8 text/html or NULL */
    int64_t date_ms;                     /* Date:, written in UTC */
    const char *message_id;              /* "<id@domain>", required */
    const char *list_unsubscribe;        /* http(s) URL or NULL (campaigns) */
    const char *job_key;                 /* X-Suki-Job: value or NULL */
};

/* Build the message. Output is deterministic: the same input gives the
 * same bytes (the multipart boundary is a hash of the content), because
 * spool files are named by Message-ID and retries must resend the same
 * message. On success *out is an owned NUL-terminated buffer of *len
 * bytes with CRLF line endings and returns 0. Returns -EINVAL (bad or
 * missing field, bad address), -EILSEQ (invalid UTF-8) or -E2BIG (over a
 * limit) with err filled. */
int suki_mime_build(const struct suki_mime_msg *in, char **out, size_t *len,
                    struct suki_err *err);

/* Message-ID for a job key: "<HEX@domain>" where HEX is the first 32 hex
 * digits of SHA-256(key) and domain is the (lowercased) domain of
 * from_addr, or "suki.invalid" when it has none. Returns owned. */
char *suki_mime_message_id(const char *key, const char *from_addr);

/* RFC 5322 date of ms since the epoch, in UTC ("Thu, 27 Nov 2026 02:00:00
 * +0000"), into buf (at least 40 bytes). */
void suki_mime_date(int64_t ms, char *buf, size_t size);

#endif
