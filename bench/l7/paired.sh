#!/usr/bin/env bash
# What does tracing cost the server it traces, measured so that the host's drift cancels out?
#
# On these shared VMs a run's throughput moves by ±15% from one 10 s run to the next (bench/l7/RESULTS.md),
# so run.sh's one-after-the-other comparison needs many rounds to resolve a few percent. Here two identical
# servers, A and B, run at the same time under two identical wrk loads, and `flamespan record` traces one
# of them: whatever the host does in those seconds, it does to both. Both servers are pinned to the last
# CPU, and the wrk loads and the recorder to the first: the servers saturate their CPU, the scheduler gives
# each half of it, and the ratio of their throughputs is the inverse of the ratio of their CPU time per
# request. (Unpinned, where the scheduler put whom moved the untraced A/B ratio between 0.80 and 1.01.)
# Each round has three runs:
#   none      no recorder: A/B, the method's own noise (should be close to 1)
#   traced-A  A traced, B not: A/B
#   traced-B  B traced, A not: B/A
# and the report gives, per round, the geometric mean of the two traced runs' ratios (which cancels what
# favours A or B on the shared CPU), and their median.
#
# What this leaves out: the tracer's hooks run for every socket read and write on the machine and stop at
# the pid filter for processes not traced, so the untraced server pays that floor too, as does the
# recorder's CPU, which both share. run.sh measures the whole against no tracer at all; the difference is
# the floor (about 1% of nginx's time by CPU samples, bench/l7/where.sh).
#
# STAGES splits the cost: each named stage gets its own traced-A and traced-B runs in every round, so the
# stages of a round share the host's state. Besides `full` (the tracer as shipped), a stage is a value of
# FLAMESPAN_BENCHMARK_L7_STOP (L7Tracer.benchmarkStop lists them all: filter, socket, storage, registers,
# kernel-copy, payload, request, status, response, withdraw, clock). For example STAGES="full payload
# filter". Stages that differ by a point or less are better split by program time (bpf-time.sh STAGES=…).
# A stage loads the bench-only object l7_bench, the same programs compiled with the stops
# (bpf/l7/bench_stops.h); `full` loads the shipped l7, which has none.
#
# The servers do as little as they can per request (nginx a 17-byte file, the sample server /light), which
# is the tracer's worst case: its cost per request is about fixed, so its share falls as the server's own
# work grows. SAMPLE_PATH gives the sample server work, for example SAMPLE_PATH="/burn?us=50".
#
# Environment: FLAMESPAN (default .build/release/flamespan), TARGET (nginx, nginx-debian or sample as in
# run.sh, default nginx), SAMPLE_PATH (default /light),
# ROUNDS (default 6), DURATION (seconds of wrk per run, default 10), CONNECTIONS (per wrk, default 16),
# STAGES (default full).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=bench/l7/common.sh
source bench/l7/common.sh
FLAMESPAN=${FLAMESPAN:-.build/release/flamespan}
TARGET=${TARGET:-nginx}
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
STAGES=${STAGES:-full}

fail() {
  echo "paired.sh: $*" >&2
  exit 1
}
[[ $(id -u) -eq 0 ]] || fail "loading BPF needs root"
[[ -x $FLAMESPAN ]] || fail "no flamespan binary at $FLAMESPAN (swift build -c release, or set FLAMESPAN)"
for tool in wrk nginx python3 taskset; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done
OUT=$(bench_directory paired)

SERVERS=()
stop_all() {
  stop_started
  for pid in "${SERVERS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${SERVERS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

# start_server NAME: starts one instance of TARGET; sets URL_<NAME> and PIDS_<NAME>.
start_server() {
  local name=$1 port
  port=$(free_port)
  case $TARGET in
    nginx | nginx-debian)
      start_nginx "$TARGET" "$OUT/$name" "$port" taskset -c "$SERVER_CPU" || fail "nginx $name did not start"
      # shellcheck disable=SC2206 # one pid per word
      SERVERS+=("$NGINX_MASTER" $NGINX_WORKERS)
      printf -v "URL_$name" '%s' "$NGINX_URL"
      printf -v "PIDS_$name" '%s' "$NGINX_MASTER $NGINX_WORKERS"
      ;;
    sample)
      start_sample_server "$port" taskset -c "$SERVER_CPU" || fail "sample server $name did not start"
      SERVERS+=("$SAMPLE_PID")
      printf -v "URL_$name" '%s' "$SAMPLE_URL"
      printf -v "PIDS_$name" '%s' "$SAMPLE_PID"
      ;;
    *) fail "unknown TARGET '$TARGET' (known: nginx nginx-debian sample)" ;;
  esac
}
SERVER_CPU=$(($(nproc) - 1))
((SERVER_CPU >= 1)) || fail "needs two CPUs: one for the servers, one for wrk and flamespan"
start_server A
start_server B

# run_pair runs in a subshell, which the EXIT trap does not cover: a failure stops its recorder itself.
run_fail() {
  stop_started
  fail "$@"
}

# run_pair CONFIGURATION [STAGE]: both loads at once, the recorder (stopping at STAGE unless it is full) on
# the traced server if any; prints "rps_A rps_B".
run_pair() {
  local configuration=$1 stage=${2:-full} traced="" pid_args=() stop=""
  [[ $stage == full ]] || stop=$stage
  case $configuration in
    traced-A) traced=$PIDS_A ;;
    traced-B) traced=$PIDS_B ;;
  esac
  if [[ -n $traced ]]; then
    for pid in $traced; do pid_args+=(--pid "$pid"); done
    FLAMESPAN_BENCHMARK_L7_STOP=$stop taskset -c 0 "$FLAMESPAN" record -q -F 99 "${pid_args[@]}" \
      --spans-output "$OUT/spans.json" -o "$OUT/profile.folded" 2>"$OUT/record.log" &
    RECORDER=$!
    recorder_started "$RECORDER" "$OUT/record.log" || run_fail "flamespan record did not start"
    if grep -q 'HTTP tracing is off' "$OUT/record.log"; then
      run_fail "$(grep 'HTTP tracing is off' "$OUT/record.log")"
    fi
  fi
  wrk_requests "$OUT/A.wrk" taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL_A" >/dev/null &
  local load_a=$!
  wrk_requests "$OUT/B.wrk" taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL_B" >/dev/null &
  local load_b=$!
  wait "$load_a" || run_fail "wrk on A failed; see $OUT/A.wrk"
  wait "$load_b" || run_fail "wrk on B failed; see $OUT/B.wrk"
  if [[ -n $traced ]]; then
    stop_recorder || run_fail "flamespan record failed; see $OUT/record.log"
    # A recording stopped at a stage sends no records, and its summary has no such line.
    [[ -n $stop ]] || grep -q 'L7 events lost: 0;' "$OUT/record.log" ||
      echo "  records lost: $(grep 'L7 events lost' "$OUT/record.log")" >&2
    rm -f "$OUT/spans.json"
  fi
  echo "$(awk '/Requests\/sec/ {print $2}' "$OUT/A.wrk") $(awk '/Requests\/sec/ {print $2}' "$OUT/B.wrk")"
}

read -ra stages <<<"$STAGES"
echo "paired.sh: two $TARGET servers on CPU $SERVER_CPU under wrk -t1 -c$CONNECTIONS each ($URL_A), $ROUNDS rounds x $((1 + 2 * ${#stages[@]})) runs of ${DURATION}s (stages: $STAGES); outputs in $OUT"
: >"$OUT/results"
for round in $(seq 1 "$ROUNDS"); do
  runs=(none)
  for stage in "${stages[@]}"; do runs+=("traced-A:$stage" "traced-B:$stage"); done
  for run in $(round_order "$round" "${runs[@]}"); do
    configuration=${run%%:*} stage=${run#*:}
    [[ $configuration != none ]] || stage=none
    read -r a b < <(run_pair "$configuration" "$stage") || fail "the $run run of round $round failed"
    # The traced server's throughput over the other's (A over B when nothing is traced).
    ratio=$(awk -v a="$a" -v b="$b" -v c="$configuration" 'BEGIN {printf "%.4f", c == "traced-B" ? b / a : a / b}')
    echo "$configuration $stage $round $a $b $ratio" >>"$OUT/results"
    printf '  round %d %-8s %-11s A %10s req/s  B %10s req/s  ratio %s\n' "$round" "$configuration" "$stage" "$a" "$b" "$ratio"
  done
done

python3 - "$OUT/results" "$STAGES" <<'PYTHON'
import math, statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
ratio = {(r[0], r[1], r[2]): float(r[5]) for r in rows}
rounds = sorted({r[2] for r in rows}, key=int)
def percent(x):
    return "%+.1f%%" % (100 * (x - 1))
bias = [ratio[("none", "none", k)] for k in rounds]
print("untraced A over untraced B (the pair's own bias): median %s (%s … %s)"
      % (percent(statistics.median(bias)), percent(min(bias)), percent(max(bias))))
# Each server has half of its CPU, so half a second of CPU over its req/s is its CPU time per request.
untraced = statistics.median(float(r[3]) + float(r[4]) for r in rows if r[0] == "none") / 2
microseconds = 0.5e6 / untraced
print("untraced server: %.1f µs of CPU per request (half a CPU over its %.0f req/s)" % (microseconds, untraced))
# A and B are not quite alike on one CPU (the untraced A/B ratio is steady but not 1): a bias b multiplies
# traced-A's ratio and divides traced-B's, so their geometric mean cancels it.
for stage in sys.argv[2].split():
    costs = [math.sqrt(ratio[("traced-A", stage, k)] * ratio[("traced-B", stage, k)]) for k in rounds]
    median = statistics.median(costs)
    print("%-11s traced server's req/s over the untraced one's, per round: %s; median %s, i.e. %s CPU time per request (%+.1f µs)"
          % (stage, " ".join(percent(c) for c in costs), percent(median), percent(1 / median),
             (1 / median - 1) * microseconds))
PYTHON
