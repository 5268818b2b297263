/* template.h - message templates: load and check a directory, render one.
 *
 * Files: DIR/NAME.LOCALE.tmpl, e.g. followup-reminder.en.tmpl and
 * followup-reminder.tl.tmpl. NAME is [A-Za-z0-9][A-Za-z0-9_-]*, LOCALE is a
 * language tag such as en, tl, en_US or pt-BR. Other files are ignored.
 * Every NAME needs a variant in the default locale.
 *
 * File format (UTF-8, LF or CRLF line endings):
 *
 *     # comment lines and blank lines are allowed in the header part
 *     subject: Follow up with {{client.name}}
 *     --- text
 *     the text/plain body ...
 *     --- html
 *     the optional text/html body ...
 *
 * The only header key is `subject` (required, one line). The `--- text`
 * line is required; `--- html` is optional and comes after the text.
 *
 * Tags (mustache-like, each on one line):
 *     {{ name.path }}    value; HTML-escaped in the HTML body, plain elsewhere
 *     {{{ name }}}       value, never escaped ({{& name}} is the same)
 *     {{#name}}...{{/name}}  shown when the value is present and non-empty
 *     {{^name}}...{{/name}}  shown when the value is absent or empty
 *     {{#clients}}...{{/clients}}  once per entry of a list (below)
 *     {{#items}}...{{/items}}      likewise; {{^items}}...{{/items}} is
 *                                  shown when the list is empty
 *     {{! comment }}     nothing
 * The lists are `clients` (the current entry's fields are client.*) and
 * `items` (item.*: a name such as {{item.rule}} is valid only inside
 * {{#items}}); `items` may be nested in `clients`, once: inside a client
 * entry it holds that client's items, outside all of them. The renderer
 * asks the caller's suki_template_lists how many entries a list has and
 * which one is current.
 * A line holding only a section or comment tag (and blanks) vanishes whole,
 * so sections do not leave empty lines behind. Names start with one of the
 * roots client, event, data, rule, due, manager, unsubscribe_url, digest,
 * campaign, report (a typo
 * such as {{clinet.name}} is a load error); a variable the event or profile
 * does not carry renders empty. Malformed tags, unclosed or mismatched
 * sections, unknown header keys, a missing `--- text` line, a subject that
 * breaks the line, control characters and invalid UTF-8 are load errors
 * reported as FILE:LINE: message.
 */
#ifndef SUKI_TEMPLATE_H
#define SUKI_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "util.h"

#define SUKI_TEMPLATE_FILE_MAX (256 * 1024)  /* bytes per .tmpl file */
#define SUKI_TEMPLATE_SUBJECT_MAX 512        /* rendered subject, bytes */
#define SUKI_TEMPLATE_BODY_MAX (1024 * 1024) /* rendered body, bytes */

struct suki_templates;

/* One rendered message; every string is owned by the struct. */
struct suki_rendered {
    char *subject;   /* one line: no control characters, trimmed */
    char *text;      /* text/plain body, LF line endings */
    char *html;      /* text/html body or NULL when the template has none */
    char locale[32]; /* the variant that was used */
};

/* Load and compile every NAME.LOCALE.tmpl in dir. Returns an owned set, or
 * NULL when any file has a problem: every problem is appended to d (may be
 * NULL) as FILE:LINE: message, and nothing is half-loaded. Borrows all
 * arguments. */
struct suki_templates *suki_templates_load(const char *dir,
                                           const char *default_locale,
                                           struct suki_conf_diags *d);

/* Free a set from suki_templates_load(); accepts NULL. */
void suki_templates_free(struct suki_templates *t);

/* True when a template NAME is loaded (in any locale). Borrows. */
bool suki_templates_has(const struct suki_templates *t, const char *name);

/* Number of template names loaded. */
size_t suki_templates_count(const struct suki_templates *t);

/* Render template name in locale (NULL/"" = default). The variant is the
 * exact locale, else its language ("tl" for "tl_PH.UTF-8"), else the
 * default locale. lookup(var, arg) returns the borrowed value of a variable
 * such as "client.name" or NULL when absent; it is called during this call
 * only. On success fills out (owned strings; free with
 * suki_rendered_clear) and returns 0. Returns -ENOENT (no such template),
 * -E2BIG (a body over SUKI_TEMPLATE_BODY_MAX) with err filled. Substituted
 * values with invalid UTF-8 get U+FFFD; control characters become spaces
 * in the subject and in bodies (except tab and newline). */
int suki_template_render(const struct suki_templates *t, const char *name,
                         const char *locale,
                         const char *(*lookup)(const char *var, void *arg),
                         void *arg, struct suki_rendered *out,
                         struct suki_err *err);

#define SUKI_TEMPLATE_LIST_END ((size_t)-1)

/* The caller's lists for {{#clients}} and {{#items}}; called during the
 * render only. */
struct suki_template_lists {
    /* Entries of list ("clients" or "items") in the current scope: the
     * items of the current client inside {{#clients}}, else all. */
    size_t (*count)(const char *list, void *arg);
    /* Make entry i of list the current one: lookup() then answers its
     * client.* or item.* names until the next enter. i is
     * SUKI_TEMPLATE_LIST_END when the list ends (no entry is current). */
    void (*enter)(const char *list, size_t i, void *arg);
};

/* suki_template_render() with lists (NULL: every list is empty). */
int suki_template_render_lists(
    const struct suki_templates *t, const char *name, const char *locale,
    const char *(*lookup)(const char *var, void *arg),
    const struct suki_template_lists *lists, void *arg,
    struct suki_rendered *out, struct suki_err *err);

/* True when every variant of template name repeats over list in its text
 * body; when not, *file (may be NULL) names the first variant that does
 * not. Borrows; *file is borrowed from t. */
bool suki_templates_has_list(const struct suki_templates *t, const char *name,
                             const char *list, const char **file);

/* Free the strings of r and zero it; accepts NULL. */
void suki_rendered_clear(struct suki_rendered *r);

#endif
