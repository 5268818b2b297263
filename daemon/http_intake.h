/* http_intake.h - POST /v1/events: events from webhooks into the intake
 * stream (DESIGN Part 3, "Events over HTTP").
 *
 * A body is one event (application/json), a JSON array of events, or JSON
 * lines (application/x-ndjson). Each event is checked by suki_event_parse
 * with the limits of the stream intake (the checks of sukictl push); the
 * body is added whole, by one script, or refused whole. */
#ifndef SUKI_HTTP_INTAKE_H
#define SUKI_HTTP_INTAKE_H

#include <stdbool.h>
#include <stddef.h>

struct evhttp_request;
struct suki_conf;
struct suki_daemon;

#define SUKI_HTTP_INTAKE_PATH "/v1/events"

/* Answer one request to SUKI_HTTP_INTAKE_PATH (any method). D is borrowed
 * and read live (tokens and limits follow a reload). owner names the
 * caller for suki_redis_cancel: the caller cancels owner's calls before it
 * frees the evhttp server; a cancelled request gets no answer. Call from
 * the evhttp request callback. */
void suki_http_intake_serve(struct suki_daemon *D, const void *owner,
                            struct evhttp_request *req);

/* The largest request body the listener must take for conf: intake.max_body
 * when the endpoint is on, else small (other_max). */
size_t suki_http_intake_max_body(const struct suki_conf *c, size_t other_max);

#endif
