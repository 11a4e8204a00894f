#!/usr/bin/env bash
# What do the L7 tracer's kernel hooks cost before any of our work? Empty programs (one pid-filter lookup
# each) on the syscall tracepoints of the fallback hooks against the socket tracepoints of the default ones:
#   1. ns per syscall: getppid (hooked by neither) and write+read on a socketpair, best of 5 rounds;
#   2. nginx under wrk -t2 -c16 on loopback, ROUNDS interleaved rounds of DURATION seconds: req/s and the
#      machine's CPU microseconds per request (user+system+irq+softirq from /proc/stat).
# Needs root, clang, libbpf-dev, bpftool, nginx, wrk.  Env: ROUNDS (5), DURATION (6).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-6}
# shellcheck source=bench/l7/common.sh
source "$HERE/../common.sh"
WORK=$(bench_directory hookfloor)
CLANG=$(command -v clang || echo /opt/swift/usr/bin/clang)
bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$WORK/vmlinux.h"
for hooks in syscall_hooks socket_hooks; do
  "$CLANG" -O2 -g -target bpf -D__TARGET_ARCH_x86 -I"$WORK" -I"$HERE" -c "$HERE/$hooks.bpf.c" -o "$WORK/$hooks.o"
done
cc -O2 "$HERE/attach.c" -o "$WORK/attach" -lbpf
cc -O2 "$HERE/syscall_cost.c" -o "$WORK/syscall_cost"

with_hooks() { # CONFIG COMMAND...: runs the command with CONFIG's programs attached (none: nothing)
  local config=$1 holder=""
  shift
  if [[ $config != none ]]; then
    "$WORK/attach" "$WORK/$config.o" 600 &
    holder=$!
    sleep 1
  fi
  local status=0
  "$@" || status=$?
  [[ -z $holder ]] || { kill "$holder"; wait "$holder" 2>/dev/null || true; }
  return "$status"
}

echo "ns per call (getppid, write+read):"
for config in none syscall_hooks socket_hooks; do
  printf '  %-14s %s\n' "$config" "$(with_hooks "$config" "$WORK/syscall_cost")"
done

port=$(free_port)
trap stop_started EXIT
start_nginx nginx "$WORK/nginx" "$port" || { echo "hook-floor: nginx did not start" >&2; exit 1; }

busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
one_run() {
  local before after requests
  before=$(busy)
  requests=$(wrk_requests "$WORK/wrk.txt" wrk -t2 -c16 -d"${DURATION}s" "$NGINX_URL") || return 1
  after=$(busy)
  awk -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    -v rps="$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")" \
    'BEGIN {printf "%s %.2f\n", rps, (a - b) / hz * 1e6 / n}'
}
: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
  for config in none syscall_hooks socket_hooks; do
    result=$(with_hooks "$config" one_run) || { echo "hook-floor: the $config run failed" >&2; exit 1; }
    echo "$config $result" | tee -a "$WORK/results"
  done
done
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
none=$(awk '$1=="none" {print $2}' "$WORK/results" | median)
for config in none syscall_hooks socket_hooks; do
  rps=$(awk -v c="$config" '$1==c {print $2}' "$WORK/results" | median)
  cpu=$(awk -v c="$config" '$1==c {print $3}' "$WORK/results" | median)
  printf 'nginx %-14s median %9s req/s (%+.1f%%), %s CPU us/request\n' "$config" "$rps" \
    "$(awk -v a="$rps" -v b="$none" 'BEGIN {print 100 * (a - b) / b}')" "$cpu"
done
