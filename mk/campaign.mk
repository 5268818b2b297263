# campaign area: HTTP server (/metrics, /healthz, unsubscribe), signed
# unsubscribe tokens, campaigns and their sukictl commands.
# Appends to the variables set up in Makefile.am.
libsukicore_la_SOURCES += \
	daemon/unsub.c daemon/unsub.h \
	daemon/http.c daemon/http.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_unsub
TESTS += tests/unit/check_unsub
tests_unit_check_unsub_SOURCES = tests/unit/check_unsub.c
tests_unit_check_unsub_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_unsub_LDADD = $(UNIT_LIBS)
endif

EXTRA_DIST += \
	tests/integration/http_endpoints.sh \
	tests/integration/http_unsubscribe.sh
TESTS += \
	tests/integration/http_endpoints.sh \
	tests/integration/http_unsubscribe.sh
