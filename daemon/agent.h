/* agent.h - the delivery agent: a child process of sukid that runs the
 * dispatcher's transfers, and finishes them when sukid dies.
 *
 * Why a process: a message whose final "." the server has taken, but whose
 * "250" has not reached sukid's bookkeeping yet, is in doubt. If sukid is
 * killed then, the next runner cannot tell it went out and sends it again.
 * The agent owns the connections: when sukid dies (kill -9, a crash) it
 * keeps going until every transfer it holds is over, sets the sent marker
 * (suki_outmsg.sent_marker) of each message a server took, and only then
 * exits. The next runner finds the marker and does not send again. This is
 * Postfix's split between qmgr and its smtp(8) delivery agents.
 *
 * The split is at the lane interface (dispatch_thread.h): the front (queues,
 * buckets, breakers, callbacks) stays in sukid; a lane created through the
 * agent is a proxy whose transfers run on a real lane thread in the agent.
 * Messages and outcomes travel over a socketpair as length-prefixed frames.
 *
 * If the agent dies while sukid lives, its transfers come back TEMPFAIL
 * (they may have gone out: at-least-once, as before) and sukid starts a new
 * agent. Everything here runs on sukid's loop. */
#ifndef SUKI_AGENT_H
#define SUKI_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "util.h"

struct event_base;
struct suki_agent;
struct hub;
struct lane;
struct xq;
struct tconf;

/* Fork the agent. *confp (borrowed, read at each start) gives the Redis
 * settings for the sent markers; base is sukid's loop. Call it while this
 * process has no other threads. Returns owned, or NULL with err filled. */
struct suki_agent *suki_agent_new(struct event_base *base,
                                  struct suki_conf *const *confp,
                                  struct suki_err *err);

/* Close the channel (the agent exits once it holds nothing) and wait up to
 * wait_ms for it; call after suki_dispatch_free. Returns 0 when it exited
 * with status 0, else -1 (logged). NULL is fine. */
int suki_agent_free(struct suki_agent *a, int64_t wait_ms);

/* sukid reloaded *confp: pass its Redis settings and log level on. */
void suki_agent_reload(struct suki_agent *a);

/* The agent's pid, or 0 while none runs. */
pid_t suki_agent_pid(const struct suki_agent *a);

/* ---- for the dispatcher (dispatch_thread.h) ---- */

/* A lane whose transfers the agent runs. Never NULL. */
struct lane *suki_agent_lane_new(struct suki_agent *a, struct hub *hub,
                                 struct suki_err *err);
void suki_agent_lane_post(struct lane *l, struct xq *batch);
void suki_agent_lane_stop(struct lane *l, bool abort);
/* Wait (bounded) until the agent has given back everything l held, then
 * free l. Only at shutdown: it reads the channel synchronously. */
void suki_agent_lane_join(struct lane *l);
/* Settings c are being freed: the agent may forget them. */
void suki_agent_conf_gone(struct suki_agent *a, struct tconf *c);

#endif
