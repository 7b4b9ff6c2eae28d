#!/usr/bin/env bash
# tools/out-of-tree-test.sh - installs synchro into a temporary DESTDIR + PREFIX and
# builds, outside the source tree, what a user would:
#   1. a program on the runtime API, with nothing but `pkg-config --cflags --libs
#      synchro` (shared library; then the static one through `pkg-config --static`);
#   2. a generated module: a tiny spec, its implementation on libuv and a main calling
#      it blocking, through a future and on its own libuv loop, built by a Makefile that
#      includes the installed synchro.mk and generates with the installed synchro-bridge;
#      then `make synchro-check` passes, fails after a generated file is edited, and
#      passes again after `make synchro-generate`.
# Then it checks `make uninstall` removes every installed file, and cleans up.
# Run by `make install-test` and CI. KEEP=1 keeps the temporary folder.
#
# Two installs: a staged one (DESTDIR=T/stage PREFIX=/opt/synchro-oot, as a packager
# does: files land under DESTDIR, synchro.pc names PREFIX) that is checked and
# uninstalled, and one into PREFIX=T/prefix that the programs are built against with
# PKG_CONFIG_PATH alone (a staged tree would also need PKG_CONFIG_SYSROOT_DIR).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/synchro-oot.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
step() { echo "-- $*"; }
die() { echo "out-of-tree-test: FAILED: $*" >&2; exit 1; }
make=(make --no-print-directory -C "$root")
unset CFLAGS CPPFLAGS LDFLAGS MAKEFLAGS MFLAGS PKG_CONFIG_SYSROOT_DIR

version=$(sed -n 's/^#define SYNCHRO_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
  "$root/include/synchro/version.h" | paste -sd .)
major=${version%%.*}

# install DESTDIR PREFIX: runs make install and checks what it wrote under DESTDIR/PREFIX.
install_and_check() {
  local destdir=$1 prefix=$2 inst=$1$2 f h soname
  step "make install DESTDIR=$destdir PREFIX=$prefix"
  "${make[@]}" install DESTDIR="$destdir" PREFIX="$prefix" > "$tmp/install.log" ||
    { cat "$tmp/install.log"; die "make install"; }
  for f in include/synchro.h include/synchro/version.h lib/libsynchro.a \
           "lib/libsynchro.so.$version" lib/pkgconfig/synchro.pc bin/synchro-bridge \
           share/synchro/synchro.mk share/man/man1/synchro-bridge.1; do
    [ -f "$inst/$f" ] || die "$inst/$f not installed"
  done
  for h in "$root"/include/synchro/*.h; do
    cmp -s "$h" "$inst/include/synchro/$(basename "$h")" || die "header $(basename "$h") differs"
  done
  [ "$(readlink "$inst/lib/libsynchro.so.$major")" = "libsynchro.so.$version" ] ||
    die "libsynchro.so.$major is not a link to libsynchro.so.$version"
  [ "$(readlink "$inst/lib/libsynchro.so")" = "libsynchro.so.$major" ] ||
    die "libsynchro.so is not a link to libsynchro.so.$major"
  soname=$(readelf -d "$inst/lib/libsynchro.so.$version" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
  [ "$soname" = "libsynchro.so.$major" ] || die "SONAME is '$soname'"
  [ -z "$(find "$inst" -name 'internal.h' -o -name '*.o')" ] || die "private files installed"
  grep -qx "prefix=$prefix" "$inst/lib/pkgconfig/synchro.pc" || die "synchro.pc: prefix is not $prefix"
  grep -q "^Requires: libuv" "$inst/lib/pkgconfig/synchro.pc" || die "synchro.pc: Requires: libuv"
  grep -q "^Requires.private: jansson" "$inst/lib/pkgconfig/synchro.pc" ||
    die "synchro.pc: Requires.private: jansson"
  if command -v man > /dev/null; then
    man -l "$inst/share/man/man1/synchro-bridge.1" > /dev/null 2>&1 || die "synchro-bridge.1 does not render"
  fi
}

# uninstall DESTDIR PREFIX: make uninstall leaves no file behind.
uninstall_and_check() {
  local left
  step "make uninstall DESTDIR=$1 PREFIX=$2"
  "${make[@]}" uninstall DESTDIR="$1" PREFIX="$2" > "$tmp/uninstall.log" 2>&1 ||
    { cat "$tmp/uninstall.log"; die "make uninstall"; }
  left=$(find "$1$2" ! -type d)
  [ -z "$left" ] || die "left after uninstall: $left"
}

# ---- 0. a staged install, as for a package ---------------------------------------------
install_and_check "$tmp/stage" /opt/synchro-oot
uninstall_and_check "$tmp/stage" /opt/synchro-oot

# ---- the install the programs use -----------------------------------------------------
inst=$tmp/prefix
install_and_check "" "$inst"
export PKG_CONFIG_PATH=$inst/lib/pkgconfig
export PATH=$inst/bin:$PATH LD_LIBRARY_PATH=$inst/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

step "pkg-config: $(pkg-config --modversion synchro): $(pkg-config --cflags --libs synchro)"
[ "$(pkg-config --modversion synchro)" = "$version" ] || die "synchro.pc version"
bridge_version=$(synchro-bridge --version)
step "synchro-bridge --version: $bridge_version"
[ "${bridge_version##* }" = "$version" ] || die "synchro-bridge --version is not $version"
[ "$(command -v synchro-bridge)" = "$inst/bin/synchro-bridge" ] || die "synchro-bridge not on PATH"

CFLAGS_STRICT=(-std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wshadow -Werror)

# ---- 1. the runtime API, with pkg-config only -----------------------------------------
mkdir "$tmp/consumer"
cd "$tmp/consumer"
cat > consumer.c <<'EOF'
#include <stdio.h>
#include <string.h>
#include <synchro.h>

static void add_impl(synchro_call_t *call) {
  const int64_t *x = synchro_call_args(call);
  int64_t sum = x[0] + x[1];
  synchro_call_return(call, &sum);
}
static const synchro_op_t add_op = {.name = "add", .impl = add_impl,
    .args_size = 2 * sizeof(int64_t), .result_size = sizeof(int64_t)};

int main(void) {
  synchro_t *s;
  synchro_future_t *f;
  int64_t args[2] = {2, 3}, sum = 0, sum2 = 0;
  if (synchro_version() != SYNCHRO_VERSION_HEX)
    return 1;
  if (synchro_new(&s, NULL) != 0 ||
      synchro_call(s, &add_op, args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL) != 0 ||
      synchro_submit(s, &add_op, args, SYNCHRO_TIMEOUT_DEFAULT, &f) != 0)
    return 1;
  if (synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE) != 0 || synchro_future_result(f, &sum2) != 0)
    return 1;
  synchro_future_free(f);
  synchro_close(s, 1000);
  synchro_free(s);
  printf("consumer: synchro %s: add(2, 3) = %lld blocking, %lld from a future\n",
         synchro_version_string(), (long long)sum, (long long)sum2);
  return sum == 5 && sum2 == 5 ? 0 : 1;
}
EOF
step "consumer: cc consumer.c \$(pkg-config --cflags --libs synchro)"
# shellcheck disable=SC2046
cc "${CFLAGS_STRICT[@]}" $(pkg-config --cflags synchro) consumer.c -o consumer \
  $(pkg-config --libs synchro)
deps=$(ldd ./consumer)
grep -q "libsynchro.so.$major => $inst/lib/" <<< "$deps" ||
  die "consumer does not load the staged libsynchro.so.$major"
./consumer | tee out.txt
grep -q "consumer: synchro $version" out.txt || die "consumer output"

step "consumer, static libsynchro.a: \$(pkg-config --static --libs synchro)"
# shellcheck disable=SC2046
cc "${CFLAGS_STRICT[@]}" $(pkg-config --cflags synchro) consumer.c -o consumer-static \
  $(pkg-config --static --libs synchro | sed 's/-lsynchro\b/-l:libsynchro.a/')
deps=$(ldd ./consumer-static)
if grep -q libsynchro <<< "$deps"; then die "consumer-static loads libsynchro.so"; fi
./consumer-static > /dev/null || die "consumer-static"

# ---- 2. a generated module, through synchro.mk ----------------------------------------
mkdir "$tmp/module"
cd "$tmp/module"
cat > greet.json <<'EOF'
{
  "module": "greet",
  "doc": "The out-of-tree test's module.",
  "errors": [{"name": "negative", "message": "negative input"}],
  "functions": [
    {"name": "scale", "doc": "Waits 10 ms on a libuv timer, then returns x * 10.",
     "args": [{"name": "x", "type": "int"}], "returns": "int", "timeout_ms": 5000},
    {"name": "hello", "args": [{"name": "name", "type": "string"}], "returns": "string"}
  ]
}
EOF
cat > greet_impl.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>

#include "greet_impl.h"

typedef struct scale_timer_s {
  uv_timer_t timer;
  synchro_call_t *call;
  int64_t x;
} scale_timer;

static void on_closed(uv_handle_t *h) { free(h->data); }

static void on_cancel(synchro_call_t *call, int reason, void *data) {
  scale_timer *t = data;
  greet_scale_fail(call, reason, "stopped");
  uv_timer_stop(&t->timer);
  uv_close((uv_handle_t *)&t->timer, on_closed);
}

static void fired(uv_timer_t *h) {
  scale_timer *t = h->data;
  greet_scale_return(t->call, t->x * 10);
  uv_close((uv_handle_t *)&t->timer, on_closed);
}

void greet_scale_impl(synchro_call_t *call, const greet_scale_args_t *args) {
  scale_timer *t;
  if (args->x < 0) {
    greet_scale_fail(call, GREET_ENEGATIVE, NULL);
    return;
  }
  if ((t = calloc(1, sizeof(*t))) == NULL) {
    greet_scale_fail(call, SYNCHRO_ENOMEM, NULL);
    return;
  }
  t->call = call;
  t->x = args->x;
  uv_timer_init(synchro_call_loop(call), &t->timer);
  t->timer.data = t;
  uv_timer_start(&t->timer, fired, 10, 0);
  synchro_call_on_cancel(call, on_cancel, t);
}

void greet_hello_impl(synchro_call_t *call, const greet_hello_args_t *args) {
  char buf[128];
  snprintf(buf, sizeof(buf), "hello, %s", args->name);
  greet_hello_return(call, buf);
}
EOF
cat > main.c <<'EOF'
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "greet.h"

static int failures;
#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      printf("FAILED: %s (line %d)\n", #cond, __LINE__);                                           \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

static void scaled(int status, int64_t result, const synchro_error_t *err, void *data) {
  (void)err;
  *(int64_t *)data = status == 0 ? result : status;
}

int main(void) {
  synchro_t *s;
  synchro_error_t *err = NULL;
  synchro_future_t *f;
  synchro_host_t *host;
  uv_loop_t loop;
  int64_t v = 0, aio = 0;
  char *text = NULL;

  CHECK(synchro_new(&s, NULL) == 0);
  CHECK(greet_use_synchronizer(s) == 0);

  CHECK(greet_scale(4, &v, &err) == 0 && v == 40); /* 1. blocking */
  printf("blocking: scale(4) = %lld\n", (long long)v);
  CHECK(greet_scale(-1, &v, &err) == GREET_ENEGATIVE);
  printf("blocking: scale(-1): %s (%s)\n", synchro_error_message(err), synchro_error_origin(err));
  CHECK(strcmp(synchro_error_message(err), "negative input") == 0);
  synchro_error_free(err);

  CHECK(greet_scale_future(5, &f) == 0); /* 2. a future */
  CHECK(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE) == 0);
  CHECK(greet_scale_result(f, &v) == 0 && v == 50);
  printf("future: scale(5) = %lld\n", (long long)v);
  synchro_future_free(f);

  CHECK(uv_loop_init(&loop) == 0); /* 3. on this thread's libuv loop */
  CHECK(synchro_host_new_uv(&host, &loop) == 0);
  CHECK(greet_scale_aio(6, host, scaled, &aio) == 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(aio == 60);
  printf("aio: scale(6) = %lld\n", (long long)aio);
  synchro_host_free(host);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(&loop) == 0);

  CHECK(greet_hello("world", &text, NULL) == 0 && text != NULL && strcmp(text, "hello, world") == 0);
  printf("hello: %s\n", text ? text : "(null)");
  synchro_mem_free(text);

  CHECK(synchro_close(s, 1000) == 0);
  synchro_free(s);
  printf(failures ? "greet: %d check(s) FAILED\n" : "greet: all checks passed\n", failures);
  return failures ? 1 : 0;
}
EOF
cat > Makefile <<'EOF'
include $(shell pkg-config --variable=synchro_mk synchro)
$(eval $(call synchro_module,greet.json,gen))

CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wshadow -Werror \
          $(SYNCHRO_CFLAGS) -Igen

app: main.c greet_impl.c $(SYNCHRO_GEN_SRCS) | $(SYNCHRO_GEN_HDRS)
	$(CC) $(CFLAGS) main.c greet_impl.c $(SYNCHRO_GEN_SRCS) -o $@ $(SYNCHRO_LIBS)

# synchro-check first: a stale gen/ must be reported, not regenerated by the build.
check: synchro-check
	$(MAKE) --no-print-directory app
	./app
EOF
step "module: make (synchro.mk runs synchro-bridge generate greet.json -o gen)"
make --no-print-directory > build.log 2>&1 || { cat build.log; die "make app"; }
grep -q '^synchro-bridge generate greet.json -o gen' build.log || { cat build.log; die "not generated by synchro-bridge"; }
for f in gen/greet.h gen/greet.c gen/greet_impl.h; do [ -f "$f" ] || die "$f not generated"; done
[ -x app ] || die "make did not build app (synchro.mk changed the default goal?)"
step "module: make check (synchro-check, then the program)"
make --no-print-directory check | tee check.log
grep -q 'greet: all checks passed' check.log || die "module program"
make --no-print-directory -q app || die "make app is not up to date after a build"

step "module: a hand-edited generated file makes synchro-check fail"
echo "/* edited */" >> gen/greet.h
if make --no-print-directory synchro-check > drift.log 2>&1; then
  cat drift.log; die "synchro-check passed on a stale gen/"
fi
grep -q 'edited' drift.log || { cat drift.log; die "synchro-check printed no diff"; }
make --no-print-directory synchro-generate > /dev/null
make --no-print-directory synchro-check > /dev/null || die "synchro-check after synchro-generate"
step "module: a newer spec is regenerated"
sleep 1
touch greet.json
make --no-print-directory app > rebuild.log 2>&1 || { cat rebuild.log; die "make app after touching the spec"; }
grep -q '^synchro-bridge generate' rebuild.log || { cat rebuild.log; die "spec change not regenerated"; }

# ---- uninstall -------------------------------------------------------------------------
cd "$tmp"
uninstall_and_check "" "$inst"

echo "out-of-tree-test: passed: synchro $version installed (DESTDIR + PREFIX, and PREFIX), a consumer and a generated module built with pkg-config and synchro.mk, uninstalled"
