/* compose.c - render, Message-ID, MIME, sent-marker key: every message
 * suki sends is built here. */
#include "compose.h"

#include "conf.h"
#include "mime.h"
#include "template.h"
#include "unsub.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int suki_compose_sender_init(struct suki_compose_sender *s,
                             const struct suki_transport_conf *tc,
                             bool reply_to, const char *manager,
                             struct suki_err *err)
{
    memset(s, 0, sizeof(*s));
    struct suki_err merr = {{0}};
    if (suki_mime_mailbox_parse(tc->from ? tc->from : "suki@localhost",
                                &s->from, &merr) < 0) {
        suki_compose_sender_clear(s);
        return suki_err_set(err, -EINVAL, "transport %s: bad from: %s",
                            tc->name, merr.msg);
    }
    if (!reply_to || !tc->reply_to)
        return 0;
    /* A Reply-To that does not parse is left out: the message still goes,
     * answers go to the From. */
    const char *rt = tc->reply_to;
    if (strcmp(rt, "manager") == 0)
        rt = manager && *manager ? manager : NULL;
    if (rt && suki_mime_mailbox_parse(rt, &s->reply_to, &merr) < 0)
        suki_mime_mailbox_clear(&s->reply_to);
    return 0;
}

void suki_compose_sender_clear(struct suki_compose_sender *s)
{
    if (!s)
        return;
    suki_mime_mailbox_clear(&s->from);
    suki_mime_mailbox_clear(&s->reply_to);
}

int suki_compose_render(const struct suki_templates *t, const char *name,
                        const char *locale, suki_compose_lookup_cb lookup,
                        void *arg, struct suki_rendered *out,
                        struct suki_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!t)
        return suki_err_set(err, -ENOENT, "templates are not loaded");
    return suki_template_render(t, name, locale, lookup, arg, out, err);
}

int suki_compose_mime(const struct suki_compose_mail *m, char **out,
                      size_t *len, struct suki_err *err)
{
    const struct suki_compose_sender *s = m->sender;
    struct suki_mailbox to = {.name = (char *)m->to_name,
                              .addr = (char *)m->to};
    struct suki_mime_msg mm = {
        .from = &s->from,
        .to = &to,
        .n_to = 1,
        .reply_to = s->reply_to.addr ? &s->reply_to : NULL,
        .subject = m->content->subject,
        .text = m->content->text,
        .html = m->content->html,
        .date_ms = m->date_ms,
        .message_id = m->message_id,
        .list_unsubscribe = m->list_unsubscribe,
        .job_key = m->job_key,
    };
    *out = NULL;
    int rc = suki_mime_build(&mm, out, len, err);
    if (rc < 0 && to.name && m->name_optional) {
        /* A profile's display name MIME refuses: the message goes to the
         * bare address rather than not at all. */
        to.name = NULL;
        rc = suki_mime_build(&mm, out, len, err);
    }
    if (rc < 0)
        *out = NULL;
    return rc;
}

char *suki_compose_webhook_body(const char *format, const char *subject,
                                const char *text, const char *client,
                                const char *rule)
{
    json_t *o = json_object();
    if (format && strcmp(format, "slack") == 0) {
        char *t =
            suki_asprintf("*%s*\n%s", subject ? subject : "", text ? text : "");
        json_object_set_new(o, "text", json_string(t));
        free(t);
    } else {
        json_object_set_new(o, "text", json_string(text ? text : ""));
        json_object_set_new(o, "subject", json_string(subject ? subject : ""));
        json_object_set_new(o, "client", json_string(client ? client : ""));
        json_object_set_new(o, "rule", json_string(rule ? rule : ""));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *out = suki_strdup(s ? s : "{}");
    free(s);
    return out;
}

/* ---- Message-IDs -------------------------------------------------- */

char *suki_compose_reminder_id(const char *key, int64_t due_ms,
                               const char *rcpt, const char *from_addr)
{
    /* Lower-case the recipient so that "A@x" and "a@x" (which resolve to
     * one mailbox in practice) share one id and one sent marker. */
    char *r = suki_strdup(rcpt ? rcpt : "");
    for (char *p = r; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    char *seed =
        suki_asprintf("%s\n%" PRId64 "\n%s", key ? key : "", due_ms, r);
    char *id = suki_mime_message_id(seed, from_addr);
    free(seed);
    free(r);
    return id;
}

char *suki_compose_webhook_id(const char *key, int64_t due_ms,
                              const char *channel)
{
    char *seed = suki_asprintf("webhook:%s", channel ? channel : "");
    char *id = suki_compose_reminder_id(key, due_ms, seed, NULL);
    free(seed);
    return id;
}

char *suki_compose_id_domain(const char *from_addr)
{
    const char *at = from_addr ? strrchr(from_addr, '@') : NULL;
    char *d = suki_strdup(at && at[1] ? at + 1 : "suki.invalid");
    return suki_unsub_addr_lower(d);
}

char *suki_compose_campaign_id(const char *name, const char *client,
                               const char *from_addr)
{
    /* SHA-1 because the Lua scripts compute the same id with
     * redis.sha1hex() to look for P:sent markers without a round trip;
     * it names a message, it does not protect anything. */
    char *seed = suki_asprintf("%s\n%s", name, client);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)seed, strlen(seed), md);
    char hex[2 * SHA_DIGEST_LENGTH + 1];
    suki_hex(md, sizeof(md), hex);
    char *dom = suki_compose_id_domain(from_addr);
    char *id = suki_asprintf("<%s.campaign@%s>", hex, dom);
    free(dom);
    free(seed);
    return id;
}

char *suki_compose_summary_id(const char *name, const char *gen,
                              const char *from_addr)
{
    char *seed = suki_asprintf("campaign-summary:%s:%s", name, gen);
    char *id = suki_mime_message_id(seed, from_addr);
    free(seed);
    return id;
}
