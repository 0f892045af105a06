#!/usr/bin/env bash
# Replays every reproducer in DIR on plain QEMU with conformance/replay/vmem-replay (no vmemcheck
# build needed), as a user would; fails if one does not replay to its end. Usage: DIR
set -euo pipefail
dir=${1:?usage: ci/replay-reproducers.sh DIR}
replay="$(dirname "$0")/../conformance/replay/vmem-replay"
shopt -s nullglob
files=("$dir"/*.repro)
((${#files[@]} > 0)) || { echo "replay-reproducers: no reproducers in $dir" >&2; exit 1; }
for f in "${files[@]}"; do
  if ! python3 "$replay" qemu "$f" >"$f.replay.log" 2>&1; then
    echo "replay-reproducers: $f did not replay; see $f.replay.log" >&2
    tail -5 "$f.replay.log" >&2
    exit 1
  fi
done
echo "replay-reproducers: ${#files[@]} reproducers replayed on plain QEMU"
