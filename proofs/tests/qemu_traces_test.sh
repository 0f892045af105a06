#!/bin/sh
# `vmemcheck prove --trace` on traces recorded from Debian's QEMU 7.2: the qemu_diff replay binary
# writes, for each seed of corpus/qemu_diff, the trace of what QEMU answered (VMEM_FUZZ_TRACE);
# every one must be explained by the transition relation in profile qemu-7.2. A copy with one
# plugged_size changed must be rejected, so the check is not vacuous.
# Usage: qemu_traces_test.sh QEMU_DIFF_REPLAY VMEMCHECK CORPUS_DIR
set -eu
replay=$1 vmemcheck=$2 corpus=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
for seed in "$corpus"/*; do
  name=$(basename "$seed")
  VMEM_FUZZ_TRACE="$work/$name.trace" timeout 300 "$replay" "$seed" > "$work/$name.log" 2>&1 || {
    echo "FAIL: qemu_diff on $name"; cat "$work/$name.log"; exit 1; }
  "$vmemcheck" prove --trace "$work/$name.trace" || {
    echo "FAIL: QEMU's trace $name is not explained"; cat "$work/$name.trace"; exit 1; }
  # The first nonzero plugged_size QEMU reported, one block more.
  line=$(grep -n 'plugged_size=0x[1-9a-f]' "$work/$name.trace" | head -n 1 | cut -d: -f1)
  if [ -n "$line" ]; then
    sed "${line}s/plugged_size=0x/plugged_size=0x1/" "$work/$name.trace" > "$work/$name.bad"
    if "$vmemcheck" prove --trace "$work/$name.bad" > "$work/$name.badlog" 2>&1; then
      echo "FAIL: a doctored plugged_size in $name was accepted"; exit 1
    fi
    grep -q "no transition explains" "$work/$name.badlog" || {
      echo "FAIL: no step named for the doctored $name"; cat "$work/$name.badlog"; exit 1; }
    n=$((n + 1))
  fi
done
[ "$n" -gt 0 ] || { echo "FAIL: no seed plugged anything"; exit 1; }
echo "PASS: QEMU 7.2's traces are explained; $n doctored copies rejected"
