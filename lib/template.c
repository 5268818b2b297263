/* template.c - load, check and render message templates (see template.h).
 *
 * No packaged C template library exists in Debian 12, so this renderer is
 * ours; it is kept deliberately small: variables, raw variables, sections,
 * inverted sections, list sections and comments, compiled once at load into
 * a flat node array and rendered without recursion. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "template.h"

#define MAX_DEPTH 16

enum node_kind {
    NODE_TEXT,     /* literal text */
    NODE_VAR,      /* {{ name }} */
    NODE_RAW,      /* {{{ name }}} or {{& name}} */
    NODE_SECTION,  /* {{#name}}: body is nodes (i, skip) */
    NODE_INVERTED, /* {{^name}} */
    NODE_LIST,     /* {{#clients}} / {{#items}}: body once per entry */
    NODE_LIST_INV, /* {{^items}}: body when the list is empty */
};

/* The lists a template can repeat over, and the root that names the
 * current entry's fields inside (template.h). */
static const struct {
    const char *name, *root;
} list_defs[] = {
    {"clients", "client"},
    {"items", "item"},
};

static int list_index(const char *s, size_t n)
{
    for (size_t i = 0; i < SUKI_ARRAY_LEN(list_defs); i++)
        if (strlen(list_defs[i].name) == n &&
            memcmp(list_defs[i].name, s, n) == 0)
            return (int)i;
    return -1;
}

struct node {
    enum node_kind kind;
    char *s;     /* owned: text or variable name */
    size_t len;  /* length of s */
    size_t skip; /* sections: index of the first node after the section */
};

struct part {
    struct node *v; /* owned */
    size_t n, cap;
};

struct variant {
    char *locale; /* owned */
    char *file;   /* owned: path, for messages */
    struct part subject, text, html;
    bool has_html;
};

struct tmpl {
    char *name;        /* owned */
    struct variant *v; /* owned */
    size_t n;
};

struct suki_templates {
    char *default_locale; /* owned */
    struct tmpl *v;       /* owned, sorted by name */
    size_t n;
};

/* Where load errors go: the caller's diags (optional) plus a count. */
struct diag_ctx {
    struct suki_conf_diags *d;
    const char *file;
    int errors;
};

static void diag(struct diag_ctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void diag(struct diag_ctx *c, int line, const char *fmt, ...)
{
    char msg[SUKI_ERR_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->errors++;
    if (c->d != NULL)
        suki_conf_diags_add(c->d, c->file, line, "%s", msg);
}

/* ---- UTF-8 ---- */

/* ---- names ---- */

static const char *const var_roots[] = {
    "client",  "event",           "data",     "rule",   "due",
    "manager", "unsubscribe_url", "campaign", "digest", "report",
};

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A variable name: dotted segments of [A-Za-z0-9_-], known root. */
static const char *check_var_name(const char *s, size_t n)
{
    size_t seg = 0, root_len = n;

    if (n == 0)
        return "empty tag";
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (seg == 0)
                return "bad variable name";
            if (root_len == n)
                root_len = i;
            seg = 0;
        } else if (name_char(s[i])) {
            seg++;
        } else {
            return "bad variable name";
        }
    }
    if (seg == 0)
        return "bad variable name";
    for (size_t i = 0; i < SUKI_ARRAY_LEN(var_roots); i++)
        if (strlen(var_roots[i]) == root_len &&
            memcmp(var_roots[i], s, root_len) == 0)
            return NULL;
    return "unknown variable";
}

/* ---- compiler ---- */

static void part_push(struct part *p, enum node_kind kind, const char *s,
                      size_t len)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = suki_realloc(p->v, p->cap * sizeof(*p->v));
    }
    p->v[p->n].kind = kind;
    p->v[p->n].s = suki_strndup(s, len);
    p->v[p->n].len = len;
    p->v[p->n].skip = 0;
    p->n++;
}

static void part_free(struct part *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].s);
    free(p->v);
    p->v = NULL;
    p->n = p->cap = 0;
}

struct open_section {
    size_t node;
    int line;
};

struct compiler {
    struct diag_ctx *dc;
    struct part *p;
    struct open_section stack[MAX_DEPTH];
    int depth;
    int in_list[SUKI_ARRAY_LEN(list_defs)]; /* open {{#list}} per list */
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* A tag found at s: sets *end past it, the sigil and the trimmed name.
 * Returns an error text or NULL. */
static const char *scan_tag(const char *s, const char *eol, const char **end,
                            char *sigil, const char **name, size_t *nlen)
{
    const char *in = s + 2, *close;
    const char *closer = "}}";

    *sigil = 0;
    if (in < eol && *in == '{') {
        *sigil = '{';
        closer = "}}}";
        in++;
    }
    close = NULL;
    for (const char *q = in; q + strlen(closer) <= eol; q++)
        if (memcmp(q, closer, strlen(closer)) == 0) {
            close = q;
            break;
        }
    if (close == NULL)
        return *sigil == '{' ? "unclosed tag '{{{' (expected '}}}')"
                             : "unclosed tag '{{' (expected '}}')";
    *end = close + strlen(closer);
    while (in < close && is_blank(*in))
        in++;
    if (*sigil == 0 && in < close && strchr("#^/!&", *in) != NULL) {
        *sigil = *in++;
        while (in < close && is_blank(*in))
            in++;
    }
    while (close > in && is_blank(close[-1]))
        close--;
    *name = in;
    *nlen = (size_t)(close - in);
    if (*sigil == '!')
        return NULL;
    if (memchr(in, '{', *nlen) != NULL || memchr(in, '}', *nlen) != NULL)
        return "malformed tag";
    return NULL;
}

static bool open_section(struct compiler *c, int line, enum node_kind kind,
                         const char *name, size_t nlen)
{
    if (c->depth == MAX_DEPTH) {
        diag(c->dc, line, "sections nested deeper than %d", MAX_DEPTH);
        return false;
    }
    c->stack[c->depth].node = c->p->n;
    c->stack[c->depth].line = line;
    c->depth++;
    part_push(c->p, kind, name, nlen);
    return true;
}

/* A name of the current list entry: item.FIELD inside {{#items}}. Returns
 * an error text, or NULL when it is one. */
static const char *check_item_name(const struct compiler *c, const char *name,
                                   size_t nlen)
{
    if (c->in_list[list_index("items", 5)] == 0)
        return "outside a {{#items}} list:";
    if (nlen == 5 || name[5] == '.' || name[nlen - 1] == '.')
        return "bad variable name";
    for (size_t i = 5; i < nlen; i++)
        if (!name_char(name[i]) && name[i] != '.')
            return "bad variable name";
    return NULL;
}

/* Handle one tag; returns false after reporting an error. */
static bool compile_tag(struct compiler *c, int line, char sigil,
                        const char *name, size_t nlen)
{
    const char *why;
    int li;

    if (sigil == '!')
        return true;
    li = list_index(name, nlen);
    if (li >= 0 && (sigil == '#' || sigil == '^')) {
        if (c->in_list[li] > 0) {
            diag(c->dc, line, "list '{{#%s}}' inside itself",
                 list_defs[li].name);
            return false;
        }
        /* An inverted list shows its body once, when the list is empty. */
        if (sigil == '#')
            c->in_list[li]++;
        return open_section(c, line, sigil == '#' ? NODE_LIST : NODE_LIST_INV,
                            name, nlen);
    }
    if (li >= 0 && sigil != '/') {
        diag(c->dc, line, "'%.*s' is a list: use {{#%.*s}}...{{/%.*s}}",
             (int)nlen, name, (int)nlen, name, (int)nlen, name);
        return false;
    }
    if (li < 0 && nlen >= 5 && memcmp(name, "item.", 5) == 0)
        why = check_item_name(c, name, nlen);
    else if (li < 0)
        why = check_var_name(name, nlen);
    else
        why = NULL;
    if (why != NULL) {
        diag(c->dc, line, "%s '%.*s'%s", why, (int)nlen, name,
             strcmp(why, "unknown variable") == 0
                 ? " (names start with client., event., data., rule., "
                   "campaign., digest., report., due, manager or "
                   "unsubscribe_url)"
                 : "");
        return false;
    }
    switch (sigil) {
    case '#':
    case '^':
        return open_section(
            c, line, sigil == '#' ? NODE_SECTION : NODE_INVERTED, name, nlen);
    case '/': {
        struct node *open;
        if (c->depth == 0) {
            diag(c->dc, line, "'{{/%.*s}}' closes no open section", (int)nlen,
                 name);
            return false;
        }
        open = &c->p->v[c->stack[c->depth - 1].node];
        if (open->len != nlen || memcmp(open->s, name, nlen) != 0) {
            diag(c->dc, line,
                 "'{{/%.*s}}' does not match '{{%c%s}}' opened on line %d",
                 (int)nlen, name,
                 open->kind == NODE_SECTION || open->kind == NODE_LIST ? '#'
                                                                       : '^',
                 open->s, c->stack[c->depth - 1].line);
            return false;
        }
        open->skip = c->p->n;
        if (open->kind == NODE_LIST)
            c->in_list[list_index(open->s, open->len)]--;
        c->depth--;
        return true;
    }
    case '{':
    case '&':
        part_push(c->p, NODE_RAW, name, nlen);
        return true;
    default:
        part_push(c->p, NODE_VAR, name, nlen);
        return true;
    }
}

/* Compile src (LF line endings) whose first line is first_line into p.
 * Returns false after reporting the first error. */
static bool compile_part(struct diag_ctx *dc, struct part *p, const char *src,
                         size_t len, int first_line)
{
    struct compiler c = {.dc = dc, .p = p, .depth = 0};
    const char *s = src, *end = src + len;
    int line = first_line;

    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        const char *next = eol ? eol + 1 : end;
        const char *q, *tag_end, *name;
        char sigil;
        size_t nlen;

        if (eol == NULL)
            eol = end;
        /* A line holding only one section or comment tag vanishes. */
        q = s;
        while (q < eol && is_blank(*q))
            q++;
        if (eol - q >= 4 && q[0] == '{' && q[1] == '{' && q[2] != '{' &&
            scan_tag(q, eol, &tag_end, &sigil, &name, &nlen) == NULL &&
            strchr("#^/!", sigil) != NULL && sigil != 0) {
            const char *r = tag_end;
            while (r < eol && is_blank(*r))
                r++;
            if (r == eol) {
                if (!compile_tag(&c, line, sigil, name, nlen))
                    return false;
                s = next;
                line++;
                continue;
            }
        }
        /* Otherwise text and tags, up to and including the newline. */
        q = s;
        while (q < eol) {
            const char *open = NULL;
            const char *why;
            for (const char *r = q; r + 1 < eol; r++)
                if (r[0] == '{' && r[1] == '{') {
                    open = r;
                    break;
                }
            if (open == NULL)
                break;
            if (open > q)
                part_push(p, NODE_TEXT, q, (size_t)(open - q));
            why = scan_tag(open, eol, &tag_end, &sigil, &name, &nlen);
            if (why != NULL) {
                diag(dc, line, "%s", why);
                return false;
            }
            if (!compile_tag(&c, line, sigil, name, nlen))
                return false;
            q = tag_end;
        }
        if (next > q)
            part_push(p, NODE_TEXT, q, (size_t)(next - q));
        s = next;
        line++;
    }
    if (c.depth > 0) {
        struct node *open = &p->v[c.stack[c.depth - 1].node];
        diag(dc, c.stack[c.depth - 1].line, "unclosed section '{{%c%s}}'",
             open->kind == NODE_SECTION || open->kind == NODE_LIST ? '#' : '^',
             open->s);
        return false;
    }
    return true;
}

/* ---- file parser ---- */

/* "--- word" (trailing blanks allowed): returns word length, word in *w. */
static size_t marker(const char *s, size_t n, const char **w)
{
    size_t i = 4, wl = 0;

    if (n < 5 || memcmp(s, "--- ", 4) != 0)
        return 0;
    *w = s + 4;
    while (i < n && s[i] >= 'a' && s[i] <= 'z') {
        i++;
        wl++;
    }
    while (i < n && is_blank(s[i]))
        i++;
    return i == n ? wl : 0;
}

/* Check bytes and normalise CRLF to LF. Returns owned copy or NULL. */
static char *check_bytes(struct diag_ctx *dc, const char *buf, size_t len,
                         size_t *out_len)
{
    struct suki_buf b = {0};
    int line = 1;

    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)buf[i];
        size_t n;
        if (ch == '\r') {
            if (i + 1 < len && buf[i + 1] == '\n') {
                i++;
                continue;
            }
            diag(dc, line, "line break inside a line (bare carriage return)");
            free(b.p);
            return NULL;
        }
        if (ch == '\n') {
            line++;
        } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            diag(dc, line, "control character 0x%02x", ch);
            free(b.p);
            return NULL;
        }
        n = suki_utf8_seq((const unsigned char *)buf + i, len - i);
        if (n == 0) {
            diag(dc, line, "invalid UTF-8");
            free(b.p);
            return NULL;
        }
        suki_buf_add(&b, buf + i, n);
        i += n;
    }
    *out_len = b.len;
    return suki_buf_take(&b);
}

/* Length of s without trailing blanks and newlines. */
static size_t trim_body(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\n' || is_blank(s[n - 1])))
        n--;
    return n;
}

/* A non-empty body ends with exactly one newline. */
static void end_with_newline(struct part *p)
{
    const struct node *last = p->n > 0 ? &p->v[p->n - 1] : NULL;

    if (last != NULL &&
        (last->kind != NODE_TEXT || last->s[last->len - 1] != '\n'))
        part_push(p, NODE_TEXT, "\n", 1);
}

static bool parse_file(struct diag_ctx *dc, const char *buf, size_t len,
                       struct variant *v)
{
    enum { HEAD, TEXT, HTML } state = HEAD;
    const char *subj = NULL, *text = NULL, *html = NULL, *text_end = NULL;
    size_t subj_len = 0;
    int line = 1, subj_line = 0, text_line = 0, html_line = 0;
    const char *s = buf, *end = buf + len;
    const char *w;

    while (s < end) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        const char *next = eol ? eol + 1 : end;
        size_t n = (size_t)((eol ? eol : end) - s);
        size_t wl = marker(s, n, &w);

        if (state == HEAD) {
            const char *colon = memchr(s, ':', n);
            if (wl == 4 && memcmp(w, "text", 4) == 0) {
                state = TEXT;
                text = next;
                text_line = line + 1;
            } else if (wl > 0) {
                diag(dc, line, "'--- %.*s' before '--- text'", (int)wl, w);
                return false;
            } else if (n == 0 || s[0] == '#') {
                /* blank or comment */
            } else if (colon == NULL) {
                diag(dc, line, "expected 'subject: ...' or '--- text'");
                return false;
            } else if ((size_t)(colon - s) != 7 ||
                       strncasecmp(s, "subject", 7) != 0) {
                diag(dc, line, "unknown header '%.*s' (only 'subject')",
                     (int)(colon - s), s);
                return false;
            } else if (subj != NULL) {
                diag(dc, line, "duplicate 'subject' (first on line %d)",
                     subj_line);
                return false;
            } else {
                subj = colon + 1;
                subj_len = (size_t)(s + n - subj);
                while (subj_len > 0 && is_blank(*subj)) {
                    subj++;
                    subj_len--;
                }
                while (subj_len > 0 && is_blank(subj[subj_len - 1]))
                    subj_len--;
                subj_line = line;
                const char *tab = memchr(subj, '\t', subj_len);
                if (tab != NULL) {
                    /* template.h: the subject is one line with no control
                     * characters (a tab would be folded or shown raw). */
                    diag(dc, line,
                         "control character 0x09 (tab) in the "
                         "subject");
                    return false;
                }
                if (subj_len == 0) {
                    diag(dc, line, "empty subject");
                    return false;
                }
            }
        } else if (wl > 0) {
            if (state == TEXT && wl == 4 && memcmp(w, "html", 4) == 0) {
                text_end = s;
                html = next;
                html_line = line + 1;
                state = HTML;
            } else {
                diag(dc, line,
                     "unexpected '--- %.*s' (only one '--- text', then "
                     "optionally one '--- html')",
                     (int)wl, w);
                return false;
            }
        }
        s = next;
        line++;
    }
    if (state == HEAD) {
        diag(dc, line > 1 ? line - 1 : 1, "missing '--- text' line");
        return false;
    }
    if (subj == NULL) {
        diag(dc, text_line - 1, "missing 'subject:' header");
        return false;
    }
    if (text_end == NULL)
        text_end = end;
    if (!compile_part(dc, &v->subject, subj, subj_len, subj_line))
        return false;
    if (!compile_part(dc, &v->text, text,
                      trim_body(text, (size_t)(text_end - text)), text_line))
        return false;
    if (html != NULL) {
        v->has_html = true;
        if (!compile_part(dc, &v->html, html,
                          trim_body(html, (size_t)(end - html)), html_line))
            return false;
    }
    end_with_newline(&v->text);
    end_with_newline(&v->html);
    return true;
}

/* ---- loader ---- */

static bool valid_tmpl_name(const char *s, size_t n)
{
    if (n == 0 || !name_char(s[0]) || s[0] == '-' || s[0] == '_')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

/* [A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})* */
static bool valid_locale(const char *s)
{
    size_t i = 0, seg = 0;
    while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))
        i++;
    if (i < 2 || i > 8)
        return false;
    while (s[i] != '\0') {
        if (s[i] != '-' && s[i] != '_')
            return false;
        i++;
        seg = 0;
        while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
               (s[i] >= '0' && s[i] <= '9')) {
            i++;
            seg++;
        }
        if (seg < 1 || seg > 8)
            return false;
    }
    return true;
}

static char lc_norm(char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    return c == '_' ? '-' : c;
}

/* Locales compare case-insensitively with '_' == '-', over n bytes of a. */
static bool locale_eq_n(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lc_norm(a[i]) != lc_norm(b[i]))
            return false;
    return true;
}

static void variant_free(struct variant *v)
{
    free(v->locale);
    free(v->file);
    part_free(&v->subject);
    part_free(&v->text);
    part_free(&v->html);
}

static void tmpl_free(struct tmpl *t)
{
    for (size_t i = 0; i < t->n; i++)
        variant_free(&t->v[i]);
    free(t->v);
    free(t->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct tmpl *find_tmpl(const struct suki_templates *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return &t->v[i];
    return NULL;
}

static void load_one(struct suki_templates *t, const char *dir,
                     const char *fname, struct suki_conf_diags *d, int *errors)
{
    char *path = suki_asprintf("%s/%s", dir, fname);
    struct diag_ctx dc = {.d = d, .file = path, .errors = 0};
    size_t flen = strlen(fname) - strlen(".tmpl"), len, nlen;
    const char *dot = NULL;
    char *locale, *raw, *buf;
    struct suki_err err = {{0}};
    struct variant v = {0};
    struct tmpl *tp;

    for (size_t i = 0; i < flen; i++)
        if (fname[i] == '.')
            dot = fname + i;
    nlen = dot ? (size_t)(dot - fname) : 0;
    locale = dot ? suki_strndup(dot + 1, flen - nlen - 1) : NULL;
    if (dot == NULL || !valid_tmpl_name(fname, nlen) || !valid_locale(locale)) {
        diag(&dc, 0,
             "file name is not NAME.LOCALE.tmpl (e.g. "
             "followup-reminder.en.tmpl)");
        goto out;
    }
    raw = suki_read_file(path, &len, SUKI_TEMPLATE_FILE_MAX, &err);
    if (raw == NULL) {
        diag(&dc, 0, "%s", err.msg);
        goto out;
    }
    buf = check_bytes(&dc, raw, len, &len);
    free(raw);
    if (buf == NULL)
        goto out;
    v.locale = locale;
    locale = NULL;
    v.file = suki_strdup(path);
    if (!parse_file(&dc, buf, len, &v)) {
        free(buf);
        variant_free(&v);
        goto out;
    }
    free(buf);
    /* The compiled nodes own copies; add the variant to its template. */
    tp = NULL;
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->v[i].name) == nlen &&
            memcmp(t->v[i].name, fname, nlen) == 0)
            tp = &t->v[i];
    if (tp == NULL) {
        t->v = suki_realloc(t->v, (t->n + 1) * sizeof(*t->v));
        tp = &t->v[t->n++];
        memset(tp, 0, sizeof(*tp));
        tp->name = suki_strndup(fname, nlen);
    }
    for (size_t i = 0; i < tp->n; i++)
        if (locale_eq_n(v.locale, strlen(v.locale), tp->v[i].locale)) {
            diag(&dc, 0, "locale '%s' of template '%s' already loaded from %s",
                 v.locale, tp->name, tp->v[i].file);
            variant_free(&v);
            goto out;
        }
    tp->v = suki_realloc(tp->v, (tp->n + 1) * sizeof(*tp->v));
    tp->v[tp->n++] = v;
out:
    *errors += dc.errors;
    free(locale);
    free(path);
}

/* See template.h. */
struct suki_templates *suki_templates_load(const char *dir,
                                           const char *default_locale,
                                           struct suki_conf_diags *d)
{
    struct suki_templates *t = suki_calloc(1, sizeof(*t));
    struct diag_ctx dc = {.d = d, .file = dir, .errors = 0};
    char **names = NULL;
    size_t n_names = 0;
    int errors = 0;
    struct dirent *de;
    DIR *dh;

    if (default_locale == NULL || *default_locale == '\0')
        default_locale = "en";
    t->default_locale = suki_strdup(default_locale);
    dh = opendir(dir);
    if (dh == NULL) {
        diag(&dc, 0, "cannot open template directory: %s", strerror(errno));
        suki_templates_free(t);
        return NULL;
    }
    while ((de = readdir(dh)) != NULL) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l <= 5 ||
            strcmp(de->d_name + l - 5, ".tmpl") != 0)
            continue;
        names = suki_realloc(names, (n_names + 1) * sizeof(*names));
        names[n_names++] = suki_strdup(de->d_name);
    }
    closedir(dh);
    /* Sorted, so that messages and -t output are in a stable order. */
    if (n_names > 0)
        qsort(names, n_names, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n_names; i++) {
        load_one(t, dir, names[i], d, &errors);
        free(names[i]);
    }
    free(names);
    for (size_t i = 0; i < t->n; i++) {
        bool have_default = false;
        for (size_t j = 0; j < t->v[i].n; j++)
            if (locale_eq_n(t->default_locale, strlen(t->default_locale),
                            t->v[i].v[j].locale))
                have_default = true;
        if (!have_default) {
            dc.file = t->v[i].v[0].file;
            diag(&dc, 0,
                 "template '%s' has no variant in the default locale '%s' "
                 "(%s/%s.%s.tmpl)",
                 t->v[i].name, t->default_locale, dir, t->v[i].name,
                 t->default_locale);
        }
    }
    errors += dc.errors;
    if (errors > 0) {
        suki_templates_free(t);
        return NULL;
    }
    return t;
}

/* See template.h. */
void suki_templates_free(struct suki_templates *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        tmpl_free(&t->v[i]);
    free(t->v);
    free(t->default_locale);
    free(t);
}

/* See template.h. */
bool suki_templates_has(const struct suki_templates *t, const char *name)
{
    return t != NULL && name != NULL && find_tmpl(t, name) != NULL;
}

/* See template.h. */
size_t suki_templates_count(const struct suki_templates *t)
{
    return t ? t->n : 0;
}

/* ---- renderer ---- */

enum ctx { CTX_SUBJECT, CTX_TEXT, CTX_HTML };

/* NEL (U+0085), LINE SEPARATOR (U+2028), PARAGRAPH SEPARATOR (U+2029). */
static bool is_line_separator(const unsigned char *s, size_t k)
{
    return (k == 2 && s[0] == 0xc2 && s[1] == 0x85) ||
           (k == 3 && s[0] == 0xe2 && s[1] == 0x80 &&
            (s[2] == 0xa8 || s[2] == 0xa9));
}

/* Append a substituted value: invalid UTF-8 becomes U+FFFD, control
 * characters become spaces (bodies keep tab and newline), HTML-escaped
 * when asked. */
static void put_value(struct suki_buf *b, const char *v, enum ctx ctx,
                      bool escape)
{
    const unsigned char *s = (const unsigned char *)v;
    size_t n = strlen(v);

    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = suki_utf8_seq(s + i, n - i);
        if (k == 0) {
            suki_buf_add(b, "\xef\xbf\xbd", 3);
            i++;
            continue;
        }
        if (c == '\r' && ctx != CTX_SUBJECT) {
            /* CRLF -> LF, a lone CR -> LF */
            suki_buf_add(b, "\n", 1);
            i += (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (ctx == CTX_SUBJECT && is_line_separator(s + i, k)) {
            /* U+0085, U+2028 and U+2029 break the line for some mail
             * readers: the subject must stay one line. */
            suki_buf_add(b, " ", 1);
        } else if (c < 0x20 || c == 0x7f) {
            if (ctx != CTX_SUBJECT && (c == '\t' || c == '\n'))
                suki_buf_add(b, (const char *)s + i, 1);
            else
                suki_buf_add(b, " ", 1);
        } else if (escape && c == '&') {
            suki_buf_add(b, "&amp;", 5);
        } else if (escape && c == '<') {
            suki_buf_add(b, "&lt;", 4);
        } else if (escape && c == '>') {
            suki_buf_add(b, "&gt;", 4);
        } else if (escape && c == '"') {
            suki_buf_add(b, "&quot;", 6);
        } else if (escape && c == '\'') {
            suki_buf_add(b, "&#39;", 5);
        } else {
            suki_buf_add(b, (const char *)s + i, k);
        }
        i += k;
    }
}

/* One list being repeated: its node and the entry shown now. */
struct list_frame {
    size_t node, idx, n;
};

static void render_part(const struct part *p, enum ctx ctx,
                        const char *(*lookup)(const char *, void *),
                        const struct suki_template_lists *lists, void *arg,
                        struct suki_buf *b)
{
    struct list_frame stack[MAX_DEPTH];
    int depth = 0;
    size_t i = 0;

    for (;;) {
        if (depth > 0 && i == p->v[stack[depth - 1].node].skip) {
            /* The end of a list's body: its next entry, or past it. */
            struct list_frame *fr = &stack[depth - 1];
            if (++fr->idx < fr->n) {
                lists->enter(p->v[fr->node].s, fr->idx, arg);
                i = fr->node + 1;
            } else {
                lists->enter(p->v[fr->node].s, SUKI_TEMPLATE_LIST_END, arg);
                depth--;
            }
            continue;
        }
        if (i >= p->n)
            break;
        const struct node *nd = &p->v[i];
        const char *val;
        bool shown;
        size_t n;
        switch (nd->kind) {
        case NODE_TEXT:
            suki_buf_add(b, nd->s, nd->len);
            i++;
            break;
        case NODE_VAR:
        case NODE_RAW:
            val = lookup ? lookup(nd->s, arg) : NULL;
            if (val != NULL)
                put_value(b, val, ctx, ctx == CTX_HTML && nd->kind == NODE_VAR);
            i++;
            break;
        case NODE_SECTION:
        case NODE_INVERTED:
            val = lookup ? lookup(nd->s, arg) : NULL;
            shown = val != NULL && *val != '\0';
            if (nd->kind == NODE_INVERTED)
                shown = !shown;
            i = shown ? i + 1 : nd->skip;
            break;
        case NODE_LIST:
        case NODE_LIST_INV:
            n = lists ? lists->count(nd->s, arg) : 0;
            if (nd->kind == NODE_LIST_INV) {
                i = n == 0 ? i + 1 : nd->skip;
                break;
            }
            if (n == 0 || depth == MAX_DEPTH) {
                i = nd->skip;
                break;
            }
            stack[depth++] = (struct list_frame){.node = i, .idx = 0, .n = n};
            lists->enter(nd->s, 0, arg);
            i++;
            break;
        }
    }
}

/* True when part p repeats over list. */
static bool part_has_list(const struct part *p, const char *list)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].kind == NODE_LIST && strcmp(p->v[i].s, list) == 0)
            return true;
    return false;
}

/* See template.h. */
bool suki_templates_has_list(const struct suki_templates *t, const char *name,
                             const char *list, const char **file)
{
    const struct tmpl *tp = (t && name) ? find_tmpl(t, name) : NULL;
    if (tp == NULL)
        return false;
    for (size_t i = 0; i < tp->n; i++)
        if (!part_has_list(&tp->v[i].text, list)) {
            if (file)
                *file = tp->v[i].file;
            return false;
        }
    return true;
}

static const struct variant *pick_variant(const struct tmpl *tp,
                                          const char *locale, const char *def)
{
    size_t n, lang;

    if (locale != NULL) {
        /* "tl_PH.UTF-8@euro" -> "tl_PH", then "tl" */
        n = strcspn(locale, ".@");
        lang = strcspn(locale, "-_.@");
        for (size_t i = 0; i < tp->n; i++)
            if (n > 0 && locale_eq_n(locale, n, tp->v[i].locale))
                return &tp->v[i];
        for (size_t i = 0; i < tp->n; i++)
            if (lang > 0 && locale_eq_n(locale, lang, tp->v[i].locale))
                return &tp->v[i];
    }
    for (size_t i = 0; i < tp->n; i++)
        if (locale_eq_n(def, strlen(def), tp->v[i].locale))
            return &tp->v[i];
    return tp->n > 0 ? &tp->v[0] : NULL;
}

/* See template.h. */
int suki_template_render(const struct suki_templates *t, const char *name,
                         const char *locale,
                         const char *(*lookup)(const char *var, void *arg),
                         void *arg, struct suki_rendered *out,
                         struct suki_err *err)
{
    return suki_template_render_lists(t, name, locale, lookup, NULL, arg, out,
                                      err);
}

/* See template.h. */
int suki_template_render_lists(
    const struct suki_templates *t, const char *name, const char *locale,
    const char *(*lookup)(const char *var, void *arg),
    const struct suki_template_lists *lists, void *arg,
    struct suki_rendered *out, struct suki_err *err)
{
    const struct tmpl *tp;
    const struct variant *v;
    struct suki_buf b = {0};
    size_t start, len;

    memset(out, 0, sizeof(*out));
    tp = (t != NULL && name != NULL) ? find_tmpl(t, name) : NULL;
    if (tp == NULL)
        return suki_err_set(err, -ENOENT, "no template '%s'",
                            name ? name : "(null)");
    v = pick_variant(tp, locale, t->default_locale);
    if (v == NULL)
        return suki_err_set(err, -ENOENT, "no variant of template '%s'", name);

    render_part(&v->subject, CTX_SUBJECT, lookup, lists, arg, &b);
    /* Trim, cut at a character boundary when too long. */
    start = 0;
    len = b.len;
    while (start < len && b.p[start] == ' ')
        start++;
    while (len > start && b.p[len - 1] == ' ')
        len--;
    if (len - start > SUKI_TEMPLATE_SUBJECT_MAX) {
        len = start + SUKI_TEMPLATE_SUBJECT_MAX;
        while (len > start && ((unsigned char)b.p[len] & 0xc0) == 0x80)
            len--;
        /* the cut may land after a space */
        while (len > start && b.p[len - 1] == ' ')
            len--;
    }
    out->subject = suki_strndup(b.p ? b.p + start : "", len - start);
    free(b.p);
    memset(&b, 0, sizeof(b));

    render_part(&v->text, CTX_TEXT, lookup, lists, arg, &b);
    out->text = suki_buf_take(&b);
    if (v->has_html) {
        render_part(&v->html, CTX_HTML, lookup, lists, arg, &b);
        out->html = suki_buf_take(&b);
    }
    if (strlen(out->text) > SUKI_TEMPLATE_BODY_MAX ||
        (out->html != NULL && strlen(out->html) > SUKI_TEMPLATE_BODY_MAX)) {
        suki_rendered_clear(out);
        return suki_err_set(err, -E2BIG,
                            "template '%s': rendered body over %d bytes", name,
                            SUKI_TEMPLATE_BODY_MAX);
    }
    suki_strlcpy(out->locale, v->locale, sizeof(out->locale));
    return 0;
}

/* See template.h. */
void suki_rendered_clear(struct suki_rendered *r)
{
    if (r == NULL)
        return;
    free(r->subject);
    free(r->text);
    free(r->html);
    memset(r, 0, sizeof(*r));
}
