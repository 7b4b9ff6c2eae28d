#!/usr/bin/env bash
# tools/check-headers.sh - checks the public headers (include/synchro.h, include/synchro/*.h).
#
#  1. Each header compiles alone, twice included, as C11 (with the project's warnings)
#     and as C++ (g++ -x c++ -fsyntax-only).
#  2. Every function it declares has C linkage in C++: a C++ file taking the address of
#     each function compiles to an object without mangled (_Z...) references.
#  3. Every public function declaration (SYNCHRO_EXTERN ...) has a doc comment right
#     above it (no blank line) that states its thread rule: it contains "Thread-safe",
#     "thread only" or "Loop thread". Declarations that follow each other without a blank
#     line form a group sharing the comment above the first. A top-level prototype
#     without SYNCHRO_EXTERN is an error too (it would not be exported).
#
# Usage: tools/check-headers.sh [HEADER...]   (default: every public header)
# CC and CXX pick the compilers (default cc, g++). Exit 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${CC:-cc}
CXX=${CXX:-g++}
if [ $# -gt 0 ]; then headers=("$@"); else headers=(include/synchro.h include/synchro/*.h); fi
uv_cflags=$(pkg-config --cflags libuv 2>/dev/null || true)
cflags=(-std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wshadow -Wstrict-prototypes
        -Wpedantic -Werror -Iinclude)
cxxflags=(-std=c++11 -Wall -Wextra -Werror -Iinclude)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "check-headers: $*"; failed=$((failed + 1)); }

# The functions a header declares: the identifier before the first "(" of each
# SYNCHRO_EXTERN declaration.
declared() {
  awk '/^SYNCHRO_EXTERN/ { s = $0; sub(/\(.*/, "", s); n = split(s, w, /[ *]+/); print w[n] }' "$1"
}

# The doc-comment rule (3): prints one line per offending declaration.
doc_check() {
  awk -v file="$1" '
    function report(msg) { printf "%s:%d: %s: %s\n", file, decl_line, name, msg }
    BEGIN { in_comment = 0; comment_end = -1; decl_end = -1; depth = 0 }
    {
      line = $0
      if (in_comment) {
        text = text " " line
        if (line ~ /\*\//) { in_comment = 0; comment_end = NR }
        next
      }
      if (line ~ /^[ \t]*\/\*/) {
        text = line
        if (line ~ /\*\//) comment_end = NR; else in_comment = 1
        next
      }
      if (in_decl) {
        if (line ~ /;/) { in_decl = 0; decl_end = NR }
        next
      }
      if (line ~ /^SYNCHRO_EXTERN/) {
        decl_line = NR
        s = line; sub(/\(.*/, "", s); n = split(s, w, /[ *]+/); name = w[n]
        if (comment_end == NR - 1) { group_doc = text; have_doc = 1 }
        else if (decl_end == NR - 1) { }               # same group: the comment above it
        else { have_doc = 0; group_doc = "" }
        if (!have_doc) report("no doc comment right above the declaration")
        else if (group_doc !~ /Thread-safe|thread only|Loop thread/)
          report("doc comment does not state the thread rule (Thread-safe / thread only / Loop thread)")
        if (line ~ /;/) decl_end = NR; else in_decl = 1
        next
      }
      # braces: only top-level lines can be prototypes
      o = gsub(/\{/, "{", line); c = gsub(/\}/, "}", line)
      if (depth == 0 && line ~ /^[a-z_][a-z0-9_ \t]*[ \t*]+[a-z_][a-z0-9_]*[ \t]*\(/ &&
          line !~ /^(typedef|struct|enum|union|return|static|extern)/) {
        decl_line = NR; s = line; sub(/\(.*/, "", s); n = split(s, w, /[ *]+/); name = w[n]
        report("prototype without SYNCHRO_EXTERN (not exported)")
      }
      depth += o - c
    }' "$1"
}

n=0
for h in "${headers[@]}"; do
  n=$((n + 1))
  rel=${h#include/}
  printf '#include "%s"\n#include "%s"\nint synchro_check_header_tu;\n' "$rel" "$rel" > "$tmp/c.c"
  # shellcheck disable=SC2086
  "$CC" "${cflags[@]}" $uv_cflags -fsyntax-only "$tmp/c.c" 2> "$tmp/err" ||
    { fail "$h does not compile alone as C11:"; cat "$tmp/err"; }
  # shellcheck disable=SC2086
  "$CXX" "${cxxflags[@]}" $uv_cflags -x c++ -fsyntax-only "$tmp/c.c" 2> "$tmp/err" ||
    { fail "$h does not compile alone as C++:"; cat "$tmp/err"; }

  fns=$(declared "$h")
  if [ -n "$fns" ]; then
    {
      printf '#include "%s"\ntypedef void (*any_fn)(void);\nextern const any_fn synchro_refs[];\n' "$rel"
      printf 'const any_fn synchro_refs[] = {\n'
      for f in $fns; do printf '  reinterpret_cast<any_fn>(&%s),\n' "$f"; done
      printf '};\n'
    } > "$tmp/refs.cc"
    # shellcheck disable=SC2086
    if "$CXX" "${cxxflags[@]}" $uv_cflags -c "$tmp/refs.cc" -o "$tmp/refs.o" 2> "$tmp/err"; then
      mangled=$(nm -u "$tmp/refs.o" | awk '$2 ~ /^_Z/ { print $2 }' | c++filt | paste -sd " " -)
      [ -z "$mangled" ] || fail "$h: declared without extern \"C\": $mangled"
    else
      fail "$h: taking the address of its functions failed in C++:"; cat "$tmp/err"
    fi
  fi

  out=$(doc_check "$h")
  if [ -n "$out" ]; then
    while IFS= read -r l; do fail "$l"; done <<< "$out"
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "check-headers: $failed problem(s) in $n header(s)"
  exit 1
fi
total=$(cat "${headers[@]}" | grep -c '^SYNCHRO_EXTERN' || true)
echo "check-headers: $n header(s) compile alone as C11 and C++ with C linkage; $total function declarations documented with their thread rule"
