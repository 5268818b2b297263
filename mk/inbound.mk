# inbound: replies and bounces read back from the mailbox (#15)
libsukicore_la_SOURCES += lib/inbound_parse.c lib/inbound_parse.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_inbound_parse
TESTS += tests/unit/check_inbound_parse
tests_unit_check_inbound_parse_SOURCES = tests/unit/check_inbound_parse.c
tests_unit_check_inbound_parse_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_inbound_parse_LDADD = $(UNIT_LIBS)
endif
EXTRA_DIST += tests/fixtures/inbound
