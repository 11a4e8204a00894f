#!/usr/bin/env bash
# pprof decode and encode of a 1M-sample profile through `flamespan drill`, for one or more builds of
# flamespan side by side: wall time, CPU time and peak RSS (/usr/bin/time -v), runs interleaved so a busy
# machine weighs on every build alike, and the SHA-256 of each build's re-encoded profile.
#
#   bench/pprof/run.sh [LABEL=path/to/flamespan ...]     default: after=.build/release/flamespan
#   SAMPLES=1000000 RUNS=3 bench/pprof/run.sh before=/tmp/before/flamespan after=.build/release/flamespan
#
# decode:        drill --span-name 'no such span' in.pb.gz -o out.folded   (reads all, keeps nothing)
# decode+encode: drill in.pb.gz -o out.pb.gz                              (reads all, writes all, gzip)
# The input is written by bench/pprof/make_profile.py (Python's protobuf, not ours) from
# proto/pprof/profile.proto. Needs protoc, python3 with protobuf, and GNU time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
samples="${SAMPLES:-1000000}"
runs="${RUNS:-3}"
[ $# -gt 0 ] || set -- "after=$root/.build/release/flamespan"
[ -x /usr/bin/time ] || { echo "run.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
protoc -I "$root/proto" --descriptor_set_out="$work/pprof.desc" pprof/profile.proto
python3 "$here/make_profile.py" "$work/pprof.desc" "$work/in.pb.gz" "$samples"
echo "input: $samples samples, $(stat -c %s "$work/in.pb.gz") bytes gzipped ($(gzip -dc "$work/in.pb.gz" | wc -c) raw)"

measure() {  # label binary mode run
  local label="$1" binary="$2" mode="$3" run="$4" out
  case "$mode" in
    decode) out="$work/$label.folded"
      set -- "$binary" drill --span-name 'no such span' "$work/in.pb.gz" -o "$out" ;;
    decode+encode) out="$work/$label.pb.gz"
      set -- "$binary" drill "$work/in.pb.gz" -o "$out" ;;
  esac
  /usr/bin/time -v -o "$work/time" "$@" 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
  awk -v label="$label" -v mode="$mode" -v run="$run" -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, t, ":"); wall = (n == 3 ? t[1] * 3600 + t[2] * 60 + t[3] : t[1] * 60 + t[2]) }
    /User time/ { user = $2 } /System time/ { sys = $2 } /Maximum resident/ { rss = $2 / 1024 }
    END { printf "%s\t%s\t%d\t%.2f\t%.2f\t%.0f\n", label, mode, run, wall, user + sys, rss }' "$work/time"
}

printf 'build\tmode\trun\twall_s\tcpu_s\tpeak_rss_MiB\n'
for run in $(seq "$runs"); do
  for mode in decode decode+encode; do
    for pair in "$@"; do measure "${pair%%=*}" "${pair#*=}" "$mode" "$run"; done
  done
done | tee "$work/rows"

echo
echo "medians over $runs runs:"
python3 - "$work/rows" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
groups = {}
for label, mode, _, wall, cpu, rss in rows:
    groups.setdefault((label, mode), []).append((float(wall), float(cpu), float(rss)))
for (label, mode), values in groups.items():
    wall, cpu, rss = (statistics.median(v[i] for v in values) for i in range(3))
    print(f"{label:10} {mode:14} wall {wall:6.2f} s   cpu {cpu:6.2f} s   peak RSS {rss:7.0f} MiB")
PY
echo
echo "re-encoded profiles (identical digests = identical bytes):"
for pair in "$@"; do
  label="${pair%%=*}"
  echo "  $label: gzip $(sha256sum <"$work/$label.pb.gz" | cut -c1-16)  raw $(gzip -dc "$work/$label.pb.gz" | sha256sum | cut -c1-16)"
done
