# compose: the one place a message is built (render, Message-ID, MIME,
# sent-marker key), used by the fire path, campaigns and their summaries.
# Appends to the variables set up in Makefile.am.
libsukicore_la_SOURCES += daemon/deliver/compose.c daemon/deliver/compose.h

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_compose
TESTS += tests/unit/check_compose
tests_unit_check_compose_SOURCES = tests/unit/check_compose.c
tests_unit_check_compose_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_compose_LDADD = $(UNIT_LIBS)
endif
