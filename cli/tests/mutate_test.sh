#!/bin/sh
# `vmemcheck-mutants mutate` end to end on four mutants, one of each outcome (ctest
# `mutate_matrix`, label `mutation`): a bug the spec verdicts kill, a host-side bug they cannot
# see, a profile difference (its verdicts differ, nothing FAILs) and an equivalent mutant.
# Usage: mutate_test.sh VMEMCHECK_MUTANTS
set -eu
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$1" mutate --parts conformance,invariants --out "$out" --only range-end-off-by-one \
  rollback-skips-first-listener unknown-type-answered-error unplug-all-discards-whole-region \
  >"$out/stdout"
row() { grep "^| \`$1\` |" "$out/matrix.md"; }
fail=0
expect() {  # expect NAME TEXT: the mutant's row contains TEXT
  if ! row "$1" | grep -q -- "$2"; then
    echo "mutate: the row of $1 lacks '$2':"; row "$1"; fail=1
  fi
}
expect range-end-off-by-one '| bug | \*\*killed\*\* in [0-9.]* s: DEV-'
expect rollback-skips-first-listener '| bug | survived | survived |'
expect unknown-type-answered-error '| profile-difference | differs (not a FAIL): GEN-10'
expect unplug-all-discards-whole-region '| equivalent | survived | survived |'
for f in range-end-off-by-one rollback-skips-first-listener unknown-type-answered-error \
  unplug-all-discards-whole-region; do
  [ -s "$out/mutants/$f.json" ] || { echo "mutate: no $f.json"; fail=1; }
done
grep -q '^2 bugs: 1 killed by at least one part run (conformance, invariants), 1 by spec verdicts and proofs (50%)' \
  "$out/stdout" || { echo "mutate: unexpected summary:"; tail -3 "$out/stdout"; fail=1; }
# --baseline: its own matrix loses no kill; a baseline that claims a kill it does not have
# (rollback-skips-first-listener killed by the spec verdicts) makes the run fail.
"$1" mutate --parts conformance --out "$out/again" --only range-end-off-by-one \
  rollback-skips-first-listener --baseline "$out/matrix.json" >"$out/again.stdout" ||
  { echo "mutate: its own matrix as the baseline failed"; cat "$out/again.stdout"; fail=1; }
awk 'BEGIN { n = 0 }
  /"name": "rollback-skips-first-listener"/ { inside = 1 }
  inside && /"killed": false/ && n == 0 { sub(/"killed": false/, "\"killed\": true"); n = 1 }
  { print }' "$out/matrix.json" >"$out/claimed.json"
if "$1" mutate --parts conformance --out "$out/third" --only rollback-skips-first-listener \
  --baseline "$out/claimed.json" >"$out/third.stdout"; then
  echo "mutate: a lost kill did not fail the run"; fail=1
fi
grep -q "REGRESSION: rollback-skips-first-listener survives conformance" "$out/third.stdout" ||
  { echo "mutate: no REGRESSION line"; cat "$out/third.stdout"; fail=1; }
exit $fail
