#!/usr/bin/env bash
# What profiling a CPython program at 99 Hz costs: flamespan record beside py-spy record --native.
#
# samples/python/chain_main.py (Debian's /usr/bin/python3) runs SETTLE + SECONDS_PER_RUN seconds and counts its
# work units over the last SECONDS_PER_RUN only, while the profiler, attached by pid during SETTLE, is past
# its start-up. Each round runs every configuration once, in a rotated order so that none always comes first:
#   baseline    no profiler
#   flamespan   flamespan record -F 99 --pid PID -o X.pb.gz
#   pyspy       py-spy record --native -r 99 --pid PID -f raw  (py-spy 0.4.3 from PyPI; by default it pauses
#               the target while it reads each sample)
# Reported, median over rounds:
#   - the workload's speed: work units per wall second, and per CPU second of the workload (a profiler's
#     kernel work, such as flamespan's BPF sampler, is charged to the task it interrupts, so it shows here;
#     a noisy neighbour on this shared machine only delays the workload, so this is the steadier figure);
#   - the paired slowdown: each profiled run against the baseline run of its own round;
#   - the profiler's CPU per sample: its process's user+system CPU over its whole run (start-up and writing
#     the profile included) divided by the samples it took; the same over the counted window alone, per
#     sample taken there (flamespan samples the workload at 99 Hz of its CPU time, py-spy at 99 Hz of wall
#     time); and the run time of the BPF programs it loaded (kernel.bpf_stats_enabled; py-spy has none) in
#     the window per such sample, which the kernel charges to the workload, not to the profiler's process.
#
# Environment:
#   FLAMESPAN_BIN    profiler (default .build/release/flamespan)   ROUNDS          rounds (default 5)
#   SECONDS_PER_RUN  counted seconds per run (default 10)          SETTLE          seconds before counting (default 6)
#   PROFILERS        default "flamespan pyspy"                     OUT             results (default: a new temp dir)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

FLAMESPAN_BIN=${FLAMESPAN_BIN:-.build/release/flamespan}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
SETTLE=${SETTLE:-6}
PROFILERS=${PROFILERS:-"flamespan pyspy"}
OUT=${OUT:-$(mktemp -d /tmp/flamespan-pyoverhead.XXXXXX)}
mkdir -p "$OUT"

[[ $(id -u) -eq 0 ]] || fail "needs root (BPF, and py-spy reads another process's memory)"
for profiler in $PROFILERS; do
  case $profiler in
    flamespan) [[ -x $FLAMESPAN_BIN ]] || fail "no flamespan at $FLAMESPAN_BIN (swift build -c release, or set FLAMESPAN_BIN)" ;;
    pyspy) ensure_pyspy ;;
    *) fail "unknown profiler '$profiler' in PROFILERS (known: flamespan pyspy)" ;;
  esac
done
command -v bpftool >/dev/null || fail "bpftool is not installed (scripts/setup.sh)"
build_samples "$OUT/bin"
WORKLOAD=$OUT/bin/python/chain_main.py

WORKLOAD_PID= PROFILER_PID=
cleanup() {
  for pid in $PROFILER_PID $WORKLOAD_PID; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  sysctl -qw kernel.bpf_stats_enabled="${previous_bpf_stats:-0}" 2>/dev/null || true
}
previous_bpf_stats=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1 || fail "cannot turn on kernel.bpf_stats_enabled"

# User plus system CPU seconds process $1 has used so far (field 2, comm, may hold spaces).
cpu_seconds() {
  local stat
  stat=$(<"/proc/$1/stat") || return 1
  stat=${stat##*) }
  awk -v ticks="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($12 + $13) / ticks }' <<<"$stat"
}

median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The ids of the BPF programs loaded now.
bpf_ids() {
  bpftool -j prog show 2>/dev/null | "$PYTHON" -c 'import json, sys; print(" ".join(str(p["id"]) for p in json.load(sys.stdin)))'
}

# BPF run time (ns) and runs, summed over the programs with the given ids (bpftool cannot always say which
# process holds a program: the ids come from the profiler's descriptors).
bpf_totals() {
  if [[ $(sysctl -n kernel.bpf_stats_enabled 2>/dev/null) != 1 ]]; then
    echo "nan nan" # statistics off: another process turned them off
    return
  fi
  bpftool -j prog show 2>/dev/null | "$PYTHON" -c '
import json, sys
ids = {int(i) for i in sys.argv[1:]}
ns = runs = 0
for prog in json.load(sys.stdin):
    if prog["id"] in ids:  # bpftool leaves the figures out of a program that never ran
        ns += prog.get("run_time_ns", 0)
        runs += prog.get("run_cnt", 0)
print(ns, runs)' "$@"
}

run_configuration() {
  local name=$1 round=$2 log=$OUT/$1-$2
  CHAIN_SETTLE_SECONDS=$SETTLE "$PYTHON" "$WORKLOAD" "$SECONDS_PER_RUN" >"$log.workload" 2>&1 &
  WORKLOAD_PID=$!
  local programs_before
  programs_before=$(bpf_ids)
  # The profiler runs under /usr/bin/time, which gives its whole CPU time once it exits.
  case $name in
    baseline) ;;
    flamespan)
      /usr/bin/time -f "%U %S" -o "$log.time" "$FLAMESPAN_BIN" record -F 99 --pid "$WORKLOAD_PID" \
        -d $((SETTLE + SECONDS_PER_RUN + 60))s -o "$log.pb.gz" >"$log.log" 2>&1 &
      PROFILER_PID=$!
      ;;
    pyspy)
      /usr/bin/time -f "%U %S" -o "$log.time" "$PYSPY" record --native -r 99 --pid "$WORKLOAD_PID" -f raw \
        -o "$log.raw" >"$log.log" 2>&1 &
      PROFILER_PID=$!
      ;;
  esac
  local settle_end=$((SECONDS + SETTLE))
  local profiler="" programs="" bpf_start="" bpf_end="" cpu_start="" cpu_end="" window_start="" window_end=""
  if [[ -n $PROFILER_PID ]]; then
    # Attached before the workload starts counting, or the run would measure the profiler's start-up.
    until grep -qE 'Ctrl-C to stop|Sampling process' "$log.log" 2>/dev/null; do
      kill -0 "$PROFILER_PID" 2>/dev/null || fail "$name exited before it was ready; see $log.log"
      ((SECONDS < settle_end)) || fail "$name was not ready within SETTLE=$SETTLE s (raise SETTLE); see $log.log"
      sleep 0.05
    done
    profiler=$(pgrep -P "$PROFILER_PID" | head -1) || fail "$name exited during the settle time; see $log.log"
    # Its own programs, from the descriptors it holds; else those that appeared while it started.
    programs=$({ grep -h '^prog_id:' /proc/"$profiler"/fdinfo/* 2>/dev/null || true; } | awk '{ print $2 }' | sort -u | tr '\n' ' ')
    [[ -n ${programs// /} ]] ||
      programs=$(comm -13 <(tr ' ' '\n' <<<"$programs_before" | sort) <(bpf_ids | tr ' ' '\n' | sort) | tr '\n' ' ')
  fi
  sleep "$(awk -v e="$settle_end" -v n="$SECONDS" 'BEGIN { print (e > n ? e - n : 0) }')"
  if [[ -n $PROFILER_PID ]]; then
    cpu_start=$(cpu_seconds "$profiler")
    # kernel.bpf_stats_enabled is machine-wide: another benchmark may have turned it off when it ended.
    sysctl -qw kernel.bpf_stats_enabled=1 || true
    [[ -n $programs ]] && bpf_start=$(bpf_totals $programs)
    window_start=$(date +%s.%N)
    # Until half a second before the workload stops counting (py-spy exits as soon as its target does).
    sleep "$(awk -v e="$settle_end" -v s="$SECONDS_PER_RUN" -v n="$SECONDS" 'BEGIN { t = e + s - 0.5 - n; print (t > 0 ? t : 0) }')"
    cpu_end=$(cpu_seconds "$profiler") || fail "$name exited before the workload stopped counting; see $log.log"
    window_end=$(date +%s.%N)
    [[ -n $programs ]] && bpf_end=$(bpf_totals $programs)
    # Off for part of the window, the counters missed some runs: no figure rather than a low one.
    [[ $(sysctl -n kernel.bpf_stats_enabled 2>/dev/null) == 1 ]] || bpf_end="nan nan"
  fi
  wait "$WORKLOAD_PID" || fail "the workload failed; see $log.workload"
  WORKLOAD_PID=
  local line rate cpu_rate workload_cpu
  line=$(grep -h '^work units' "$log.workload") || fail "no work-units line in $log.workload"
  rate=$(sed -E 's/.*\(([0-9.]+) per s\).*/\1/' <<<"$line")
  cpu_rate=$(sed -E 's/.*\(([0-9.]+) per CPU s\).*/\1/' <<<"$line")
  workload_cpu=$(sed -E 's/.*, ([0-9.]+) CPU s .*/\1/' <<<"$line")
  echo "$rate" >>"$OUT/$name.rate"
  echo "$cpu_rate" >>"$OUT/$name.cpurate"
  if [[ -n $PROFILER_PID ]]; then
    local samples
    # py-spy stops when its target exits; flamespan --pid is told to, as Ctrl-C would.
    [[ $name == flamespan ]] && { kill -INT "$profiler" 2>/dev/null || true; }
    wait "$PROFILER_PID" || true
    PROFILER_PID=
    case $name in
      flamespan) samples=$(flamespan_samples "$log.pb.gz") ;;
      pyspy) samples=$(sed -nE 's/.*Samples: ([0-9]+).*/\1/p' "$log.log" | tail -1) ;;
    esac
    [[ -n $samples && $samples -gt 0 ]] || fail "$name took no samples; see $log.log"
    awk -v n="$samples" '{ printf "%.1f\n", ($1 + $2) * 1e6 / n }' "$log.time" >>"$OUT/$name.cpu_us"
    # Samples in the window: flamespan samples the workload at 99 Hz of its CPU time, py-spy at 99 Hz of
    # wall time. BPF runs on other tasks' ticks (the programs see every CPU, then filter by pid) are in the
    # run time too: they are part of the cost.
    read -r ns0 _ <<<"$bpf_start"
    read -r ns1 _ <<<"$bpf_end"
    awk -v c0="$cpu_start" -v c1="$cpu_end" -v a="${ns0:-0}" -v b="${ns1:-0}" -v c="$workload_cpu" \
      -v w="$SECONDS_PER_RUN" -v kind="$name" -v t0="$window_start" -v t1="$window_end" 'BEGIN {
        window = t1 - t0
        samples = kind == "flamespan" ? 99 * c * window / w : 99 * window
        # Counters that went down mean another process meddled with the statistics: no figure.
        if (kind == "flamespan" && a != "nan" && b != "nan" && b >= a) printf "%.1f %.1f\n", (c1 - c0) * 1e6 / samples, (b - a) / 1000 / samples
        else if (kind == "flamespan") printf "%.1f nan\n", (c1 - c0) * 1e6 / samples
        else printf "%.1f -\n", (c1 - c0) * 1e6 / samples }' >>"$OUT/$name.window_us"
  fi
  printf 'round %d  %-10s %s\n' "$round" "$name" "$line"
}

# flamespan's sample count: the first Comment line of its pprof says "flamespan: N samples at …".
flamespan_samples() {
  "$PYTHON" - "$1" <<'EOF'
import gzip, re, sys
text = gzip.decompress(open(sys.argv[1], "rb").read()).decode("latin-1")
match = re.search(r"flamespan: (\d+) samples", text)
print(match.group(1) if match else 0)
EOF
}

configurations=(baseline $PROFILERS)
echo "workload: $PYTHON $WORKLOAD $SECONDS_PER_RUN (settle $SETTLE s); rounds: $ROUNDS; output: $OUT"
for round in $(seq 1 "$ROUNDS"); do
  count=${#configurations[@]}
  for ((i = 0; i < count; i++)); do
    run_configuration "${configurations[$(((i + round - 1) % count))]}" "$round"
  done
done

label() {
  case $1 in
    baseline) echo "no profiler" ;;
    flamespan) echo "flamespan record -F 99" ;;
    pyspy) echo "py-spy record --native -r 99" ;;
  esac
}

echo
printf '%-30s %10s %12s %10s %12s %14s %14s %12s\n' configuration "units/s" "units/CPU s" slowdown "CPU/unit +" \
  "µs/sample run" "µs/sample win" "BPF µs/smp"
printf '%-30s %10s %12s %10s %12s %14s %14s %12s\n' "$(label baseline)" "$(median <"$OUT/baseline.rate")" \
  "$(median <"$OUT/baseline.cpurate")" - - - - -
for profiler in $PROFILERS; do
  slowdown=$(paste "$OUT/baseline.rate" "$OUT/$profiler.rate" | awk '{ printf "%.4f\n", ($1 / $2 - 1) * 100 }' | median)
  cpu_increase=$(paste "$OUT/baseline.cpurate" "$OUT/$profiler.cpurate" | awk '{ printf "%.4f\n", ($1 / $2 - 1) * 100 }' | median)
  printf '%-30s %10s %12s %9.2f%% %11.2f%% %14s %14s %12s\n' "$(label "$profiler")" "$(median <"$OUT/$profiler.rate")" \
    "$(median <"$OUT/$profiler.cpurate")" "$slowdown" "$cpu_increase" "$(median <"$OUT/$profiler.cpu_us")" \
    "$(awk '{ print $1 }' "$OUT/$profiler.window_us" | median)" \
    "$(awk '$2 != "-" && $2 != "nan" { print $2 }' "$OUT/$profiler.window_us" | median | sed 's/^nan$/-/')"
done
echo "(medians over rounds. slowdown: baseline units/s / profiled units/s - 1, paired by round; CPU/unit +: the"
echo " same with units per CPU second of the workload. µs/sample run: the profiler process's CPU over its whole run"
echo " (start-up and output included) / its samples; win: its CPU in the counted window / the samples it took there"
echo " (flamespan: 99 per workload CPU second; py-spy: 99 per second); BPF: the run time of the BPF programs it"
echo " loaded, in the window, per such sample, charged to the workload. Raw: $OUT/*.rate, *.cpurate, *.cpu_us, *.window_us)"
