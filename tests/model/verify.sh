#!/usr/bin/env bash
# tests/model/verify.sh [--mutants] [OUTDIR] - exhaustive Spin searches of the models in
# tests/model (see README.md there). `make model` runs it.
#
#   default    every property of call.pml and batch.pml; fails on any error, on a
#              search cut short by the depth bound, or when pan itself fails.
#   --mutants  applies each mutation below to a copy of its model (the files here stay
#              as they are) and fails unless Spin finds an error in every mutant: the
#              check that the models can fail at all. `make model-mutants` runs it.
#
# SPIN and MODEL_CC pick the tools (default: spin, cc). Work files go to OUTDIR
# (default build/model).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mode=verify
if [ "${1:-}" = "--mutants" ]; then
  mode=mutants
  shift
fi
out=${1:-build/model}
SPIN=${SPIN:-spin}
MODEL_CC=${MODEL_CC:-cc}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# build DIR MODEL.pml [OPT]: generates pan.c and compiles a safety verifier and, unless
# OPT is given (mutants: -O0, the errors come fast), a liveness one.
build() {
  local dir=$1 model=$2 opt=${3:-}
  (
    cd "$dir"
    "$SPIN" -a "$model" >spin.log 2>&1 || { cat spin.log; exit 1; }
    # -DSAFETY: assertions and invalid end states only; -DNOCLAIM: no LTL claim.
    "$MODEL_CC" ${opt:--O2} -w -DSAFETY -DNOCLAIM -o pan-safety pan.c
    # liveness: the LTL claims, searched for acceptance cycles (pan -a)
    if [ -z "$opt" ]; then
      "$MODEL_CC" -O2 -w -o pan-ltl pan.c
    fi
  )
}

# search DIR LABEL BINARY ARGS...: runs pan; prints one summary line; sets $errors.
search() {
  local dir=$1 label=$2 bin=$3 start end log
  shift 3
  log="$dir/$label.out"
  start=$(date +%s.%N)
  (cd "$dir" && "./$bin" "$@") >"$log" 2>&1 || true
  end=$(date +%s.%N)
  errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
  local states depth
  states=$(awk '/states, stored/ { print $1; exit }' "$log")
  depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$log" | tail -1)
  if [ -z "$errors" ] || grep -q 'max search depth too small\|pan: error\|out of memory' "$log"; then
    errors=${errors:-?}
    echo "  $label: search incomplete or pan failed (see $log):"
    grep 'max search depth too small\|pan: error\|out of memory' "$log" | sed 's/^/    /' || true
    errors=incomplete
    return
  fi
  printf '  %-22s %9s states, depth %4s, errors: %s  (%.1fs)\n' "$label" "$states" "$depth" \
    "$errors" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
  if [ "$errors" != 0 ]; then
    grep -m1 '^pan:1:' "$log" | sed 's/^/    /' || true
  fi
}

# ---- default: every property, nothing may fail -------------------------------------
verify() {
  local failed=0 dir
  for m in call batch; do
    dir="$out/$m"
    mkdir -p "$dir"
    cp "$here/$m.pml" "$dir/"
    echo "== tests/model/$m.pml"
    build "$dir" "$m.pml"
    search "$dir" safety pan-safety -m200000
    [ "$errors" = 0 ] || failed=1
    if [ "$m" = call ]; then
      for f in woken served decided; do
        # no -f: they hold without weak fairness, under any scheduling
        search "$dir" "ltl $f" pan-ltl -a -m200000 -N "$f"
        [ "$errors" = 0 ] || failed=1
      done
    else
      search "$dir" "ltl returns" pan-ltl -a -m200000
      [ "$errors" = 0 ] || failed=1
    fi
  done
  if [ "$failed" -ne 0 ]; then
    echo "model check FAILED. Replay the last failing search of a model:"
    echo "  cd $out/MODEL && spin -t -p MODEL.pml"
    return 1
  fi
  echo "model check passed: no errors"
}

# ---- --mutants: every mutant must be caught ----------------------------------------
# mutant NAME MODEL FROM TO [PAN-ARGS]: replaces the literal text FROM with TO.
mutant() {
  local name=$1 model=$2 from=$3 to=$4 dir="$out/mutants/$1"
  shift 4
  mkdir -p "$dir"
  FROM=$from TO=$to perl -0pe 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "$here/$model.pml" >"$dir/$model.pml"
  if cmp -s "$here/$model.pml" "$dir/$model.pml"; then
    echo "  $name: the mutation no longer applies to $model.pml: update verify.sh"
    caught_all=0
    return
  fi
  build "$dir" "$model.pml" -O0 >/dev/null
  if [ $# -eq 0 ]; then
    set -- pan-safety -m200000
  fi
  (cd "$dir" && "./$@") >"$dir/search.out" 2>&1 || true
  local first
  first=$(grep -m1 '^pan:1:' "$dir/search.out" || true)
  if [ -n "$first" ]; then
    printf '  %-22s caught: %s\n' "$name" "${first#pan:1: }"
  else
    printf '  %-22s NOT caught (see %s)\n' "$name" "$dir/search.out"
    caught_all=0
  fi
}

mutants() {
  caught_all=1
  echo "== mutants of tests/model/call.pml"
  # drain(): sleep right after announcing it, without looking at the queues again
  mutant no-recheck call '        :: sq -> awake = 1
        :: !sq && cq -> awake = 1
        :: !sq && !cq -> break' '        :: true -> break'
  # synchro__resolve without the phase check: publish whatever the phase
  mutant no-phase-check call ':: PHASE(seen) != PENDING -> skip' ':: false -> skip'
  # wait_done: sleep on the futex without announcing WAITING
  mutant no-waiting-bit call 'state = state | WAITING; st = state; ok = 1' 'st = state; ok = 1'
  # synchro__resolve: decide to wake from the state first loaded, not the one the CAS replaced
  mutant wake-from-first-load call ':: (rold & WAITING) ->' ':: (first & WAITING) ->'
  # synchro__resolve: a CANCEL that fails the publishing CAS does not overrule the outcome
  mutant no-overrule call ':: !published && (seen & CANCEL) && !overruled ->' \
    ':: false ->'
  # finish_call drops the loop's reference at once instead of at the iteration's end
  mutant early-release call 'impl_done = 1; in_heap = 0; in_finished = 1 }' \
    'impl_done = 1; in_heap = 0; in_finished = 1 }; release_finished()'
  # post_control pushes onto the control stack without a reference for the queue
  mutant no-queue-ref call 'atomic { assert(!freed); refs++ }' 'skip'
  # synchro_future_cancel reports success although the outcome is already decided
  mutant cancel-late-ok call ':: PHASE(state) != PENDING -> rc = EALREADY; posted = 0' \
    ':: PHASE(state) != PENDING -> rc = 0; posted = 0'
  echo "== mutants of tests/model/batch.pml"
  # detach_group returns without waiting for the notifications in flight
  mutant no-remaining-wait batch 'remaining == final; ' 'skip; '
  # detach_group does not wait for the notification that woke it to finish
  mutant no-notifier-done-wait batch 'ndone /* spin' 'skip /* spin'
  # wait_all takes its tokens one by one as it attaches, after the futures can notify
  mutant late-tokens batch 'remaining = N + 1; /*' 'remaining = 1 + attached; /*'
  # the resolver reads SINKED, then publishes DONE: two steps, not the one CAS
  mutant resolver-split-cas batch 'atomic { had = sinked[i]; done[i] = 1 }' \
    'had = sinked[i]; done[i] = 1'
  # attach sets SINKED without checking that the future is still pending
  mutant attach-after-done batch ':: done[i] -> rc = EALREADY' ':: false -> rc = EALREADY'
  # detach clears SINKED although the future is DONE (its notification is coming)
  mutant detach-after-done batch ':: !done[i] && sinked[i] ->' ':: sinked[i] ->'
  # detach_group forgets to count the attachments it took back
  mutant uncounted-detach batch 'sinked[i] = 0; detached++; ok = 1' 'sinked[i] = 0; ok = 1'
  if [ "$caught_all" -ne 1 ]; then
    echo "mutant check FAILED: a mutant went unnoticed"
    return 1
  fi
  echo "mutant check passed: every mutant caught"
}

command -v "$SPIN" >/dev/null || { echo "$SPIN not found: apt-get install spin"; exit 1; }
"$mode"
