#!/usr/bin/env bash
# Cost of the always-on agent on a busy machine: CPU share of one core, RSS over time, BPF map memory.
#
#   bench/agent/run.sh [MINUTES] [SCENARIO]
#
# MINUTES   how long to measure (default 10, as the issue asks); a 30 s warm-up comes first.
# SCENARIO  spin: one CPU-bound thread per core (samples/bin/spin), no HTTP   (default)
#           http: samples/bin/http_server under wrk on every core; the L7 tracer sees every request
#
# The agent runs at its defaults (19 Hz, 10 s windows), exporting OTLP profiles and traces to the Python
# reference receiver (tools/otlp-receiver) on loopback and writing its local store under a temp dir.
# Env: FLAMESPAN_BIN (default: release build in .build-agent-release, built if missing); AGENT_ARGS, extra
# agent flags (for example "--unwind fp").
set -euo pipefail
MINUTES=${1:-10}
SCENARIO=${2:-spin}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mktemp -d /tmp/flamespan-bench-agent-XXXXXX)
BIN=${FLAMESPAN_BIN:-$ROOT/.build-agent-release/release/flamespan}
if [[ ! -x $BIN ]]; then
  swift build -c release --scratch-path "$ROOT/.build-agent-release" --product flamespan >&2
fi
make -s -C "$ROOT/samples" BIN="$OUT/bin" >&2
PYPATH=$ROOT/.build-python/opentelemetry-proto-1.44.0
if ! PYTHONPATH=$PYPATH python3 -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$PYPATH" opentelemetry-proto==1.44.0 >&2
fi

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

PYTHONPATH=$PYPATH python3 "$ROOT/tools/otlp-receiver/receiver.py" 0 "$OUT/receiver.jsonl" >"$OUT/receiver.port" &
PIDS+=($!)
for _ in $(seq 50); do [[ -s $OUT/receiver.port ]] && break; sleep 0.2; done
RECEIVER_PORT=$(cat "$OUT/receiver.port")

CORES=$(nproc)
case $SCENARIO in
  spin)
    "$OUT/bin/spin" 100000000000000 "$CORES" >/dev/null &
    PIDS+=($!)
    ;;
  http)
    "$OUT/bin/http_server" 0 >"$OUT/http.port" &
    PIDS+=($!)
    for _ in $(seq 50); do [[ -s $OUT/http.port ]] && break; sleep 0.1; done
    HTTP_PORT=$(awk '{print $2}' "$OUT/http.port")
    wrk -t "$CORES" -c 16 -d "$((MINUTES * 60 + 120))s" "http://127.0.0.1:$HTTP_PORT/burn?ms=2" >"$OUT/wrk.txt" &
    PIDS+=($!)
    ;;
  *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac

# AGENT_ARGS adds flags, for example AGENT_ARGS="--unwind fp" to compare unwinding modes.
# shellcheck disable=SC2086
"$BIN" agent --endpoint "http://127.0.0.1:$RECEIVER_PORT" --store "$OUT/store" \
  --listen 127.0.0.1:0 ${AGENT_ARGS:-} 2>"$OUT/agent.log" &
AGENT=$!
PIDS+=($AGENT)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
HZ=$(getconf CLK_TCK)

sleep 30  # warm-up: BPF load, first windows, symbolizer cache filling
T0=$(date +%s.%N); A0=$(ticks $AGENT); B0=$(busy_ticks)
echo "minute,agent_cpu_percent_of_one_core,rss_mib" >"$OUT/timeline.csv"
PREV_T=$T0; PREV_A=$A0
for minute in $(seq "$MINUTES"); do
  sleep 60
  NOW=$(date +%s.%N); A=$(ticks $AGENT)
  echo "$minute,$(echo "scale=3; 100 * ($A - $PREV_A) / $HZ / ($NOW - $PREV_T)" | bc),$(( $(rss_kib $AGENT) / 1024 ))" >>"$OUT/timeline.csv"
  PREV_T=$NOW; PREV_A=$A
done
T1=$(date +%s.%N); A1=$(ticks $AGENT); B1=$(busy_ticks)
RSS_MIB=$(echo "scale=1; $(rss_kib $AGENT) / 1024" | bc)
CPU_PCT=$(echo "scale=3; 100 * ($A1 - $A0) / $HZ / ($T1 - $T0)" | bc)
MACHINE_BUSY=$(echo "scale=1; 100 * ($B1 - $B0) / $HZ / ($T1 - $T0) / $CORES" | bc)

# BPF map memory of the maps the agent holds (map fds in /proc/PID/fdinfo), from bpftool's memlock figures.
MAP_IDS=$(grep -h '^map_id:' /proc/$AGENT/fdinfo/* 2>/dev/null | awk '{print $2}' | sort -un | paste -sd, -)
MAP_BYTES=$(bpftool map show --json | python3 -c "
import json, sys
ids = set(int(x) for x in '$MAP_IDS'.split(',') if x)
maps = [m for m in json.load(sys.stdin) if m['id'] in ids]
print(sum(m.get('bytes_memlock', 0) for m in maps))
for m in sorted(maps, key=lambda m: -m.get('bytes_memlock', 0)):
    print('   ', m.get('name', '?'), m.get('type'), m.get('bytes_memlock', 0), file=sys.stderr)
" 2>"$OUT/maps.txt")
METRICS=$(curl -s "http://127.0.0.1:$(grep -o 'UI on http://127.0.0.1:[0-9]*' "$OUT/agent.log" | grep -o '[0-9]*$')/metrics" || true)

kill -TERM $AGENT
STOP0=$(date +%s.%N)
wait $AGENT && STATUS=0 || STATUS=$?
STOP_S=$(echo "$(date +%s.%N) - $STOP0" | bc)
PROFILES=$(grep -c '"/v1development/profiles"' "$OUT/receiver.jsonl" || true)
TRACES=$(grep -c '"/v1/traces"' "$OUT/receiver.jsonl" || true)

cat <<REPORT
scenario:               $SCENARIO, $CORES cores, machine busy ${MACHINE_BUSY}% during the measurement
measured:               $MINUTES min after a 30 s warm-up, agent at 19 Hz, 10 s windows
agent CPU:              ${CPU_PCT}% of one core
agent RSS at the end:   ${RSS_MIB} MiB
RSS by minute (MiB):    $(cut -d, -f3 "$OUT/timeline.csv" | tail -n +2 | paste -sd' ' -)
CPU by minute (%):      $(cut -d, -f2 "$OUT/timeline.csv" | tail -n +2 | paste -sd' ' -)
BPF map memory:         $MAP_BYTES bytes (bytes_memlock of the agent's maps)
$(cat "$OUT/maps.txt")
exports received:       $PROFILES profiles, $TRACES traces
samples, lost:          $(echo "$METRICS" | awk '/^flamespan_samples_total/ {s=$2} /^flamespan_lost_samples_total/ {l=$2} END {print s", "l}')
symbolizer:             hit ratio $(echo "$METRICS" | awk "/^flamespan_symbolizer_cache_hit_ratio/ {print \$2}"), files parsed $(echo "$METRICS" | awk "/^flamespan_symbolizer_files_parsed_total/ {print \$2}"), evictions $(echo "$METRICS" | awk "/^flamespan_symbolizer_evictions_total/ {print \$2}"), cache resets $(echo "$METRICS" | awk "/^flamespan_symbolizer_resets_total/ {print \$2}")
SIGTERM to exit:        ${STOP_S} s, exit status $STATUS
output:                 $OUT
REPORT
