#!/usr/bin/env bash
# Stacks through language runtimes: are they complete, and are their frames named?
#
# Each workload (samples/: C++ and Rust without frame pointers, Go's net/http normal and stripped, Node with
# --perf-basic-prof, Java 17 with -XX:+PreserveFramePointer) runs under loopback load while
# `flamespan record --pid PID -d Ns -o X.folded -o X.pb.gz` (default flags) and, in the same window,
# `perf record -g` (and `--call-graph dwarf` for Go) sample it. stacks.py computes from the folded stacks:
#   C++, Rust   hot samples (leaf in the hot function) whose stack reaches main               goal >= 99 %
#   Go          hot samples (main.burn / handler chain) reaching runtime.goexit or main.main  goal >= 99 %
#               Go frames of hot samples that are named (stripped binary: from .gopclntab)   goal >= 99 %
#   Node, Java  samples whose leaf is JIT code ([jit] or [anon]) naming a JS/Java function   goal >= 90 %
#   Node        all samples whose stack names burnSlow or burnFast                           goal >= 75 %
# Only flamespan's figures are held to the goals (exit 1 if one misses); perf's are for comparison.
#
# Environment:
#   FLAMESPAN_BIN  profiler (default .build/release/flamespan)   SECONDS_PER_RUN  sampling window (default 5)
#   WORKLOADS      subset, e.g. "go_http node_http" (default: all)   OUT  results (default: a new temp dir)
#   PERF_ONLY=1    skip flamespan (check the workloads and perf's side only)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
HERE=bench/runtimes
FLAMESPAN_BIN=${FLAMESPAN_BIN:-.build/release/flamespan}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
WORKLOADS=${WORKLOADS:-"nofp_templates nofp_rust go_http go_http_stripped node_http java_http"}
OUT=${OUT:-$(mktemp -d /tmp/flamespan-runtimes.XXXXXX)}
PERF_ONLY=${PERF_ONLY:-0}
mkdir -p "$OUT"

fail() { echo "stacks.sh: $*" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || fail "needs root (BPF, perf)"
for tool in perf wrk python3; do command -v $tool >/dev/null || fail "$tool is not installed (scripts/setup.sh)"; done
[[ $PERF_ONLY == 1 || -x $FLAMESPAN_BIN ]] || fail "no flamespan at $FLAMESPAN_BIN (swift build -c release, or set FLAMESPAN_BIN)"
make -s -C samples BIN="$OUT/bin" >"$OUT/build.log" 2>&1 || fail "building samples failed; see $OUT/build.log"

ROWS=$OUT/rows.tsv
: >"$ROWS"
WORKLOAD_PID= LOAD_PID=
cleanup() {
  [[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null || true
  if [[ -n $WORKLOAD_PID ]]; then
    kill -KILL "$WORKLOAD_PID" 2>/dev/null || true
    wait "$WORKLOAD_PID" 2>/dev/null || true
    rm -f "/tmp/perf-$WORKLOAD_PID.map"
  fi
  WORKLOAD_PID= LOAD_PID=
}
trap cleanup EXIT

# Waits until FILE holds PATTERN (a workload's or the recorder's ready line); fails after SECONDS.
wait_for_line() {
  local file=$1 pattern=$2 seconds=$3 pid=$4 deadline=$((SECONDS + $3))
  until grep -q "$pattern" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || fail "process $pid exited before printing '$pattern' (see $file)"
    ((SECONDS < deadline)) || fail "no '$pattern' in $file after ${seconds}s"
    sleep 0.05
  done
}

# Starts a workload in the background: WORKLOAD_PID, and PORT for the HTTP servers.
start_workload() {
  local name=$1 log=$OUT/$1.out
  case $name in
    nofp_templates | nofp_rust) "$OUT/bin/$name" $((3 * SECONDS_PER_RUN + 30)) >"$log" 2>&1 & ;;
    go_http | go_http_stripped) "$OUT/bin/$name" 0 >"$log" 2>&1 & ;;
    # V8 writes an isolate log into its working directory: keep it in $OUT.
    node_http) (cd "$OUT" && exec node --perf-basic-prof "$OUT/bin/node_http.js" 0) >"$log" 2>&1 & ;;
    java_http)
      java -XX:+PreserveFramePointer -XX:CompileCommand=quiet -XX:CompileCommand='dontinline,JavaHttp::flamespan*' \
        -cp "$OUT/bin/java" JavaHttp 0 >"$log" 2>&1 &
      ;;
  esac
  WORKLOAD_PID=$!
  PORT=
  if [[ $name != nofp_* ]]; then
    wait_for_line "$log" '^listening [0-9]' 30 "$WORKLOAD_PID"
    PORT=$(awk '/^listening/ { print $2; exit }' "$log")
  fi
}

# Warm-up before sampling: the JITs compile the hot functions; the JVM then writes its perf map.
warm_up() {
  local name=$1
  case $name in
    node_http) wrk -t1 -c2 -d2s "http://127.0.0.1:$PORT/burn" >/dev/null ;;
    java_http)
      wrk -t1 -c2 -d3s "http://127.0.0.1:$PORT/burn" >/dev/null
      jcmd "$WORKLOAD_PID" Compiler.perfmap >"$OUT/$name.jcmd.log" 2>&1 ||
        fail "jcmd $WORKLOAD_PID Compiler.perfmap failed: $(cat "$OUT/$name.jcmd.log")"
      [[ -s /tmp/perf-$WORKLOAD_PID.map ]] || fail "jcmd wrote no /tmp/perf-$WORKLOAD_PID.map"
      ;;
  esac
}

for name in $WORKLOADS; do
  case $name in
    nofp_templates | nofp_rust | go_http | go_http_stripped) binary=$OUT/bin/$name ;;
    node_http) binary=$OUT/bin/node_http.js ;;
    java_http) binary=$OUT/bin/java/JavaHttp.class ;;
    *) fail "unknown workload $name" ;;
  esac
  [[ -e $binary ]] || { echo "$name: not built (no compiler for it), skipped" | tee -a "$OUT/skipped.txt"; continue; }
  echo "==> $name" >&2
  start_workload "$name"
  warm_up "$name"
  # Load for the whole window (bounded): 2 connections keep both CPUs (Node: its one thread) busy.
  if [[ -n $PORT ]]; then
    wrk -t1 -c2 -d$((SECONDS_PER_RUN + 30))s "http://127.0.0.1:$PORT/burn" >"$OUT/$name.wrk.txt" 2>&1 &
    LOAD_PID=$!
  fi
  recorder=
  if [[ $PERF_ONLY != 1 ]]; then
    "$FLAMESPAN_BIN" record --pid "$WORKLOAD_PID" -d "${SECONDS_PER_RUN}s" -o "$OUT/$name.folded" \
      -o "$OUT/$name.pb.gz" >"$OUT/$name.record.out" 2>"$OUT/$name.record.log" &
    recorder=$!
    wait_for_line "$OUT/$name.record.log" 'Ctrl-C to stop' 60 "$recorder"
  fi
  perf_pids=()
  perf record -q -F 99 -g -p "$WORKLOAD_PID" -o "$OUT/$name.perf-fp.data" -- sleep "$SECONDS_PER_RUN" \
    >/dev/null 2>"$OUT/$name.perf-fp.log" &
  perf_pids+=($!)
  if [[ $name == go_http* ]]; then
    perf record -q -F 99 --call-graph dwarf -p "$WORKLOAD_PID" -o "$OUT/$name.perf-dwarf.data" \
      -- sleep "$SECONDS_PER_RUN" >/dev/null 2>"$OUT/$name.perf-dwarf.log" &
    perf_pids+=($!)
  fi
  wait "${perf_pids[@]}" || true
  if [[ -n $recorder ]]; then
    wait "$recorder" || fail "flamespan record failed; see $OUT/$name.record.log"
  fi
  # perf script reads the perf map now, while the workload (and its map) are still there.
  for kind in fp dwarf; do
    [[ -f $OUT/$name.perf-$kind.data ]] || continue
    perf script -i "$OUT/$name.perf-$kind.data" -F comm,tid,ip,sym,dso >"$OUT/$name.perf-$kind.txt" 2>/dev/null
    python3 $HERE/stacks.py collapse "$OUT/$name.perf-$kind.txt" >"$OUT/$name.perf-$kind.folded"
    rm -f "$OUT/$name.perf-$kind.data" "$OUT/$name.perf-$kind.txt"
  done
  cleanup
  [[ $PERF_ONLY == 1 ]] || python3 $HERE/stacks.py figures "$name" flamespan "$OUT/$name.folded" >>"$ROWS"
  python3 $HERE/stacks.py figures "$name" "perf -g" "$OUT/$name.perf-fp.folded" >>"$ROWS"
  if [[ -f $OUT/$name.perf-dwarf.folded ]]; then
    python3 $HERE/stacks.py figures "$name" "perf dwarf" "$OUT/$name.perf-dwarf.folded" >>"$ROWS"
  fi
done

echo
echo "# ${SECONDS_PER_RUN} s at 99 Hz per workload; flamespan: $FLAMESPAN_BIN (default flags); results in $OUT"
status=0
python3 $HERE/stacks.py table "$ROWS" || status=$?
exit "$status"
