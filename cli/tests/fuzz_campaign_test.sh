#!/bin/sh
# `vmemcheck fuzz` without a fuzzing engine (ctest `fuzz_campaign`, label `replay`): argument
# validation, the missing-binary error, and a whole campaign against a fake libFuzzer binary (a
# shell script that answers the engine's command lines: fuzzing, -merge=1, -minimize_crash=1 and
# replays). The campaign leaves four crash files: two break the same oracle on other numbers,
# one is an ASan SEGV with a stack, one does not reproduce; they must come out as three groups,
# two of them reproducing, with a trace regression each (the target is `ops`), in
# summary.json and summary.md. Then --resume, and Ctrl-C stopping an engine that hangs.
# Usage: fuzz_campaign_test.sh VMEMCHECK TRACE
#   TRACE: a trace that replays cleanly (the fake replay binary "writes" it)
set -eu
vmemcheck=$1
trace=$2
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
fail=0
bad() { echo "fuzz_campaign: $*"; fail=1; }

# expect_error TEXT ARGS...: exit status 2 and TEXT on stderr.
expect_error() {
  text=$1
  shift
  rc=0
  "$vmemcheck" fuzz "$@" >"$work/out" 2>"$work/err" || rc=$?
  [ "$rc" -eq 2 ] || bad "'$*' exited $rc, not 2"
  grep -q -- "$text" "$work/err" || { bad "'$*' did not say '$text':"; cat "$work/err"; }
}

mkdir -p "$work/seeds" "$work/build/fuzz"
printf 'seed one' >"$work/seeds/a"
printf 'seed two' >"$work/seeds/b"

expect_error "unknown --target 'nope'" --target nope --seeds "$work/seeds"
expect_error "unknown --engine 'honggfuzz'" --target ops --engine honggfuzz
expect_error "jobs must be between 1 and 64" --target ops --jobs 0
expect_error "bad --time '1h30'" --target ops --time 1h30
expect_error "cmake --build --preset fuzz --target ops_fuzzer" --target ops \
  --build-dir "$work/nothing" --out "$work/x"
expect_error "cmake --build --preset afl --target transport_afl" --target transport \
  --engine afl --build-dir "$work/nothing" --out "$work/x"

# The fake engine. Crash files by content: ORACLE N -> the ops oracle line with N in it;
# SEGV -> an ASan report; anything else runs cleanly.
fake=$work/build/fuzz/ops_fuzzer
cat >"$fake" <<EOF
#!/bin/sh
mode=; prefix=; exact=; last=; merge_out=
for a in "\$@"; do
  case "\$a" in
    -merge=1) mode=merge ;;
    -minimize_crash=1) mode=minimize ;;
    -artifact_prefix=*) prefix=\${a#-artifact_prefix=} ;;
    -exact_artifact_path=*) exact=\${a#-exact_artifact_path=} ;;
    -*) ;;
    *) [ -z "\$merge_out" ] && merge_out=\$a; last=\$a ;;
  esac
done
# A file to run is a replay; a corpus directory, a fuzzing run.
[ -z "\$mode" ] && { [ -d "\$last" ] && mode=fuzz || mode=replay; }
case \$mode in
  fuzz)
    echo \$\$ >"$work/engine.pid"
    [ -n "\${FAKE_HANG:-}" ] && exec sleep 1000
    echo "#100: cov: 40 ft: 50 corp: 2 exec/s 100 oom/timeout/crash: 0/0/0 time: 1s job: 1 dft_time: 0"
    sleep 1
    printf 'ORACLE 17' >"\${prefix}crash-1"
    printf 'ORACLE 123456' >"\${prefix}crash-2"
    printf 'SEGV' >"\${prefix}crash-3"
    printf 'fine' >"\${prefix}crash-4"
    printf 'new input' >"\$last/new"
    echo "#5000: cov: 42 ft: 55 corp: 3 exec/s 2500 oom/timeout/crash: 0/0/4 time: 2s job: 2 dft_time: 0"
    sleep 1
    echo "INFO: exiting: 0 time: 2s" ;;
  merge)
    cp "\$last"/* "\$merge_out"/
    echo "MERGE-OUTER: 3 new files with 55 new features added; 42 new coverage edges" ;;
  minimize)
    cp "\$last" "\$exact" ;;
  replay)
    if [ -n "\${VMEM_FUZZ_TRACE:-}" ]; then cp "$trace" "\$VMEM_FUZZ_TRACE"; fi
    case "\$(cat "\$last")" in
      ORACLE*) echo "ops oracle: the verdict differs at 0x\$(cut -c8- "\$last")"; exit 1 ;;
      SEGV)
        echo "==7==ERROR: AddressSanitizer: SEGV on unknown address 0x000000000000 (pc 0x1 T0)"
        echo "    #0 0x55 in vmem::Device::plug(unsigned long) /src/device.cc:120:7"
        echo "    #1 0x56 in __interceptor_memcpy (/bin/x+0x10) (BuildId: ab)"
        echo "    #2 0x57 in LLVMFuzzerTestOneInput /src/ops.cc:10:3"
        echo "    #3 0x58 in fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long) (/bin/x+0x1) (BuildId: ab)"
        exit 1 ;;
    esac ;;
esac
exit 0
EOF
chmod +x "$fake"
expect_error "dict $work/none.dict: no such file" --target ops --dict "$work/none.dict" \
  --build-dir "$work/build" --out "$work/x"

out=$work/campaign
set -- --target ops --jobs 2 --build-dir "$work/build" --seeds "$work/seeds" --out "$out" \
  --status-interval 1 --minimize-time 5 --coverage-build-dir "$work/nothing" \
  --dict "$work/seeds/a"
rc=0
"$vmemcheck" fuzz "$@" --time 2 >"$work/stdout" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { bad "the campaign exited $rc, not 1 (it found crashes)"; cat "$work/stdout"; }
grep -q -- '-fork=2' "$work/stdout" || bad "no -fork=2 for --jobs 2"
grep -q -- "-dict=$work/seeds/a" "$work/stdout" || bad "the dictionary is not passed"
grep -q '^\[ *[0-9]*s\] execs 5,000  exec/s 2,500  cov 42  corpus 3  findings 4$' \
  "$work/stdout" || { bad "no progress line with the engine's last figures:"; cat "$work/stdout"; }
json=$out/summary.json
[ -s "$json" ] || bad "no summary.json"
[ -s "$out/summary.md" ] || bad "no summary.md"
# count PATTERN FILE: occurrences
count() { grep -c -- "$1" "$2" || true; }
[ "$(count '"reproduced": true' "$json")" -eq 2 ] || bad "not two reproducing crashes"
[ "$(count '"reproduced": false' "$json")" -eq 1 ] || bad "not one non-reproducing group"
grep -q '"key": "oracle: ops oracle: the verdict differs at N"' "$json" ||
  bad "the two oracle crashes are not one group by their oracle line"
grep -q '"key": "AddressSanitizer: SEGV: vmem::Device::plug(unsigned long) < LLVMFuzzerTestOneInput"' \
  "$json" || bad "the SEGV is not keyed by its top frames without the runtime's"
grep -q '"crash_files": 4' "$json" || bad "crash_files is not 4"
grep -q '"execs": 5000' "$json" || bad "execs is not 5000"
grep -q '"before": 2' "$json" || bad "corpus before is not the 2 seeds"
grep -q '"after": 3' "$json" || bad "corpus after is not 3"
grep -q '"merged_edges": 42' "$json" || bad "the merge's coverage is not read"
grep -q '| unique crashes | 3 |' "$out/summary.md" || bad "summary.md: not 3 groups"
grep -q 'oracle line: `ops oracle: the verdict differs at 0x17`' "$out/summary.md" ||
  bad "summary.md lacks the smallest oracle file's line"
n=$(ls "$out"/regressions/*.trace 2>/dev/null | wc -l)
[ "$n" -eq 2 ] || bad "$n trace regressions, not 2"
grep -q 'replays cleanly' "$json" || bad "the trace regressions were not replayed"
[ -s "$out/corpus.min/new" ] || bad "the merged corpus lacks the new input"
[ "$(grep -vc '^#' "$out/progress.tsv")" -ge 2 ] || bad "fewer than two progress points"
grep -q 'Coverage report: not made' "$out/summary.md" || bad "the missing coverage report is not said"
for f in "$work/seeds/a" "$work/seeds/b"; do
  [ "$(cat "$f")" = "seed one" ] || [ "$(cat "$f")" = "seed two" ] || bad "the seeds changed"
done

# The same --out again needs --resume, which goes on from the campaign's corpus.
expect_error "already holds a campaign" "$@" --time 2
rc=0
"$vmemcheck" fuzz "$@" --time 2 --resume >"$work/stdout2" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || bad "the resumed campaign exited $rc"
grep -q '"before": 3' "$json" || bad "the resumed campaign did not start from its corpus of 3"
grep -q '"resumed": true' "$json" || bad "summary.json does not say resumed"

# Ctrl-C: the engine (which hangs here) is stopped, and the summary is still written.
rm -rf "$out" "$work/engine.pid"
FAKE_HANG=1 "$vmemcheck" fuzz "$@" --time 600 >"$work/stdout3" 2>&1 &
pid=$!
i=0
while [ ! -s "$work/engine.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1
kill -INT $pid || bad "vmemcheck exited before Ctrl-C: $(cat "$work/stdout3")"
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 $pid 2>/dev/null; then
  bad "vmemcheck still runs 15 s after Ctrl-C"
  kill -KILL $pid
fi
wait $pid || true
engine=$(cat "$work/engine.pid")
if kill -0 "$engine" 2>/dev/null; then
  bad "the engine survived Ctrl-C"
  kill -KILL "$engine"
fi
grep -q '"interrupted": true' "$out/summary.json" 2>/dev/null ||
  { bad "no summary saying interrupted"; cat "$work/stdout3"; }

[ $fail -eq 0 ] && echo "fuzz_campaign: all checks passed"
exit $fail
