/* event.c - parse and validate client events (JSON via jansson). See
 * event.h. Byte-level checks (size, NUL, UTF-8, nesting) run before
 * jansson so their reasons are stable and a deeply nested document never
 * reaches a recursive parser. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "log.h"
#include "timeutil.h"

#define EVENT_DEFAULT_MAX_SIZE 65536
#define EVENT_DEFAULT_MAX_DEPTH 32
#define EVENT_TYPE_MAX 64
#define EVENT_STR_MAX 256
#define EVENT_AT_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* Deepest bracket nesting outside strings, stopping once above max. */
static bool too_deep(const char *s, size_t len, int max)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return false;
}

static bool type_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > EVENT_TYPE_MAX)
        return false;
    bool first = true; /* in the first label: no '-' allowed */
    bool label_empty = true;
    for (const char *p = t; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (label_empty)
                return false;
            first = false;
            label_empty = true;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '_' || (c == '-' && !first)) {
            label_empty = false;
        } else {
            return false;
        }
    }
    return !label_empty;
}

/* C0 controls, DEL and C1 controls (U+0080..U+009F, UTF-8 C2 80..C2 9F). */
static bool has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7F)
            return true;
        if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
            return true;
    }
    return false;
}

/* Optional/required short string member: 0 with *out set (NULL if absent
 * and optional) or -EINVAL with the reason. */
static int get_str(json_t *root, const char *key, bool required,
                   const char **out, struct suki_err *err)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (!v) {
        if (required)
            return suki_err_set(err, -EINVAL, "missing %s", key);
        return 0;
    }
    if (!json_is_string(v))
        return suki_err_set(err, -EINVAL, "%s is not a string", key);
    const char *s = json_string_value(v);
    if (json_string_length(v) > EVENT_STR_MAX)
        return suki_err_set(err, -EINVAL, "%s too long (max %d bytes)", key,
                            EVENT_STR_MAX);
    if (has_control(s))
        return suki_err_set(err, -EINVAL, "%s contains control characters",
                            key);
    *out = s;
    return 0;
}

static int validate(struct suki_event *ev, int64_t now_ms, struct suki_err *err)
{
    json_t *root = ev->root;
    if (!json_is_object(root))
        return suki_err_set(err, -EINVAL, "not an object");

    json_t *tv = json_object_get(root, "type");
    if (!tv)
        return suki_err_set(err, -EINVAL, "missing type");
    if (!json_is_string(tv))
        return suki_err_set(err, -EINVAL, "type is not a string");
    if (!type_ok(json_string_value(tv)))
        return suki_err_set(err, -EINVAL,
                            "bad type (want dotted lowercase like "
                            "meeting.held, max %d chars)",
                            EVENT_TYPE_MAX);

    const char *client, *id, *manager;
    int rc = get_str(root, "client", true, &client, err);
    if (rc)
        return rc;
    if (!*client)
        return suki_err_set(err, -EINVAL, "client is empty");
    rc = get_str(root, "id", false, &id, err);
    if (rc)
        return rc;
    if (id && !*id)
        return suki_err_set(err, -EINVAL, "id is empty");
    rc = get_str(root, "manager", false, &manager, err);
    if (rc)
        return rc;

    json_t *at = json_object_get(root, "at");
    ev->at_ms = now_ms;
    if (at) {
        struct suki_err terr = {{0}};
        if (!json_is_string(at))
            return suki_err_set(err, -EINVAL, "bad at: not a string");
        if (suki_time_parse_rfc3339(json_string_value(at), &ev->at_ms, &terr) !=
            0)
            return suki_err_set(err, -EINVAL, "bad at: %s", terr.msg);
        /* A job stores "at" as epoch ms and refuses a negative one when it
         * is read back (rules.c), and suki_event_dump writes a 4-digit
         * year (a UTC offset can push 9999-12-31 past it): an event outside
         * both would schedule reminders that can never be read back. */
        if (ev->at_ms < 0 || ev->at_ms > EVENT_AT_MAX_MS)
            return suki_err_set(err, -EINVAL,
                                "bad at: before 1970 or after 9999");
    }

    json_t *data = json_object_get(root, "data");
    if (data && !json_is_object(data))
        return suki_err_set(err, -EINVAL, "data is not an object");
    if (!data) {
        data = json_object();
        if (!data || json_object_set_new(root, "data", data) != 0)
            return suki_err_set(err, -ENOMEM, "out of memory");
    }
    ev->data = data;
    ev->type = suki_strdup(json_string_value(tv));
    ev->client = suki_strdup(client);
    ev->id = id ? suki_strdup(id) : NULL;
    /* an empty manager means "not given" rather than a bad event */
    ev->manager = manager && *manager ? suki_strdup(manager) : NULL;
    return 0;
}

/* Parse and validate one event; see event.h. buf borrowed; *out owned by
 * the caller on success (suki_event_free). lim may be NULL (defaults: 64 KiB,
 * depth 32); a zero field takes its default. Safe inside callbacks. */
int suki_event_parse(const char *buf, size_t len,
                     const struct suki_event_limits *lim, int64_t now_ms,
                     struct suki_event **out, struct suki_err *err)
{
    size_t max_size =
        lim && lim->max_size ? lim->max_size : EVENT_DEFAULT_MAX_SIZE;
    int max_depth =
        lim && lim->max_depth > 0 ? lim->max_depth : EVENT_DEFAULT_MAX_DEPTH;
    *out = NULL;
    if (len > max_size)
        return suki_err_set(err, -EMSGSIZE, "too large (%zu bytes, max %zu)",
                            len, max_size);
    if (len > 0 && memchr(buf, '\0', len))
        return suki_err_set(err, -EINVAL, "contains NUL byte");
    size_t bad = suki_utf8_bad_at((const unsigned char *)buf, len);
    if (bad < len)
        return suki_err_set(err, -EINVAL, "invalid UTF-8 at byte %zu", bad);
    if (too_deep(buf, len, max_depth))
        return suki_err_set(err, -EINVAL, "nesting too deep (max %d)",
                            max_depth);
    json_error_t jerr;
    json_t *root =
        json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return suki_err_set(err, -EINVAL, "not JSON: %s (line %d column %d)",
                            jerr.text, jerr.line, jerr.column);
    struct suki_event *ev = suki_calloc(1, sizeof(*ev));
    ev->root = root;
    int rc = validate(ev, now_ms, err);
    if (rc) {
        suki_event_free(ev);
        return rc;
    }
    *out = ev;
    return 0;
}

/* A member given as a C string: the checks get_str makes on JSON. */
static int check_part(const char *name, const char *s, bool required,
                      struct suki_err *err)
{
    if (!s) {
        if (required)
            return suki_err_set(err, -EINVAL, "missing %s", name);
        return 0;
    }
    size_t n = strlen(s);
    if (n > EVENT_STR_MAX)
        return suki_err_set(err, -EINVAL, "%s too long (max %d bytes)", name,
                            EVENT_STR_MAX);
    if (suki_utf8_bad_at((const unsigned char *)s, n) < n)
        return suki_err_set(err, -EINVAL, "%s is not valid UTF-8", name);
    if (has_control(s))
        return suki_err_set(err, -EINVAL, "%s contains control characters",
                            name);
    return 0;
}

/* Build an event from its parts; see event.h. p and its strings are
 * borrowed; p->data gets one more reference, held by the new event. */
int suki_event_new(const struct suki_event_parts *p, struct suki_event **out,
                   struct suki_err *err)
{
    *out = NULL;
    if (!p->type)
        return suki_err_set(err, -EINVAL, "missing type");
    if (!type_ok(p->type))
        return suki_err_set(err, -EINVAL,
                            "bad type (want dotted lowercase like "
                            "meeting.held, max %d chars)",
                            EVENT_TYPE_MAX);
    int rc = check_part("client", p->client, true, err);
    if (rc)
        return rc;
    if (!*p->client)
        return suki_err_set(err, -EINVAL, "client is empty");
    if ((rc = check_part("id", p->id, false, err)) != 0)
        return rc;
    if (p->id && !*p->id)
        return suki_err_set(err, -EINVAL, "id is empty");
    if ((rc = check_part("manager", p->manager, false, err)) != 0)
        return rc;
    if (p->data && !json_is_object(p->data))
        return suki_err_set(err, -EINVAL, "data is not an object");

    json_t *data = p->data ? json_incref(p->data) : json_object();
    if (!data)
        return suki_err_set(err, -ENOMEM, "out of memory");
    /* No document: suki_event_dump builds one when asked. */
    struct suki_event *ev = suki_calloc(1, sizeof(*ev));
    ev->data = data;
    ev->at_ms = p->at_ms;
    ev->type = suki_strdup(p->type);
    ev->client = suki_strdup(p->client);
    ev->id = p->id ? suki_strdup(p->id) : NULL;
    ev->manager = p->manager && *p->manager ? suki_strdup(p->manager) : NULL;
    *out = ev;
    return 0;
}

/* Free an event and everything it owns (NULL is fine). */
void suki_event_free(struct suki_event *ev)
{
    if (!ev)
        return;
    free(ev->id);
    free(ev->type);
    free(ev->client);
    free(ev->manager);
    if (ev->root)
        json_decref(ev->root);
    else
        json_decref(ev->data); /* suki_event_new: our own reference */
    free(ev);
}

/* Shortest "%g" text that reads back as the same double. */
static void format_real(double d, char *buf, size_t len)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* data.FIELD as text; see event.h. Returns a pointer borrowed from ev
 * (its JSON or ev->scratch), valid until the next call or suki_event_free. */
const char *suki_event_data_str(struct suki_event *ev, const char *field)
{
    if (!ev || !ev->data || !field)
        return NULL;
    json_t *v = json_object_get(ev->data, field);
    if (!v)
        return NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_value(v);
    case JSON_INTEGER:
        snprintf(ev->scratch, sizeof(ev->scratch), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(v));
        return ev->scratch;
    case JSON_REAL:
        format_real(json_real_value(v), ev->scratch, sizeof(ev->scratch));
        return ev->scratch;
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    default:
        return NULL;
    }
}

static void skip_field(const struct suki_event *ev, const char *field,
                       const char *why)
{
    suki_warnx("event %s (client %s): profile field %s ignored: %s",
               ev->id ? ev->id : "-", ev->client, field, why);
}

/* Profile fields this event sets; see event.h. Calls fn in order: the
 * top-level manager first, then the data fields, so when both name the
 * manager the explicit data.manager (called last) wins. value is borrowed
 * for the duration of the call. A value of the wrong type, with control
 * characters, or (timezone) naming no known zone is skipped with a warning
 * in the log: the header mentions an err_fn but its signature has none. */
void suki_event_profile_fields(const struct suki_event *ev,
                               void (*fn)(const char *field, const char *value,
                                          void *arg),
                               void *arg)
{
    static const char *const strs[] = {"name",   "email",    "manager",
                                       "locale", "timezone", "segment"};
    if (!ev || !fn)
        return;
    if (ev->manager)
        fn("manager", ev->manager, arg);
    /* A consent change about the client's own address (no data.email)
     * is the profile's consent too, so that opt-in campaigns follow it. */
    if (!json_object_get(ev->data, "email")) {
        if (strcmp(ev->type, "consent.unsubscribed") == 0)
            fn("consent", "false", arg);
        else if (strcmp(ev->type, "consent.subscribed") == 0)
            fn("consent", "true", arg);
    }
    if (strcmp(ev->type, "client.created") != 0 &&
        strcmp(ev->type, "client.updated") != 0)
        return;
    for (size_t i = 0; i < SUKI_ARRAY_LEN(strs); i++) {
        json_t *v = json_object_get(ev->data, strs[i]);
        if (!v)
            continue;
        if (!json_is_string(v)) {
            skip_field(ev, strs[i], "not a string");
            continue;
        }
        const char *s = json_string_value(v);
        if (has_control(s)) {
            skip_field(ev, strs[i], "contains control characters");
            continue;
        }
        if (strcmp(strs[i], "timezone") == 0 && !suki_tz_valid(s)) {
            skip_field(ev, strs[i], "unknown time zone");
            continue;
        }
        fn(strs[i], s, arg);
    }
    json_t *tags = json_object_get(ev->data, "tags");
    if (tags) {
        size_t idx;
        json_t *t;
        size_t total = 1;
        bool ok = json_is_array(tags);
        json_array_foreach(tags, idx, t)
        {
            if (!json_is_string(t) || has_control(json_string_value(t)))
                ok = false;
            else
                total += json_string_length(t) + 1;
        }
        if (!ok) {
            skip_field(ev, "tags", "not an array of plain strings");
        } else {
            char *joined = suki_malloc(total);
            size_t w = 0;
            json_array_foreach(tags, idx, t)
            {
                size_t n = json_string_length(t);
                if (idx > 0)
                    joined[w++] = ',';
                memcpy(joined + w, json_string_value(t), n);
                w += n;
            }
            joined[w] = '\0';
            fn("tags", joined, arg);
            free(joined);
        }
    }
    json_t *consent = json_object_get(ev->data, "consent");
    if (consent) {
        if (json_is_boolean(consent))
            fn("consent", json_is_true(consent) ? "true" : "false", arg);
        else
            skip_field(ev, "consent", "not true/false");
    }
}

/* Serialize compactly; see event.h. Returns an owned string (free()). When
 * the document had no "at", the effective time is added so that parsing the
 * dump gives the same event. */
char *suki_event_dump(const struct suki_event *ev)
{
    if (!ev)
        return NULL;
    json_t *doc = ev->root;
    bool copied = false;
    char at[40];
    if (!doc) {
        /* Built by suki_event_new: a document of its parts. */
        suki_time_format_rfc3339(ev->at_ms, at, sizeof(at));
        doc = json_object();
        bool bad = !doc;
        bad = bad || json_object_set_new(doc, "type", json_string(ev->type));
        bad =
            bad || json_object_set_new(doc, "client", json_string(ev->client));
        bad = bad ||
              (ev->id && json_object_set_new(doc, "id", json_string(ev->id)));
        bad = bad ||
              (ev->manager &&
               json_object_set_new(doc, "manager", json_string(ev->manager)));
        bad = bad || json_object_set_new(doc, "at", json_string(at));
        bad = bad || json_object_set(doc, "data", ev->data);
        if (bad) {
            json_decref(doc);
            return NULL;
        }
        copied = true;
    } else if (!json_object_get(doc, "at")) {
        suki_time_format_rfc3339(ev->at_ms, at, sizeof(at));
        doc = json_copy(ev->root);
        if (!doc || json_object_set_new(doc, "at", json_string(at)) != 0) {
            json_decref(doc);
            return NULL;
        }
        copied = true;
    }
    char *s = json_dumps(doc, JSON_COMPACT);
    if (copied)
        json_decref(doc);
    return s;
}
