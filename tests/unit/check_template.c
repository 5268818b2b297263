/* check_template.c - template loading, checking and rendering. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "template.h"
#include "util.h"

/* ---- helpers ---- */

struct kv {
    const char *k, *v;
};

/* Variables for lookup: a NULL-terminated table. */
static const char *lookup_kv(const char *var, void *arg)
{
    for (const struct kv *p = arg; p != NULL && p->k != NULL; p++)
        if (strcmp(p->k, var) == 0)
            return p->v;
    return NULL;
}

static char tmpdir[256];

static void make_tmpdir(void)
{
    suki_strlcpy(tmpdir, "/tmp/check_template.XXXXXX", sizeof(tmpdir));
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char *cmd = suki_asprintf("rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}

static void write_file(const char *name, const char *content, size_t len)
{
    char *path = suki_asprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(content, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    free(path);
}

static void write_str(const char *name, const char *content)
{
    write_file(name, content, strlen(content));
}

static void unlink_file(const char *name)
{
    char *path = suki_asprintf("%s/%s", tmpdir, name);
    unlink(path);
    free(path);
}

static void print_diags(const struct suki_conf_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "%s:%d: %s\n", d->v[i].file, d->v[i].line, d->v[i].msg);
}

/* Load tmpdir, asserting success. */
static struct suki_templates *load_ok(const char *def)
{
    struct suki_conf_diags d = {0};
    struct suki_templates *t = suki_templates_load(tmpdir, def, &d);
    print_diags(&d);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_ptr_nonnull(t);
    suki_conf_diags_clear(&d);
    return t;
}

/* ---- rendering table ---- */

/* Each case: the text body (and subject), the variables and the result. */
static const struct kv vars_full[] = {
    {"client.name", "Bahay Kubo Café"},
    {"client.id", "bk-01"},
    {"data.x", "yes"},
    {"data.empty", ""},
    {"data.html", "<b>\"Tom & Jerry's\"</b>"},
    {"data.crlf", "one\r\ntwo\rthree\nfour"},
    {"data.ctl", "a\x01"
                 "b\x7f"
                 "c\td"},
    {"data.bad", "ok\xff\xfe!"},
    {NULL, NULL},
};

static const struct {
    const char *tmpl;
    const char *text; /* expected text body */
} render_cases[] = {
    {"Hi {{client.name}}!", "Hi Bahay Kubo Café!\n"},
    {"Hi {{ client.name }}!", "Hi Bahay Kubo Café!\n"},
    {"Hi {{data.absent}}!", "Hi !\n"},
    {"Hi {{client.absent.deep}}!", "Hi !\n"},
    {"{{data.html}}", "<b>\"Tom & Jerry's\"</b>\n"},
    {"{{{data.html}}}", "<b>\"Tom & Jerry's\"</b>\n"},
    {"a{{#data.x}}[{{data.x}}]{{/data.x}}b", "a[yes]b\n"},
    {"a{{#data.empty}}[x]{{/data.empty}}b", "ab\n"},
    {"a{{#data.absent}}[x]{{/data.absent}}b", "ab\n"},
    {"a{{^data.absent}}[none]{{/data.absent}}b", "a[none]b\n"},
    {"a{{^data.empty}}[none]{{/data.empty}}b", "a[none]b\n"},
    {"a{{^data.x}}[none]{{/data.x}}b", "ab\n"},
    {"{{#data.x}}{{#data.absent}}A{{/data.absent}}{{^data.absent}}B"
     "{{/data.absent}}{{/data.x}}",
     "B\n"},
    {"{{#data.absent}}{{#data.x}}A{{/data.x}}{{/data.absent}}C", "C\n"},
    /* standalone section and comment lines vanish whole */
    {"one\n{{#data.x}}\nshown\n{{/data.x}}\ntwo", "one\nshown\ntwo\n"},
    {"one\n  {{#data.absent}}  \nhidden\n{{/data.absent}}\ntwo", "one\ntwo\n"},
    {"one\n{{! a comment }}\ntwo {{! inline }}end", "one\ntwo end\n"},
    {"one\n{{^data.absent}}\nfallback\n{{/data.absent}}", "one\nfallback\n"},
    /* values are cleaned: line ends, control characters, bad UTF-8 */
    {"{{data.crlf}}", "one\ntwo\nthree\nfour\n"},
    {"{{data.ctl}}", "a b c\td\n"},
    {"{{data.bad}}", "ok\xef\xbf\xbd\xef\xbf\xbd!\n"},
    /* stray braces that are not tags stay */
    {"a } b }} c {", "a } b }} c {\n"},
    /* trailing blank lines are trimmed, one newline kept */
    {"body\n\n\n", "body\n"},
};

START_TEST(render_table)
{
    for (size_t i = 0; i < SUKI_ARRAY_LEN(render_cases); i++) {
        char *file =
            suki_asprintf("subject: S\n--- text\n%s", render_cases[i].tmpl);
        struct suki_templates *t;
        struct suki_rendered r;
        struct suki_err err = {{0}};
        make_tmpdir();
        write_str("case.en.tmpl", file);
        t = load_ok("en");
        ck_assert_int_eq(suki_template_render(t, "case", "en", lookup_kv,
                                              (void *)vars_full, &r, &err),
                         0);
        ck_assert_msg(strcmp(r.text, render_cases[i].text) == 0,
                      "case %zu '%s': got '%s' want '%s'", i,
                      render_cases[i].tmpl, r.text, render_cases[i].text);
        ck_assert_ptr_null(r.html);
        ck_assert_str_eq(r.subject, "S");
        suki_rendered_clear(&r);
        suki_templates_free(t);
        free(file);
        remove_tmpdir();
    }
}
END_TEST

START_TEST(render_html_escapes)
{
    struct suki_templates *t;
    struct suki_rendered r;
    struct suki_err err = {{0}};

    make_tmpdir();
    write_str("h.en.tmpl", "subject: {{data.html}} for {{client.name}}\n"
                           "--- text\n"
                           "{{data.html}}\n"
                           "--- html\n"
                           "<p>{{data.html}}</p>\n"
                           "<p>{{{data.html}}}</p>\n"
                           "<p>{{& data.html}}</p>\n"
                           "<a href=\"{{unsubscribe_url}}\">u</a>\n");
    t = load_ok("en");
    struct kv v[] = {{"data.html", "<b>\"Tom & Jerry's\"</b>"},
                     {"client.name", "A<B>"},
                     {"unsubscribe_url", "https://x.ph/u/a?b=1&c=\"2\""},
                     {NULL, NULL}};
    ck_assert_int_eq(suki_template_render(t, "h", NULL, lookup_kv, v, &r, &err),
                     0);
    ck_assert_str_eq(r.subject, "<b>\"Tom & Jerry's\"</b> for A<B>");
    ck_assert_str_eq(r.text, "<b>\"Tom & Jerry's\"</b>\n");
    ck_assert_str_eq(
        r.html, "<p>&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;</p>\n"
                "<p><b>\"Tom & Jerry's\"</b></p>\n"
                "<p><b>\"Tom & Jerry's\"</b></p>\n"
                "<a href=\"https://x.ph/u/a?b=1&amp;c=&quot;2&quot;\">u</a>\n");
    ck_assert_str_eq(r.locale, "en");
    suki_rendered_clear(&r);
    suki_templates_free(t);
    remove_tmpdir();
}
END_TEST

START_TEST(render_subject_one_line)
{
    struct suki_templates *t;
    struct suki_rendered r;
    struct suki_err err = {{0}};
    char big[2000];

    make_tmpdir();
    write_str("s.en.tmpl", "subject:   Re: {{client.name}} {{data.x}}  \n"
                           "--- text\nx\n");
    t = load_ok("en");
    struct kv v[] = {{"client.name", "A\r\nBcc: evil@example.com\x01"},
                     {"data.x", "\n\t"},
                     {NULL, NULL}};
    ck_assert_int_eq(suki_template_render(t, "s", "en", lookup_kv, v, &r, &err),
                     0);
    ck_assert_str_eq(r.subject, "Re: A  Bcc: evil@example.com");
    ck_assert_ptr_null(strpbrk(r.subject, "\r\n\t\x01"));
    suki_rendered_clear(&r);

    /* Unicode line and paragraph separators and NEL break the line too. */
    struct kv u[] = {{"client.name", "A\xe2\x80\xa8"
                                     "B\xe2\x80\xa9"
                                     "C\xc2\x85"
                                     "D"},
                     {"data.x", "\xe2\x80\xa6"},
                     {NULL, NULL}};
    ck_assert_int_eq(suki_template_render(t, "s", "en", lookup_kv, u, &r, &err),
                     0);
    ck_assert_str_eq(r.subject, "Re: A B C D \xe2\x80\xa6");
    suki_rendered_clear(&r);

    /* Over-long subjects are cut at a character boundary. */
    for (size_t i = 0; i + 2 < sizeof(big); i += 2) {
        big[i] = '\xc3';
        big[i + 1] = '\xb1'; /* ñ */
    }
    big[sizeof(big) - 2] = '\0';
    struct kv v2[] = {{"client.name", "x"}, {"data.x", big}, {NULL, NULL}};
    ck_assert_int_eq(
        suki_template_render(t, "s", "en", lookup_kv, v2, &r, &err), 0);
    ck_assert_uint_le(strlen(r.subject), SUKI_TEMPLATE_SUBJECT_MAX);
    ck_assert_uint_ge(strlen(r.subject), SUKI_TEMPLATE_SUBJECT_MAX - 1);
    ck_assert_int_eq(r.subject[strlen(r.subject) - 1], '\xb1');
    suki_rendered_clear(&r);
    suki_templates_free(t);
    remove_tmpdir();
}
END_TEST

START_TEST(render_body_too_big)
{
    struct suki_templates *t;
    struct suki_rendered r;
    struct suki_err err = {{0}};
    size_t n = SUKI_TEMPLATE_BODY_MAX / 2 + 10;
    char *big = suki_malloc(n + 1);

    memset(big, 'a', n);
    big[n] = '\0';
    make_tmpdir();
    write_str("b.en.tmpl", "subject: s\n--- text\n{{data.a}}{{data.a}}\n");
    t = load_ok("en");
    struct kv v[] = {{"data.a", big}, {NULL, NULL}};
    ck_assert_int_eq(suki_template_render(t, "b", "en", lookup_kv, v, &r, &err),
                     -E2BIG);
    ck_assert_ptr_null(r.text);
    ck_assert_ptr_null(r.subject);
    ck_assert_ptr_nonnull(strstr(err.msg, "b"));
    free(big);
    suki_templates_free(t);
    remove_tmpdir();
}
END_TEST

START_TEST(locale_fallback)
{
    static const struct {
        const char *def, *asked, *got;
    } cases[] = {
        {"en", "tl", "tl"},       {"en", "tl_PH.UTF-8", "tl"},
        {"en", "TL-ph", "tl"},    {"en", "fr", "en"},
        {"en", NULL, "en"},       {"en", "", "en"},
        {"en", "en_US", "en_US"}, {"en", "en-us", "en_US"},
        {"en", "en_GB", "en"},    {"tl", "fr", "tl"},
        {"tl", NULL, "tl"},       {"en", "tl@euro", "tl"},
    };
    make_tmpdir();
    write_str("x.en.tmpl", "subject: English\n--- text\nHello\n");
    write_str("x.tl.tmpl", "subject: Tagalog\n--- text\nKumusta\n");
    write_str("x.en_US.tmpl", "subject: US\n--- text\nHowdy\n");
    for (size_t i = 0; i < SUKI_ARRAY_LEN(cases); i++) {
        struct suki_templates *t = load_ok(cases[i].def);
        struct suki_rendered r;
        struct suki_err err = {{0}};
        ck_assert_int_eq(
            suki_template_render(t, "x", cases[i].asked, NULL, NULL, &r, &err),
            0);
        ck_assert_msg(strcmp(r.locale, cases[i].got) == 0,
                      "default %s asked %s: got %s want %s", cases[i].def,
                      cases[i].asked ? cases[i].asked : "(null)", r.locale,
                      cases[i].got);
        suki_rendered_clear(&r);
        suki_templates_free(t);
    }
    remove_tmpdir();
}
END_TEST

START_TEST(missing_template)
{
    struct suki_templates *t;
    struct suki_rendered r;
    struct suki_err err = {{0}};

    make_tmpdir();
    write_str("a.en.tmpl", "subject: a\n--- text\na\n");
    write_str("README", "not a template\n");
    write_str(".hidden.en.tmpl", "broken {{");
    write_str("b.en.tmpl~", "broken {{");
    t = load_ok("en");
    ck_assert(suki_templates_has(t, "a"));
    ck_assert(!suki_templates_has(t, "b"));
    ck_assert(!suki_templates_has(t, NULL));
    ck_assert_uint_eq(suki_templates_count(t), 1);
    ck_assert_int_eq(suki_template_render(t, "b", "en", NULL, NULL, &r, &err),
                     -ENOENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "'b'"));
    suki_templates_free(t);
    suki_templates_free(NULL);
    suki_rendered_clear(NULL);
    remove_tmpdir();
}
END_TEST

START_TEST(crlf_file_and_empty_dir)
{
    struct suki_templates *t;
    struct suki_rendered r;
    struct suki_err err = {{0}};

    make_tmpdir();
    t = load_ok("en");
    ck_assert_uint_eq(suki_templates_count(t), 0);
    suki_templates_free(t);

    write_str("c.en.tmpl", "# comment\r\n\r\nsubject: Hi {{client.id}}\r\n"
                           "--- text\r\nline 1\r\nline 2\r\n--- html\r\n"
                           "<p>x</p>\r\n");
    t = load_ok("en");
    struct kv v[] = {{"client.id", "c1"}, {NULL, NULL}};
    ck_assert_int_eq(suki_template_render(t, "c", "en", lookup_kv, v, &r, &err),
                     0);
    ck_assert_str_eq(r.subject, "Hi c1");
    ck_assert_str_eq(r.text, "line 1\nline 2\n");
    ck_assert_str_eq(r.html, "<p>x</p>\n");
    suki_rendered_clear(&r);
    suki_templates_free(t);
    remove_tmpdir();
}
END_TEST

/* ---- errors ---- */

START_TEST(load_errors_fixtures)
{
    static const struct {
        const char *file;
        int line;
        const char *msg; /* substring */
    } want[] = {
        {"badfilename.tmpl", 0, "NAME.LOCALE.tmpl"},
        {"bad-var-name.en.tmpl", 4, "bad variable name 'client name'"},
        {"control-char.en.tmpl", 3, "control character 0x01"},
        {"duplicate-subject.en.tmpl", 3, "duplicate 'subject'"},
        {"empty-tag.en.tmpl", 3, "empty tag"},
        {"html-before-text.en.tmpl", 2, "'--- html' before '--- text'"},
        {"invalid-utf8.en.tmpl", 4, "invalid UTF-8"},
        {"mismatched-close.en.tmpl", 6,
         "'{{/data.b}}' does not match '{{#data.a}}' opened on line 4"},
        {"missing-subject.en.tmpl", 2, "missing 'subject:' header"},
        {"missing-text.en.tmpl", 3, "missing '--- text' line"},
        {"no-default.tl.tmpl", 0, "no variant in the default locale 'en'"},
        {"stray-close.en.tmpl", 5, "closes no open section"},
        {"subject-cr.en.tmpl", 1, "bare carriage return"},
        {"subject-section.en.tmpl", 2, "unclosed section '{{#client.name}}'"},
        {"triple-unclosed.en.tmpl", 3, "unclosed tag '{{{'"},
        {"unclosed-section.en.tmpl", 5, "unclosed section '{{^data.x}}'"},
        {"unclosed-tag.en.tmpl", 4, "unclosed tag '{{'"},
        {"unknown-header.en.tmpl", 2, "unknown header 'from'"},
        {"unknown-marker.en.tmpl", 4, "unexpected '--- htm'"},
        {"unknown-root.en.tmpl", 3, "unknown variable 'clinet.name'"},
        {"unclosed-html.en.tmpl", 7, "unclosed section '{{#manager}}'"},
    };
    struct suki_conf_diags d = {0};
    struct suki_templates *t;
    const char *dir = SRCDIR "/tests/fixtures/templates-bad";

    t = suki_templates_load(dir, "en", &d);
    ck_assert_ptr_null(t);
    print_diags(&d);
    ck_assert_uint_eq(d.n, SUKI_ARRAY_LEN(want));
    for (size_t i = 0; i < SUKI_ARRAY_LEN(want); i++) {
        char *path = suki_asprintf("%s/%s", dir, want[i].file);
        bool found = false;
        for (size_t j = 0; j < d.n && !found; j++)
            found = strcmp(d.v[j].file, path) == 0 &&
                    d.v[j].line == want[i].line &&
                    strstr(d.v[j].msg, want[i].msg) != NULL;
        ck_assert_msg(found, "no diagnostic %s:%d: ...%s...", path,
                      want[i].line, want[i].msg);
        free(path);
    }
    suki_conf_diags_clear(&d);
}
END_TEST

START_TEST(load_errors_misc)
{
    struct suki_conf_diags d = {0};
    struct suki_templates *t;
    char *big;

    /* No such directory. */
    t = suki_templates_load("/nonexistent/suki-templates", "en", &d);
    ck_assert_ptr_null(t);
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.v[0].file, "/nonexistent/suki-templates");
    suki_conf_diags_clear(&d);

    /* One bad file fails the whole set, even with good files beside it. */
    make_tmpdir();
    write_str("good.en.tmpl", "subject: ok\n--- text\nok\n");
    write_str("bad.en.tmpl", "subject: ok\n--- text\n{{#data.x}}\n");
    ck_assert_ptr_null(suki_templates_load(tmpdir, "en", &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_int_eq(d.v[0].line, 3);
    suki_conf_diags_clear(&d);
    /* The caller's diags are optional. */
    ck_assert_ptr_null(suki_templates_load(tmpdir, "en", NULL));
    unlink_file("bad.en.tmpl");

    /* Over the size limit. */
    big = suki_malloc(SUKI_TEMPLATE_FILE_MAX + 2);
    memset(big, 'a', SUKI_TEMPLATE_FILE_MAX + 1);
    memcpy(big, "subject: x\n--- text\n", 20);
    write_file("huge.en.tmpl", big, SUKI_TEMPLATE_FILE_MAX + 1);
    free(big);
    ck_assert_ptr_null(suki_templates_load(tmpdir, "en", &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_ptr_nonnull(strstr(d.v[0].file, "huge.en.tmpl"));
    suki_conf_diags_clear(&d);
    unlink_file("huge.en.tmpl");

    /* A tab in the subject's own text (template.h: no control characters
     * in the one-line subject). */
    write_str("tab.en.tmpl", "subject: Re:\tfollow-up\n--- text\nok\n");
    ck_assert_ptr_null(suki_templates_load(tmpdir, "en", &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_int_eq(d.v[0].line, 1);
    ck_assert_ptr_nonnull(strstr(d.v[0].msg, "tab"));
    suki_conf_diags_clear(&d);
    unlink_file("tab.en.tmpl");

    /* Two files for one locale spelled differently. */
    write_str("good.en_us.tmpl", "subject: a\n--- text\na\n");
    write_str("good.en-US.tmpl", "subject: b\n--- text\nb\n");
    ck_assert_ptr_null(suki_templates_load(tmpdir, "en", &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_ptr_nonnull(strstr(d.v[0].msg, "already loaded"));
    suki_conf_diags_clear(&d);
    remove_tmpdir();
}
END_TEST

/* ---- the shipped templates ---- */

static const char *const shipped[] = {
    "followup-reminder", "renewal-alert", "complaint-escalation",
    "referral-request",  "meeting-prep",  "campaign-example",
    "referral-followup",
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

/* The least a real message has: no name, manager or optional data. */
static const struct kv minimal[] = {
    {"client.id", "bahay-kubo"},
    {"event.type", "complaint.opened"},
    {"event.at", "2026-11-27 10:00"},
    {"data.ticket", "T-1"},
    {"data.contract", "CT-1"},
    {"data.order", "SO-1"},
    {"rule.name", "r"},
    {NULL, NULL},
};

START_TEST(shipped_templates)
{
    static const char *const locales[] = {"en", "tl"};
    struct suki_conf_diags d = {0};
    struct suki_templates *t =
        suki_templates_load(SRCDIR "/conf/templates", "en", &d);

    print_diags(&d);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_ptr_nonnull(t);
    /* + manager-digest (shipped_digest) and monthly-report (report.sh and
     * report_send.sh render it with its figures) */
    ck_assert_uint_eq(suki_templates_count(t), SUKI_ARRAY_LEN(shipped) + 2);
    ck_assert(suki_templates_has_list(t, "monthly-report", "items", NULL));
    for (size_t i = 0; i < SUKI_ARRAY_LEN(shipped); i++) {
        ck_assert(suki_templates_has(t, shipped[i]));
        for (size_t l = 0; l < SUKI_ARRAY_LEN(locales); l++) {
            struct suki_rendered r;
            struct suki_err err = {{0}};
            const char *what = shipped[i];
            ck_assert_int_eq(suki_template_render(t, what, locales[l],
                                                  lookup_kv, (void *)sample, &r,
                                                  &err),
                             0);
            ck_assert_str_eq(r.locale, locales[l]);
            ck_assert_msg(strstr(r.subject, "Bahay Kubo Café & Sons"),
                          "%s.%s subject '%s'", what, locales[l], r.subject);
            ck_assert_ptr_null(strpbrk(r.subject, "\r\n"));
            ck_assert_ptr_null(strstr(r.subject, "{{"));
            ck_assert_ptr_null(strstr(r.text, "{{"));
            ck_assert_ptr_nonnull(r.html);
            ck_assert_ptr_null(strstr(r.html, "{{"));
            ck_assert_ptr_nonnull(strstr(r.text, "Bahay Kubo Café & Sons"));
            ck_assert_ptr_nonnull(strstr(r.html, "Bahay Kubo Café &amp; Sons"));
            ck_assert_ptr_null(strstr(r.html, "<units>"));
            ck_assert_ptr_nonnull(strstr(r.html, "</html>"));
            /* no leftover blank-line runs from hidden sections */
            ck_assert_ptr_null(strstr(r.text, "\n\n\n"));
            if (strcmp(what, "campaign-example") == 0) {
                ck_assert_ptr_nonnull(
                    strstr(r.text, "https://suki.example.ph/u/abc?x=1&y=2"));
                ck_assert_ptr_nonnull(strstr(
                    r.html, "href=\"https://suki.example.ph/u/abc?x=1&amp;"
                            "y=2\""));
            }
            if (strcmp(what, "renewal-alert") == 0) {
                ck_assert_ptr_nonnull(strstr(r.text, "CT-2026-014"));
                ck_assert_ptr_nonnull(strstr(r.subject, "2027-01-31"));
            }
            if (strcmp(what, "complaint-escalation") == 0)
                ck_assert_ptr_nonnull(strstr(r.subject, "T-5531"));
            suki_rendered_clear(&r);

            /* Only what every event carries: no blank-line runs. */
            ck_assert_int_eq(suki_template_render(t, what, locales[l],
                                                  lookup_kv, (void *)minimal,
                                                  &r, &err),
                             0);
            /* staff-facing subjects name the client by id */
            if (strcmp(what, "referral-request") != 0 &&
                strcmp(what, "campaign-example") != 0)
                ck_assert_ptr_nonnull(strstr(r.subject, "bahay-kubo"));
            ck_assert_msg(strstr(r.text, "\n\n\n") == NULL, "%s.%s: %s", what,
                          locales[l], r.text);
            suki_rendered_clear(&r);

            /* With no variables at all the subject is still sane. */
            ck_assert_int_eq(
                suki_template_render(t, what, locales[l], NULL, NULL, &r, &err),
                0);
            ck_assert_uint_gt(strlen(r.subject), 5);
            ck_assert_ptr_null(strpbrk(r.subject, "\r\n"));
            suki_rendered_clear(&r);
        }
    }
    suki_templates_free(t);
}
END_TEST

/* ---- list sections ---- */

/* Two clients with 2 and 1 items; "items" outside a client is all 3. */
struct listdata {
    int client; /* current client, -1 outside */
    int item;   /* current item (index into all) */
    char buf[32];
};

static const char *const L_CLIENTS[] = {"Acme", "Bayan"};
static const char *const L_ITEMS[] = {"renewal", "follow-up", "escalation"};
static const int L_OWNER[] = {0, 0, 1};

static size_t l_count(const char *list, void *arg)
{
    struct listdata *d = arg;
    if (strcmp(list, "clients") == 0)
        return 2;
    if (d->client < 0)
        return 3;
    return d->client == 0 ? 2 : 1;
}

static void l_enter(const char *list, size_t i, void *arg)
{
    struct listdata *d = arg;
    if (strcmp(list, "clients") == 0) {
        d->client = i == SUKI_TEMPLATE_LIST_END ? -1 : (int)i;
        return;
    }
    if (i == SUKI_TEMPLATE_LIST_END)
        return;
    d->item = d->client == 1 ? 2 : (int)i;
}

static const char *l_lookup(const char *var, void *arg)
{
    struct listdata *d = arg;
    if (strcmp(var, "client.name") == 0)
        return d->client >= 0 ? L_CLIENTS[d->client] : NULL;
    if (strcmp(var, "item.rule") == 0)
        return L_ITEMS[d->item];
    if (strcmp(var, "item.owner") == 0) {
        snprintf(d->buf, sizeof(d->buf), "%d", L_OWNER[d->item]);
        return d->buf;
    }
    if (strcmp(var, "item.none") == 0)
        return NULL;
    if (strcmp(var, "digest.count") == 0)
        return "3";
    return NULL;
}

START_TEST(render_lists)
{
    struct suki_conf_diags d = {0};
    const struct suki_template_lists lists = {l_count, l_enter};
    struct suki_rendered r;
    struct suki_err err = {{0}};
    struct listdata ld = {.client = -1};
    const char *file = NULL;

    make_tmpdir();
    write_str(
        "dig.en.tmpl",
        "subject: {{digest.count}} items\n--- text\n"
        "{{#clients}}\n"
        "* {{client.name}}\n"
        "{{#items}}\n"
        "  - {{item.rule}}{{#item.none}}never{{/item.none}}\n"
        "{{/items}}\n"
        "{{/clients}}\n"
        "{{^items}}\nnothing held\n{{/items}}\n"
        "--- html\n<ul>{{#items}}<li>{{item.rule}}</li>{{/items}}</ul>\n");
    write_str("flat.en.tmpl", "subject: s\n--- text\nno list here\n"
                              "--- html\n{{#items}}{{item.rule}}{{/items}}\n");
    struct suki_templates *t = suki_templates_load(tmpdir, "en", &d);
    ck_assert_msg(t != NULL, "%s", d.n ? d.v[0].msg : "?");
    ck_assert_int_eq(suki_template_render_lists(t, "dig", "en", l_lookup,
                                                &lists, &ld, &r, &err),
                     0);
    ck_assert_str_eq(r.subject, "3 items");
    ck_assert_str_eq(r.text, "* Acme\n  - renewal\n  - follow-up\n"
                             "* Bayan\n  - escalation\n");
    ck_assert_str_eq(r.html, "<ul><li>renewal</li><li>follow-up</li>"
                             "<li>escalation</li></ul>\n");
    suki_rendered_clear(&r);
    /* Without lists every list is empty: the inverted one shows. */
    ck_assert_int_eq(
        suki_template_render(t, "dig", "en", l_lookup, &ld, &r, &err), 0);
    ck_assert_str_eq(r.text, "nothing held\n");
    suki_rendered_clear(&r);
    /* A list only in the HTML part does not count for the digest. */
    ck_assert(suki_templates_has_list(t, "dig", "items", NULL));
    ck_assert(!suki_templates_has_list(t, "flat", "items", &file));
    ck_assert_ptr_nonnull(strstr(file, "flat.en.tmpl"));
    ck_assert(!suki_templates_has_list(t, "nope", "items", NULL));
    suki_templates_free(t);
    remove_tmpdir();
}
END_TEST

START_TEST(list_errors)
{
    static const struct {
        const char *body;
        int line;
        const char *msg;
    } cases[] = {
        {"{{item.rule}}\n", 3, "outside a {{#items}} list"},
        {"{{#items}}\n{{#items}}\n{{/items}}\n{{/items}}\n", 4,
         "list '{{#items}}' inside itself"},
        {"{{items}}\n", 3, "'items' is a list"},
        {"{{#clients}}\n{{/items}}\n", 4, "does not match '{{#clients}}'"},
        {"{{#clients}}\n", 3, "unclosed section '{{#clients}}'"},
        {"{{#items}}{{item.}}{{/items}}\n", 3, "bad variable name"},
        {"{{#items}}{{item.a b}}{{/items}}\n", 3, "bad variable name"},
        {"{{#clients}}{{/clients}}{{item.rule}}\n", 3, "outside a"},
    };
    struct suki_conf_diags d = {0};
    make_tmpdir();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *body = suki_asprintf("subject: s\n--- text\n%s", cases[i].body);
        write_str("x.en.tmpl", body);
        free(body);
        ck_assert_ptr_null(suki_templates_load(tmpdir, "en", &d));
        ck_assert_msg(d.n == 1 && d.v[0].line == cases[i].line &&
                          strstr(d.v[0].msg, cases[i].msg) != NULL,
                      "case %zu: got %d: %s", i, d.n ? d.v[0].line : -1,
                      d.n ? d.v[0].msg : "(none)");
        suki_conf_diags_clear(&d);
    }
    remove_tmpdir();
}
END_TEST

START_TEST(shipped_digest)
{
    static const char *const locales[] = {"en", "tl"};
    static const char *const want[] = {"Your digest for", "Buod ng mga"};
    const struct suki_template_lists lists = {l_count, l_enter};
    struct suki_conf_diags d = {0};
    struct suki_templates *t =
        suki_templates_load(SRCDIR "/conf/templates", "en", &d);
    ck_assert_ptr_nonnull(t);
    ck_assert(suki_templates_has_list(t, "manager-digest", "items", NULL));
    for (size_t l = 0; l < SUKI_ARRAY_LEN(locales); l++) {
        struct listdata ld = {.client = -1};
        struct suki_rendered r;
        struct suki_err err = {{0}};
        ck_assert_int_eq(suki_template_render_lists(t, "manager-digest",
                                                    locales[l], l_lookup,
                                                    &lists, &ld, &r, &err),
                         0);
        ck_assert_str_eq(r.locale, locales[l]);
        ck_assert_ptr_nonnull(strstr(r.subject, want[l]));
        ck_assert_ptr_null(strstr(r.text, "{{"));
        ck_assert_ptr_nonnull(r.html);
        for (size_t i = 0; i < 3; i++) {
            ck_assert_ptr_nonnull(strstr(r.text, L_ITEMS[i]));
            ck_assert_ptr_nonnull(strstr(r.html, L_ITEMS[i]));
        }
        /* grouped: Acme's two items come before Bayan and its one */
        const char *a = strstr(r.text, "Acme"), *b = strstr(r.text, "Bayan");
        ck_assert(a && b && a < strstr(r.text, "follow-up") &&
                  strstr(r.text, "follow-up") < b &&
                  b < strstr(r.text, "escalation"));
        suki_rendered_clear(&r);
    }
    suki_templates_free(t);
}
END_TEST

static Suite *template_suite(void)
{
    Suite *s = suite_create("template");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, render_table);
    tcase_add_test(tc, render_html_escapes);
    tcase_add_test(tc, render_subject_one_line);
    tcase_add_test(tc, render_body_too_big);
    tcase_add_test(tc, locale_fallback);
    tcase_add_test(tc, missing_template);
    tcase_add_test(tc, crlf_file_and_empty_dir);
    tcase_add_test(tc, render_lists);
    tcase_add_test(tc, list_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, load_errors_fixtures);
    tcase_add_test(tc, load_errors_misc);
    suite_add_tcase(s, tc);
    tc = tcase_create("shipped");
    tcase_add_test(tc, shipped_templates);
    tcase_add_test(tc, shipped_digest);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(template_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
