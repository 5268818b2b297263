/* store/scripts.h - the Redis scripts, kept as lib/store/NAME.lua and
 * embedded at build time (embed.sh). Each script's file says its KEYS, ARGV
 * and reply. The daemon loads them by SHA (redis.h, suki_redis_eval);
 * sukictl sends them with EVAL. */
#ifndef SUKI_STORE_SCRIPTS_H
#define SUKI_STORE_SCRIPTS_H

extern const char suki_lua_campaign_claim[];
extern const char suki_lua_chart_add[];
extern const char suki_lua_campaign_outcome[];
extern const char suki_lua_campaign_pause[];
extern const char suki_lua_campaign_release[];
extern const char suki_lua_campaign_renew[];
extern const char suki_lua_campaign_summary[];
extern const char suki_lua_campaign_take[];
extern const char suki_lua_campaign_walk[];
extern const char suki_lua_ctl_campaign_control[];
extern const char suki_lua_ctl_campaign_create[];
extern const char suki_lua_ctl_campaign_retry_chunk[];
extern const char suki_lua_ctl_campaign_retry_done[];
extern const char suki_lua_ctl_intake_replay[];
extern const char suki_lua_ctl_jobs_cancel[];
extern const char suki_lua_ops_campaigns[];
extern const char suki_lua_ops_charts[];
extern const char suki_lua_ops_client[];
extern const char suki_lua_ops_job[];
extern const char suki_lua_ops_jobs_page[];
extern const char suki_lua_ops_overview[];
extern const char suki_lua_http_events[];
extern const char suki_lua_inbound_apply[];
extern const char suki_lua_inbound_poll[];
extern const char suki_lua_intake_apply[];
extern const char suki_lua_intake_lists[];
extern const char suki_lua_intake_recover[];
extern const char suki_lua_intake_trim[];
extern const char suki_lua_report_fold[];
extern const char suki_lua_report_plan[];
extern const char suki_lua_sched_claim[];
extern const char suki_lua_sched_ensure[];
extern const char suki_lua_sched_renew[];
extern const char suki_lua_sched_settle[];
extern const char suki_lua_unsubscribe[];

#endif
