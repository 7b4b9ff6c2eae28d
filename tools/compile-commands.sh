#!/usr/bin/env bash
# tools/compile-commands.sh TARGET... - writes compile_commands.json (for clangd and
# clang-tidy) at the top of the tree, covering the make targets given (`make
# compile_commands.json` passes the library, the bridge, examples, tests and bench).
# The build runs with B=build/compdb so the main build/ is left alone.
#  - with bear (apt-get install bear): runs the real build under `bear --`;
#  - without it: parses `make -n -B` (nothing is compiled) and writes one entry per .c
#    file of every compiler command.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/compile_commands.json
make_args=(--no-print-directory B=build/compdb "$@")

if command -v bear >/dev/null 2>&1 && [ "${NO_BEAR:-0}" != 1 ]; then
  rm -rf build/compdb
  bear --output "$out" -- make "${make_args[@]}" >/dev/null
  how="bear $(bear --version 2>/dev/null | awk '{print $NF}')"
else
  cc=${CC:-cc}
  make -n -B "${make_args[@]}" | sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' | tr '\t' ' ' | awk -v dir="$PWD" -v cc="$cc" '
    function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return s }
    $1 == cc || $1 ~ /(^|\/)(cc|gcc|clang)(-[0-9]+)?$/ {
      for (i = 2; i <= NF; i++) if ($i ~ /\.c$/) {
        printf "%s  {\"directory\": \"%s\", \"file\": \"%s\", \"command\": \"%s\"}",
               (n++ ? ",\n" : "[\n"), esc(dir), esc($i), esc($0)
      }
    }
    END { print (n ? "\n]" : "[]") }' > "$out"
  how="make -n"
fi
n=$(grep -c '"file"' "$out" || true)
echo "compile_commands.json: $n entries ($how)"
