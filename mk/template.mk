# template area: message templates, MIME builder, shipped templates.
# Appends to the variables set up in Makefile.am.
libsukicore_la_SOURCES += \
	lib/template.c lib/template.h \
	lib/mime.c lib/mime.h

templatesdir = $(sysconfdir)/suki/templates
dist_templates_DATA = \
	conf/templates/followup-reminder.en.tmpl \
	conf/templates/manager-digest.en.tmpl \
	conf/templates/manager-digest.tl.tmpl \
	conf/templates/monthly-report.en.tmpl \
	conf/templates/monthly-report.tl.tmpl \
	conf/templates/followup-reminder.tl.tmpl \
	conf/templates/renewal-alert.en.tmpl \
	conf/templates/renewal-alert.tl.tmpl \
	conf/templates/complaint-escalation.en.tmpl \
	conf/templates/complaint-escalation.tl.tmpl \
	conf/templates/referral-request.en.tmpl \
	conf/templates/referral-request.tl.tmpl \
	conf/templates/referral-followup.en.tmpl \
	conf/templates/referral-followup.tl.tmpl \
	conf/templates/meeting-prep.en.tmpl \
	conf/templates/meeting-prep.tl.tmpl \
	conf/templates/campaign-example.en.tmpl \
	conf/templates/campaign-example.tl.tmpl

EXTRA_DIST += \
	tests/fixtures/templates-bad \
	tests/integration/mime_parse.sh

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_template tests/unit/check_mime \
	tests/integration/mime_dump
TESTS += tests/unit/check_template tests/unit/check_mime \
	tests/integration/mime_parse.sh
tests_unit_check_template_SOURCES = tests/unit/check_template.c
tests_unit_check_template_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_template_LDADD = $(UNIT_LIBS)
tests_unit_check_mime_SOURCES = tests/unit/check_mime.c
tests_unit_check_mime_CFLAGS = $(UNIT_CFLAGS)
tests_unit_check_mime_LDADD = $(UNIT_LIBS)
tests_integration_mime_dump_SOURCES = tests/integration/mime_dump.c
tests_integration_mime_dump_CFLAGS = $(UNIT_CFLAGS)
tests_integration_mime_dump_LDADD = $(UNIT_LIBS)
endif
