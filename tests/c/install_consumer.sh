#!/bin/sh
# Installs the build tree into a temporary prefix and builds a tiny consumer against it, once
# with find_package(pwcache) and once with pkg-config, then runs both.
# Usage: install_consumer.sh BUILD_DIR CONSUMER_SRC WORK_DIR CMAKE CC
set -eu
build=$1 src=$2 work=$3 cmake=$4 cc=$5
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"

"$cmake" --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/pwcache.h"
libdir=$(dirname "$(find "$prefix" -name 'libpwcache.so.0' | head -n 1)")
test -n "$libdir"

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
