# rules area: appends to the variables set up in Makefile.am
libsukicore_la_SOURCES += daemon/rules.c daemon/rules.h

# Shipped rule plugins: installed to $(pkglibdir)/plugins, built against the
# public header only.
plugin_LTLIBRARIES += plugins/followup.la plugins/renewal.la
plugins_followup_la_SOURCES = plugins/followup.c
plugins_followup_la_CFLAGS = $(PLUGIN_CC)
plugins_followup_la_LDFLAGS = $(PLUGIN_LINK)
plugins_renewal_la_SOURCES = plugins/renewal.c
plugins_renewal_la_CFLAGS = $(PLUGIN_CC)
plugins_renewal_la_LDFLAGS = $(PLUGIN_LINK)

# sukid dlopens the .so; a libtool .la next to it only invites linking a
# plugin as a library (and Debian policy wants none). Without the .la,
# libtool's uninstall no longer knows the .so, hence the uninstall half.
install-data-hook:
	rm -f $(plugin_LTLIBRARIES:plugins/%='$(DESTDIR)$(plugindir)/%')
uninstall-hook:
	rm -f $(plugin_LTLIBRARIES:plugins/%.la='$(DESTDIR)$(plugindir)/%.so')

# Misbehaving plugins for the loader tests (never installed).
check_LTLIBRARIES += tests/fixtures/plugins/badabi.la \
	tests/fixtures/plugins/nosym.la tests/fixtures/plugins/failing.la \
	tests/fixtures/plugins/small.la
tests_fixtures_plugins_badabi_la_SOURCES = tests/fixtures/plugins/badabi.c
tests_fixtures_plugins_badabi_la_CFLAGS = $(PLUGIN_CC)
tests_fixtures_plugins_badabi_la_LDFLAGS = $(PLUGIN_LINK) -rpath /nowhere
tests_fixtures_plugins_nosym_la_SOURCES = tests/fixtures/plugins/nosym.c
tests_fixtures_plugins_nosym_la_CFLAGS = $(PLUGIN_CC)
tests_fixtures_plugins_nosym_la_LDFLAGS = -module -avoid-version -shared \
	-rpath /nowhere
tests_fixtures_plugins_failing_la_SOURCES = tests/fixtures/plugins/failing.c
tests_fixtures_plugins_failing_la_CFLAGS = $(PLUGIN_CC)
tests_fixtures_plugins_failing_la_LDFLAGS = $(PLUGIN_LINK) -rpath /nowhere
tests_fixtures_plugins_small_la_SOURCES = tests/fixtures/plugins/small.c
tests_fixtures_plugins_small_la_CFLAGS = $(PLUGIN_CC)
tests_fixtures_plugins_small_la_LDFLAGS = $(PLUGIN_LINK) -rpath /nowhere

# The out-of-tree example plugin, and the test that installs the project
# and builds the example against the installed header.
EXTRA_DIST += examples/hello-plugin/hello.c examples/hello-plugin/Makefile \
	examples/hello-plugin/README.md \
	tests/integration/plugin_out_of_tree.sh
check_PROGRAMS += tests/integration/plugin_load
tests_integration_plugin_load_SOURCES = tests/integration/plugin_load.c
tests_integration_plugin_load_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
tests_integration_plugin_load_LDADD = libsukicore.la $(DEPS_LIBS)
TESTS += tests/integration/plugin_out_of_tree.sh

if HAVE_CHECK
# Plugins are pure: their unit tests link the plugin source with a mock
# host table and nothing of the daemon.
check_PROGRAMS += tests/unit/check_followup tests/unit/check_renewal \
	tests/unit/check_rules
TESTS += tests/unit/check_followup tests/unit/check_renewal \
	tests/unit/check_rules
tests_unit_check_followup_SOURCES = tests/unit/check_followup.c \
	tests/fixtures/plugins/mock_host.h plugins/followup.c
tests_unit_check_followup_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_followup_LDADD = $(CHECK_LIBS)
tests_unit_check_renewal_SOURCES = tests/unit/check_renewal.c \
	tests/fixtures/plugins/mock_host.h plugins/renewal.c
tests_unit_check_renewal_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_renewal_LDADD = $(CHECK_LIBS)
# check_rules dlopens the built plugins and the fixtures.
tests_unit_check_rules_SOURCES = tests/unit/check_rules.c
tests_unit_check_rules_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_rules_LDADD = $(UNIT_LIBS)
EXTRA_tests_unit_check_rules_DEPENDENCIES = $(plugin_LTLIBRARIES) \
	$(check_LTLIBRARIES)
endif
