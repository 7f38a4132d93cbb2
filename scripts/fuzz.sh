#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after another, each for a number of inputs, and prints
# one result line per target (inputs, seconds, crashes, the command). docs/reliability.md,
# "Fuzzing", records the last full run.
#
#   scripts/fuzz.sh [-n RUNS] [-s SANITIZER] [TARGET...]
#
#   -n RUNS       inputs per target (default 1000000; FUZZ_RUNS in the environment also sets it)
#   -s SANITIZER  address (default), none (about twice as fast), or another cargo-fuzz accepts
#   TARGET...     some of: config_json entry_json warm_json warm_jsonl warm_csv jsonl_shard
#                 sqlite_row (default: all)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`); without them it
# says so and exits 0. Each target starts from its seeds (fuzz/seeds/<target>/) and the corpus
# of earlier runs (fuzz/corpus/<target>/, not committed); a crash stops that target, leaves the
# input in fuzz/artifacts/<target>/, and makes the script exit 1 after the other targets ran.
# Files the targets write go to a scratch directory (on /dev/shm when it is writable), removed
# after each target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

runs=${FUZZ_RUNS:-1000000}
sanitizer=address
while getopts "n:s:" opt; do
  case "$opt" in
    n) runs=$OPTARG ;;
    s) sanitizer=$OPTARG ;;
    *) sed -n '2,20p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

all=(config_json entry_json warm_json warm_jsonl warm_csv jsonl_shard sqlite_row)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: skipped: no nightly Rust toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
  exit 0
fi

target_dir=$root/target/fuzz
fuzz=(cargo +nightly fuzz)
build=(--fuzz-dir "$root/fuzz" --target-dir "$target_dir" -s "$sanitizer")
echo "== building the fuzz targets (sanitizer: $sanitizer)"
for target in "${targets[@]}"; do
  "${fuzz[@]}" build "${build[@]}" "$target" >/dev/null
done

scratch_base=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch_base=/dev/shm; fi

status=0
results=()
for target in "${targets[@]}"; do
  corpus=$root/fuzz/corpus/$target
  seeds=$root/fuzz/seeds/$target
  artifacts=$root/fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  before=$(find "$artifacts" -type f | wc -l)
  scratch=$(mktemp -d "$scratch_base/pwcache-fuzz-$target.XXXXXX")
  log=$root/target/fuzz-$target.log
  # One process, one input at a time; -timeout turns a hang into a reported crash.
  libfuzzer=(-runs="$runs" -max_len=4096 -timeout=20 -print_final_stats=1)
  command="cargo +nightly fuzz run -s $sanitizer $target fuzz/corpus/$target fuzz/seeds/$target -- ${libfuzzer[*]}"
  echo "== $target: $runs inputs"
  start=$(date +%s%N)
  set +e
  # (cargo-fuzz sets -artifact_prefix to fuzz/artifacts/<target>/.)
  TMPDIR=$scratch "${fuzz[@]}" run "${build[@]}" "$target" "$corpus" "$seeds" -- \
    "${libfuzzer[@]}" >"$log" 2>&1
  code=$?
  set -e
  end=$(date +%s%N)
  rm -rf "$scratch"
  done_runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
  seconds=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
  if [ "$code" -ne 0 ]; then
    status=1
    [ "$crashes" -gt 0 ] || crashes="? (exit $code)"
    echo "!! $target failed, see $log and $artifacts"
    tail -n 40 "$log"
  fi
  line="$target inputs=${done_runs:-?} seconds=$seconds crashes=$crashes command: $command"
  echo "$line"
  results+=("$line")
done

echo "== results"
printf '%s\n' "${results[@]}"
exit "$status"
