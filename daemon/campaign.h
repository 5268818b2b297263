/* campaign.h - promotional campaigns: a template sent to an audience at a
 * rate, with a ledger of every recipient, across restarts and daemons.
 *
 * Storage (docs/ARCHITECTURE.md, P = redis.prefix):
 *   P:campaigns          set of campaign names
 *   P:campaign:<name>    hash: settings, state, cursor and counters
 *   P:cledger:<name>     hash client -> queued | sent | failed:<reason> |
 *                        skipped:<reason>
 *   P:cpending:<name>    queued clients that no runner has taken
 *   P:cinflight:<name>   queued clients taken by the runner holding the
 *                        lease (moved to cheld when a new runner starts:
 *                        nobody queued is ever forgotten)
 *   P:cheld:<name>       what earlier runners left in flight, moved to
 *                        cpending once held_until (hash field, Redis ms:
 *                        take time + transport timeout + margin) passed,
 *                        so a transfer the dead runner's agent still has
 *                        ends (and sets its P:sent) before a resend
 *   P:clock:<name>       lease of the daemon running it (SET NX PX, renewed
 *                        with a token check)
 *   P:sent:<message id>  sent markers shared with the scheduler
 *   P:suppressed         set of lower-cased addresses never mailed
 *
 * Every sukid runs a campaign manager: four times a second it looks for
 * running campaigns without a lease and takes the lease of any it finds.
 * The runner first sends what an earlier runner queued but never settled
 * (the pending and in-flight sets, taken with SPOP so each once), then
 * walks the audience with SCAN/SSCAN: one Lua script
 * takes the next page, records a ledger entry for each recipient (queued or
 * skipped, with the reason) and moves the cursor, so the cursor never passes
 * anyone unrecorded and the audience is never held in memory. Messages go
 * to the dispatcher at priority 1 (reminders first) at min(campaign rate,
 * transport rate); each outcome is recorded with its P:sent marker in one
 * script, which also pauses the campaign when the error rate passes
 * campaigns.error_threshold after error_min outcomes. The runner re-reads
 * the state with each lease renewal (every 250 ms), so pause, resume and
 * cancel take effect within a second. */
#ifndef SUKI_CAMPAIGN_H
#define SUKI_CAMPAIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct suki_daemon;
struct suki_campaigns;

/* Lease length and renewal period of a campaign runner. */
#define SUKI_CAMPAIGN_LEASE_MS 5000
#define SUKI_CAMPAIGN_RENEW_MS 250
/* A runner hands no message to a transport once its lease may have ended:
 * its dispatch gate closes this long before the lease it last renewed. */
#define SUKI_CAMPAIGN_GATE_MARGIN_MS 1000
/* What a dead runner left in flight is held for its transport's timeout
 * plus this before it is sent again (its agent may still be sending). */
#define SUKI_CAMPAIGN_HOLD_MARGIN_MS 10000
/* Attempts for a message that keeps failing temporarily. */
#define SUKI_CAMPAIGN_MAX_ATTEMPTS 3
/* Longest campaign name. */
#define SUKI_CAMPAIGN_NAME_MAX 64

/* Called once a stop has finished. */
typedef void (*suki_campaigns_done_cb)(void *arg);

/* Create the campaign manager on D (borrowed; must outlive it). It reads
 * D->conf, D->templates, D->dispatch and D->redis at each use, so a reload
 * needs no call here. Starts looking for work when Redis is up. Never
 * NULL. */
struct suki_campaigns *suki_campaigns_new(struct suki_daemon *D);

/* Graceful stop: take no new recipients; messages in flight finish and are
 * recorded within D->conf->shutdown_timeout_ms; leases are released so
 * another daemon can continue at once. done(arg) is called once from the
 * loop, never from inside this call. */
void suki_campaigns_stop(struct suki_campaigns *c, suki_campaigns_done_cb done,
                         void *arg);

/* Free (NULL is fine), before D->redis: the manager's calls still pending
 * there are cancelled. Messages still waiting for a dispatch or Redis
 * callback are orphaned and free themselves; their recipients stay queued
 * in the ledger and are sent by the next runner. */
void suki_campaigns_free(struct suki_campaigns *c);

/* ---- pure helpers (sukictl and the unit tests use them) ---- */

enum suki_audience_kind {
    SUKI_AUDIENCE_ALL,
    SUKI_AUDIENCE_SEGMENT, /* profile field segment equals value */
    SUKI_AUDIENCE_TAG,     /* value is one of the comma-separated tags */
    SUKI_AUDIENCE_SET,     /* members of the Redis set named value */
};

/* Parse "all", "segment=X", "tag=X" or "set=KEY" (borrowed). On 0, *kind is
 * set and *value is owned (NULL for all). Returns -EINVAL with err filled
 * for anything else, an empty X or control characters. */
int suki_audience_parse(const char *s, enum suki_audience_kind *kind,
                        char **value, struct suki_err *err);

/* Name of a kind: "all", "segment", "tag", "set" (static). */
const char *suki_audience_kind_name(enum suki_audience_kind k);

/* True when name (borrowed) is a valid campaign name:
 * [A-Za-z0-9][A-Za-z0-9._-]*, at most SUKI_CAMPAIGN_NAME_MAX bytes. */
bool suki_campaign_name_ok(const char *name);

/* Fraction (0..1) of a keyspace that SCAN/SSCAN has walked when it returned
 * cursor (Redis iterates in reverse-binary order, so the reversed cursor
 * counts up). 0 for "0" at the start; callers know when the walk is done. */
double suki_campaign_scan_fraction(uint64_t cursor);

/* True when an error rate of failed out of total outcomes pauses the
 * campaign: total >= min_total and failed / total > threshold. */
bool suki_campaign_error_trips(uint64_t failed, uint64_t total,
                               uint64_t min_total, double threshold);

#endif
