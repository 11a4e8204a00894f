// SPDX-License-Identifier: GPL-2.0
// The L7 tracer: HTTP/1.x exchanges on the TCP connections of the traced processes, one exchange at a time
// per connection. When a server thread reads the first bytes of a request it publishes the exchange's span
// in traces_ctx_v1[pid_tgid], which the CPU sampler reads at every sample; the span is withdrawn when the
// response is complete (by its Content-Length or last chunk), or failing that when the server reads again,
// starts the next request or closes. One record per finished exchange goes to user space. Only the request
// line (cut at '?'), status, sizes, addresses, times and ids leave the kernel.
//
// Two sets of hooks feed the same state machine; user space loads one:
// - socket hooks (default): tp_btf on sock_recv_length / sock_send_length, which fire only for socket I/O,
//   and inet_sock_set_state for closes. The syscall's arguments come from the task's saved user registers.
//   Connections are keyed by socket cookie, which no other socket ever reuses.
// - syscall hooks (fallback for kernels without those tracepoints): syscalls:sys_{enter,exit}_* for
//   accept, connect, read*, recv*, write*, send*, sendfile and close. Enabling any syscall tracepoint puts
//   every syscall of every process on the kernel's slow path, which costs far more than the hooks above
//   (bench/l7/RESULTS.md). Connections are keyed by {tgid, fd}, with a generation taken at accept/connect.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "flamespan_l7_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115
#define MSG_PEEK 2
#define IPPROTO_TCP 6

// The request head parser (bpf/l7_head.h, shared with the host tests) and its bounds: SCAN_BYTES per
// step, HEAD_LIMIT per head, PIPELINE_DEPTH requests read ahead of their responses.
#include "l7_head.h"

const volatile bool filter_by_pid = false;

// The rest, by concern, in the order each needs the one before. A header here is a part of this file,
// not a library: it relies on what the headers above it define.
#include "l7/bench_stops.h"     // benchmark stops, compiled into the bench-only object alone
#include "l7/conn_state.h"      // a connection's state and the I/O in flight (no kernel types)
#include "l7/maps.h"            // the maps, the counters and the traced-pid filter
#include "l7/exchange.h"        // ids, span publication, an exchange's start and end
#include "l7/payload.h"         // copying the first bytes of a read or write out of the process
#include "l7/http_scan.h"       // response status line and headers, client request lines
#include "l7/pipeline.h"        // requests read ahead of their responses
#include "l7/head_hooks.h"      // l7_head.h's hooks: the server's request stream
#include "l7/state_machine.h"   // what a read or write does to an exchange
#include "l7/connection.h"      // connection identity and records
#include "l7/tls.h"             // OpenSSL/BoringSSL plaintext uprobes
#include "l7/hooks_sock.h"      // socket hooks (default)
#include "l7/hooks_syscalls.h"  // syscall hooks (fallback)
#include "l7/process_events.h"  // fork and exit
