/* conf.c - load and validate sukid.conf (libconfig syntax).
 *
 * Every group is described by a key table (name, type, where it goes,
 * bounds). Unknown keys, wrong types and bad values are collected with their
 * FILE:LINE and reported together; a file with any error is never applied.
 * Rules keep their libconfig setting so their plugin can read its own keys
 * later (rules.c) with the same locations. */
#include "conf.h"
#include "store/keys.h"
#include "log.h"
#include "timeutil.h"

#include <errno.h>
#include <libconfig.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>

void suki_conf_diags_add(struct suki_conf_diags *d, const char *file, int line,
                         const char *fmt, ...)
{
    if (!d)
        return;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->v = suki_realloc(d->v, d->cap * sizeof(*d->v));
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    d->v[d->n].file = suki_strdup(file ? file : "?");
    d->v[d->n].line = line;
    d->v[d->n].msg = suki_strdup(msg);
    d->n++;
}

void suki_conf_diags_clear(struct suki_conf_diags *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
    }
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

/* ---------------------------------------------------------------------- */

struct loader {
    struct suki_conf *c;
    struct suki_conf_diags *d;
    const char *path;
    char *basedir; /* directory of the main file, for relative paths */
};

static const char *src_file(struct loader *ld, const config_setting_t *s)
{
    const char *f = s ? config_setting_source_file(s) : NULL;
    return f ? f : ld->path;
}

static int src_line(const config_setting_t *s)
{
    return s ? (int)config_setting_source_line(s) : 0;
}

#define DIAG(ld, s, ...)                                                       \
    suki_conf_diags_add((ld)->d, src_file((ld), (s)), src_line(s), __VA_ARGS__)

static const char *type_name(int t)
{
    switch (t) {
    case CONFIG_TYPE_GROUP:
        return "a group { }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "true or false";
    case CONFIG_TYPE_ARRAY:
        return "an array [ ]";
    case CONFIG_TYPE_LIST:
        return "a list ( )";
    default:
        return "nothing";
    }
}

enum kt {
    KT_STRING,   /* char * */
    KT_PATH,     /* char *, relative to the config file's directory */
    KT_DURATION, /* int64_t ms */
    KT_RATE,     /* double per second */
    KT_INT,      /* int */
    KT_INT64,    /* int64_t */
    KT_BOOL,     /* bool */
    KT_STRLIST,  /* char ** + size_t count (string or list of strings) */
    KT_SECRET,   /* char *: the content of the file named */
    KT_FLOAT01,  /* double in [0,1] */
    KT_CUSTOM,   /* handled by the group's code */
};

struct keydef {
    const char *name;
    enum kt type;
    size_t off;   /* offset in the target struct */
    size_t off_n; /* for KT_STRLIST: offset of the count */
    int64_t min, max;
};

#define K(n, t, st, f)                                                         \
    {                                                                          \
        n, t, offsetof(st, f), 0, 0, 0                                         \
    }
#define KR(n, t, st, f, lo, hi)                                                \
    {                                                                          \
        n, t, offsetof(st, f), 0, lo, hi                                       \
    }
#define KL(n, st, f, fn)                                                       \
    {                                                                          \
        n, KT_STRLIST, offsetof(st, f), offsetof(st, fn), 0, 0                 \
    }
#define KC(n)                                                                  \
    {                                                                          \
        n, KT_CUSTOM, 0, 0, 0, 0                                               \
    }

static char *resolve_path(struct loader *ld, const char *p)
{
    if (p[0] == '/' || !ld->basedir)
        return suki_strdup(p);
    return suki_asprintf("%s/%s", ld->basedir, p);
}

/* Read a string or list of strings into a fresh NULL-terminated array. */
static int read_strlist(struct loader *ld, const config_setting_t *s,
                        char ***out, size_t *n)
{
    int t = config_setting_type(s);
    char **v;
    size_t cnt;
    if (t == CONFIG_TYPE_STRING) {
        v = suki_calloc(2, sizeof(char *));
        v[0] = suki_strdup(config_setting_get_string(s));
        cnt = 1;
    } else if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) {
        int len = config_setting_length(s);
        v = suki_calloc((size_t)len + 1, sizeof(char *));
        cnt = 0;
        for (int i = 0; i < len; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                DIAG(ld, e, "'%s' must hold strings, not %s",
                     config_setting_name(s), type_name(config_setting_type(e)));
                continue;
            }
            v[cnt++] = suki_strdup(config_setting_get_string(e));
        }
    } else {
        DIAG(ld, s, "'%s' must be a string or a list of strings, not %s",
             config_setting_name(s), type_name(t));
        return -EINVAL;
    }
    for (size_t i = 0; i < *n; i++)
        free((*out)[i]);
    free(*out);
    *out = v;
    *n = cnt;
    return 0;
}

/* Apply one key of a table to target. Returns 0 or -EINVAL (diag added). */
static int apply_key(struct loader *ld, const struct keydef *k,
                     const config_setting_t *s, void *target)
{
    char *base = target;
    int t = config_setting_type(s);
    const char *name = k->name;
    struct suki_err err = {{0}};

    switch (k->type) {
    case KT_STRING:
    case KT_PATH:
    case KT_SECRET: {
        if (t != CONFIG_TYPE_STRING) {
            DIAG(ld, s, "'%s' must be a string, not %s", name, type_name(t));
            return -EINVAL;
        }
        const char *v = config_setting_get_string(s);
        char **dst = (char **)(base + k->off);
        char *val;
        if (k->type == KT_STRING) {
            val = suki_strdup(v);
        } else if (k->type == KT_PATH) {
            val = resolve_path(ld, v);
        } else {
            char *path = resolve_path(ld, v);
            val = suki_read_secret(path, &err);
            free(path);
            if (!val) {
                DIAG(ld, s, "'%s': %s", name, err.msg);
                return -EINVAL;
            }
        }
        free(*dst);
        *dst = val;
        return 0;
    }
    case KT_DURATION: {
        if (t != CONFIG_TYPE_STRING) {
            DIAG(ld, s, "'%s' must be a duration string like \"90s\", not %s",
                 name, type_name(t));
            return -EINVAL;
        }
        int64_t ms;
        if (suki_parse_duration(config_setting_get_string(s), &ms, &err) < 0) {
            DIAG(ld, s, "'%s': %s", name, err.msg);
            return -EINVAL;
        }
        if (ms < k->min || (k->max && ms > k->max)) {
            char lo[32], hi[32];
            suki_format_duration(k->min, lo, sizeof(lo));
            suki_format_duration(k->max, hi, sizeof(hi));
            DIAG(ld, s, "'%s' must be between %s and %s", name, lo, hi);
            return -EINVAL;
        }
        *(int64_t *)(base + k->off) = ms;
        return 0;
    }
    case KT_RATE: {
        if (t != CONFIG_TYPE_STRING) {
            DIAG(ld, s, "'%s' must be a rate string like \"20/s\", not %s",
                 name, type_name(t));
            return -EINVAL;
        }
        double r;
        if (suki_parse_rate(config_setting_get_string(s), &r, &err) < 0) {
            DIAG(ld, s, "'%s': %s", name, err.msg);
            return -EINVAL;
        }
        *(double *)(base + k->off) = r;
        return 0;
    }
    case KT_INT:
    case KT_INT64: {
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
            DIAG(ld, s, "'%s' must be an integer, not %s", name, type_name(t));
            return -EINVAL;
        }
        long long v = config_setting_get_int64(s);
        if (v < k->min || v > k->max) {
            DIAG(ld, s, "'%s' must be between %lld and %lld (got %lld)", name,
                 (long long)k->min, (long long)k->max, v);
            return -EINVAL;
        }
        if (k->type == KT_INT)
            *(int *)(base + k->off) = (int)v;
        else
            *(int64_t *)(base + k->off) = v;
        return 0;
    }
    case KT_FLOAT01: {
        double v;
        if (t == CONFIG_TYPE_FLOAT)
            v = config_setting_get_float(s);
        else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
            v = (double)config_setting_get_int64(s);
        else {
            DIAG(ld, s, "'%s' must be a number, not %s", name, type_name(t));
            return -EINVAL;
        }
        if (!(v >= 0.0 && v <= 1.0)) {
            DIAG(ld, s, "'%s' must be between 0 and 1", name);
            return -EINVAL;
        }
        *(double *)(base + k->off) = v;
        return 0;
    }
    case KT_BOOL:
        if (t != CONFIG_TYPE_BOOL) {
            DIAG(ld, s, "'%s' must be true or false, not %s", name,
                 type_name(t));
            return -EINVAL;
        }
        *(bool *)(base + k->off) = config_setting_get_bool(s) != 0;
        return 0;
    case KT_STRLIST:
        return read_strlist(ld, s, (char ***)(base + k->off),
                            (size_t *)(base + k->off_n));
    case KT_CUSTOM:
        return 0;
    }
    return 0;
}

/* Walk the children of a group against a key table. Custom keys are left
 * for the caller; unknown keys are errors. used[] (may be NULL) gets a mark
 * per child index that the table knew. */
static void apply_group(struct loader *ld, const config_setting_t *g,
                        const struct keydef *keys, size_t nkeys, void *target,
                        const char *what, unsigned char *used)
{
    int len = config_setting_length(g);
    for (int i = 0; i < len; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct keydef *k = NULL;
        for (size_t j = 0; name && j < nkeys; j++)
            if (strcmp(keys[j].name, name) == 0)
                k = &keys[j];
        if (!k) {
            if (!used)
                DIAG(ld, s, "unknown key '%s' in %s", name ? name : "?", what);
            continue;
        }
        if (used)
            used[i] = 1;
        apply_key(ld, k, s, target);
    }
}

static const config_setting_t *
group_of(struct loader *ld, const config_setting_t *root, const char *name)
{
    const config_setting_t *g = config_setting_get_member(root, name);
    if (g && config_setting_type(g) != CONFIG_TYPE_GROUP) {
        DIAG(ld, g, "'%s' must be a group { ... }, not %s", name,
             type_name(config_setting_type(g)));
        return NULL;
    }
    return g;
}

/* ---------------------------------------------------------------------- */

static void parse_redis_url(struct loader *ld, const config_setting_t *s)
{
    struct suki_conf *c = ld->c;
    const char *u = c->redis_url;
    free(c->redis_host);
    free(c->redis_unix);
    c->redis_host = c->redis_unix = NULL;
    c->redis_port = 6379;
    c->redis_db = 0;
    if (strncmp(u, "unix://", 7) == 0) {
        const char *p = u + 7;
        if (*p != '/') {
            DIAG(ld, s,
                 "redis url \"%s\": unix:// needs an absolute path "
                 "(unix:///run/redis/redis.sock)",
                 u);
            return;
        }
        const char *q = strchr(p, '?');
        c->redis_unix = q ? suki_strndup(p, (size_t)(q - p)) : suki_strdup(p);
        if (q && strncmp(q, "?db=", 4) == 0) {
            int64_t db;
            if (suki_parse_i64(q + 4, 0, 10000, &db) < 0)
                DIAG(ld, s, "redis url \"%s\": bad db number", u);
            else
                c->redis_db = (int)db;
        } else if (q) {
            DIAG(ld, s, "redis url \"%s\": only ?db=N is understood", u);
        }
        return;
    }
    if (strncmp(u, "redis://", 8) != 0) {
        DIAG(ld, s, "redis url \"%s\" must start with redis:// or unix://", u);
        return;
    }
    const char *p = u + 8;
    if (strchr(p, '@')) {
        DIAG(ld, s,
             "redis url must not carry a password; use "
             "password_file");
        return;
    }
    const char *slash = strchr(p, '/');
    size_t hostport_len = slash ? (size_t)(slash - p) : strlen(p);
    char *hp = suki_strndup(p, hostport_len);
    char *colon = strrchr(hp, ':');
    if (hp[0] == '[') { /* [::1]:6379 */
        char *rb = strchr(hp, ']');
        if (!rb) {
            DIAG(ld, s, "redis url \"%s\": bad IPv6 address", u);
            free(hp);
            return;
        }
        *rb = '\0';
        c->redis_host = suki_strdup(hp + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        if (colon)
            *colon = '\0';
        c->redis_host = suki_strdup(hp[0] ? hp : "127.0.0.1");
    }
    if (colon) {
        int64_t port;
        if (suki_parse_i64(colon + 1, 1, 65535, &port) < 0)
            DIAG(ld, s, "redis url \"%s\": bad port", u);
        else
            c->redis_port = (int)port;
    }
    free(hp);
    if (slash && slash[1]) {
        int64_t db;
        if (suki_parse_i64(slash + 1, 0, 10000, &db) < 0)
            DIAG(ld, s, "redis url \"%s\": bad database number", u);
        else
            c->redis_db = (int)db;
    }
}

int suki_conf_hostport(const char *s, char **host, int *port)
{
    const char *colon;
    size_t hlen;
    const char *h = s;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return -EINVAL;
        hlen = (size_t)(colon - s);
    }
    int64_t p;
    if (hlen == 0 || suki_parse_i64(colon + 1, 1, 65535, &p) < 0)
        return -EINVAL;
    *host = suki_strndup(h, hlen);
    *port = (int)p;
    return 0;
}

/* sentinels and master go together; the url then gives only the db. */
static void load_sentinels(struct loader *ld, const config_setting_t *g)
{
    struct suki_conf *c = ld->c;
    const config_setting_t *ss =
        g ? config_setting_get_member(g, "sentinels") : NULL;
    const config_setting_t *ms =
        g ? config_setting_get_member(g, "master") : NULL;
    for (size_t i = 0; i < c->n_redis_sentinels; i++) {
        char *h;
        int port;
        if (suki_conf_hostport(c->redis_sentinels[i], &h, &port) < 0) {
            DIAG(ld, ss,
                 "redis sentinel \"%s\" must be \"host:port\" "
                 "(\"[::1]:26379\" for IPv6)",
                 c->redis_sentinels[i]);
            continue;
        }
        free(h);
    }
    if (c->n_redis_sentinels > 64)
        DIAG(ld, ss, "redis 'sentinels': at most 64");
    if (c->redis_username && !c->redis_password)
        DIAG(ld, g ? config_setting_get_member(g, "username") : NULL,
             "redis 'username' needs 'password_file' (AUTH username "
             "password)");
    if (c->n_redis_sentinels && !c->redis_master)
        DIAG(ld, ss,
             "redis 'sentinels' needs 'master' (the name the "
             "sentinels monitor)");
    if (c->redis_master && !c->n_redis_sentinels)
        DIAG(ld, ms, "redis 'master' needs 'sentinels'");
    if (c->redis_master && !c->redis_master[0])
        DIAG(ld, ms, "redis 'master' must not be empty");
    if (c->n_redis_sentinels && c->redis_unix)
        DIAG(ld, ss,
             "redis 'sentinels' and a unix:// url do not go "
             "together (the sentinels name a TCP address)");
}

static void load_redis(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        K("url", KT_STRING, struct suki_conf, redis_url),
        K("password_file", KT_SECRET, struct suki_conf, redis_password),
        K("username", KT_STRING, struct suki_conf, redis_username),
        KL("sentinels", struct suki_conf, redis_sentinels, n_redis_sentinels),
        K("master", KT_STRING, struct suki_conf, redis_master),
        K("sentinel_username", KT_STRING, struct suki_conf,
          redis_sentinel_username),
        K("sentinel_password_file", KT_SECRET, struct suki_conf,
          redis_sentinel_password),
        K("prefix", KT_STRING, struct suki_conf, prefix),
        KR("connect_timeout", KT_DURATION, struct suki_conf,
           redis_connect_timeout_ms, 100, 600000),
        KR("command_timeout", KT_DURATION, struct suki_conf,
           redis_command_timeout_ms, 100, 600000),
        KR("min_replicas", KT_INT, struct suki_conf, redis_min_replicas, 0, 16),
        KR("wait_timeout", KT_DURATION, struct suki_conf, redis_wait_timeout_ms,
           10, 60000),
    };
    const config_setting_t *g = group_of(ld, root, "redis");
    if (g)
        apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), ld->c, "redis", NULL);
    const config_setting_t *us = g ? config_setting_get_member(g, "url") : g;
    parse_redis_url(ld, us ? us : g);
    load_sentinels(ld, g);
    const char *pf = ld->c->prefix;
    if (!pf[0] || strspn(pf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                             "VWXYZ0123456789-_.:{}") != strlen(pf)) {
        const config_setting_t *ps =
            g ? config_setting_get_member(g, "prefix") : NULL;
        DIAG(ld, ps ? ps : g,
             "redis prefix \"%s\" must be non-empty "
             "letters, digits, - _ . : { }",
             pf);
    }
}

static void load_intake(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        K("stream", KT_STRING, struct suki_conf, stream),
        KL("lists", struct suki_conf, lists, n_lists),
        K("group", KT_STRING, struct suki_conf, group),
        KR("batch", KT_INT, struct suki_conf, batch, 1, 10000),
        KR("max_event_size", KT_INT64, struct suki_conf, max_event_size, 64,
           16 * 1024 * 1024),
        KR("claim_idle", KT_DURATION, struct suki_conf, claim_idle_ms, 1000,
           86400000),
        KR("max_deliveries", KT_INT, struct suki_conf, max_deliveries, 1, 1000),
        KR("dedup_window", KT_DURATION, struct suki_conf, dedup_window_ms, 1000,
           366LL * 86400000),
        KR("order_window", KT_DURATION, struct suki_conf, order_window_ms, 0,
           366LL * 86400000),
        KR("keep", KT_INT64, struct suki_conf, keep, 0, 1000000000),
        KR("block", KT_DURATION, struct suki_conf, block_ms, 10, 60000),
        KR("max_body", KT_INT64, struct suki_conf, max_body, 1024,
           64 * 1024 * 1024),
    };
    const config_setting_t *g = group_of(ld, root, "intake");
    if (g)
        apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), ld->c, "intake", NULL);
}

static void load_scheduler(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        KR("lease", KT_DURATION, struct suki_conf, lease_ms, 1000, 86400000),
        KR("batch", KT_INT, struct suki_conf, sched_batch, 1, 10000),
        K("holidays", KT_PATH, struct suki_conf, holidays_file),
    };
    const config_setting_t *g = group_of(ld, root, "scheduler");
    if (g)
        apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), ld->c, "scheduler",
                    NULL);
    if (ld->c->holidays_file) {
        struct suki_err err = {{0}};
        struct suki_holidays *h =
            suki_holidays_load(ld->c->holidays_file, &err);
        if (!h)
            DIAG(ld, config_setting_get_member(g, "holidays"), "holidays: %s",
                 err.msg);
        suki_holidays_free(h);
    }
}

static void check_dir(struct loader *ld, const config_setting_t *s,
                      const char *what, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        DIAG(ld, s, "%s \"%s\": %s", what, dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        DIAG(ld, s, "%s \"%s\" is not a directory", what, dir);
}

static void load_dirs(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef pkeys[] = {
        K("dir", KT_PATH, struct suki_conf, plugins_dir),
    };
    static const struct keydef tkeys[] = {
        K("dir", KT_PATH, struct suki_conf, templates_dir),
        K("default_locale", KT_STRING, struct suki_conf, default_locale),
    };
    const config_setting_t *g = group_of(ld, root, "plugins");
    if (g)
        apply_group(ld, g, pkeys, 1, ld->c, "plugins", NULL);
    const config_setting_t *ds = g ? config_setting_get_member(g, "dir") : g;
    check_dir(ld, ds ? ds : g, "plugins dir", ld->c->plugins_dir);

    g = group_of(ld, root, "templates");
    if (g)
        apply_group(ld, g, tkeys, 2, ld->c, "templates", NULL);
    ds = g ? config_setting_get_member(g, "dir") : g;
    check_dir(ld, ds ? ds : g, "templates dir", ld->c->templates_dir);
}

static void load_timezone(struct loader *ld, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "timezone");
    if (!s)
        return;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        DIAG(ld, s, "'timezone' must be a string, not %s",
             type_name(config_setting_type(s)));
        return;
    }
    const char *tz = config_setting_get_string(s);
    if (!suki_tz_valid(tz)) {
        DIAG(ld, s,
             "unknown timezone \"%s\" (want an IANA name such as "
             "\"Asia/Manila\")",
             tz);
        return;
    }
    free(ld->c->timezone);
    ld->c->timezone = suki_strdup(tz);
}

static void transport_defaults(struct suki_transport_conf *t)
{
    t->starttls = SUKI_STARTTLS_REQUIRED;
    t->tls_verify = true;
    t->max_connections = 4;
    t->timeout_ms = 30000;
    t->retry_initial_ms = 60000;
    t->retry_max_ms = 3600000;
    t->max_attempts = 10;
    t->format = suki_strdup("json");
    t->breaker_failures = 5;
    t->breaker_cooldown_ms = 30000;
}

static void transport_free(struct suki_transport_conf *t)
{
    free(t->name);
    free(t->url);
    free(t->spool_dir);
    free(t->username);
    free(t->password);
    free(t->from);
    free(t->reply_to);
    free(t->ca_file);
    free(t->format);
    for (size_t i = 0; i < t->n_headers; i++) {
        free(t->headers[i].name);
        free(t->headers[i].value);
    }
    free(t->headers);
}

static void load_transport(struct loader *ld, const config_setting_t *g,
                           struct suki_transport_conf *t)
{
    static const struct keydef keys[] = {
        K("url", KT_STRING, struct suki_transport_conf, url),
        KC("starttls"),
        K("username", KT_STRING, struct suki_transport_conf, username),
        K("password_file", KT_SECRET, struct suki_transport_conf, password),
        K("from", KT_STRING, struct suki_transport_conf, from),
        K("reply_to", KT_STRING, struct suki_transport_conf, reply_to),
        K("ca_file", KT_PATH, struct suki_transport_conf, ca_file),
        K("tls_verify", KT_BOOL, struct suki_transport_conf, tls_verify),
        KR("max_connections", KT_INT, struct suki_transport_conf,
           max_connections, 1, 256),
        K("rate", KT_RATE, struct suki_transport_conf, rate),
        KR("timeout", KT_DURATION, struct suki_transport_conf, timeout_ms, 1000,
           3600000),
        KR("retry_initial", KT_DURATION, struct suki_transport_conf,
           retry_initial_ms, 100, 86400000),
        KR("retry_max", KT_DURATION, struct suki_transport_conf, retry_max_ms,
           100, 7 * 86400000LL),
        KR("max_attempts", KT_INT, struct suki_transport_conf, max_attempts, 1,
           1000),
        KC("format"),
        KC("headers"),
        KR("breaker_failures", KT_INT, struct suki_transport_conf,
           breaker_failures, 1, 100000),
        KR("breaker_cooldown", KT_DURATION, struct suki_transport_conf,
           breaker_cooldown_ms, 1000, 86400000),
    };
    transport_defaults(t);
    t->name = suki_strdup(config_setting_name(g));
    char what[96];
    snprintf(what, sizeof(what), "transport '%s'", t->name);
    apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), t, what, NULL);

    const config_setting_t *s = config_setting_get_member(g, "starttls");
    if (s) {
        const char *v = config_setting_type(s) == CONFIG_TYPE_STRING
                            ? config_setting_get_string(s)
                            : "";
        if (strcmp(v, "required") == 0)
            t->starttls = SUKI_STARTTLS_REQUIRED;
        else if (strcmp(v, "try") == 0)
            t->starttls = SUKI_STARTTLS_TRY;
        else if (strcmp(v, "off") == 0)
            t->starttls = SUKI_STARTTLS_OFF;
        else
            DIAG(ld, s,
                 "'starttls' must be \"required\", \"try\" or "
                 "\"off\"");
    }
    s = config_setting_get_member(g, "format");
    if (s) {
        const char *v = config_setting_type(s) == CONFIG_TYPE_STRING
                            ? config_setting_get_string(s)
                            : "";
        if (strcmp(v, "json") != 0 && strcmp(v, "slack") != 0)
            DIAG(ld, s, "'format' must be \"json\" or \"slack\"");
        else {
            free(t->format);
            t->format = suki_strdup(v);
        }
    }
    s = config_setting_get_member(g, "headers");
    if (s) {
        if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
            DIAG(ld, s, "'headers' must be a group { Name = \"value\"; }");
        } else {
            int n = config_setting_length(s);
            t->headers = suki_calloc((size_t)n, sizeof(*t->headers));
            for (int i = 0; i < n; i++) {
                const config_setting_t *h =
                    config_setting_get_elem(s, (unsigned)i);
                const char *v = config_setting_type(h) == CONFIG_TYPE_STRING
                                    ? config_setting_get_string(h)
                                    : NULL;
                if (!v || strpbrk(v, "\r\n")) {
                    DIAG(ld, h, "header '%s' must be a one-line string",
                         config_setting_name(h));
                    continue;
                }
                t->headers[t->n_headers].name =
                    suki_strdup(config_setting_name(h));
                t->headers[t->n_headers].value = suki_strdup(v);
                t->n_headers++;
            }
        }
    }

    const config_setting_t *us = config_setting_get_member(g, "url");
    if (!t->url) {
        DIAG(ld, g, "transport '%s' needs a url", t->name);
        return;
    }
    if (strncmp(t->url, "smtp://", 7) == 0 ||
        strncmp(t->url, "smtps://", 8) == 0) {
        t->kind = SUKI_TRANSPORT_SMTP;
    } else if (strncmp(t->url, "http://", 7) == 0 ||
               strncmp(t->url, "https://", 8) == 0) {
        t->kind = SUKI_TRANSPORT_HTTP;
    } else if (strncmp(t->url, "spool://", 8) == 0) {
        t->kind = SUKI_TRANSPORT_SPOOL;
        const char *dir = t->url + 8;
        if (!dir[0]) {
            DIAG(ld, us,
                 "spool url needs a directory: spool:///var/lib/suki/spool");
            return;
        }
        t->spool_dir =
            resolve_path(ld, dir[0] == '/' && dir[1] == '/' ? dir + 1 : dir);
    } else {
        DIAG(ld, us,
             "transport '%s': url \"%s\" must be smtp://, smtps://, "
             "http://, https:// or spool:///dir",
             t->name, t->url);
        return;
    }
    if (t->url[strcspn(t->url, " \t\r\n")] != '\0')
        DIAG(ld, us, "transport '%s': url must not contain spaces", t->name);
    if (t->kind != SUKI_TRANSPORT_HTTP && !t->from)
        t->from = suki_strdup("suki <suki@localhost>");
    if (t->from && strpbrk(t->from, "\r\n"))
        DIAG(ld, config_setting_get_member(g, "from"),
             "'from' must be one line");
    if (t->retry_max_ms < t->retry_initial_ms)
        DIAG(ld, g, "transport '%s': retry_max is shorter than retry_initial",
             t->name);
}

static void load_transports(struct loader *ld, const config_setting_t *root)
{
    struct suki_conf *c = ld->c;
    const config_setting_t *g = group_of(ld, root, "transports");
    int n = g ? config_setting_length(g) : 0;
    c->transports = suki_calloc((size_t)n + 1, sizeof(*c->transports));
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
            DIAG(ld, s, "transport '%s' must be a group { url = ...; }",
                 config_setting_name(s));
            continue;
        }
        load_transport(ld, s, &c->transports[c->n_transports++]);
    }
    if (!suki_conf_transport(c, "email")) {
        /* With no email transport, mail goes to a local spool: the default
         * that works with no mail server. */
        struct suki_transport_conf *t = &c->transports[c->n_transports++];
        transport_defaults(t);
        t->name = suki_strdup("email");
        t->url = suki_strdup("spool:///var/lib/suki/spool");
        t->kind = SUKI_TRANSPORT_SPOOL;
        t->spool_dir = suki_strdup("/var/lib/suki/spool");
        t->from = suki_strdup("suki <suki@localhost>");
    }
}

static void load_roles(struct loader *ld, const config_setting_t *root)
{
    struct suki_conf *c = ld->c;
    const config_setting_t *g = group_of(ld, root, "roles");
    int n = g ? config_setting_length(g) : 0;
    c->roles = suki_calloc((size_t)n + 1, sizeof(*c->roles));
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        if (config_setting_type(s) != CONFIG_TYPE_STRING) {
            DIAG(ld, s, "role '%s' must be an address string",
                 config_setting_name(s));
            continue;
        }
        const char *a = config_setting_get_string(s);
        if (!strchr(a, '@') || strpbrk(a, " \t\r\n<>")) {
            DIAG(ld, s, "role '%s': \"%s\" is not an email address",
                 config_setting_name(s), a);
            continue;
        }
        c->roles[c->n_roles].name = suki_strdup(config_setting_name(s));
        c->roles[c->n_roles].address = suki_strdup(a);
        c->n_roles++;
    }
}

static void rule_free(struct suki_rule_conf *r)
{
    free(r->name);
    free(r->use);
    for (size_t i = 0; i < r->n_on; i++)
        free(r->on[i]);
    free(r->on);
    for (size_t i = 0; i < r->n_unless; i++)
        free(r->unless[i]);
    free(r->unless);
    for (size_t i = 0; i < r->n_notify; i++)
        free(r->notify[i]);
    free(r->notify);
    for (size_t i = 0; i < r->n_subject; i++)
        free(r->subject[i]);
    free(r->subject);
    free(r->template_name);
    free(r->channel);
    free(r->timezone);
    free(r->used);
}

static void load_rule(struct loader *ld, config_setting_t *g,
                      struct suki_rule_conf *r)
{
    static const struct keydef keys[] = {
        K("name", KT_STRING, struct suki_rule_conf, name),
        K("use", KT_STRING, struct suki_rule_conf, use),
        KL("on", struct suki_rule_conf, on, n_on),
        KL("unless", struct suki_rule_conf, unless, n_unless),
        KL("notify", struct suki_rule_conf, notify, n_notify),
        K("template", KT_STRING, struct suki_rule_conf, template_name),
        K("channel", KT_STRING, struct suki_rule_conf, channel),
        KL("subject", struct suki_rule_conf, subject, n_subject),
        KR("max_lateness", KT_DURATION, struct suki_rule_conf, max_lateness_ms,
           0, 0),
        K("timezone", KT_STRING, struct suki_rule_conf, timezone),
        K("digest", KT_BOOL, struct suki_rule_conf, digest),
    };
    r->setting = g;
    r->file = src_file(ld, g);
    r->line = src_line(g);
    r->n_used = (size_t)config_setting_length(g);
    r->used = suki_calloc(r->n_used + 1, 1);
    apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), r, "rule", r->used);
    if (!r->name) {
        DIAG(ld, g, "rule needs a name");
        r->name = suki_asprintf("#%d", config_setting_index(g) + 1);
    }
    if (!r->use)
        DIAG(ld, g, "rule '%s' needs 'use' (the plugin, e.g. \"followup\")",
             r->name);
    else if (!r->use[0] || strpbrk(r->use, "/."))
        DIAG(ld, config_setting_get_member(g, "use"),
             "rule '%s': plugin name \"%s\" is not a plain name", r->name,
             r->use);
    if (r->n_on == 0)
        DIAG(ld, g, "rule '%s' needs 'on' (event types it reacts to)", r->name);
    if (!r->template_name)
        DIAG(ld, g, "rule '%s' needs a 'template'", r->name);
    if (!r->channel)
        r->channel = suki_strdup("email");
    if (r->n_subject == 0) {
        static const char *defs[] = {"contract", "ticket", "order", "deal"};
        r->subject = suki_calloc(5, sizeof(char *));
        for (size_t i = 0; i < 4; i++)
            r->subject[i] = suki_strdup(defs[i]);
        r->n_subject = 4;
    }
    if (r->n_notify == 0)
        DIAG(ld, g,
             "rule '%s' needs 'notify' (manager, client, role:NAME or "
             "an address)",
             r->name);
    for (size_t i = 0; i < r->n_notify; i++) {
        const char *n = r->notify[i];
        if (strcmp(n, "manager") == 0 || strcmp(n, "client") == 0)
            continue;
        if (strncmp(n, "role:", 5) == 0) {
            if (!suki_conf_role(ld->c, n + 5))
                DIAG(ld, config_setting_get_member(g, "notify"),
                     "rule '%s': unknown role '%s' (define it in roles)",
                     r->name, n + 5);
            continue;
        }
        if (!strchr(n, '@') || strpbrk(n, " \t\r\n<>"))
            DIAG(ld, config_setting_get_member(g, "notify"),
                 "rule '%s': notify \"%s\" is not manager, client, "
                 "role:NAME or an address",
                 r->name, n);
    }
    if (!suki_conf_transport(ld->c, r->channel))
        DIAG(ld, config_setting_get_member(g, "channel"),
             "rule '%s': unknown channel '%s' (no such transport)", r->name,
             r->channel);
    if (r->timezone && !suki_tz_valid(r->timezone))
        DIAG(ld, config_setting_get_member(g, "timezone"),
             "rule '%s': unknown timezone \"%s\"", r->name, r->timezone);
    if (r->digest && !ld->c->digests)
        DIAG(ld, config_setting_get_member(g, "digest"),
             "rule '%s': digest = true needs a digests = { at = ...; } "
             "section",
             r->name);
}

static void load_rules(struct loader *ld, config_setting_t *root)
{
    struct suki_conf *c = ld->c;
    config_setting_t *l = config_setting_get_member(root, "rules");
    if (!l)
        return;
    if (config_setting_type(l) != CONFIG_TYPE_LIST) {
        DIAG(ld, l, "'rules' must be a list ( { ... }, { ... } )");
        return;
    }
    int n = config_setting_length(l);
    c->rules = suki_calloc((size_t)n + 1, sizeof(*c->rules));
    for (int i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            DIAG(ld, g, "each rule must be a group { name = ...; }");
            continue;
        }
        struct suki_rule_conf *r = &c->rules[c->n_rules++];
        load_rule(ld, g, r);
        for (size_t j = 0; j + 1 < c->n_rules; j++)
            if (strcmp(c->rules[j].name, r->name) == 0)
                DIAG(ld, g, "duplicate rule name '%s' (first at line %d)",
                     r->name, c->rules[j].line);
    }
}

/* A section's 'at' (local "HH:MM") and 'timezone' (IANA; the global
 * timezone when absent), as digests and reports.monthly have them. */
static void local_time_at(struct loader *ld, const config_setting_t *g,
                          const char *section, int *hh, int *mm, char **tz)
{
    const config_setting_t *s = config_setting_get_member(g, "at");
    if (s && (config_setting_type(s) != CONFIG_TYPE_STRING ||
              suki_time_parse_hhmm(config_setting_get_string(s), hh, mm) < 0))
        DIAG(ld, s, "%s: 'at' must be a local time \"HH:MM\" (00:00 to 23:59)",
             section);
    if (!*tz)
        *tz = suki_strdup(ld->c->timezone);
    else if (!suki_tz_valid(*tz))
        DIAG(ld, config_setting_get_member(g, "timezone"),
             "%s: unknown timezone \"%s\" (want an IANA name such as "
             "\"Asia/Manila\")",
             section, *tz);
}

/* digests = { at; timezone; template; locales = [ "ADDRESS LOCALE" ] }.
 * The template's list section is checked with the templates (main.c). */
static void load_digests(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        KC("at"),
        K("timezone", KT_STRING, struct suki_conf, digest_timezone),
        K("template", KT_STRING, struct suki_conf, digest_template),
        KL("locales", struct suki_conf, digest_locales, n_digest_locales),
    };
    struct suki_conf *c = ld->c;
    const config_setting_t *g = group_of(ld, root, "digests");
    if (!g)
        return;
    c->digests = true;
    c->digest_file = src_file(ld, g);
    c->digest_line = src_line(g);
    apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), c, "digests", NULL);
    local_time_at(ld, g, "digests", &c->digest_hh, &c->digest_mm,
                  &c->digest_timezone);
    if (!c->digest_template)
        c->digest_template = suki_strdup("manager-digest");
    for (size_t i = 0; i < c->n_digest_locales; i++) {
        const char *e = c->digest_locales[i], *sp = strchr(e, ' ');
        if (!sp || sp == e || !strchr(e, '@') || sp[1] == '\0' ||
            strchr(sp + 1, ' ') || (size_t)(sp - e) >= 320 ||
            strlen(sp + 1) >= 32)
            DIAG(ld, config_setting_get_member(g, "locales"),
                 "digests: locales entry \"%s\" is not \"ADDRESS LOCALE\" "
                 "(e.g. \"maria@example.ph tl\")",
                 e);
    }
}

/* reports = { monthly = { day; at; timezone; template; to = [...] } }.
 * The template's list section is checked with the templates (main.c). */
static void load_reports(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        KR("day", KT_INT, struct suki_conf, report_day, 1, 28),
        KC("at"),
        K("timezone", KT_STRING, struct suki_conf, report_timezone),
        K("template", KT_STRING, struct suki_conf, report_template),
        KL("to", struct suki_conf, report_to, n_report_to),
    };
    struct suki_conf *c = ld->c;
    const config_setting_t *r = group_of(ld, root, "reports");
    if (!r)
        return;
    int n = config_setting_length(r);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(r, (unsigned)i);
        const char *name = config_setting_name(s);
        if (!name || strcmp(name, "monthly") != 0)
            DIAG(ld, s, "unknown key '%s' in reports (only 'monthly')",
                 name ? name : "?");
    }
    const config_setting_t *g = group_of(ld, r, "monthly");
    if (!g)
        return;
    c->reports = true;
    c->report_file = src_file(ld, g);
    c->report_line = src_line(g);
    apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), c, "reports.monthly", NULL);
    local_time_at(ld, g, "reports.monthly", &c->report_hh, &c->report_mm,
                  &c->report_timezone);
    if (!c->report_template)
        c->report_template = suki_strdup("monthly-report");
    if (!config_setting_get_member(g, "to")) {
        c->report_to = suki_calloc(1, sizeof(*c->report_to));
        c->report_to[0] = suki_strdup("manager");
        c->n_report_to = 1;
    }
    for (size_t i = 0; i < c->n_report_to; i++) {
        const char *e = c->report_to[i];
        if (strcmp(e, "manager") != 0 &&
            (!strchr(e, '@') || strpbrk(e, " \t\r\n<>,") || strlen(e) >= 320))
            DIAG(ld, config_setting_get_member(g, "to"),
                 "reports.monthly: 'to' entry \"%s\" is neither \"manager\" "
                 "nor an email address",
                 e);
    }
}

const char *suki_conf_digest_locale(const struct suki_conf *c, const char *addr)
{
    size_t n = addr ? strlen(addr) : 0;
    for (size_t i = 0; n && i < c->n_digest_locales; i++) {
        const char *e = c->digest_locales[i];
        if (strncasecmp(e, addr, n) == 0 && e[n] == ' ')
            return e + n + 1;
    }
    return NULL;
}

static void load_campaigns(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        KC("consent"),
        K("rate", KT_RATE, struct suki_conf, campaign_rate),
        K("error_threshold", KT_FLOAT01, struct suki_conf,
          campaign_error_threshold),
        KR("error_min", KT_INT, struct suki_conf, campaign_error_min, 1,
           1000000),
        K("channel", KT_STRING, struct suki_conf, campaign_transport),
    };
    const config_setting_t *g = group_of(ld, root, "campaigns");
    if (!g)
        return;
    apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), ld->c, "campaigns", NULL);
    const config_setting_t *s = config_setting_get_member(g, "consent");
    if (s) {
        const char *v = config_setting_type(s) == CONFIG_TYPE_STRING
                            ? config_setting_get_string(s)
                            : "";
        if (strcmp(v, "opt-out") != 0 && strcmp(v, "opt-in") != 0)
            DIAG(ld, s, "'consent' must be \"opt-out\" or \"opt-in\"");
        else {
            free(ld->c->campaign_consent);
            ld->c->campaign_consent = suki_strdup(v);
        }
    }
    if (!suki_conf_transport(ld->c, ld->c->campaign_transport))
        DIAG(ld, config_setting_get_member(g, "channel"),
             "campaigns: unknown channel '%s'", ld->c->campaign_transport);
}

/* The tokens of intake_tokens_file, one a line; blank lines, surrounding
 * blanks and "# ..." comment lines are not tokens. The file's text is
 * wiped once split. */
static void split_tokens(struct suki_conf *c)
{
    char *raw = c->intake_raw;
    c->intake_raw = NULL;
    c->intake_tokens = suki_calloc(1, sizeof(char *));
    c->n_intake_tokens = 0;
    for (char *p = raw; *p;) {
        size_t n = strcspn(p, "\n");
        char *next = p[n] ? p + n + 1 : p + n;
        while (n > 0 && strchr(" \t\r", p[n - 1]))
            n--;
        size_t lead = strspn(p, " \t");
        if (lead < n && p[lead] != '#') {
            c->intake_tokens = suki_realloc(
                c->intake_tokens, (c->n_intake_tokens + 1) * sizeof(char *));
            c->intake_tokens[c->n_intake_tokens++] =
                suki_strndup(p + lead, n - lead);
        }
        p = next;
    }
    OPENSSL_cleanse(raw, strlen(raw));
    free(raw);
}

static void load_http(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        K("listen", KT_STRING, struct suki_conf, http_listen),
        K("public_url", KT_STRING, struct suki_conf, public_url),
        K("unsubscribe_secret_file", KT_SECRET, struct suki_conf,
          unsubscribe_secret),
        K("unsubscribe_max_age", KT_DURATION, struct suki_conf,
          unsubscribe_max_age_ms),
        KR("max_connections", KT_INT, struct suki_conf, http_max_connections, 1,
           1000000),
        KR("request_timeout", KT_DURATION, struct suki_conf,
           http_request_timeout_ms, 1000, 3600000),
        K("intake_tokens_file", KT_SECRET, struct suki_conf, intake_raw),
        K("intake_signing_secret_file", KT_SECRET, struct suki_conf,
          intake_signing_secret),
    };
    const config_setting_t *g = group_of(ld, root, "http");
    if (g)
        apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), ld->c, "http", NULL);
    if (ld->c->intake_raw) {
        split_tokens(ld->c);
        if (ld->c->n_intake_tokens == 0)
            DIAG(ld, config_setting_get_member(g, "intake_tokens_file"),
                 "'intake_tokens_file' holds no token (one per line; "
                 "lines starting with # are comments)");
    }
    const char *l = ld->c->http_listen;
    if (l[0]) {
        const char *colon = strrchr(l, ':');
        int64_t port;
        if (!colon || suki_parse_i64(colon + 1, 0, 65535, &port) < 0)
            DIAG(ld, g ? config_setting_get_member(g, "listen") : NULL,
                 "http listen \"%s\" must be HOST:PORT (or \"\" to disable)",
                 l);
    }
    const char *u = ld->c->public_url;
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        DIAG(ld, g ? config_setting_get_member(g, "public_url") : NULL,
             "public_url \"%s\" must start with http:// or https://", u);
}

/* Whether host names this machine (imap:// without TLS is only for a
 * server on the same host). */
static bool loopback_host(const char *h, size_t n)
{
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < SUKI_ARRAY_LEN(names); i++)
        if (n == strlen(names[i]) && strncasecmp(h, names[i], n) == 0)
            return true;
    return n > 4 && strncmp(h, "127.", 4) == 0 && strspn(h, "0123456789.") == n;
}

static void load_inbound(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        K("url", KT_STRING, struct suki_conf, inbound_url),
        K("username", KT_STRING, struct suki_conf, inbound_username),
        K("password_file", KT_SECRET, struct suki_conf, inbound_password),
        KC("starttls"),
        K("ca_file", KT_PATH, struct suki_conf, inbound_ca_file),
        K("tls_verify", KT_BOOL, struct suki_conf, inbound_tls_verify),
        KR("poll", KT_DURATION, struct suki_conf, inbound_poll_ms, 1000,
           86400000),
        KR("timeout", KT_DURATION, struct suki_conf, inbound_timeout_ms, 1000,
           3600000),
    };
    struct suki_conf *c = ld->c;
    const config_setting_t *g = group_of(ld, root, "inbound");
    if (!g)
        return;
    c->inbound = true;
    apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), c, "inbound", NULL);
    const config_setting_t *s = config_setting_get_member(g, "starttls");
    if (s) {
        const char *v = config_setting_type(s) == CONFIG_TYPE_STRING
                            ? config_setting_get_string(s)
                            : "";
        if (strcmp(v, "required") == 0)
            c->inbound_starttls = SUKI_STARTTLS_REQUIRED;
        else if (strcmp(v, "off") == 0)
            c->inbound_starttls = SUKI_STARTTLS_OFF;
        else
            /* no "try": a server that stops offering STARTTLS would get the
             * password in clear */
            DIAG(ld, s,
                 "inbound: 'starttls' must be \"required\" or \"off\" "
                 "(off only for a server on this host)");
    }
    if (!c->inbound_username)
        DIAG(ld, g, "inbound needs a username");
    if (!c->inbound_password && !config_setting_get_member(g, "password_file"))
        DIAG(ld, g, "inbound needs a password_file");
    const config_setting_t *us = config_setting_get_member(g, "url");
    const char *u = c->inbound_url;
    if (!u) {
        DIAG(ld, g, "inbound needs a url (imaps://host/INBOX)");
        return;
    }
    bool tls = strncmp(u, "imaps://", 8) == 0;
    if (!tls && strncmp(u, "imap://", 7) != 0) {
        DIAG(ld, us, "inbound url \"%s\" must start with imaps:// or imap://",
             u);
        return;
    }
    const char *h = u + (tls ? 8 : 7);
    size_t hl = strcspn(h, "/");
    const char *path = h + hl;
    if (memchr(h, '@', hl)) {
        DIAG(ld, us,
             "inbound url must not carry a user or password; use "
             "username and password_file");
        return;
    }
    if (hl == 0 || h[0] == ':') {
        DIAG(ld, us, "inbound url \"%s\" has no host", u);
        return;
    }
    if (!path[0] || !path[1]) {
        DIAG(ld, us, "inbound url \"%s\" names no mailbox (imaps://host/INBOX)",
             u);
        return;
    }
    if (strpbrk(path + 1, ";?#/ ") ||
        strspn(path + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789-_.%") != strlen(path + 1)) {
        DIAG(ld, us,
             "inbound url \"%s\": the mailbox must be one name of letters, "
             "digits, - _ . or %%XX escapes, without ;UID or other parts",
             u);
        return;
    }
    /* the host without a port, for the loopback check */
    size_t hn = hl;
    if (h[0] == '[') {
        const char *rb = memchr(h, ']', hl);
        hn = rb ? (size_t)(rb - h) + 1 : hl;
    } else {
        const char *colon = memchr(h, ':', hl);
        if (colon)
            hn = (size_t)(colon - h);
    }
    if (!tls && c->inbound_starttls == SUKI_STARTTLS_OFF &&
        !loopback_host(h, hn))
        DIAG(ld, s,
             "inbound: starttls = \"off\" sends the password in clear; "
             "only for a server on this host (127.0.0.1, ::1, localhost)");
}

static void load_console(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        K("listen", KT_STRING, struct suki_conf, console_listen),
        K("users_file", KT_PATH, struct suki_conf, console_users_file),
        K("secure_cookie", KT_BOOL, struct suki_conf, console_secure_cookie),
        KR("timeline", KT_INT, struct suki_conf, console_timeline, 0, 1000),
    };
    const config_setting_t *g = group_of(ld, root, "console");
    if (g)
        apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), ld->c, "console", NULL);
    /* a timeline costs the intake (about +12 % Redis CPU): kept unless
     * set only where a console shows it */
    if (ld->c->console_timeline < 0)
        ld->c->console_timeline = ld->c->console_listen[0] ? 20 : 0;
    if (!g)
        return;
    const char *l = ld->c->console_listen;
    if (!l[0])
        return;
    const char *colon = strrchr(l, ':');
    int64_t port;
    if (!colon || suki_parse_i64(colon + 1, 0, 65535, &port) < 0)
        DIAG(ld, config_setting_get_member(g, "listen"),
             "console listen \"%s\" must be HOST:PORT or :PORT (or \"\" "
             "to disable)",
             l);
    else if (ld->c->http_listen[0] && strcmp(l, ld->c->http_listen) == 0)
        DIAG(ld, config_setting_get_member(g, "listen"),
             "console listen \"%s\" is http.listen: the console needs a "
             "listener of its own, never the public one",
             l);
    if (!ld->c->console_users_file)
        DIAG(ld, g,
             "console: 'users_file' is required with 'listen' (create it "
             "with sukictl console passwd NAME)");
}

static void load_daemon(struct loader *ld, const config_setting_t *root)
{
    static const struct keydef keys[] = {
        KR("shutdown_timeout", KT_DURATION, struct suki_conf,
           shutdown_timeout_ms, 0, 3600000),
        KC("log_level"),
    };
    const config_setting_t *g = group_of(ld, root, "daemon");
    if (!g)
        return;
    apply_group(ld, g, keys, SUKI_ARRAY_LEN(keys), ld->c, "daemon", NULL);
    const config_setting_t *s = config_setting_get_member(g, "log_level");
    if (s) {
        static const char *names[] = {"emerg",   "alert",  "crit", "error",
                                      "warning", "notice", "info", "debug"};
        const char *v = config_setting_type(s) == CONFIG_TYPE_STRING
                            ? config_setting_get_string(s)
                            : "";
        int lvl = -1;
        for (int i = 0; i < 8; i++)
            if (strcmp(v, names[i]) == 0)
                lvl = i;
        if (lvl < 0)
            DIAG(ld, s,
                 "'log_level' must be one of error, warning, notice, "
                 "info, debug");
        else
            ld->c->log_level = lvl;
    }
}

static void conf_defaults(struct suki_conf *c)
{
    c->refs = 1;
    c->redis_url = suki_strdup("redis://127.0.0.1:6379/0");
    c->prefix = suki_strdup("suki");
    c->redis_connect_timeout_ms = 5000;
    c->redis_command_timeout_ms = 10000;
    c->redis_wait_timeout_ms = 1000;
    c->group = suki_strdup("sukid");
    c->batch = 256;
    c->max_event_size = 65536;
    c->max_body = 1024 * 1024;
    c->claim_idle_ms = 60000;
    c->max_deliveries = 5;
    c->dedup_window_ms = 7LL * 86400000;
    c->order_window_ms = 30LL * 86400000;
    c->keep = 100000;
    c->block_ms = 1000;
    c->lease_ms = 60000;
    c->sched_batch = 256;
    c->plugins_dir = suki_strdup(PKGLIBDIR "/plugins");
    c->templates_dir = suki_strdup(SYSCONFDIR "/suki/templates");
    c->default_locale = suki_strdup("en");
    c->timezone = suki_strdup("UTC");
    c->digest_hh = 8;
    c->report_day = 1;
    c->report_hh = 8;
    c->campaign_consent = suki_strdup("opt-out");
    c->campaign_rate = 10;
    c->campaign_error_threshold = 0.2;
    c->campaign_error_min = 50;
    c->campaign_transport = suki_strdup("email");
    c->http_listen = suki_strdup("127.0.0.1:9187");
    c->console_listen = suki_strdup("");
    c->console_timeline = -1; /* unset: load_console decides */
    c->public_url = suki_strdup("http://127.0.0.1:9187");
    c->http_max_connections = 512;
    c->http_request_timeout_ms = 10000;
    c->shutdown_timeout_ms = 10000;
    c->log_level = LOG_INFO;
    c->inbound_starttls = SUKI_STARTTLS_REQUIRED;
    c->inbound_tls_verify = true;
    c->inbound_poll_ms = 60000;
    c->inbound_timeout_ms = 60000;
}

/* libconfig's text is mostly just "syntax error", which read "syntax
 * error: syntax error"; say it once, and quote the line libconfig stopped
 * at (the mistake is on it or just before it). */
static void syntax_diag(struct suki_conf_diags *d, const char *file, int line,
                        const char *text)
{
    if (!text || !*text)
        text = "syntax error";
    char near[64] = "";
    FILE *f = line > 0 ? fopen(file, "r") : NULL;
    if (f) {
        char buf[512];
        int n = 0;
        while (fgets(buf, sizeof(buf), f))
            if (++n == line)
                break;
        if (n == line) {
            char *b = buf + strspn(buf, " \t");
            size_t len = strcspn(b, "\r\n");
            while (len > 0 && (b[len - 1] == ' ' || b[len - 1] == '\t'))
                len--;
            if (len > 0)
                snprintf(near, sizeof(near), "%.*s%s",
                         (int)(len > 48 ? 48 : len), b, len > 48 ? "..." : "");
        }
        fclose(f);
    }
    /* other texts (e.g. "cannot open include file") say what they are */
    const char *sep = strcmp(text, "syntax error") == 0 ? " near" : ":";
    if (near[0])
        suki_conf_diags_add(d, file, line, "%s%s '%s'", text, sep, near);
    else
        suki_conf_diags_add(d, file, line, "%s", text);
}

static struct suki_conf *conf_load(const char *path, struct suki_conf_diags *d,
                                   bool partial)
{
    struct suki_conf *c = suki_calloc(1, sizeof(*c));
    conf_defaults(c);
    c->path = suki_strdup(path);
    c->cfg = suki_calloc(1, sizeof(config_t));
    config_init(c->cfg);
    char *dcopy = suki_strdup(path);
    struct loader ld = {c, d, path, suki_strdup(dirname(dcopy))};
    free(dcopy);
    config_set_include_dir(c->cfg, ld.basedir);
    size_t before = d ? d->n : 0;

    if (config_read_file(c->cfg, path) != CONFIG_TRUE) {
        const char *ef = config_error_file(c->cfg);
        if (config_error_type(c->cfg) == CONFIG_ERR_FILE_IO)
            suki_conf_diags_add(d, path, 0, "cannot read: %s",
                                strerror(errno ? errno : ENOENT));
        else
            syntax_diag(d, ef ? ef : path, config_error_line(c->cfg),
                        config_error_text(c->cfg));
        free(ld.basedir);
        suki_conf_unref(c);
        return NULL;
    }
    config_setting_t *root = config_root_setting(c->cfg);
    static const char *top[] = {
        "redis",     "intake",    "scheduler",  "plugins",
        "templates", "timezone",  "transports", "roles",
        "rules",     "campaigns", "http",       "daemon",
        "digests",   "reports",   "inbound",    "console"};
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        bool known = false;
        for (size_t j = 0; j < SUKI_ARRAY_LEN(top); j++)
            if (strcmp(top[j], name) == 0)
                known = true;
        if (!known)
            DIAG(&ld, s, "unknown top-level key '%s'", name);
    }
    load_redis(&ld, root);
    if (!c->stream)
        c->stream = suki_key(c->prefix, SUKI_KEY_EVENTS);
    load_intake(&ld, root);
    load_scheduler(&ld, root);
    load_dirs(&ld, root);
    load_timezone(&ld, root);
    load_transports(&ld, root);
    load_roles(&ld, root);
    load_digests(&ld, root);
    load_reports(&ld, root);
    load_rules(&ld, root);
    load_campaigns(&ld, root);
    load_http(&ld, root);
    load_inbound(&ld, root);
    load_console(&ld, root);
    load_daemon(&ld, root);
    free(ld.basedir);
    if (d && d->n > before && !partial) {
        suki_conf_unref(c);
        return NULL;
    }
    return c;
}

struct suki_conf *suki_conf_load(const char *path, struct suki_conf_diags *d)
{
    return conf_load(path, d, false);
}

struct suki_conf *suki_conf_load_partial(const char *path,
                                         struct suki_conf_diags *d)
{
    SUKI_ASSERT(d);
    return conf_load(path, d, true);
}

struct suki_conf *suki_conf_ref(struct suki_conf *c)
{
    if (c)
        c->refs++;
    return c;
}

void suki_conf_unref(struct suki_conf *c)
{
    if (!c || --c->refs > 0)
        return;
    free(c->path);
    if (c->cfg) {
        config_destroy(c->cfg);
        free(c->cfg);
    }
    free(c->redis_url);
    free(c->redis_host);
    free(c->redis_unix);
    free(c->redis_password);
    free(c->redis_username);
    for (size_t i = 0; i < c->n_redis_sentinels; i++)
        free(c->redis_sentinels[i]);
    free(c->redis_sentinels);
    free(c->redis_master);
    free(c->redis_sentinel_username);
    free(c->redis_sentinel_password);
    free(c->prefix);
    free(c->stream);
    for (size_t i = 0; i < c->n_lists; i++)
        free(c->lists[i]);
    free(c->lists);
    free(c->group);
    free(c->holidays_file);
    free(c->plugins_dir);
    free(c->templates_dir);
    free(c->default_locale);
    free(c->timezone);
    for (size_t i = 0; i < c->n_transports; i++)
        transport_free(&c->transports[i]);
    free(c->transports);
    for (size_t i = 0; i < c->n_roles; i++) {
        free(c->roles[i].name);
        free(c->roles[i].address);
    }
    free(c->roles);
    for (size_t i = 0; i < c->n_rules; i++)
        rule_free(&c->rules[i]);
    free(c->rules);
    free(c->digest_timezone);
    free(c->digest_template);
    free(c->report_timezone);
    free(c->report_template);
    for (size_t i = 0; i < c->n_report_to; i++)
        free(c->report_to[i]);
    free(c->report_to);
    for (size_t i = 0; i < c->n_digest_locales; i++)
        free(c->digest_locales[i]);
    free(c->digest_locales);
    free(c->campaign_consent);
    free(c->campaign_transport);
    free(c->http_listen);
    free(c->console_listen);
    free(c->console_users_file);
    free(c->public_url);
    free(c->unsubscribe_secret);
    for (size_t i = 0; i < c->n_intake_tokens; i++) {
        OPENSSL_cleanse(c->intake_tokens[i], strlen(c->intake_tokens[i]));
        free(c->intake_tokens[i]);
    }
    free(c->intake_tokens);
    if (c->intake_signing_secret) {
        OPENSSL_cleanse(c->intake_signing_secret,
                        strlen(c->intake_signing_secret));
        free(c->intake_signing_secret);
    }
    free(c->intake_raw);
    free(c->inbound_url);
    free(c->inbound_username);
    if (c->inbound_password) {
        OPENSSL_cleanse(c->inbound_password, strlen(c->inbound_password));
        free(c->inbound_password);
    }
    free(c->inbound_ca_file);
    free(c);
}

const struct suki_transport_conf *suki_conf_transport(const struct suki_conf *c,
                                                      const char *name)
{
    for (size_t i = 0; name && i < c->n_transports; i++)
        if (strcmp(c->transports[i].name, name) == 0)
            return &c->transports[i];
    return NULL;
}

const char *suki_conf_role(const struct suki_conf *c, const char *name)
{
    for (size_t i = 0; name && i < c->n_roles; i++)
        if (strcmp(c->roles[i].name, name) == 0)
            return c->roles[i].address;
    return NULL;
}

char *suki_conf_key(const struct suki_conf *c, const char *suffix)
{
    return suki_key(c->prefix, suffix);
}
