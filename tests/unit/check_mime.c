/* check_mime.c - addresses, RFC 2047, header safety, message structure. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "util.h"

/* ---- decoding helpers (test side, written independently) ---- */

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decode base64 of n chars into out; returns bytes or -1. */
static int b64dec(const char *s, size_t n, char *out)
{
    int o = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int d;
        if (s[i] == '=')
            break;
        d = b64val(s[i]);
        if (d < 0)
            return -1;
        v = (v << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((v >> bits) & 0xff);
        }
    }
    return o;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The header block of a message (up to the empty line), owned. */
static char *headers_of(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    return suki_strndup(msg, (size_t)(end - msg) + 2);
}

/* Unfolded value of header name (first occurrence) or NULL; owned. */
static char *header_value(const char *msg, const char *name)
{
    char *h = headers_of(msg), *res = NULL;
    size_t nl = strlen(name);
    for (char *line = h; *line != '\0';) {
        char *eol = strstr(line, "\r\n");
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            char *v = line + nl + 1;
            size_t o = 0;
            res = suki_malloc(strlen(v) + 1);
            /* unfold: drop CRLF before white space */
            for (char *p = v; *p != '\0'; p++) {
                if (p[0] == '\r' && p[1] == '\n' &&
                    (p[2] == ' ' || p[2] == '\t')) {
                    p++;
                    continue;
                }
                if (p[0] == '\r' && p[1] == '\n')
                    break;
                res[o++] = *p;
            }
            res[o] = '\0';
            /* strip the leading space */
            memmove(res, res + (res[0] == ' '), strlen(res) + 1);
            break;
        }
        line = eol + 2;
    }
    free(h);
    return res;
}

/* Decode RFC 2047 encoded-words in an unstructured value: white space
 * between adjacent encoded-words is dropped. Owned result. */
static char *decode_2047(const char *v)
{
    char *out = suki_malloc(strlen(v) * 2 + 1);
    size_t o = 0;
    bool prev_ew = false;
    const char *p = v;

    while (*p != '\0') {
        if (strncmp(p, "=?", 2) == 0) {
            const char *cs_end = strchr(p + 2, '?');
            const char *enc, *txt, *end;
            ck_assert_ptr_nonnull(cs_end);
            enc = cs_end + 1;
            ck_assert_int_eq(enc[1], '?');
            txt = enc + 2;
            end = strstr(txt, "?=");
            ck_assert_ptr_nonnull(end);
            ck_assert_uint_le((size_t)(end + 2 - p), 75);
            ck_assert(strncasecmp(p + 2, "UTF-8", 5) == 0);
            if (*enc == 'B' || *enc == 'b') {
                int n = b64dec(txt, (size_t)(end - txt), out + o);
                ck_assert_int_ge(n, 0);
                o += (size_t)n;
            } else {
                ck_assert(*enc == 'Q' || *enc == 'q');
                for (const char *q = txt; q < end; q++) {
                    if (*q == '_') {
                        out[o++] = ' ';
                    } else if (*q == '=') {
                        out[o++] = (char)(hexval(q[1]) * 16 + hexval(q[2]));
                        q += 2;
                    } else {
                        out[o++] = *q;
                    }
                }
            }
            p = end + 2;
            prev_ew = true;
            continue;
        }
        if (*p == ' ' && prev_ew) {
            const char *q = p;
            while (*q == ' ')
                q++;
            if (strncmp(q, "=?", 2) == 0) {
                p = q;
                continue;
            }
        }
        prev_ew = false;
        out[o++] = *p++;
    }
    out[o] = '\0';
    return out;
}

/* Decode a quoted-printable body (CRLF lines) to LF text; owned. */
static char *decode_qp(const char *s, size_t n)
{
    char *out = suki_malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
        } else if (s[i] == '=') {
            ck_assert_uint_lt(i + 2, n);
            ck_assert_int_ge(hexval(s[i + 1]), 0);
            ck_assert_int_ge(hexval(s[i + 2]), 0);
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
            out[o++] = '\n';
            i++;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* Every line ends with CRLF, no bare CR or LF, lines <= max bytes. */
static void assert_lines(const char *m, size_t len, size_t max)
{
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        if (m[i] == '\r') {
            ck_assert_msg(i + 1 < len && m[i + 1] == '\n', "bare CR at %zu", i);
            i++;
            col = 0;
        } else {
            ck_assert_msg(m[i] != '\n', "bare LF at %zu", i);
            col++;
            ck_assert_msg(col <= max, "line over %zu bytes at %zu", max, i);
        }
    }
    ck_assert_uint_eq(col, 0);
    ck_assert_uint_eq(strlen(m), len);
}

/* Header field names in order, joined with ',' (owned). */
static char *header_names(const char *msg)
{
    char *h = headers_of(msg);
    char names[1024] = "";
    for (char *line = h; *line != '\0';) {
        char *eol = strstr(line, "\r\n");
        if (*line != ' ' && *line != '\t') {
            char *colon = strchr(line, ':');
            ck_assert_ptr_nonnull(colon);
            ck_assert(colon < eol);
            if (names[0] != '\0')
                strncat(names, ",", sizeof(names) - strlen(names) - 1);
            strncat(names, line,
                    (size_t)(colon - line) < sizeof(names) - strlen(names) - 1
                        ? (size_t)(colon - line)
                        : sizeof(names) - strlen(names) - 1);
        }
        line = eol + 2;
    }
    free(h);
    return suki_strdup(names);
}

/* ---- fixtures ---- */

static struct suki_mailbox from = {"Accounts", "accounts@example.ph"};
static struct suki_mailbox to1 = {"Maria Santos", "maria@example.ph"};

static struct suki_mime_msg base_msg(void)
{
    struct suki_mime_msg m = {0};
    m.from = &from;
    m.to = &to1;
    m.n_to = 1;
    m.subject = "Follow up with Acme";
    m.text = "Hello,\nplease follow up.\n";
    m.date_ms = 1795744800000; /* 2026-11-27T02:00:00Z */
    m.message_id = "<0123456789abcdef@example.ph>";
    return m;
}

static char *build_ok(const struct suki_mime_msg *m, size_t *len)
{
    char *out = NULL;
    size_t n = 0;
    struct suki_err err = {{0}};
    int rc = suki_mime_build(m, &out, &n, &err);
    ck_assert_msg(rc == 0, "build failed: %d %s", rc, err.msg);
    assert_lines(out, n, 998);
    if (len != NULL)
        *len = n;
    return out;
}

/* ---- addresses ---- */

START_TEST(addr_table)
{
    char local64[80], local65[80], long254[300], long255[320];
    static const char *ok[] = {
        "a@b.c",
        "maria.santos+crm@example.ph",
        "x@localhost",
        "o'brien@example.com",
        "user_name-1@sub.domain-2.example.ph",
        "!#$%&'*+-/=?^_`{|}~@x.ph",
    };
    static const char *bad[] = {
        "",
        "a",
        "@b.ph",
        "a@",
        "a@@b.ph",
        ".a@b.ph",
        "a.@b.ph",
        "a..b@c.ph",
        "a b@c.ph",
        "a@b.ph\r\nBcc: x@y.ph",
        "a@b.ph\nBcc: x@y.ph",
        "a@b.ph\rBcc: x@y.ph",
        "a\r\n@b.ph",
        "a@b.ph\tx",
        "Bcc: x@y.ph",
        "a@b.ph,c@d.ph",
        "a@b.ph, Bcc: c@d.ph",
        "<a@b.ph>",
        "\"a\"@b.ph",
        "a@-b.ph",
        "a@b-.ph",
        "a@b..ph",
        "a@.b.ph",
        "a@b.ph.",
        "a@b_c.ph",
        "a@b c.ph",
        "\xc3\xb1@b.ph",
        "a@\xc3\xb1.ph",
        "a@[127.0.0.1]",
        "a\x7f@b.ph",
        "a(comment)@b.ph",
    };
    for (size_t i = 0; i < SUKI_ARRAY_LEN(ok); i++)
        ck_assert_msg(suki_mime_addr_valid(ok[i]), "refused %s", ok[i]);
    for (size_t i = 0; i < SUKI_ARRAY_LEN(bad); i++)
        ck_assert_msg(!suki_mime_addr_valid(bad[i]), "accepted %s", bad[i]);
    ck_assert(!suki_mime_addr_valid(NULL));

    /* Length limits: local part 64, whole 254, label 63. */
    memset(local64, 'l', 64);
    memcpy(local64 + 64, "@x.ph", 6);
    ck_assert(suki_mime_addr_valid(local64));
    memset(local65, 'l', 65);
    memcpy(local65 + 65, "@x.ph", 6);
    ck_assert(!suki_mime_addr_valid(local65));
    /* "a@" + labels of 63, 62, 62, 62 and three dots = 254 bytes */
    snprintf(long254, sizeof(long254), "a@%.63s.%.62s.%.62s.%.62s", local65,
             local65, local65, local65);
    ck_assert_uint_eq(strlen(long254), 254);
    ck_assert(suki_mime_addr_valid(long254));
    snprintf(long255, sizeof(long255), "%se", long254);
    ck_assert(!suki_mime_addr_valid(long255));
    {
        char label[100];
        snprintf(label, sizeof(label), "a@%.64s.ph", local65);
        ck_assert(!suki_mime_addr_valid(label));
        snprintf(label, sizeof(label), "a@%.63s.ph", local65);
        ck_assert(suki_mime_addr_valid(label));
    }
}
END_TEST

START_TEST(mailbox_parse_table)
{
    static const struct {
        const char *in, *name, *addr;
    } ok[] = {
        {"Accounts <accounts@example.ph>", "Accounts", "accounts@example.ph"},
        {"\"Santos, Maria\" <m@x.ph>", "Santos, Maria", "m@x.ph"},
        {"<m@x.ph>", NULL, "m@x.ph"},
        {"m@x.ph", NULL, "m@x.ph"},
        {"  Maria  Santos   <m@x.ph>  ", "Maria  Santos", "m@x.ph"},
        {"\"A \\\"B\\\" C\" <a@b.ph>", "A \"B\" C", "a@b.ph"},
        {"\"\" <a@b.ph>", NULL, "a@b.ph"},
        {"José Rizal <jose@x.ph>", "José Rizal", "jose@x.ph"},
    };
    static const char *bad[] = {
        "Accounts <a@b.ph>\r\nBcc: x@y.ph",
        "Accounts\r\nBcc: x@y.ph <a@b.ph>",
        "Accounts <a@b.ph\r\n>",
        "Acc\x01ounts <a@b.ph>",
        "A <a@b.ph> <c@d.ph>",
        "A <a@b.ph>, B <c@d.ph>",
        "a@b.ph, c@d.ph",
        "<a@b.ph",
        "a@b.ph>",
        "A <>",
        "A <not an address>",
        "\"unterminated <a@b.ph>",
        "\"A\" B\" <a@b.ph>",
        "",
        "   ",
        "bad\xff <a@b.ph>",
    };
    for (size_t i = 0; i < SUKI_ARRAY_LEN(ok); i++) {
        struct suki_mailbox m;
        struct suki_err err = {{0}};
        ck_assert_msg(suki_mime_mailbox_parse(ok[i].in, &m, &err) == 0,
                      "refused '%s': %s", ok[i].in, err.msg);
        ck_assert_str_eq(m.addr, ok[i].addr);
        if (ok[i].name == NULL)
            ck_assert_ptr_null(m.name);
        else
            ck_assert_str_eq(m.name, ok[i].name);
        suki_mime_mailbox_clear(&m);
    }
    for (size_t i = 0; i < SUKI_ARRAY_LEN(bad); i++) {
        struct suki_mailbox m;
        struct suki_err err = {{0}};
        ck_assert_msg(suki_mime_mailbox_parse(bad[i], &m, &err) == -EINVAL,
                      "accepted '%s'", bad[i]);
        ck_assert(err.msg[0] != '\0');
        ck_assert_ptr_null(m.addr);
        ck_assert_ptr_null(m.name);
    }
    suki_mime_mailbox_clear(NULL);
}
END_TEST

/* ---- RFC 2047 ---- */

START_TEST(rfc2047_roundtrip)
{
    static const char *subjects[] = {
        "Paalala: i-follow up ang Bahay Kubo Café 🍜 — salamat po!",
        "Ñ",
        "🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜🍜",
        "Renewal ng kontrata: Sari-Sari Store ni Aling Nena (CT-2026-014), "
        "matatapos sa 2027-01-31 — pakisagot po bago mag-Pasko 🎄🇵🇭",
        "a =?UTF-8?B?SGk=?= looks encoded",
        "plain ASCII subject that is long enough to need folding because it "
        "goes on and on past seventy-eight columns",
        "x" /* single char */,
        "word-longer-than-a-line-"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaa end",
    };
    for (size_t i = 0; i < SUKI_ARRAY_LEN(subjects); i++) {
        struct suki_mime_msg m = base_msg();
        struct suki_mailbox to = {"José Rizal 🇵🇭 (Dapitan)", "jose@example.ph"};
        char *out, *v, *dec, *h;
        m.subject = subjects[i];
        m.to = &to;
        out = build_ok(&m, NULL);
        /* header lines stay within 78 columns (76 with encoded-words) */
        h = headers_of(out);
        for (char *line = h; *line != '\0';) {
            char *eol = strstr(line, "\r\n");
            ck_assert_msg(eol - line <= 78, "long header line '%.*s'",
                          (int)(eol - line), line);
            line = eol + 2;
        }
        free(h);
        v = header_value(out, "Subject");
        ck_assert_ptr_nonnull(v);
        dec = decode_2047(v);
        ck_assert_msg(strcmp(dec, subjects[i]) == 0, "subject %zu: '%s'", i,
                      dec);
        free(dec);
        free(v);
        v = header_value(out, "To");
        dec = decode_2047(v);
        ck_assert_str_eq(dec, "José Rizal 🇵🇭 (Dapitan) <jose@example.ph>");
        free(dec);
        free(v);
        free(out);
    }
}
END_TEST

START_TEST(names_plain_and_quoted)
{
    struct suki_mime_msg m = base_msg();
    struct suki_mailbox to[3] = {
        {"Santos, Maria \"Ria\"", "m@x.ph"}, {NULL, "b@x.ph"}, {"", "c@x.ph"}};
    char *out, *v;
    m.to = to;
    m.n_to = 3;
    out = build_ok(&m, NULL);
    v = header_value(out, "To");
    ck_assert_str_eq(v, "\"Santos, Maria \\\"Ria\\\"\" <m@x.ph>, b@x.ph, "
                        "c@x.ph");
    free(v);
    v = header_value(out, "From");
    ck_assert_str_eq(v, "\"Accounts\" <accounts@example.ph>");
    free(v);
    free(out);
}
END_TEST

/* ---- header injection ---- */

START_TEST(injection_table)
{
    static const char *evil[] = {
        "Hi\r\nBcc: x@y.ph",     "Hi\nBcc: x@y.ph",     "Hi\rBcc: x@y.ph",
        "\r\nBcc: x@y.ph",       "Hi\r\n\r\nbody text", "Hi\r\n Bcc: x@y.ph",
        "Hi\tthere\x01\x1f\x7f", "Café\r\nBcc: x@y.ph", "\"\r\nBcc: x@y.ph\"",
    };
    for (size_t i = 0; i < SUKI_ARRAY_LEN(evil); i++) {
        for (int where = 0; where < 5; where++) {
            struct suki_mime_msg m = base_msg();
            struct suki_mailbox f = {(char *)"Accounts", "a@example.ph"};
            struct suki_mailbox t = {(char *)"Maria", "m@example.ph"};
            struct suki_mailbox r = {(char *)"Reply", "r@example.ph"};
            const char *field;
            char *out, *h, *names, *v, *dec;
            m.from = &f;
            m.to = &t;
            m.reply_to = &r;
            m.job_key = "suki:job:1";
            switch (where) {
            case 0:
                m.subject = evil[i];
                field = "Subject";
                break;
            case 1:
                f.name = (char *)evil[i];
                field = "From";
                break;
            case 2:
                t.name = (char *)evil[i];
                field = "To";
                break;
            case 3:
                r.name = (char *)evil[i];
                field = "Reply-To";
                break;
            default:
                m.job_key = evil[i];
                field = "X-Suki-Job";
                break;
            }
            out = build_ok(&m, NULL);
            names = header_names(out);
            ck_assert_msg(strcmp(names, "Date,From,To,Reply-To,Subject,"
                                        "Message-ID,MIME-Version,"
                                        "Auto-Submitted,X-Suki-Job,"
                                        "Content-Type,"
                                        "Content-Transfer-Encoding") == 0,
                          "case %zu/%d headers: %s", i, where, names);
            h = headers_of(out);
            ck_assert_ptr_null(strcasestr(h, "\r\nBcc"));
            ck_assert_ptr_null(strcasestr(h, "Bcc:"));
            v = header_value(out, field);
            dec = decode_2047(v);
            ck_assert_ptr_null(strpbrk(dec, "\r\n"));
            ck_assert_msg(strstr(v, "=?UTF-8?B?") != NULL,
                          "case %zu/%d not encoded: %s", i, where, v);
            free(dec);
            free(v);
            free(h);
            free(names);
            free(out);
        }
    }
}
END_TEST

START_TEST(injection_in_address_refused)
{
    static const char *evil[] = {
        "m@example.ph\r\nBcc: x@y.ph",
        "m@example.ph>\r\nBcc: <x@y.ph",
        "m@example.ph, x@y.ph",
        "m@example.ph\n",
    };
    for (size_t i = 0; i < SUKI_ARRAY_LEN(evil); i++) {
        for (int where = 0; where < 3; where++) {
            struct suki_mime_msg m = base_msg();
            struct suki_mailbox mb = {NULL, (char *)evil[i]};
            struct suki_err err = {{0}};
            char *out = (char *)"untouched";
            size_t len = 1;
            if (where == 0)
                m.from = &mb;
            else if (where == 1)
                m.to = &mb;
            else
                m.reply_to = &mb;
            ck_assert_int_eq(suki_mime_build(&m, &out, &len, &err), -EINVAL);
            ck_assert_ptr_null(out);
            ck_assert_uint_eq(len, 0);
            ck_assert_ptr_nonnull(strstr(err.msg, "address"));
        }
    }
    /* An embedded NUL ends a C string: nothing after it can get in. */
    {
        static const char nul[] = "m@example.ph\0\r\nBcc: x@y.ph";
        struct suki_mime_msg m = base_msg();
        struct suki_mailbox mb = {NULL, (char *)nul};
        char *out, *v;
        m.to = &mb;
        m.subject = "Hi\0\r\nBcc: x@y.ph";
        out = build_ok(&m, NULL);
        ck_assert_ptr_null(strstr(out, "Bcc"));
        v = header_value(out, "To");
        ck_assert_str_eq(v, "m@example.ph");
        free(v);
        free(out);
    }
}
END_TEST

/* ---- structure ---- */

START_TEST(structure_single)
{
    struct suki_mime_msg m = base_msg();
    char *out, *names, *v, *body;
    size_t len;

    out = build_ok(&m, &len);
    names = header_names(out);
    ck_assert_str_eq(names, "Date,From,To,Subject,Message-ID,MIME-Version,"
                            "Auto-Submitted,Content-Type,"
                            "Content-Transfer-Encoding");
    free(names);
    v = header_value(out, "Date");
    ck_assert_str_eq(v, "Fri, 27 Nov 2026 02:00:00 +0000");
    free(v);
    v = header_value(out, "Content-Type");
    ck_assert_str_eq(v, "text/plain; charset=utf-8");
    free(v);
    v = header_value(out, "Subject");
    ck_assert_str_eq(v, "Follow up with Acme");
    free(v);
    v = header_value(out, "Message-ID");
    ck_assert_str_eq(v, "<0123456789abcdef@example.ph>");
    free(v);
    body = strstr(out, "\r\n\r\n") + 4;
    ck_assert_str_eq(body, "Hello,\r\nplease follow up.\r\n");
    ck_assert_ptr_null(strstr(out, "List-Unsubscribe"));
    ck_assert_ptr_null(strstr(out, "multipart"));
    free(out);
}
END_TEST

START_TEST(structure_multipart)
{
    struct suki_mime_msg m = base_msg();
    struct suki_mailbox rt = {"Maria", "maria@example.ph"};
    char *out, *names, *v, *bnd, *p, *q, *dec;
    char delim[128];
    size_t len, count = 0;

    m.html = "<p>Hello,<br>please follow up.</p>\n";
    m.reply_to = &rt;
    m.list_unsubscribe = "https://suki.example.ph/u/tok123";
    m.job_key = "suki:job:follow-up:acme-ph:CT-1";
    out = build_ok(&m, &len);
    names = header_names(out);
    ck_assert_str_eq(names, "Date,From,To,Reply-To,Subject,Message-ID,"
                            "MIME-Version,Auto-Submitted,List-Unsubscribe,"
                            "List-Unsubscribe-Post,X-Suki-Job,Content-Type");
    free(names);
    v = header_value(out, "List-Unsubscribe");
    ck_assert_str_eq(v, "<https://suki.example.ph/u/tok123>");
    free(v);
    v = header_value(out, "List-Unsubscribe-Post");
    ck_assert_str_eq(v, "List-Unsubscribe=One-Click");
    free(v);
    v = header_value(out, "X-Suki-Job");
    ck_assert_str_eq(v, "suki:job:follow-up:acme-ph:CT-1");
    free(v);
    v = header_value(out, "Content-Type");
    ck_assert(strncmp(v, "multipart/alternative; boundary=\"=_suki_", 40) == 0);
    bnd = suki_strndup(v + 33, strlen(v) - 34);
    ck_assert_uint_eq(strlen(bnd), 7 + 32);
    free(v);

    /* delimiters: two part starts and one close, text before html */
    snprintf(delim, sizeof(delim), "\r\n--%s\r\n", bnd);
    for (p = out; (p = strstr(p, delim)) != NULL; p++)
        count++;
    ck_assert_uint_eq(count, 2);
    snprintf(delim, sizeof(delim), "\r\n--%s--\r\n", bnd);
    q = strstr(out, delim);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq((size_t)(q - out) + strlen(delim), len);
    p = strstr(out, "Content-Type: text/plain; charset=utf-8");
    q = strstr(out, "Content-Type: text/html; charset=utf-8");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    ck_assert(p < q);
    /* The html part decodes back to the input. */
    q = strstr(q, "\r\n\r\n") + 4;
    snprintf(delim, sizeof(delim), "\r\n--%s--", bnd);
    dec = decode_qp(q, (size_t)(strstr(q, delim) - q));
    ck_assert_str_eq(dec, m.html);
    free(dec);
    free(bnd);
    free(out);
}
END_TEST

START_TEST(determinism)
{
    struct suki_mime_msg m = base_msg();
    char *a, *b, *c, *ba, *bc;
    size_t la, lb;

    m.html = "<p>x</p>";
    m.subject = "Kumusta 🍜";
    a = build_ok(&m, &la);
    b = build_ok(&m, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(a, b, la) == 0);
    m.html = "<p>y</p>";
    c = build_ok(&m, NULL);
    ba = header_value(a, "Content-Type");
    bc = header_value(c, "Content-Type");
    ck_assert_str_ne(ba, bc);
    free(ba);
    free(bc);
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(bodies_qp)
{
    static const char *bodies[] = {
        "a=b\nspace at end \ntab at end\t\n.leading dot\nFrom here\n",
        "Salamat po! Café ñ 🍜 — “quotes”\n",
        "no final newline",
        "crlf\r\nlines\r\nand a lone\rcr\n",
        "",
        "\n\n\n",
        "=",
    };
    char longline[5000];
    for (size_t i = 0; i < sizeof(longline) - 1; i++)
        longline[i] = (char)('a' + i % 26);
    longline[sizeof(longline) - 1] = '\0';
    for (size_t i = 0; i <= SUKI_ARRAY_LEN(bodies); i++) {
        struct suki_mime_msg m = base_msg();
        const char *in = i < SUKI_ARRAY_LEN(bodies) ? bodies[i] : longline;
        char *out, *body, *dec, *want;
        size_t len, o = 0;
        m.text = in;
        out = build_ok(&m, &len);
        body = strstr(out, "\r\n\r\n") + 4;
        /* encoded lines are at most 76 characters */
        assert_lines(body, strlen(body), 76);
        for (char *line = body; *line != '\0';) {
            ck_assert(line[0] != '.');
            ck_assert(strncmp(line, "From ", 5) != 0);
            line = strstr(line, "\r\n") + 2;
        }
        dec = decode_qp(body, strlen(body));
        /* expected: line ends normalised to LF, a final newline added */
        want = suki_malloc(strlen(in) + 2);
        for (const char *p = in; *p != '\0'; p++) {
            if (*p == '\r' && p[1] == '\n')
                continue;
            want[o++] = *p == '\r' ? '\n' : *p;
        }
        if (o == 0 || want[o - 1] != '\n')
            want[o++] = '\n';
        want[o] = '\0';
        ck_assert_msg(strcmp(dec, want) == 0, "body %zu: '%s'", i, dec);
        free(want);
        free(dec);
        free(out);
    }
}
END_TEST

START_TEST(long_lines_capped)
{
    struct suki_mime_msg m = base_msg();
    struct suki_mailbox to[SUKI_MIME_MAX_RCPT];
    char addrs[SUKI_MIME_MAX_RCPT][32];
    char subject[SUKI_MIME_SUBJECT_MAX + 1], name[SUKI_MIME_NAME_MAX + 1];
    char *out;

    memset(subject, 'S', sizeof(subject) - 1);
    subject[sizeof(subject) - 1] = '\0';
    memset(name, 'N', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    for (size_t i = 0; i < SUKI_MIME_MAX_RCPT; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "user%zu@example.ph", i);
        to[i].name = name;
        to[i].addr = addrs[i];
    }
    m.to = to;
    m.n_to = SUKI_MIME_MAX_RCPT;
    m.subject = subject;
    out = build_ok(&m, NULL); /* asserts CRLF and <= 998 everywhere */
    {
        char *h = headers_of(out);
        for (char *line = h; *line != '\0';) {
            char *eol = strstr(line, "\r\n");
            ck_assert_int_le(eol - line, 78);
            line = eol + 2;
        }
        free(h);
    }
    free(out);
}
END_TEST

START_TEST(build_errors)
{
    struct suki_mime_msg m;
    struct suki_mailbox many[SUKI_MIME_MAX_RCPT + 1];
    struct suki_mailbox bad_name = {"bad\xff", "a@b.ph"};
    struct suki_err err;
    char *out;
    size_t len;
    static const char *bad_urls[] = {
        "javascript:alert(1)",          "mailto:u@x.ph",    "https://x.ph/a b",
        "https://x.ph/\r\nBcc: y@z.ph", "https://x.ph/<a>", "ftp://x.ph",
    };
    static const char *bad_ids[] = {
        "",           "no-brackets@x.ph", "<no-at>",
        "<a b@x.ph>", "<a@x.ph>\r\nX: y", "<@x.ph>",
        "<a@>",
    };

#define EXPECT(code)                                                           \
    do {                                                                       \
        memset(&err, 0, sizeof(err));                                          \
        ck_assert_int_eq(suki_mime_build(&m, &out, &len, &err), (code));       \
        ck_assert_ptr_null(out);                                               \
        ck_assert(err.msg[0] != '\0');                                         \
    } while (0)

    m = base_msg();
    m.n_to = 0;
    EXPECT(-EINVAL);
    m = base_msg();
    m.to = NULL;
    EXPECT(-EINVAL);
    m = base_msg();
    m.from = NULL;
    EXPECT(-EINVAL);
    m = base_msg();
    for (size_t i = 0; i < SUKI_ARRAY_LEN(many); i++)
        many[i] = to1;
    m.to = many;
    m.n_to = SUKI_ARRAY_LEN(many);
    EXPECT(-E2BIG);
    m = base_msg();
    m.subject = NULL;
    EXPECT(-EINVAL);
    m = base_msg();
    m.subject = "caf\xe9";
    EXPECT(-EILSEQ);
    m = base_msg();
    m.text = "\xc3\x28";
    EXPECT(-EILSEQ);
    m = base_msg();
    m.html = "\xed\xa0\x80"; /* surrogate */
    EXPECT(-EILSEQ);
    m = base_msg();
    m.to = &bad_name;
    EXPECT(-EILSEQ);
    for (size_t i = 0; i < SUKI_ARRAY_LEN(bad_urls); i++) {
        m = base_msg();
        m.list_unsubscribe = bad_urls[i];
        EXPECT(-EINVAL);
    }
    for (size_t i = 0; i < SUKI_ARRAY_LEN(bad_ids); i++) {
        m = base_msg();
        m.message_id = bad_ids[i];
        EXPECT(-EINVAL);
    }
    m = base_msg();
    m.message_id = NULL;
    EXPECT(-EINVAL);
#undef EXPECT
}
END_TEST

START_TEST(message_id_and_date)
{
    char *a = suki_mime_message_id("suki:job:1", "Accounts@Example.PH");
    char *b = suki_mime_message_id("suki:job:1", "other@example.ph");
    char *c = suki_mime_message_id("suki:job:2", "other@example.ph");
    char *d = suki_mime_message_id("k", "no-domain");
    char date[64];

    /* sha256("suki:job:1") starts with these 32 hex digits */
    ck_assert_uint_eq(strlen(a), 1 + 32 + 1 + 10 + 1);
    ck_assert(a[0] == '<' && a[33] == '@');
    ck_assert_str_eq(a + 33, "@example.ph>");
    ck_assert(strncmp(a, b, 34) == 0);
    ck_assert(strncmp(b, c, 34) != 0);
    ck_assert_str_eq(d + 33, "@suki.invalid>");
    for (int i = 1; i < 33; i++)
        ck_assert(strchr("0123456789abcdef", a[i]) != NULL);
    {
        /* known vector: sha256("abc") = ba7816bf8f01cfea414140de5dae2223... */
        char *e = suki_mime_message_id("abc", "x@y.ph");
        ck_assert_str_eq(e, "<ba7816bf8f01cfea414140de5dae2223@y.ph>");
        free(e);
    }
    free(a);
    free(b);
    free(c);
    free(d);
    suki_mime_date(0, date, sizeof(date));
    ck_assert_str_eq(date, "Thu, 01 Jan 1970 00:00:00 +0000");
    suki_mime_date(951782400000, date, sizeof(date)); /* 2000-02-29 */
    ck_assert_str_eq(date, "Tue, 29 Feb 2000 00:00:00 +0000");
    suki_mime_date(1798761599999, date, sizeof(date));
    ck_assert_str_eq(date, "Thu, 31 Dec 2026 23:59:59 +0000");
    /* the same second again (cached), the next one, a small buffer */
    suki_mime_date(1798761599000, date, sizeof(date));
    ck_assert_str_eq(date, "Thu, 31 Dec 2026 23:59:59 +0000");
    suki_mime_date(1798761600000, date, sizeof(date));
    ck_assert_str_eq(date, "Fri, 01 Jan 2027 00:00:00 +0000");
    suki_mime_date(1798761600500, date, 4);
    ck_assert_str_eq(date, "Fri");
}
END_TEST

static Suite *mime_suite(void)
{
    Suite *s = suite_create("mime");
    TCase *tc = tcase_create("addresses");
    tcase_add_test(tc, addr_table);
    tcase_add_test(tc, mailbox_parse_table);
    suite_add_tcase(s, tc);
    tc = tcase_create("encoding");
    tcase_add_test(tc, rfc2047_roundtrip);
    tcase_add_test(tc, names_plain_and_quoted);
    tcase_add_test(tc, bodies_qp);
    suite_add_tcase(s, tc);
    tc = tcase_create("safety");
    tcase_add_test(tc, injection_table);
    tcase_add_test(tc, injection_in_address_refused);
    tcase_add_test(tc, build_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("structure");
    tcase_add_test(tc, structure_single);
    tcase_add_test(tc, structure_multipart);
    tcase_add_test(tc, determinism);
    tcase_add_test(tc, long_lines_capped);
    tcase_add_test(tc, message_id_and_date);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mime_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
