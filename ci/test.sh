#!/usr/bin/env bash
# Sets up, builds and runs every test (decisions D5):
#   default  every label but slow
#   asan     unit, conformance, replay   (ASan+UBSan, -fno-sanitize-recover=all)
#   tsan     unit, stress                (g++ TSan, 256 GiB large regions)
# Usage: ci/test.sh [preset...]   (default: default asan tsan)
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/setup.sh

presets=("$@")
((${#presets[@]})) || presets=(default asan tsan)

for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure and build"
  start=$SECONDS
  cmake --preset "${preset}" >/dev/null
  # asan and tsan run some labels only; their build presets (CMakePresets.json) build what those
  # labels' tests run (`vmem_tests_<label>`, cmake/VmemTargets.cmake), not the whole tree.
  cmake --build --preset "${preset}"
  echo "=== ${preset}: test"
  ctest --preset "${preset}"
  echo "=== ${preset}: done in $((SECONDS - start)) s"
done
