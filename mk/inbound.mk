# inbound: replies and bounces read back from the mailbox (#15)
libsukicore_la_SOURCES += lib/inbound_parse.c lib/inbound_parse.h \
	daemon/inbound.c daemon/inbound.h

sukictl_SOURCES += ctl/ctl_inbound.c

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_inbound_parse
TESTS += tests/unit/check_inbound_parse
tests_unit_check_inbound_parse_SOURCES = tests/unit/check_inbound_parse.c
tests_unit_check_inbound_parse_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_inbound_parse_LDADD = $(UNIT_LIBS)
endif
EXTRA_DIST += tests/fixtures/inbound

TESTS += tests/integration/inbound_imap.sh tests/integration/inbound_failover.sh
EXTRA_DIST += tests/integration/inbound_imap.sh tests/integration/inbound_failover.sh \
	tests/integration/dovecot_lib.sh tests/integration/imap_fill.py
