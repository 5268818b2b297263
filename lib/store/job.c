/* job.c - job keys and bodies (store/job.h). */
#include "job.h"
#include "keys.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "util.h"

/* ---- job keys ------------------------------------------------------ */

static void key_component(struct suki_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!s)
        return;
    const unsigned char *run = (const unsigned char *)s, *p = run;
    for (; *p; p++) {
        if (*p == ':' || *p == '%' || *p <= 0x20 || *p == 0x7f) {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            suki_buf_add(b, run, (size_t)(p - run));
            suki_buf_add(b, esc, sizeof(esc));
            run = p + 1;
        }
    }
    suki_buf_add(b, run, (size_t)(p - run));
}

char *suki_job_key(const char *rule, const char *client, const char *subject,
                   const char *slot)
{
    struct suki_buf b = {0};
    key_component(&b, rule);
    suki_buf_str(&b, ":");
    key_component(&b, client);
    suki_buf_str(&b, ":");
    key_component(&b, subject);
    suki_buf_str(&b, ":");
    key_component(&b, slot);
    return suki_buf_take(&b);
}

char *suki_job_key_prefix(const char *rule, const char *client,
                          const char *subject)
{
    struct suki_buf b = {0};
    key_component(&b, rule);
    suki_buf_str(&b, ":");
    key_component(&b, client);
    suki_buf_str(&b, ":");
    if (subject) {
        key_component(&b, subject);
        suki_buf_str(&b, ":");
    }
    return suki_buf_take(&b);
}

/* ---- job bodies ---------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode the key component s[0..n) into an owned string; NULL when an
 * escape is malformed or decodes to NUL. */
static char *key_decode(const char *s, size_t n)
{
    char *out = suki_malloc(n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[w++] = s[i];
            continue;
        }
        int a = i + 2 < n ? hexval(s[i + 1]) : -1;
        int b = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (a < 0 || b < 0 || (a == 0 && b == 0)) {
            free(out);
            return NULL;
        }
        out[w++] = (char)(a * 16 + b);
        i += 2;
    }
    out[w] = '\0';
    return out;
}

int suki_job_key_split(const char *key, char **rule, char **client,
                       char **subject, char **slot)
{
    char **outs[4] = {rule, client, subject, slot};
    char *parts[4] = {NULL, NULL, NULL, NULL};
    const char *p = key ? key : "";
    for (int i = 0; i < 4; i++) {
        const char *end = i < 3 ? strchr(p, ':') : p + strlen(p);
        if (!end)
            goto bad;
        if (i == 3 && strchr(p, ':'))
            goto bad;
        parts[i] = key_decode(p, (size_t)(end - p));
        if (!parts[i] || (i < 2 && !*parts[i]))
            goto bad;
        p = end + 1;
    }
    for (int i = 0; i < 4; i++) {
        if (outs[i])
            *outs[i] = parts[i];
        else
            free(parts[i]);
    }
    return 0;
bad:
    for (int i = 0; i < 4; i++)
        free(parts[i]);
    return -EINVAL;
}

char *suki_job_hash_key(const char *prefix, const char *client, const char *key)
{
    struct suki_buf b = {0};
    suki_buf_str(&b, prefix ? prefix : "");
    suki_buf_str(&b, ":job:");
    if (client) {
        key_component(&b, client);
        return suki_buf_take(&b);
    }
    const char *c;
    size_t n;
    if (!key || !suki_job_key_client(key, &c, &n)) {
        free(b.p);
        return NULL;
    }
    suki_buf_add(&b, c, n);
    return suki_buf_take(&b);
}

bool suki_job_key_client(const char *key, const char **c, size_t *len)
{
    const char *s = strchr(key, ':');
    const char *e = s ? strchr(s + 1, ':') : NULL;
    if (!e || e == s + 1)
        return false;
    *c = s + 1;
    *len = (size_t)(e - s - 1);
    return true;
}

void suki_job_clear(struct suki_jobdata *j)
{
    free(j->key);
    free(j->rule);
    free(j->client);
    free(j->subject);
    free(j->slot);
    free(j->template_name);
    free(j->channel);
    for (size_t i = 0; i < j->n_notify; i++)
        free(j->notify[i]);
    free(j->notify);
    suki_event_free(j->event);
    memset(j, 0, sizeof(*j));
}

/* An optional string member: 0 with *out (owned, NULL when absent), or
 * -EINVAL with err. */
static int job_str(json_t *root, const char *name, const char *what, char **out,
                   struct suki_err *err)
{
    json_t *v = json_object_get(root, name);
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return suki_err_set(err, -EINVAL,
                            "job body: \"%s\" (%s) is not a non-empty string",
                            name, what);
    *out = suki_strdup(json_string_value(v));
    return 0;
}

/* An optional integer member >= min: 0 with *out (0 when absent). */
static int job_int(json_t *root, const char *name, const char *what,
                   int64_t min, int64_t *out, struct suki_err *err)
{
    json_t *v = json_object_get(root, name);
    *out = 0;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return suki_err_set(
            err, -EINVAL, "job body: \"%s\" (%s) is not an integer >= %" PRId64,
            name, what, min);
    *out = json_integer_value(v);
    return 0;
}

/* The stored event: {"t":type,"a":at_ms,"i":id,"m":manager,"d":data}. */
static int job_event(json_t *e, const char *client, struct suki_event **out,
                     struct suki_err *err)
{
    struct suki_event_parts p = {.client = client};
    json_t *t = json_object_get(e, SUKI_JOB_EV_TYPE);
    json_t *i = json_object_get(e, SUKI_JOB_EV_ID);
    json_t *m = json_object_get(e, SUKI_JOB_EV_MANAGER);
    json_t *d = json_object_get(e, SUKI_JOB_EV_DATA);
    if (!json_is_string(t) || (i && !json_is_string(i)) ||
        (m && !json_is_string(m)))
        return suki_err_set(err, -EINVAL,
                            "job body: stored event: type, id or manager is "
                            "not a string");
    if (job_int(e, SUKI_JOB_EV_AT, "event time", 0, &p.at_ms, err) < 0)
        return -EINVAL;
    p.type = json_string_value(t);
    p.id = i ? json_string_value(i) : NULL;
    p.manager = m ? json_string_value(m) : NULL;
    p.data = d;
    struct suki_err eerr = {{0}};
    if (suki_event_new(&p, out, &eerr) < 0)
        return suki_err_set(err, -EINVAL, "job body: stored event: %s",
                            eerr.msg);
    return 0;
}

int suki_job_parse(const char *key, const char *body, size_t len,
                   struct suki_jobdata *out, struct suki_err *err)
{
    memset(out, 0, sizeof(*out));
    if (suki_job_key_split(key, &out->rule, &out->client, &out->subject,
                           &out->slot) < 0)
        return suki_err_set(err, -EINVAL, "bad job key '%s'", key ? key : "");
    out->key = suki_strdup(key);
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", body ? len : 0,
                              JSON_REJECT_DUPLICATES, &jerr);
    int rc = -EINVAL;
    int64_t v;
    if (!root) {
        suki_err_set(err, -EINVAL, "job body is not JSON: %s", jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        suki_err_set(err, -EINVAL, "job body is not a JSON object");
        goto out;
    }
    if (job_int(root, SUKI_JOB_DUE, "due", 1, &out->due_ms, err) < 0)
        goto out;
    if (out->due_ms == 0) {
        suki_err_set(err, -EINVAL,
                     "job body: no due time \"" SUKI_JOB_DUE "\"");
        goto out;
    }
    if (job_int(root, SUKI_JOB_ATTEMPT, "attempt", 0, &v, err) < 0)
        goto out;
    out->attempt = v > 1000000 ? 1000000 : (int)v;
    if (job_int(root, SUKI_JOB_FORCED, "forced", 0, &v, err) < 0)
        goto out;
    out->forced = v != 0;
    if (job_int(root, SUKI_JOB_RETRY, "retry time", 0, &out->retry_at_ms, err) <
            0 ||
        job_str(root, SUKI_JOB_TEMPLATE, "template", &out->template_name, err) <
            0 ||
        job_str(root, SUKI_JOB_CHANNEL, "channel", &out->channel, err) < 0)
        goto out;

    json_t *notify = json_object_get(root, SUKI_JOB_NOTIFY);
    if (notify) {
        if (!json_is_array(notify)) {
            suki_err_set(err, -EINVAL, "job body: notify is not an array");
            goto out;
        }
        size_t n = json_array_size(notify);
        out->notify = suki_calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(notify, i);
            if (!json_is_string(x)) {
                suki_err_set(err, -EINVAL,
                             "job body: notify holds a non-string");
                goto out;
            }
            out->notify[out->n_notify++] = suki_strdup(json_string_value(x));
        }
    }

    json_t *ev = json_object_get(root, SUKI_JOB_EVENT);
    if (ev) {
        if (!json_is_object(ev)) {
            suki_err_set(err, -EINVAL, "job body: event is not an object");
            goto out;
        }
        if (job_event(ev, out->client, &out->event, err) < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc < 0)
        suki_job_clear(out);
    return rc;
}

static const struct suki_rule_conf *conf_rule(const struct suki_conf *conf,
                                              const char *name)
{
    for (size_t i = 0; conf && name && i < conf->n_rules; i++)
        if (strcmp(conf->rules[i].name, name) == 0)
            return &conf->rules[i];
    return NULL;
}

bool suki_job_defaults(struct suki_jobdata *j, const struct suki_conf *conf)
{
    const struct suki_rule_conf *rc = conf_rule(conf, j->rule);
    if (rc && !j->template_name && rc->template_name)
        j->template_name = suki_strdup(rc->template_name);
    if (!j->channel)
        j->channel = suki_strdup(rc && rc->channel ? rc->channel : "email");
    if (rc && j->n_notify == 0 && rc->n_notify > 0) {
        free(j->notify);
        j->notify = suki_calloc(rc->n_notify + 1, sizeof(char *));
        for (size_t i = 0; i < rc->n_notify; i++)
            j->notify[i] = suki_strdup(rc->notify[i]);
        j->n_notify = rc->n_notify;
    }
    return rc != NULL;
}

static json_t *json_strings(const char *const *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(arr, json_string(v[i])) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* The stored form of an event (keys.h): its members by short names,
 * without the client (the key has it). Shares ev->data. Returns a new
 * reference or NULL. */
static json_t *job_event_json(const struct suki_event *ev)
{
    json_t *e = json_object();
    bool bad = !e;
    bad = bad ||
          json_object_set_new(e, SUKI_JOB_EV_TYPE, json_string(ev->type)) != 0;
    bad = bad ||
          json_object_set_new(e, SUKI_JOB_EV_AT, json_integer(ev->at_ms)) != 0;
    if (ev->id)
        bad = bad ||
              json_object_set_new(e, SUKI_JOB_EV_ID, json_string(ev->id)) != 0;
    if (ev->manager)
        bad = bad || json_object_set_new(e, SUKI_JOB_EV_MANAGER,
                                         json_string(ev->manager)) != 0;
    if (ev->data && json_object_size(ev->data) > 0)
        bad = bad || json_object_set(e, SUKI_JOB_EV_DATA, ev->data) != 0;
    if (bad) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* root as compact JSON, root released. json_dumps allocates with malloc;
 * the caller gets a suki-owned copy, so every string is freed the same way.
 * NULL when a string is not valid UTF-8. */
static char *dump(json_t *root)
{
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text)
        return NULL;
    char *out = suki_strdup(text);
    free(text);
    return out;
}

char *suki_job_body(const struct suki_job_fields *f)
{
    /* Only what the key and the rule's configuration do not say: the due
     * time, the event, and the plugin's own template, channel and notify
     * list when it chose them. */
    json_t *root = json_object();
    bool bad =
        json_object_set_new(root, SUKI_JOB_DUE, json_integer(f->due_ms)) != 0;
    const struct suki_event *ev = f->event;
    if (ev && ev->order_ms && ev->order_ms != ev->at_ms)
        bad = bad || json_object_set_new(root, SUKI_JOB_ORDER,
                                         json_integer(ev->order_ms)) != 0;
    if (f->event && !bad) {
        json_t *e = job_event_json(f->event);
        bad = !e || json_object_set_new(root, SUKI_JOB_EVENT, e) != 0;
    }
    /* json_string() refuses invalid UTF-8 (NULL), which set_new refuses */
    if (f->template_name)
        bad = bad || json_object_set_new(root, SUKI_JOB_TEMPLATE,
                                         json_string(f->template_name)) != 0;
    if (f->channel)
        bad = bad || json_object_set_new(root, SUKI_JOB_CHANNEL,
                                         json_string(f->channel)) != 0;
    if (f->n_notify > 0 && !bad) {
        json_t *n = json_strings(f->notify, f->n_notify);
        bad = !n || json_object_set_new(root, SUKI_JOB_NOTIFY, n) != 0;
    }
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return dump(root);
}

/* ---- retry state ---------------------------------------------------- */

char *suki_job_body_update(const char *body, int attempt, int64_t retry_at_ms,
                           int64_t due_ms)
{
    json_t *root = json_loads(body ? body : "", 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    if (due_ms > 0)
        json_object_set_new(root, SUKI_JOB_DUE, json_integer(due_ms));
    if (attempt > 0)
        json_object_set_new(root, SUKI_JOB_ATTEMPT, json_integer(attempt));
    else
        json_object_del(root, SUKI_JOB_ATTEMPT);
    if (retry_at_ms > 0)
        json_object_set_new(root, SUKI_JOB_RETRY, json_integer(retry_at_ms));
    else
        json_object_del(root, SUKI_JOB_RETRY);
    return dump(root);
}

int suki_job_body_retry(const char *body, int *attempt, int64_t *retry_at_ms)
{
    *attempt = 0;
    *retry_at_ms = 0;
    json_t *root = json_loads(body ? body : "", 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return -EINVAL;
    }
    json_t *a = json_object_get(root, SUKI_JOB_ATTEMPT);
    if (json_is_integer(a) && json_integer_value(a) > 0 &&
        json_integer_value(a) < 1000000)
        *attempt = (int)json_integer_value(a);
    json_t *r = json_object_get(root, SUKI_JOB_RETRY);
    if (json_is_integer(r) && json_integer_value(r) > 0)
        *retry_at_ms = json_integer_value(r);
    json_decref(root);
    return 0;
}
