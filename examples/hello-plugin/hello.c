/* hello.c - a minimal suki rule plugin, built outside the suki tree
 * against the installed <suki/plugin.h> (see Makefile and README.md).
 *
 * rules = ( { name = "hello"; use = "hello"; on = [ "client.created" ];
 *             delay = "1h";              # optional, default 1h
 *             notify = [ "manager" ]; template = "hello"; } );
 *
 * On each matching event it schedules one reminder `delay` after the
 * event; a newer event for the same client replaces it. */
#include <errno.h>
#include <stdlib.h>

#include <suki/plugin.h>

struct hello {
    int64_t delay_ms;
};

static int hello_check(const struct suki_host *h, struct suki_rule *rule)
{
    struct hello cfg = {.delay_ms = 3600 * 1000};
    int rc = h->rule_duration(rule, "delay", &cfg.delay_ms);
    if (rc < 0)
        return rc; /* the host already reported FILE:LINE */
    if (cfg.delay_ms <= 0) {
        h->rule_error(rule, "delay", "must be longer than 0");
        return -EINVAL;
    }
    struct hello *p = malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    *p = cfg;
    h->rule_set_data(rule, p);
    return 0;
}

static int hello_on_event(const struct suki_host *h, struct suki_rule *rule,
                          const struct suki_event *ev,
                          const struct suki_client *cl, int64_t now_ms,
                          struct suki_actions *acts)
{
    (void)cl;
    (void)now_ms;
    const struct hello *cfg = h->rule_data(rule);
    struct suki_jobspec spec = {
        .size = sizeof(spec),
        .subject = "",
        .slot = "hello",
        .due_ms = h->event_at(ev) + cfg->delay_ms,
    };
    return h->schedule(acts, &spec);
}

static void hello_fini(const struct suki_host *h, struct suki_rule *rule)
{
    free(h->rule_data(rule));
}

SUKI_PLUGIN_EXPORT const struct suki_plugin suki_plugin = {
    .abi = SUKI_PLUGIN_ABI,
    .size = sizeof(struct suki_plugin),
    .name = "hello",
    .version = "1.0",
    .check = hello_check,
    .on_event = hello_on_event,
    .on_due = NULL, /* no second look: always send */
    .fini = hello_fini,
};
