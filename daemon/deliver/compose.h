/* compose.h - the one place a message is built: a template rendered with
 * the caller's variables, the Message-ID, the MIME bytes (lib/mime.c) or
 * a webhook's JSON body, and the P:sent:<Message-ID> key under which the
 * delivery records that the message went out.
 *
 * Reminders (sched/fire.c), campaign messages and the campaign owner's
 * summary (campaign.c) all build their messages here, so the same inputs
 * give the same bytes whoever sends them; the callers keep only what is
 * theirs: the variables (a lookup callback), the recipients and what to do
 * with the result. Nothing here does I/O or touches the loop: every
 * function may be called from anywhere, callbacks included. */
#ifndef SUKI_COMPOSE_H
#define SUKI_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime.h"
#include "util.h"

struct suki_rendered;
struct suki_templates;
struct suki_transport_conf;

/* A template variable's borrowed value, or NULL when absent (see
 * suki_template_render). */
typedef const char *(*suki_compose_lookup_cb)(const char *var, void *arg);

/* A transport's sender side, parsed once for the messages that share it. */
struct suki_compose_sender {
    struct suki_mailbox from;     /* owned: tc->from, else suki@localhost */
    struct suki_mailbox reply_to; /* owned; addr NULL when there is none */
};

/* Fill s from tc (borrowed). With reply_to, a Reply-To is added from
 * tc->reply_to: the manager (borrowed, NULL or "" for none) when it says
 * "manager", else the address it gives; one that does not parse is left
 * out. Returns 0, or -EINVAL with err filled ("transport X: bad from:
 * ...") when the From does not parse (s is then empty). Clear s with
 * suki_compose_sender_clear in either case. */
int suki_compose_sender_init(struct suki_compose_sender *s,
                             const struct suki_transport_conf *tc,
                             bool reply_to, const char *manager,
                             struct suki_err *err);

/* Free what s holds and zero it; accepts NULL. */
void suki_compose_sender_clear(struct suki_compose_sender *s);

/* Render template name of t (both borrowed; t may be NULL) in locale with
 * lookup(var, arg), called during this call only. Fills out (owned; free
 * with suki_rendered_clear) and returns 0; returns -ENOENT when t is NULL
 * or has no such template, or another negative errno from
 * suki_template_render, with err filled. */
int suki_compose_render(const struct suki_templates *t, const char *name,
                        const char *locale, suki_compose_lookup_cb lookup,
                        void *arg, struct suki_rendered *out,
                        struct suki_err *err);

/* One email: everything borrowed. */
struct suki_compose_mail {
    const struct suki_compose_sender *sender; /* From and Reply-To */
    const char *to;                           /* the recipient's address */
    const char *to_name;                      /* display name or NULL */
    bool name_optional; /* a display name MIME refuses: go without it */
    const struct suki_rendered *content; /* subject, text, optional html */
    const char *message_id;              /* from one of the *_id below */
    int64_t date_ms;                     /* Date: */
    const char *job_key;                 /* X-Suki-Job: or NULL */
    const char *list_unsubscribe;        /* List-Unsubscribe URL or NULL */
};

/* Build m as MIME bytes (suki_mime_build: the same input gives the same
 * bytes). On success *out is owned, NUL-terminated, *len bytes, and 0 is
 * returned; otherwise a negative errno with err filled and *out NULL. */
int suki_compose_mime(const struct suki_compose_mail *m, char **out,
                      size_t *len, struct suki_err *err);

/* Webhook request body for format ("json" or "slack"; NULL = json).
 * Returns owned compact JSON. */
char *suki_compose_webhook_body(const char *format, const char *subject,
                                const char *text, const char *client,
                                const char *rule);

/* ---- Message-IDs: stable, so a retry replaces a spool file and meets its
 * P:sent marker. Each returns owned "<...@domain>". ---- */

/* The reminder for recipient rcpt (compared lower-cased) of job key due at
 * due_ms; from_addr gives the domain. */
char *suki_compose_reminder_id(const char *key, int64_t due_ms,
                               const char *rcpt, const char *from_addr);

/* The one post of job key due at due_ms to webhook channel. */
char *suki_compose_webhook_id(const char *key, int64_t due_ms,
                              const char *channel);

/* "<sha1hex(name \n client).campaign@domain>": the campaign scripts compute
 * the same id in Lua (redis.sha1hex) from the domain of
 * suki_compose_id_domain(). */
char *suki_compose_campaign_id(const char *name, const char *client,
                               const char *from_addr);

/* The owner's summary of campaign name, generation gen. */
char *suki_compose_summary_id(const char *name, const char *gen,
                              const char *from_addr);

/* The lower-cased domain of from_addr (NULL is fine), "suki.invalid" when
 * it has none. Returns owned. */
char *suki_compose_id_domain(const char *from_addr);

#endif
