# core: util, log, conf, redis glue, main program, sukictl
libsukicore_la_SOURCES += \
	daemon/util.c daemon/util.h \
	daemon/log.c daemon/log.h \
	daemon/conf.c daemon/conf.h \
	daemon/metrics.c daemon/metrics.h \
	daemon/redis.c daemon/redis.h daemon/daemon.h

sbin_PROGRAMS += sukid
sukid_SOURCES = daemon/main.c
sukid_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
sukid_LDADD = libsukicore.la $(DEPS_LIBS)
sukid_LDFLAGS = $(AM_LDFLAGS) -export-dynamic

bin_PROGRAMS += sukictl
sukictl_SOURCES = daemon/sukictl.c daemon/ctl.h daemon/ctl_status.c
sukictl_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
sukictl_LDADD = libsukicore.la $(DEPS_LIBS)

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_util
TESTS += tests/unit/check_util
tests_unit_check_util_SOURCES = tests/unit/check_util.c
tests_unit_check_util_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_util_LDADD = $(UNIT_LIBS)
endif

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_conf
TESTS += tests/unit/check_conf
tests_unit_check_conf_SOURCES = tests/unit/check_conf.c
tests_unit_check_conf_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_conf_LDADD = $(UNIT_LIBS)
endif

TESTS += tests/integration/lifecycle.sh
EXTRA_DIST += tests/integration/lifecycle.sh
