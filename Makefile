# synchro - plain Makefile. `make help` lists the targets.

# Version numbers come from the header, so there is one place to bump them.
VERSION_H := include/synchro/version.h
MAJOR := $(shell sed -n 's/^\#define SYNCHRO_VERSION_MAJOR \([0-9]*\)/\1/p' $(VERSION_H))
MINOR := $(shell sed -n 's/^\#define SYNCHRO_VERSION_MINOR \([0-9]*\)/\1/p' $(VERSION_H))
PATCH := $(shell sed -n 's/^\#define SYNCHRO_VERSION_PATCH \([0-9]*\)/\1/p' $(VERSION_H))
VERSION := $(MAJOR).$(MINOR).$(PATCH)

CC ?= cc
B ?= build
WERROR ?= 1
PKGS := libuv jansson

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wwrite-strings -Wpointer-arith \
        -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARN += -Werror
endif
STD := -std=c11 -D_POSIX_C_SOURCE=200809L
OPT ?= -O2 -g
BASE_CFLAGS := $(STD) $(WARN) $(OPT) -fPIC -fvisibility=hidden -Iinclude \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(BASE_CFLAGS) $(SAN) $(CPPFLAGS) $(CFLAGS)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
ALL_LDFLAGS = $(SAN) $(LDFLAGS)

LIB_SRCS := $(sort $(wildcard lib/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj/%.o)
BRIDGE_SRCS := $(sort $(wildcard bridge/*.c))
BRIDGE_OBJS := $(BRIDGE_SRCS:%.c=$(B)/obj/%.o)
TEST_SRCS := $(sort $(wildcard tests/check_*.c))
TEST_BINS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
TEST_SUPPORT_SRCS := $(sort $(wildcard tests/support/*.c))
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(B)/obj/%.o)
DEMO_SRCS := $(sort $(wildcard examples/runtime/*.c))
# hello (examples/hello/, the main demo) runs first.
DEMO_BINS := $(B)/examples/hello $(DEMO_SRCS:examples/runtime/%.c=$(B)/examples/%) $(B)/examples/host_loop

STATIC_LIB := $(B)/libsynchro.a
# The test build of the library: the same sources with the test seams of lib/testing.h.
TEST_LIB := $(B)/libsynchro-test.a
TEST_LIB_OBJS := $(LIB_SRCS:%.c=$(B)/obj-test/%.o)
SHARED_LIB := $(B)/libsynchro.so.$(VERSION)
SONAME := libsynchro.so.$(MAJOR)

# Debian packages the build, the tests and the examples need.
DEB_PKGS := build-essential pkg-config libuv1-dev libjansson-dev check valgrind \
            libglib2.0-dev libevent-dev
DEB_MISSING = $(shell for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all lib check asan tsan valgrind demo deps clean help examples
.DEFAULT_GOAL := all

all: lib $(if $(BRIDGE_SRCS),$(B)/bridge)
lib: $(STATIC_LIB) $(SHARED_LIB)

help:
	@echo "make deps      install missing Debian packages (apt-get, sudo when not root)"
	@echo "make           build libsynchro.a, libsynchro.so and the bridge tool"
	@echo "make demo      build and run the example programs"
	@echo "make check     install what is missing, build and run every test program"
	@echo "make asan      the whole suite under ASan+UBSan (build/asan)"
	@echo "make tsan      the whole suite under TSan (build/tsan)"
	@echo "make valgrind  the whole suite under valgrind memcheck (fork-tagged tests excluded)"
	@echo "make stress    16 callers x 1,000,000 mixed calls, checked (STRESS_THREADS, STRESS_ITERS)"
	@echo "make race      the seam races x 100,000 with random jitter at every seam (RACE_ITERS)"
	@echo "make soak      mixed load for SOAK_SECONDS (600), RSS/fds every SOAK_INTERVAL s (60);"
	@echo "               fails on growth after warm-up. Not in check or CI"
	@echo "make bench     the benchmarks against their floor (QUICK=1 for a short run)"
	@echo "make kv-demo / make http-demo   the kv and http examples against local servers"
	@echo "make install / uninstall        PREFIX=/usr/local DESTDIR= as usual"
	@echo "make check-exports check-headers format-check install-test   packaging checks"
	@echo "make fuzz      libFuzzer on the spec parser (FUZZ_SECONDS=60)"
	@echo "make coverage  line coverage of lib/ and bridge/ (gcovr)"
	@echo "make clean     remove build/"

deps:
	@missing="$(DEB_MISSING)"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(B)/obj-test/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DSYNCHRO_TEST_SEAMS -MMD -MP -c $< -o $@

$(TEST_LIB): $(TEST_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(STATIC_LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SONAME) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
	ln -sf libsynchro.so.$(VERSION) $(B)/$(SONAME)
	ln -sf libsynchro.so.$(VERSION) $(B)/libsynchro.so

$(B)/bridge: $(BRIDGE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# A31: every test program runs with libuv's handle functions wrapped, so a call that
# targets a running synchronizer's loop from another thread aborts the test
# (tests/support/affinity.c).
AFFINITY_WRAPPED := uv_timer_init uv_timer_start uv_timer_stop uv_poll_init uv_poll_start \
  uv_poll_stop uv_prepare_start uv_idle_start uv_tcp_init uv_read_start uv_read_stop uv_write \
  uv_queue_work uv_close uv_stop
AFFINITY_LDFLAGS := $(foreach f,$(AFFINITY_WRAPPED),-Wl,--wrap=$(f))
$(B)/obj/tests/support/affinity.o: ALL_CFLAGS += -Ilib -Itests -DSYNCHRO_TEST_SEAMS
# check_seams also calls the test build's internal checks (lib/internal.h).
$(B)/tests/check_seams: EXTRA_TEST_FLAGS := -DSYNCHRO_TEST_SEAMS

$(B)/tests/%: tests/%.c $(TEST_SUPPORT_OBJS) $(TEST_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests -Ilib -MMD -MP $< $(EXTRA_TEST_SRCS) $(TEST_SUPPORT_OBJS) $(TEST_LIB) -o $@ \
	  $(ALL_LDFLAGS) $(AFFINITY_LDFLAGS) $(CHECK_LIBS) $(LIBS) -lm $(EXTRA_TEST_FLAGS)

# check_conformance links the generated conformance module and its implementation.
CONF_SRCS := tests/conformance/gen/conf.c tests/conformance/conf_impl.c
$(B)/tests/check_conformance: EXTRA_TEST_SRCS := $(CONF_SRCS)
$(B)/tests/check_conformance: EXTRA_TEST_FLAGS := -Itests/conformance/gen
$(B)/tests/check_conformance: $(CONF_SRCS) $(wildcard tests/conformance/gen/*.h)
# check_alloc_modules sweeps the generated wrappers of the same module.
$(B)/tests/check_alloc_modules: EXTRA_TEST_SRCS := $(CONF_SRCS)
$(B)/tests/check_alloc_modules: EXTRA_TEST_FLAGS := -Itests/conformance/gen
$(B)/tests/check_alloc_modules: $(CONF_SRCS) $(wildcard tests/conformance/gen/*.h)

# check_fuzz_replay runs the fuzz harness (tests/fuzz/fuzz_spec.c) over known inputs.
BRIDGE_CORE_OBJS := $(filter-out $(B)/obj/bridge/main.o $(B)/obj/bridge/check.o,$(BRIDGE_OBJS))
$(B)/tests/check_fuzz_replay: EXTRA_TEST_SRCS := tests/fuzz/fuzz_spec.c $(BRIDGE_CORE_OBJS)
$(B)/tests/check_fuzz_replay: EXTRA_TEST_FLAGS := -iquote bridge
$(B)/tests/check_fuzz_replay: tests/fuzz/fuzz_spec.c $(BRIDGE_CORE_OBJS)

# check_embed (A35) loads four builds of tests/embed/embed.c: two that each embed a
# hidden copy of the static library, and two that share libsynchro.so.
EMBED_DIR := $(B)/tests/embed
EMBED_LIBS := $(EMBED_DIR)/libembed_a.so $(EMBED_DIR)/libembed_b.so \
              $(EMBED_DIR)/libshared_a.so $(EMBED_DIR)/libshared_b.so
$(EMBED_DIR)/libembed_%.so: tests/embed/embed.c $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -shared -DEMBED_PREFIX=embed_$* $< $(STATIC_LIB) -o $@ \
	  -Wl,--exclude-libs,ALL $(ALL_LDFLAGS) $(LIBS)
$(EMBED_DIR)/libshared_%.so: tests/embed/embed.c $(SHARED_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -shared -DEMBED_PREFIX=shared_$* $< -L$(B) -lsynchro \
	  -Wl,-rpath,$(abspath $(B)) -o $@ $(ALL_LDFLAGS) $(LIBS)
$(B)/tests/check_embed: EXTRA_TEST_FLAGS := -DEMBED_DIR='"$(abspath $(EMBED_DIR))"' -ldl
$(B)/tests/check_embed: $(EMBED_LIBS)

# check_host also drives a GLib main loop and a libevent base.
$(B)/tests/check_host: EXTRA_TEST_FLAGS := $$(pkg-config --cflags --libs glib-2.0 libevent)

$(B)/examples/%: examples/runtime/%.c $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< $(STATIC_LIB) -o $@ $(ALL_LDFLAGS) $(LIBS)

# hello: its implementation, the code bridge generated from hello.json, and main.c.
HELLO_SRCS := examples/hello/main.c examples/hello/hello_impl.c examples/hello/gen/hello.c
$(B)/examples/hello: $(HELLO_SRCS) $(wildcard examples/hello/gen/*.h) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iexamples/hello/gen $(HELLO_SRCS) $(STATIC_LIB) -o $@ $(ALL_LDFLAGS) $(LIBS)

$(B)/examples/host_loop: examples/host_loop/main.c $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< $(STATIC_LIB) -o $@ $(ALL_LDFLAGS) $(LIBS)

# Every test program runs even when one fails; the target fails if any did.
CK_ENV := CK_VERBOSITY=$${CK_VERBOSITY:-normal} CK_TIMEOUT_MULTIPLIER=$${CK_TIMEOUT_MULTIPLIER:-1}
run-tests: $(TEST_BINS) $(if $(BRIDGE_SRCS),$(B)/bridge)
	@mkdir -p $(B)/logs; failed=0; \
	for t in $(TEST_BINS); do \
	  n=$$(basename $$t); \
	  echo "== $$n"; \
	  BRIDGE=$(B)/bridge $(CK_ENV) CK_TAP_LOG_FILE_NAME=$(B)/logs/$$n.tap $(RUNNER) $$t || failed=$$((failed+1)); \
	done; \
	if [ $$failed -ne 0 ]; then echo "$$failed test program(s) failed"; exit 1; fi; \
	echo "all $(words $(TEST_BINS)) test programs passed"

# Drift check (A34): every committed spec/gen pair must match a fresh generation, and
# gen/ must hold nothing else. `make check` runs it before the tests. An example's spec
# is examples/NAME/spec.json or examples/NAME/NAME.json, next to its gen/.
BRIDGE_PAIRS := tests/conformance/conf.json:tests/conformance/gen \
  $(foreach d,$(patsubst %/gen/,%,$(wildcard examples/*/gen/)),\
    $(foreach s,$(firstword $(wildcard $(d)/spec.json $(d)/$(notdir $(d)).json)),$(s):$(d)/gen))
.PHONY: bridge-check
bridge-check: $(B)/bridge
	@for p in $(BRIDGE_PAIRS); do \
	  spec=$${p%%:*}; dir=$${p#*:}; echo "== bridge check $$spec -o $$dir"; \
	  $(B)/bridge check $$spec -o $$dir || exit 1; \
	  n=$$(ls -A $$dir | wc -l); \
	  if [ $$n -ne 3 ]; then echo "$$dir holds $$n files, expected the 3 generated ones"; exit 1; fi; \
	done
run-tests: bridge-check

# libFuzzer on the spec parser, validator and emitters (clang); not part of `make check`.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
.PHONY: fuzz
fuzz:
	@mkdir -p $(B)/fuzz-corpus
	$(FUZZ_CC) -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
	  -Iinclude -Ibridge tests/fuzz/fuzz_spec.c $(filter-out bridge/main.c bridge/check.c,$(BRIDGE_SRCS)) \
	  $$(pkg-config --cflags --libs jansson) -o $(B)/fuzz_spec
	@for f in $$(find tests/bridge tests/conformance -name '*.json'); do \
	  cp "$$f" "$(B)/fuzz-corpus/$$(echo "$$f" | tr / _)"; done
	$(B)/fuzz_spec -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -dict=tests/fuzz/spec.dict \
	  $(B)/fuzz-corpus tests/fuzz/corpus

check: deps
	@$(MAKE) --no-print-directory run-tests

SAN_ASAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_TSAN := -fsanitize=thread
asan: deps
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  CK_TIMEOUT_MULTIPLIER=4 $(MAKE) --no-print-directory B=build/asan SAN="$(SAN_ASAN)" OPT="-O1 -g" run-tests
tsan: deps
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  SYNCHRO_TEST_SCALE=20 CK_TIMEOUT_MULTIPLIER=10 \
	  $(MAKE) --no-print-directory B=build/tsan SAN="$(SAN_TSAN)" OPT="-O1 -g" run-tests
# In fork mode every test is its own process, checked for leaks when it exits (a leak
# fails that test). Tests tagged "fork" fork children of their own that inherit memory
# owned by threads which do not exist there: memcheck would call that lost, so they
# run in the other targets only.
valgrind: deps
	@CK_EXCLUDE_TAGS=fork CK_TIMEOUT_MULTIPLIER=20 SYNCHRO_TEST_SCALE=50 \
	  $(MAKE) --no-print-directory B=build/valgrind OPT="-O1 -g" \
	  RUNNER="valgrind -q --leak-check=full --show-possibly-lost=no --show-reachable=no --error-exitcode=1 --errors-for-leak-kinds=definite,indirect" run-tests

examples: $(DEMO_BINS)
demo: deps
	@$(MAKE) --no-print-directory examples
	@for d in $(DEMO_BINS); do echo "== $$d"; $$d || exit 1; done

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(TEST_LIB_OBJS:.o=.d) $(BRIDGE_OBJS:.o=.d) $(TEST_BINS:=.d) $(TEST_SUPPORT_OBJS:.o=.d)
# Objects that only feed test programs are not intermediates: keep them.
.SECONDARY: $(TEST_SUPPORT_OBJS)

# Benchmarks (not part of `make check`): `make bench`, `QUICK=1 make bench`,
# BENCH_ARGS="--only blocking_cross --rounds 9" for more. See docs/performance.md.
BENCH_SRCS := $(sort $(wildcard tests/bench/*.c))
$(B)/bench/bench: $(BENCH_SRCS) tests/bench/bench.h $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/bench $(BENCH_SRCS) $(STATIC_LIB) -o $@ $(ALL_LDFLAGS) $(LIBS) -lm
.PHONY: bench
bench: $(B)/bench/bench
	$(B)/bench/bench $(if $(filter-out 0,$(QUICK)),--quick) --json $(B)/bench.json $(BENCH_ARGS)

# ---- packaging and tooling (docs/getting-started.md) ---------------------------------
# install/uninstall honour PREFIX and DESTDIR; check-exports, check-headers, format,
# format-check, compile_commands.json, coverage, install-test (tools/out-of-tree-test.sh).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
SYNCHRO_MK_DIR ?= $(DATADIR)/synchro
INSTALL ?= install
PUBLIC_HEADERS := $(sort $(wildcard include/synchro/*.h))
MAN1_PAGES := $(sort $(wildcard man/*.1))
# In synchro.pc, directories under PREFIX are written relative to ${prefix}.
pc_rel = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

.PHONY: install uninstall install-test check-exports check-headers format format-check coverage FORCE
all: $(B)/synchro.pc

# Rewritten when PREFIX or a directory changes (the recipe compares before replacing).
$(B)/synchro.pc: synchro.pc.in $(VERSION_H) FORCE
	@mkdir -p $(@D)
	@sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_rel,$(LIBDIR))|' \
	  -e 's|@INCLUDEDIR@|$(call pc_rel,$(INCLUDEDIR))|' -e 's|@BINDIR@|$(call pc_rel,$(BINDIR))|' \
	  -e 's|@MKFILE@|$(call pc_rel,$(SYNCHRO_MK_DIR))/synchro.mk|' -e 's|@VERSION@|$(VERSION)|' \
	  synchro.pc.in > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; echo "wrote $@ (prefix $(PREFIX))"; fi

install: lib $(B)/bridge $(B)/synchro.pc
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR)/synchro $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYNCHRO_MK_DIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 644 include/synchro.h $(DESTDIR)$(INCLUDEDIR)/synchro.h
	$(INSTALL) -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/synchro/
	$(INSTALL) -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/libsynchro.a
	$(INSTALL) -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/libsynchro.so.$(VERSION)
	ln -sf libsynchro.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libsynchro.so
	$(INSTALL) -m 644 $(B)/synchro.pc $(DESTDIR)$(PKGCONFIGDIR)/synchro.pc
	$(INSTALL) -m 755 $(B)/bridge $(DESTDIR)$(BINDIR)/synchro-bridge
	$(INSTALL) -m 644 synchro.mk $(DESTDIR)$(SYNCHRO_MK_DIR)/synchro.mk
	$(INSTALL) -m 644 $(MAN1_PAGES) $(DESTDIR)$(MANDIR)/man1/

# Removes exactly what install wrote, then the folders it made if they are empty.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/synchro/,$(notdir $(PUBLIC_HEADERS)))
	rm -f $(DESTDIR)$(INCLUDEDIR)/synchro.h
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,libsynchro.a libsynchro.so $(SONAME) libsynchro.so.$(VERSION))
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/synchro.pc $(DESTDIR)$(BINDIR)/synchro-bridge
	rm -f $(DESTDIR)$(SYNCHRO_MK_DIR)/synchro.mk
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1_PAGES)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/synchro $(DESTDIR)$(SYNCHRO_MK_DIR) 2>/dev/null

# Installs into a temporary DESTDIR/PREFIX and builds a consumer out of tree.
install-test: lib $(B)/bridge
	bash tools/out-of-tree-test.sh

# Every dynamic symbol libsynchro.so defines must be synchro_* (hidden visibility).
check-exports: $(SHARED_LIB)
	@bad=$$(nm -D --defined-only $(SHARED_LIB) | awk '{ print $$NF }' | grep -v '^synchro_' || true); \
	n=$$(nm -D --defined-only $(SHARED_LIB) | wc -l); \
	if [ -n "$$bad" ]; then echo "check-exports: symbols outside synchro_* in $(SHARED_LIB):"; \
	  echo "$$bad" | sed 's/^/  /'; exit 1; fi; \
	echo "check-exports: $$n symbols exported by $(SHARED_LIB), all synchro_*; SONAME $$(readelf -d $(SHARED_LIB) | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')"

check-headers:
	@bash tools/check-headers.sh

format:
	@bash tools/format.sh fix
format-check:
	@bash tools/format.sh check

# With bear when installed, else from `make -n` (tools/compile-commands.sh); objects
# go to build/compdb so the main build is left alone.
compile_commands.json: FORCE
	@bash tools/compile-commands.sh all examples \
	  $(patsubst $(B)/%,build/compdb/%,$(TEST_BINS)) build/compdb/bench/bench

# Line coverage of lib/ and bridge/ over the test suite (gcovr, installed when missing);
# HTML report: build/coverage/coverage.html. Atomic counters: the runtime is threaded.
COV_DIR := build/coverage
coverage: deps
	@command -v gcovr >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcovr; }
	@find $(COV_DIR) -name '*.gcda' -delete 2>/dev/null || true
	@CK_TIMEOUT_MULTIPLIER=4 $(MAKE) --no-print-directory B=$(COV_DIR) \
	  SAN="--coverage -fprofile-update=atomic" \
	  OPT="-O0 -g" run-tests
	@echo; echo "== line coverage: lib/"
	@gcovr -r . -f 'lib/' --object-directory $(COV_DIR) --txt -s
	@echo; echo "== line coverage: bridge/"
	@gcovr -r . -f 'bridge/' --object-directory $(COV_DIR) --txt -s
	@gcovr -r . -f 'lib/' -f 'bridge/' --object-directory $(COV_DIR) \
	  --html-details $(COV_DIR)/coverage.html >/dev/null && echo "html: $(COV_DIR)/coverage.html"

FORCE:
# ---- end of packaging and tooling -----------------------------------------------------

# ---- examples/http: an API client on libcurl's multi interface (examples/http/README.md)
# libcurl's multi handle runs on the synchronizer's loop (http_multi.c + http_impl.c);
# three programs call it blocking, with futures and with _aio; check_http tests it
# against tests/http/server.py (Python's http.server, on a free loopback port).
DEB_PKGS += libcurl4-openssl-dev python3
CURL_FLAGS = $$(pkg-config --cflags --libs libcurl)
HTTP_IMPL_SRCS := examples/http/http_impl.c examples/http/http_multi.c examples/http/gen/http.c
HTTP_DEPS := $(HTTP_IMPL_SRCS) examples/http/http_internal.h $(wildcard examples/http/gen/*.h)
HTTP_BINS := $(B)/examples/http_get $(B)/examples/http_gather $(B)/examples/http_aio
$(HTTP_BINS): $(B)/examples/%: examples/http/%.c $(HTTP_DEPS) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iexamples/http/gen $< $(HTTP_IMPL_SRCS) $(STATIC_LIB) -o $@ \
	  $(ALL_LDFLAGS) $(LIBS) $(CURL_FLAGS)
$(B)/tests/check_http: EXTRA_TEST_SRCS := $(HTTP_IMPL_SRCS)
$(B)/tests/check_http: EXTRA_TEST_FLAGS := -Iexamples/http/gen $(CURL_FLAGS)
$(B)/tests/check_http: $(HTTP_DEPS)
# `make demo` builds them (they need a server: `make http-demo` runs them).
examples: $(HTTP_BINS)
# Starts tests/http/server.py on a free port, runs the three programs against it, stops it.
.PHONY: http-demo
http-demo: $(HTTP_BINS)
	@pf=$(B)/http-demo.port; rm -f $$pf; \
	python3 tests/http/server.py --port-file $$pf >/dev/null & pid=$$!; \
	for i in $$(seq 100); do [ -s $$pf ] && break; sleep 0.05; done; \
	url=http://127.0.0.1:$$(cat $$pf 2>/dev/null); echo "== test server at $$url (pid $$pid)"; \
	rc=0; \
	echo "== http_get $$url /json"; $(B)/examples/http_get $$url /json || rc=1; \
	echo "== http_get $$url /404 (fails on purpose)"; \
	  if $(B)/examples/http_get $$url /404; then rc=1; fi; \
	echo "== http_gather $$url 200"; $(B)/examples/http_gather $$url 200 || rc=1; \
	echo "== http_aio $$url"; $(B)/examples/http_aio $$url || rc=1; \
	kill $$pid; wait $$pid 2>/dev/null; rm -f $$pf; \
	if [ $$rc -ne 0 ]; then echo "http-demo FAILED"; fi; exit $$rc
# ---- end of examples/http ----------------------------------------------------------------

# ---- examples/kv: an async Redis client (examples/kv/README.md) ----------------------
# One implementation (kv_impl.c: libuv TCP + hiredis's reply reader) and its generated
# wrappers (gen/, checked by bridge-check), used by three programs, tests/check_kv.c and
# the kv section of `make bench`. Building needs libhiredis-dev; running needs
# redis-server (the tests, kv-demo and the bench start their own, on a free port).
DEB_PKGS += libhiredis-dev redis-server
HIREDIS_FLAGS = $$(pkg-config --cflags --libs hiredis)
KV_SRCS := examples/kv/kv_impl.c examples/kv/gen/kv.c
KV_DEPS := $(KV_SRCS) $(wildcard examples/kv/gen/*.h) $(STATIC_LIB)
KV_BINS := $(B)/examples/kv $(B)/examples/kv_load $(B)/examples/kv_aio
$(B)/examples/kv: examples/kv/kv_cli.c $(KV_DEPS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iexamples/kv/gen $< $(KV_SRCS) $(STATIC_LIB) -o $@ $(ALL_LDFLAGS) $(LIBS) $(HIREDIS_FLAGS)
$(B)/examples/kv_load $(B)/examples/kv_aio: $(B)/examples/%: examples/kv/%.c $(KV_DEPS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iexamples/kv/gen $< $(KV_SRCS) $(STATIC_LIB) -o $@ $(ALL_LDFLAGS) $(LIBS) $(HIREDIS_FLAGS)
# `make demo` builds them (they need a server to run); `make kv-demo` runs them against
# a temporary redis-server.
examples: $(KV_BINS)
.PHONY: kv-demo bench-kv
kv-demo: $(KV_BINS)
	@bash examples/kv/kv-demo.sh $(B)/examples
# check_kv links the kv module (generated code + implementation) and hiredis.
$(B)/tests/check_kv: EXTRA_TEST_SRCS := $(KV_SRCS)
$(B)/tests/check_kv: EXTRA_TEST_FLAGS := -Iexamples/kv/gen $(HIREDIS_FLAGS)
$(B)/tests/check_kv: $(KV_SRCS) $(wildcard examples/kv/gen/*.h) tests/kv/redis_server.h
# The kv bench: blocking GET latency and pipelined SET throughput, synchro vs hiredis's
# own synchronous API, against a temporary redis-server. Part of `make bench`.
$(B)/bench/kv_bench: tests/bench/kv/kv_bench.c tests/kv/redis_server.h $(KV_DEPS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iexamples/kv/gen -Itests $< $(KV_SRCS) $(STATIC_LIB) -o $@ $(ALL_LDFLAGS) $(LIBS) $(HIREDIS_FLAGS) -lm
bench-kv: $(B)/bench/kv_bench
	$(B)/bench/kv_bench $(if $(filter-out 0,$(QUICK)),--quick)
bench: bench-kv
# ---- end of examples/kv -----------------------------------------------------------------

# ---- stress, soak and jittered races (tests/stress/; docs/reliability.md §1.12) -------
# One program over the test build of the library (seams for the jitter): `make stress`
# runs 16 callers x 1,000,000 mixed calls (STRESS_THREADS, STRESS_ITERS); `make race`
# 100,000 iterations of the seam races with random jitter (RACE_ITERS); `make soak`
# mixed load for SOAK_SECONDS (600), RSS and fds every SOAK_INTERVAL s (60). None is
# part of `make check`, which runs them scaled down (tests/check_stress.c).
STRESS_SRCS := tests/stress/stress.c tests/stress/mix.c
STRESS_THREADS ?= 16
STRESS_ITERS ?= 1000000
RACE_ITERS ?= 100000
$(B)/stress/stress: $(STRESS_SRCS) tests/stress/mix.h $(TEST_SUPPORT_OBJS) $(TEST_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests -Ilib $(STRESS_SRCS) $(TEST_SUPPORT_OBJS) $(TEST_LIB) -o $@ \
	  $(ALL_LDFLAGS) $(AFFINITY_LDFLAGS) $(CHECK_LIBS) $(LIBS)
$(B)/tests/check_stress: EXTRA_TEST_SRCS := tests/stress/mix.c
$(B)/tests/check_stress: tests/stress/mix.c tests/stress/mix.h
.PHONY: stress soak race
stress: $(B)/stress/stress
	$(B)/stress/stress stress $(STRESS_THREADS) $(STRESS_ITERS)
race: $(B)/stress/stress
	$(B)/stress/stress race $(RACE_ITERS)
soak: $(B)/stress/stress
	$(B)/stress/stress soak
# ---- end of stress ------------------------------------------------------------------

# ---- model checking (tests/model/README.md) -----------------------------------------
# Spin models of one call record's state machine (tests/model/call.pml) and of the
# batch-wait group (tests/model/batch.pml): exhaustive searches of their assertions,
# end states and LTL properties. `make model` fails on any error and prints the states
# explored (about 30 s); `make model-mutants` plants known bugs in copies of the models
# and fails unless every one is caught (about 10 s). Work files: $(B)/model.
.PHONY: model model-mutants model-deps
model-deps:
	@command -v spin >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spin; }
model: model-deps
	@bash tests/model/verify.sh $(B)/model
model-mutants: model-deps
	@bash tests/model/verify.sh --mutants $(B)/model
# ---- end of model checking ------------------------------------------------------------
