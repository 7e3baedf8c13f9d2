#!/usr/bin/env bash
# Builds a store of 100,000 small entries with real runs (`jl map` of echo)
# and times `jl stats`, `jl ls | tail -1` and `jl gc --max-size` on it.
# Usage: bench/store-100k.sh [N]   (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
cargo build --release --quiet
jl=$PWD/target/release/jl
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
export JL_STORE=$store
start=$(date +%s.%N)
seq "$n" | "$jl" map -q -j2 -- echo >/dev/null
echo "built $n entries in $(awk "BEGIN{print $(date +%s.%N) - $start}") s"
t() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null
  e=$(date +%s.%N)
  printf '| `%s` | %.2f s |\n' "$*" "$(awk "BEGIN{print $e - $s}")"
}
echo '| command | wall time |'
echo '| --- | --- |'
t "$jl" stats
t sh -c "$jl ls | tail -1"
t "$jl" gc --max-size 1GiB
t "$jl" gc --max-size 1MiB
