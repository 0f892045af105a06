#!/bin/sh
# `vmemcheck conform --record-traces` against the reference: every check's trace is explained by
# the block-state transition relation (`prove --trace DIR`) and replays cleanly on the reference
# (`vmemcheck replay`). Recorded from each transition mutant the suite's checks reach, some trace
# is rejected, at a step that names the broken transition.
# Usage: conform_traces_test.sh VMEMCHECK VMEMCHECK_MUTANTS
set -eu
vmemcheck=$1 mutants=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$vmemcheck" conform -q --record-traces "$work/ref"
n=$(ls "$work/ref" | wc -l)
[ "$n" -ge 25 ] || { echo "FAIL: only $n traces recorded"; exit 1; }
"$vmemcheck" prove --trace "$work/ref" > "$work/ref.log" || {
  echo "FAIL: the reference's traces are not all explained"; cat "$work/ref.log"; exit 1; }
grep -q "^$n of $n traces explained" "$work/ref.log" || { cat "$work/ref.log"; exit 1; }
for t in "$work"/ref/*.trace; do
  "$vmemcheck" replay "$t" > "$work/replay.log" 2>&1 || {
    echo "FAIL: $(basename "$t") does not replay on the reference"; cat "$work/replay.log"; exit 1; }
done

# The transition mutants of proofs/tests/trace_check_test.cc, less range-no-wrap-check, which
# needs a region at the top of the address space, where no target puts one.
for fault in range-end-off-by-one nb-blocks-zero-accepted unplug-state-check-skipped \
  plug-state-check-skipped unplug-plugged-size-stale unplug-all-usable-below-requested \
  usable-region-not-rounded resize-shrinks-usable device-reset-unplugs system-reset-keeps-blocks \
  wakeup-unplugs unplug-all-keeps-last-block plug-size-not-rolled-back plug-bitmap-kept-on-refusal \
  host-resize-beyond-region; do
  rm -rf "$work/m"
  "$mutants" conform -q --fault "$fault" --record-traces "$work/m" > /dev/null 2>&1 || true
  status=0
  "$vmemcheck" prove --trace "$work/m" > "$work/m.log" 2>&1 || status=$?
  [ "$status" -eq 1 ] || { echo "FAIL: $fault: prove --trace exited $status"; cat "$work/m.log"; exit 1; }
  grep -m1 "no transition explains" "$work/m.log" | sed "s|^$work/m/|$fault: |"
done
echo "PASS: $n reference traces explained and replayed; 15 mutants' recordings rejected"
