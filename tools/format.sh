#!/usr/bin/env bash
# tools/format.sh - clang-format over the project's C sources, with .clang-format.
#
#   tools/format.sh check   fail (with a diff) if a checked file is not formatted
#   tools/format.sh fix     rewrite the checked files in place
#   tools/format.sh list    print the checked files
#
# Checked: every *.c / *.h under lib/ bridge/ include/ tests/ examples/ tools/, except
# generated code (any gen/ folder, the golden outputs in tests/bridge/) and the files
# listed in tools/format-exclude.txt (code that predates .clang-format: it was wrapped by
# hand near 90 columns and clang-format would rewrap it). New files are checked. To bring
# an excluded file in: run `clang-format -i FILE`, review, and delete its line from the
# exclude list. Skips (exit 0) with a message when clang-format is not installed.
# CLANG_FORMAT=clang-format-15 picks another binary.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-check}
cf=${CLANG_FORMAT:-clang-format}
exclude=tools/format-exclude.txt

files() {
  find lib bridge include tests examples tools -type f \( -name '*.c' -o -name '*.h' \) \
      -not -path '*/gen/*' -not -path 'tests/bridge/*' 2>/dev/null | LC_ALL=C sort |
    if [ -f "$exclude" ]; then
      grep -vxF -f <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$exclude"); else cat; fi
}

if [ "$mode" = list ]; then files; exit 0; fi
if ! command -v "$cf" >/dev/null 2>&1; then
  echo "format: $cf not found, skipped (apt-get install clang-format)"
  exit 0
fi

case "$mode" in
check)
  bad=0 n=0
  while IFS= read -r f; do
    n=$((n + 1))
    if ! "$cf" --style=file "$f" | diff -u --label "$f" --label "$f (clang-format)" "$f" -; then
      bad=$((bad + 1))
    fi
  done < <(files)
  nx=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$exclude" 2>/dev/null | wc -l)
  if [ "$bad" -ne 0 ]; then
    echo "format-check: $bad of $n file(s) not formatted; run: make format"
    exit 1
  fi
  echo "format-check: $n file(s) formatted ($("$cf" --version | sed 's/.*version //')); $nx excluded in $exclude"
  ;;
fix)
  files | xargs -r "$cf" --style=file -i
  echo "format: formatted $(files | wc -l) file(s)"
  ;;
*)
  echo "usage: tools/format.sh check|fix|list" >&2
  exit 2
  ;;
esac
