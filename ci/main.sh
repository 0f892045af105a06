#!/usr/bin/env bash
# Sets up, builds and runs the main job against the built-in reference device. Arguments go to
# `vmemcheck` (e.g. `ci/main.sh smoke --profile qemu-7.2`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/setup.sh
cmake --preset default >/dev/null
cmake --build --preset default --target vmemcheck
exec build/default/cli/vmemcheck "$@"
