// The records the L7 tracer (bpf/l7.bpf.c) sends to user space: one per finished HTTP exchange.
// Sizes are pinned by _Static_assert here and by MemoryLayout tests in Tests/FlamespanBPFTests/L7LayoutTests.
// What crosses is deliberately small: the request line up to the query string, the status, byte counts,
// addresses, times and ids. Bodies and headers never leave the kernel.
#ifndef FLAMESPAN_L7_ABI_H
#define FLAMESPAN_L7_ABI_H

#include "flamespan_abi.h"

// "METHOD /path" or "METHOD /path HTTP/1.1", cut at '?', CR or LF and at this many bytes.
#define FS_L7_REQUEST_LINE_LEN 128

enum fs_l7_role {
  FS_L7_ROLE_SERVER = 1, // the traced process accepted the connection
  FS_L7_ROLE_CLIENT = 2, // the traced process connected
};

// Why an exchange ended; user space uses it to judge how complete the record is.
enum fs_l7_end_reason {
  FS_L7_END_NEXT_READ = 1,    // the server went back to reading after writing the response
  FS_L7_END_NEXT_REQUEST = 2, // a new request started on the connection
  FS_L7_END_CLOSE = 3,        // the connection was closed
  FS_L7_END_REPLACED = 4,     // the fd was reused (accept/connect) without a close we saw
  FS_L7_END_COMPLETE = 5,     // the response was complete by its Content-Length or last chunk
};

enum fs_l7_flags {
  FS_L7_FLAG_HAS_PARENT = 1,           // parent_span_id is meaningful
  FS_L7_FLAG_TRACEPARENT_HEADER = 2,   // trace id and parent came from a valid traceparent header
  FS_L7_FLAG_TRACEPARENT_INVALID = 4,  // a traceparent header was present but rejected
  FS_L7_FLAG_RESPONSE_SEEN = 8,        // a status line was seen
};

// Indexes into the per-CPU `l7_counters` array.
enum fs_l7_counter {
  FS_L7_COUNTER_EXCHANGES = 0,      // exchange records written to the ring buffer
  FS_L7_COUNTER_EVENTS_LOST = 1,    // exchange records lost: ring buffer full
  FS_L7_COUNTER_CONN_MAP_FULL = 2,  // connections not tracked: connection map full
  FS_L7_COUNTER_SPAN_MAP_FULL = 3,  // active spans not published: traces_ctx_v1 update failed
  FS_L7_COUNTER_NOT_HTTP = 4,       // first bytes of a tracked connection were not HTTP/1.x
  FS_L7_COUNTER_BAD_TRACEPARENT = 5, // traceparent headers rejected as malformed
  FS_L7_COUNTER_TARGETS_FULL = 6,   // forked children that could not join the pid filter
  FS_L7_COUNTER_HEAD_TOO_LONG = 7,  // request heads that did not end within HEAD_LIMIT (8 KiB): not looked at past it
  FS_L7_COUNTER_PIPELINE_OVERFLOW = 8, // pipelined requests not followed: past the depth, or past a read's steps
  FS_L7_COUNTER_LINE_CUT = 9,       // request lines cut at FS_L7_REQUEST_LINE_LEN bytes before '?', CR or LF
  FS_L7_COUNTER_COUNT = 10,
};

// One finished HTTP exchange on one connection. Times are CLOCK_MONOTONIC (bpf_ktime_get_ns). For server
// exchanges, start_ns is taken before the span was published to traces_ctx_v1 and end_ns after it was
// withdrawn, so every CPU sample that carried the span lies inside [start_ns, end_ns].
struct fs_l7_exchange {
  fs_u32 pid;
  fs_u32 tid; // the thread that read the request (server) or wrote it (client)
  fs_s32 fd;
  fs_u32 flags; // fs_l7_flags
  fs_u64 generation; // distinguishes connections that reused the same fd
  fs_u64 start_ns;
  fs_u64 end_ns;
  fs_u64 bytes_in;  // request bytes read (server) or response bytes read (client)
  fs_u64 bytes_out; // response bytes written (server) or request bytes written (client)
  fs_u8 trace_id[FS_TRACE_ID_LEN];
  fs_u8 span_id[FS_SPAN_ID_LEN];
  fs_u8 parent_span_id[FS_SPAN_ID_LEN];
  fs_u8 peer_address[16]; // IPv4 in the first 4 bytes, or IPv6, network order
  fs_u16 family;          // AF_INET, AF_INET6, or 0 when unknown
  fs_u16 peer_port;
  fs_u16 local_port;
  fs_u16 status; // 0 when no status line was seen
  fs_u8 role;    // fs_l7_role
  fs_u8 end_reason; // fs_l7_end_reason
  fs_u16 request_line_len;
  char request_line[FS_L7_REQUEST_LINE_LEN];
};

_Static_assert(sizeof(struct fs_l7_exchange) == 248, "fs_l7_exchange layout");

#endif
