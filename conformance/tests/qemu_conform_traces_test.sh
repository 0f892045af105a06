#!/bin/sh
# The conformance suite against Debian's QEMU 7.2, recorded (`--record-traces`) and checked with
# `vmemcheck prove --trace` in profile qemu-7.2. The run must match its baseline, and a trace the
# relation rejects must carry, at or before the rejected step, a FAIL or WARN the suite judged
# there: a deviation the baseline documents, not one nobody named.
# Usage: qemu_conform_traces_test.sh VMEMCHECK BASELINE
set -eu
vmemcheck=$1 baseline=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$vmemcheck" conform -q --target qemu --expect "$baseline" --record-traces "$work/q" || {
  echo "FAIL: the QEMU run does not match $baseline"; exit 1; }
status=0
"$vmemcheck" prove --trace "$work/q" > "$work/prove.log" 2>&1 || status=$?
[ "$status" -le 1 ] || { echo "FAIL: prove --trace could not run"; cat "$work/prove.log"; exit 1; }
accepted=0 rejected=0
for t in "$work"/q/*.trace; do
  if "$vmemcheck" prove --trace "$t" > "$work/one.log" 2>&1; then
    accepted=$((accepted + 1))
    continue
  fi
  rejected=$((rejected + 1))
  line=$(sed -n 's/^[^:]*:\([0-9]*\): no transition explains.*/\1/p' "$work/one.log")
  [ -n "$line" ] || { echo "FAIL: no step named for $t"; cat "$work/one.log"; exit 1; }
  judged=$(head -n "$line" "$t" | grep '^# \(FAIL\|WARN\) ' | tail -n 1)
  [ -n "$judged" ] || {
    echo "FAIL: $(basename "$t") rejected at line $line with no deviation judged before it"
    cat "$work/one.log"; exit 1; }
  echo "$(basename "$t" .trace): line $line rejected; the suite judged: ${judged#\# }"
done
[ "$accepted" -ge 20 ] || { echo "FAIL: only $accepted traces explained"; exit 1; }
echo "PASS: $accepted QEMU traces explained; $rejected rejected at a documented deviation"
