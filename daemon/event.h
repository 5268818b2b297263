/* event.h - parsing and validating client events (JSON, see DESIGN). */
#ifndef SUKI_EVENT_H
#define SUKI_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct suki_event_limits {
    size_t max_size;  /* bytes; larger input is refused */
    int max_depth;    /* nesting depth of the document; default 32 */
};

/* A validated event. Everything is owned by the event. */
struct suki_event {
    char *id;        /* producer's id or NULL */
    char *type;      /* dotted lowercase, e.g. "meeting.held" */
    char *client;    /* client id */
    char *manager;   /* top-level manager or NULL */
    int64_t at_ms;   /* "at", or receive time when absent */
    json_t *root;    /* the whole document (one reference) */
    json_t *data;    /* borrowed from root: "data" object (maybe empty) */
    char scratch[64]; /* formatting buffer for suki_event_data_str */
};

/* Parse buf[0..len) (need not be NUL-terminated). now_ms is used when "at"
 * is absent. On success returns 0 and *out (owned by caller). On bad input
 * returns -EINVAL (or -EMSGSIZE for oversize) with a short, stable reason in
 * err, e.g. "not JSON: ...", "not an object", "missing type", "bad at: ...",
 * "too large", "invalid UTF-8", "nesting too deep". */
int suki_event_parse(const char *buf, size_t len,
                     const struct suki_event_limits *lim, int64_t now_ms,
                     struct suki_event **out, struct suki_err *err);
void suki_event_free(struct suki_event *ev);

/* data.FIELD as text: strings as they are, integers/reals/booleans
 * formatted (into ev->scratch, so valid until the next call); NULL when
 * absent, null, an object or an array. */
const char *suki_event_data_str(struct suki_event *ev, const char *field);

/* Profile fields this event sets (client.created/updated data fields name,
 * email, manager, locale, timezone, segment, tags (array joined with ","),
 * consent ("true"/"false"); plus top-level manager for any event). Calls
 * fn(field, value, arg) for each. Values that are of the wrong type are
 * skipped and reported through err_fn (may be NULL). */
void suki_event_profile_fields(const struct suki_event *ev,
                               void (*fn)(const char *field, const char *value,
                                          void *arg),
                               void *arg);

/* Serialize the event compactly (for storing with a job). Returns owned. */
char *suki_event_dump(const struct suki_event *ev);

#endif
