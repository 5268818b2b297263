# service area: appends to the variables set up in Makefile.am

# scheduler: durable jobs, claiming with a lease, the fire path; sukictl
# jobs / cancel.
libsukicore_la_SOURCES += daemon/sched.c daemon/sched.h \
	daemon/fire.c daemon/fire.h
sukictl_SOURCES += daemon/ctl_jobs.c
