#!/usr/bin/env bash
# What does HTTP tracing cost a server, and does it see every request?
#
# Drives three servers on 127.0.0.1 with wrk, in turn: nginx at its cheapest (one worker, a 17-byte file,
# no access log; writev/sendfile), nginx as Debian configures it (nginx-debian), and samples/bin/http_server
# (thread per connection). Configurations are interleaved round by round, in reverse order every other
# round (A B, B A, A B, …) so that machine drift hits all of them alike and a steady drift within a round
# favours none of them:
#   none        no profiler
#   sampler     flamespan record --pid SERVER --no-http-tracing  (CPU sampling only)
#   traced      flamespan record --pid SERVER --spans-output …   (CPU sampling + the L7 tracer on its
#               default socket hooks)
#   syscalls    the same with --http-hooks syscalls (the syscall-tracepoint fallback)
# Reports the median requests/s of each, the drop of `traced` against `none` and against `sampler`, the
# recorder's own CPU seconds per run (it shares the cores with wrk and the server), and the
# capture rate: server spans recorded / requests wrk completed (the spans of requests wrk started but
# did not count before its deadline make this slightly above 1), and any exchange records the recorder
# reports lost to a full ring buffer, per run and in total.
#
# Environment:
#   FLAMESPAN   profiler binary                   (default .build/release/flamespan)
#   ROUNDS      rounds of the three configurations (default 3)
#   DURATION    seconds of wrk per run            (default 10, the issue asks for >= 10)
#   CONNECTIONS wrk connections                   (default 16)
#   FREQUENCY   sampling frequency of the recordings (default 99)
#   TARGETS     which servers                     (default "nginx nginx-debian sample")
#   SAMPLE_PATH what wrk asks the sample server for (default /light, no work; "/burn?us=50" adds 50 µs of
#               CPU to every request)
#   CONFIGURATIONS which configurations, in order per round (default "none sampler traced syscalls")
#   OUT         directory for logs and outputs    (default: a new temp directory)
#   KEEP_OUTPUTS keep each run's spans and profile (default: deleted once counted; ~400 MB per traced run)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=bench/l7/common.sh
source bench/l7/common.sh

FLAMESPAN=${FLAMESPAN:-.build/release/flamespan}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
FREQUENCY=${FREQUENCY:-99}
TARGETS=${TARGETS:-"nginx nginx-debian sample"}
CONFIGURATIONS=${CONFIGURATIONS:-"none sampler traced syscalls"}
OUT=${OUT:-$(bench_directory l7bench)}

fail() {
  echo "run.sh: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || fail "loading BPF needs root"
[[ -x $FLAMESPAN ]] || fail "no flamespan binary at $FLAMESPAN (swift build -c release, or set FLAMESPAN)"
command -v wrk >/dev/null || fail "wrk is not installed (apt-get install wrk)"
command -v nginx >/dev/null || [[ $TARGETS != *nginx* ]] || fail "nginx is not installed (apt-get install nginx-light)"
mkdir -p "$OUT"
SERVER_PIDS=()
cleanup() {
  for pid in "${SERVER_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  # Reaped here, bash does not report each killed server as a job that died ("Killed ...").
  for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Starts one target; sets URL and PIDS (the processes that serve, for --pid).
start_target() {
  local target=$1 port
  port=$(free_port)
  case $target in
    nginx | nginx-debian)
      start_nginx "$target" "$OUT/$target" "$port" || fail "nginx did not start"
      # shellcheck disable=SC2206 # one pid per word
      SERVER_PIDS+=("$NGINX_MASTER" $NGINX_WORKERS)
      PIDS="$NGINX_MASTER $NGINX_WORKERS"
      URL=$NGINX_URL
      ;;
    sample)
      start_sample_server "$port" || fail "the sample server did not start"
      SERVER_PIDS+=("$SAMPLE_PID")
      PIDS=$SAMPLE_PID
      URL=$SAMPLE_URL
      ;;
    *) fail "unknown target '$target' (known: nginx nginx-debian sample)" ;;
  esac
}

# One wrk run in one configuration; prints "requests requests_per_second spans".
run_once() {
  local configuration=$1 tag=$2 recorder="" pid_args=()
  for pid in $PIDS; do pid_args+=(--pid "$pid"); done
  case $configuration in
    none) ;;
    sampler)
      "$FLAMESPAN" record -q -F "$FREQUENCY" "${pid_args[@]}" --no-http-tracing -o "$OUT/$tag.folded" \
        2>"$OUT/$tag.log" &
      recorder=$!
      ;;
    traced | syscalls)
      local hooks=socket
      [[ $configuration == traced ]] || hooks=syscalls
      "$FLAMESPAN" record -q -F "$FREQUENCY" "${pid_args[@]}" --http-hooks "$hooks" \
        --spans-output "$OUT/$tag.spans.json" -o "$OUT/$tag.folded" 2>"$OUT/$tag.log" &
      recorder=$!
      ;;
  esac
  # The recorder's own CPU seconds (user + system) while wrk runs: what it takes from the shared cores
  # (loading the BPF programs before, and assembling spans after, are not in it).
  cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
  local cpu_before=0
  if [[ -n $recorder ]]; then
    recorder_started "$recorder" "$OUT/$tag.log" || return 1
    # A recorder whose tracer the kernel refused goes on without spans; its run would pass for "traced".
    if [[ $configuration != sampler ]] && grep -q 'HTTP tracing is off' "$OUT/$tag.log"; then
      kill -INT "$recorder"
      fail "$tag: $(grep 'HTTP tracing is off' "$OUT/$tag.log")"
    fi
    cpu_before=$(cpu_seconds "$recorder")
  fi
  local busy_before busy_after
  busy_before=$(busy_ticks)
  # A run whose wrk failed prints nothing, and the round loop stops there.
  if ! wrk_requests "$OUT/$tag.wrk" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$URL" >/dev/null; then
    [[ -z $recorder ]] || kill -INT "$recorder"
    return 1
  fi
  busy_after=$(busy_ticks)
  local spans=0 recorder_cpu=0 lost=0
  if [[ -n $recorder ]]; then
    recorder_cpu=$(awk -v a="$(cpu_seconds "$recorder")" -v b="$cpu_before" 'BEGIN {printf "%.2f", a - b}')
    kill -INT "$recorder"
    wait "$recorder" || fail "flamespan record failed, see $OUT/$tag.log"
  fi
  if [[ $configuration == traced || $configuration == syscalls ]]; then
    # Server spans ("kind":2, which no JSON string can hold unescaped), counted a megabyte at a time: the
    # file is ~400 MB, and parsing it whole took over 1 GB of memory.
    spans=$(python3 -c '
import sys
pattern, count, tail = b"\"kind\":2", 0, b""
with open(sys.argv[1], "rb") as spans:
    while chunk := spans.read(1 << 20):
        window = tail + chunk
        count += window.count(pattern)
        tail = window[-(len(pattern) - 1):]
print(count)' "$OUT/$tag.spans.json")
    # Exchange records the kernel could not queue (a full ring buffer): the recorder's summary says how many.
    lost=$(awk '/L7 events lost:/ {
      for (i = 1; i < NF; i++) if ($i == "lost:") {sub(";", "", $(i + 1)); print $(i + 1)}}' "$OUT/$tag.log")
    lost=${lost:-0}
  fi
  # A traced run's spans file is ~400 MB at 90k requests/s; nine rounds of two targets filled the disk.
  [[ -n ${KEEP_OUTPUTS:-} ]] || rm -f "$OUT/$tag.spans.json" "$OUT/$tag.folded"
  local requests rps
  requests=$(awk '/requests in/ {print $1}' "$OUT/$tag.wrk")
  rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/$tag.wrk")
  # The whole machine's CPU time per request (user+system+irq+softirq, not steal): on these saturated
  # cores it is what throughput is the inverse of, and it moves less with neighbours than req/s does.
  local cpu_per_request
  cpu_per_request=$(awk -v a="$busy_after" -v b="$busy_before" -v n="$requests" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.2f", (a - b) / hz * 1e6 / n}')
  echo "$requests $rps $spans $recorder_cpu $cpu_per_request $lost"
}

busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# The lower and upper quartiles of ratios to 1 (one per line), as signed percentages: how far single
# rounds scatter around the median.
quartiles() {
  sort -g | awk '{v[NR]=$1} END {q1=v[int((NR+3)/4)]; q3=v[NR+1-int((NR+3)/4)];
    printf "%+.1f%% … %+.1f%%", 100*(q1-1), 100*(q3-1)}'
}

echo "flamespan L7 benchmark: $ROUNDS rounds x ${DURATION}s of wrk -t2 -c$CONNECTIONS, sampling at $FREQUENCY Hz, sample server path ${SAMPLE_PATH:-/light}; outputs in $OUT"
for target in $TARGETS; do
  start_target "$target"
  : >"$OUT/$target.results"
  for round in $(seq 1 "$ROUNDS"); do
    # shellcheck disable=SC2086 # one word per configuration
    for configuration in $(round_order "$round" $CONFIGURATIONS); do
      read -r requests rps spans recorder_cpu cpu_per_request lost < <(run_once "$configuration" "$target-$configuration-$round") ||
        fail "the $configuration run of round $round failed; see $OUT/$target-$configuration-$round.*"
      echo "$configuration $round $requests $rps $spans $recorder_cpu $cpu_per_request $lost" >>"$OUT/$target.results"
      printf '  %-6s round %d %-8s %8s requests %10s req/s %8s spans %6s s recorder CPU %6s us CPU/request' \
        "$target" "$round" "$configuration" "$requests" "$rps" "$spans" "$recorder_cpu" "$cpu_per_request"
      [[ $lost == 0 ]] || printf ' %s RECORDS LOST (ring buffer full)' "$lost"
      echo
    done
  done
  cleanup
  SERVER_PIDS=()
  # Per configuration: median req/s, the median over rounds of its ratio to `none` in the same round
  # (robust to the machine drifting between rounds), capture rate and recorder CPU.
  none=$(awk '$1=="none" {print $4}' "$OUT/$target.results" | median)
  measured_none=""
  [[ " $CONFIGURATIONS " != *" none "* ]] || measured_none=yes
  [[ -z $measured_none ]] || echo "$target: median req/s none $none"
  for configuration in $CONFIGURATIONS; do
    [[ $configuration != none ]] || continue
    rps=$(awk -v c="$configuration" '$1==c {print $4}' "$OUT/$target.results" | median)
    ratios=$(awk -v c="$configuration" '$1=="none" {n[$2]=$4} $1==c {r[$2]=$4}
      END {for (k in r) if (n[k]) print r[k] / n[k]}' "$OUT/$target.results")
    ratio=$(median <<<"$ratios")
    cpu=$(awk -v c="$configuration" '$1==c {print $6}' "$OUT/$target.results" | median)
    cost=$(awk -v c="$configuration" '$1=="none" {n[$2]=$7} $1==c {r[$2]=$7}
      END {for (k in r) if (n[k]) print r[k] / n[k]}' "$OUT/$target.results" | median)
    capture=$(awk -v c="$configuration" '$1==c {r+=$3; s+=$5} END {printf "%.4f", (r ? s/r : 0)}' "$OUT/$target.results")
    lowest=$(awk -v c="$configuration" '$1==c {x=($3 ? $5/$3 : 0); if (m=="" || x<m) m=x} END {printf "%.4f", m}' "$OUT/$target.results")
    printf '  %-9s median req/s %9s; ' "$configuration" "$rps"
    # Without `none` in CONFIGURATIONS there is nothing to compare with.
    if [[ -n $measured_none ]]; then
      printf 'vs none: %+.1f%% req/s (quartiles of rounds %s), %+.1f%% CPU per request (medians of per-round ratios); ' \
        "$(awk -v r="$ratio" 'BEGIN {print 100 * (r - 1)}')" "$(quartiles <<<"$ratios")" \
        "$(awk -v r="$cost" 'BEGIN {print 100 * (r - 1)}')"
    fi
    printf 'recorder CPU %s s/run' "$cpu"
    if [[ $configuration != sampler ]]; then
      printf '; spans/requests %s (lowest run %s)' "$capture" "$lowest"
      awk -v c="$configuration" '$1==c && $8 > 0 {n++; s+=$8}
        END {if (n) printf "; %d records lost to a full ring buffer, in %d runs", s, n}' "$OUT/$target.results"
    fi
    echo
  done
done
