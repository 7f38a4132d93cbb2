#!/usr/bin/env bash
# Runs README.md's snippets as written, in a temporary directory, so that what a new user copies
# works: the shell blocks (the demo, `cargo install`, the CLI tour, the CMake install, the
# pkg-config build), the C program (compiled with pkg-config and with CMake's find_package, then
# run) and the Python program (on the wheel scripts/test-python.sh installed into .venv).
# Not run here, each for the reason printed: `scripts/test-all.sh` (the suite this is part of),
# the Python install lines (scripts/test-python.sh builds and installs the same wheel), the Rust
# example (the crate's doc example in src/lib.rs is the same code, run by `cargo test --doc`).
# A block this script does not know fails it: a new snippet must be added here.
# Paths: /opt/pwcache becomes a prefix in the temporary directory; the CLI's cache is
# $PWCACHE_DIR there; `cargo install` installs into it (CARGO_INSTALL_ROOT). Nothing is written
# into the repository (checked at the end).
# Needs: what scripts/test-c.sh and scripts/test-python.sh need, run after them (.venv, build/).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export CARGO_INSTALL_ROOT="$work/cargo-root"
export PATH="$CARGO_INSTALL_ROOT/bin:$PATH"
export PWCACHE_DIR="$work/store"
export TMPDIR="$work/tmp"
unset PWCACHE_PASSWORD PROXYWHIRL_CACHE_ENCRYPTION_KEY PROXYWHIRL_CACHE_KEY_PREVIOUS RUST_LOG
prefix="$work/prefix"
mkdir -p "$TMPDIR" "$work/blocks"
before="$(git -C "$repo" status --porcelain --ignored)"

# Each fenced block as blocks/NN.<language>, and blocks/index: "NN<TAB>language<TAB>heading".
python3 - "$repo/README.md" "$work/blocks" <<'PY'
import pathlib, re, sys
text = pathlib.Path(sys.argv[1]).read_text()
out = pathlib.Path(sys.argv[2])
heading, n, index = "", 0, []
lines = iter(text.splitlines())
for line in lines:
    if line.startswith("#"):
        heading = line.lstrip("#").strip()
    m = re.match(r"^```(\S*)", line)
    if not m:
        continue
    body = []
    for inner in lines:
        if inner.startswith("```"):
            break
        body.append(inner)
    lang = m.group(1) or "text"
    n += 1
    (out / f"{n:02d}.{lang}").write_text("\n".join(body) + "\n")
    index.append(f"{n:02d}\t{lang}\t{heading}")
(out / "index").write_text("\n".join(index) + "\n")
PY

opt() { sed "s#/opt/pwcache#$prefix#g" "$1"; }
ran=0
skip() { echo "-- not run: $1"; }
c_program=""

while IFS=$'\t' read -r n lang heading; do
  block="$work/blocks/$n.$lang"
  echo "== README block $n ($lang) under \"$heading\""
  case "$heading/$lang/$(head -c 80 "$block")" in
    "Two commands/sh/cargo run --release --bin pwcache -- demo"*)
      grep -q '^scripts/test-all.sh ' "$block"
      (cd "$repo" && bash -euo pipefail -c "$(grep '^cargo run ' "$block")") > "$work/demo.out"
      grep -q '^This cache is the demo' "$work/demo.out"
      # The demo's closing commands, as printed.
      sed -n '/^This cache is the demo/,$p' "$work/demo.out" | tail -n +2 | sed 's/^  //' > "$work/demo-commands"
      (cd "$work" && bash -euo pipefail "$work/demo-commands") > /dev/null
      skip "scripts/test-all.sh: the suite this script is part of"
      ;;
    "Command line/sh/cargo install --locked --path cli"*)
      (cd "$repo" && bash -euo pipefail "$block")
      command -v pwcache | grep -q "^$CARGO_INSTALL_ROOT/"
      ;;
    "Command line/sh/printf 'proxy_url,username,password,sour"*)
      mkdir -p "$work/cli" && (cd "$work/cli" && bash -euo pipefail "$block") > "$work/cli.out"
      grep -q '^cc3dd0c247d6ff41$' "$work/cli.out"
      [ -f "$work/cli/backup.jsonl" ]
      ;;
    "C and C++ with CMake/sh/cmake -S . -B build"*)
      (cd "$repo" && bash -euo pipefail -c "$(opt "$block")") > "$work/cmake-install.out"
      [ -f "$prefix/include/pwcache.h" ]
      ;;
    "C and C++ with CMake/cmake/"*)
      cmake_block="$block"
      ;;
    "C with pkg-config/c/"*)
      c_program="$block"
      ;;
    "C with pkg-config/sh/export PKG_CONFIG_PATH"*)
      mkdir -p "$work/c" && cp "$c_program" "$work/c/my_scraper.c"
      (cd "$work/c" && bash -euo pipefail -c "$(opt "$block")") > "$work/c.out"
      grep -q '"proxy_url":"http://10.0.0.1:8080"' "$work/c.out"
      # The same program through find_package, as the CMake block says.
      mkdir -p "$work/cmake-app" && cp "$c_program" "$work/cmake-app/my_scraper.c"
      {
        echo 'cmake_minimum_required(VERSION 3.16)'
        echo 'project(my_scraper C)'
        grep '^find_package' "$cmake_block"
        echo 'add_executable(my_scraper my_scraper.c)'
        grep '^target_link_libraries' "$cmake_block"
      } > "$work/cmake-app/CMakeLists.txt"
      cmake -S "$work/cmake-app" -B "$work/cmake-app/build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
      cmake --build "$work/cmake-app/build" > /dev/null
      (cd "$work/cmake-app" && ./build/my_scraper) | grep -q '"proxy_url":"http://10.0.0.1:8080"'
      ;;
    "Python/sh/pip install ."*)
      skip "the install lines: scripts/test-python.sh builds the same wheel and installs it into .venv"
      ran=$((ran - 1))
      ;;
    "Python/python/"*)
      mkdir -p "$work/py" && (cd "$work/py" && "$repo/.venv/bin/python" "$block") > "$work/py.out"
      head -1 "$work/py.out" | grep -qx 1
      ;;
    "Rust/rust/"*)
      skip "the same code is the doc example of src/lib.rs, run by cargo test --doc"
      ran=$((ran - 1))
      ;;
    "Layout/text/"*)
      skip "a directory listing"
      ran=$((ran - 1))
      ;;
    *)
      echo "scripts/test-readme.sh does not know README block $n ($lang, under \"$heading\"):" >&2
      cat "$block" >&2
      exit 1
      ;;
  esac
  ran=$((ran + 1))
done < "$work/blocks/index"

after="$(git -C "$repo" status --porcelain --ignored)"
if [ "$before" != "$after" ]; then
  echo "the README snippets changed the repository:" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi
echo "README: $ran passed, 0 failed"
