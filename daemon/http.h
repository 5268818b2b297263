/* http.h - sukid's small HTTP server (libevent evhttp on the daemon loop).
 *
 *   GET  /metrics   Prometheus text format (gauges refreshed from Redis
 *                   every 5 s without blocking the loop)
 *   GET  /healthz   200 "ok" when Redis is reachable and the loop turns,
 *                   503 with the reason otherwise
 *   GET  /u/TOKEN   a page with a button that POSTs to the same URL
 *                   (GET alone changes nothing)
 *   POST /u/TOKEN   RFC 8058 one-click unsubscribe: 200, no redirect, no
 *                   cookies; a bad token is 400 and changes nothing
 *
 * Requests are small by design: headers are capped at 8 KiB, bodies at
 * 4 KiB and idle connections time out after 10 s. */
#ifndef SUKI_HTTP_H
#define SUKI_HTTP_H

#include "util.h"

struct suki_daemon;
struct suki_http;
struct evhttp_request;

/* Answers one request of a listener made by suki_http_listener_new. */
typedef void (*suki_http_handler)(struct evhttp_request *req, void *arg);

/* Bind http.listen of D->conf (must not be "") and start serving on
 * D->base. D is borrowed and must outlive the server. Returns owned, or
 * NULL with err filled when the address cannot be parsed or bound (the
 * caller refuses to start, as a web server would) or the configured
 * unsubscribe secret is too short. */
struct suki_http *suki_http_new(struct suki_daemon *D, struct suki_err *err);

/* Another listener on listen ("HOST:PORT"; ":PORT" is 127.0.0.1) with
 * the same connection limit, deadlines and accounting as the public one
 * (http.max_connections, http.request_timeout, each counted on its own),
 * bodies up to max_body (larger: 413), every request handed to fn with
 * arg. what names it in logs. Free with suki_http_free, tick with
 * suki_http_tick (only the sweep applies). NULL with err filled. */
struct suki_http *suki_http_listener_new(struct suki_daemon *D,
                                         const char *what, const char *listen,
                                         size_t max_body, suki_http_handler fn,
                                         void *arg, struct suki_err *err);

/* Pick up D->conf after a reload: a new unsubscribe secret applies at
 * once; a changed listen address needs a restart (logged). */
void suki_http_reload(struct suki_http *h);
/* The housekeeping tick (main.c, every SUKI_TICK_MS): note the loop is
 * turning (for /healthz), fetch the unsubscribe secret, refresh the
 * gauges every few seconds. */
void suki_http_tick(struct suki_http *h);

/* Stop listening, drop open connections and free, before D->redis: the
 * server's calls still pending there are cancelled. NULL-safe. */
void suki_http_free(struct suki_http *h);

/* The port actually bound (useful with port 0). */
int suki_http_port(const struct suki_http *h);

#endif
