/* inbound_parse.c - classify a message from the replies-and-bounces
 * mailbox (inbound_parse.h).
 *
 * GMime 3 rather than a parser of our own: the mailbox takes mail from
 * anyone, so the input is hostile MIME (nested and conflicting boundaries,
 * truncation, bogus encodings), subjects come as RFC 2047 words in any
 * charset, and the reports come as message/delivery-status and
 * message/feedback-report bodies, which are header blocks: GMime's header
 * parser reads those too (unfolding, encodings), so one well-kept library
 * reads every byte. It reports what it had to guess (its warning
 * callback); a message it had to guess about in ways other software may
 * read differently is MALFORMED here, not acted upon. */
#include "config.h"

#include "inbound_parse.h"
#include "util.h"

#include <gmime/gmime.h>
#include <string.h>
#include <strings.h>

/* ---- small helpers ------------------------------------------------ */

static void gmime_once(void)
{
    static bool done;
    if (!done) {
        g_mime_init();
        done = true;
    }
}

/* s made safe to hand on: valid UTF-8 (bad bytes replaced), control
 * characters and runs of white space made one space, trimmed, at most
 * SUKI_INBOUND_TEXT_MAX bytes cut at a character boundary. NULL for
 * NULL or when nothing is left. Returns owned. */
static char *clean_text(const char *s)
{
    if (!s)
        return NULL;
    gchar *v = g_utf8_make_valid(s, -1);
    size_t n = strlen(v);
    char *out = suki_malloc(n + 1);
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f || c == ' ') {
            space = o > 0;
            continue;
        }
        if (space) {
            out[o++] = ' ';
            space = false;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    g_free(v);
    if (o > SUKI_INBOUND_TEXT_MAX) {
        o = SUKI_INBOUND_TEXT_MAX;
        while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80)
            o--;
        out[o] = '\0';
    }
    if (o == 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* A Message-ID as suki writes and looks it up: "<id>", id printable ASCII
 * without white space or <>, at most 250 bytes. NULL when id is not one.
 * Returns owned. */
static char *clean_id(const char *id)
{
    if (!id)
        return NULL;
    while (*id == '<' || *id == ' ')
        id++;
    size_t n = strlen(id);
    while (n > 0 && (id[n - 1] == '>' || id[n - 1] == ' '))
        n--;
    if (n == 0 || n > 250)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>')
            return NULL;
    }
    return suki_asprintf("<%.*s>", (int)n, id);
}

/* A bare address out of "rfc822; a@b" (DSN fields) or "<a@b>": the part
 * after the address type, without angle brackets, lower-cased ASCII.
 * NULL when nothing like an address is left. Returns owned. */
static char *clean_addr(const char *v)
{
    if (!v)
        return NULL;
    const char *semi = strchr(v, ';');
    if (semi)
        v = semi + 1;
    while (*v == ' ' || *v == '\t' || *v == '<')
        v++;
    size_t n = strcspn(v, " \t>");
    if (n == 0 || n > SUKI_INBOUND_TEXT_MAX || !memchr(v, '@', n))
        return NULL;
    char *a = suki_malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x21 || c == 0x7f || c == '"' || c == '\\' || c >= 0x80) {
            free(a);
            return NULL;
        }
        a[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    a[n] = '\0';
    return a;
}

/* The first mailbox address of an address list, lower-cased, or NULL. */
static char *first_addr(InternetAddressList *l)
{
    if (!l || internet_address_list_length(l) < 1)
        return NULL;
    InternetAddress *ia = internet_address_list_get_address(l, 0);
    if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
        return NULL;
    return clean_addr(
        internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
}

/* ---- limits before parsing ----------------------------------------- */

/* The number of header lines that start "Content-Type:" (any case): an
 * upper bound of the parts GMime would build, counted without it. */
static size_t count_parts(const char *p, size_t len)
{
    static const char ct[] = "content-type:";
    const size_t cl = sizeof(ct) - 1;
    size_t n = 0;
    for (size_t i = 0; i + cl <= len; i++) {
        if (i > 0 && p[i - 1] != '\n')
            continue;
        if ((p[i] | 0x20) == 'c' && strncasecmp(p + i, ct, cl) == 0)
            n++;
    }
    return n;
}

/* ---- reading parsed objects --------------------------------------- */

struct pstate {
    const char *why; /* the first warning that makes it malformed */
};

static void on_warning(gint64 offset, GMimeParserWarning code,
                       const gchar *item, gpointer arg)
{
    (void)offset;
    (void)item;
    struct pstate *st = arg;
    const char *why = NULL;
    switch (code) {
    case GMIME_WARN_MALFORMED_MULTIPART:
        why = "a multipart without parts";
        break;
    case GMIME_WARN_TRUNCATED_MESSAGE:
        why = "truncated";
        break;
    case GMIME_WARN_MALFORMED_MESSAGE:
        why = "malformed message";
        break;
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE:
        why = "bad RFC 2047 encoding in a header";
        break;
    case GMIME_CRIT_INVALID_HEADER_NAME:
        why = "invalid header name";
        break;
    case GMIME_CRIT_CONFLICTING_HEADER:
        why = "conflicting header fields";
        break;
    case GMIME_CRIT_CONFLICTING_PARAMETER:
        why = "conflicting header parameters";
        break;
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
        why = "a multipart without a boundary";
        break;
    case GMIME_CRIT_NESTING_OVERFLOW:
        why = "MIME nested too deep";
        break;
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
        why = "a part without headers or content";
        break;
    default:
        break;
    }
    if (why && !st->why)
        st->why = why;
}

/* The decoded content of a leaf part, NUL-terminated, into a GByteArray
 * the caller unrefs; NULL when obj is not a leaf or has no content. */
static GByteArray *part_bytes(GMimeObject *obj)
{
    if (!GMIME_IS_PART(obj))
        return NULL;
    GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(obj));
    if (!w)
        return NULL;
    GMimeStream *ms = g_mime_stream_mem_new();
    if (g_mime_data_wrapper_write_to_stream(w, ms) < 0) {
        g_object_unref(ms);
        return NULL;
    }
    /* the array outlives the stream: the stream must not free it */
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(ms), FALSE);
    g_object_unref(ms);
    g_byte_array_append(ba, (const guint8 *)"", 1);
    return ba;
}

/* Parse n bytes at p (header fields only, e.g. one block of a
 * delivery-status body, or text/rfc822-headers) as the header of a
 * message. Returns a new reference or NULL. */
static GMimeMessage *parse_headers(const char *p, size_t n,
                                   GMimeParserOptions *opt)
{
    GMimeStream *s = g_mime_stream_mem_new();
    g_mime_stream_write(s, p, n);
    g_mime_stream_write(s, "\n\n", 2);
    g_mime_stream_seek(s, 0, GMIME_STREAM_SEEK_SET);
    GMimeParser *ps = g_mime_parser_new_with_stream(s);
    g_mime_parser_set_format(ps, GMIME_FORMAT_MESSAGE);
    GMimeMessage *m = g_mime_parser_construct_message(ps, opt);
    g_object_unref(ps);
    g_object_unref(s);
    return m;
}

static const char *hdr(GMimeMessage *m, const char *name)
{
    return g_mime_object_get_header(GMIME_OBJECT(m), name);
}

/* The children of a report: find the part of type/subtype (first match). */
static GMimeObject *find_child(GMimeMultipart *mp, const char *type,
                               const char *subtype)
{
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; i++) {
        GMimeObject *c = g_mime_multipart_get_part(mp, i);
        GMimeContentType *ct = g_mime_object_get_content_type(c);
        if (ct && g_mime_content_type_is_type(ct, type, subtype))
            return c;
    }
    return NULL;
}

/* The reported message's Message-ID (and To, for complaints) from its
 * message/rfc822 (message/global) or text/rfc822-headers part. */
static void original_of(GMimeMultipart *mp, GMimeParserOptions *opt, char **id,
                        char **to)
{
    GMimeObject *c = find_child(mp, "message", "rfc822");
    if (!c)
        c = find_child(mp, "message", "global");
    GMimeMessage *om = NULL;
    if (c && GMIME_IS_MESSAGE_PART(c)) {
        om = g_mime_message_part_get_message(GMIME_MESSAGE_PART(c));
        if (om)
            g_object_ref(om);
    }
    if (!om) {
        c = find_child(mp, "text", "rfc822-headers");
        if (!c)
            c = find_child(mp, "message", "global-headers");
        GByteArray *ba = c ? part_bytes(c) : NULL;
        if (ba) {
            om = parse_headers((const char *)ba->data, ba->len - 1, opt);
            g_byte_array_unref(ba);
        }
    }
    if (!om)
        return;
    *id = clean_id(g_mime_message_get_message_id(om));
    if (to)
        *to = first_addr(g_mime_message_get_to(om));
    g_object_unref(om);
}

/* The next block of header fields in [*p, end): up to a blank line. */
static bool next_block(const char **p, const char *end, const char **b,
                       size_t *n)
{
    const char *s = *p;
    /* skip blank lines */
    while (s < end && (*s == '\r' || *s == '\n'))
        s++;
    if (s >= end)
        return false;
    const char *e = s;
    while (e < end) {
        const char *nl = memchr(e, '\n', (size_t)(end - e));
        if (!nl) {
            e = end;
            break;
        }
        const char *q = nl + 1;
        if (q < end && *q == '\r')
            q++;
        if (q >= end || *q == '\n') {
            e = nl + 1;
            break;
        }
        e = nl + 1;
    }
    *b = s;
    *n = (size_t)(e - s);
    *p = e;
    return true;
}

/* "smtp; 550 5.1.1 no such user" without its type. Returns owned. */
static char *diag_text(const char *v)
{
    if (!v)
        return NULL;
    const char *semi = strchr(v, ';');
    return clean_text(semi ? semi + 1 : v);
}

static void read_dsn(GMimeMultipart *mp, GMimeParserOptions *opt,
                     struct suki_inbound_msg *out)
{
    GMimeObject *ds = find_child(mp, "message", "delivery-status");
    if (!ds)
        ds = find_child(mp, "message", "global-delivery-status");
    GByteArray *ba = ds ? part_bytes(ds) : NULL;
    if (!ba) {
        out->why = suki_strdup("a delivery report without its status part");
        return;
    }
    const char *p = (const char *)ba->data, *end = p + ba->len - 1;
    const char *b;
    size_t n;
    bool first = true;
    out->rcpts = suki_calloc(SUKI_INBOUND_MAX_RCPTS, sizeof(*out->rcpts));
    while (next_block(&p, end, &b, &n) &&
           out->n_rcpts < SUKI_INBOUND_MAX_RCPTS) {
        GMimeMessage *f = parse_headers(b, n, opt);
        if (!f)
            continue;
        /* the first block is about the message (Reporting-MTA ...);
         * recipient blocks have Final-Recipient or Original-Recipient */
        const char *fr = hdr(f, "Final-Recipient");
        if (!fr)
            fr = hdr(f, "Original-Recipient");
        if (first && !fr) {
            first = false;
            g_object_unref(f);
            continue;
        }
        first = false;
        char *addr = clean_addr(fr);
        if (addr) {
            struct suki_inbound_rcpt *r = &out->rcpts[out->n_rcpts++];
            r->address = addr;
            r->action = clean_text(hdr(f, "Action"));
            if (r->action)
                for (char *q = r->action; *q; q++)
                    if (*q >= 'A' && *q <= 'Z')
                        *q = (char)(*q - 'A' + 'a');
            const char *st = hdr(f, "Status");
            char code[16] = "";
            if (st) {
                /* "5.1.1" possibly followed by a comment */
                size_t k = 0;
                while (st[k] == ' ')
                    st++;
                while (k < sizeof(code) - 1 &&
                       ((st[k] >= '0' && st[k] <= '9') || st[k] == '.')) {
                    code[k] = st[k];
                    k++;
                }
                code[k] = '\0';
                if (!(code[0] >= '2' && code[0] <= '5' && code[1] == '.'))
                    code[0] = '\0';
            }
            if (!code[0] && r->action) {
                /* no usable Status: the Action says as much */
                if (strcmp(r->action, "failed") == 0)
                    suki_strlcpy(code, "5.0.0", sizeof(code));
                else if (strcmp(r->action, "delayed") == 0)
                    suki_strlcpy(code, "4.0.0", sizeof(code));
                else if (strcmp(r->action, "delivered") == 0 ||
                         strcmp(r->action, "relayed") == 0 ||
                         strcmp(r->action, "expanded") == 0)
                    suki_strlcpy(code, "2.0.0", sizeof(code));
            }
            r->status = suki_strdup(code[0] ? code : "unknown");
            r->diagnostic = diag_text(hdr(f, "Diagnostic-Code"));
        }
        g_object_unref(f);
    }
    g_byte_array_unref(ba);
    if (out->n_rcpts == 0) {
        out->why = suki_strdup("a delivery report without a recipient");
        return;
    }
    original_of(mp, opt, &out->orig_id, NULL);
}

static void read_arf(GMimeMultipart *mp, GMimeParserOptions *opt,
                     struct suki_inbound_msg *out)
{
    GMimeObject *fr = find_child(mp, "message", "feedback-report");
    GByteArray *ba = fr ? part_bytes(fr) : NULL;
    if (!ba) {
        out->why = suki_strdup("a feedback report without its report part");
        return;
    }
    GMimeMessage *f = parse_headers((const char *)ba->data, ba->len - 1, opt);
    g_byte_array_unref(ba);
    char *to = NULL;
    if (f) {
        char *ft = clean_text(hdr(f, "Feedback-Type"));
        if (ft)
            for (char *q = ft; *q; q++)
                if (*q >= 'A' && *q <= 'Z')
                    *q = (char)(*q - 'A' + 'a');
        out->feedback_type = ft;
        out->complainant = clean_addr(hdr(f, "Original-Rcpt-To"));
        g_object_unref(f);
    }
    if (!out->feedback_type) {
        out->why = suki_strdup("a feedback report without Feedback-Type");
        return;
    }
    original_of(mp, opt, &out->orig_id, &to);
    if (!out->complainant)
        out->complainant = to;
    else
        free(to);
}

static bool has_ref(const struct suki_inbound_msg *m, const char *id)
{
    for (size_t i = 0; i < m->n_refs; i++)
        if (strcmp(m->refs[i], id) == 0)
            return true;
    return false;
}

/* In-Reply-To first, then References newest (last) first. Every <...>
 * token counts, rather than g_mime_references_parse's list: that stops
 * at the first malformed id, and one id naming a message of ours is
 * enough, wherever it stands (a stray token only costs a lookup). */
static void read_refs(GMimeMessage *msg, struct suki_inbound_msg *out)
{
    out->refs = suki_calloc(SUKI_INBOUND_MAX_REFS, sizeof(char *));
    const char *names[2] = {"In-Reply-To", "References"};
    for (int h = 0; h < 2; h++) {
        const char *v = hdr(msg, names[h]);
        if (!v)
            continue;
        const char *end = v + strlen(v);
        while (end > v && out->n_refs < SUKI_INBOUND_MAX_REFS) {
            const char *gt = end - 1;
            while (gt > v && *gt != '>')
                gt--;
            if (*gt != '>')
                break;
            const char *lt = gt;
            while (lt > v && *lt != '<')
                lt--;
            if (*lt != '<')
                break;
            char *tok = suki_asprintf("%.*s", (int)(gt - lt + 1), lt);
            char *id = clean_id(tok);
            free(tok);
            if (id && !has_ref(out, id))
                out->refs[out->n_refs++] = id;
            else
                free(id);
            end = lt;
        }
    }
}

/* Subjects that out-of-office replies carry when they carry no header
 * that says so (lower-case, matched as a prefix of the lower-cased
 * subject). */
static const char *const ooo_subjects[] = {"out of office",
                                           "out of the office",
                                           "automatic reply",
                                           "auto reply",
                                           "auto-reply",
                                           "autoreply",
                                           "auto:",
                                           "away from office",
                                           "on vacation",
                                           "abwesenheitsnotiz",
                                           "réponse automatique"};

static bool is_autoreply(GMimeMessage *msg, const char *subject)
{
    const char *as = hdr(msg, "Auto-Submitted");
    if (as) {
        while (*as == ' ' || *as == '\t')
            as++;
        /* anything but "no" is a machine's (RFC 3834) */
        if (strncasecmp(as, "no", 2) != 0 ||
            (as[2] && as[2] != ' ' && as[2] != ';' && as[2] != '\t'))
            return true;
    }
    if (hdr(msg, "X-Autoreply") || hdr(msg, "X-Autorespond") ||
        hdr(msg, "X-Autoresponse"))
        return true;
    const char *pr = hdr(msg, "Precedence");
    if (pr) {
        while (*pr == ' ')
            pr++;
        if (strncasecmp(pr, "auto_reply", 10) == 0)
            return true;
    }
    if (subject) {
        gchar *low = g_utf8_strdown(subject, -1);
        bool hit = false;
        for (size_t i = 0; i < SUKI_ARRAY_LEN(ooo_subjects) && !hit; i++)
            hit = strncmp(low, ooo_subjects[i], strlen(ooo_subjects[i])) == 0;
        g_free(low);
        if (hit)
            return true;
    }
    return false;
}

/* ---- the entry point ----------------------------------------------- */

static void malformed(struct suki_inbound_msg *out, const char *why)
{
    char *w = suki_strdup(why);
    suki_inbound_msg_clear(out);
    out->kind = SUKI_INBOUND_MALFORMED;
    out->why = w;
}

void suki_inbound_parse(const char *data, size_t len,
                        struct suki_inbound_msg *out)
{
    memset(out, 0, sizeof(*out));
    if (!data || len == 0) {
        malformed(out, "empty");
        return;
    }
    if (len > SUKI_INBOUND_MAX_BYTES) {
        malformed(out, "larger than the limit");
        return;
    }
    if (count_parts(data, len) > SUKI_INBOUND_MAX_PARTS) {
        malformed(out, "too many MIME parts");
        return;
    }
    gmime_once();
    struct pstate st = {0};
    GMimeParserOptions *opt = g_mime_parser_options_new();
    g_mime_parser_options_set_warning_callback(opt, on_warning, &st);
    GMimeStream *s = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *ps = g_mime_parser_new_with_stream(s);
    g_mime_parser_set_format(ps, GMIME_FORMAT_MESSAGE);
    GMimeMessage *msg = g_mime_parser_construct_message(ps, opt);
    g_object_unref(ps);
    g_object_unref(s);
    if (!msg) {
        malformed(out, "not a message");
        g_mime_parser_options_free(opt);
        return;
    }
    out->message_id = clean_id(g_mime_message_get_message_id(msg));
    out->from = first_addr(g_mime_message_get_from(msg));
    out->subject = clean_text(g_mime_message_get_subject(msg));
    GMimeObject *body = g_mime_message_get_mime_part(msg);
    GMimeContentType *ct = body ? g_mime_object_get_content_type(body) : NULL;
    const char *rt =
        ct && g_mime_content_type_is_type(ct, "multipart", "report")
            ? g_mime_content_type_get_parameter(ct, "report-type")
            : NULL;
    if (st.why) {
        /* checked first: what follows must not act on a guess */
    } else if (rt && GMIME_IS_MULTIPART(body) &&
               (strcasecmp(rt, "delivery-status") == 0 ||
                strcasecmp(rt, "global-delivery-status") == 0)) {
        out->kind = SUKI_INBOUND_DSN;
        read_dsn(GMIME_MULTIPART(body), opt, out);
    } else if (rt && GMIME_IS_MULTIPART(body) &&
               strcasecmp(rt, "feedback-report") == 0) {
        out->kind = SUKI_INBOUND_COMPLAINT;
        read_arf(GMIME_MULTIPART(body), opt, out);
    } else {
        read_refs(msg, out);
        if (is_autoreply(msg, out->subject))
            out->kind = SUKI_INBOUND_AUTOREPLY;
        else if (out->n_refs > 0)
            out->kind = SUKI_INBOUND_REPLY;
        else
            out->kind = SUKI_INBOUND_OTHER;
    }
    /* a warning raised while reading the parts counts as well */
    const char *why = st.why ? st.why : out->why;
    char *w = why ? suki_strdup(why) : NULL;
    g_object_unref(msg);
    g_mime_parser_options_free(opt);
    if (w) {
        malformed(out, w);
        free(w);
    }
}

void suki_inbound_msg_clear(struct suki_inbound_msg *m)
{
    if (!m)
        return;
    free(m->why);
    free(m->message_id);
    free(m->from);
    free(m->subject);
    for (size_t i = 0; i < m->n_refs; i++)
        free(m->refs[i]);
    free(m->refs);
    free(m->orig_id);
    for (size_t i = 0; i < m->n_rcpts; i++) {
        free(m->rcpts[i].address);
        free(m->rcpts[i].status);
        free(m->rcpts[i].action);
        free(m->rcpts[i].diagnostic);
    }
    free(m->rcpts);
    free(m->feedback_type);
    free(m->complainant);
    memset(m, 0, sizeof(*m));
}

const char *suki_inbound_kind_name(enum suki_inbound_kind k)
{
    static const char *const names[SUKI_INBOUND_KINDS] = {
        "other", "reply", "dsn", "complaint", "autoreply", "malformed"};
    return (unsigned)k < SUKI_INBOUND_KINDS ? names[k] : "other";
}

bool suki_inbound_status_permanent(const char *status)
{
    return status && status[0] == '5' && status[1] == '.';
}
