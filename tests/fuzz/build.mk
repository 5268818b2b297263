# build.mk - the libFuzzer harnesses, built with clang-14 into their own
# objects (never mixed with the ./configure build, whose CC may be gcc).
# Driven by run.sh: make -f tests/fuzz/build.mk O=_build/fuzz CONFIG_DIR=...
# from the top of the tree. GNU make.
CLANG ?= clang-14
O ?= _build/fuzz
# Directory holding the config.h of a configured tree (run.sh provides one).
CONFIG_DIR ?= $(O)/cfg
PKGS = libevent_core libevent_extra hiredis libcurl jansson libconfig \
	libical libcrypto libsystemd

SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
CFLAGS = -std=gnu11 -g -O1 -Wall -Wextra -Wshadow -Wmissing-prototypes \
	-Wstrict-prototypes -pthread $(SAN)
CPPFLAGS = -I include -iquote daemon -I $(CONFIG_DIR) \
	-DSYSCONFDIR='"/etc"' -DPKGLIBDIR='"/usr/lib/suki"' \
	$(shell pkg-config --cflags $(PKGS))
LIBS = $(shell pkg-config --libs $(PKGS)) -pthread -ldl -lm

# Every daemon source but the two programs' main files: an archive, so each
# harness links only what it reaches.
CORE_SRC = $(filter-out daemon/main.c daemon/sukictl.c,$(wildcard daemon/*.c))
CORE_OBJ = $(patsubst daemon/%.c,$(O)/obj/%.o,$(CORE_SRC))
HARNESSES = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

all: $(addprefix $(O)/,$(HARNESSES))

# Instrument the daemon for coverage too (fuzzer-no-link), else libFuzzer
# sees only the harness.
$(O)/obj/%.o: daemon/%.c $(CONFIG_DIR)/config.h
	@mkdir -p $(@D)
	$(CLANG) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP \
		-c $< -o $@

$(O)/libsukifuzz.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(O)/obj/%.o: tests/fuzz/%.c $(CONFIG_DIR)/config.h
	@mkdir -p $(@D)
	$(CLANG) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP \
		-c $< -o $@

$(O)/fuzz_%: $(O)/obj/fuzz_%.o $(O)/libsukifuzz.a
	$(CLANG) $(CFLAGS) -fsanitize=fuzzer $^ $(LIBS) -o $@

.PHONY: all
-include $(wildcard $(O)/obj/*.d)
