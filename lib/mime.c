/* mime.c - build email messages (see mime.h).
 *
 * The message is built by hand here rather than with curl_mime_*: the spool
 * transport needs the finished bytes, and curl_mime cannot hand them out
 * (it only streams them into a transfer), it does no RFC 2047 encoding of
 * subjects and names, and it adds no Date or Message-ID. Building the bytes
 * once means the same bytes go to SMTP and to the spool, and a retry sends
 * exactly what the first attempt did. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <pthread.h>

#include "mime.h"

/* RFC 2047 6.2 asks for lines of at most 76 characters when encoded-words
 * are present; RFC 5322 asks for 78 and requires 998. */
#define FOLD_COL 76
/* 39 bytes of UTF-8 -> 52 base64 characters -> 64-character words. */
#define EW_BYTES 39
#define LINE_MAX_BYTES 998

/* ---- UTF-8 ---- */

static bool utf8_valid(const char *s)
{
    size_t n = strlen(s);
    return suki_utf8_bad_at((const unsigned char *)s, n) == n;
}

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* ---- addresses ---- */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

static bool is_atext(char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* See mime.h. */
bool suki_mime_addr_valid(const char *addr)
{
    const char *at, *label;
    size_t len, llen;

    if (addr == NULL)
        return false;
    len = strnlen(addr, SUKI_MIME_ADDR_MAX + 1);
    if (len > SUKI_MIME_ADDR_MAX)
        return false;
    at = strrchr(addr, '@');
    if (at == NULL)
        return false;
    llen = (size_t)(at - addr);
    if (llen == 0 || llen > SUKI_MIME_LOCAL_MAX)
        return false;
    /* Dot-string: atoms of atext separated by single dots. */
    if (addr[0] == '.' || at[-1] == '.')
        return false;
    for (const char *p = addr; p < at; p++) {
        if (*p == '.') {
            if (p[1] == '.')
                return false;
        } else if (!is_atext(*p)) {
            return false;
        }
    }
    /* Domain: LDH labels. */
    label = at + 1;
    if (*label == '\0')
        return false;
    for (;;) {
        size_t n = 0;
        while (is_alnum(label[n]) || label[n] == '-')
            n++;
        if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
            return false;
        if (label[n] == '\0')
            return true;
        if (label[n] != '.')
            return false;
        label += n + 1;
    }
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* See mime.h. */
int suki_mime_mailbox_parse(const char *s, struct suki_mailbox *out,
                            struct suki_err *err)
{
    const char *p = s, *lt;
    size_t n;
    char *addr = NULL, *name = NULL;

    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return suki_err_set(err, -EINVAL, "no address");
    for (const char *q = s; *q != '\0'; q++)
        if (is_ctl((unsigned char)*q))
            return suki_err_set(err, -EINVAL,
                                "control character in address '%.64s'", s);
    if (!utf8_valid(s))
        return suki_err_set(err, -EINVAL, "invalid UTF-8 in address");
    n = strlen(s);
    trim(&p, &n);
    if (n > 0 && p[n - 1] == '>') {
        lt = NULL;
        for (const char *q = p; q < p + n; q++)
            if (*q == '<')
                lt = q;
        if (lt == NULL)
            return suki_err_set(err, -EINVAL, "unbalanced '>' in '%.64s'", s);
        addr = suki_strndup(lt + 1, (size_t)(p + n - 1 - (lt + 1)));
        n = (size_t)(lt - p);
        trim(&p, &n);
        if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
            struct suki_buf b = {0};
            for (size_t i = 1; i + 1 < n; i++) {
                if (p[i] == '\\' && i + 2 < n)
                    i++;
                else if (p[i] == '"') {
                    free(b.p);
                    goto bad_name;
                }
                suki_buf_add(&b, p + i, 1);
            }
            name = b.p;
        } else if (n > 0) {
            if (memchr(p, '"', n) || memchr(p, '<', n) || memchr(p, '>', n))
                goto bad_name;
            name = suki_strndup(p, n);
        }
    } else {
        addr = suki_strndup(p, n);
    }
    if (!suki_mime_addr_valid(addr)) {
        suki_err_set(err, -EINVAL, "invalid email address '%.128s'", addr);
        free(addr);
        free(name);
        return -EINVAL;
    }
    if (name != NULL && (*name == '\0' || strlen(name) > SUKI_MIME_NAME_MAX)) {
        bool empty = *name == '\0';
        free(name);
        name = NULL;
        if (!empty) {
            free(addr);
            return suki_err_set(err, -EINVAL, "display name too long");
        }
    }
    out->addr = addr;
    out->name = name;
    return 0;
bad_name:
    free(addr);
    return suki_err_set(err, -EINVAL,
                        "bad display name in '%.64s' (one address only; "
                        "quote names with '\"')",
                        s);
}

/* See mime.h. */
void suki_mime_mailbox_clear(struct suki_mailbox *m)
{
    if (m == NULL)
        return;
    free(m->name);
    free(m->addr);
    m->name = m->addr = NULL;
}

/* ---- header writing ---- */

struct hdr {
    struct suki_buf *b;
    size_t col; /* characters on the current line */
    bool any;   /* a token follows the field name */
};

static void hdr_begin(struct hdr *h, struct suki_buf *b, const char *name)
{
    h->b = b;
    suki_buf_str(b, name);
    suki_buf_add(b, ":", 1);
    h->col = strlen(name) + 1;
    h->any = false;
}

/* Append " tok", folding before it when the line would grow too long.
 * Folding turns the separating space into CRLF SP, so unfolding restores
 * the value exactly; a line never holds only white space. */
static void hdr_token(struct hdr *h, const char *tok, size_t n)
{
    if (h->any && n > 0 && h->col + 1 + n > FOLD_COL) {
        suki_buf_add(h->b, "\r\n", 2);
        h->col = 0;
    }
    suki_buf_add(h->b, " ", 1);
    suki_buf_add(h->b, tok, n);
    h->col += 1 + n;
    h->any = true;
}

static void hdr_end(struct hdr *h)
{
    suki_buf_add(h->b, "\r\n", 2);
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64chars[v & 63] : '=';
    }
    return o;
}

/* Write s (valid UTF-8) as B encoded-words of at most EW_BYTES bytes each,
 * split only between characters; control characters become spaces so the
 * decoded text is one line. */
static void put_encoded_words(struct hdr *h, const char *s)
{
    size_t n = strlen(s);
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < n;) {
        unsigned char chunk[EW_BYTES];
        char word[16 + EW_BYTES * 2];
        size_t c = 0, w;
        while (i < n) {
            size_t k = suki_utf8_seq(u + i, n - i);
            if (k == 0 || c + k > EW_BYTES)
                break;
            for (size_t j = 0; j < k; j++)
                chunk[c + j] = is_ctl(u[i + j]) ? ' ' : u[i + j];
            c += k;
            i += k;
        }
        if (c == 0)
            break; /* invalid UTF-8: checked by the caller */
        memcpy(word, "=?UTF-8?B?", 10);
        w = 10 + b64(chunk, c, word + 10);
        memcpy(word + w, "?=", 2);
        hdr_token(h, word, w + 2);
    }
}

/* Printable ASCII with no "=?" (which could read as an encoded-word). */
static bool plain_ascii(const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c > 0x7e || (c == '=' && p[1] == '?'))
            return false;
    }
    return true;
}

/* Unstructured value (Subject, X-Suki-Job): plain words when it is
 * printable ASCII with words short enough to fold, else encoded-words. */
static void put_unstructured(struct hdr *h, const char *s)
{
    bool plain = plain_ascii(s);
    size_t word = 0;

    for (const char *p = s; plain && *p != '\0'; p++) {
        word = *p == ' ' ? 0 : word + 1;
        if (word > FOLD_COL - 8)
            plain = false;
    }
    if (!plain) {
        put_encoded_words(h, s);
        return;
    }
    for (const char *p = s;;) {
        const char *sp = strchr(p, ' ');
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        hdr_token(h, p, n);
        if (sp == NULL)
            break;
        p = sp + 1;
    }
}

/* A mailbox: display name (quoted-string or encoded-words) and <addr>. */
static void put_mailbox(struct hdr *h, const struct suki_mailbox *m, bool last)
{
    char addr[SUKI_MIME_ADDR_MAX + 4];
    size_t n;

    if (m->name != NULL && *m->name != '\0') {
        struct suki_buf q = {0};
        bool plain = plain_ascii(m->name);
        if (plain) {
            suki_buf_add(&q, "\"", 1);
            for (const char *p = m->name; *p != '\0'; p++) {
                if (*p == '"' || *p == '\\')
                    suki_buf_add(&q, "\\", 1);
                suki_buf_add(&q, p, 1);
            }
            suki_buf_add(&q, "\"", 1);
            plain = q.len <= FOLD_COL - 16;
        }
        if (plain)
            hdr_token(h, q.p, q.len);
        else
            put_encoded_words(h, m->name);
        free(q.p);
        n = (size_t)snprintf(addr, sizeof(addr), "<%s>%s", m->addr,
                             last ? "" : ",");
    } else {
        n = (size_t)snprintf(addr, sizeof(addr), "%s%s", m->addr,
                             last ? "" : ",");
    }
    hdr_token(h, addr, n);
}

/* ---- bodies ---- */

/* Quoted-printable with CRLF line ends. Any input line end (LF, CRLF, CR)
 * becomes CRLF. A '.' or "From " starting an encoded line is encoded too, so
 * neither SMTP dot-stuffing nor mbox "From " quoting can touch the body. */
static void qp_body(struct suki_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), col = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool eol_next, enc;
        char tok[3];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
            suki_buf_add(b, "\r\n", 2);
            col = 0;
            continue;
        }
        eol_next = i + 1 == n || s[i + 1] == '\n' || s[i + 1] == '\r';
        enc = c == '=' || c > 126 || (c < 32 && c != '\t') ||
              ((c == ' ' || c == '\t') && eol_next);
        /* Encoded lines hold at most 76 characters with the soft break. */
        if (col + (enc ? 3 : 1) > 75) {
            suki_buf_add(b, "=\r\n", 3);
            col = 0;
        }
        if (col == 0 &&
            (c == '.' || (c == 'F' && strncmp(s + i, "From ", 5) == 0)))
            enc = true;
        if (enc) {
            tok[0] = '=';
            tok[1] = hex[c >> 4];
            tok[2] = hex[c & 15];
            suki_buf_add(b, tok, 3);
            col += 3;
        } else {
            tok[0] = (char)c;
            suki_buf_add(b, tok, 1);
            col++;
        }
    }
    if (col > 0 || n == 0)
        suki_buf_add(b, "\r\n", 2);
}

/* ---- checks ---- */

static int check_text(const char *what, const char *s, size_t max,
                      struct suki_err *err)
{
    if (s == NULL)
        return suki_err_set(err, -EINVAL, "message has no %s", what);
    if (strlen(s) > max)
        return suki_err_set(err, -E2BIG, "%s longer than %zu bytes", what, max);
    if (!utf8_valid(s))
        return suki_err_set(err, -EILSEQ, "%s is not valid UTF-8", what);
    return 0;
}

static int check_mailbox(const char *what, const struct suki_mailbox *m,
                         struct suki_err *err)
{
    if (m == NULL || m->addr == NULL)
        return suki_err_set(err, -EINVAL, "message has no %s address", what);
    if (!suki_mime_addr_valid(m->addr))
        return suki_err_set(err, -EINVAL, "invalid %s address '%.128s'", what,
                            m->addr);
    if (m->name != NULL) {
        char label[48];
        snprintf(label, sizeof(label), "%s display name", what);
        return check_text(label, m->name, SUKI_MIME_NAME_MAX, err);
    }
    return 0;
}

/* "<left@right>" with printable ASCII and no white space or brackets. */
static bool msgid_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    bool at = false;

    if (n < 5 || n > 250 || s[0] != '<' || s[n - 1] != '>')
        return false;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c > 0x7e || c == '<' || c == '>' || c == '"' ||
            c == '\\')
            return false;
        if (c == '@')
            at = true;
    }
    return at && s[1] != '@' && s[n - 2] != '@';
}

static bool url_valid(const char *s)
{
    size_t n = strlen(s);

    if (n > SUKI_MIME_URL_MAX || (strncasecmp(s, "https://", 8) != 0 &&
                                  strncasecmp(s, "http://", 7) != 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c > 0x7e || c == '<' || c == '>' || c == '"')
            return false;
    }
    return true;
}

/* ---- hashing, date ---- */

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/* SHA-256 fetched once: EVP_sha256() makes every EVP_Digest fetch the
 * implementation again (a locked lookup), two per message built. Kept for
 * the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}
#else
static const EVP_MD *sha256(void)
{
    return EVP_sha256();
}
#endif

static void sha256_hex(const void *data, size_t n, char *hex, size_t digits)
{
    static const char x[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, n, md, &mdlen, sha256(), NULL) != 1)
        SUKI_ASSERT(!"EVP_Digest(sha256) failed");
    for (size_t i = 0; i < digits && i / 2 < mdlen; i++)
        hex[i] = x[(md[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    hex[digits] = '\0';
}

/* See mime.h. */
char *suki_mime_message_id(const char *key, const char *from_addr)
{
    char hex[33];
    const char *at = from_addr ? strrchr(from_addr, '@') : NULL;
    char *domain, *id;

    sha256_hex(key ? key : "", key ? strlen(key) : 0, hex, 32);
    domain = suki_strdup(at != NULL && at[1] != '\0' ? at + 1 : "suki.invalid");
    for (char *p = domain; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        else if (!is_alnum(*p) && *p != '-' && *p != '.')
            *p = '-';
    }
    id = suki_asprintf("<%s@%s>", hex, domain);
    free(domain);
    return id;
}

/* See mime.h. */
void suki_mime_date(int64_t ms, char *buf, size_t size)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    /* The last second formatted, per thread: a burst of messages shares
     * it. */
    static _Thread_local time_t last = (time_t)-1;
    static _Thread_local char last_buf[64];
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : 0);
    struct tm tm;

    if (t != last) {
        /* Written by hand so that no locale setting can change the bytes. */
        gmtime_r(&t, &tm);
        snprintf(last_buf, sizeof(last_buf),
                 "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
                 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        last = t;
    }
    suki_strlcpy(buf, last_buf, size);
}

/* ---- the message ---- */

static int check_msg(const struct suki_mime_msg *in, struct suki_err *err)
{
    int rc;

    if ((rc = check_mailbox("From", in->from, err)) < 0)
        return rc;
    if (in->to == NULL || in->n_to == 0)
        return suki_err_set(err, -EINVAL, "message has no recipient");
    if (in->n_to > SUKI_MIME_MAX_RCPT)
        return suki_err_set(err, -E2BIG, "more than %d recipients",
                            SUKI_MIME_MAX_RCPT);
    for (size_t i = 0; i < in->n_to; i++)
        if ((rc = check_mailbox("To", &in->to[i], err)) < 0)
            return rc;
    if (in->reply_to != NULL &&
        (rc = check_mailbox("Reply-To", in->reply_to, err)) < 0)
        return rc;
    if ((rc = check_text("subject", in->subject, SUKI_MIME_SUBJECT_MAX, err)) <
        0)
        return rc;
    if ((rc = check_text("text body", in->text, SUKI_MIME_BODY_MAX, err)) < 0)
        return rc;
    if (in->html != NULL &&
        (rc = check_text("HTML body", in->html, SUKI_MIME_BODY_MAX, err)) < 0)
        return rc;
    if (in->job_key != NULL &&
        (rc = check_text("job key", in->job_key, 512, err)) < 0)
        return rc;
    if (!msgid_valid(in->message_id))
        return suki_err_set(err, -EINVAL, "bad Message-ID '%.64s'",
                            in->message_id ? in->message_id : "(none)");
    if (in->list_unsubscribe != NULL && !url_valid(in->list_unsubscribe))
        return suki_err_set(err, -EINVAL,
                            "List-Unsubscribe must be an http(s) URL of "
                            "printable ASCII");
    return 0;
}

/* Every line ends in CRLF and holds at most 998 bytes before it. */
static bool lines_ok(const char *s, size_t n)
{
    size_t col = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            if (i + 1 >= n || s[i + 1] != '\n')
                return false;
            i++;
            col = 0;
        } else if (s[i] == '\n') {
            return false;
        } else if (++col > LINE_MAX_BYTES) {
            return false;
        }
    }
    return col == 0;
}

/* See mime.h. */
int suki_mime_build(const struct suki_mime_msg *in, char **out, size_t *len,
                    struct suki_err *err)
{
    struct suki_buf b = {0}, h = {0};
    struct hdr hd;
    char date[64], boundary[64];
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = check_msg(in, err)) < 0)
        return rc;

    suki_mime_date(in->date_ms, date, sizeof(date));
    hdr_begin(&hd, &b, "Date");
    hdr_token(&hd, date, strlen(date));
    hdr_end(&hd);

    hdr_begin(&hd, &b, "From");
    put_mailbox(&hd, in->from, true);
    hdr_end(&hd);

    hdr_begin(&hd, &b, "To");
    for (size_t i = 0; i < in->n_to; i++)
        put_mailbox(&hd, &in->to[i], i + 1 == in->n_to);
    hdr_end(&hd);

    if (in->reply_to != NULL) {
        hdr_begin(&hd, &b, "Reply-To");
        put_mailbox(&hd, in->reply_to, true);
        hdr_end(&hd);
    }

    hdr_begin(&hd, &b, "Subject");
    put_unstructured(&hd, in->subject);
    hdr_end(&hd);

    hdr_begin(&hd, &b, "Message-ID");
    hdr_token(&hd, in->message_id, strlen(in->message_id));
    hdr_end(&hd);

    suki_buf_str(&b, "MIME-Version: 1.0\r\n");
    /* RFC 3834: automatic mail; auto-responders should not answer it. */
    suki_buf_str(&b, "Auto-Submitted: auto-generated\r\n");

    if (in->list_unsubscribe != NULL) {
        hdr_begin(&hd, &b, "List-Unsubscribe");
        suki_buf_add(&h, "<", 1);
        suki_buf_str(&h, in->list_unsubscribe);
        suki_buf_add(&h, ">", 1);
        hdr_token(&hd, h.p, h.len);
        hdr_end(&hd);
        suki_buf_str(&b,
                     "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    }

    if (in->job_key != NULL) {
        hdr_begin(&hd, &b, "X-Suki-Job");
        put_unstructured(&hd, in->job_key);
        hdr_end(&hd);
    }

    if (in->html == NULL) {
        suki_buf_str(&b, "Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        qp_body(&b, in->text);
    } else {
        /* The boundary is a hash of the content, so the same message is
         * the same bytes. It starts with "=_", which quoted-printable output
         * can never contain ('=' is always followed by a hex digit or a line
         * end there), so it cannot collide with a body line. */
        struct suki_buf k = {0};
        char hex[33];
        suki_buf_str(&k, in->message_id);
        suki_buf_add(&k, "", 1);
        suki_buf_str(&k, in->subject);
        suki_buf_add(&k, "\n", 1);
        suki_buf_str(&k, in->text);
        suki_buf_add(&k, "\n", 1);
        suki_buf_str(&k, in->html);
        sha256_hex(k.p, k.len, hex, 32);
        free(k.p);
        snprintf(boundary, sizeof(boundary), "=_suki_%s", hex);

        suki_buf_str(&b,
                     "Content-Type: multipart/alternative;\r\n boundary=\"");
        suki_buf_str(&b, boundary);
        suki_buf_str(&b, "\"\r\n\r\nThis is a multi-part message in MIME "
                         "format.\r\n\r\n--");
        suki_buf_str(&b, boundary);
        suki_buf_str(&b, "\r\nContent-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        qp_body(&b, in->text);
        suki_buf_str(&b, "\r\n--");
        suki_buf_str(&b, boundary);
        suki_buf_str(&b, "\r\nContent-Type: text/html; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        qp_body(&b, in->html);
        suki_buf_str(&b, "\r\n--");
        suki_buf_str(&b, boundary);
        suki_buf_str(&b, "--\r\n");
    }
    free(h.p);

    if (!lines_ok(b.p, b.len)) {
        free(b.p);
        return suki_err_set(err, -E2BIG, "built message has a bad line");
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
