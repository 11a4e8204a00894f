#!/usr/bin/env bash
# Two flamespan builds measured by paired.sh in the same session, alternating one round of each, so that
# the host's drift falls on both alike. Prints each invocation's summary line and a median per build.
#   BEFORE=/path/to/old/flamespan AFTER=.build/release/flamespan TARGET=nginx PAIRS=3 bench/l7/before-after.sh
# Environment: BEFORE, AFTER (binaries), PAIRS (default 3), and anything paired.sh takes (TARGET, DURATION…).
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
: "${BEFORE:?set BEFORE to the old flamespan binary}"
AFTER=${AFTER:-.build/release/flamespan}
PAIRS=${PAIRS:-3}
OUT=$(mktemp -d /tmp/before-after.XXXXXX)
for pair in $(seq 1 "$PAIRS"); do
  order=(before after)
  ((pair % 2 == 0)) && order=(after before)
  for build in "${order[@]}"; do
    binary=$BEFORE
    [[ $build == after ]] && binary=$AFTER
    FLAMESPAN=$binary ROUNDS=1 bench/l7/paired.sh >"$OUT/$build.$pair" 2>&1 || { cat "$OUT/$build.$pair"; exit 1; }
    line=$(grep '^full ' "$OUT/$build.$pair")
    untraced=$(grep '^untraced server' "$OUT/$build.$pair")
    echo "pair $pair $build: $untraced | $line"
    echo "$build $(sed -E 's/.*\(([+-][0-9.]+) µs\).*/\1/' <<<"$line") $(sed -E 's/.*median ([+-][0-9.]+)%.*/\1/' <<<"$line")" >>"$OUT/summary"
  done
done
python3 - "$OUT/summary" <<'PYTHON'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for build in ("before", "after"):
    us = [float(r[1]) for r in rows if r[0] == build]
    pct = [float(r[2]) for r in rows if r[0] == build]
    print("%-6s per request: median %+.2f µs (%s); req/s median %+.1f%% (%s)" % (
        build, statistics.median(us), " ".join("%+.2f" % u for u in us),
        statistics.median(pct), " ".join("%+.1f" % p for p in pct)))
PYTHON
