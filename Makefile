# volley: build, test, sanitize, demo, bench.  See README.md.
CC      ?= cc
AR      ?= ar
BUILD   ?= build
SAN_FLAGS ?=
VERSION := 0.1.0
SOVERSION := 0

CFLAGS  ?= -O2 -g
WFLAGS  := -std=c11 -Wall -Wextra -Werror
CPPFLAGS_ALL := -D_GNU_SOURCE -DVL_VERSION_STRING=\"$(VERSION)\" -Iinclude -Isrc \
                -I/usr/share/include/llhttp
ALL_CFLAGS = $(WFLAGS) $(CFLAGS) $(SAN_FLAGS) -fPIC $(CPPFLAGS_ALL)
DEP_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto -lcares -lz -luriparser -lpthread
LDFLAGS_ALL = $(SAN_FLAGS) $(LDFLAGS)

LIB_SRCS := $(sort $(wildcard src/*.c))
CLI_SRCS := $(sort $(wildcard src/cli/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
EXAMPLE_SRCS := $(sort $(wildcard tools/examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:tools/examples/%.c=$(BUILD)/examples/%)

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all deps test unit asan valgrind clean demo bench
all: $(BUILD)/volley $(BUILD)/libvolley.a $(BUILD)/libvolley.so

include third_party/llhttp.mk

# Run tools/install-deps.sh only when a header or tool we need is missing.
$(DEPS_STAMP):
	@for f in /usr/include/mbedtls/ssl.h /usr/share/llhttp/llhttp.c /usr/include/ares.h \
	          /usr/include/zlib.h /usr/include/uriparser/Uri.h; do \
	    [ -e $$f ] || { sh tools/install-deps.sh --build-only || exit 1; break; }; done
	@mkdir -p $(BUILD) && touch $@

deps:
	sh tools/install-deps.sh

$(BUILD)/obj/%.o: %.c $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libvolley.a: $(LIB_OBJS) $(LLHTTP_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libvolley.so: $(LIB_OBJS) $(LLHTTP_OBJS)
	$(CC) -shared -Wl,-soname,libvolley.so.$(SOVERSION) -o $@ $^ $(LDFLAGS_ALL) $(DEP_LIBS)

$(BUILD)/volley: $(CLI_OBJS) $(BUILD)/libvolley.a
	$(CC) -o $@ $(CLI_OBJS) $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libvolley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS) -lcmocka

$(BUILD)/examples/%: tools/examples/%.c $(BUILD)/libvolley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS)

# The test command README gives.  Installs test packages when missing.
test: all $(EXAMPLE_BINS)
	@[ -e /usr/include/cmocka.h ] && command -v nginx >/dev/null || sh tools/install-deps.sh
	@$(MAKE) --no-print-directory BUILD=$(BUILD) SAN_FLAGS="$(SAN_FLAGS)" unit-bins
	python3 tests/run.py --build $(BUILD)

unit-bins: $(UNIT_BINS)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan:
	$(MAKE) --no-print-directory BUILD=build/asan \
	    SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

# The same suite with every volley process under valgrind memcheck.
valgrind: all
	@$(MAKE) --no-print-directory unit-bins
	VOLLEY_VALGRIND=1 python3 tests/run.py --build $(BUILD)

demo: all
	python3 tools/demo.py --volley $(BUILD)/volley

bench: all
	tools/bench/run

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)
