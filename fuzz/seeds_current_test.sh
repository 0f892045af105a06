#!/bin/sh
# corpus/ holds exactly what vmem_fuzz_seeds writes. A scenario or a conformance check that
# changed without the seeds being rewritten leaves seeds that start somewhere else: a `driver`
# seed's first byte picks its check by index, so one new check shifts them all, and a new check
# has no `ops` seed at all. Rewrite them with: vmem_fuzz_seeds corpus
# Usage: seeds_current_test.sh VMEM_FUZZ_SEEDS CORPUS_DIR
set -eu
seeds=$1 corpus=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$seeds" "$work" > /dev/null
status=0
for dir in "$work"/*/; do
  target=$(basename "$dir")
  diff -rq "$work/$target" "$corpus/$target" || status=1
done
if [ "$status" -ne 0 ]; then
  echo "FAIL: corpus/ differs from what vmem_fuzz_seeds writes (rewrite: vmem_fuzz_seeds corpus)"
  exit 1
fi
echo "corpus/ is what vmem_fuzz_seeds writes ($(ls "$work" | wc -l) targets)"
