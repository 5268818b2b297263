# dispatch area: appends to the variables set up in Makefile.am
# Message delivery (daemon/deliver/, one public header deliver.h): the
# front, two lane backends (worker threads, the delivery agent's proxy),
# one file per transport, the agent process and its wire format.
libsukicore_la_SOURCES += daemon/deliver/deliver.h \
	daemon/deliver/front.c daemon/deliver/lane.h daemon/deliver/core.c \
	daemon/deliver/thread.c daemon/deliver/transport.h \
	daemon/deliver/smtp.c daemon/deliver/http.c daemon/deliver/spool.c \
	daemon/deliver/proxy.c daemon/deliver/agent.c \
	daemon/deliver/wire.c daemon/deliver/wire.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_dispatch
TESTS += tests/unit/check_dispatch
tests_unit_check_dispatch_SOURCES = tests/unit/check_dispatch.c
tests_unit_check_dispatch_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_dispatch_LDADD = $(UNIT_LIBS)
# the delivery agent's frames (daemon/deliver/wire.h)
check_PROGRAMS += tests/unit/check_wire
TESTS += tests/unit/check_wire
tests_unit_check_wire_SOURCES = tests/unit/check_wire.c
tests_unit_check_wire_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_wire_LDADD = $(UNIT_LIBS)
endif

# Integration: a small client that sends through suki_dispatch and prints one
# line per result, driven by shell scripts against real servers.
check_PROGRAMS += tests/integration/dispatch_client
tests_integration_dispatch_client_SOURCES = tests/integration/dispatch_client.c
tests_integration_dispatch_client_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
tests_integration_dispatch_client_LDADD = libsukicore.la $(DEPS_LIBS)

TESTS += tests/integration/dispatch_smtp.sh \
	tests/integration/dispatch_http.sh \
	tests/integration/dispatch_spool.sh \
	tests/integration/agent_kill.sh
EXTRA_DIST += tests/integration/agent_kill.sh \
	tests/integration/dispatch_smtp.sh \
	tests/integration/dispatch_http.sh \
	tests/integration/dispatch_spool.sh \
	tests/integration/dispatch_lib.sh \
	tests/integration/smtp_server.py \
	tests/integration/http_server.py

# Benchmark (built with the tree so it keeps compiling; run by hand with
# bench/run-smtp.sh, never by make check)
noinst_PROGRAMS += bench/bench_smtp
bench_bench_smtp_SOURCES = bench/bench_smtp.c
bench_bench_smtp_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
bench_bench_smtp_LDADD = libsukicore.la $(DEPS_LIBS)
EXTRA_DIST += bench/run-smtp.sh bench/README-smtp.md

# The whole daemon against a slow SMTP server: the loop keeps turning.
TESTS += tests/integration/dispatch_slow.sh
EXTRA_DIST += tests/integration/dispatch_slow.sh
