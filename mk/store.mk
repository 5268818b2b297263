# store: the Redis scripts, one .lua file each, embedded as C strings.
STORE_LUA = \
	$(srcdir)/lib/store/campaign-claim.lua \
	$(srcdir)/lib/store/chart-add.lua \
	$(srcdir)/lib/store/campaign-outcome.lua \
	$(srcdir)/lib/store/campaign-pause.lua \
	$(srcdir)/lib/store/campaign-release.lua \
	$(srcdir)/lib/store/campaign-renew.lua \
	$(srcdir)/lib/store/campaign-summary.lua \
	$(srcdir)/lib/store/campaign-take.lua \
	$(srcdir)/lib/store/campaign-walk.lua \
	$(srcdir)/lib/store/ctl-campaign-control.lua \
	$(srcdir)/lib/store/ctl-campaign-create.lua \
	$(srcdir)/lib/store/ctl-campaign-retry-chunk.lua \
	$(srcdir)/lib/store/ctl-campaign-retry-done.lua \
	$(srcdir)/lib/store/ctl-intake-replay.lua \
	$(srcdir)/lib/store/ctl-jobs-cancel.lua \
	$(srcdir)/lib/store/ops-campaigns.lua \
	$(srcdir)/lib/store/ops-charts.lua \
	$(srcdir)/lib/store/ops-client.lua \
	$(srcdir)/lib/store/ops-job.lua \
	$(srcdir)/lib/store/ops-jobs-page.lua \
	$(srcdir)/lib/store/ops-overview.lua \
	$(srcdir)/lib/store/http-events.lua \
	$(srcdir)/lib/store/inbound-apply.lua \
	$(srcdir)/lib/store/inbound-poll.lua \
	$(srcdir)/lib/store/intake-apply.lua \
	$(srcdir)/lib/store/intake-lists.lua \
	$(srcdir)/lib/store/intake-recover.lua \
	$(srcdir)/lib/store/intake-trim.lua \
	$(srcdir)/lib/store/report-fold.lua \
	$(srcdir)/lib/store/report-plan.lua \
	$(srcdir)/lib/store/sched-claim.lua \
	$(srcdir)/lib/store/sched-ensure.lua \
	$(srcdir)/lib/store/sched-renew.lua \
	$(srcdir)/lib/store/sched-settle.lua \
	$(srcdir)/lib/store/unsubscribe.lua
STORE_INC = \
	$(srcdir)/lib/store/campaign-common.inc.lua \
	$(srcdir)/lib/store/redis-now.inc.lua \
	$(srcdir)/lib/store/report-fold.inc.lua \
	$(srcdir)/lib/store/sched-job-hash.inc.lua
libsukicore_la_SOURCES += lib/store/scripts.h
nodist_libsukicore_la_SOURCES = lib/store/scripts.c
BUILT_SOURCES = lib/store/scripts.c
CLEANFILES += lib/store/scripts.c
EXTRA_DIST += lib/store/embed.sh $(STORE_LUA) $(STORE_INC)
lib/store/scripts.c: $(STORE_LUA) $(STORE_INC) $(srcdir)/lib/store/embed.sh
	$(AM_V_GEN)$(MKDIR_P) lib/store && \
	$(SHELL) $(srcdir)/lib/store/embed.sh $@ $(STORE_LUA)

TESTS += tests/unit/lua_syntax.sh
EXTRA_DIST += tests/unit/lua_syntax.sh

TESTS += tests/integration/lua_wrongtype.sh
EXTRA_DIST += tests/integration/lua_wrongtype.sh

TESTS += tests/integration/lua_badargs.sh
EXTRA_DIST += tests/integration/lua_badargs.sh
