#!/bin/sh
# Installs the build tree into a temporary prefix, checks that the SONAME inside the library is
# the name CMake installed and put in pwcacheConfig.cmake, and builds a tiny consumer against it,
# once with find_package(pwcache) and once with pkg-config, then runs both.
# Usage: install_consumer.sh BUILD_DIR CONSUMER_SRC WORK_DIR CMAKE CC
set -eu
build=$1 src=$2 work=$3 cmake=$4 cc=$5
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"

"$cmake" --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/pwcache.h"
libdir=$(dirname "$(find "$prefix" -name 'libpwcache.so' | head -n 1)")
test -n "$libdir"

echo "== the SONAME inside the library is the name CMake installs"
# build.rs gives the linker the SONAME and CMakeLists.txt names the installed files: both follow
# from Cargo.toml's version, and a consumer only loads if the two agree.
real=$(readlink -f "$libdir/libpwcache.so")
soname=$(readelf -d "$real" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
if [ -z "$soname" ]; then
  echo "no SONAME in $real" >&2
  exit 1
fi
if [ ! -L "$libdir/$soname" ] || [ "$(readlink -f "$libdir/$soname")" != "$real" ]; then
  echo "the library's SONAME is $soname, but CMake installed no $libdir/$soname link to $real:" >&2
  ls -l "$libdir" >&2
  exit 1
fi
config=$(find "$prefix" -name pwcacheConfig.cmake | head -n 1)
if ! grep -q "IMPORTED_SONAME \"$soname\"" "$config"; then
  echo "$config does not name the library's SONAME $soname:" >&2
  grep -n IMPORTED_SONAME "$config" >&2
  exit 1
fi

echo "== find_package(pwcache), shared and static"
"$cmake" -S "$src" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
"$cmake" --build "$work/consumer-build" >/dev/null
(cd "$work" && ./consumer-build/consumer_shared && ./consumer-build/consumer_static)

echo "== pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists --print-errors pwcache
test "$(pkg-config --modversion pwcache)" = "$(sed -n 's/^version = "\(.*\)"/\1/p' "$src/../../../Cargo.toml" | head -n 1)"
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Wpedantic -Werror "$src/consumer.c" -o "$work/consumer_pc" \
  $(pkg-config --cflags --libs pwcache)
(cd "$work" && LD_LIBRARY_PATH="$libdir" ./consumer_pc)
# shellcheck disable=SC2046
"$cc" -std=c99 "$src/consumer.c" -o "$work/consumer_pc_static" \
  $(pkg-config --cflags pwcache) "$libdir/libpwcache.a" $(pkg-config --libs-only-l --static pwcache | sed 's/-lpwcache//')
(cd "$work" && ./consumer_pc_static)
echo "install consumer: ok"
