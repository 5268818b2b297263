# tests/chaos: reproducers of the faults an outside review found (each
# failed before its fix) and fault-injection runs, against real servers.
CHAOS_TESTS = tests/chaos/recover_large.sh tests/chaos/sched_batch_large.sh \
	tests/chaos/settle_retry.sh tests/chaos/script_flush.sh tests/chaos/dns_slow.sh \
	tests/chaos/marker_refused.sh tests/chaos/clock_skew.sh \
	tests/chaos/http_flood.sh tests/chaos/soak.sh \
	tests/chaos/two_daemons_slow.sh tests/chaos/campaign_takeover_slow.sh \
	tests/chaos/campaign_takeover_unsent.sh tests/chaos/campaign_takeover_stall.sh \
	tests/chaos/lane_stale_fd.sh tests/chaos/agent_stuck.sh \
	tests/chaos/http_slowloris.sh tests/chaos/huge_events.sh
# fault runs on chaos_lib.sh's workload and checks
CHAOS_TESTS += tests/chaos/redis_kill.sh tests/chaos/redis_kill_everysec.sh \
	tests/chaos/redis_loading.sh tests/chaos/redis_sleep.sh \
	tests/chaos/smtp_outage.sh tests/chaos/spool_fault.sh \
	tests/chaos/redis_oom.sh tests/chaos/lease_lapsed.sh
TESTS += $(CHAOS_TESTS)
EXTRA_DIST += $(CHAOS_TESTS)
EXTRA_DIST += tests/chaos/fault_proxy.py tests/chaos/slowloris.py
# the workload and checks of the fault runs (redis_kill.sh and the others)
EXTRA_DIST += tests/chaos/chaos_lib.sh tests/chaos/producer.py \
	tests/chaos/chaos_check.py tests/chaos/aof_cut.py

# A wall clock moved by $SUKI_CLOCK_SHIFT seconds, preloaded into sukid and
# redis-server alike (never installed; no sanitizer: it goes into Redis).
check_LTLIBRARIES += tests/chaos/clockshift.la
tests_chaos_clockshift_la_SOURCES = tests/chaos/clockshift.c
tests_chaos_clockshift_la_CFLAGS = -std=gnu11 $(WARN_CFLAGS)
tests_chaos_clockshift_la_LDFLAGS = -module -avoid-version -shared \
	-rpath /nowhere
