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
  # tsan runs only the `unit` and `stress` labels (CMakePresets.json), all of them GoogleTest
  # binaries: it builds those alone, not the CLI, conformance suite and fuzz replays.
  if [[ ${preset} == tsan ]]; then
    cmake --build --preset "${preset}" --target vmem_tests_unit vmem_tests_stress
  else
    cmake --build --preset "${preset}"
  fi
  echo "=== ${preset}: test"
  ctest --preset "${preset}"
  echo "=== ${preset}: done in $((SECONDS - start)) s"
done
