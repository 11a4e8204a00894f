#!/usr/bin/env bash
# bench/store: generate HOURS of RATE spans/s into both store formats, then time the drill-down queries.
# Usage: bench/store/run.sh [HOURS] [RATE] [DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
hours=${1:-1}
rate=${2:-300}
dir=${3:-/tmp/flamespan-store-bench}
swift build -c release --product flamespan-store-bench
bin=.build/release/flamespan-store-bench
rm -rf "$dir"
"$bin" generate "$dir" --hours "$hours" --rate "$rate" --format both
"$bin" query "$dir" --format sqlite --runs 100
# The file store needs seconds to minutes per query at this size: a few runs tell enough.
"$bin" query "$dir" --format files --runs 3
du -sh "$dir"/sqlite "$dir"/files
