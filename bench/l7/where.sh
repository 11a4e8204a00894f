#!/usr/bin/env bash
# Where does the machine time that tracing adds to an nginx request go? Runs nginx under wrk without a
# profiler and with `flamespan record --spans-output` (CPU sampling + the L7 tracer), ROUNDS times each,
# interleaved. Each run gets
#   - perf record -a -g at 2999 Hz around the whole wrk run: busy CPU samples (idle halts left out) per
#     1000 requests; of them nginx's, the tracer's own code (its BPF programs, their dispatch and the
#     helpers they call, in any process) and the wakeups of other threads from sock_def_readable;
#   - perf stat -a over a second wrk run: syscalls, context switches and wakeups per request.
# The samples are cpu-clock samples (these VMs have no PMU), so a sample stands for 1/2999 s of a CPU.
#
# Environment: FLAMESPAN (default .build/release/flamespan), TARGET (nginx, or nginx-debian as in run.sh),
# ROUNDS (2), DURATION (seconds of wrk per run, 8).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# shellcheck source=bench/l7/common.sh
source bench/l7/common.sh
FLAMESPAN=${FLAMESPAN:-.build/release/flamespan}
TARGET=${TARGET:-nginx}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8}

fail() {
  echo "where.sh: $*" >&2
  exit 1
}
[[ $(id -u) -eq 0 ]] || fail "loading BPF and perf -a need root"
[[ -x $FLAMESPAN ]] || fail "no flamespan binary at $FLAMESPAN (swift build -c release, or set FLAMESPAN)"
for tool in wrk nginx perf python3; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done

OUT=$(bench_directory where)
port=$(free_port)
trap stop_started EXIT
start_nginx "$TARGET" "$OUT" "$port" || fail "nginx did not start"
url=$NGINX_URL

start_recorder() {
  local pid_args=(--pid "$NGINX_MASTER")
  for worker in $NGINX_WORKERS; do pid_args+=(--pid "$worker"); done
  "$FLAMESPAN" record -q -F 99 "${pid_args[@]}" --spans-output "$OUT/spans.json" -o "$OUT/profile.folded" \
    2>"$OUT/record.log" &
  RECORDER=$!
  recorder_started "$RECORDER" "$OUT/record.log" || fail "flamespan record did not start"
}
end_recording() {
  stop_recorder || fail "flamespan record failed; see $OUT/record.log"
  rm -f "$OUT/spans.json"
}

echo "where.sh: $TARGET, $ROUNDS rounds of none and traced, wrk -t2 -c16 for ${DURATION}s; outputs in $OUT"
for round in $(seq 1 "$ROUNDS"); do
  for configuration in none traced; do
    tag=$configuration-$round
    [[ $configuration == none ]] || start_recorder
    wrk_requests "$OUT/$tag.wrk" perf record -q -a -g -F 2999 -o "$OUT/$tag.data" -- \
      wrk -t2 -c16 -d"${DURATION}s" "$url" >/dev/null || fail "wrk failed; see $OUT/$tag.wrk"
    wrk_requests "$OUT/$tag.stat.wrk" perf stat -a -x, -o "$OUT/$tag.stat" \
      -e raw_syscalls:sys_enter,context-switches,sched:sched_wakeup -- \
      wrk -t2 -c16 -d"${DURATION}s" "$url" >/dev/null || fail "wrk failed; see $OUT/$tag.stat.wrk"
    [[ $configuration == none ]] || end_recording
    perf report -i "$OUT/$tag.data" --no-children --sort sym -g none -F sample,sym 2>/dev/null \
      >"$OUT/$tag.symbols"
    perf report -i "$OUT/$tag.data" --children --sort sym -g none 2>/dev/null >"$OUT/$tag.inclusive"
    perf report -i "$OUT/$tag.data" --no-children --sort comm -g none -F sample,comm 2>/dev/null \
      >"$OUT/$tag.commands"
    echo "  round $round $configuration: $(awk '/Requests\/sec/ {print $2}' "$OUT/$tag.wrk") req/s"
  done
done

python3 - "$OUT" "$ROUNDS" <<'PYTHON'
import re, statistics, sys

out, rounds = sys.argv[1], int(sys.argv[2])
# Where an idle CPU's samples land on these VMs (and on bare metal).
IDLE = re.compile(r"safe_halt|default_idle|cpuidle|poll_idle|mwait_idle|intel_idle|acpi_idle")
# The tracer's own code: its programs (bpf_prog_*), the tracepoint dispatch into them and the helpers
# they call.
TRACER = re.compile(r"bpf_prog_|bpf_trace_run|call_trace_sock|__bpf_trace|bpf_ringbuf|__bpf_ringbuf|"
                    r"bpf_probe_read|copy_from_user_nofault|bpf_sk_storage|bpf_task_pt_regs|"
                    r"ktime_get_mono_fast_ns|__htab_map_lookup|htab_map_hash|bpf_ktime")

def samples(path, columns=3):
    table = {}
    for line in open(path):
        fields = line.split(None, columns - 1)
        if len(fields) == columns and fields[0].isdigit():
            table[fields[-1].strip()] = int(fields[0])
    return table

def inclusive_shares(path):
    """Children percentages: a function's share of all samples, with what it calls."""
    table = {}
    for line in open(path):
        fields = line.split()
        if len(fields) >= 4 and fields[0].endswith("%") and fields[1].endswith("%"):
            table[fields[-1]] = float(fields[0][:-1]) / 100
    return table

def counts(path):
    table = {}
    for line in open(path):
        fields = line.split(",")
        if len(fields) > 2 and fields[0].strip().replace(".", "").isdigit():
            table[fields[2]] = float(fields[0])
    return table

def requests(path):
    for line in open(path):
        if "requests in" in line:
            return int(line.split()[0])
    raise SystemExit(f"where.sh: no request count in {path}")

rows = {"none": [], "traced": []}
for configuration in rows:
    for round in range(1, rounds + 1):
        tag = f"{out}/{configuration}-{round}"
        own = samples(tag + ".symbols")
        scale = 1000 / requests(tag + ".wrk")
        busy = sum(v for k, v in own.items() if not IDLE.search(k))
        inclusive = inclusive_shares(tag + ".inclusive")
        stat = counts(tag + ".stat")
        handled = requests(tag + ".stat.wrk")
        rows[configuration].append({
            "total": busy * scale,
            "nginx": samples(tag + ".commands", columns=2).get("nginx", 0) * scale,
            "tracer": sum(v for k, v in own.items() if TRACER.search(k)) * scale,
            "wakeups": inclusive.get("sock_def_readable", 0) * sum(own.values()) * scale,
            "syscalls": stat.get("raw_syscalls:sys_enter", 0) / handled,
            "switches": stat.get("context-switches", 0) / handled,
            "wakeups/request": stat.get("sched:sched_wakeup", 0) / handled,
        })

def median(configuration, key):
    return statistics.median(row[key] for row in rows[configuration])

print("CPU samples per 1000 requests (2999 Hz; medians of the rounds):")
print("  %-34s %8s %8s %8s" % ("", "none", "traced", "added"))
for key, label in [("total", "busy CPUs, all processes"), ("nginx", "nginx's processes"),
                   ("tracer", "the tracer's programs and helpers"),
                   ("wakeups", "waking threads (sock_def_readable)")]:
    none, traced = median("none", key), median("traced", key)
    print("  %-34s %8.1f %8.1f %+8.1f" % (label, none, traced, traced - none))
print("per request (perf stat -a over a second wrk run):")
for key, label in [("syscalls", "syscalls"), ("switches", "context switches"),
                   ("wakeups/request", "wakeups")]:
    print("  %-34s %8.2f %8.2f" % (label, median("none", key), median("traced", key)))
PYTHON
