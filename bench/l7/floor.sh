#!/usr/bin/env bash
# What does each stage of the L7 socket hooks cost nginx, before any HTTP work? One build, five
# configurations, interleaved round by round:
#   none      no profiler
#   sampler   flamespan record --no-http-tracing (CPU sampling only)
#   filter    the tracer, with its socket hooks stopping after the pid filter
#   payload   ... stopping after the connection lookup, the syscall's registers and the payload copy
#   full      the tracer as recordings run it
# (filter and payload set FLAMESPAN_BENCHMARK_L7_STOP, which only the bench scripts use; they record no spans.)
#
# nginx (one worker) runs alone on the last CPU; wrk and flamespan share CPU 0. The worker is then the
# bottleneck and nothing else runs on its CPU, so its CPU time per request is what the hooks add to it,
# with less of the noise of a shared machine than requests/s.
# Reports, per configuration, the median over rounds of the worker's CPU µs per request and of its ratio
# to `none` in the same round.
#
# Environment: FLAMESPAN (default .build/release/flamespan), ROUNDS (8), DURATION (seconds of wrk per run, 4),
# CONFIGURATIONS (default "none sampler filter payload full").
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=bench/l7/common.sh
source bench/l7/common.sh
FLAMESPAN=${FLAMESPAN:-.build/release/flamespan}
ROUNDS=${ROUNDS:-8}
DURATION=${DURATION:-4}
CONFIGURATIONS=${CONFIGURATIONS:-"none sampler filter payload full"}

fail() {
  echo "floor.sh: $*" >&2
  exit 1
}
[[ $(id -u) -eq 0 ]] || fail "loading BPF needs root"
[[ -x $FLAMESPAN ]] || fail "no flamespan binary at $FLAMESPAN (swift build -c release, or set FLAMESPAN)"
for tool in wrk nginx taskset; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done
cpus=$(nproc)
((cpus >= 2)) || fail "needs two CPUs: one for nginx, one for wrk and flamespan"
server_cpu=$((cpus - 1))

OUT=$(bench_directory floor)
port=$(free_port)
trap stop_started EXIT
start_nginx nginx "$OUT" "$port" taskset -c "$server_cpu" || fail "nginx did not start"
worker=$NGINX_WORKERS

worker_ticks() { awk '{print $14 + $15}' "/proc/$worker/stat"; }

echo "L7 hook stages: $ROUNDS rounds x ${DURATION}s of wrk -t2 -c16;" \
  "nginx worker alone on CPU $server_cpu; outputs in $OUT"
: >"$OUT/results"
for round in $(seq 1 "$ROUNDS"); do
  for configuration in $CONFIGURATIONS; do
    stop="" arguments=(--spans-output "$OUT/spans.json")
    case $configuration in
      none | full) ;;
      sampler) arguments=(--no-http-tracing) ;;
      filter | payload) stop=$configuration ;;
      *) fail "unknown configuration '$configuration'" ;;
    esac
    if [[ $configuration != none ]]; then
      FLAMESPAN_BENCHMARK_L7_STOP=$stop taskset -c 0 "$FLAMESPAN" record -q -F 99 --pid "$NGINX_MASTER" \
        --pid "$worker" "${arguments[@]}" -o "$OUT/profile.folded" 2>"$OUT/record.log" &
      RECORDER=$!
      recorder_started "$RECORDER" "$OUT/record.log" || fail "flamespan record did not start"
      # Until 2026-12-04 the full configuration passed an empty stage, which the tracer refused: its runs
      # measured the sampler alone. A tracer that did not load now stops the script.
      if [[ $configuration != sampler ]] && grep -q 'HTTP tracing is off' "$OUT/record.log"; then
        fail "$configuration: $(grep 'HTTP tracing is off' "$OUT/record.log")"
      fi
    fi
    before=$(worker_ticks)
    requests=$(wrk_requests "$OUT/wrk.txt" taskset -c 0 wrk -t2 -c16 -d"${DURATION}s" \
      "$NGINX_URL") || fail "wrk failed"
    after=$(worker_ticks)
    if [[ -n $RECORDER ]]; then
      stop_recorder || fail "flamespan record failed; see $OUT/record.log"
      rm -f "$OUT/spans.json"
    fi
    micros=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" \
      'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
    echo "$configuration $round $requests $micros" >>"$OUT/results"
    printf '  round %d %-8s %9s requests %7s us of worker CPU per request\n' "$round" "$configuration" \
      "$requests" "$micros"
  done
done

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
for configuration in $CONFIGURATIONS; do
  micros=$(awk -v c="$configuration" '$1==c {print $4}' "$OUT/results" | median)
  ratio=$(awk -v c="$configuration" '$1=="none" {n[$2]=$4} $1==c {r[$2]=$4}
    END {for (k in r) if (n[k]) print r[k] / n[k]}' "$OUT/results" | median)
  printf '%-8s worker CPU per request: median %6s us, %+.1f%% vs none (median of per-round ratios)\n' \
    "$configuration" "$micros" "$(awk -v r="$ratio" 'BEGIN {print 100 * (r - 1)}')"
done
