/* curl_ev.h - a libcurl multi handle driven by a libevent base, after
 * curl's docs/examples/hiperfifo.c: CURLMOPT_SOCKETFUNCTION keeps one
 * persistent event per socket, CURLMOPT_TIMERFUNCTION one timer. Shared by
 * the delivery lanes and the IMAP poller, each on its own base. */
#ifndef SUKI_CURL_EV_H
#define SUKI_CURL_EV_H

#include <curl/curl.h>

struct event_base;
struct suki_curl_ev;

/* drain(arg) runs after each socket action and timeout: it reads the
 * finished transfers (curl_multi_info_read). Returns NULL when libcurl or
 * libevent cannot make their parts. */
struct suki_curl_ev *suki_curl_ev_new(struct event_base *base,
                                      void (*drain)(void *arg), void *arg);
/* The multi handle (owned by ce), for adding and removing transfers. */
CURLM *suki_curl_ev_multi(const struct suki_curl_ev *ce);
/* curl_multi_cleanup (which may close cached connections, calling back),
 * then the events it left. The easy handles are the caller's. */
void suki_curl_ev_free(struct suki_curl_ev *ce);

#endif
