// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// A connection's state and the I/O in flight: plain C with no kernel types, so that the host tests
// (bpf/host/) compile it too.
#ifndef FLAMESPAN_L7_CONN_STATE_H
#define FLAMESPAN_L7_CONN_STATE_H

enum conn_state {
  CONN_IDLE = 0,       // no exchange in progress
  CONN_REQUEST = 1,    // request bytes seen, no response yet
  CONN_RESPONSE = 2,   // response bytes seen
};

// How the end of a response body is known.
enum body_framing {
  FRAMING_UNKNOWN = 0, // close-delimited, an interim 1xx, or headers we could not see whole
  FRAMING_LENGTH = 1,  // Content-Length (or no body: HEAD, 204, 304): body_remaining bytes to go
  FRAMING_CHUNKED = 2, // ends with the zero-length chunk
};

// Connections are keyed by a u64: the socket cookie (socket hooks) or tgid << 32 | fd (syscall hooks).
struct conn {
  struct fs_l7_exchange exchange; // the exchange in progress (valid when state != CONN_IDLE)
  __u64 generation;
  __s64 body_remaining; // FRAMING_LENGTH: response body bytes not yet written
  __u8 peer_address[16];
  __s32 fd;
  __u16 family;
  __u16 peer_port;
  __u16 local_port;
  __u8 role;         // 0 until the first HTTP message says which side we are (socket hooks)
  __u8 state;
  __u8 published;    // the span is in traces_ctx_v1 for exchange.pid/tid
  __u8 framing;      // enum body_framing of the response in progress
  __u8 head_request; // the request is HEAD: its response has no body whatever its headers say
  __u8 not_http_counted;
  __u8 not_http_streak; // messages in a row, on an idle connection, that were not HTTP/1.x
  __u8 reserved[3];
  // Pipelining: requests read after the one in `exchange` and not yet answered wait in l7_pipeline under
  // {generation, sequence}, sequences queue_head … queue_tail - 1, oldest first.
  __u32 queue_head;
  __u32 queue_tail;
  struct head_state head; // the server side's request stream: where its parse is, across reads
};

// The buffer of one read or write: between the enter and exit tracepoints of a syscall (syscall hooks),
// or taken from the saved user registers (socket hooks).
struct pending_io {
  __u64 buffer;   // the user buffer, or the iovec / msghdr it is described by
  __s32 fd;
  __u8 indirection; // 0: plain buffer, 1: iovec array, 2: msghdr, 3: no payload (sendfile), 4: connect
  __u8 reserved[3];
  __u64 count;      // iovec entries (indirection 1)
};

// Connections whose messages keep not being HTTP/1.x (databases, TLS without probes, HTTP/2) stop being
// copied and checked on the socket hooks after this many; a tracer started mid-stream still gets a few
// chances to see the next request.
#define NOT_HTTP_LIMIT 8

#endif
