#!/usr/bin/env bash
# Installs everything vmemcheck builds and runs with, from Debian's packages only.
# Idempotent: a second run installs nothing and takes about a second.
set -euo pipefail

packages=(
  # toolchains: g++ for default/asan/tsan, clang for fuzz and coverage (D4, D5)
  g++ clang lld llvm libclang-rt-14-dev cmake ninja-build pkg-config
  # libraries (decisions D4)
  libgtest-dev libgmock-dev libbenchmark-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libz3-dev z3
  # fuzzing, targets and tooling
  afl++ qemu-system-x86 gnuplot-nox clang-format clang-tidy
  # OSS-Fuzz's build (ci/oss-fuzz/): libc++, and zip for the seed corpora
  libc++-14-dev libc++abi-14-dev zip unzip
  # the reproducer replay script (conformance/replay/vmem-replay)
  python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "ci/setup.sh: all ${#packages[@]} packages present"
  exit 0
fi

echo "ci/setup.sh: installing ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
