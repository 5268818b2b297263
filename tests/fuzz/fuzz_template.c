/* fuzz_template.c - template loading (a file in a scratch directory, as
 * sukid reads them) and rendering (template.c).
 *
 * The input is the .tmpl file, then optionally a NUL and a value, then a
 * NUL and the locale to render for. Every variable with an even-length
 * name renders as the value (which may be invalid UTF-8 or hold control
 * characters: it comes from events); the others are absent. Properties of
 * a rendered message, which mime.c and the transports rely on:
 *   - subject: one line, no control characters, trimmed, at most
 *     SUKI_TEMPLATE_SUBJECT_MAX bytes, valid UTF-8;
 *   - bodies: valid UTF-8, LF line ends, no control characters but tab
 *     and newline;
 *   - rendering twice gives the same result;
 *   - loading leaves no file descriptor open, whatever the file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "template.h"
#include "fuzz_fds.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char dir[200], path[256];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_tmpdir(dir, sizeof(dir), "tmpl");
    snprintf(path, sizeof(path), "%s/fuzz.en.tmpl", dir);
    atexit(cleanup);
    return 0;
}

/* The lowest free descriptor: it moves if anything was left open. */
static const char *value;

static const char *lookup(const char *var, void *arg)
{
    (void)arg;
    return strlen(var) % 2 == 0 ? value : NULL;
}

static void check_utf8(const char *what, const char *s)
{
    size_t n = strlen(s);
    if (suki_utf8_bad_at((const unsigned char *)s, n) != n)
        FAIL("%s is not valid UTF-8", what);
}

static void check_body(const char *what, const char *s)
{
    check_utf8(what, s);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
            FAIL("%s has control character 0x%02x", what, c);
    }
}

static void check_rendered(const struct suki_rendered *r)
{
    size_t n = strlen(r->subject);
    check_utf8("subject", r->subject);
    if (n > SUKI_TEMPLATE_SUBJECT_MAX)
        FAIL("subject of %zu bytes", n);
    if (n && (r->subject[0] == ' ' || r->subject[n - 1] == ' '))
        FAIL("subject not trimmed");
    for (const char *p = r->subject; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            FAIL("control character in the subject");
    check_body("text", r->text);
    if (r->html)
        check_body("html", r->html);
    if (strnlen(r->locale, sizeof(r->locale)) >= sizeof(r->locale))
        FAIL("locale not terminated");
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd0 = -1;
    if (size > SUKI_TEMPLATE_FILE_MAX + 1024)
        return 0;
    if (fd0 < 0)
        fd0 = fuzz_file_fds(NULL, 0);
    /* a copy with a NUL after the last field: file, value, locale */
    char *buf = suki_malloc(size + 1), *fld[3] = {NULL, "", ""};
    memcpy(buf, data, size);
    buf[size] = '\0';
    int nf = 0;
    for (char *p = buf; nf < 3 && p <= buf + size; p += strlen(p) + 1)
        fld[nf++] = p;
    /* the file may hold NULs when it is the only field */
    size_t flen = nf == 1 ? size : strlen(buf);
    const char *locale = fld[2];
    value = fld[1];

    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, flen, f) != flen || fclose(f) != 0)
        FAIL("cannot write %s", path);
    struct suki_conf_diags d = {0};
    struct suki_templates *t = suki_templates_load(dir, "en", &d);
    fuzz_check_fds(fd0, "template loading");
    if (!t && d.n == 0)
        FAIL("load failed without a message");
    if (t && d.n)
        FAIL("load succeeded with %zu messages", d.n);
    for (size_t i = 0; i < d.n; i++)
        if (!d.v[i].file || !d.v[i].msg || !*d.v[i].msg)
            FAIL("empty diagnostic");
    suki_conf_diags_clear(&d);
    if (t) {
        struct suki_rendered r, r2;
        struct suki_err err = {{0}};
        if (!suki_templates_has(t, "fuzz") || suki_templates_count(t) != 1)
            FAIL("loaded set does not hold the one template");
        int rc =
            suki_template_render(t, "fuzz", locale, lookup, NULL, &r, &err);
        if (rc == 0) {
            check_rendered(&r);
            if (suki_template_render(t, "fuzz", locale, lookup, NULL, &r2,
                                     &err) != 0 ||
                !same(r.subject, r2.subject) || !same(r.text, r2.text) ||
                !same(r.html, r2.html))
                FAIL("rendering twice differs");
            suki_rendered_clear(&r2);
        } else if (r.subject || r.text || r.html) {
            FAIL("failed render left strings");
        }
        suki_rendered_clear(&r);
        if (suki_template_render(t, "nope", NULL, lookup, NULL, &r, &err) !=
            -ENOENT)
            FAIL("unknown template rendered");
        suki_templates_free(t);
    }
    free(buf);
    return 0;
}
