/* event.h - parsing and validating client events (JSON, see DESIGN). */
#ifndef SUKI_EVENT_H
#define SUKI_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct suki_event_limits {
    size_t max_size; /* bytes; larger input is refused */
    int max_depth;   /* nesting depth of the document; default 32 */
};

/* A validated event. Everything is owned by the event. */
struct suki_event {
    char *id;         /* producer's id or NULL */
    char *type;       /* dotted lowercase, e.g. "meeting.held" */
    char *client;     /* client id */
    char *manager;    /* top-level manager or NULL */
    int64_t at_ms;    /* "at", or receive time when absent */
    int64_t order_ms; /* what orders it against other events: at, but
                         not later than its arrival (0: at); set by the
                         intake */
    json_t *root;     /* the whole document (one reference); NULL for an
                         event built by suki_event_new */
    json_t *data;     /* "data" object (maybe empty): borrowed from root, or
                         one reference of its own when root is NULL */
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

/* The parts of an event, for suki_event_new(). All borrowed. */
struct suki_event_parts {
    const char *type;    /* required: dotted lowercase */
    const char *client;  /* required, not empty */
    const char *id;      /* or NULL */
    const char *manager; /* or NULL ("" counts as none) */
    int64_t at_ms;       /* UTC epoch ms */
    json_t *data;        /* an object, or NULL for an empty one */
};

/* Build an event from its parts, without a JSON text round trip (a job's
 * stored event): the checks of suki_event_parse on the members (type
 * syntax, client present, id not empty, string length and control
 * characters, data an object). On success returns 0 and *out (owned by the
 * caller; it takes its own reference on p->data, which it shares: do not
 * change data afterwards). On bad parts returns -EINVAL with the reason in
 * err. The event has no root document (nothing is built that is not
 * needed); suki_event_dump of it builds an event document with these
 * members ("at" in RFC 3339). */
int suki_event_new(const struct suki_event_parts *p, struct suki_event **out,
                   struct suki_err *err);

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
