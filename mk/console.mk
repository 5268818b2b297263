# console: the operator console (DESIGN Part 3): its own listener, the
# pages (embedded from daemon/console/assets) and the JSON API; accounts in
# lib/console_users.c, the operations it shares with sukictl in lib/ops.c.
# Appends to the variables set up in Makefile.am.
CONSOLE_ASSETS = \
	$(srcdir)/daemon/console/assets/index.html \
	$(srcdir)/daemon/console/assets/app.js \
	$(srcdir)/daemon/console/assets/style.css
libsukicore_la_SOURCES += \
	daemon/console/console.c daemon/console/console.h \
	daemon/console/assets.h
nodist_libsukicore_la_SOURCES += daemon/console/assets.c
BUILT_SOURCES += daemon/console/assets.c
CLEANFILES += daemon/console/assets.c
EXTRA_DIST += daemon/console/embed-assets.sh $(CONSOLE_ASSETS)
daemon/console/assets.c: $(CONSOLE_ASSETS) $(srcdir)/daemon/console/embed-assets.sh
	$(AM_V_GEN)$(MKDIR_P) daemon/console && \
	$(SHELL) $(srcdir)/daemon/console/embed-assets.sh $@ $(CONSOLE_ASSETS)

TESTS += tests/integration/console_api.sh
EXTRA_DIST += tests/integration/console_api.sh tests/integration/console_lib.sh \
	tests/integration/console_api.py

# A real browser: headless Chromium through python3-selenium.
TESTS += tests/integration/console_browser.sh
EXTRA_DIST += tests/integration/console_browser.sh \
	tests/integration/console_browser.py bench/bench_console.sh \
	bench/bench_timeline.sh
clean-local: clean-console-artifacts
clean-console-artifacts:
	rm -rf tests/artifacts/console_browser
