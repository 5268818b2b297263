/* fuzz_event.c - suki_event_parse on arbitrary bytes.
 *
 * Beyond not crashing: an accepted event must satisfy what event.h
 * promises (type and client present), and the two ways an event is stored
 * with a job - suki_event_dump of the parsed document, suki_event_new from
 * its parts, and a job body (suki_job_body's stored form) read by
 * suki_job_parse - must give back the same event. A job that reads back
 * differently from how it was scheduled would fire for the wrong client
 * or at the wrong time, or not at all. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "log.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct suki_event_limits lim = {65536, 32};
/* A dump is larger than its input (an "at" is added, escapes), so the
 * read-back may not be refused as too large. */
static const struct suki_event_limits lim_back = {1 << 22, 32};

static void same_or_die(const char *what, const char *a, const char *b)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
        fprintf(stderr, "round trip changed %s: '%s' -> '%s'\n", what,
                a ? a : "(null)", b ? b : "(null)");
        abort();
    }
}

static void same_event(const struct suki_event *a, const struct suki_event *b)
{
    same_or_die("type", a->type, b->type);
    same_or_die("client", a->client, b->client);
    same_or_die("id", a->id, b->id);
    same_or_die("manager", a->manager, b->manager);
    if (a->at_ms != b->at_ms) {
        fprintf(stderr, "round trip changed at: %lld -> %lld\n",
                (long long)a->at_ms, (long long)b->at_ms);
        abort();
    }
    if (!json_equal(a->data, b->data)) {
        fprintf(stderr, "round trip changed data\n");
        abort();
    }
}

/* Parse a dump; it was made from a valid event so it must be valid. */
static struct suki_event *reparse(const char *dump, const char *how)
{
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    if (!dump) {
        fprintf(stderr, "%s: dump failed\n", how);
        abort();
    }
    if (suki_event_parse(dump, strlen(dump), &lim_back, 0, &ev, &err) != 0) {
        fprintf(stderr, "%s: dump does not parse back: %s\n%s\n", how, err.msg,
                dump);
        abort();
    }
    return ev;
}

/* The job body schedule() writes for an event (suki_job_body), read back
 * as the scheduler does. */
static void job_round_trip(const struct suki_event *ev)
{
    struct suki_job_fields f = {.due_ms = 1796032800000LL, .event = ev};
    char *body = suki_job_body(&f);
    char *key = suki_job_key("fuzz-rule", ev->client, "", "");
    struct suki_jobdata jd;
    struct suki_err err = {{0}};
    if (!body || suki_job_parse(key, body, strlen(body), &jd, &err) != 0) {
        fprintf(stderr, "job of an accepted event does not read back: %s\n%s\n",
                err.msg, body ? body : "(no body)");
        abort();
    }
    if (!jd.event) {
        fprintf(stderr, "job read back without its event\n");
        abort();
    }
    same_event(ev, jd.event);
    suki_job_clear(&jd);
    free(key);
    free(body);
}

static void count_field(const char *field, const char *value, void *arg)
{
    (void)field;
    (void)value;
    ++*(int *)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct suki_event *ev = NULL;
    struct suki_err err = {{0}};
    suki_log_level = LOG_CRIT; /* skipped profile fields warn */
    int rc = suki_event_parse((const char *)data, size, &lim, 1700000000000LL,
                              &ev, &err);
    if (rc != 0) {
        if (ev || !err.msg[0]) {
            fprintf(stderr, "refused without a reason or with an event\n");
            abort();
        }
        return 0;
    }
    if (!ev->type || !*ev->type || !ev->client || !*ev->client ||
        !json_is_object(ev->data) || (ev->manager && !*ev->manager)) {
        fprintf(stderr, "accepted an event event.h calls invalid\n");
        abort();
    }

    char *dump = suki_event_dump(ev);
    struct suki_event *back = reparse(dump, "parsed");
    same_event(ev, back);
    suki_event_free(back);
    free(dump);

    struct suki_event_parts p = {ev->type,    ev->client, ev->id,
                                 ev->manager, ev->at_ms,  ev->data};
    struct suki_event *built = NULL;
    /* event.h: the same checks as the parse, so the parts of an accepted
     * event are accepted too. */
    if (suki_event_new(&p, &built, &err) != 0) {
        fprintf(stderr, "parts of a parsed event refused: %s\n", err.msg);
        abort();
    }
    dump = suki_event_dump(built);
    back = reparse(dump, "built");
    same_event(built, back);
    suki_event_free(back);
    free(dump);
    suki_event_free(built);

    job_round_trip(ev);

    const char *key;
    json_t *v;
    json_object_foreach(ev->data, key, v)
    {
        const char *s = suki_event_data_str(ev, key);
        if (s && (json_is_object(v) || json_is_array(v) || json_is_null(v)))
            abort(); /* event.h: NULL for those */
    }
    int n = 0;
    suki_event_profile_fields(ev, count_field, &n);
    suki_event_free(ev);
    return 0;
}
