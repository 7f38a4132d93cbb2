#!/bin/sh
# The C side: configure and build with CMake, run ctest, run the C tests under valgrind
# memcheck, then build them with ASan+UBSan and run them again.
# Build trees: build/ (normal), build-valgrind/, build-sanitize/ (cargo's output is shared
# through CARGO_TARGET_DIR, default build/cargo... set it to reuse an existing one).
set -eu
cd "$(dirname "$0")/.."
jobs="${JOBS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== build + ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

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
