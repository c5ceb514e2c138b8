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
DEP_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto -lcares -lz -lbrotlidec -lzstd -luriparser -lidn2
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
	          /usr/include/uriparser/Uri.h /usr/include/idn2.h; do \
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

$(BUILD)/volley: $(CLI_OBJS) $(BUILD)/libvolley.a
	$(CC) -o $@ $(CLI_OBJS) $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libvolley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS) -lcmocka

$(BUILD)/examples/%: tools/examples/%.c tools/examples/example.h $(BUILD)/libvolley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libvolley.a $(LDFLAGS_ALL) $(DEP_LIBS) \
	    $(call example_flags,$*)

examples: $(EXAMPLE_BINS)

# The test command README gives.  Installs test packages when missing
# (install-deps.sh asks dpkg first and exits at once when nothing is).
test: all
	@sh tools/install-deps.sh
	@$(MAKE) --no-print-directory BUILD=$(BUILD) SAN_FLAGS="$(SAN_FLAGS)" unit-bins examples
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
PC_REQUIRES_PRIVATE := libcares zlib libbrotlidec libzstd liburiparser libidn2
PC_LIBS_PRIVATE     := -lmbedtls -lmbedx509 -lmbedcrypto
INSTALLED := $(BINDIR)/volley $(LIBDIR)/libvolley.so.$(VERSION) $(LIBDIR)/$(SONAME) \
             $(LIBDIR)/libvolley.so $(LIBDIR)/libvolley.a $(INCLUDEDIR)/volley.h \
             $(PKGCONFIGDIR)/volley.pc $(MANDIR)/man1/volley.1 $(MANDIR)/man3/volley.3

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	$(INSTALL) -m 755 $(BUILD)/volley $(DESTDIR)$(BINDIR)/volley
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
