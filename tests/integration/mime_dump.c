/* mime_dump.c - test helper for mime_parse.sh: builds a fixed set of
 * messages (and one per shipped template and locale) and writes each to
 * OUTDIR/NAME.eml, for Python's email package to parse.
 *
 * usage: mime_dump OUTDIR TEMPLATES_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "mime.h"
#include "template.h"
#include "util.h"

static int write_msg(const char *dir, const char *name,
                     const struct suki_mime_msg *m)
{
    struct suki_err err = {{0}};
    char *out, *path;
    size_t len;
    FILE *f;
    int rc = suki_mime_build(m, &out, &len, &err);

    if (rc < 0) {
        fprintf(stderr, "mime_dump: %s: %s\n", name, err.msg);
        return -1;
    }
    path = suki_asprintf("%s/%s.eml", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(out, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "mime_dump: cannot write %s\n", path);
        rc = -1;
    }
    free(path);
    free(out);
    return rc;
}

struct kv {
    const char *k, *v;
};

static const struct kv sample[] = {
    {"client.name", "Bahay Kubo Café & Sons"},
    {"client.id", "bahay-kubo"},
    {"client.email", "orders@bahaykubo.ph"},
    {"event.type", "meeting.held"},
    {"event.at", "2026-11-27 10:00"},
    {"data.summary", "Asked for a quote on 40 <units>"},
    {"data.contract", "CT-2026-014"},
    {"data.ends_at", "2027-01-31"},
    {"data.ticket", "T-5531"},
    {"data.severity", "high"},
    {"data.order", "SO-88812"},
    {"data.starts_at", "2026-12-03 14:00"},
    {"rule.name", "follow-up-after-meeting"},
    {"due", "2026-12-02 09:00"},
    {"manager", "maria@example.ph"},
    {"unsubscribe_url", "https://suki.example.ph/u/abc?x=1&y=2"},
    {NULL, NULL},
};

static const char *lookup(const char *var, void *arg)
{
    (void)arg;
    for (const struct kv *p = sample; p->k != NULL; p++)
        if (strcmp(p->k, var) == 0)
            return p->v;
    return NULL;
}

int main(int argc, char **argv)
{
    static const char *const names[] = {
        "followup-reminder", "renewal-alert", "complaint-escalation",
        "referral-request",  "meeting-prep",  "campaign-example",
        "referral-followup",
    };
    static const char *const locales[] = {"en", "tl"};
    struct suki_mailbox from = {"Accounts", "accounts@example.ph"};
    struct suki_mailbox to = {"José Rizal 🇵🇭", "jose@example.ph"};
    struct suki_mailbox reply = {"Maria Santos", "maria@example.ph"};
    struct suki_mailbox plain = {NULL, "ops@example.ph"};
    struct suki_mailbox evil_to = {"Maria\r\nBcc: evil@example.com",
                                   "maria@example.ph"};
    struct suki_mime_msg m;
    struct suki_conf_diags d = {0};
    struct suki_templates *t;
    char *id;
    int failed = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: mime_dump OUTDIR TEMPLATES_DIR\n");
        return 2;
    }

    memset(&m, 0, sizeof(m));
    m.from = &from;
    m.to = &plain;
    m.n_to = 1;
    m.subject = "Follow up with Acme";
    m.text = "Hello,\nplease follow up.\n";
    m.date_ms = 1795744800000; /* 2026-11-27T02:00:00Z */
    m.message_id = "<0123456789abcdef@example.ph>";
    failed |= write_msg(argv[1], "single", &m);

    m.to = &to;
    m.reply_to = &reply;
    m.subject = "Paalala: i-follow up ang Bahay Kubo Café 🍜 — salamat po! "
                "Mahaba-habang subject para matiklop sa dalawang linya";
    m.text = "Kumusta po!\n\n.dot line\nFrom the team\nlong "
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx "
             "end\ntrailing space \n";
    m.html = "<p>Kumusta po! 🍜</p>\n";
    m.list_unsubscribe = "https://suki.example.ph/u/tok123";
    m.job_key = "suki:job:follow-up:acme-ph:CT-1";
    failed |= write_msg(argv[1], "alt", &m);

    memset(&m, 0, sizeof(m));
    m.from = &from;
    m.to = &evil_to;
    m.n_to = 1;
    m.subject = "Hi\r\nBcc: evil@example.com";
    m.text = "body\n";
    m.date_ms = 0;
    m.message_id = "<inject@example.ph>";
    failed |= write_msg(argv[1], "inject", &m);

    t = suki_templates_load(argv[2], "en", &d);
    if (t == NULL) {
        for (size_t i = 0; i < d.n; i++)
            fprintf(stderr, "%s:%d: %s\n", d.v[i].file, d.v[i].line,
                    d.v[i].msg);
        suki_conf_diags_clear(&d);
        return 1;
    }
    for (size_t i = 0; i < SUKI_ARRAY_LEN(names); i++) {
        for (size_t l = 0; l < SUKI_ARRAY_LEN(locales); l++) {
            struct suki_rendered r;
            struct suki_err err = {{0}};
            char *key = suki_asprintf("suki:job:%s:bahay-kubo:%s", names[i],
                                      locales[l]);
            char *file = suki_asprintf("rendered-%s-%s", names[i], locales[l]);
            if (suki_template_render(t, names[i], locales[l], lookup, NULL, &r,
                                     &err) < 0) {
                fprintf(stderr, "mime_dump: %s\n", err.msg);
                failed = 1;
            } else {
                id = suki_mime_message_id(key, from.addr);
                memset(&m, 0, sizeof(m));
                m.from = &from;
                m.to = &to;
                m.n_to = 1;
                m.subject = r.subject;
                m.text = r.text;
                m.html = r.html;
                m.date_ms = 1795744800000;
                m.message_id = id;
                m.job_key = key;
                if (strcmp(names[i], "campaign-example") == 0)
                    m.list_unsubscribe =
                        "https://suki.example.ph/u/abc?x=1&y=2";
                failed |= write_msg(argv[1], file, &m);
                free(id);
                suki_rendered_clear(&r);
            }
            free(key);
            free(file);
        }
    }
    suki_templates_free(t);
    return failed ? 1 : 0;
}
