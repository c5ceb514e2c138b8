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
DEP_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto -lcares -lz -lbrotlidec -lzstd -lidn2 -lnghttp2
LDFLAGS_ALL = $(SAN_FLAGS) $(LDFLAGS)

LIB_SRCS := $(sort $(wildcard src/*.c))
CLI_SRCS := $(sort $(wildcard src/cli/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
EXAMPLE_SRCS := $(sort $(wildcard tools/examples/*.c))
EXAMPLE_BINS := $(EXAMPLE_SRCS:tools/examples/%.c=$(BUILD)/examples/%)
# Examples that embed volley in another event loop get that loop's flags.
EXAMPLE_PKGS_embed_uv := libuv
EXAMPLE_PKGS_embed_glib := glib-2.0
EXAMPLE_LIBS_threads := -pthread
example_flags = $(if $(EXAMPLE_PKGS_$(1)),$(shell pkg-config --cflags --libs $(EXAMPLE_PKGS_$(1)))) \
                $(EXAMPLE_LIBS_$(1))

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all deps test unit asan valgrind clean demo bench examples install uninstall check-fresh
.DEFAULT_GOAL := all
include third_party/llhttp.mk

all: $(LLHTTP_LIB) $(BUILD)/volley $(BUILD)/libvolley.a $(BUILD)/libvolley.so


# Run tools/install-deps.sh only when a header or tool we need is missing.
$(DEPS_STAMP): tools/install-deps.sh
	@for f in /usr/include/mbedtls/ssl.h /usr/share/llhttp/llhttp.c /usr/include/ares.h \
	          /usr/include/zlib.h /usr/include/brotli/decode.h /usr/include/zstd.h \
	          /usr/include/idn2.h /usr/include/jansson.h /usr/include/nettle/sha1.h \
	          /usr/include/uchardet/uchardet.h; do \
	    [ -e $$f ] || { sh tools/install-deps.sh --build-only || exit 1; break; }; done
	@command -v python3 >/dev/null || sh tools/install-deps.sh --build-only
	@mkdir -p $(BUILD) && touch $@

deps:
	sh tools/install-deps.sh

$(BUILD)/obj/%.o: %.c $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libvolley.a: $(LIB_OBJS) $(LLHTTP_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# The shared library exports exactly the functions volley.h declares, so
# internal names (pool_*, vl_fmt, and the llhttp compiled in) never clash
# with a program's own.
$(BUILD)/libvolley.map: include/volley.h
	@mkdir -p $(dir $@)
	{ echo 'VOLLEY_0 {'; echo '    global:'; \
	  sed -n '/^typedef/d; s/^[a-z].*[ *]\(vl_[a-z0-9_]*\)(.*/        \1;/p' $<; \
	  echo '    local:'; echo '        *;'; echo '};'; } > $@

$(BUILD)/libvolley.so: $(LIB_OBJS) $(LLHTTP_OBJS) $(BUILD)/libvolley.map
	$(CC) -shared -Wl,-soname,libvolley.so.$(SOVERSION) -Wl,--version-script=$(BUILD)/libvolley.map \
	    -o $@ $(LIB_OBJS) $(LLHTTP_OBJS) $(LDFLAGS_ALL) $(DEP_LIBS)

# jansson (--input-format json, --resume) is the command's, never the library's.
CLI_LIBS := -ljansson -lnettle -pthread
# uchardet (--body's charset guess) too; iconv and base64 (libresolv) are glibc's.
UCHARDET_CFLAGS := $(shell pkg-config --cflags uchardet 2>/dev/null || echo -I/usr/include/uchardet)
UCHARDET_LIBS := $(shell pkg-config --libs uchardet 2>/dev/null || echo -luchardet)
CLI_LIBS += $(UCHARDET_LIBS) -lresolv
$(BUILD)/obj/src/cli/body.o: ALL_CFLAGS += $(UCHARDET_CFLAGS)
$(BUILD)/volley: $(CLI_OBJS) $(BUILD)/libvolley.a
	$(CC) -o $@ $(CLI_OBJS) $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS) $(CLI_LIBS)

# Unit tests that need an encoder to make their input link it too.
UNIT_LIBS_test_decode := -lbrotlienc
# test_body tests the command's charset module (src/cli/body.c).
$(BUILD)/tests/test_body: $(BUILD)/obj/src/cli/body.o $(BUILD)/obj/src/cli/output.o
UNIT_LIBS_test_body = $(BUILD)/obj/src/cli/body.o $(BUILD)/obj/src/cli/output.o $(UCHARDET_LIBS) \
                      -lresolv
# test_url's expected values are generated data (tests/unit/url_whatwg_cases.js).
$(BUILD)/tests/test_url: tests/unit/url_whatwg_cases.h

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libvolley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS) -lcmocka \
	    $(UNIT_LIBS_$*)

$(BUILD)/examples/%: tools/examples/%.c tools/examples/example.h $(BUILD)/libvolley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS) \
	    $(call example_flags,$*)

examples: $(EXAMPLE_BINS)

# The test command README gives.  Installs test packages when missing
# (install-deps.sh asks dpkg first and exits at once when nothing is).
test: all
	@sh tools/install-deps.sh
	@$(MAKE) --no-print-directory BUILD=$(BUILD) SAN_FLAGS="$(SAN_FLAGS)" unit-bins examples $(WARCIO)
	python3 tests/run.py --build $(BUILD)

# warcio.js, the independent reader of --warc's files (test_cli_warc.py), from
# the npm registry into build/node.  Node trusts its own CA list, not the
# system's: NODE_EXTRA_CA_CERTS adds the system bundle (which holds a site's
# own CAs, e.g. an egress proxy's) unless the caller set one.
WARCIO := build/node/node_modules/warcio/package.json
$(WARCIO):
	@mkdir -p build/node
	@if [ -z "$${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then \
	    export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt; fi; \
	 npm install --no-audit --no-fund --prefix build/node warcio@2 >build/node/npm.log 2>&1 || \
	 { echo "make: cannot install warcio.js with npm (see build/node/npm.log):" >&2; \
	   tail -n 20 build/node/npm.log >&2; exit 1; }

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

# Proves README's two commands on a bare Debian 12 root: debootstrap minbase,
# a clone of HEAD, then apt-get install -y make, make demo and make test in a
# chroot (root only; about 5 min here, 4 with the bare root cached; see
# tools/check-fresh.sh).
check-fresh:
	bash tools/check-fresh.sh

# make install [PREFIX=/usr/local] [DESTDIR=staging dir]; make uninstall with
# the same variables.  Installs the command, the shared library (real name,
# soname link, dev link), the static library, the header, volley.pc and the
# two man pages.
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL      ?= install
SONAME       := libvolley.so.$(SOVERSION)
# What DEP_LIBS links, for static linking through pkg-config: the libraries
# that ship a .pc file by name, mbedTLS (which ships none) by flags.
PC_REQUIRES_PRIVATE := libcares zlib libbrotlidec libzstd libidn2 libnghttp2
PC_LIBS_PRIVATE     := -lmbedtls -lmbedx509 -lmbedcrypto
INSTALLED := $(BINDIR)/volley $(LIBDIR)/libvolley.so.$(VERSION) $(LIBDIR)/$(SONAME) \
             $(LIBDIR)/libvolley.so $(LIBDIR)/libvolley.a $(INCLUDEDIR)/volley.h \
             $(PKGCONFIGDIR)/volley.pc $(MANDIR)/man1/volley.1 $(MANDIR)/man3/volley.3
# tools/dask/volley-dask (README "More than one machine") next to volley, which
# it runs by default.
INSTALLED += $(BINDIR)/volley-dask

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	$(INSTALL) -m 755 $(BUILD)/volley $(DESTDIR)$(BINDIR)/volley
	$(INSTALL) -m 755 tools/dask/volley-dask $(DESTDIR)$(BINDIR)/volley-dask
	$(INSTALL) -m 755 $(BUILD)/libvolley.so $(DESTDIR)$(LIBDIR)/libvolley.so.$(VERSION)
	ln -sf libvolley.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libvolley.so
	$(INSTALL) -m 644 $(BUILD)/libvolley.a $(DESTDIR)$(LIBDIR)/libvolley.a
	$(INSTALL) -m 644 include/volley.h $(DESTDIR)$(INCLUDEDIR)/volley.h
	$(INSTALL) -m 644 docs/volley.1 $(DESTDIR)$(MANDIR)/man1/volley.1
	$(INSTALL) -m 644 docs/volley.3 $(DESTDIR)$(MANDIR)/man3/volley.3
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' \
	    'Name: volley' \
	    'Description: HTTP/1.1 client and event loop: many fetches at once on one thread' \
	    'Version: $(VERSION)' 'Requires.private: $(PC_REQUIRES_PRIVATE)' \
	    'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lvolley' \
	    'Libs.private: $(PC_LIBS_PRIVATE)' > $(DESTDIR)$(PKGCONFIGDIR)/volley.pc
	@[ -n "$(DESTDIR)" ] || ldconfig 2>/dev/null || true

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@[ -n "$(DESTDIR)" ] || ldconfig 2>/dev/null || true

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)

# The kqueue backend, checked on Linux against a libkqueue install in
# KQUEUE_PREFIX (not a Debian package; never committed here): builds the
# library with -DVL_USE_KQUEUE, runs the loop and connector unit tests and
# 50 real fetches against a local server.
check-kqueue:
	@[ -n "$(KQUEUE_PREFIX)" ] || { echo "usage: make check-kqueue KQUEUE_PREFIX=DIR" >&2; exit 2; }
	$(MAKE) --no-print-directory BUILD=build/kqueue \
	    CFLAGS="-O2 -g -DVL_USE_KQUEUE -I$(KQUEUE_PREFIX)/include/kqueue" \
	    LDFLAGS="-L$(KQUEUE_PREFIX)/lib -Wl,-rpath,$(KQUEUE_PREFIX)/lib -lkqueue" \
	    all build/kqueue/tests/test_loop build/kqueue/tests/test_connect
	build/kqueue/volley --version | grep -q kqueue
	build/kqueue/tests/test_loop
	build/kqueue/tests/test_connect
	sh tools/check-kqueue.sh build/kqueue/volley

# 100,000 fetches of mixed faults from the scripted servers in one volley run:
# exactly one record per index, the expected outcome per path, flat RSS and fds
# (tools/soak.py).  Not in CI or `make test`.  make soak SOAK_N=10000 for less.
SOAK_N ?= 100000
.PHONY: soak
soak: all
	python3 tools/soak.py --volley $(BUILD)/volley -n $(SOAK_N)

# ---------------------------------------------------------------- fuzzing
# make fuzz [FUZZ_TIME=60]: the libFuzzer harnesses in tests/fuzz/, built by
# clang under build/fuzz/ from their own objects (src/*.c, src/cli/input.c,
# src/cli/output.c and llhttp with coverage, ASan and UBSan; never mixed with
# the gcc objects), each run FUZZ_TIME seconds from its seed corpus and
# regressions.  New corpus entries go to build/fuzz/corpus/NAME, crash inputs
# to build/fuzz/crashes/NAME/; the target fails if any harness crashed.
# The same harnesses are built with $(CC) and tests/fuzz/replay_main.c
# against $(BUILD)'s objects (so with make asan's sanitizers too); make test
# replays every corpus and regression file with them (test_fuzz_replay.py).
FUZZ_CC   ?= clang-14
FUZZ_TIME ?= 60
FUZZ_DIR  := build/fuzz
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := $(WFLAGS) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(CPPFLAGS_ALL)
FUZZ_NAMES := http_response url retry_after input json decode body
# fuzz_body includes src/cli/body.c: uchardet and libresolv (base64) besides
FUZZ_LIBS_body = $(UCHARDET_CFLAGS) $(UCHARDET_LIBS) -lresolv
FUZZ_NAMES += tunnel
FUZZ_NAMES += h2_frames
FUZZ_MAXLEN_tunnel := 2048
FUZZ_MAXLEN_http_response := 4096
FUZZ_MAXLEN_decode := 16384
FUZZ_MAXLEN_url := 1024
FUZZ_MAXLEN_retry_after := 128
FUZZ_MAXLEN_input := 4096
FUZZ_MAXLEN_json := 2048
FUZZ_MAXLEN_h2_frames := 16384
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_LIB := $(FUZZ_DIR)/libvolley.a
FUZZ_SRC_OBJS := $(LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_OBJS := $(FUZZ_SRC_OBJS) $(LLHTTP_NAMES:%=$(FUZZ_DIR)/obj/llhttp/%.o)
FUZZ_CLI_OBJS := $(FUZZ_DIR)/obj/src/cli/input.o $(FUZZ_DIR)/obj/src/cli/output.o
REPLAY_BINS := $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/fuzz_%)
REPLAY_CLI_OBJS := $(BUILD)/obj/src/cli/input.o $(BUILD)/obj/src/cli/output.o

.PHONY: fuzz fuzz-bins
unit-bins: $(REPLAY_BINS)

FUZZ_STAMP := $(FUZZ_DIR)/.deps-ok
$(FUZZ_STAMP): tools/install-deps.sh
	sh tools/install-deps.sh --fuzz
	@mkdir -p $(dir $@) && touch $@

$(FUZZ_DIR)/obj/%.o: %.c $(DEPS_STAMP) $(FUZZ_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_DIR)/obj/llhttp/%.o: $(DEPS_STAMP) $(FUZZ_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -I$(LLHTTP_INC_DIR) \
	    -c $(LLHTTP_SRC_DIR)/$*.c -o $@

$(FUZZ_LIB): $(FUZZ_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB) $(FUZZ_CLI_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_CLI_OBJS) $(FUZZ_LIB) \
	    $(DEP_LIBS) -pthread $(FUZZ_LIBS_$*)

$(BUILD)/fuzz-replay/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(BUILD)/libvolley.a \
                             $(REPLAY_CLI_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< tests/fuzz/replay_main.c $(REPLAY_CLI_OBJS) \
	    $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS) -pthread $(FUZZ_LIBS_$*)

fuzz-bins: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@fail=0; for n in $(FUZZ_NAMES); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$n $(FUZZ_DIR)/crashes/$$n; \
	    seeds=""; for d in tests/fuzz/corpus/$$n tests/fuzz/regressions/$$n; do \
	        [ -d $$d ] && seeds="$$seeds $$d"; done; \
	    case $$n in http_response) max=$(FUZZ_MAXLEN_http_response);; \
	        decode) max=$(FUZZ_MAXLEN_decode);; url) max=$(FUZZ_MAXLEN_url);; \
	        retry_after) max=$(FUZZ_MAXLEN_retry_after);; input) max=$(FUZZ_MAXLEN_input);; \
	        *) max=$(FUZZ_MAXLEN_json);; esac; \
	    echo "fuzz_$$n: $(FUZZ_TIME) s, -max_len=$$max"; \
	    if $(FUZZ_DIR)/fuzz_$$n -max_total_time=$(FUZZ_TIME) -max_len=$$max -timeout=10 \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$$n/ \
	        $(FUZZ_DIR)/corpus/$$n $$seeds > $(FUZZ_DIR)/fuzz_$$n.log 2>&1; then \
	        grep -E '^stat::number_of_executed_units' $(FUZZ_DIR)/fuzz_$$n.log; \
	    else fail=1; echo "fuzz_$$n: FAILED; log $(FUZZ_DIR)/fuzz_$$n.log, inputs:"; \
	        ls $(FUZZ_DIR)/crashes/$$n; grep -m3 -E 'ERROR|SUMMARY|fuzz_' $(FUZZ_DIR)/fuzz_$$n.log; \
	    fi; done; exit $$fail

-include $(FUZZ_SRC_OBJS:.o=.d) $(FUZZ_CLI_OBJS:.o=.d)
