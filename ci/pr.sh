#!/usr/bin/env bash
# The pull-request pipeline: what this project (or a VMM project vendoring vmemcheck) runs on
# every pull request. Each step is timed; a summary goes to stdout and out/pr/summary.md, with
# the artifacts (JUnit, JSON reports, fuzz findings, the mutation matrix) under out/pr/.
#
#   tests            ci/test.sh default asan: build both presets, every test label of D5
#                    (default: all but slow, so qemu, proofs, replay and mutation too; asan:
#                    unit, conformance, replay)
#   conform          vmemcheck conform against the reference (JUnit, JSON)
#   conform-qemu     against Debian's QEMU with its baseline (conformance/baselines/qemu-7.2.json)
#   proofs           vmemcheck prove
#   fuzz             60 s of each fuzz target from a copy of its seeds (fixed seed), qemu_diff too
#   mutation         a rotating eighth of the mutant catalog, conformance + invariants + proofs,
#                    against the stored kill matrix (docs/kill-matrix.json): no kill may be lost
#
# Usage: ci/pr.sh [--skip STEP]... [--fuzz-time SECONDS] [--rotation N]
#   --skip tests      when the builds and tests already ran (.ci/run runs ci/test.sh first)
#   --rotation N      which eighth of the catalog (default: the day of the year)
# Exit status: 0 when every step passed, 1 otherwise (every step runs regardless).
set -uo pipefail
cd "$(dirname "$0")/.."

fuzz_time=60
rotation=$((10#$(date +%j)))
skip=()
while (($#)); do
  case "$1" in
    --skip) skip+=("$2"); shift 2 ;;
    --fuzz-time) fuzz_time=$2; shift 2 ;;
    --rotation) rotation=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "ci/pr.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

root=$PWD
out=$root/out/pr
rm -rf "$out"
mkdir -p "$out"
vmemcheck=$root/build/default/cli/vmemcheck
mutants=$root/build/default/cli/vmemcheck-mutants
results=()
failed=0
start_all=$SECONDS

skipped() { local s; for s in "${skip[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }

# step NAME COMMAND...: runs it, logs to out/pr/NAME.log, records pass/fail and the time.
step() {
  local name=$1
  shift
  if skipped "$name"; then
    results+=("| $name | skipped | |")
    return
  fi
  echo "=== ci/pr.sh: $name"
  local t0=$SECONDS
  if "$@" >"$out/$name.log" 2>&1; then
    results+=("| $name | pass | $((SECONDS - t0)) s |")
  else
    results+=("| $name | **FAIL** (out/pr/$name.log) | $((SECONDS - t0)) s |")
    failed=1
    tail -20 "$out/$name.log"
  fi
}

tests() { bash ci/test.sh default asan; }

conform_reference() {
  bash ci/main.sh conform --junit "$out/conform-reference.xml" --json "$out/conform-reference.json"
}

conform_qemu() {
  bash ci/main.sh conform --target qemu --expect conformance/baselines/qemu-7.2.json \
    --junit "$out/conform-qemu.xml" --json "$out/conform-qemu.json" --repro-dir "$out/qemu-repro"
}

proofs() { "$vmemcheck" prove; }

fuzz() {
  local targets=(migration_stream virtqueue transport ops driver qemu_diff)
  cmake --preset fuzz >/dev/null &&
    cmake --build --preset fuzz --target "${targets[@]/%/_fuzzer}" >/dev/null || return 1
  local t status=0
  for t in "${targets[@]}"; do
    local dir=$out/fuzz/$t
    mkdir -p "$dir/corpus" "$dir/findings"
    cp corpus/"$t"/* "$dir/corpus/"
    local dict=()
    [[ -f corpus/dictionaries/$t.dict ]] && dict=(-dict="$root/corpus/dictionaries/$t.dict")
    (cd "$dir" && "$root/build/fuzz/fuzz/${t}_fuzzer" -seed="${FUZZ_SEED:-1}" \
      -max_total_time="$fuzz_time" -timeout=30 -print_final_stats=1 "${dict[@]}" \
      -artifact_prefix="$dir/findings/" corpus >"$dir/log" 2>&1)
    local rate
    rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$dir/log")
    if compgen -G "$dir/findings/*" >/dev/null; then
      echo "$t: FINDING: $(ls "$dir"/findings/*) ($(grep -m1 'oracle\|ERROR' "$dir/log"))"
      status=1
    else
      echo "$t: nothing in ${fuzz_time} s (${rate:-?} exec/s)"
    fi
  done
  return $status
}

mutation() {
  mapfile -t all < <("$mutants" faults | awk '{print $1}')
  local subset=() i
  for ((i = rotation % 8; i < ${#all[@]}; i += 8)); do subset+=("${all[$i]}"); done
  echo "rotation $((rotation % 8)) of 8: ${subset[*]}"
  "$mutants" mutate --parts conformance,invariants,proofs --out "$out/mutation" \
    --baseline docs/kill-matrix.json --only "${subset[@]}"
}

step tests tests
# The remaining steps need the default build; without the tests step, make sure it is there.
skipped tests && { bash ci/setup.sh >/dev/null; cmake --preset default >/dev/null;
  cmake --build --preset default >/dev/null; }
step conform conform_reference
step conform-qemu conform_qemu
step proofs proofs
step fuzz fuzz
step mutation mutation

{
  echo "ci/pr.sh on $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +'%F %H:%M') UTC, $(nproc) cores"
  echo
  echo "| step | result | time |"
  echo "|---|---|---|"
  printf '%s\n' "${results[@]}"
  echo
  echo "Wall time: $((SECONDS - start_all)) s"
} | tee "$out/summary.md"
exit $failed
