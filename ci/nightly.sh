#!/usr/bin/env bash
# The nightly run: what does not fit a pull request.
#   tsan       ci/test.sh tsan (unit, stress)
#   campaigns  each fuzz target for --fuzz-time seconds (default 1800) from its seeds, through
#              ci/pr.sh's fuzz step
#   matrix     the full kill matrix, every part including fuzzing (vmemcheck-mutants mutate),
#              compared with docs/kill-matrix.json: no kill may be lost
# Usage: ci/nightly.sh [--fuzz-time SECONDS] [--mutant-fuzz-time SECONDS]
# Artifacts under out/nightly/; exit status 1 if a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

fuzz_time=1800
mutant_fuzz_time=60
while (($#)); do
  case "$1" in
    --fuzz-time) fuzz_time=$2; shift 2 ;;
    --mutant-fuzz-time) mutant_fuzz_time=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "ci/nightly.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out=$PWD/out/nightly
mkdir -p "$out"
failed=0

echo "=== ci/nightly.sh: tsan"
bash ci/test.sh tsan >"$out/tsan.log" 2>&1 || { failed=1; tail -20 "$out/tsan.log"; }

echo "=== ci/nightly.sh: campaigns (${fuzz_time} s per target)"
FUZZ_SEED=$(date +%s) bash ci/pr.sh --skip tests --skip conform --skip conform-qemu \
  --skip proofs --skip mutation --fuzz-time "$fuzz_time" || failed=1
rm -rf "$out/fuzz" && cp -r out/pr/fuzz "$out/fuzz"

echo "=== ci/nightly.sh: the full kill matrix"
cmake --build --preset fuzz --target ops_mutants_fuzzer >/dev/null || failed=1
build/default/cli/vmemcheck-mutants mutate --parts conformance,invariants,proofs,fuzz \
  --fuzz-time "$mutant_fuzz_time" --fuzzer build/fuzz/fuzz/ops_mutants_fuzzer \
  --out "$out/matrix" --baseline docs/kill-matrix.json || failed=1
exit $failed
