#!/usr/bin/env bash
# Do the `ops` fuzzer's oracles bite? Runs the `ops` target (libFuzzer, ASan+UBSan) against each
# named fault of the mutants build with a fixed seed, from a copy of corpus/ops, and records
# whether it found the fault and how long it took. Each finding is minimized and written as a
# trace (docs/trace-format.md) under corpus/regressions/mutants/NAME.trace, checked to replay
# cleanly on the reference and to fail on its mutant; ctest then replays it on every build.
#
# Usage: ci/fuzz-mutants.sh [--time SECONDS] [--out FILE.md] [--keep-traces] [NAME...]
#   --time         the budget per fault (default 300)
#   --out          also write the result table there (Markdown)
#   --keep-traces  copy each finding's trace into corpus/regressions/mutants/
#   NAME...        only these faults (default: every fault of `vmemcheck-mutants faults`)
# Exit status: 0 when it ran (whatever it found), 2 on a usage or build error.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=300
out=""
keep=0
only=()
while (($#)); do
  case "$1" in
    --time) budget=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep-traces) keep=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "fuzz-mutants: unknown option $1" >&2; exit 2 ;;
    *) only+=("$1"); shift ;;
  esac
done

bash ci/setup.sh
for preset in fuzz default; do
  cmake --preset "$preset" >/dev/null
done
cmake --build --preset fuzz --target ops_mutants_fuzzer >/dev/null
cmake --build --preset default --target ops_mutants_replay vmemcheck vmemcheck-mutants >/dev/null
fuzzer=$PWD/build/fuzz/fuzz/ops_mutants_fuzzer
replay=$PWD/build/default/fuzz/ops_mutants_replay
vmemcheck=$PWD/build/default/cli/vmemcheck
mutants=$PWD/build/default/cli/vmemcheck-mutants

if ((${#only[@]} == 0)); then
  mapfile -t only < <("$mutants" faults | awk '{print $1}')
fi

work=$(mktemp -d /tmp/vmem-fuzz-mutants.XXXXXX)
trap 'rm -rf "$work"' EXIT
table="| fault | found | time to find | oracle | trace replays (reference / mutant) |
|---|---|---|---|---|"
found=0
for name in "${only[@]}"; do
  dir=$work/$name
  mkdir -p "$dir/corpus" "$dir/crash"
  cp corpus/ops/* "$dir/corpus/"
  start=$(date +%s.%N)
  # -seed=1 fixes the run, so a time to find can be reproduced on an idle machine.
  VMEM_FUZZ_FAULT=$name "$fuzzer" -seed=1 -max_total_time="$budget" -timeout=10 \
    -artifact_prefix="$dir/crash/" "$dir/corpus" >"$dir/log" 2>&1 || true
  end=$(date +%s.%N)
  crash=$(ls "$dir"/crash/crash-* 2>/dev/null | head -1 || true)
  if [[ -z "$crash" ]]; then
    echo "$name: not found in ${budget} s"
    table+=$'\n'"| \`$name\` | no | > ${budget} s | | |"
    continue
  fi
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  oracle=$(grep -m1 '^ops oracle:' "$dir/log" | cut -c13- | cut -c1-90 || true)
  # Minimize (bounded), then write the finding as a trace from the minimized input.
  VMEM_FUZZ_FAULT=$name "$fuzzer" -minimize_crash=1 -max_total_time=30 -seed=1 \
    -exact_artifact_path="$dir/min" "$crash" >"$dir/min.log" 2>&1 || true
  [[ -s "$dir/min" ]] || cp "$crash" "$dir/min"
  # The replay aborts at the oracle (after writing the trace); the subshell keeps bash's
  # "Aborted" note out of the output.
  (VMEM_FUZZ_FAULT=$name VMEM_FUZZ_TRACE="$dir/$name.trace" "$replay" "$dir/min") \
    >/dev/null 2>&1 || true
  ref=fails
  mut=passes
  if [[ -s "$dir/$name.trace" ]]; then
    "$vmemcheck" replay "$dir/$name.trace" >/dev/null 2>&1 && ref=clean
    "$mutants" replay --fault "$name" "$dir/$name.trace" >/dev/null 2>&1 || mut=fails
    if ((keep)) && [[ $ref == clean && $mut == fails ]]; then
      mkdir -p corpus/regressions/mutants
      {
        echo "# Finding of ci/fuzz-mutants.sh: the ops fuzzer against fault $name"
        echo "# ($(date -u +%F), seed 1, ${seconds} s). Replays cleanly on the reference and"
        echo "# fails with: vmemcheck-mutants replay --fault $name"
        cat "$dir/$name.trace"
      } >"corpus/regressions/mutants/$name.trace"
    fi
  else
    ref="no trace"
    mut="no trace"
  fi
  found=$((found + 1))
  echo "$name: found in ${seconds} s: $oracle (trace: reference $ref, mutant $mut)"
  table+=$'\n'"| \`$name\` | yes | ${seconds} s | ${oracle//|/\\|} | $ref / $mut |"
done

echo
echo "$found of ${#only[@]} faults found (budget ${budget} s each, seed 1)"
if [[ -n "$out" ]]; then
  {
    echo "Command: \`ci/fuzz-mutants.sh --time $budget${only:+ ...}\`, $(date -u +%F), $(nproc) cores."
    echo
    echo "$table"
    echo
    echo "$found of ${#only[@]} faults found."
  } >"$out"
fi
