/* ops.c - the operator's operations shared by sukictl and the console. */
#include "ops.h"
#include "campaign.h"
#include "heartbeat.h"
#include "store/job.h"
#include "store/keys.h"
#include "timeutil.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_key(struct suki_redis_args *a, const struct suki_conf *c,
                    const char *suffix)
{
    char *k = suki_key(c->prefix, suffix);
    suki_redis_args_str(a, k);
    free(k);
}

void suki_ops_overview_args(const struct suki_conf *c,
                            struct suki_redis_args *a)
{
    suki_redis_args_str(a, c->stream);
    add_key(a, c, SUKI_KEY_DEAD);
    add_key(a, c, SUKI_KEY_JOBS);
    add_key(a, c, SUKI_KEY_STATS);
    add_key(a, c, SUKI_KEY_DAEMONS);
    suki_redis_args_str(a, c->group);
    char *dp = suki_key_id(c->prefix, SUKI_KEY_DAEMON, "");
    suki_redis_args_str(a, dp);
    free(dp);
    suki_redis_args_int(a, (int64_t)SUKI_HEARTBEAT_TTL_S * 1000);
}

static int64_t int_at(const redisReply *r, size_t i)
{
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    int64_t v = 0;
    if (e->type == REDIS_REPLY_STRING)
        (void)suki_parse_i64(e->str, INT64_MIN, INT64_MAX, &v);
    return v;
}

/* A heartbeat hash as an object: numbers as numbers, transports parsed. */
static json_t *daemon_json(const redisReply *name, const redisReply *h,
                           bool *breaker_open, bool *replicas_short)
{
    json_t *d = json_object();
    json_object_set_new(d, "consumer", json_stringn(name->str, name->len));
    for (size_t j = 0; h->type == REDIS_REPLY_ARRAY && j + 1 < h->elements;
         j += 2) {
        const char *f = h->element[j]->str;
        const char *v = h->element[j + 1]->str;
        if (!f || !v)
            continue;
        if (strcmp(f, "transports") == 0) {
            json_t *t = json_loads(v, 0, NULL);
            if (!json_is_array(t)) {
                json_decref(t);
                t = json_array();
            }
            size_t k;
            json_t *e;
            json_array_foreach(t, k, e)
            {
                const char *b =
                    json_string_value(json_object_get(e, "breaker"));
                if (b && strcmp(b, "closed") != 0)
                    *breaker_open = true;
            }
            json_object_set_new(d, f, t);
        } else {
            int64_t n;
            if (strcmp(f, "replicas_short") == 0 && strcmp(v, "1") == 0)
                *replicas_short = true;
            json_t *jv = suki_parse_i64(v, INT64_MIN, INT64_MAX, &n) == 0
                             ? json_integer(n)
                             : json_string(v);
            json_object_set_new(d, f, jv ? jv : json_null());
        }
    }
    return d;
}

json_t *suki_ops_overview_json(const struct suki_conf *c, const redisReply *r,
                               bool *breaker_open)
{
    *breaker_open = false;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 14)
        return NULL;
    int64_t n = int_at(r, 13);
    if (n < 0 || r->elements != 14 + 2 * (size_t)n)
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "stream_length", json_integer(int_at(r, 0)));
    json_object_set_new(o, "group", json_string(c->group));
    json_object_set_new(o, "consumers", json_integer(int_at(r, 2)));
    json_object_set_new(o, "pending", json_integer(int_at(r, 3)));
    int64_t lag = int_at(r, 4);
    /* lag is null when Redis cannot tell (an XDEL inside the backlog) */
    json_object_set_new(o, "lag", lag >= 0 ? json_integer(lag) : json_null());
    int64_t oldest = int_at(r, 5), now = int_at(r, 12);
    /* how long the oldest event not yet applied has waited: 0 when none */
    json_object_set_new(o, "lag_seconds",
                        json_real(oldest >= 0 && now > oldest
                                      ? (double)(now - oldest) / 1000.0
                                      : 0.0));
    json_object_set_new(o, "dead_entries", json_integer(int_at(r, 6)));
    json_object_set_new(o, "jobs_scheduled", json_integer(int_at(r, 7)));
    static const char *const names[] = {"events_applied", "events_duplicate",
                                        "events_invalid", "events_poison"};
    for (size_t i = 0; i < SUKI_ARRAY_LEN(names); i++)
        json_object_set_new(o, names[i], json_integer(int_at(r, 8 + i)));
    json_object_set_new(o, "now_ms", json_integer(now));
    json_t *a = json_array();
    bool rshort = false;
    for (size_t i = 0; i < (size_t)n; i++) {
        const redisReply *name = r->element[14 + 2 * i];
        const redisReply *h = r->element[15 + 2 * i];
        if (name->type == REDIS_REPLY_STRING)
            json_array_append_new(a,
                                  daemon_json(name, h, breaker_open, &rshort));
    }
    json_object_set_new(o, "daemons", a);
    json_object_set_new(o, "breaker_open", json_boolean(*breaker_open));
    /* a daemon's WAIT counted fewer replicas than redis.min_replicas */
    json_object_set_new(o, "replicas_short", json_boolean(rshort));
    return o;
}

json_t *suki_ops_json_bytes(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    if (v)
        return v;
    char *buf = suki_malloc(4 * n + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            buf[w++] = (char)ch;
        } else {
            snprintf(buf + w, 5, "\\x%02x", ch);
            w += 4;
        }
    }
    v = json_stringn(buf, w);
    free(buf);
    return v;
}

json_t *suki_ops_dead_json(const redisReply *e)
{
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    const redisReply *fv = e->element[1];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(e->element[0]->str));
    for (size_t k = 0; fv->type == REDIS_REPLY_ARRAY && k + 1 < fv->elements;
         k += 2) {
        const redisReply *f = fv->element[k], *v = fv->element[k + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        char *name = suki_strndup(f->str, f->len);
        int64_t ms;
        if (strcmp(name, "at") == 0 &&
            suki_parse_i64(v->str, 0, INT64_MAX, &ms) == 0) {
            char at[40];
            suki_time_format_rfc3339(ms, at, sizeof(at));
            json_object_set_new(o, "at", json_string(at));
            json_object_set_new(o, "at_ms", json_integer(ms));
        } else {
            json_object_set_new(o, name, suki_ops_json_bytes(v->str, v->len));
        }
        free(name);
    }
    if (!json_object_get(o, "kind"))
        json_object_set_new(o, "kind", json_string("event"));
    if (!json_object_get(o, "reason"))
        json_object_set_new(o, "reason", json_string(""));
    return o;
}

json_t *suki_ops_job_json(const struct suki_conf *c, const char *key,
                          int64_t score, const char *body, size_t body_len)
{
    struct suki_jobdata jd;
    struct suki_err err = {{0}};
    bool ok = body && suki_job_parse(key, body, body_len, &jd, &err) == 0;
    if (ok) {
        (void)suki_job_defaults(&jd, c);
    } else {
        memset(&jd, 0, sizeof(jd));
        (void)suki_job_key_split(key, &jd.rule, &jd.client, &jd.subject,
                                 &jd.slot);
        if (!body)
            suki_err_set(&err, -ENOENT, "no body (the job just completed)");
    }
    int64_t due = ok ? jd.due_ms : score;
    char dbuf[40];
    suki_time_format_rfc3339(due, dbuf, sizeof(dbuf));
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(key));
    json_object_set_new(o, "due", json_string(dbuf));
    json_object_set_new(o, "due_ms", json_integer(due));
    json_object_set_new(o, "next_ms", json_integer(score));
    const char *copy[][2] = {{"rule", jd.rule},
                             {"client", jd.client},
                             {"subject", jd.subject},
                             {"template", jd.template_name},
                             {"channel", jd.channel}};
    for (size_t k = 0; k < SUKI_ARRAY_LEN(copy); k++)
        json_object_set_new(o, copy[k][0],
                            copy[k][1] ? json_string(copy[k][1]) : json_null());
    json_object_set_new(o, "attempt", json_integer(jd.attempt));
    if (!ok)
        json_object_set_new(o, "error", json_string(err.msg));
    suki_job_clear(&jd);
    return o;
}

void suki_ops_job_args(const struct suki_conf *c, const char *op,
                       const char *key, struct suki_redis_args *a)
{
    add_key(a, c, SUKI_KEY_JOBS);
    add_key(a, c, SUKI_KEY_JOBS_HELD);
    suki_redis_args_str(a, op);
    suki_redis_args_str(a, key);
    char *jp = suki_key_id(c->prefix, SUKI_KEY_JOB, "");
    suki_redis_args_str(a, jp);
    free(jp);
}

void suki_ops_cancel_args(const struct suki_conf *c, const char *key,
                          struct suki_redis_args *a)
{
    add_key(a, c, SUKI_KEY_JOBS);
    add_key(a, c, SUKI_KEY_JOBS_HELD);
    suki_redis_args_str(a, key);
    char *jp = suki_key_id(c->prefix, SUKI_KEY_JOB, "");
    suki_redis_args_str(a, jp);
    free(jp);
}

void suki_ops_replay_args(const struct suki_conf *c, const char *id, bool force,
                          struct suki_redis_args *a)
{
    add_key(a, c, SUKI_KEY_DEAD);
    suki_redis_args_str(a, c->stream);
    add_key(a, c, SUKI_KEY_JOBS);
    suki_redis_args_str(a, id);
    char *jp = suki_key_id(c->prefix, SUKI_KEY_JOB, "");
    suki_redis_args_str(a, jp);
    free(jp);
    suki_redis_args_str(a, force ? "1" : "0");
}

void suki_ops_jobs_page_args(const struct suki_conf *c, int64_t min,
                             int64_t max, int64_t skip, int64_t count,
                             struct suki_redis_args *a)
{
    add_key(a, c, SUKI_KEY_JOBS);
    suki_redis_args_int(a, min);
    suki_redis_args_int(a, max);
    suki_redis_args_int(a, skip);
    suki_redis_args_int(a, count);
    char *jp = suki_key_id(c->prefix, SUKI_KEY_JOB, "");
    suki_redis_args_str(a, jp);
    free(jp);
}

bool suki_ops_stream_id_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 20)
        return false;
    if (s[n] == '\0')
        return true;
    if (s[n] != '-')
        return false;
    size_t m = strspn(s + n + 1, "0123456789");
    return m > 0 && m <= 20 && s[n + 1 + m] == '\0';
}

void suki_ops_campaigns_args(const struct suki_conf *c, const char *name,
                             struct suki_redis_args *a)
{
    add_key(a, c, SUKI_KEY_CAMPAIGNS);
    char *cp = suki_key_id(c->prefix, SUKI_KEY_CAMPAIGN, "");
    suki_redis_args_str(a, cp);
    free(cp);
    suki_redis_args_str(a, name ? name : "");
}

void suki_ops_campaign_control_args(const struct suki_conf *c, const char *name,
                                    const char *cmd, struct suki_redis_args *a)
{
    char *kh = suki_key_id(c->prefix, SUKI_KEY_CAMPAIGN, name);
    suki_redis_args_str(a, kh);
    free(kh);
    suki_redis_args_str(a, cmd);
    suki_redis_args_int(a, suki_now_ms());
}

static const char *hstr(json_t *h, const char *k)
{
    json_t *v = json_object_get(h, k);
    return json_is_string(v) ? json_string_value(v) : "";
}

static long long hnum(json_t *h, const char *k)
{
    int64_t n;
    if (suki_parse_i64(hstr(h, k), INT64_MIN, INT64_MAX, &n) == 0)
        return n;
    return 0;
}

/* One campaign's hash (as an object of strings) and its figures. */
static json_t *campaign_json(const char *name, json_t *h, long long card)
{
    json_t *o = json_object();
    json_object_set_new(o, "campaign", json_string(name));
    static const char *const copy[] = {"state",    "reason", "template",
                                       "audience", "owner",  "summary",
                                       "runner"};
    for (size_t i = 0; i < SUKI_ARRAY_LEN(copy); i++)
        json_object_set_new(o, copy[i], json_string(hstr(h, copy[i])));
    const char *rate = hstr(h, "rate");
    json_object_set_new(o, "rate", json_string(*rate ? rate : "default"));
    static const char *const times[] = {"created", "start_at", "started",
                                        "finished"};
    for (size_t i = 0; i < SUKI_ARRAY_LEN(times); i++) {
        int64_t v;
        char buf[40];
        if (suki_parse_i64(hstr(h, times[i]), 1, INT64_MAX, &v) == 0) {
            suki_time_format_rfc3339(v, buf, sizeof(buf));
            json_object_set_new(o, times[i], json_string(buf));
        } else {
            json_object_set_new(o, times[i], json_null());
        }
    }
    long long sent = hnum(h, "sent"), failed = hnum(h, "failed");
    long long queued = hnum(h, "queued"), recips = hnum(h, "recipients");
    static const char *const reasons[] = {"suppressed", "no_address",
                                          "no_consent", "bad_address"};
    json_t *sk = json_object();
    long long skipped = 0;
    for (size_t i = 0; i < SUKI_ARRAY_LEN(reasons); i++) {
        char f[32], label[32];
        snprintf(f, sizeof(f), "skipped_%s", reasons[i]);
        long long v = hnum(h, f);
        skipped += v;
        suki_strlcpy(label, reasons[i], sizeof(label));
        for (char *p = label; *p; p++)
            if (*p == '_')
                *p = '-';
        json_object_set_new(sk, label, json_integer(v));
    }
    json_object_set_new(o, "recipients", json_integer(recips));
    json_object_set_new(o, "sent", json_integer(sent));
    json_object_set_new(o, "failed", json_integer(failed));
    json_object_set_new(o, "skipped", json_integer(skipped));
    json_object_set_new(o, "skipped_by_reason", sk);
    json_object_set_new(o, "queued", json_integer(queued));
    /* remaining: exact once the audience has been walked; before that an
     * estimate from the set's size or how far the SCAN cursor has come */
    bool walked = strcmp(hstr(h, "walk_done"), "1") == 0;
    json_t *remaining = json_null();
    double progress = walked ? 1.0 : 0.0;
    if (walked) {
        remaining = json_integer(queued);
    } else if (strncmp(hstr(h, "audience"), "set=", 4) == 0) {
        if (card >= 0) {
            long long left = card - recips;
            remaining = json_integer(queued + (left > 0 ? left : 0));
            progress = card > 0 ? (double)recips / (double)card : 1.0;
        }
    } else {
        uint64_t cur = strtoull(hstr(h, "cursor"), NULL, 10);
        progress = suki_campaign_scan_fraction(cur);
        if (progress > 0.0)
            remaining = json_integer(
                queued + (long long)((double)recips / progress - recips));
    }
    json_object_set_new(o, "remaining", remaining);
    json_object_set_new(o, "remaining_exact", json_boolean(walked));
    json_object_set_new(o, "walk_progress", json_real(progress));
    return o;
}

json_t *suki_ops_campaigns_json(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 0)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < r->elements; i += 3) {
        const redisReply *n = r->element[i], *h = r->element[i + 1];
        if (n->type != REDIS_REPLY_STRING || h->type != REDIS_REPLY_ARRAY)
            continue;
        json_t *ho = json_object();
        for (size_t k = 0; k + 1 < h->elements; k += 2)
            if (h->element[k]->type == REDIS_REPLY_STRING &&
                h->element[k + 1]->type == REDIS_REPLY_STRING)
                json_object_set_new(ho, h->element[k]->str,
                                    json_stringn(h->element[k + 1]->str,
                                                 h->element[k + 1]->len));
        json_array_append_new(a, campaign_json(n->str, ho, int_at(r, i + 2)));
        json_decref(ho);
    }
    return a;
}

void suki_ops_client_args(const struct suki_conf *c, const char *id,
                          struct suki_redis_args *a)
{
    char *k = suki_key_id(c->prefix, SUKI_KEY_CLIENT, id);
    suki_redis_args_str(a, k);
    free(k);
    add_key(a, c, SUKI_KEY_CLIENT_EVENTS);
    char *jh = suki_job_hash_key(c->prefix, id, NULL);
    suki_redis_args_str(a, jh);
    free(jh);
    add_key(a, c, SUKI_KEY_JOBS);
    add_key(a, c, SUKI_KEY_JOBS_HELD);
    char *tk = suki_key_id(c->prefix, SUKI_KEY_TIMELINE, id);
    suki_redis_args_str(a, tk);
    free(tk);
    suki_redis_args_str(a, id);
    char cap[16];
    snprintf(cap, sizeof(cap), "%d", c->console_timeline);
    suki_redis_args_str(a, cap);
}

/* A stored timeline entry (keys.h, P:timeline) as the API shows it; NULL
 * for one that is not (a hand-written value). */
static json_t *timeline_json(const char *s, size_t len)
{
    json_t *e = json_loadb(s, len, 0, NULL);
    json_t *at = json_object_get(e, "at");
    const char *k = json_string_value(json_object_get(e, "k"));
    if (!json_is_object(e) || !json_is_integer(at) || !k ||
        (strcmp(k, "e") != 0 && strcmp(k, "m") != 0)) {
        json_decref(e);
        return NULL;
    }
    static const char *const names[][2] = {
        {"t", "type"}, {"id", "id"}, {"s", "summary"},
        {"r", "rule"}, {"to", "to"}, {"mid", "message_id"}};
    json_t *o = json_object();
    json_object_set_new(o, "kind",
                        json_string(k[0] == 'e' ? "event" : "message"));
    json_object_set(o, "at", at);
    char t[40];
    suki_time_format_rfc3339(json_integer_value(at), t, sizeof(t));
    json_object_set_new(o, "time", json_string(t));
    for (size_t i = 0; i < SUKI_ARRAY_LEN(names); i++) {
        json_t *v = json_object_get(e, names[i][0]);
        if (json_is_string(v))
            json_object_set(o, names[i][1], v);
    }
    json_decref(e);
    return o;
}

static int job_next_cmp(const void *x, const void *y)
{
    json_t *const *a = x, *const *b = y;
    json_int_t p = json_integer_value(json_object_get(*a, "next_ms"));
    json_int_t q = json_integer_value(json_object_get(*b, "next_ms"));
    if (p != q)
        return p < q ? -1 : 1;
    return strcmp(json_string_value(json_object_get(*a, "key")),
                  json_string_value(json_object_get(*b, "key")));
}

json_t *suki_ops_client_json(const struct suki_conf *c, const char *id,
                             const redisReply *r, bool *found)
{
    *found = false;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[2]->type != REDIS_REPLY_ARRAY ||
        r->element[3]->type != REDIS_REPLY_ARRAY ||
        r->element[2]->elements % 4 != 0)
        return NULL;
    const redisReply *prof = r->element[0], *nev = r->element[1];
    const redisReply *jobs = r->element[2];
    json_t *p = json_object();
    for (size_t k = 0; k + 1 < prof->elements; k += 2) {
        const redisReply *f = prof->element[k], *v = prof->element[k + 1];
        int64_t ms;
        /* "at:<field>": the at of the event that set <field>, the
         * intake's to order events by; not part of the profile */
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            strncmp(f->str, "at:", 3) == 0)
            continue;
        /* when the profile last changed: stored in ms, shown like every
         * other time */
        if (strcmp(f->str, "updated") == 0 &&
            suki_parse_i64(v->str, 0, INT64_MAX, &ms) == 0) {
            char at[40];
            suki_time_format_rfc3339(ms, at, sizeof(at));
            json_object_set_new(p, f->str, json_string(at));
            continue;
        }
        json_object_set_new(p, f->str, suki_ops_json_bytes(v->str, v->len));
    }
    /* events applied for the client: kept apart from the profile (one
     * hash for every client), shown with it */
    if (nev->type == REDIS_REPLY_STRING)
        json_object_set_new(p, "events",
                            suki_ops_json_bytes(nev->str, nev->len));
    size_t n = jobs->elements / 4, kept = 0;
    json_t **v = suki_calloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = jobs->element[4 * i];
        const redisReply *b = jobs->element[4 * i + 1];
        const redisReply *sc = jobs->element[4 * i + 2];
        const redisReply *hs = jobs->element[4 * i + 3];
        const redisReply *s = sc->type == REDIS_REPLY_STRING ? sc : hs;
        int64_t score;
        /* a body with neither index entry is being removed */
        if (k->type != REDIS_REPLY_STRING || b->type != REDIS_REPLY_STRING ||
            s->type != REDIS_REPLY_STRING ||
            suki_parse_i64(s->str, INT64_MIN, INT64_MAX, &score) < 0)
            continue;
        v[kept] = suki_ops_job_json(c, k->str, score, b->str, b->len);
        json_object_set_new(v[kept], "held", json_boolean(s == hs));
        kept++;
    }
    qsort(v, kept, sizeof(*v), job_next_cmp);
    json_t *jl = json_array();
    for (size_t i = 0; i < kept; i++)
        json_array_append_new(jl, v[i]);
    free(v);
    const redisReply *tr = r->element[3];
    json_t *tl = json_array();
    for (size_t i = 0; i < tr->elements; i++) {
        const redisReply *x = tr->element[i];
        json_t *e = x->type == REDIS_REPLY_STRING
                        ? timeline_json(x->str, x->len)
                        : NULL;
        if (e)
            json_array_append_new(tl, e);
    }
    *found = json_object_size(p) > 0 || kept > 0 || json_array_size(tl) > 0;
    json_t *o = json_object();
    json_object_set_new(o, "client", json_string(id));
    json_object_set_new(o, "profile", p);
    json_object_set_new(o, "jobs", jl);
    json_object_set_new(o, "timeline", tl);
    return o;
}
