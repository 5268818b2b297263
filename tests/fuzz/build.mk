# build.mk - the libFuzzer harnesses, built with clang-14 into their own
# objects (never mixed with the ./configure build, whose CC may be gcc).
# Driven by run.sh: make -f tests/fuzz/build.mk O=_build/fuzz CONFIG_DIR=...
# from the top of the tree. GNU make.
CLANG ?= clang-14
O ?= _build/fuzz
# Directory holding the config.h of a configured tree (run.sh provides one).
CONFIG_DIR ?= $(O)/cfg
PKGS = libevent_core libevent_extra hiredis libcurl jansson libconfig \
	libical libcrypto libsystemd gmime-3.0

SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
CFLAGS = -std=gnu11 -g -O1 -Wall -Wextra -Wshadow -Wmissing-prototypes \
	-Wstrict-prototypes -pthread $(SAN)
CPPFLAGS = -I include $(addprefix -iquote ,$(SRCDIRS)) -I $(CONFIG_DIR) \
	-DSYSCONFDIR='"/etc"' -DPKGLIBDIR='"/usr/lib/suki"' \
	$(shell pkg-config --cflags $(PKGS))
LIBS = $(shell pkg-config --libs $(PKGS)) -pthread -ldl -lm

# Every daemon source but the two programs' main files: an archive, so each
# harness links only what it reaches.
SRCDIRS = lib daemon daemon/sched daemon/deliver
CORE_SRC = $(filter-out daemon/main.c,$(wildcard $(addsuffix /*.c,$(SRCDIRS))))
# The store's C (its scripts.c is generated below, never the one an
# in-tree build may have left there).
CORE_SRC += $(filter-out lib/store/scripts.c,$(wildcard lib/store/*.c))
CORE_OBJ = $(patsubst %.c,$(O)/obj/%.o,$(CORE_SRC)) $(O)/obj/store/scripts.o
STORE_LUA = $(filter-out %.inc.lua,$(wildcard lib/store/*.lua))
HARNESSES = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

all: $(addprefix $(O)/,$(HARNESSES))

# Instrument the daemon for coverage too (fuzzer-no-link), else libFuzzer
# sees only the harness.
$(O)/obj/%.o: %.c $(CONFIG_DIR)/config.h
	@mkdir -p $(@D)
	$(CLANG) $(CPPFLAGS) $(CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP \
		-c $< -o $@

$(O)/store/scripts.c: $(wildcard lib/store/*.lua) lib/store/embed.sh
	@mkdir -p $(@D)
	sh lib/store/embed.sh $@ $(STORE_LUA)

$(O)/obj/store/scripts.o: $(O)/store/scripts.c
	@mkdir -p $(@D)
	$(CLANG) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(O)/libsukifuzz.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(O)/fuzz_%: $(O)/obj/tests/fuzz/fuzz_%.o $(O)/libsukifuzz.a
	$(CLANG) $(CFLAGS) -fsanitize=fuzzer $^ $(LIBS) -o $@

.PHONY: all
-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
