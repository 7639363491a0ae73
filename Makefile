# Meadow — one Makefile for the whole tree.
#
# Sources are found by folder, so a new file needs no edit here:
#   <module>/*.c         -> build/libmeadow.a   (every module below)
#   main.c               -> build/meadow
#   tests/test_*.c       -> build/tests/test_*  (unit tests, tests/test.h)
#   tests/tools/*.c      -> build/tools/*       (replay servers, generators)
#   bench/bench_*.c      -> build/bench/bench_*
#   tests/fuzz/fuzz_*.c  -> build-fuzz/fuzz_*   (clang-14 libFuzzer, `make fuzz`)
#
# SAN=asan builds everything with ASan+UBSan into build-asan/. CI=true selects
# it by default (see .ci/run). SAN=tsan builds with ThreadSanitizer into
# build-tsan/; `make SAN=tsan test` runs the whole suite under it (4-8
# min), a race report from any process failing its test (tests/tsan.supp).
# `make test-dated` runs the whole suite under faketime two years ahead and one
# year back (tests/run_dated.sh; DATED='+30 days' picks other offsets).

ifeq ($(CI),true)
SAN ?= asan
endif

MODULES  := common identity queue firehose processor index feedgen pds lexicon cmd
PKGS     := libwebsockets libcurl libcbor lmdb libpcre2-8 libcjson openssl \
            libmicrohttpd libsecp256k1 libutf8proc libzstd

CC       ?= cc
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter -Wformat=2 -Wvla
CPPFLAGS += -I. -D_GNU_SOURCE
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -pthread -fno-strict-aliasing $(WARN)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS   += $(PKG_LIBS) -lpthread -lm

BUILD := build
ifeq ($(SAN),asan)
BUILD := build-asan
CFLAGS += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
BUILD := build-tsan
CFLAGS += -O1 -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif

LIB_SRCS   := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS  := $(wildcard tests/test_*.c)
TEST_BINS  := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)
BENCH_SRCS := $(wildcard bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)

.SECONDARY:
.PHONY: all deps run test test-dated bench fuzz format format-check clean unit-tests tools

all: deps $(BUILD)/meadow $(TOOL_BINS)

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CC      $<'
	@$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libmeadow.a: $(LIB_OBJS)
	@rm -f $@
	@$(AR) rcs $@ $^

$(BUILD)/meadow: $(BUILD)/obj/main.o $(BUILD)/libmeadow.a
	@echo '  LD      $@'
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libmeadow.a
	@mkdir -p $(dir $@)
	@echo '  LD      $@'
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(BUILD)/libmeadow.a
	@mkdir -p $(dir $@)
	@echo '  LD      $@'
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libmeadow.a
	@mkdir -p $(dir $@)
	@echo '  LD      $@'
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tools: $(TOOL_BINS)
unit-tests: $(TEST_BINS)

# The whole suite: unit test binaries, then tests/integration/*.sh, one total line.
test: deps $(BUILD)/meadow $(TEST_BINS) $(TOOL_BINS)
	@BUILD=$(BUILD) tests/run.sh

# The same suite with every process's clock shifted (faketime): no test may
# depend on the date it runs.
test-dated: deps $(BUILD)/meadow $(TEST_BINS) $(TOOL_BINS)
	@BUILD=$(BUILD) tests/run_dated.sh $(if $(DATED),"$(DATED)")

run: deps $(BUILD)/meadow
	$(BUILD)/meadow serve

# Benchmarks always run optimized, without sanitizers.
bench: deps
	@$(MAKE) --no-print-directory SAN= BUILD=build build/meadow $(BENCH_SRCS:bench/%.c=build/bench/%) $(TOOL_SRCS:tests/tools/%.c=build/tools/%)
	@BUILD=build bench/run.sh

# libFuzzer targets: each fuzz_*.c links the library sources built with clang.
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -I. -DMDW_FUZZ
fuzz: deps $(FUZZ_BINS)
build-fuzz/%: tests/fuzz/%.c $(LIB_SRCS)
	@mkdir -p build-fuzz
	clang-14 $(FUZZ_CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LIB_SRCS) $(LDLIBS)

FORMAT_SRCS = $(shell find main.c $(MODULES) tests bench -name '*.[ch]' -not -path '*/node_modules/*' -not -path '*/corpus/*' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRCS)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRCS) && echo "format-check: ok"

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find build build-asan build-tsan -name '*.d' 2>/dev/null)
