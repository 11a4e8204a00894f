#!/usr/bin/env bash
# How much does whole-machine profiling slow a CPU-bound program down?
#
# Runs a fixed amount of integer work on every CPU (samples/spin) with no profiler (baseline), under
# `flamespan record --frequency 99`, and under `perf record -F 99 -a -g`, interleaved round by round so that
# drift in the machine (thermal, noisy neighbours) hits every configuration alike. Reports the median wall time
# of the load in each configuration, its slowdown against the baseline, and the profilers' own CPU time.
#
# Environment:
#   FLAMESPAN       profiler binary                  (default .build/release/flamespan)
#   FLAMESPAN_BEFORE  a second build, run as the profiler `flamespan-before` (PROFILERS="flamespan
#                   flamespan-before"), for a before/after comparison of two builds inside one run
#   PROFILERS       which profilers to compare       (default "flamespan perf")
#   ROUNDS          rounds of A B C                  (default 5, at least 5 for a meaningful median)
#   THREADS         load threads                     (default: number of CPUs)
#   TARGET_SECONDS  wall time of one baseline run    (default 6; used to size ITERATIONS)
#   ITERATIONS      per-thread work; skips sizing    (default: sized from a calibration run)
#   SETTLE          seconds a profiler gets to attach before the load starts (default 3)
#   OUT             directory for logs and profiles  (default: a new temp directory)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"

FLAMESPAN=${FLAMESPAN:-.build/release/flamespan}
PROFILERS=${PROFILERS:-"flamespan perf"}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-$(nproc)}
TARGET_SECONDS=${TARGET_SECONDS:-6}
ITERATIONS=${ITERATIONS:-}
SETTLE=${SETTLE:-3}
OUT=${OUT:-$(mktemp -d /tmp/flamespan-overhead.XXXXXX)}
CLOCK_TICKS=$(getconf CLK_TCK)

fail() {
  echo "run.sh: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || fail "whole-machine profiling needs root"
for profiler in $PROFILERS; do
  case $profiler in
    flamespan | flamespan-kagg | flamespan-fp) [[ -x $FLAMESPAN ]] || fail "no flamespan binary at $FLAMESPAN (swift build -c release, or set FLAMESPAN)" ;;
    flamespan-before) [[ -x ${FLAMESPAN_BEFORE:-} ]] || fail "flamespan-before needs FLAMESPAN_BEFORE=/path/to/flamespan" ;;
    perf | perf-dwarf) command -v perf >/dev/null || fail "perf is not installed (apt-get install linux-perf)" ;;
    *) fail "unknown profiler '$profiler' in PROFILERS (known: flamespan flamespan-before flamespan-fp flamespan-kagg perf perf-dwarf)" ;;
  esac
done
mkdir -p "$OUT"

make -s -C samples
SPIN=samples/bin/spin

now_ns() { date +%s%N; }

# Wall seconds of one run of the load, printed with millisecond precision. The load's own CPU seconds
# (user + system) go to $OUT/$1.loadcpu: a profiler's interrupt and BPF work is charged to the task it
# interrupts, while a noisy neighbour only delays it, so CPU time isolates the profiler's cost on a shared
# machine where wall time cannot.
run_load() {
  local begin end
  begin=$(now_ns)
  /usr/bin/time -f "%U %S" -o "$OUT/time.tmp" "$SPIN" "$ITERATIONS" "$THREADS" >>"$OUT/load.log"
  end=$(now_ns)
  awk '{ printf "%.3f\n", $1 + $2 }' "$OUT/time.tmp" >>"$OUT/$1.loadcpu"
  awk -v b="$begin" -v e="$end" 'BEGIN { printf "%.3f\n", (e - b) / 1e9 }'
}

# User plus system CPU seconds a process has used so far.
cpu_seconds() {
  # Field 2 (comm) may contain spaces, so count fields from after its closing parenthesis.
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  awk -v ticks="$CLOCK_TICKS" '{ printf "%.3f\n", ($12 + $13) / ticks }' <<<"$stat"
}

median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

start_profiler() {
  local round=$2
  case $1 in
    flamespan)
      "$FLAMESPAN" record --frequency 99 --duration 600 --output "$OUT/flamespan-$round.pb.gz" \
        >"$OUT/flamespan-$round.log" 2>&1 &
      ;;
    flamespan-before)
      "$FLAMESPAN_BEFORE" record --frequency 99 --duration 600 \
        --output "$OUT/flamespan-before-$round.pb.gz" >"$OUT/flamespan-before-$round.log" 2>&1 &
      ;;
    flamespan-fp)
      "$FLAMESPAN" record --unwind fp --frequency 99 --duration 600 \
        --output "$OUT/flamespan-fp-$round.pb.gz" >"$OUT/flamespan-fp-$round.log" 2>&1 &
      ;;
    flamespan-kagg)
      "$FLAMESPAN" record --kernel-aggregation --frequency 99 --duration 600 \
        --output "$OUT/flamespan-kagg-$round.pb.gz" >"$OUT/flamespan-kagg-$round.log" 2>&1 &
      ;;
    perf)
      perf record -F 99 -a -g -o "$OUT/perf-$round.data" >"$OUT/perf-$round.log" 2>&1 &
      ;;
    perf-dwarf)
      perf record -F 99 -a --call-graph dwarf -o "$OUT/perf-dwarf-$round.data" \
        >"$OUT/perf-dwarf-$round.log" 2>&1 &
      ;;
  esac
  PROFILER_PID=$!
  sleep "$SETTLE"
  kill -0 "$PROFILER_PID" 2>/dev/null || fail "$1 exited before the load started; see $OUT/$1-$round.log"
  # Start-up (BPF verification, symbol tables) is a one-off; the CPU counted below is what it costs while running.
  PROFILER_CPU_AT_LOAD_START=$(cpu_seconds "$PROFILER_PID")
}

# Stops the profiler with SIGINT as a user would, recording its CPU time during the load and how long it took
# to finish writing its output afterwards.
stop_profiler() {
  local name=$1 round=$2 cpu begin end
  cpu=$(awk -v end="$(cpu_seconds "$PROFILER_PID")" -v start="$PROFILER_CPU_AT_LOAD_START" 'BEGIN { printf "%.3f\n", end - start }')
  if [[ $name == flamespan* ]]; then
    # Cost of the sampler's BPF program per run (kernel.bpf_stats_enabled is on for the whole benchmark).
    bpftool -j prog show name sample_cpu 2>/dev/null |
      python3 -c 'import json,sys; p=json.load(sys.stdin); p=p[0] if isinstance(p,list) else p; print(p.get("run_time_ns",0)/max(p.get("run_cnt",1),1), p.get("run_cnt",0))' \
        >>"$OUT/$name.bpfcost" || true
  fi
  begin=$(now_ns)
  kill -INT "$PROFILER_PID"
  local status=0
  wait "$PROFILER_PID" || status=$?
  # 130 is the conventional status of a program that ends on SIGINT.
  if [[ $status -ne 0 && $status -ne 130 ]]; then
    echo "note: $name exited with status $status in round $round (see $OUT/$name-$round.log)" >&2
  fi
  end=$(now_ns)
  echo "$cpu" >>"$OUT/$name.cpu"
  awk -v b="$begin" -v e="$end" 'BEGIN { printf "%.3f\n", (e - b) / 1e9 }' >>"$OUT/$name.shutdown"
  # Profiles are kept for inspection, but perf.data files are large.
  [[ $name == perf* ]] && rm -f "$OUT/$name-$round.data"
  return 0
}

cleanup() {
  if [[ -n ${PROFILER_PID:-} ]] && kill -0 "$PROFILER_PID" 2>/dev/null; then
    kill -INT "$PROFILER_PID" 2>/dev/null || true
    wait "$PROFILER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if [[ -z $ITERATIONS ]]; then
  probe=200000000
  "$SPIN" "$probe" "$THREADS" >/dev/null # warm caches and frequency governor
  begin=$(now_ns)
  "$SPIN" "$probe" "$THREADS" >/dev/null
  end=$(now_ns)
  ITERATIONS=$(awk -v p="$probe" -v b="$begin" -v e="$end" -v t="$TARGET_SECONDS" \
    'BEGIN { printf "%d\n", p * t / ((e - b) / 1e9) }')
fi

previous_bpf_stats=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
sysctl -qw kernel.bpf_stats_enabled=1 2>/dev/null || true
trap 'cleanup; sysctl -qw kernel.bpf_stats_enabled="$previous_bpf_stats" 2>/dev/null || true' EXIT

configurations="baseline $PROFILERS"
echo "load: $SPIN $ITERATIONS $THREADS; rounds: $ROUNDS; order per round: $configurations; output: $OUT"
for round in $(seq 1 "$ROUNDS"); do
  for configuration in $configurations; do
    if [[ $configuration == baseline ]]; then
      seconds=$(run_load "$configuration")
    else
      start_profiler "$configuration" "$round"
      seconds=$(run_load "$configuration")
      stop_profiler "$configuration" "$round"
      PROFILER_PID=
    fi
    echo "$seconds" >>"$OUT/$configuration.wall"
    printf 'round %d  %-10s %8.3f s\n' "$round" "$configuration" "$seconds"
  done
done

label() {
  case $1 in
    baseline) echo "no profiler" ;;
    flamespan) echo "flamespan record -F 99" ;;
    flamespan-before) echo "FLAMESPAN_BEFORE -F 99" ;;
    flamespan-fp) echo "flamespan --unwind fp" ;;
    flamespan-kagg) echo "flamespan --kernel-aggr." ;;
    perf) echo "perf record -F 99 -a -g" ;;
    perf-dwarf) echo "perf --call-graph dwarf" ;;
  esac
}

baseline=$(median <"$OUT/baseline.wall")
echo
printf '%-26s %12s %10s %16s %14s\n' configuration "median wall" slowdown "profiler CPU" "stop time"
printf '%-26s %10.3f s %10s %16s %14s\n' "$(label baseline)" "$baseline" "-" "-" "-"
declare -A slowdowns
for profiler in $PROFILERS; do
  wall=$(median <"$OUT/$profiler.wall")
  cpu=$(median <"$OUT/$profiler.cpu")
  shutdown=$(median <"$OUT/$profiler.shutdown")
  slowdown=$(awk -v w="$wall" -v b="$baseline" 'BEGIN { printf "%.2f", (w / b - 1) * 100 }')
  slowdowns[$profiler]=$slowdown
  printf '%-26s %10.3f s %9s%% %14s s %12s s\n' "$(label "$profiler")" "$wall" "$slowdown" "$cpu" "$shutdown"
done

# Paired figures: each profiled run against the baseline run of its own round, then the median over rounds.
echo
printf '%-26s %18s %22s\n' configuration "paired wall slowdown" "paired load-CPU increase"
for profiler in $PROFILERS; do
  wall=$(paste "$OUT/$profiler.wall" "$OUT/baseline.wall" | awk '{ printf "%.4f\n", ($1 / $2 - 1) * 100 }' | median)
  cpu=$(paste "$OUT/$profiler.loadcpu" "$OUT/baseline.loadcpu" | awk '{ printf "%.4f\n", ($1 / $2 - 1) * 100 }' | median)
  printf '%-26s %17.2f%% %21.2f%%\n' "$(label "$profiler")" "$wall" "$cpu"
done
echo
echo "CPU cost while running, as a share of the machine (load-CPU increase + profiler CPU / load CPU), median:"
for profiler in $PROFILERS; do
  paste "$OUT/$profiler.loadcpu" "$OUT/baseline.loadcpu" "$OUT/$profiler.cpu" |
    awk '{ printf "%.4f\n", (($1 / $2 - 1) + $3 / $2) * 100 }' | median |
    awk -v l="$(label "$profiler")" '{ printf "  %-26s %6.2f%%\n", l, $1 }'
done
if [[ -n ${slowdowns[flamespan]:-} && -n ${slowdowns[perf]:-} ]]; then
  awk -v f="${slowdowns[flamespan]}" -v p="${slowdowns[perf]}" 'BEGIN {
    if (p > 0) printf "\nflamespan slowdown / perf slowdown = %.2f\n", f / p
    else printf "\nperf showed no measurable slowdown (%s%%); ratio not meaningful\n", p
  }'
fi
echo "(profiler CPU: user+system seconds the profiler process used while the load ran, start-up excluded, median;"
echo " stop time: SIGINT to exit, which includes symbolization and writing the profile)"
echo "raw wall times: $OUT/*.wall"
for profiler in $PROFILERS; do
  [[ -s $OUT/$profiler.bpfcost ]] || continue
  awk -v l="$(label "$profiler")" '{ ns += $1; n++ } END { printf "%s: sampler BPF program %.0f ns per sample (mean over %d rounds)\n", l, ns / n, n }' "$OUT/$profiler.bpfcost"
done
