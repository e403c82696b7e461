#!/usr/bin/env bash
# Times `iotmark unpack` against Debian's `binwalk -e` and plain `unsquashfs` in the same run, on
# the reference image of ../shared/bench (uImage + SquashFS-xz of 61 Debian packages, 21 MB).
#
#   bench/unpack_bench.sh [BUILD_DIR]          (default build/release)
# Env: FIXTURE (default build/bench-fixture), RUNS (default 7), IMAGE/SQFS to use other files.
# Writes $FIXTURE/results/unpack.md (medians, ratios, peak RSS) and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
IOTMARK=$BUILD/apps/cli/iotmark
CARVER_BENCH=$BUILD/bench/iotmark_carver_bench
FIXTURE=${FIXTURE:-$PWD/build/bench-fixture}
RUNS=${RUNS:-7}
SHARED_BENCH=${SHARED_BENCH:-$PWD/../shared/bench}
for t in hyperfine binwalk unsquashfs /usr/bin/time python3; do
  command -v "$t" >/dev/null || { echo "missing $t (scripts/setup.sh installs it)" >&2; exit 1; }
done
[ -x "$IOTMARK" ] || { echo "build first: cmake --workflow --preset ci" >&2; exit 1; }

IMAGE=${IMAGE:-$FIXTURE/firmware.bin}
SQFS=${SQFS:-$FIXTURE/rootfs.sqfs}
if [ ! -f "$IMAGE" ]; then
  [ -x "$SHARED_BENCH/build_image.sh" ] || { echo "need $SHARED_BENCH/build_image.sh or IMAGE=" >&2; exit 1; }
  OUT=$FIXTURE "$SHARED_BENCH/build_image.sh"
fi
RES=$FIXTURE/results
X=$FIXTURE/x
mkdir -p "$RES"
NPROC=$(nproc)

run() {  # NAME PREPARE COMMAND
  hyperfine --style none --runs "$RUNS" --warmup 1 --prepare "$2" --export-json "$RES/$1.json" \
    -n "$1" "$3" >/dev/null 2>&1 || { echo "benchmark $1 failed" >&2; return 1; }
}
rss() {  # NAME PREPARE COMMAND -> peak RSS in MB
  bash -c "$2"
  /usr/bin/time -f '%M' -o "$RES/$1.rss" bash -c "$3" >/dev/null 2>&1 || true
  echo "$1 $(( $(tail -1 "$RES/$1.rss") / 1024 ))" >> "$RES/rss.txt"
}
: > "$RES/rss.txt"
CLEAN="rm -rf $X"
run iotmark_unpack        "$CLEAN" "$IOTMARK unpack -q --no-progress -o $X $IMAGE"
run iotmark_unpack_j1     "$CLEAN" "$IOTMARK unpack -q --no-progress -j 1 -o $X $IMAGE"
run binwalk_e             "$CLEAN" "binwalk -e --run-as=$(id -un) -C $X $IMAGE"
run unsquashfs_p2         "$CLEAN" "unsquashfs -q -p 2 -d $X $SQFS"
run unsquashfs_p1         "$CLEAN" "unsquashfs -q -p 1 -d $X $SQFS"
rss iotmark_unpack        "$CLEAN" "$IOTMARK unpack -q --no-progress -o $X $IMAGE"
rss binwalk_e             "$CLEAN" "binwalk -e --run-as=$(id -un) -C $X $IMAGE"
rss unsquashfs_p2         "$CLEAN" "unsquashfs -q -p 2 -d $X $SQFS"
rm -rf "$X"
"$IOTMARK" unpack -q --no-progress -o "$X" "$IMAGE" --json "$RES/report.json" || true
rm -rf "$X"
if [ -x "$CARVER_BENCH" ]; then
  "$CARVER_BENCH" --benchmark_repetitions=7 --benchmark_report_aggregates_only=true \
    --benchmark_format=json "$IMAGE" > "$RES/carver.json" 2>/dev/null
fi

python3 - "$RES" "$IMAGE" "$NPROC" <<'PY' | tee "$RES/unpack.md"
import json, os, statistics, sys
res, image, nproc = sys.argv[1], sys.argv[2], sys.argv[3]
def median(name):
    return statistics.median(json.load(open(f"{res}/{name}.json"))["results"][0]["times"])
m = {n: median(n) for n in ("iotmark_unpack", "iotmark_unpack_j1", "binwalk_e", "unsquashfs_p2", "unsquashfs_p1")}
rss = dict(line.split() for line in open(f"{res}/rss.txt"))
report = json.load(open(f"{res}/report.json"))
print(f"# iotmark unpack on {os.path.basename(image)} ({os.path.getsize(image)/1e6:.1f} MB), {nproc} cores, medians of runs")
print()
print("| command | median s | peak RSS MB |")
print("| --- | ---: | ---: |")
for n in m:
    print(f"| {n} | {m[n]:.3f} | {rss.get(n, '')} |")
print()
print(f"- iotmark unpack vs unsquashfs -p 2: {m['unsquashfs_p2']/m['iotmark_unpack']:.2f}x "
      f"(>= 1.0 means iotmark is no slower; iotmark also unpacks the uImage and the config tarball)")
print(f"- iotmark unpack vs binwalk -e: {m['binwalk_e']/m['iotmark_unpack']:.2f}x faster")
print(f"- unpacked {report['stats']['bytes_written']/1e6:.1f} MB in {report['stats']['files']} files, "
      f"{report['stats']['chunks']} chunks, {len(report['gaps'])} gaps")
try:
    carver = json.load(open(f"{res}/carver.json"))
    for b in carver["benchmarks"]:
        if b.get("aggregate_name") == "median":
            print(f"- {b['run_name']}: {b['real_time']:.2f} ms (median)")
except (OSError, ValueError, KeyError):
    pass
PY
