#!/bin/sh
# The C side: configure and build with CMake, run ctest, build and run the C tests again as a
# Release build (optimised C: some warnings, -Wformat-truncation among them, only appear with
# -O2), run them under valgrind memcheck, then build them with ASan+UBSan and run them again.
# Build trees: build/ (Debug), build-release/, build-valgrind/, build-sanitize/ (cargo's output
# is shared through CARGO_TARGET_DIR, default target/: every tree reuses one cargo build of the
# library, its `release` profile; RelWithDebInfo would build the `profiling` profile).
set -eu
cd "$(dirname "$0")/.."
jobs="${JOBS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== build + ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== Release build + ctest (C programs at -O2; the same cargo build of the library)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
cmake --build build-release -j "$jobs"
ctest --test-dir build-release --output-on-failure -j "$jobs" -L "c|example"

echo "== ctest under valgrind memcheck"
cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=Debug -DPWCACHE_VALGRIND=ON -DPWCACHE_BUILD_EXAMPLES=OFF
cmake --build build-valgrind -j "$jobs"
ctest --test-dir build-valgrind --output-on-failure -L c

echo "== ctest with ASan + UBSan"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DPWCACHE_SANITIZE=ON
cmake --build build-sanitize -j "$jobs"
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
  ctest --test-dir build-sanitize --output-on-failure -j "$jobs" -L "c|example"
echo "C tests: all passed"
