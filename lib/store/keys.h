/* keys.h - the Redis key schema: every key suki keeps, how its name is
 * built from the configured prefix P (redis.prefix, default "suki"), and the
 * job key and job body formats.
 *
 * This list is the one place the schema is written down. C builds names
 * with the functions below (docs/ARCHITECTURE.md has the same table with
 * every field); scripts get their key names (or P) in KEYS
 * and ARGV, except where a script spells a name itself: that is noted as
 * "Lua:" next to the key, and a rename must change those files too.
 *
 *   name                  type    holds                              TTL
 *   P:jobs                zset    job keys, scored by due time (epoch ms;
 *                                 while claimed: the lease end)      none
 *                                 Lua: intake-apply.lua
 *   P:job:<client>        hash    job key -> job body (below); client
 *                                 percent-encoded as in job keys     none
 *                                 Lua: intake-apply.lua; sched-*.lua and
 *                                 ctl-jobs-cancel.lua get "P:job:"
 *   P:dead                stream  dead letters (kind, reason, payload)
 *                                 trimmed by intake-trim.lua         none
 *                                 Lua: intake-apply.lua
 *   P:lasterr             hash    stream entry id -> why it could not be
 *                                 applied (cleared on ack)           none
 *                                 Lua: intake-apply.lua
 *   P:stats               hash    event counters (applied, duplicate,
 *                                 invalid, poison)                   none
 *                                 Lua: intake-apply.lua
 *   P:client-events       hash    client id -> events applied        none
 *                                 Lua: intake-apply.lua
 *   P:timeline:<id>       list    the client's recent history, newest
 *                                 first, at most console.timeline
 *                                 entries, each compact JSON: an applied
 *                                 event {"k":"e","t":type,"at":ms,
 *                                 "id":event id,"s":summary (<= 80 bytes)}
 *                                 (id, s when the event has them); a
 *                                 message sent {"k":"m","r":rule,"to":
 *                                 recipient,"at":ms,"mid":Message-ID}
 *                                 SUKI_TIMELINE_TTL_S (90 days, renewed
 *                                 by each write)
 *                                 Lua: intake-apply.lua; sched-settle.lua
 *                                 and ops-client.lua get the name
 *   P:suppressed          set     lower-cased addresses no campaign
 *                                 mails                              none
 *                                 Lua: intake-apply.lua
 *   P:subscribed          hash    client id -> when its latest
 *                                 consent.subscribed was applied (s): an
 *                                 unsubscribe link issued before is refused
 *                                 none; Lua: intake-apply.lua,
 *                                 unsubscribe.lua
 *   P:seen:<event id>     string  the stream id that applied the event
 *                                 (duplicate check)     intake.dedup_window
 *                                 Lua: intake-apply.lua
 *   P:client:<id>         hash    the client's profile fields, each with
 *                                 "at:<field>", the at of the event that
 *                                 set it (events apply by their at) none
 *                                 Lua: intake-apply.lua, campaign-take.lua,
 *                                 campaign-walk.lua
 *   P:at:<rule:client:subject:>  string  the at (ms) of the newest event
 *                                 that cancelled that subject's (or, with
 *                                 "rule:client:", the rule's) reminders:
 *                                 an older trigger arriving later does not
 *                                 schedule        intake.order_window
 *                                 Lua: intake-apply.lua
 *   P:sent:<message id>   string  sent marker: the message went out;
 *                                 its value is the record of what it was
 *                                 about, read when a reply or a bounce
 *                                 names it: the job key (rule:client:
 *                                 subject:slot), for campaign mail
 *                                 ~campaign:<client>:<name>: (job key
 *                                 syntax, SUKI_CAMPAIGN_RULE); "1" for
 *                                 what is about no client
 *                                 SUKI_KEY_SENT_TTL_S (30 days)
 *                                 Lua: campaign-take.lua, campaign-walk.lua,
 *                                 campaign-outcome.lua, sched-settle.lua
 *   P:daemon:<consumer>   hash    heartbeat: pid, version, started,
 *                                 updated, counters, transports
 *                                 SUKI_HEARTBEAT_TTL_S (heartbeat.h)
 *   P:daemons             zset    consumer -> its latest heartbeat (ms):
 *                                 the live daemons without a SCAN; older
 *                                 than an hour removed by the heartbeat none
 *   P:chart:<minute>      hash    the console's charts: events, sent,
 *                                 failed, retried, late_n, late_sum_ms,
 *                                 late_max_ms of every daemon in that
 *                                 minute (epoch ms / 60000)  SUKI_CHART_TTL_S
 *                                 Lua: ops-charts.lua gets "P:chart:"
 *   P:jobs-held           zset    held jobs (sukictl jobs hold, the
 *                                 console): job key -> its P:jobs score,
 *                                 body kept in P:job:<client>        none
 *   P:csession:<sha256>   hash    a console session (user, csrf) by the
 *                                 SHA-256 of its cookie   console session TTL
 *   P:cfail:<user|ip>     string  failed console logins   15 minutes
 *   P:secret              string  the unsubscribe secret shared by every
 *                                 sukid on this Redis                none
 *   P:campaigns           set     campaign names                     none
 *   P:campaign:<name>     hash    the campaign: state, counters, settings
 *                                 none; Lua: campaign-claim.lua
 *   P:cledger:<name>      hash    client id -> outcome               none
 *   P:cpending:<name>     set     client ids queued, waiting for a runner
 *   P:cinflight:<name>    set     client ids taken by the runner holding
 *                                 the lease                          none
 *   P:held:<rcpt>         hash    digests: job key -> held item (JSON:
 *                                 c client, n name, r rule, s subject,
 *                                 d due, h held at, data fields)    none
 *                                 Lua: intake-apply.lua
 *   P:held-by:<client>    hash    "job key\nrcpt" -> 1: the client's held
 *                                 items, for unless                  none
 *                                 Lua: intake-apply.lua
 *   P:held-to             set     recipients with held items         none
 *                                 Lua: intake-apply.lua
 *   digest jobs           job     key ~digest:~digest:<rcpt>:<slot> in
 *                                 P:job:~digest and P:jobs; slot is the
 *                                 local date (YYYY-MM-DD) or now-<ms>
 *   P:report:<YYYY-MM>    hash    the monthly report counters of that
 *                                 month (local month in
 *                                 reports.monthly.timezone), fields
 *                                 "<counter> <manager>" (manager "" for
 *                                 clients without one): e:<type> events
 *                                 applied by type; won, won_cents, lost,
 *                                 lost_cents (deals); c_opened,
 *                                 c_resolved, c_open (opened that month,
 *                                 not resolved yet), c_ttr_ms, c_ttr_n
 *                                 (time to resolve, summed, and how many);
 *                                 unsub; sent_rem, sent_camp (reminders,
 *                                 campaign mail sent)
 *                                 SUKI_REPORT_TTL_S (store/report.h)
 *                                 Lua: report-fold.inc.lua (intake's
 *                                 counts), sched-settle.lua (ARGV),
 *                                 campaign-outcome.lua (ARGV)
 *   P:report-log          list    intake's counts not folded into the
 *                                 month hashes yet, one entry per event
 *                                 (format: report-fold.inc.lua); folded
 *                                 4,096 at a time by intake-apply.lua,
 *                                 all of it by each reader of the
 *                                 counters (report-plan.lua,
 *                                 report-fold.lua)                   none
 *   P:report-tickets:<gen>  hash  complaints' tickets: "<client>\n<ticket>"
 *                                 -> "o\nomonth\nomgr\nr\nrmonth\nrmgr"
 *                                 (opened and resolved at, ms, and whose
 *                                 counters): time to resolve and still
 *                                 open, whichever arrives first; gen =
 *                                 now / 200 days, read with the one before
 *                                 SUKI_REPORT_TTL_S; Lua:
 *                                 report-fold.inc.lua
 *   P:report-sent:<YYYY-MM>  string  that month's report planner ran
 *                                 (no sukid schedules it again)
 *                                 SUKI_REPORT_TTL_S
 *   report jobs           job     key ~report:~report:<rcpt>:<YYYY-MM> in
 *                                 P:job:~report and P:jobs (rcpt: a
 *                                 manager, or "*" + a roll-up address; the
 *                                 body's "rp": the report), made by the
 *                                 month's planner ~report:~report:~plan:
 *                                 <YYYY-MM>; sukictl report --send's slot
 *                                 is <YYYY-MM>.now-<ms>
 *   P:cheld:<name>        set     client ids a dead runner left in flight,
 *                                 held until its transfers must have
 *                                 ended (campaign hash's held_until)  none
 *   P:clock:<name>        string  the runner lease: its token
 *                                 SUKI_CAMPAIGN_LEASE_MS (campaign.h)
 *                                 Lua: campaign-claim.lua
 *
 *   P:inbound             hash    the IMAP poller's state: uidvalidity,
 *                                 last (highest UID done), polled_at,
 *                                 ok_at, error, done_at, uids, n:<kind>,
 *                                 suppressed, holder (daemon/inbound.h)
 *                                 none; Lua: inbound-poll.lua,
 *                                 inbound-apply.lua
 *   P:inbound-lease       string  the poller's lease token   2 x poll + 5s
 *
 *   P:events              stream  the intake stream, unless intake.stream
 *                                 names another                      none
 *
 * The stream's consumer group and the intake lists are named in the
 * configuration (intake.group, intake.lists). */
#ifndef SUKI_STORE_KEYS_H
#define SUKI_STORE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Names of the keys above, without "P:" (and without ":<id>"). */
#define SUKI_KEY_EVENTS "events"
#define SUKI_KEY_JOBS "jobs"
#define SUKI_KEY_JOB "job"
#define SUKI_KEY_DEAD "dead"
#define SUKI_KEY_LASTERR "lasterr"
#define SUKI_KEY_STATS "stats"
#define SUKI_KEY_CLIENT_EVENTS "client-events"
#define SUKI_KEY_TIMELINE "timeline"
/* A client quiet this long loses its timeline (each write renews it). */
#define SUKI_TIMELINE_TTL_S (90 * 86400)
/* Bytes of an event's data.summary kept in its timeline entry. */
#define SUKI_TIMELINE_SUMMARY 80
#define SUKI_KEY_SUPPRESSED "suppressed"
#define SUKI_KEY_SEEN "seen"
#define SUKI_KEY_CLIENT "client"
#define SUKI_KEY_SENT "sent"
#define SUKI_KEY_SUBSCRIBED "subscribed"
#define SUKI_KEY_DAEMON "daemon"
#define SUKI_KEY_SECRET "secret"
#define SUKI_KEY_DAEMONS "daemons"
#define SUKI_KEY_JOBS_HELD "jobs-held"
#define SUKI_KEY_CHART "chart"
/* A chart bucket lives a little over the hour the console shows. */
#define SUKI_CHART_TTL_S 7800
#define SUKI_KEY_CSESSION "csession"
#define SUKI_KEY_CFAIL "cfail"
#define SUKI_KEY_CAMPAIGNS "campaigns"
#define SUKI_KEY_CAMPAIGN "campaign"
#define SUKI_KEY_CLEDGER "cledger"
#define SUKI_KEY_CPENDING "cpending"
#define SUKI_KEY_CINFLIGHT "cinflight"
#define SUKI_KEY_CHELD "cheld"
#define SUKI_KEY_CLOCK "clock"
#define SUKI_KEY_INBOUND "inbound"
#define SUKI_KEY_INBOUND_LEASE "inbound-lease"

/* How long a sent marker stays: a message is not sent twice within it. */
#define SUKI_KEY_SENT_TTL_S (30 * 86400)
#define SUKI_KEY_HELD "held"
#define SUKI_KEY_HELD_BY "held-by"
#define SUKI_KEY_HELD_TO "held-to"
#define SUKI_DIGEST_RULE "~digest" /* rule and client part of a digest job */
#define SUKI_KEY_REPORT "report"
#define SUKI_KEY_REPORT_TICKETS "report-tickets"
#define SUKI_KEY_REPORT_LOG "report-log"
#define SUKI_KEY_REPORT_SENT "report-sent"
#define SUKI_REPORT_RULE "~report" /* rule and client part of a report job */
/* rule part of a campaign message's record (the P:sent value) */
#define SUKI_CAMPAIGN_RULE "~campaign"

/* "P:name". Returns owned. */
char *suki_key(const char *prefix, const char *name);
/* "P:kind:id" (id as given: callers pass what the schema says, e.g. a
 * message id or a campaign name). id "" gives "P:kind:", the prefix of
 * every such key (for a SCAN pattern or a script's ARGV). Returns owned. */
char *suki_key_id(const char *prefix, const char *kind, const char *id);
/* The same into buf[size]: returns the length, or -1 when it does not fit
 * (buf then holds a truncated name). For hot paths that build many. */
int suki_key_id_buf(char *buf, size_t size, const char *prefix,
                    const char *kind, const char *id);

#endif
