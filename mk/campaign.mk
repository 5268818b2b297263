# campaign area: HTTP server (/metrics, /healthz, unsubscribe), signed
# unsubscribe tokens, campaigns and their sukictl commands.
# Appends to the variables set up in Makefile.am.
libsukicore_la_SOURCES += \
	lib/unsub.c lib/unsub.h \
	daemon/http.c daemon/http.h \
	daemon/http_intake.c daemon/http_intake.h \
	daemon/campaign.c daemon/campaign.h
sukictl_SOURCES += ctl/ctl_campaign.c

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_unsub tests/unit/check_campaign
TESTS += tests/unit/check_unsub tests/unit/check_campaign
tests_unit_check_unsub_SOURCES = tests/unit/check_unsub.c
tests_unit_check_unsub_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_unsub_LDADD = $(UNIT_LIBS)
tests_unit_check_campaign_SOURCES = tests/unit/check_campaign.c
tests_unit_check_campaign_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_campaign_LDADD = $(UNIT_LIBS)
endif

# Integration tests: real redis-server, aiosmtpd / smtp-sink, curl.
EXTRA_DIST += \
	tests/integration/http_endpoints.sh \
	tests/integration/http_unsubscribe.sh \
	tests/integration/http_intake.sh \
	tests/integration/http_intake_client.py \
	tests/integration/campaign_lib.sh \
	tests/integration/campaign_basic.sh \
	tests/integration/campaign_kill.sh \
	tests/integration/campaign_control.sh \
	bench/bench_campaign.sh \
	bench/bench_http_intake.sh
TESTS += \
	tests/integration/http_endpoints.sh \
	tests/integration/http_unsubscribe.sh \
	tests/integration/http_intake.sh \
	tests/integration/campaign_basic.sh \
	tests/integration/campaign_kill.sh \
	tests/integration/campaign_control.sh
