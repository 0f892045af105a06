#!/bin/sh
# The seeds reach what the fuzzers must start from (ctest `fuzz_seeds_reach`, label `replay`):
# replays the `ops` and `virtqueue` seeds with VMEM_FUZZ_VERBOSE=1 and asserts that they reach,
# in every profile, every request type x response code the profile allows and each STATE value;
# and, anywhere, a refused populate, a roll-back across at least two listeners (the refuser and
# one rolled back), a rejected migration stream and DEVICE_NEEDS_RESET. A fuzzer whose seeds
# cannot reach the success paths fails here.
#
# Usage: reach_test.sh OPS_REPLAY VIRTQUEUE_REPLAY CORPUS_DIR
set -eu
ops_replay=$1
virtqueue_replay=$2
corpus=$3
log=$(mktemp)
trap 'rm -f "$log"' EXIT

VMEM_FUZZ_VERBOSE=1 "$ops_replay" "$corpus/ops" 2>>"$log" >/dev/null
VMEM_FUZZ_VERBOSE=1 "$virtqueue_replay" "$corpus/virtqueue" 2>>"$log" >/dev/null

awk '
  # "ops: device profile=spec ..." starts an input.
  /^ops: device / {
    for (i = 3; i <= NF; i++) if ($i ~ /^profile=/) { profile = substr($i, 9); sub(/;$/, "", profile) }
    profiles[profile] = 1
    next
  }
  # "ops: TYPE ADDR+NB [(populate refused; N listeners rolled back)] -> RESP [STATE]"
  /^ops: (plug|unplug|unplug_all|state) / {
    type = $2
    for (i = 3; i <= NF; i++) if ($i == "->") { resp = $(i + 1); state = $(i + 2) }
    seen[profile, type, resp] = 1
    if (type == "state" && resp == "ACK") states[state] = 1
    if ($0 ~ /populate refused/) refused = 1
    if (match($0, /; [0-9]+ listeners rolled back/)) {
      n = substr($0, RSTART + 2, RLENGTH) + 0
      if (n >= 1) rollback = 1
    }
    next
  }
  /^ops: migrate \(corrupted\) -> rejected/ { rejected = 1; next }
  /^virtqueue: .*NEEDS_RESET/ { needs_reset = 1; next }
  END {
    # What every profile allows (docs/profiles.md; the spec notes): NACK is PLUG only, STATE is
    # never BUSY, UNPLUG_ALL answers only ACK or BUSY.
    n = split("plug:ACK plug:NACK plug:BUSY plug:ERROR unplug:ACK unplug:BUSY unplug:ERROR " \
              "unplug_all:ACK unplug_all:BUSY state:ACK state:ERROR", want, " ")
    missing = 0
    np = 0
    for (p in profiles) np++
    if (np < 3) { print "the ops seeds cover " np " profiles, not 3"; missing++ }
    for (p in profiles) {
      for (i = 1; i <= n; i++) {
        split(want[i], tr, ":")
        if (!((p, tr[1], tr[2]) in seen)) { print "not reached: " p " " tr[1] " -> " tr[2]; missing++ }
      }
    }
    split("PLUGGED UNPLUGGED MIXED", sv, " ")
    for (i = 1; i <= 3; i++) if (!(sv[i] in states)) { print "not reached: STATE " sv[i]; missing++ }
    if (!refused) { print "not reached: a refused populate"; missing++ }
    if (!rollback) { print "not reached: a roll-back across two listeners"; missing++ }
    if (!rejected) { print "not reached: a rejected migration stream"; missing++ }
    if (!needs_reset) { print "not reached: DEVICE_NEEDS_RESET"; missing++ }
    if (missing) exit 1
    print "the seeds reach every verdict of " np " profiles, each STATE value, a refused populate, " \
          "a roll-back across two listeners, a rejected migration stream and NEEDS_RESET"
  }
' "$log"
