#!/bin/sh
# The ops seeds written from the conformance checks (corpus/ops/conform-*, fuzz/seeds.cc) make the
# same requests and get the same answers as the checks themselves: each seed's ops trace
# (VMEM_FUZZ_TRACE) holds the request lines of the check's recording (`vmemcheck conform
# --record-traces`), in order. A check that changed makes its seed stale: rerun vmem_fuzz_seeds.
# Usage: conform_seeds_test.sh VMEMCHECK OPS_REPLAY CORPUS_DIR
set -eu
vmemcheck=$1 replay=$2 corpus=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$vmemcheck" conform -q --record-traces "$work/rec"
n=0
for seed in "$corpus"/ops/conform-*; do
  check=${seed##*/conform-}
  [ -f "$work/rec/$check.trace" ] || { echo "FAIL: no check named $check"; exit 1; }
  VMEM_FUZZ_TRACE="$work/ops.trace" "$replay" "$seed" > /dev/null
  # The suite's request lines up to its closing comparison (the last `config`; the seed ends with
  # one ops sweep instead), less what ops cannot express (padding, chain shapes, unknown types).
  last=$(grep -n '^config' "$work/rec/$check.trace" | tail -n 1 | cut -d: -f1)
  head -n "$last" "$work/rec/$check.trace" | grep '^request' |
    sed -E 's/ (pad|ppad|shape|indirect)=[^ ]*//g' | grep -v '^request [0-9]' > "$work/want" || true
  # The ops trace's requests before its sweep (which follows the last operation).
  grep '^request' "$work/ops.trace" | head -n "$(wc -l < "$work/want")" > "$work/got"
  [ "$(grep -c '^request' "$work/ops.trace")" -gt "$(wc -l < "$work/want")" ] || {
    echo "FAIL: conform-$check does not end with a sweep"; exit 1; }
  diff "$work/want" "$work/got" > "$work/diff" || {
    echo "FAIL: corpus/ops/conform-$check no longer follows the check (rerun vmem_fuzz_seeds)"
    head -20 "$work/diff"; exit 1; }
  n=$((n + 1))
done
[ "$n" -ge 15 ] || { echo "FAIL: only $n conformance seeds"; exit 1; }
echo "PASS: $n ops seeds repeat their checks' requests and answers"
