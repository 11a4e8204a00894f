#!/usr/bin/env bash
# How much kernel time do the L7 programs take per request? Runs nginx (one worker, a 17-byte static file)
# under wrk with `flamespan record --spans-output` attached and the kernel's BPF run-time statistics on,
# then divides each program's run time by the requests wrk completed.
#
# The statistics add a clock read around every program run (roughly 80 ns on a VM), and wrk's own socket
# reads and writes run the programs too (they stop at the pid filter), so the figures are an upper bound;
# compare them between builds rather than reading them as absolute costs.
#
# STAGES splits the time as paired.sh's STAGES split the throughput: each round runs every named stage
# (FLAMESPAN_BENCHMARK_L7_STOP, see L7Tracer.benchmarkStop, which loads the bench-only object l7_bench;
# `full` is the tracer as shipped, the l7 object without stops), in reverse
# order every other round, and the summary gives each stage's median. Separate invocations of the same
# build moved by up to 30% on these VMs; within one, the rounds of a stage agree far better.
#
# Environment: FLAMESPAN (default .build/release/flamespan), DURATION (seconds of wrk, default 5),
# HOOKS (socket or syscalls, default socket), ROUNDS (default 2), STAGES (default full).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=bench/l7/common.sh
source bench/l7/common.sh
FLAMESPAN=${FLAMESPAN:-.build/release/flamespan}
DURATION=${DURATION:-5}
HOOKS=${HOOKS:-socket}
ROUNDS=${ROUNDS:-2}
STAGES=${STAGES:-full}

fail() {
  echo "bpf-time.sh: $*" >&2
  exit 1
}
[[ $(id -u) -eq 0 ]] || fail "loading BPF and kernel.bpf_stats_enabled need root"
[[ -x $FLAMESPAN ]] || fail "no flamespan binary at $FLAMESPAN (swift build -c release, or set FLAMESPAN)"
for tool in wrk nginx bpftool python3; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

OUT=$(bench_directory bpftime)
port=$(free_port)
previous_stats=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  stop_started
  sysctl -qw kernel.bpf_stats_enabled="$previous_stats"
}
trap cleanup EXIT
start_nginx nginx "$OUT" "$port" || fail "nginx did not start"
worker=$NGINX_WORKERS

sysctl -qw kernel.bpf_stats_enabled=1
read -ra stages <<<"$STAGES"
echo "L7 programs' kernel time per nginx request: $ROUNDS rounds x ${DURATION}s of wrk -t2 -c16, $HOOKS hooks, stages: $STAGES"
: >"$OUT/totals"
for round in $(seq 1 "$ROUNDS"); do
  for stage in $(round_order "$round" "${stages[@]}"); do
    stop=""
    [[ $stage == full ]] || stop=$stage
    # shellcheck disable=SC2086 # one --pid per process
    FLAMESPAN_BENCHMARK_L7_STOP=$stop "$FLAMESPAN" record -q -F 99 --http-hooks "$HOOKS" \
      --pid "$NGINX_MASTER" --pid $worker --spans-output "$OUT/spans.json" -o "$OUT/profile.folded" \
      2>"$OUT/record.log" &
    RECORDER=$!
    recorder_started "$RECORDER" "$OUT/record.log" || fail "flamespan record did not start"
    requests=$(wrk_requests "$OUT/wrk.txt" wrk -t2 -c16 -d"${DURATION}s" "$NGINX_URL") || fail "wrk failed"
    bpftool prog show -j | python3 -c '
import json, sys
requests, round, stage, totals = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
programs = [p for p in json.load(sys.stdin) if p.get("run_cnt", 0) > 0 and p["name"].startswith(
    ("socket_", "enter_", "exit_", "tls_", "l7_"))]
total = sum(p["run_time_ns"] for p in programs)
for p in sorted(programs, key=lambda p: -p["run_time_ns"]):
    print("  %-22s %5.2f runs/request %7.0f ns/run %7.0f ns/request" % (
        p["name"], p["run_cnt"] / requests, p["run_time_ns"] / p["run_cnt"], p["run_time_ns"] / requests))
print("  round %s, %s: %d requests, %.0f ns of L7 program time per request" % (round, stage, requests, total / requests))
with open(totals, "a") as out:
    out.write("%s %s %.1f\n" % (stage, round, total / requests))
' "$requests" "$round" "$stage" "$OUT/totals"
    stop_recorder || fail "flamespan record failed; see $OUT/record.log"
  done
done
python3 - "$OUT/totals" "$STAGES" <<'PYTHON'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print("L7 program time per request, median of rounds [range]:")
for stage in sys.argv[2].split():
    values = [float(v) for s, _, v in rows if s == stage]
    print("  %-12s %6.0f ns  [%.0f … %.0f]" % (stage, statistics.median(values), min(values), max(values)))
PYTHON
