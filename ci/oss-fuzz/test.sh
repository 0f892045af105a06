#!/bin/bash
# Runs build.sh as OSS-Fuzz would (ctest `oss_fuzz_build`, label ossfuzz): clang with
# OSS-Fuzz's ASan CXXFLAGS and -stdlib=libc++, a LIB_FUZZING_ENGINE, a fresh $OUT; then checks
# that every target and its seed corpus are there, that vmemcheck's code is compiled against
# libc++, and runs each target over its seeds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export SRC=$(cd "$here/../.." && pwd) WORK=$scratch/work OUT=$scratch/out
export CC=clang CXX=clang++
export CFLAGS="-O1 -fno-omit-frame-pointer -gline-tables-only -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -fsanitize=address -fsanitize-address-use-after-scope -fsanitize=fuzzer-no-link"
export CXXFLAGS="$CFLAGS -stdlib=libc++"
# The engine: Debian's libFuzzer runtime (libclang_rt.fuzzer) is built against libstdc++ and
# cannot link into a libc++ build (OSS-Fuzz ships its own, built against libc++). So, as
# OSS-Fuzz's standalone reproducer engine does, LIB_FUZZING_ENGINE is an archive with a main()
# that runs the target over files: fuzz/common/replay_main.cc, compiled with the same flags.
mkdir -p "$WORK" "$OUT"
$CXX $CXXFLAGS -std=c++20 -c "$SRC/fuzz/common/replay_main.cc" -o "$WORK/standalone.o"
ar rcs "$WORK/libStandaloneFuzzTarget.a" "$WORK/standalone.o"
export LIB_FUZZING_ENGINE=$WORK/libStandaloneFuzzTarget.a
bash "$here/build.sh"

status=0
# vmemcheck's code is compiled against libc++ (std::__1), with nothing of libstdc++'s ABI in it.
lib=$WORK/vmemcheck-oss-fuzz/reference/libvmem_reference.a
symbols=$(nm -C "$lib")
libcxx=$(grep -c 'std::__1::' <<<"$symbols" || true)
libstdcxx=$(grep -c 'std::__cxx11::' <<<"$symbols" || true)
if ((libcxx == 0 || libstdcxx != 0)); then
  echo "oss-fuzz: $lib is not compiled against libc++ ($libcxx libc++, $libstdcxx libstdc++ symbols)"
  status=1
fi
for t in migration_stream virtqueue transport ops driver; do
  f=$OUT/${t}_fuzzer
  if [[ ! -x $f || ! -s ${f}_seed_corpus.zip ]]; then
    echo "oss-fuzz: $t: missing ${t}_fuzzer or its seed corpus"; status=1; continue
  fi
  if ! grep -q 'libc++' <<<"$(ldd "$f")"; then echo "oss-fuzz: $t does not link libc++"; status=1; fi
  mkdir -p "$scratch/seeds/$t"
  unzip -q "${f}_seed_corpus.zip" -d "$scratch/seeds/$t"
  if ! (cd "$scratch" && "$f" "$scratch/seeds/$t" >"$scratch/$t.log" 2>&1); then
    echo "oss-fuzz: $t failed on its seeds:"; tail -5 "$scratch/$t.log"; status=1
  else
    echo "oss-fuzz: $t: $(grep -c . <(ls "$scratch/seeds/$t")) seeds replayed"
  fi
done
exit $status
