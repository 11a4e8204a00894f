#!/usr/bin/env bash
# What does walking CPython's frame chain cost the sampler, per sample?
#
# Runs a CPU-bound CPython 3.11 script (a recursion DEPTH frames deep, then a hot loop) under
# `flamespan record --unwind dwarf --pid PID -F 99`, and reads the kernel's own accounting of the
# recorder's sample_cpu program (kernel.bpf_stats_enabled=1: run_time_ns and run_cnt, bpftool prog show)
# in three phases of PHASE_SECONDS each, ROUNDS times over:
#   idle       the script is stopped (SIGSTOP): every run is a sample of another process, filtered out;
#   native     the script runs, its pid not published: each of its samples stops at the
#              python_processes lookup, as for any process that is not Python;
#   python     the script's layout is written into the recorder's python_processes map (bpftool map
#              update; what CPUSampler.publishInterpreter does), so each of its samples walks the chain.
# The machine is shared, so other processes' samples (filtered out at once) are mixed into run_cnt; the
# idle phase measures their cost, which is taken out to give the cost of one recorded sample:
#   ns per recorded sample = (run_time_ns - other runs * idle ns per run) / recorded samples
# where recorded samples and walked chains come from the sampler's fs_counters map.
#
# Environment:
#   FLAMESPAN      profiler binary                    (default .build/debug/flamespan)
#   PYTHON         CPython 3.11 interpreter           (default /usr/bin/python3)
#   DEPTH          Python frames below the hot loop   (default 24)
#   PHASE_SECONDS  length of each phase               (default 15)
#   ROUNDS         rounds of idle, native, python     (default 3)
#   FREQUENCY      samples per second per CPU         (default 99)
#   OUT            directory for logs                 (default: a new temp directory)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"

FLAMESPAN=${FLAMESPAN:-.build/debug/flamespan}
PYTHON=${PYTHON:-/usr/bin/python3}
DEPTH=${DEPTH:-24}
PHASE_SECONDS=${PHASE_SECONDS:-15}
ROUNDS=${ROUNDS:-3}
FREQUENCY=${FREQUENCY:-99}
OUT=${OUT:-$(mktemp -d /tmp/flamespan-walk-cost.XXXXXX)}

fail() {
  echo "walk-cost.sh: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || fail "needs root (BPF, bpftool, sysctl)"
[[ -x $FLAMESPAN ]] || fail "no flamespan binary at $FLAMESPAN (swift build, or set FLAMESPAN)"
command -v bpftool >/dev/null || fail "bpftool is not installed (apt-get install bpftool)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
  fail "$PYTHON is not CPython 3.11: the offsets below are 3.11's"
mkdir -p "$OUT"

previous_stats=$(sysctl -n kernel.bpf_stats_enabled)
workload=""
recorder=""
cleanup() {
  [[ -n $workload ]] && kill -CONT "$workload" 2>/dev/null && kill -KILL "$workload" 2>/dev/null
  [[ -n $recorder ]] && kill -INT "$recorder" 2>/dev/null && wait "$recorder" 2>/dev/null
  sysctl -q -w kernel.bpf_stats_enabled="$previous_stats"
}
trap cleanup EXIT
sysctl -q -w kernel.bpf_stats_enabled=1

# The workload prints its own _PyRuntime (ctypes finds it in the executable's dynamic symbols), then
# spins DEPTH frames down.
cat >"$OUT/workload.py" <<'EOF'
import ctypes, sys

def descend(n):
    if n == 0:
        return spin()
    return descend(n - 1)

def spin():
    print("runtime", ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime")), flush=True)
    x = 0
    while True:
        x += 1

descend(int(sys.argv[1]))
EOF
"$PYTHON" "$OUT/workload.py" "$DEPTH" >"$OUT/workload.out" 2>&1 &
workload=$!
for _ in $(seq 100); do grep -q '^runtime ' "$OUT/workload.out" && break; sleep 0.1; done
runtime=$(awk '/^runtime /{print $2}' "$OUT/workload.out")
[[ -n $runtime ]] || fail "the workload did not start: $(cat "$OUT/workload.out")"

total=$((ROUNDS * 3 * PHASE_SECONDS + 30))
"$FLAMESPAN" record --unwind dwarf --no-http-tracing -q -F "$FREQUENCY" -p "$workload" -d "$total" \
  -o "$OUT/profile.folded" >"$OUT/record.out" 2>"$OUT/record.err" &
recorder=$!

# The recorder's own program and maps, found through its descriptors' fdinfo (prog_id, map_id): other
# helpers may run samplers of their own at the same time, and this bpftool lists no owning pids.
owned_id() { # prog|map NAME: the id of the recorder's program or map of that name
  local id
  for id in $(cat /proc/"$recorder"/fdinfo/* 2>/dev/null | awk -v field="$1_id:" '$1 == field {print $2}' | sort -u); do
    if bpftool "$1" show id "$id" --json 2>/dev/null | grep -q "\"name\":\"$2\""; then
      echo "$id"
      return
    fi
  done
}
program=""
for _ in $(seq 200); do
  program=$(owned_id prog sample_cpu)
  [[ -n $program ]] && break
  kill -0 "$recorder" 2>/dev/null || fail "the recorder exited: $(cat "$OUT/record.err")"
  sleep 0.1
done
[[ -n $program ]] || fail "the recorder's sample_cpu program did not appear (bpftool prog show)"
python_map=$(owned_id map python_processe) # map names are cut to 15 characters
counter_map=$(owned_id map fs_counters)
[[ -n $python_map && -n $counter_map ]] || fail "the recorder's python_processes/fs_counters maps are missing"

# struct fs_python_process for CPython 3.11 on x86-64 with glibc 2.36 (see PythonWalkTests.swift):
# the autoTSSkey at _PyRuntime+592, TSD slot k at fsbase+0x318+16k, cframe 56 → current_frame 8;
# frame: code 32, previous 48, prev_instr 56, owner 69, is_entry 68; stamp co_firstlineno (72).
layout=$("$PYTHON" -c '
import struct, sys
value = struct.pack("<QqII9H3H", int(sys.argv[1]) + 592, 0x318, 16, 32,
                    56, 8, 0xFFFF, 32, 48, 56, 69, 68, 72, 0, 0, 0)
print(" ".join(f"{b:02x}" for b in value))' "$runtime")
pid_key=$("$PYTHON" -c 'import struct, sys; print(" ".join(f"{b:02x}" for b in struct.pack("<I", int(sys.argv[1]))))' "$workload")

# "run_time_ns run_cnt samples other pythonstacks": the program's totals and the summed counters.
snapshot() {
  local stats counters
  stats=$(bpftool prog show id "$program" --json)
  counters=$(for key in 0 4 5 12; do
    bpftool map lookup id "$counter_map" key "$key" 0 0 0 --json
  done | "$PYTHON" -c '
import json, sys
decoder, text, sums = json.JSONDecoder(), sys.stdin.read(), []
position = 0
while position < len(text):
    if text[position].isspace(): position += 1; continue
    item, position = decoder.raw_decode(text, position)
    if "formatted" in item:  # with BTF: numbers
        sums.append(sum(v["value"] for v in item["formatted"]["values"]))
    else:  # without: little-endian bytes as hex strings
        sums.append(sum(int.from_bytes(bytes(int(b, 16) for b in v["value"]), "little")
                        for v in item["values"]))
print(*sums)')
  "$PYTHON" -c '
import json, sys
stats = json.loads(sys.argv[1]); samples, idle, filtered, stacks = map(int, sys.argv[2].split())
print(stats.get("run_time_ns", 0), stats.get("run_cnt", 0), samples, idle + filtered, stacks)' \
    "$stats" "$counters"
}

phase() { # NAME: runs one phase and appends "NAME deltas..." to $OUT/phases
  local before after
  before=$(snapshot)
  sleep "$PHASE_SECONDS"
  after=$(snapshot)
  echo "$1 $before $after" >>"$OUT/phases"
}

: >"$OUT/phases"
for round in $(seq "$ROUNDS"); do
  kill -STOP "$workload"
  phase idle
  kill -CONT "$workload"
  bpftool map delete id "$python_map" key hex $pid_key 2>/dev/null || true
  phase native
  bpftool map update id "$python_map" key hex $pid_key value hex $layout
  phase python
  bpftool map delete id "$python_map" key hex $pid_key
  echo "round $round of $ROUNDS done" >&2
done

"$PYTHON" - "$OUT/phases" "$DEPTH" "$FREQUENCY" <<'EOF'
import collections, sys
totals = collections.defaultdict(lambda: [0] * 5)
for line in open(sys.argv[1]):
    name, *numbers = line.split()
    before, after = list(map(int, numbers[:5])), list(map(int, numbers[5:]))
    for index in range(5):
        totals[name][index] += after[index] - before[index]
idle_time, idle_runs = totals["idle"][0], totals["idle"][1]
other_cost = idle_time / idle_runs if idle_runs else 0.0
print(f"CPython 3.11, {sys.argv[2]} frames deep, {sys.argv[3]} Hz; sample_cpu per phase (sums of all rounds):")
print(f"  idle:   {idle_runs} runs of other processes' samples, {other_cost:.0f} ns per run")
for name in ("native", "python"):
    time, runs, samples, other, stacks = totals[name]
    own = time - other * other_cost
    per_sample = own / samples if samples else float("nan")
    print(f"  {name}: {runs} runs, {samples} recorded samples, {stacks} Python chains walked, "
          f"{time / runs:.0f} ns per run, {per_sample:.0f} ns per recorded sample")
native = totals["native"]; python = totals["python"]
if native[2] and python[2]:
    n = (native[0] - native[3] * other_cost) / native[2]
    p = (python[0] - python[3] * other_cost) / python[2]
    print(f"  walk: {p - n:+.0f} ns per sample ({(p - n) / n * 100:+.0f}%)")
EOF
echo "logs in $OUT" >&2
