/* heartbeat.h - each sukid publishes who it is and how its transports are
 * doing in Redis, so that `sukictl status` (another process) can show live
 * daemons and open circuit breakers. */
#ifndef SUKI_HEARTBEAT_H
#define SUKI_HEARTBEAT_H

struct suki_daemon;
struct suki_heartbeat;

/* Seconds a heartbeat stays visible without a refresh. */
#define SUKI_HEARTBEAT_TTL_S 10

/* How often the housekeeping tick (main.c) publishes. */
#define SUKI_HEARTBEAT_PERIOD_MS 2000

/* Publish P:daemon:<consumer> on D->redis (main.c's housekeeping tick
 * calls suki_heartbeat_publish every SUKI_HEARTBEAT_PERIOD_MS). D is
 * borrowed and must outlive the heartbeat. Never NULL. */
struct suki_heartbeat *suki_heartbeat_new(struct suki_daemon *D);
/* Publish now (when Redis comes up), not only at the next tick: sukictl
 * status counts a sukid without a heartbeat as not running. NULL-safe. */
void suki_heartbeat_publish(struct suki_heartbeat *hb);
/* Remove our entry (best effort, if Redis is up) and stop. NULL-safe. */
void suki_heartbeat_free(struct suki_heartbeat *hb);

#endif
