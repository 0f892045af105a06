#!/bin/sh
# `vmemcheck prove --jobs 2` prints every selected proof once, in the fixed order, and its exit
# code says whether all were proved: 0 on the reference's logic, 1 on a mutant's, whose
# counterexample trace is printed too.
set -eu
vmemcheck=$1
mutants=$2
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$vmemcheck" prove --filter 'memslots_kept' --jobs 2 > "$out"
order=$(awk '{print $2}' "$out" | grep '^memslots_kept' | tr '\n' ' ')
[ "$order" = "memslots_kept[plug] memslots_kept[unplug] memslots_kept[unplug_all] " ] || {
  echo "unexpected order: $order"; cat "$out"; exit 1; }
grep -q '^3 passed, 0 failed (.* 2 at a time)$' "$out" || { cat "$out"; exit 1; }

status=0
"$mutants" prove --filter 'memslots_kept' --jobs 2 --fault memslot-deactivated-while-plugged \
  > "$out" || status=$?
[ "$status" -eq 1 ] || { echo "exit $status on a mutant"; cat "$out"; exit 1; }
grep -q '^FAILED   memslots_kept\[unplug\]' "$out" || { cat "$out"; exit 1; }
grep -q 'as a trace (vmemcheck replay):' "$out" || { cat "$out"; exit 1; }
grep -q '^1 passed, 2 failed' "$out" || { cat "$out"; exit 1; }
echo ok
