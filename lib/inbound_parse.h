/* inbound_parse.h - classify one raw message read from the mailbox that
 * receives suki's replies and bounces: a reply (the Message-IDs it
 * answers), a delivery status notification (RFC 3464), a complaint (RFC
 * 5965 feedback report), an auto-reply, something else, or malformed.
 *
 * The input is hostile: anyone can mail that mailbox. It is parsed with
 * GMime 3 (MIME structure, RFC 2047 words, charsets); limits on size and
 * on the number of parts are checked before GMime sees it. Every string
 * out is valid UTF-8 without control characters, of bounded length. The
 * parser keeps no state between calls; it runs on one thread at a time
 * (GMime's initialisation is done once, on first use). */
#ifndef SUKI_INBOUND_PARSE_H
#define SUKI_INBOUND_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Larger messages are malformed for suki: no reply or report needs more,
 * and the poller does not fetch them. */
#define SUKI_INBOUND_MAX_BYTES (10 * 1024 * 1024)
/* MIME parts (Content-Type fields) a message may have: bounds the work
 * and GMime's recursion on nested multiparts. */
#define SUKI_INBOUND_MAX_PARTS 500
/* Message-IDs kept from In-Reply-To and References */
#define SUKI_INBOUND_MAX_REFS 32
/* Recipients kept from one DSN */
#define SUKI_INBOUND_MAX_RCPTS 16
/* Bytes kept of a subject, a status diagnostic, an address */
#define SUKI_INBOUND_TEXT_MAX 256

enum suki_inbound_kind {
    SUKI_INBOUND_OTHER,     /* none of the below: left alone */
    SUKI_INBOUND_REPLY,     /* names Message-IDs in In-Reply-To/References */
    SUKI_INBOUND_DSN,       /* multipart/report; delivery-status */
    SUKI_INBOUND_COMPLAINT, /* multipart/report; feedback-report */
    SUKI_INBOUND_AUTOREPLY, /* Auto-Submitted, X-Autoreply, out-of-office */
    SUKI_INBOUND_MALFORMED, /* too large, too many parts, unparsable */
};
#define SUKI_INBOUND_KINDS 6

/* One recipient of a DSN. */
struct suki_inbound_rcpt {
    char *address;    /* owned: Final- (else Original-) Recipient, bare */
    char *status;     /* owned: "5.1.1" (from Status, else Action) */
    char *action;     /* owned or NULL: "failed", "delayed", ... */
    char *diagnostic; /* owned or NULL: Diagnostic-Code without its type */
};

/* What a message is. Every pointer owned; suki_inbound_msg_clear frees. */
struct suki_inbound_msg {
    enum suki_inbound_kind kind;
    char *why;        /* MALFORMED: why; else NULL */
    char *message_id; /* "<id>" of the message itself, or NULL */
    char *from;       /* the From address, or NULL */
    char *subject;    /* decoded (RFC 2047), or NULL */
    /* REPLY and AUTOREPLY: the ids answered, "<id>" each, In-Reply-To's
     * first, then References newest first, no repeats */
    char **refs;
    size_t n_refs;
    /* DSN and COMPLAINT: the reported message's Message-ID ("<id>", from
     * its message/rfc822 or text/rfc822-headers part), or NULL */
    char *orig_id;
    struct suki_inbound_rcpt *rcpts; /* DSN: its recipients */
    size_t n_rcpts;
    char *feedback_type; /* COMPLAINT: Feedback-Type ("abuse"), or NULL */
    char *complainant;   /* COMPLAINT: Original-Rcpt-To (else the original
                            message's To), bare address, or NULL */
};

/* Classify the len bytes at data (borrowed; need not be NUL-terminated)
 * into *out (overwritten; clear it after). Never fails: what it cannot
 * read is MALFORMED with why set. */
void suki_inbound_parse(const char *data, size_t len,
                        struct suki_inbound_msg *out);

/* Free what *m holds and zero it. NULL is fine. */
void suki_inbound_msg_clear(struct suki_inbound_msg *m);

/* "other", "reply", "dsn", "complaint", "autoreply", "malformed"
 * (static; the metric's and sukictl's labels). */
const char *suki_inbound_kind_name(enum suki_inbound_kind k);

/* True when status is a permanent failure (5.x.x). */
bool suki_inbound_status_permanent(const char *status);

#endif
