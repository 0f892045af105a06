#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script: builds every fuzz target the standard way ($CXX,
# $CXXFLAGS, $LIB_FUZZING_ENGINE, $OUT) and puts each one's seeds and dictionary next to it.
# qemu_diff is left out: it needs a QEMU binary at run time.
# Also run here by ctest (`oss_fuzz_build`, label ossfuzz) with OSS-Fuzz's flags, -stdlib=libc++
# included, so that it cannot rot.
src=${SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -d "$src/reference" ] || src=$SRC/vmemcheck
work=${WORK:-/tmp}/vmemcheck-oss-fuzz
targets="migration_stream virtqueue transport ops driver"

cmake -S "$src" -B "$work" -G Ninja \
  -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_CXX_FLAGS="$CXXFLAGS" -DCMAKE_BUILD_TYPE=None \
  -DVMEM_SANITIZER=oss-fuzz -DVMEM_FUZZING_ENGINE="$LIB_FUZZING_ENGINE" \
  -DVMEM_FMT_HEADER_ONLY=ON -DVMEM_BUILD_PROOFS=OFF -DVMEM_BUILD_BENCHMARKS=OFF \
  -DBUILD_TESTING=OFF >/dev/null
ninja -C "$work" $(for t in $targets; do printf '%s_fuzzer ' "$t"; done)

for t in $targets; do
  cp "$work/fuzz/${t}_fuzzer" "$OUT/"
  # Seeds as OSS-Fuzz wants them: <target>_seed_corpus.zip, flat.
  (cd "$src/corpus/$t" && zip -q -j "$OUT/${t}_fuzzer_seed_corpus.zip" ./*)
  if [ -f "$src/corpus/dictionaries/$t.dict" ]; then
    cp "$src/corpus/dictionaries/$t.dict" "$OUT/${t}_fuzzer.dict"
  fi
done
