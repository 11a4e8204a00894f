#!/usr/bin/env bash
# DWARF unwinding: completeness and cost.
#
# 1. Completeness. Each sample built without frame pointers (C++ templates, Rust, a qsort callback through
#    Debian's libc) runs under `flamespan record --unwind dwarf`, under `--unwind fp`, and under
#    `perf record --call-graph dwarf`. For each, of the samples whose stack holds the hot function, the share
#    whose stack also reaches the program's main (for Rust: the crate's main, below std's runtime).
# 2. Cost. Two copies of nofp_templates keep 2 CPUs busy while flamespan samples the whole machine at 99 Hz,
#    once per mode. Reported: the agent's CPU while sampling (% of one core, start-up and the final
#    symbolization excluded), the user-space unwinding CPU it measured itself, the BPF program's run time per
#    sample (kernel.bpf_stats_enabled), ring buffer losses, and the agent's peak RSS.
#
# Environment:
#   FLAMESPAN  profiler binary (default: built here with `swift build -c release --scratch-path .build-unwind`)
#   SECONDS_PER_RUN  completeness run length (default 5)   COST_SECONDS  cost window (default 20)
#   OUT        directory for profiles and logs (default: a new temp directory)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
HERE=bench/unwind
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
COST_SECONDS=${COST_SECONDS:-20}
OUT=${OUT:-$(mktemp -d /tmp/flamespan-unwind.XXXXXX)}
CLOCK_TICKS=$(getconf CLK_TCK)
mkdir -p "$OUT"

fail() { echo "run.sh: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "needs root (BPF)"
command -v perf >/dev/null || fail "perf is not installed (apt-get install linux-perf)"

if [[ -z ${FLAMESPAN:-} ]]; then
  swift build -c release --scratch-path .build-unwind --product flamespan >"$OUT/build.log" 2>&1 ||
    fail "release build failed; see $OUT/build.log"
  FLAMESPAN=.build-unwind/release/flamespan
fi
make -s -C samples BIN="$OUT/bin" >/dev/null

cpu_seconds() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  awk -v ticks="$CLOCK_TICKS" '{ printf "%.3f\n", ($12 + $13) / ticks }' <<<"$stat"
}

echo "# Completeness: hot samples whose stack reaches main"
printf "%-16s %-25s %8s %8s %8s\n" workload profiler hot complete percent
declare -A HOT=([nofp_templates]='^Mixer<[0-9]>::mix' [nofp_rust]='^nofp_rust::mix$' [qsort_callback]='^compare_keys$')
declare -A ENTRY=([nofp_templates]='main' [nofp_rust]='nofp_rust::main' [qsort_callback]='main')
for workload in nofp_templates nofp_rust qsort_callback; do
  binary="$OUT/bin/$workload"
  [[ -x $binary ]] || { echo "$workload: not built, skipped"; continue; }
  for mode in dwarf fp; do
    "$FLAMESPAN" record --unwind "$mode" -F 99 -q -o "$OUT/$workload-$mode.folded" -- "$binary" "$SECONDS_PER_RUN" \
      >/dev/null 2>"$OUT/$workload-$mode.log"
    read -r hot complete percent < <(python3 $HERE/stack_stats.py folded "$OUT/$workload-$mode.folded" \
      "$workload" "${HOT[$workload]}" "${ENTRY[$workload]}")
    printf "%-16s %-25s %8s %8s %8s\n" "$workload" "flamespan --unwind $mode" "$hot" "$complete" "$percent"
  done
  perf record -q --call-graph dwarf -F 99 -o "$OUT/$workload.perf.data" -- "$binary" "$SECONDS_PER_RUN" \
    >/dev/null 2>&1
  perf script -i "$OUT/$workload.perf.data" -F comm,ip,sym >"$OUT/$workload.perf.txt" 2>/dev/null
  read -r hot complete percent < <(python3 $HERE/stack_stats.py perf "$OUT/$workload.perf.txt" \
    "$workload" "${HOT[$workload]}" "${ENTRY[$workload]}")
  printf "%-16s %-25s %8s %8s %8s\n" "$workload" "perf --call-graph dwarf" "$hot" "$complete" "$percent"
  rm -f "$OUT/$workload.perf.data"
done

echo
echo "# Cost: 99 Hz, whole machine, 2 busy CPUs (2 x nofp_templates), ${COST_SECONDS} s window"
sysctl -q -w kernel.bpf_stats_enabled=1
trap 'sysctl -q -w kernel.bpf_stats_enabled=0; kill $(jobs -p) 2>/dev/null || true' EXIT
printf "%-6s %12s %14s %16s %12s %10s %10s\n" mode "agent %core" "unwind %core" "unwind us/stack" "bpf us/run" lost "peak RSS"
for mode in fp dwarf; do
  "$OUT/bin/nofp_templates" $((COST_SECONDS + 8)) >/dev/null &
  load1=$!
  "$OUT/bin/nofp_templates" $((COST_SECONDS + 8)) >/dev/null &
  load2=$!
  "$FLAMESPAN" record --unwind "$mode" -F 99 -q -d 600 -o "$OUT/cost-$mode.folded" 2>"$OUT/cost-$mode.log" &
  agent=$!
  sleep 3
  start_cpu=$(cpu_seconds $agent)
  start_ns=$(date +%s%N)
  sleep "$COST_SECONDS"
  end_cpu=$(cpu_seconds $agent)
  end_ns=$(date +%s%N)
  peak_kb=$(awk '/VmHWM/ { print $2 }' /proc/$agent/status)
  # Other tools (or tests) may have their own sampler loaded: take the program our agent holds.
  bpf=$(bpftool -j prog show name sample_cpu | python3 -c '
import json, sys
agent = int(sys.argv[1])
progs = json.load(sys.stdin)
progs = progs if isinstance(progs, list) else [progs]
ours = [p for p in progs if any(h.get("pid") == agent for h in p.get("pids", []))] or progs
p = max(ours, key=lambda p: p.get("run_cnt", 0))
print("%.2f" % (p.get("run_time_ns", 0) / max(p.get("run_cnt", 1), 1) / 1000))' "$agent")
  kill -INT $agent
  wait $agent || true
  wait $load1 $load2 || true
  agent_pct=$(awk -v c0="$start_cpu" -v c1="$end_cpu" -v t0="$start_ns" -v t1="$end_ns" 'BEGIN { printf "%.2f", 100 * (c1 - c0) / ((t1 - t0) / 1e9) }')
  lost=$(grep -o 'Lost samples: [0-9]*' "$OUT/cost-$mode.log" | awk '{ print $3 }' || true)
  per_stack=$(grep -o '[0-9.]* µs CPU per stack' "$OUT/cost-$mode.log" | awk '{ print $1 }' || true)
  stacks=$(grep -o 'Dwarf unwinding: [0-9]* stacks' "$OUT/cost-$mode.log" | awk '{ print $3 }' || true)
  duration=$(grep -o 'Recorded [0-9.]* s' "$OUT/cost-$mode.log" | awk '{ print $2 }' || true)
  unwind_pct=$(awk -v us="${per_stack:-0}" -v n="${stacks:-0}" -v d="${duration:-1}" 'BEGIN { printf "%.3f", 100 * us * n / 1e6 / d }')
  printf "%-6s %12s %14s %16s %12s %10s %7s MiB\n" "$mode" "$agent_pct" "$unwind_pct" "${per_stack:--}" "$bpf" "${lost:-?}" \
    "$(awk -v k="$peak_kb" 'BEGIN { printf "%.1f", k / 1024 }')"
done
echo
echo "# Unwinding speed: in the agent, then flamespan vs libdw vs libunwind on one captured copy"
# Ours: per-stack user CPU as the agent measures it (maps lookup and timing included), 999 Hz for 10 s.
for workload in qsort_callback nofp_templates; do
  "$FLAMESPAN" record --unwind dwarf -F 999 -q -o "$OUT/speed-$workload.folded" -- "$OUT/bin/$workload" 10 \
    2>"$OUT/speed-$workload.log" >/dev/null
  frames=$(awk '{ n = split($0, a, ";"); s += (n - 1) * $NF; c += $NF } END { printf "%.1f", s / c }' "$OUT/speed-$workload.folded")
  echo "flamespan $workload: $(grep -o '[0-9.]* µs CPU per stack' "$OUT/speed-$workload.log"), ~$frames frames per stack"
done
# The same copy for all three: the unwinder fixture captures its own stack inside a qsort callback (15
# frames through libc), and each unwinder unwinds it 20000 times with warm caches.
cc -O2 -g -fomit-frame-pointer -o "$OUT/capture" Tests/FlamespanUnwinderTests/Fixtures/capture.c
mkdir -p "$OUT/capture-qsort"
"$OUT/capture" "$OUT/capture-qsort" qsort
cc -O2 -o "$OUT/libdw_unwind" $HERE/libdw_unwind.c -ldw -lelf
cc -O2 -o "$OUT/libunwind_unwind" $HERE/libunwind_unwind.c -lunwind-x86_64 -lunwind
RELEASE=$(dirname "$FLAMESPAN")
if [[ -d $RELEASE/FlamespanUnwinder.build ]]; then
  swiftc -O -I "$RELEASE/Modules" $HERE/throughput.swift "$RELEASE"/FlamespanUnwinder.build/*.o \
    "$RELEASE"/FlamespanProcess.build/*.o "$RELEASE"/FlamespanModel.build/*.o -o "$OUT/throughput"
  "$OUT/throughput" "$OUT/capture-qsort" 20000
else
  echo "flamespan: no release objects next to $FLAMESPAN; skipped"
fi
"$OUT/libdw_unwind" "$OUT/capture-qsort" 20000
"$OUT/libunwind_unwind" "$OUT/capture-qsort" 20000

echo
echo "Logs and profiles: $OUT"
