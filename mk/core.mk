# core: util, log, conf, redis glue, main program, sukictl
libsukicore_la_SOURCES += \
	lib/util.c lib/util.h lib/curl_ev.c lib/curl_ev.h \
	lib/log.c lib/log.h \
	lib/conf.c lib/conf.h \
	lib/metrics.c lib/metrics.h \
	lib/ops.c lib/ops.h lib/console_users.c lib/console_users.h \
	lib/redis.c lib/redis.h daemon/daemon.h \
	lib/store/keys.c lib/store/keys.h lib/store/job.c lib/store/job.h \
	lib/store/report.c lib/store/report.h \
	daemon/heartbeat.c daemon/heartbeat.h

sbin_PROGRAMS += sukid
sukid_SOURCES = daemon/main.c
sukid_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
sukid_LDADD = libsukicore.la $(DEPS_LIBS)
sukid_LDFLAGS = $(AM_LDFLAGS) -export-dynamic

bin_PROGRAMS += sukictl
sukictl_SOURCES = ctl/sukictl.c ctl/ctl.h ctl/ctl_status.c ctl/ctl_console.c
sukictl_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
sukictl_LDADD = libsukicore.la $(DEPS_LIBS)

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_util
TESTS += tests/unit/check_util
tests_unit_check_util_SOURCES = tests/unit/check_util.c
tests_unit_check_util_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_util_LDADD = $(UNIT_LIBS)
check_PROGRAMS += tests/unit/check_keys
TESTS += tests/unit/check_keys
tests_unit_check_keys_SOURCES = tests/unit/check_keys.c
tests_unit_check_keys_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_keys_LDADD = $(UNIT_LIBS)
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

# The example configuration, installed with the installed paths in it (an
# existing sukid.conf is never overwritten).
suki_confdir = $(sysconfdir)/suki
EXTRA_DIST += conf/sukid.conf systemd/sukid.service.in \
	conf/examples/events.jsonl scripts/deps.sh scripts/test.sh \
	scripts/demo.sh scripts/valgrind-wrap.sh scripts/valgrind-sukid.sh \
	scripts/cppcheck.sh scripts/format.sh \
	docs/ARCHITECTURE.md bench/RESULTS.md \
	.clang-format .ci/run
# The configuration holds no secrets (those live in files of their own, see
# sukid(8)) and the service's dynamic user must read it: 0644. The secrets'
# directory is root's alone; systemd hands its files to the service.
install-data-local:
	$(MKDIR_P) '$(DESTDIR)$(suki_confdir)'
	if [ ! -f '$(DESTDIR)$(suki_confdir)/sukid.conf' ]; then \
	  sed -e 's|/usr/lib/suki/plugins|$(pkglibdir)/plugins|' \
	      -e 's|/etc/suki/templates|$(suki_confdir)/templates|' \
	      '$(srcdir)/conf/sukid.conf' > '$(DESTDIR)$(suki_confdir)/sukid.conf'; \
	  chmod 0644 '$(DESTDIR)$(suki_confdir)/sukid.conf'; \
	fi
	$(MKDIR_P) '$(DESTDIR)$(suki_confdir)/credentials'
	chmod 0700 '$(DESTDIR)$(suki_confdir)/credentials'
uninstall-local:
	rm -f '$(DESTDIR)$(suki_confdir)/sukid.conf'
	-rmdir '$(DESTDIR)$(suki_confdir)/credentials'

# The placeholders are spelled [@]x[@] here: config.status rewrites every
# @x@ of this Makefile, the sed pattern included, which then matched nothing.
systemdsystemunit_DATA = systemd/sukid.service
CLEANFILES += systemd/sukid.service
systemd/sukid.service: $(srcdir)/systemd/sukid.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	sed -e 's|[@]sbindir[@]|$(sbindir)|g' \
	    -e 's|[@]sysconfdir[@]|$(sysconfdir)|g' \
	    '$(srcdir)/systemd/sukid.service.in' > $@.tmp && \
	if grep -n '@[a-zA-Z_]*@' $@.tmp; then \
	  echo "$@: placeholders left unexpanded" >&2; rm -f $@.tmp; exit 1; \
	fi && \
	mv $@.tmp $@

dist_man_MANS += man/sukid.8 man/sukid.conf.5 man/sukictl.1

TESTS += tests/integration/sukid_check.sh
EXTRA_DIST += tests/integration/sukid_check.sh

TESTS += tests/integration/cli_help.sh
EXTRA_DIST += tests/integration/cli_help.sh
TESTS += tests/integration/credentials_spool.sh
EXTRA_DIST += tests/integration/credentials_spool.sh

# Boots the installed unit and the .deb in a container (root only); run by
# scripts/test.sh as a stage of its own, not by "make check".
EXTRA_DIST += tests/system/nspawn.sh

TESTS += tests/integration/account_lifecycle.sh
EXTRA_DIST += tests/integration/account_lifecycle.sh

TESTS += tests/integration/status_breaker.sh
EXTRA_DIST += tests/integration/status_breaker.sh

TESTS += tests/integration/sukictl_status.sh
EXTRA_DIST += tests/integration/sukictl_status.sh

TESTS += tests/integration/sukictl_json.sh
EXTRA_DIST += tests/integration/sukictl_json.sh

TESTS += tests/integration/demo_anytime.sh
EXTRA_DIST += tests/integration/demo_anytime.sh

# suki_redis_cancel against a real redis-server
check_PROGRAMS += tests/integration/redis_cancel
tests_integration_redis_cancel_SOURCES = tests/integration/redis_cancel.c
tests_integration_redis_cancel_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
tests_integration_redis_cancel_LDADD = libsukicore.la $(DEPS_LIBS)
TESTS += tests/integration/redis_cancel.sh
EXTRA_DIST += tests/integration/redis_cancel.sh

# No two modules include each other (lib/, daemon/, ctl/).
TESTS += tests/unit/include_cycles.sh
EXTRA_DIST += tests/unit/include_cycles.sh tests/unit/include_cycles.py
