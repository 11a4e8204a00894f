#!/usr/bin/env bash
# Python frames, flamespan beside py-spy: the three figures of issue 18 on the same workload.
#
# samples/python/chain_main.py (a known chain across two files, 12 recursive frames, pure-Python hot
# functions in both files and hashlib on 1 MiB below one of them) runs SECONDS_PER_RUN under
#   py-spy record --native --full-filenames -r 99 -f raw -- /usr/bin/python3 chain_main.py S
#   flamespan record -F 99 -o X.pb.gz -o X.folded -- /usr/bin/python3 chain_main.py S
# alternately, ROUNDS times each. figures.py computes from each profile (py-spy's raw folded stacks,
# flamespan's pprof, which has the lines) the share of samples in the interpreter naming the running Python
# function with a line inside it, the share with the whole chain in order, and the share of hash_block's
# samples with OpenSSL's frames below it. Exit status 1 when a flamespan figure misses its goal.
#
# Environment:
#   FLAMESPAN_BIN    profiler (default .build/release/flamespan)   ROUNDS           runs of each (default 3)
#   SECONDS_PER_RUN  workload seconds per run (default 10)          OUT              results (default: a new temp dir)
#   PYSPY_ONLY=1     skip flamespan (the py-spy baseline alone)     PYSPY_VENV       where py-spy is installed
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

FLAMESPAN_BIN=${FLAMESPAN_BIN:-.build/release/flamespan}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
PYSPY_ONLY=${PYSPY_ONLY:-0}
OUT=${OUT:-$(mktemp -d /tmp/flamespan-pyspy.XXXXXX)}
mkdir -p "$OUT"

[[ $(id -u) -eq 0 ]] || fail "needs root (BPF, and py-spy reads another process's memory)"
[[ -x $PYTHON ]] || fail "no $PYTHON (Debian's python3 3.11)"
[[ $PYSPY_ONLY == 1 || -x $FLAMESPAN_BIN ]] ||
  fail "no flamespan at $FLAMESPAN_BIN (swift build -c release, or set FLAMESPAN_BIN; PYSPY_ONLY=1 skips it)"
ensure_pyspy
build_samples "$OUT/bin"
WORKLOAD=$OUT/bin/python/chain_main.py

echo "workload: $PYTHON $WORKLOAD $SECONDS_PER_RUN; $("$PYTHON" --version); $("$PYSPY" --version); rounds: $ROUNDS; output: $OUT"
profiles=()
for round in $(seq 1 "$ROUNDS"); do
  "$PYSPY" record --native --full-filenames -r 99 -f raw -o "$OUT/pyspy-$round.raw" -- \
    "$PYTHON" "$WORKLOAD" "$SECONDS_PER_RUN" >"$OUT/pyspy-$round.log" 2>&1 ||
    fail "py-spy failed; see $OUT/pyspy-$round.log"
  echo "round $round py-spy:    $(grep -h '^work units' "$OUT/pyspy-$round.log")"
  profiles+=("$OUT/pyspy-$round.raw")
  [[ $PYSPY_ONLY == 1 ]] && continue
  "$FLAMESPAN_BIN" record -q -F 99 -o "$OUT/flamespan-$round.pb.gz" -o "$OUT/flamespan-$round.folded" -- \
    "$PYTHON" "$WORKLOAD" "$SECONDS_PER_RUN" >"$OUT/flamespan-$round.log" 2>&1 ||
    fail "flamespan record failed; see $OUT/flamespan-$round.log"
  echo "round $round flamespan: $(grep -h '^work units' "$OUT/flamespan-$round.log")"
  profiles+=("$OUT/flamespan-$round.pb.gz")
done
echo
"$PYTHON" bench/python/figures.py "${profiles[@]}"
