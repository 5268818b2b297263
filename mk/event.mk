# event area: appends to the variables set up in Makefile.am
# time zones, RFC 3339, business days, holidays; client event parsing
libsukicore_la_SOURCES += \
	lib/timeutil.c lib/timeutil.h \
	lib/event.c lib/event.h

EXTRA_DIST += tests/fixtures/holidays.txt tests/fixtures/holidays.ics \
	tests/fixtures/holidays-bad.txt

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_timeutil tests/unit/check_event
TESTS += tests/unit/check_timeutil tests/unit/check_event
tests_unit_check_timeutil_SOURCES = tests/unit/check_timeutil.c
tests_unit_check_timeutil_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_timeutil_LDADD = $(UNIT_LIBS)
tests_unit_check_event_SOURCES = tests/unit/check_event.c
tests_unit_check_event_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_event_LDADD = $(UNIT_LIBS)
endif
