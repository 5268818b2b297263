/* rules.c - rule engine: plugin loader, the host table, and the per-event
 * / per-due-job entry points (see rules.h). Job keys and bodies are the
 * store's (store/keys.h). */
#include "rules.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

/* A plugin shared object loaded by one ruleset. */
struct loaded_plugin {
    char *name;                  /* owned: the rules' `use` value */
    char *path;                  /* owned */
    void *handle;                /* dlopen handle, NULL when loading failed */
    const struct suki_plugin *p; /* borrowed from the handle */
};

struct suki_rule {
    struct suki_ruleset *set;        /* borrowed back pointer */
    const struct suki_rule_conf *rc; /* borrowed from set->conf */
    struct loaded_plugin *lp;        /* borrowed from set->plugins */
    void *data;                      /* plugin-private, freed by fini */
    struct suki_conf_diags *diags;   /* borrowed, only while loading */
    const char ***lists;             /* owned arrays from rule_strings */
    size_t n_lists;
    int errors;  /* problems recorded so far */
    int checked; /* check() was called */
};

struct suki_ruleset {
    struct suki_conf *conf;          /* one reference */
    const struct suki_holidays *hol; /* borrowed */
    struct loaded_plugin *plugins;   /* owned, n_plugins */
    size_t n_plugins;
    struct suki_rule *rules; /* owned, n_rules (one per conf rule) */
    size_t n_rules;
};

/* What plugins see as a job: a view of the caller's jobdata. */
struct suki_job {
    const struct suki_jobdata *d; /* borrowed */
};

static const char *const default_subject[] = {"contract", "ticket", "order",
                                              "deal"};

/* The plugin call in progress (the daemon is single-threaded). Strings that
 * the host formats for a plugin live in the arena until the call ends. */
static struct {
    const struct suki_ruleset *set;
    char **arena;
    size_t n_arena, cap_arena;
    char last_log[SUKI_ERR_LEN];
} cur;

static const char *arena_keep(char *s)
{
    if (cur.n_arena == cur.cap_arena) {
        cur.cap_arena = cur.cap_arena ? cur.cap_arena * 2 : 8;
        cur.arena = suki_realloc(cur.arena, cur.cap_arena * sizeof(*cur.arena));
    }
    cur.arena[cur.n_arena++] = s;
    return s;
}

static void call_begin(const struct suki_ruleset *set)
{
    cur.set = set;
    cur.last_log[0] = '\0';
}

static void call_end(void)
{
    for (size_t i = 0; i < cur.n_arena; i++)
        free(cur.arena[i]);
    free(cur.arena);
    cur.arena = NULL;
    cur.n_arena = cur.cap_arena = 0;
    cur.set = NULL;
}

/* ---- client profile ------------------------------------------------ */

struct suki_client *suki_rules_client_new(const char *id)
{
    struct suki_client *cl = suki_calloc(1, sizeof(*cl));
    cl->id = id ? suki_strdup(id) : NULL;
    return cl;
}

void suki_rules_client_free(struct suki_client *cl)
{
    if (!cl)
        return;
    for (size_t i = 0; i < cl->n; i++) {
        free(cl->v[i].field);
        free(cl->v[i].value);
    }
    free(cl->v);
    free(cl->id);
    free(cl);
}

void suki_rules_client_set(struct suki_client *cl, const char *field,
                           const char *value)
{
    for (size_t i = 0; i < cl->n; i++) {
        if (strcmp(cl->v[i].field, field) == 0) {
            free(cl->v[i].value);
            cl->v[i].value = suki_strdup(value);
            return;
        }
    }
    if (cl->n == cl->cap) {
        cl->cap = cl->cap ? cl->cap * 2 : 8;
        cl->v = suki_realloc(cl->v, cl->cap * sizeof(*cl->v));
    }
    cl->v[cl->n].field = suki_strdup(field);
    cl->v[cl->n].value = suki_strdup(value);
    cl->n++;
}

const char *suki_rules_client_get(const struct suki_client *cl,
                                  const char *field)
{
    if (!cl || !field)
        return NULL;
    for (size_t i = 0; i < cl->n; i++)
        if (strcmp(cl->v[i].field, field) == 0)
            return cl->v[i].value;
    return NULL;
}

/* ---- actions ------------------------------------------------------- */

void suki_rules_actions_init(struct suki_actions *a)
{
    memset(a, 0, sizeof(*a));
}

void suki_rules_actions_clear(struct suki_actions *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].key);
        free(a->v[i].prefix);
        free(a->v[i].rule);
        free(a->v[i].client);
        free(a->v[i].body);
    }
    free(a->v);
    suki_rules_actions_init(a);
}

static struct suki_action *actions_push(struct suki_actions *a)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = suki_realloc(a->v, a->cap * sizeof(*a->v));
    }
    struct suki_action *x = &a->v[a->n++];
    memset(x, 0, sizeof(*x));
    return x;
}

/* ---- settings (host table) ----------------------------------------- */

static const char *rule_file(const struct suki_rule *r,
                             const config_setting_t *s)
{
    const char *f = s ? config_setting_source_file(s) : NULL;
    if (!f)
        f = r->rc->file;
    if (!f && r->set && r->set->conf)
        f = r->set->conf->path;
    return f ? f : "?";
}

static int rule_line(const struct suki_rule *r, const config_setting_t *s)
{
    int line = s ? (int)config_setting_source_line(s) : 0;
    return line > 0 ? line : r->rc->line;
}

static void rule_vdiag(struct suki_rule *r, const config_setting_t *s,
                       const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void rule_vdiag(struct suki_rule *r, const config_setting_t *s,
                       const char *fmt, va_list ap)
{
    char msg[SUKI_ERR_LEN];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    r->errors++;
    if (r->diags)
        suki_conf_diags_add(r->diags, rule_file(r, s), rule_line(r, s),
                            "rule '%s': %s", r->rc->name, msg);
    else
        suki_warnx("%s:%d: rule '%s': %s", rule_file(r, s), rule_line(r, s),
                   r->rc->name, msg);
}

static void rule_diag(struct suki_rule *r, const config_setting_t *s,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void rule_diag(struct suki_rule *r, const config_setting_t *s,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rule_vdiag(r, s, fmt, ap);
    va_end(ap);
}

/* The child `key` of the rule's group, marked as read. */
static config_setting_t *rule_child(struct suki_rule *r, const char *key)
{
    if (!r->rc->setting || !key)
        return NULL;
    config_setting_t *s = config_setting_get_member(r->rc->setting, key);
    if (s) {
        int idx = config_setting_index(s);
        if (idx >= 0 && (size_t)idx < r->rc->n_used)
            r->rc->used[idx] = 1;
    }
    return s;
}

static const char *type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "unknown";
    }
}

static const char *h_rule_name(const struct suki_rule *rule)
{
    return rule->rc->name;
}

static int h_rule_string(struct suki_rule *r, const char *key, const char **out)
{
    config_setting_t *s = rule_child(r, key);
    if (!s)
        return 1;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        rule_diag(r, s, "'%s' must be a string, not %s", key, type_name(s));
        return -EINVAL;
    }
    *out = config_setting_get_string(s);
    return 0;
}

static int h_rule_bool(struct suki_rule *r, const char *key, int *out)
{
    config_setting_t *s = rule_child(r, key);
    if (!s)
        return 1;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        rule_diag(r, s, "'%s' must be true or false, not %s", key,
                  type_name(s));
        return -EINVAL;
    }
    *out = config_setting_get_bool(s) ? 1 : 0;
    return 0;
}

static int h_rule_int(struct suki_rule *r, const char *key, int64_t min,
                      int64_t max, int64_t *out)
{
    config_setting_t *s = rule_child(r, key);
    if (!s)
        return 1;
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        rule_diag(r, s, "'%s' must be an integer, not %s", key, type_name(s));
        return -EINVAL;
    }
    long long v = config_setting_get_int64(s);
    if (v < min || v > max) {
        rule_diag(r, s,
                  "'%s' = %lld is out of range [%" PRId64 ", %" PRId64 "]", key,
                  v, min, max);
        return -ERANGE;
    }
    *out = v;
    return 0;
}

static int h_rule_duration(struct suki_rule *r, const char *key, int64_t *ms)
{
    config_setting_t *s = rule_child(r, key);
    if (!s)
        return 1;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        rule_diag(r, s, "'%s' must be a duration string like \"3d\", not %s",
                  key, type_name(s));
        return -EINVAL;
    }
    struct suki_err err = {{0}};
    int rc = suki_parse_duration(config_setting_get_string(s), ms, &err);
    if (rc < 0) {
        rule_diag(r, s, "'%s': %s", key, err.msg);
        return rc;
    }
    return 0;
}

static int h_rule_strings(struct suki_rule *r, const char *key,
                          const char *const **out, size_t *n)
{
    config_setting_t *s = rule_child(r, key);
    if (!s)
        return 1;
    int t = config_setting_type(s);
    const char **v;
    size_t cnt;
    if (t == CONFIG_TYPE_STRING) {
        cnt = 1;
        v = suki_calloc(2, sizeof(*v));
        v[0] = config_setting_get_string(s);
    } else if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) {
        cnt = (size_t)config_setting_length(s);
        v = suki_calloc(cnt + 1, sizeof(*v));
        for (size_t i = 0; i < cnt; i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (!e || config_setting_type(e) != CONFIG_TYPE_STRING) {
                rule_diag(r, e ? e : s, "'%s' must hold only strings", key);
                free(v);
                return -EINVAL;
            }
            v[i] = config_setting_get_string(e);
        }
    } else {
        rule_diag(r, s, "'%s' must be a string or a list of strings, not %s",
                  key, type_name(s));
        return -EINVAL;
    }
    r->lists = suki_realloc(r->lists, (r->n_lists + 1) * sizeof(*r->lists));
    r->lists[r->n_lists++] = v;
    *out = v;
    *n = cnt;
    return 0;
}

static void h_rule_error(struct suki_rule *r, const char *key, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

static void h_rule_error(struct suki_rule *r, const char *key, const char *fmt,
                         ...)
{
    config_setting_t *s = key ? rule_child(r, key) : NULL;
    char msg[SUKI_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (key)
        rule_diag(r, s, "'%s': %s", key, msg);
    else
        rule_diag(r, NULL, "%s", msg);
}

static void h_rule_set_data(struct suki_rule *rule, void *data)
{
    rule->data = data;
}

static void *h_rule_data(const struct suki_rule *rule)
{
    return rule->data;
}

static void h_log(const struct suki_rule *rule, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void h_log(const struct suki_rule *rule, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cur.last_log, sizeof(cur.last_log), fmt, ap);
    va_end(ap);
    suki_log(level, "rule %s (plugin %s): %s", rule ? rule->rc->name : "?",
             rule && rule->lp ? rule->lp->name : "?", cur.last_log);
}

/* ---- event, client, time (host table) ------------------------------ */

static const char *h_event_type(const struct suki_event *ev)
{
    return ev ? ev->type : NULL;
}

static const char *h_event_client(const struct suki_event *ev)
{
    return ev ? ev->client : NULL;
}

static const char *h_event_id(const struct suki_event *ev)
{
    return ev ? ev->id : NULL;
}

static int64_t h_event_at(const struct suki_event *ev)
{
    return ev ? ev->at_ms : 0;
}

static const char *h_event_data(const struct suki_event *ev, const char *field)
{
    if (!ev || !field)
        return NULL;
    /* suki_event_data_str formats numbers into the event's scratch buffer;
     * the host promises plugins the value until the callback returns, so
     * such values are copied into the call arena. */
    struct suki_event *mev = (struct suki_event *)ev;
    const char *v = suki_event_data_str(mev, field);
    if (v && v >= mev->scratch && v < mev->scratch + sizeof(mev->scratch))
        return arena_keep(suki_strdup(v));
    return v;
}

static int h_event_time(const struct suki_event *ev, const char *field,
                        const char *tz, int64_t *ms)
{
    if (!ev || !ev->data || !field)
        return 1;
    json_t *v = json_object_get(ev->data, field);
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_string(v))
        return -EINVAL;
    const char *s = json_string_value(v);
    struct suki_tm tm = {0};
    if (suki_time_parse_date(s, &tm.year, &tm.mon, &tm.mday) == 0)
        return suki_time_from_local(&tm, tz ? tz : "UTC", ms) < 0 ? -EINVAL : 0;
    struct suki_err err = {{0}};
    return suki_time_parse_rfc3339(s, ms, &err) < 0 ? -EINVAL : 0;
}

static const char *event_subject(const struct suki_event *ev,
                                 const struct suki_rule_conf *rc)
{
    const char *const *fields = default_subject;
    size_t n = SUKI_ARRAY_LEN(default_subject);
    if (rc && rc->n_subject > 0) {
        fields = (const char *const *)rc->subject;
        n = rc->n_subject;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = h_event_data(ev, fields[i]);
        if (v && *v)
            return v;
    }
    return "";
}

static const char *h_event_subject(const struct suki_event *ev,
                                   const struct suki_rule *rule)
{
    return event_subject(ev, rule ? rule->rc : NULL);
}

static const char *h_client_field(const struct suki_client *cl,
                                  const char *field)
{
    return suki_rules_client_get(cl, field);
}

static const char *rule_timezone(const struct suki_client *cl,
                                 const struct suki_rule *rule)
{
    const char *tz = suki_rules_client_get(cl, "timezone");
    if (tz && *tz && suki_tz_valid(tz))
        return tz;
    if (rule && rule->rc->timezone && *rule->rc->timezone &&
        suki_tz_valid(rule->rc->timezone))
        return rule->rc->timezone;
    const struct suki_conf *conf = rule && rule->set ? rule->set->conf : NULL;
    if (conf && conf->timezone && *conf->timezone &&
        suki_tz_valid(conf->timezone))
        return conf->timezone;
    return "UTC";
}

static const char *h_timezone(const struct suki_client *cl,
                              const struct suki_rule *rule)
{
    return rule_timezone(cl, rule);
}

static int64_t h_add_business_days(int64_t t_ms, int n, const char *tz)
{
    return suki_time_add_business_days(t_ms, n, tz,
                                       cur.set ? cur.set->hol : NULL);
}

static int64_t h_at_local(int64_t t_ms, int hh, int mm, const char *tz)
{
    return suki_time_at_local(t_ms, hh, mm, tz);
}

static int64_t h_add_days(int64_t t_ms, int n, const char *tz)
{
    return suki_time_add_days(t_ms, n, tz);
}

static int64_t h_on_local_date(int64_t t_ms, int hh, int mm, const char *tz)
{
    return suki_time_on_local_date(t_ms, hh, mm, tz);
}

/* ---- actions (host table) ------------------------------------------ */

static int refuse(struct suki_actions *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(struct suki_actions *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!a->failed)
        vsnprintf(a->err.msg, sizeof(a->err.msg), fmt, ap);
    va_end(ap);
    a->failed = 1;
    return -EINVAL;
}

static int h_schedule(struct suki_actions *a, const struct suki_jobspec *spec)
{
    if (!a || !a->rule)
        return -EINVAL;
    if (a->in_due)
        return refuse(a, "schedule() refused: not allowed in on_due");
    if (!spec || spec->size < offsetof(struct suki_jobspec, n_notify) +
                                  sizeof(spec->n_notify))
        return refuse(a, "schedule() refused: job spec missing or too "
                         "small");
    if (spec->due_ms <= 0)
        return refuse(
            a, "schedule() refused: due time %" PRId64 " is not a valid time",
            spec->due_ms);
    const struct suki_rule_conf *rc = a->rule->rc;
    const char *subject = spec->subject ? spec->subject : "";
    const char *slot = spec->slot ? spec->slot : "";
    char *key = suki_job_key(rc->name, a->client, subject, slot);
    size_t klen = strlen(key);
    if (klen > SUKI_JOB_KEY_MAX) {
        free(key);
        return refuse(a,
                      "schedule() refused: job key too long (%zu bytes, "
                      "max %d)",
                      klen, SUKI_JOB_KEY_MAX);
    }
    if (spec->n_notify > 0 && !spec->notify) {
        free(key);
        return refuse(a, "schedule() refused: notify list is NULL");
    }
    for (size_t i = 0; i < spec->n_notify; i++) {
        if (!spec->notify[i]) {
            free(key);
            return refuse(a, "schedule() refused: notify entry is NULL");
        }
    }

    struct suki_job_fields f = {.due_ms = spec->due_ms,
                                .event = a->ev,
                                .template_name = spec->template_name,
                                .channel = spec->channel,
                                .notify = spec->notify,
                                .n_notify = spec->n_notify};
    char *body = suki_job_body(&f);
    if (!body) {
        free(key);
        return refuse(a, "schedule() refused: job body not encodable (bad "
                         "UTF-8 in a field?)");
    }
    struct suki_action *x = actions_push(a);
    x->kind = SUKI_ACTION_SCHEDULE;
    x->key = key;
    x->rule = suki_strdup(rc->name);
    x->client = suki_strdup(a->client);
    x->due_ms = spec->due_ms;
    x->body = body;
    return 0;
}

static void push_cancel(struct suki_actions *a, const char *rule,
                        const char *client, const char *subject)
{
    struct suki_action *x = actions_push(a);
    x->kind = SUKI_ACTION_CANCEL;
    x->prefix = suki_job_key_prefix(rule, client, subject);
    x->rule = suki_strdup(rule);
    x->client = suki_strdup(client);
}

static int h_cancel(struct suki_actions *a, const char *subject)
{
    if (!a || !a->rule)
        return -EINVAL;
    if (a->in_due)
        return refuse(a, "cancel() refused: not allowed in on_due");
    push_cancel(a, a->rule->rc->name, a->client, subject);
    return 0;
}

static int h_defer(struct suki_actions *a, int64_t due_ms)
{
    if (!a || !a->rule)
        return -EINVAL;
    if (!a->in_due)
        return refuse(a, "defer() refused: only allowed in on_due");
    if (due_ms <= 0)
        return refuse(
            a, "defer() refused: due time %" PRId64 " is not a valid time",
            due_ms);
    a->deferred = 1;
    a->defer_ms = due_ms;
    return 0;
}

static const char *h_job_key(const struct suki_job *job)
{
    return job->d->key;
}

static const char *h_job_subject(const struct suki_job *job)
{
    return job->d->subject ? job->d->subject : "";
}

static const char *h_job_slot(const struct suki_job *job)
{
    return job->d->slot ? job->d->slot : "";
}

static int64_t h_job_due(const struct suki_job *job)
{
    return job->d->due_ms;
}

static const struct suki_event *h_job_event(const struct suki_job *job)
{
    return job->d->event;
}

static const struct suki_host host = {
    .abi = SUKI_PLUGIN_ABI,
    .size = sizeof(struct suki_host),
    .log = h_log,
    .rule_name = h_rule_name,
    .rule_string = h_rule_string,
    .rule_bool = h_rule_bool,
    .rule_int = h_rule_int,
    .rule_duration = h_rule_duration,
    .rule_strings = h_rule_strings,
    .rule_error = h_rule_error,
    .rule_set_data = h_rule_set_data,
    .rule_data = h_rule_data,
    .event_type = h_event_type,
    .event_client = h_event_client,
    .event_id = h_event_id,
    .event_at = h_event_at,
    .event_data = h_event_data,
    .event_time = h_event_time,
    .event_subject = h_event_subject,
    .client_field = h_client_field,
    .timezone = h_timezone,
    .add_business_days = h_add_business_days,
    .at_local = h_at_local,
    .add_days = h_add_days,
    .on_local_date = h_on_local_date,
    .schedule = h_schedule,
    .cancel = h_cancel,
    .defer = h_defer,
    .job_key = h_job_key,
    .job_subject = h_job_subject,
    .job_slot = h_job_slot,
    .job_due = h_job_due,
    .job_event = h_job_event,
};

const struct suki_host *suki_rules_host(void)
{
    return &host;
}

/* ---- loading ------------------------------------------------------- */

/* Location of the rule's `use` setting (the best place to blame). */
static config_setting_t *use_setting(const struct suki_rule_conf *rc)
{
    return rc->setting ? config_setting_get_member(rc->setting, "use") : NULL;
}

static struct loaded_plugin *plugin_get(struct suki_ruleset *set,
                                        struct suki_rule *r)
{
    const struct suki_rule_conf *rc = r->rc;
    for (size_t i = 0; i < set->n_plugins; i++)
        if (strcmp(set->plugins[i].name, rc->use) == 0)
            return &set->plugins[i];

    struct loaded_plugin *lp = &set->plugins[set->n_plugins++];
    memset(lp, 0, sizeof(*lp));
    lp->name = suki_strdup(rc->use);
    const char *dir =
        set->conf->plugins_dir ? set->conf->plugins_dir : PKGLIBDIR "/plugins";
    lp->path = suki_asprintf("%s/%s.so", dir, rc->use);
    config_setting_t *at = use_setting(rc);

    if (strchr(rc->use, '/') || rc->use[0] == '.' || rc->use[0] == '\0') {
        rule_diag(r, at, "bad plugin name '%s'", rc->use);
        return lp;
    }
    void *h = dlopen(lp->path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        rule_diag(r, at, "cannot load plugin '%s': %s", rc->use,
                  e ? e : lp->path);
        return lp;
    }
    dlerror();
    const struct suki_plugin *p = dlsym(h, "suki_plugin");
    if (!p) {
        rule_diag(r, at,
                  "%s: no 'suki_plugin' symbol (not a suki plugin, or built "
                  "without SUKI_PLUGIN_EXPORT)",
                  lp->path);
        dlclose(h);
        return lp;
    }
    if (p->abi != SUKI_PLUGIN_ABI) {
        rule_diag(r, at,
                  "%s: plugin ABI version %" PRIu32
                  " does not match sukid's plugin ABI version %d; rebuild "
                  "the plugin against this suki/plugin.h",
                  lp->path, p->abi, SUKI_PLUGIN_ABI);
        dlclose(h);
        return lp;
    }
    size_t need = offsetof(struct suki_plugin, fini) + sizeof(p->fini);
    if (p->size < need) {
        rule_diag(r, at,
                  "%s: plugin struct too small (%" PRIu32
                  " bytes, ABI version %d needs %zu)",
                  lp->path, p->size, SUKI_PLUGIN_ABI, need);
        dlclose(h);
        return lp;
    }
    if (!p->name || !p->on_event) {
        rule_diag(r, at, "%s: plugin has no name or no on_event", lp->path);
        dlclose(h);
        return lp;
    }
    lp->handle = h;
    lp->p = p;
    return lp;
}

/* Report every child of the rule's group that neither conf.c nor the
 * plugin read. */
static void report_unknown(struct suki_rule *r)
{
    const struct suki_rule_conf *rc = r->rc;
    if (!rc->setting)
        return;
    int n = config_setting_length(rc->setting);
    for (int i = 0; i < n; i++) {
        if ((size_t)i < rc->n_used && rc->used[i])
            continue;
        config_setting_t *c = config_setting_get_elem(rc->setting, (unsigned)i);
        const char *name = c ? config_setting_name(c) : NULL;
        r->errors++;
        suki_conf_diags_add(r->diags, rule_file(r, c), rule_line(r, c),
                            "unknown key '%s' in rule '%s' (plugin %s)",
                            name ? name : "?", rc->name, rc->use);
    }
}

struct suki_ruleset *suki_rules_load(struct suki_conf *conf,
                                     const struct suki_holidays *hol,
                                     struct suki_conf_diags *d)
{
    struct suki_conf_diags local = {0};
    if (!d)
        d = &local;
    size_t before = d->n;

    struct suki_ruleset *set = suki_calloc(1, sizeof(*set));
    set->conf = suki_conf_ref(conf);
    set->hol = hol;
    set->rules =
        suki_calloc(conf->n_rules ? conf->n_rules : 1, sizeof(*set->rules));
    set->plugins =
        suki_calloc(conf->n_rules ? conf->n_rules : 1, sizeof(*set->plugins));

    bool skipped = false;
    for (size_t i = 0; i < conf->n_rules; i++) {
        struct suki_rule *r = &set->rules[set->n_rules++];
        r->set = set;
        r->rc = &conf->rules[i];
        r->diags = d;
        /* A conf loaded with suki_conf_load_partial: the conf said what is
         * wrong with this rule's use; there is no plugin to ask. */
        const char *use = r->rc->use;
        if (!use || !use[0] || strpbrk(use, "/.")) {
            skipped = true;
            continue;
        }
        r->lp = plugin_get(set, r);
        if (!r->lp->p)
            continue; /* reported once, when first loaded */
        if (r->lp->p->check) {
            call_begin(set);
            int rc = r->lp->p->check(&host, r);
            call_end();
            r->checked = 1;
            if (rc < 0 && r->errors == 0)
                rule_diag(r, NULL, "plugin %s refused the rule (%s)",
                          r->lp->name, strerror(-rc));
        }
        report_unknown(r);
    }
    for (size_t i = 0; i < set->n_rules; i++)
        set->rules[i].diags = NULL;

    if (d->n > before || skipped) {
        suki_rules_free(set);
        set = NULL;
    }
    if (d == &local) {
        for (size_t i = 0; i < local.n; i++)
            suki_err_log("%s:%d: %s", local.v[i].file, local.v[i].line,
                         local.v[i].msg);
        suki_conf_diags_clear(&local);
    }
    return set;
}

void suki_rules_free(struct suki_ruleset *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n_rules; i++) {
        struct suki_rule *r = &set->rules[i];
        if (r->checked && r->lp && r->lp->p && r->lp->p->fini)
            r->lp->p->fini(&host, r);
        for (size_t k = 0; k < r->n_lists; k++)
            free(r->lists[k]);
        free(r->lists);
    }
    for (size_t i = 0; i < set->n_plugins; i++) {
        if (set->plugins[i].handle)
            dlclose(set->plugins[i].handle);
        free(set->plugins[i].name);
        free(set->plugins[i].path);
    }
    free(set->plugins);
    free(set->rules);
    suki_conf_unref(set->conf);
    free(set);
}

int suki_rules_check(struct suki_conf *conf, const struct suki_holidays *hol,
                     struct suki_conf_diags *d)
{
    struct suki_ruleset *set = suki_rules_load(conf, hol, d);
    if (!set)
        return -EINVAL;
    suki_rules_free(set);
    return 0;
}

struct suki_conf *suki_rules_conf(const struct suki_ruleset *set)
{
    return set->conf;
}

size_t suki_rules_count(const struct suki_ruleset *set)
{
    return set->n_rules;
}

/* ---- running ------------------------------------------------------- */

static bool match_any(char *const *pats, size_t n, const char *type)
{
    for (size_t i = 0; i < n; i++)
        if (suki_glob_match(pats[i], type))
            return true;
    return false;
}

static void ctx_set(struct suki_actions *a, const struct suki_ruleset *set,
                    const struct suki_rule *r, const struct suki_event *ev,
                    const char *client, int64_t now, int in_due)
{
    a->set = set;
    a->rule = r;
    a->ev = ev;
    a->client = client;
    a->now_ms = now;
    a->in_due = in_due;
    a->failed = 0;
    a->err.msg[0] = '\0';
    a->deferred = 0;
    a->defer_ms = 0;
}

static void ctx_reset(struct suki_actions *a)
{
    a->set = NULL;
    a->rule = NULL;
    a->ev = NULL;
    a->client = NULL;
}

static int plugin_failed(const struct suki_rule *r, struct suki_actions *a,
                         int rc, const char *what, struct suki_err *err)
{
    suki_metrics.rule_errors++;
    if (rc >= 0)
        rc = -EINVAL;
    if (a->failed)
        return suki_err_set(err, rc, "rule '%s' (plugin %s): %s", r->rc->name,
                            r->lp->name, a->err.msg);
    if (cur.last_log[0])
        return suki_err_set(err, rc, "rule '%s' (plugin %s): %s failed: %s",
                            r->rc->name, r->lp->name, what, cur.last_log);
    return suki_err_set(err, rc, "rule '%s' (plugin %s): %s failed: %s",
                        r->rc->name, r->lp->name, what, strerror(-rc));
}

int suki_rules_on_event(struct suki_ruleset *set, struct suki_event *ev,
                        const struct suki_client *cl, int64_t now_ms,
                        struct suki_actions *acts, struct suki_err *err)
{
    if (!ev || !ev->type || !ev->client || !ev->client[0])
        return 0;
    for (size_t i = 0; i < set->n_rules; i++) {
        struct suki_rule *r = &set->rules[i];
        const struct suki_rule_conf *rc = r->rc;
        if (!r->lp || !r->lp->p)
            continue;
        bool un = match_any(rc->unless, rc->n_unless, ev->type);
        bool on = match_any(rc->on, rc->n_on, ev->type);
        if (un) {
            call_begin(set);
            const char *subj = event_subject(ev, rc);
            if (*subj) {
                push_cancel(acts, rc->name, ev->client, subj);
                push_cancel(acts, rc->name, ev->client, "");
            } else {
                push_cancel(acts, rc->name, ev->client, NULL);
            }
            call_end();
        }
        if (!on)
            continue;
        ctx_set(acts, set, r, ev, ev->client, now_ms, 0);
        call_begin(set);
        int prc = r->lp->p->on_event(&host, r, ev, cl, now_ms, acts);
        if (prc < 0 || acts->failed) {
            prc = plugin_failed(r, acts, prc, "on_event", err);
            if (acts->failed)
                prc = -EBADMSG; /* refused: see rules.h */
            call_end();
            ctx_reset(acts);
            return prc;
        }
        call_end();
        ctx_reset(acts);
    }
    return 0;
}

static const struct suki_rule *find_rule(const struct suki_ruleset *set,
                                         const char *name)
{
    for (size_t i = 0; i < set->n_rules; i++)
        if (strcmp(set->rules[i].rc->name, name) == 0)
            return &set->rules[i];
    return NULL;
}

int suki_rules_on_due(struct suki_ruleset *set, const struct suki_jobdata *job,
                      const struct suki_client *cl, int64_t now_ms,
                      int *verdict, int64_t *defer_to, struct suki_err *err)
{
    *verdict = SUKI_DUE_SEND;
    if (defer_to)
        *defer_to = 0;
    const struct suki_rule *r = find_rule(set, job->rule);
    if (!r || !r->lp || !r->lp->p) {
        *verdict = SUKI_DUE_DROP;
        suki_metrics.jobs_dropped_rule++;
        suki_err_set(err, 0, "rule '%s' is no longer configured", job->rule);
        return 0;
    }
    int64_t late = now_ms - job->due_ms;
    if (r->rc->max_lateness_ms > 0 && late > r->rc->max_lateness_ms &&
        !job->forced) {
        char lb[32], mb[32];
        suki_format_duration(late, lb, sizeof(lb));
        suki_format_duration(r->rc->max_lateness_ms, mb, sizeof(mb));
        *verdict = SUKI_DUE_DROP;
        suki_metrics.jobs_dropped_stale++;
        suki_err_set(err, 0, "stale: %s late, max_lateness of rule '%s' is %s",
                     lb, r->rc->name, mb);
        return 0;
    }
    if (!r->lp->p->on_due)
        return 0;

    struct suki_actions acts;
    suki_rules_actions_init(&acts);
    ctx_set(&acts, set, r, job->event, job->client, now_ms, 1);
    struct suki_job j = {.d = job};
    call_begin(set);
    int prc =
        r->lp->p->on_due(&host, (struct suki_rule *)r, &j, cl, now_ms, &acts);
    int rc = 0;
    if (prc < 0 || acts.failed) {
        rc = plugin_failed(r, &acts, prc, "on_due", err);
    } else if (prc == SUKI_DUE_SEND) {
        *verdict = SUKI_DUE_SEND;
    } else if (prc == SUKI_DUE_DROP) {
        *verdict = SUKI_DUE_DROP;
        suki_metrics.jobs_dropped_rule++;
        suki_err_set(err, 0, "dropped by rule '%s' (plugin %s): %s",
                     r->rc->name, r->lp->name,
                     cur.last_log[0] ? cur.last_log : "no reason given");
    } else if (prc == SUKI_DUE_DEFER && acts.deferred) {
        *verdict = SUKI_DUE_DEFER;
        if (defer_to)
            *defer_to = acts.defer_ms;
    } else {
        acts.failed = 1;
        snprintf(acts.err.msg, sizeof(acts.err.msg),
                 prc == SUKI_DUE_DEFER
                     ? "on_due returned DEFER without calling defer()"
                     : "on_due returned an unknown verdict %d",
                 prc);
        rc = plugin_failed(r, &acts, -EINVAL, "on_due", err);
    }
    call_end();
    suki_rules_actions_clear(&acts);
    return rc;
}

/* ---- recipients ---------------------------------------------------- */

/* An address we are willing to hand to a transport: something@something,
 * no whitespace, control characters or header syntax. */
static bool address_ok(const char *s)
{
    if (!s || !*s)
        return false;
    const char *at = strchr(s, '@');
    if (!at || at == s || at[1] == '\0' || strchr(at + 1, '@'))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || strchr("<>,;\"()[]\\", *p))
            return false;
    return true;
}

static void add_addr(char ***v, size_t *n, const char *addr)
{
    for (size_t i = 0; i < *n; i++)
        if (strcasecmp((*v)[i], addr) == 0)
            return;
    *v = suki_realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = suki_strdup(addr);
}

static void note(struct suki_buf *why, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct suki_buf *why, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (why->len)
        suki_buf_str(why, ", ");
    suki_buf_str(why, buf);
}

int suki_rules_recipients(struct suki_ruleset *set,
                          const struct suki_jobdata *job,
                          const struct suki_client *cl, char ***addrs,
                          size_t *n, struct suki_err *err)
{
    *addrs = NULL;
    *n = 0;
    char *const *spec = job->notify;
    size_t nspec = job->n_notify;
    if (nspec == 0) {
        const struct suki_rule *r = find_rule(set, job->rule);
        if (r) {
            spec = r->rc->notify;
            nspec = r->rc->n_notify;
        }
    }
    struct suki_buf why = {0};
    for (size_t i = 0; i < nspec; i++) {
        const char *s = spec[i];
        const char *addr = NULL;
        if (strcmp(s, "manager") == 0) {
            addr = job->event && job->event->manager && *job->event->manager
                       ? job->event->manager
                       : suki_rules_client_get(cl, "manager");
            if (!addr || !*addr) {
                note(&why, "manager unset");
                continue;
            }
        } else if (strcmp(s, "client") == 0) {
            addr = suki_rules_client_get(cl, "email");
            if (!addr || !*addr) {
                note(&why, "client email unset");
                continue;
            }
        } else if (strncmp(s, "role:", 5) == 0) {
            addr = suki_conf_role(set->conf, s + 5);
            if (!addr || !*addr) {
                note(&why, "role '%s' not configured", s + 5);
                continue;
            }
        } else {
            addr = s;
        }
        if (!address_ok(addr)) {
            note(&why, "%s address is not valid", s);
            continue;
        }
        add_addr(addrs, n, addr);
    }
    if (*n == 0) {
        if (nspec == 0)
            note(&why, "notify is empty");
        suki_err_set(err, -ENOENT, "no recipient address (%s)",
                     why.p ? why.p : "?");
        free(why.p);
        return -ENOENT;
    }
    free(why.p);
    return 0;
}
