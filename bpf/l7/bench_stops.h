// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c. Benchmark stops, for bench/l7/floor.sh, paired.sh and bpf-time.sh only: the
// socket hooks stop early, to measure what the stages before the HTTP work cost. They exist only in the
// bench-only object l7_bench (bpf/build.sh compiles l7.bpf.c a second time with -DFLAMESPAN_BENCH_STOPS),
// which user space loads when FLAMESPAN_BENCHMARK_L7_STOP names a stage (L7Tracer.setBenchmarkStop maps
// the names to these numbers). In the shipped object l7 every BENCH_STOP is a constant false, so no
// socket read or write of the machine pays for a test it never needs.
#ifndef FLAMESPAN_L7_BENCH_STOPS_H
#define FLAMESPAN_L7_BENCH_STOPS_H

enum bench_stop {
  STOP_AFTER_FILTER = 1,        // filter: after the pid filter
  STOP_AFTER_PAYLOAD = 2,       // payload: as registers, then the payload copied
  STOP_AFTER_STORAGE = 3,       // storage: after the connection lookup
  STOP_AFTER_REGISTERS = 4,     // registers: after that and the syscall's registers
  STOP_AFTER_KERNEL_COPY = 5,   // kernel-copy: as payload, with copies of the same sizes from kernel memory
  STOP_AFTER_REQUEST = 6,       // request: server requests handled in full, responses not at all
  STOP_AFTER_RESPONSE = 7,      // response: a complete response is dropped without ending its span
  STOP_AFTER_SOCKET = 8,        // socket: after the socket checks, before the lookup
  STOP_AFTER_STATUS = 9,        // status: a response's status read, its framing not
  STOP_AFTER_WITHDRAW = 10,     // withdraw: exchanges end with the span withdrawn, no end time or record
  STOP_AFTER_CLOCK = 11,        // clock: as withdraw, with the end time
};

#ifdef FLAMESPAN_BENCH_STOPS
// Recordings with the bench object leave it 0, and the verifier drops the tests as dead code.
const volatile __u8 benchmark_stop = 0;
#define BENCH_STOP(stage) (benchmark_stop == (stage))
#else
#define BENCH_STOP(stage) false
#endif

#endif
