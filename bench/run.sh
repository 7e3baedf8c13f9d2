#!/usr/bin/env bash
# jl side by side with its peers, in one run so the ratios hold on a noisy
# machine. Writes bench/RESULTS.md (or bench/RESULTS-quick.md with --quick).
#
#   bench/run.sh            the full run (about 10 minutes on 2 cores)
#   bench/run.sh --quick    every case tiny: checks the harness still works
#
# Installs missing peers: hyperfine, GNU parallel, b3sum, ImageMagick and
# GNU time from Debian; bkt and rust-parallel with `cargo install`. A peer
# that cannot be installed shows as "n/a" in its row.
# JL_BENCH_RSS_ITEMS overrides the item count of the peak-RSS case.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

quick=false
[[ ${1:-} == --quick ]] && quick=true
if $quick; then
  jobs_n=300 big_mib=64 dir_files=300 pics=8 store_n=2000 runs=3 slow_runs=2 c_funcs=20 build_files=4 remote_n=10
  out=bench/RESULTS-quick.md
else
  jobs_n=10000 big_mib=1024 dir_files=10000 pics=200 store_n=100000 runs=30 slow_runs=3 c_funcs=300 build_files=16 remote_n=100
  out=bench/RESULTS.md
fi
rss_n=${JL_BENCH_RSS_ITEMS:-$store_n}

# --- peers -------------------------------------------------------------
apt_pkgs=()
command -v hyperfine >/dev/null || apt_pkgs+=(hyperfine)
command -v parallel >/dev/null || apt_pkgs+=(parallel)
command -v b3sum >/dev/null || apt_pkgs+=(b3sum)
[[ -x /usr/bin/convert ]] || apt_pkgs+=(imagemagick)
[[ -x /usr/bin/time ]] || apt_pkgs+=(time)
command -v gcc >/dev/null || apt_pkgs+=(gcc)
command -v ccache >/dev/null || apt_pkgs+=(ccache)
command -v python3 >/dev/null || apt_pkgs+=(python3)
if ((${#apt_pkgs[@]})); then
  apt-get update -q >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y -q "${apt_pkgs[@]}" >/dev/null ||
    echo "bench: could not install ${apt_pkgs[*]}" >&2
fi
export PATH=$HOME/.cargo/bin:$PATH
for crate in bkt rust-parallel; do
  command -v "$crate" >/dev/null || cargo install --locked -q "$crate" ||
    echo "bench: could not install $crate" >&2
done
command -v hyperfine >/dev/null || { echo "bench: hyperfine is required" >&2; exit 1; }

cargo build --release --locked --quiet
jl=$repo/target/release/jl
# The opt-in static build (README, "A static jl"), measured beside it.
RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
  cargo build --release --locked --quiet --target x86_64-unknown-linux-gnu
jl_static=$repo/target/x86_64-unknown-linux-gnu/release/jl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export JL_STORE=$work/store BKT_CACHE_DIR=$work/bkt CCACHE_DIR=$work/ccache
results=$work/results.tsv
: >"$results"

# row CASE TOOL SECONDS [NOTE]: one measured median.
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$results"; }

# bench CASE RUNS [hyperfine options] -- NAME=COMMAND...: each command's median.
bench() {
  local case=$1 n=$2
  shift 2
  local opts=()
  while [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  local names=() cmds=() spec
  for spec in "$@"; do
    names+=("${spec%%=*}")
    cmds+=("${spec#*=}")
  done
  hyperfine -N --style none --runs "$n" "${opts[@]}" --export-json "$work/h.json" "${cmds[@]}" >/dev/null
  python3 - "$work/h.json" "$case" "${names[@]}" >>"$results" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))["results"]
for name, r in zip(sys.argv[3:], data):
    print(f"{sys.argv[2]}\t{name}\t{r['median']}\t")
EOF
}

have() { command -v "$1" >/dev/null; }
echo "bench: warm hits" >&2

# 1. Warm hit of a tiny command.
"$jl" run -- echo hi >/dev/null
have bkt && bkt --ttl=1h -- echo hi >/dev/null
peers=("jl run=$jl run -- echo hi" "jl run, static=$jl_static run -- echo hi" "echo=/bin/echo hi" "true=/bin/true")
have bkt && peers+=("bkt=bkt --ttl=1h -- echo hi")
bench "1. warm hit of echo hi" $((runs * 10)) --warmup 20 -- "${peers[@]}"

# 2. Hashing a fresh 1 GiB input, and the warm hit on it.
echo "bench: hashing" >&2
head -c $((big_mib << 20)) /dev/urandom >big.bin
cat big.bin >/dev/null
cold=("jl run (cold key)=$jl run -- true big.bin")
have b3sum && cold+=("b3sum=b3sum big.bin")
bench "2a. ${big_mib} MiB input, cold" "$slow_runs" --prepare "rm -rf $JL_STORE" -- "${cold[@]}"
"$jl" run -- true big.bin
sleep 2.1 # past the stat cache's racy window, as any real re-run would be
"$jl" run -- true big.bin
bench "2b. ${big_mib} MiB input, warm hit" $((runs * 10)) --warmup 10 -- \
  "jl run=$jl run -- true big.bin" "true=/bin/true"

# 3. Uncached dispatch of a trivial command.
echo "bench: dispatch" >&2
seq "$jobs_n" >items.txt
dispatch=("jl map --no-cache=sh -c '$jl map -q -j2 --no-cache -a items.txt -- true'"
  "xargs=sh -c 'xargs -P2 -n1 true <items.txt'")
have parallel && dispatch+=("parallel=sh -c 'parallel -j2 true <items.txt'")
have rust-parallel && dispatch+=("rust-parallel=sh -c 'rust-parallel -j2 true <items.txt'")
bench "3. $jobs_n jobs of true, -j2, uncached" "$slow_runs" -- "${dispatch[@]}"
# Each run gets a fresh store; the old one is deleted at the end, so that
# deleting it does not compete with the run being measured.
fresh="mv $JL_STORE \$(mktemp -d -p $work) 2>/dev/null"
bench "3b. $jobs_n jobs of true, -j2, storing each" "$slow_runs" --prepare "sh -c '$fresh; sync'" -- \
  "jl map=$jl map -q -j2 -a items.txt -- true"

# 4. The same jobs, all cached.
"$jl" map -q -j2 -a items.txt -- true
bench "4. $jobs_n jobs of true, all cached" "$runs" --warmup 2 -- \
  "jl map=$jl map -q -j2 -a items.txt -- true"

# 5 and 6. A store of many small entries: peak RSS of the map that builds
# it and of its cached rerun, then the store commands on it.
echo "bench: $store_n-entry store" >&2
rm -rf "$JL_STORE"
seq "$rss_n" >many.txt
rss() { /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null && echo $(($(cat "$work/rss") * 1024)); }
row "5. peak RSS, $rss_n-item map" "jl map --no-cache (bytes)" "$(rss "$jl" map -q -j2 --no-cache -a many.txt -- true)"
row "5. peak RSS, $rss_n-item map" "jl map, storing (bytes)" "$(rss "$jl" map -q -j2 -a many.txt -- echo)"
row "5. peak RSS, $rss_n-item map" "jl map, all cached (bytes)" "$(rss "$jl" map -q -j2 -a many.txt -- echo)"
if ((store_n != rss_n)); then
  rm -rf "$JL_STORE"
  seq "$store_n" | "$jl" map -q -j2 -- echo >/dev/null
fi
bench "6. store of $store_n entries" "$slow_runs" -- \
  "jl stats=$jl stats" "jl ls | tail -1=sh -c '$jl ls | tail -1'"
half=$(($(du -sb "$JL_STORE" | cut -f1) / 2))
# One run: copying a 100,000-entry store for each run would take minutes.
bench "6. store of $store_n entries" 1 --prepare "cp -a $JL_STORE $work/gc-store" -- \
  "jl gc --max-size (evicts half)=$jl gc --store $work/gc-store --max-size ${half}B"
rm -rf "$work/gc-store"

# 7. A directory input of many small files.
echo "bench: directory input" >&2
mkdir tree
seq 1 $((dir_files * 20)) | (cd tree && split -l 20 -a 5 - f)
sleep 2.1 # past the racy window: the tree's digest can be remembered
dir_cold=("jl run -i tree (cold key)=$jl run -i tree -- true")
have b3sum && dir_cold+=("find | xargs b3sum=sh -c 'find tree -type f -print0 | xargs -0 b3sum >/dev/null'")
bench "7a. directory of $dir_files files, cold" "$slow_runs" --prepare "rm -rf $JL_STORE" -- "${dir_cold[@]}"
"$jl" run -i tree -- true
bench "7b. directory of $dir_files files, warm hit" "$runs" --warmup 3 -- \
  "jl run -i tree=$jl run -i tree -- true" "true=/bin/true"

# 8. The seed's scenario: a color histogram of each of many pictures.
echo "bench: pictures" >&2
if [[ -x /usr/bin/convert ]]; then
  mkdir pics
  seq "$pics" | xargs -P2 -I{} /usr/bin/convert -size 320x240 plasma:fractal pics/{}.jpg
  ls pics/*.jpg >pics.txt
  hist='/usr/bin/convert {} -resize 64x64 -colors 8 -format %c histogram:info:-'
  bench "8. histogram of $pics pictures, -j2" "$slow_runs" --prepare "rm -rf $JL_STORE" -- \
    "jl map, first run=$jl map -q -j2 -a pics.txt -- $hist"
  "$jl" map -q -j2 -a pics.txt -- $hist >/dev/null
  peers=("jl map, second run=$jl map -q -j2 -a pics.txt -- $hist")
  have parallel && peers+=("parallel=sh -c 'parallel -j2 $hist <pics.txt'")
  bench "8. histogram of $pics pictures, -j2" "$slow_runs" -- "${peers[@]}"
fi

# 9. --trace: a compile and the picture command, traced, against running
# them plainly and against ccache's direct-mode hit.
echo "bench: --trace" >&2
python3 - "$c_funcs" >unit.c <<'EOF'
import sys
print("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>")
for i in range(int(sys.argv[1])):
    print(f"double f{i}(double x) {{ double s = 0; for (int k = 0; k < {i + 3}; k++)"
          f" s += sin(x * k) / (k + 1.0); if (s > {i}) printf(\"%f\\n\", s); return s * {i}; }}")
EOF
cc='gcc -O2 -c unit.c -o unit.o'
"$jl" run --trace -- $cc
bench "9a. gcc -O2 -c, miss" "$slow_runs" -- "jl run --trace, store warm=$jl run --trace --force -- $cc" \
  "gcc=$cc"
bench "9a. gcc -O2 -c, miss" "$slow_runs" --prepare "rm -rf $JL_STORE" -- \
  "jl run --trace, fresh store=$jl run --trace -- $cc"
"$jl" run --trace -- $cc
sleep 2.1 # past the racy window, as any real re-run would be
"$jl" run --trace -- $cc
traced_hits=("jl run --trace=$jl run --trace -- $cc" "true=/bin/true")
if have ccache; then
  ccache $cc && ccache $cc
  traced_hits+=("ccache=ccache $cc")
fi
bench "9b. gcc -O2 -c, hit" "$runs" --warmup 3 -- "${traced_hits[@]}"
if [[ -x /usr/bin/convert ]]; then
  pic="/usr/bin/convert pics/1.jpg -resize 64x64 -colors 8 -format %c histogram:info:-"
  "$jl" run --trace -- $pic >/dev/null
  bench "9c. one picture's histogram, miss" "$slow_runs" -- \
    "jl run --trace, store warm=$jl run --trace --force -- $pic" "convert=$pic"
fi

# 10. A make -j2 build of many C files, wrapped in jl run --trace and in
# ccache: cold (empty caches) and warm (after make clean), beside plain make.
echo "bench: make -j2 builds" >&2
mkdir build10
python3 - "$build_files" "$c_funcs" "$work/build10" <<'EOF'
import os, sys
files, funcs, dest = int(sys.argv[1]), max(int(sys.argv[2]) // 8, 4), sys.argv[3]
os.chdir(dest)
open("common.h", "w").write("#include <math.h>\n#include <stdio.h>\n#define SCALE 3\n")
for n in range(files):
    with open(f"u{n}.c", "w") as f:
        f.write('#include "common.h"\n')
        for i in range(funcs):
            f.write(f"double u{n}_f{i}(double x) {{ double s = 0; for (int k = 0; k < {i + 3}; k++)"
                    f" s += sin(x * k) / (k + SCALE); if (s > {i}) printf(\"%f\\n\", s); return s * {i}; }}\n")
objs = " ".join(f"u{n}.o" for n in range(files))
open("Makefile", "w").write(
    f"OBJS = {objs}\nall: $(OBJS)\n%.o: %.c\n\t$(CC) -O2 -MMD -MP -c $< -o $@\n"
    "clean:\n\trm -f *.o *.d\n-include $(OBJS:.o=.d)\n")
EOF
mk="make -s -C $work/build10 -j2"
fresh="sh -c 'make -s -C $work/build10 clean; rm -rf $JL_STORE $CCACHE_DIR'"
clean="make -s -C $work/build10 clean"
builds=("make=$mk CC=gcc" "jl run --trace=$mk 'CC=$jl run --trace -- gcc'")
have ccache && builds+=("ccache=$mk 'CC=ccache gcc'")
bench "10a. make -j2 of $build_files C files, cold" "$slow_runs" --prepare "$fresh" -- "${builds[@]}"
for spec in "${builds[@]:1}"; do
  $clean && eval "${spec#*=}"
done
warm=("${builds[@]:1}" "make (no cache)=$mk CC=gcc")
bench "10b. the same build after make clean, warm" "$slow_runs" --prepare "$clean" -- "${warm[@]}"

# 11. What compression saves: the same outputs stored raw (JL_COMPRESS=0)
# and at the default level, in bytes the store takes (jl stats).
echo "bench: store size" >&2
stored() { JL_STORE=$1 "$jl" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])'; }
sizes() {
  local case=$1
  shift
  local level name
  for level in 1 0; do
    rm -rf "$work/size-$level"
    JL_STORE=$work/size-$level JL_COMPRESS=$level "$@" >/dev/null
    name="jl, compressed (bytes)"
    ((level == 0)) && name="raw, JL_COMPRESS=0 (bytes)"
    row "$case" "$name" "$(stored "$work/size-$level")"
  done
}
find /usr/share/common-licenses -type f | sort >all-licenses.txt
head -n "$((pics / 5 + 2))" all-licenses.txt >licenses.txt
sizes "11a. store size, the quick start's feature lines" "$jl" map -q -j2 -a licenses.txt -- sh "$repo/examples/features.sh"
ls build10/*.c >sources.txt
sizes "11b. store size, assembly of $build_files C files" "$jl" map -q -j2 -a sources.txt -- gcc -O2 -S -o - {}
sizes "11c. store size, license texts numbered" "$jl" map -q -j2 -a licenses.txt -- cat -n {}
if [[ -x /usr/bin/convert ]]; then
  sizes "11d. store size, $pics JPEG thumbnails" "$jl" map -q -j2 -a pics.txt -- /usr/bin/convert {} -resize 50% jpg:-
fi

# 12. What compression costs a hit: a 1 MiB text output and a JPEG,
# replayed from a raw store and from a compressed one.
{ yes 'feature 0.25 0.50 0.75' || true; } | head -c 1048576 >text.txt
cp pics/1.jpg pic.jpg 2>/dev/null || head -c 300000 /dev/urandom >pic.jpg
for f in text.txt pic.jpg; do
  for level in 0 1; do
    JL_STORE=$work/hit-$level JL_COMPRESS=$level "$jl" run -- cat $f >/dev/null
  done
  bench "12. hit replaying $f ($(stat -c %s $f) bytes)" "$runs" --warmup 3 -- \
    "jl run, compressed=env JL_STORE=$work/hit-1 $jl run -- cat $f" \
    "raw=env JL_STORE=$work/hit-0 $jl run -- cat $f"
done

# 13. A remote cache 50 ms away (bench/slow_remote.py: every request
# answered after 50 ms): a populate with and without it, and a gather of
# what it holds into an empty store at -j1 and -j8.
echo "bench: remote with 50 ms per request" >&2
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$repo/bench/slow_remote.py" "$port" 0.05 &
remote_pid=$!
remote=http://127.0.0.1:$port/jl
python3 -c "import time, urllib.request
for _ in range(100):
    try: urllib.request.urlopen('http://127.0.0.1:$port/reset'); break
    except OSError: time.sleep(0.05)"
seq "$remote_n" >remote-items.txt
cat >reset-remote.sh <<EOF
rm -rf $work/r
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/reset')"
EOF
bench "13. populate, $remote_n jobs of echo" "$slow_runs" --prepare "sh $work/reset-remote.sh" -- \
  "jl map -j8, remote 50 ms away=env JL_STORE=$work/r $jl map -q -j8 --remote $remote -a remote-items.txt -- echo" \
  "jl map -j8, no remote=env JL_STORE=$work/r $jl map -q -j8 -a remote-items.txt -- echo"
JL_STORE=$work/r "$jl" map -q -j8 --remote "$remote" -a remote-items.txt -- echo >/dev/null
bench "13. gather, $remote_n jobs from a remote 50 ms away" "$slow_runs" --prepare "rm -rf $work/g" -- \
  "jl map -j8=env JL_STORE=$work/g $jl map -q -j8 --remote $remote -a remote-items.txt -- echo" \
  "jl map -j1=env JL_STORE=$work/g $jl map -q -j1 --remote $remote -a remote-items.txt -- echo"
kill "$remote_pid"
rm -rf "$work/r" "$work/g"

# 15. Gather throughput from an S3 API server on loopback (moto), next to
# the HTTP remote (bench/slow_remote.py with no delay): the same results.
if have moto_server; then
  echo "bench: gather from S3 and HTTP on loopback" >&2
  s3port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  moto_server -H 127.0.0.1 -p "$s3port" >/dev/null 2>&1 &
  moto_pid=$!
  python3 "$repo/bench/slow_remote.py" "$port" 0 &
  remote_pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null -X PUT "http://127.0.0.1:$s3port/jlbucket" && break; sleep 0.1; done
  s3=s3://jlbucket/bench?endpoint=http://127.0.0.1:$s3port
  seq "$((remote_n * 5))" >gather-items.txt
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
  for url in "$s3" "$remote"; do
    JL_STORE=$work/p "$jl" map -q -j8 --remote "$url" -a gather-items.txt -- sh -c 'echo $1; seq 2000' sh >/dev/null
    rm -rf "$work/p"
  done
  bench "15. gather, $((remote_n * 5)) jobs of 8.9 KB, loopback" "$slow_runs" --prepare "rm -rf $work/g" -- \
    "jl map -j8, S3 (moto)=env JL_STORE=$work/g $jl map -q -j8 --remote $s3 -a gather-items.txt -- sh -c 'echo \$1; seq 2000' sh" \
    "jl map -j8, HTTP=env JL_STORE=$work/g $jl map -q -j8 --remote $remote -a gather-items.txt -- sh -c 'echo \$1; seq 2000' sh"
  kill "$moto_pid" "$remote_pid"
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  rm -rf "$work/g"
fi

# 14. JL_MAX_SIZE against the disk space a store of many one-line results
# really takes (every file a 4 KiB block at least).
echo "bench: disk use under JL_MAX_SIZE" >&2
rm -rf "$work/bounded"
seq "$store_n" | JL_STORE=$work/bounded JL_MAX_SIZE=10MB "$jl" map -q -j2 -- echo >/dev/null
row "14. store size on disk, $store_n one-line results, JL_MAX_SIZE=10MB" "jl, du of the store (bytes)" \
  "$(du -s --block-size=1 "$work/bounded" | cut -f1)"
row "14. store size on disk, $store_n one-line results, JL_MAX_SIZE=10MB" "the bound, JL_MAX_SIZE (bytes)" 10000000
rm -rf "$work/bounded"

# --- report ------------------------------------------------------------
versions() {
  local t
  for t in hyperfine parallel b3sum bkt rust-parallel; do
    have "$t" && printf -- '- %s: %s\n' "$t" "$("$t" --version 2>&1 | head -1)"
  done
  [[ -x /usr/bin/convert ]] && printf -- '- ImageMagick: %s\n' "$(/usr/bin/convert -version | head -1)"
  true
}
{
  echo "# jl benchmarks"
  echo
  echo "Written by \`bench/run.sh$($quick && echo ' --quick')\` on $(date -u +%Y-%m-%d)."
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -h | awk '/Mem:/{print $2}') memory, $(uname -sr)."
  echo "jl $("$jl" --version | cut -d' ' -f2), release binary $(stat -c %s "$jl") bytes."
  echo
  versions
  echo
  python3 - "$results" <<'EOF'
import sys
from collections import OrderedDict

cases = OrderedDict()
for line in open(sys.argv[1]):
    case, tool, value, _ = line.rstrip("\n").split("\t")
    cases.setdefault(case, []).append((tool, float(value)))

def fmt(tool, v):
    if "bytes" in tool:
        return f"{v / 2**20:.1f} MiB" if v >= 2**20 else f"{v / 2**10:.1f} KiB"
    return f"{v * 1000:.2f} ms" if v < 1 else f"{v:.2f} s"

print("Medians; **× jl** is the tool's time over jl's time in the same case")
print("(above 1: jl is faster). Rates are jobs per second.")
print()
print("| case | tool | median | jobs/s | × jl |")
print("| --- | --- | --- | --- | --- |")
for case, rows in cases.items():
    jl = next((v for t, v in rows if t.startswith("jl")), None)
    n = next((int(w) for w in case.split() if w.isdigit() and "jobs" in case), None)
    for tool, v in rows:
        rate = f"{n / v:,.0f}" if n and "bytes" not in tool else ""
        sized = "bytes" not in tool or "store size" in case
        ratio = f"{v / jl:.2f}" if jl and not tool.startswith("jl") and sized else ""
        name = tool.replace("|", "\\|")
        print(f"| {case} | {name} | {fmt(tool, v)} | {rate} | {ratio} |")
EOF
} >"$repo/$out"
echo "bench: wrote $out" >&2
cat "$repo/$out"
