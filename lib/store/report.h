/* report.h - what the monthly report counters are kept under (the month
 * bucket of an instant, the key of a manager-month), and the figures an
 * event adds (a deal's amount in centavos). Shared by the intake, the
 * scheduler's settle, the report job and sukictl. */
#ifndef SUKI_STORE_REPORT_H
#define SUKI_STORE_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Counters stay this long after their last write (400 days): last year's
 * month is still there for a comparison, and Redis does not grow forever. */
#define SUKI_REPORT_TTL_S (400 * 86400)

/* "YYYY-MM" of the local date of ms in tz into out[8]. Returns 0, or
 * -EINVAL for an unknown zone. */
int suki_report_month(int64_t ms, const char *tz, char out[8]);

/* Strict "YYYY-MM" (month 01..12, year 1970..9999). Returns 0 or -EINVAL. */
int suki_report_parse_month(const char *s, int *year, int *mon);

/* The month before / after year-mon, "YYYY-MM", into out[8]. */
void suki_report_prev_month(int year, int mon, char out[8]);
void suki_report_next_month(int year, int mon, char out[8]);

/* A deal's amount (a JSON number or a decimal string such as "12500.50")
 * in centavos, rounded. Returns false for anything else. */
bool suki_report_amount_cents(const char *s, int64_t *cents);

/* ---- the report of a manager-month (JSON) --------------------------- */

struct json_t;

/* A report object from the counter hash's fields (field, value pairs,
 * borrowed): {"manager", "month", "events": {type: count}, "deals_won",
 * "deals_won_amount", "deals_lost", "deals_lost_amount",
 * "complaints_opened", "complaints_resolved", "complaints_open",
 * "resolve_hours_avg", "reminders_sent", "campaign_sent", "unsubscribes",
 * "bounces", "contracts_ending": []} plus the internal sums the roll-up
 * needs. Returns owned. */
struct json_t *suki_report_new(const char *manager, const char *month,
                               const char *const *kv, size_t n);
/* Add one report's figures into sum (a report object too; its
 * contracts_ending gets one's). */
void suki_report_add(struct json_t *sum, const struct json_t *one);
/* Drop the internal sums: what --json and templates show. */
void suki_report_finish(struct json_t *r);

struct redisReply;
/* The reports of month, manager -> report (owned), from an HGETALL reply
 * of its counter hash (fields "<counter> <manager>"); with only, just that
 * manager's, empty if it has no figures. */
struct json_t *suki_report_split(const struct redisReply *h, const char *month,
                                 const char *only);

/* A contract ending: when job (a stored renewal job, key and body) was
 * triggered by a contract.* event whose data.ends_at lies in [from, to),
 * fills client, contract (data.contract, or "") and ends_at (ms) and
 * returns true. The strings are owned by the caller. */
bool suki_report_contract(const char *key, const char *body, int64_t from,
                          int64_t to, char **client, char **contract,
                          int64_t *ends_at);

#endif
