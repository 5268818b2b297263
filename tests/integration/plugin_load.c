/* plugin_load.c - test driver for plugin_out_of_tree.sh: load a config
 * and its plugins through suki_rules_load(), print the problems as
 * FILE:LINE: message, and, given an event, print the actions as
 *   SCHEDULE <key> <due RFC 3339>   or   CANCEL <prefix>
 * Usage: plugin_load CONFIG [EVENT-JSON]. Exit 0 ok, 1 refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "event.h"
#include "rules.h"
#include "timeutil.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: plugin_load CONFIG [EVENT-JSON]\n");
        return 2;
    }
    struct suki_conf_diags d = {0};
    struct suki_conf *c = suki_conf_load(argv[1], &d);
    struct suki_ruleset *set = c ? suki_rules_load(c, NULL, &d) : NULL;
    for (size_t i = 0; i < d.n; i++)
        printf("%s:%d: %s\n", d.v[i].file, d.v[i].line, d.v[i].msg);
    suki_conf_diags_clear(&d);
    suki_conf_unref(c);
    if (!set)
        return 1;
    printf("rules OK (%zu)\n", suki_rules_count(set));
    int rc = 0;
    if (argc == 3) {
        struct suki_event_limits lim = {.max_size = 65536, .max_depth = 32};
        struct suki_event *ev = NULL;
        struct suki_err err = {{0}};
        struct suki_actions acts;
        suki_rules_actions_init(&acts);
        if (suki_event_parse(argv[2], strlen(argv[2]), &lim, 0, &ev, &err) <
                0 ||
            suki_rules_on_event(set, ev, NULL, ev->at_ms, &acts, &err) < 0) {
            printf("error: %s\n", err.msg);
            rc = 1;
        }
        for (size_t i = 0; i < acts.n; i++) {
            char when[40];
            if (acts.v[i].kind == SUKI_ACTION_CANCEL) {
                printf("CANCEL %s\n", acts.v[i].prefix);
                continue;
            }
            suki_time_format_rfc3339(acts.v[i].due_ms, when, sizeof(when));
            printf("SCHEDULE %s %s\n", acts.v[i].key, when);
        }
        suki_rules_actions_clear(&acts);
        suki_event_free(ev);
    }
    suki_rules_free(set);
    return rc;
}
