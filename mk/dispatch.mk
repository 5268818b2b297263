# dispatch area: appends to the variables set up in Makefile.am
