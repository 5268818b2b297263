# service area: appends to the variables set up in Makefile.am

# scheduler: durable jobs, claiming with a lease, the fire path; sukictl
# jobs / cancel.
libsukicore_la_SOURCES += daemon/sched/sched.c daemon/sched/sched.h \
	daemon/sched/fire.c daemon/sched/fire.h
sukictl_SOURCES += ctl/ctl_jobs.c ctl/ctl_digest.c ctl/ctl_report.c
# intake: consumer group, validation, atomic apply, recovery, lists, trim
libsukicore_la_SOURCES += daemon/intake.c daemon/intake.h
sukictl_SOURCES += ctl/ctl_intake.c

# scheduler tests: unit (pure parts) and integration (real redis-server,
# real sukid, spool and SMTP transports).
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_sched
TESTS += tests/unit/check_sched
tests_unit_check_sched_SOURCES = tests/unit/check_sched.c
tests_unit_check_sched_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_sched_LDADD = $(UNIT_LIBS)
endif
TESTS += tests/integration/digest.sh tests/integration/report.sh tests/integration/report_send.sh tests/integration/sched_basic.sh tests/integration/sched_two.sh \
	tests/integration/sched_crash.sh tests/integration/sched_late.sh \
	tests/integration/sched_retry.sh tests/integration/sched_stop.sh
EXTRA_DIST += tests/integration/digest.sh tests/integration/report.sh tests/integration/report_send.sh tests/integration/report_events.py tests/integration/sched_basic.sh \
	tests/integration/sched_two.sh tests/integration/sched_crash.sh \
	tests/integration/sched_late.sh tests/integration/sched_retry.sh \
	tests/integration/sched_stop.sh tests/integration/sched_lib.sh tests/integration/sched_jobs.py
INTAKE_TESTS = tests/integration/intake_basic.sh \
	tests/integration/intake_badinput.sh tests/integration/intake_kill.sh \
	tests/integration/intake_two.sh tests/integration/intake_redis_restart.sh \
	tests/integration/intake_lists.sh tests/integration/intake_trim.sh \
	tests/integration/intake_poison.sh tests/integration/intake_rules.sh \
	tests/integration/intake_order.sh tests/integration/sukictl_intake.sh
TESTS += $(INTAKE_TESTS)
EXTRA_DIST += $(INTAKE_TESTS) tests/integration/lib.sh \
	tests/integration/sukitest.py bench/bench_intake.sh
