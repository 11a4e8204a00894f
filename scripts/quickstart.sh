#!/usr/bin/env bash
# Sets up what is missing, builds Flamespan, and profiles a sample workload and then the whole machine.
# Results land in ./out/. Run as root on Debian 12: sudo scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "==> Building flamespan (release; the first build takes a few minutes)"
swift build -c release --product flamespan 2>&1 | grep -E 'error|warning: |Compiling BPF|Build complete' || true
flamespan=.build/release/flamespan
[ -x "$flamespan" ] || { echo "quickstart: the build failed; run 'swift build -c release' to see why" >&2; exit 1; }
echo "==> Building the sample workloads (samples/bin/)"
make -s -C samples

mkdir -p out
echo
echo "==> 1/2: profiling samples/bin/hotpaths (two hot paths, 75% / 25% of its CPU, on 2 threads)"
"$flamespan" record --frequency 199 \
  -o out/hotpaths.svg -o out/hotpaths.pb.gz -o out/hotpaths.folded \
  -- samples/bin/hotpaths 5 2

echo
echo "==> 2/2: profiling the whole machine for 5 s while the workload runs again"
samples/bin/hotpaths 6 1 >/dev/null &
"$flamespan" record --duration 5s -o out/machine.svg -o out/machine.pb.gz
wait

echo
echo "Done. Look at the results:"
echo "  flame graphs:  out/hotpaths.svg  out/machine.svg   (open in a browser: hover, click to zoom, search)"
echo "  pprof:         go tool pprof -http=127.0.0.1:8080 out/hotpaths.pb.gz"
echo "                 go tool pprof -traces out/hotpaths.pb.gz   (inline frames marked '(inline)')"
echo "  folded stacks: out/hotpaths.folded"
