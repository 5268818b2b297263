# fuzz: the libFuzzer harnesses of tests/fuzz (see tests/fuzz/README.md).
# They are built by tests/fuzz/run.sh with clang-14 into _build/fuzz/ of the
# source tree, apart from this build (whose CC may be gcc); only this
# build's config.h is shared. make fuzz FUZZ_SECONDS=3600 for a long run.
FUZZ_SECONDS = 30
fuzz:
	SUKI_CONFIG_H='$(abs_top_builddir)/config.h' \
	  $(SHELL) '$(abs_top_srcdir)/tests/fuzz/run.sh' $(FUZZ_SECONDS)
.PHONY: fuzz
EXTRA_DIST += tests/fuzz
