// SPDX-License-Identifier: GPL-2.0
// The L7 tracer: HTTP/1.x exchanges seen from syscall tracepoints. For each connection the traced
// processes accept or connect it tracks one exchange at a time. When a server thread reads the first bytes
// of a request it publishes the exchange's span in traces_ctx_v1[pid_tgid], which the CPU sampler reads at
// every sample; the span is withdrawn when the response is done. One record per finished exchange goes to
// user space. Only the request line (cut at '?'), status, sizes, addresses, times and ids leave the kernel.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "flamespan_l7_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115

// How much of one read the tracer looks at for the request line and the traceparent header. A request
// whose traceparent starts later is still traced, with a fresh trace id.
#define SCAN_BYTES 1024
#define SCAN_MASK (SCAN_BYTES - 1)
// Room past SCAN_BYTES so that fixed-size peeks after a masked index stay inside the buffer.
#define SCAN_SLACK 128
// A request's headers are looked at for at most this many bytes across reads.
#define MAX_HEADER_BYTES 16384
// "traceparent:" then optional blanks then "00-" + 32 + "-" + 16 + "-" + 2.
#define TRACEPARENT_NAME_LEN 12
#define TRACEPARENT_VALUE_LEN 55

const volatile bool filter_by_pid = false;

enum conn_state {
  CONN_IDLE = 0,       // no exchange in progress
  CONN_REQUEST = 1,    // request bytes seen, no response yet
  CONN_RESPONSE = 2,   // response bytes seen
};

struct conn_key {
  __u32 tgid;
  __s32 fd;
};

struct conn {
  struct fs_l7_exchange exchange; // the exchange in progress (valid when state != CONN_IDLE)
  __u64 generation;
  __u8 peer_address[16];
  __u16 family;
  __u16 peer_port;
  __u16 local_port;
  __u8 role;
  __u8 state;
  __u8 in_headers;   // still inside the request headers (server) — traceparent may come in a later read
  __u8 line_start;   // the previous chunk ended with '\n', so this chunk starts a header line
  __u8 published;    // the span is in traces_ctx_v1 for exchange.pid/tid
  __u8 reserved;
  __u32 header_bytes;
};

// The buffer of the syscall in flight on a thread, between its enter and exit tracepoints.
struct pending_io {
  __u64 buffer;   // the user buffer, or the iovec / msghdr it is described by
  __s32 fd;
  __u8 indirection; // 0: plain buffer, 1: iovec array, 2: msghdr
  __u8 reserved[3];
};

struct scratch {
  char data[SCAN_BYTES + SCAN_SLACK];
};

// 16 MiB hold ~67k exchange records: a few seconds of a busy loopback server, so that a consumer that
// falls behind for a moment (symbolizing, a busy CPU) does not lose spans.
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 16 * 1024 * 1024);
} l7_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192);
  __type(key, __u32);
  __type(value, __u8);
} l7_targets SEC(".maps");

// LRU: a process that exits closes its sockets without a close() syscall we would see, so entries can go
// stale; the least recently used ones make room instead of blocking new connections.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct conn_key);
  __type(value, struct conn);
} l7_connections SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct pending_io);
} l7_pending SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct scratch);
} l7_scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct conn);
} l7_conn_template SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, FS_L7_COUNTER_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} l7_counters SEC(".maps");

// An SSL_read/SSL_write(_ex) in flight on a thread: the plaintext buffer, and the socket fd once the nested
// read/write syscall names it.
struct tls_call {
  __u64 ssl;
  __u64 buffer;
  __u64 transferred_out; // the size_t* of the _ex forms, or 0
  __s32 fd;
  __u8 writing;
  __u8 reserved[3];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct tls_call);
} l7_tls_calls SEC(".maps");

// The socket of each SSL object, for the calls OpenSSL answers from its buffer without a syscall.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, __s32);
} l7_tls_sockets SEC(".maps");

// Same definition as in profile.bpf.c: the sampler reuses this map's fd.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct fs_span_context);
} traces_ctx_v1 SEC(".maps");

static __always_inline void count(__u32 counter) {
  __u64 *value = bpf_map_lookup_elem(&l7_counters, &counter);
  if (value)
    *value += 1;
}

static __always_inline bool is_target(__u32 tgid) {
  return !filter_by_pid || bpf_map_lookup_elem(&l7_targets, &tgid) != NULL;
}

static __always_inline void random_bytes(__u8 *out, int words) {
  for (int i = 0; i < words; i++) {
    __u32 value = bpf_get_prandom_u32();
    if (value == 0)
      value = 1; // an all-zero id is invalid; one non-zero word is enough to avoid it
    __builtin_memcpy(out + 4 * i, &value, 4);
  }
}

// ---- connection identity -------------------------------------------------------------------------

// The socket behind an fd of the current task, for its addresses. NULL when the fd is not a socket we can
// read (private_data of other files is not a struct socket, so callers only use this on accept/connect fds).
static __always_inline struct sock *socket_of_fd(int fd) {
  struct task_struct *task = bpf_get_current_task_btf();
  struct file **files = BPF_CORE_READ(task, files, fdt, fd);
  struct file *file = NULL;
  if (bpf_probe_read_kernel(&file, sizeof(file), &files[fd & 0xfffff]) != 0 || !file)
    return NULL;
  struct socket *socket = BPF_CORE_READ(file, private_data);
  if (!socket)
    return NULL;
  return BPF_CORE_READ(socket, sk);
}

static __always_inline void read_addresses(struct conn *conn, int fd) {
  struct sock *sk = socket_of_fd(fd);
  if (!sk)
    return;
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  conn->family = family;
  conn->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
  conn->peer_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (family == AF_INET) {
    __u32 address = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(conn->peer_address, &address, 4);
  } else if (family == AF_INET6) {
    BPF_CORE_READ_INTO(&conn->peer_address, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
  }
}

// ---- span publication ------------------------------------------------------------------------------

static __always_inline void publish_span(struct conn *conn, __u64 pid_tgid) {
  struct fs_span_context context;
  __builtin_memcpy(context.trace_id, conn->exchange.trace_id, FS_TRACE_ID_LEN);
  __builtin_memcpy(context.span_id, conn->exchange.span_id, FS_SPAN_ID_LEN);
  if (bpf_map_update_elem(&traces_ctx_v1, &pid_tgid, &context, BPF_ANY) != 0) {
    count(FS_L7_COUNTER_SPAN_MAP_FULL);
    return;
  }
  conn->published = 1;
}

// Withdraws the span only if the thread still carries it: another request on the same thread may have
// replaced it since.
static __always_inline void withdraw_span(struct conn *conn) {
  if (!conn->published)
    return;
  conn->published = 0;
  __u64 key = ((__u64)conn->exchange.pid << 32) | conn->exchange.tid;
  struct fs_span_context *current = bpf_map_lookup_elem(&traces_ctx_v1, &key);
  if (!current)
    return;
  if (__builtin_memcmp(current->span_id, conn->exchange.span_id, FS_SPAN_ID_LEN) == 0)
    bpf_map_delete_elem(&traces_ctx_v1, &key);
}

// Ends the exchange in progress (if any) and sends its record. Server end times are taken after the span
// is withdrawn, so no sample that carried it can be later than end_ns.
static __always_inline void finish_exchange(struct conn *conn, __u8 reason, __u64 client_end_ns) {
  if (conn->state == CONN_IDLE)
    return;
  withdraw_span(conn);
  conn->exchange.end_ns = conn->role == FS_L7_ROLE_CLIENT && client_end_ns ? client_end_ns : bpf_ktime_get_ns();
  conn->exchange.end_reason = reason;
  conn->state = CONN_IDLE;
  conn->in_headers = 0;
  if (bpf_ringbuf_output(&l7_events, &conn->exchange, sizeof(conn->exchange), 0) != 0)
    count(FS_L7_COUNTER_EVENTS_LOST);
  else
    count(FS_L7_COUNTER_EXCHANGES);
}

// ---- payload inspection ------------------------------------------------------------------------------

static __always_inline bool starts_with(const char *data, const char *prefix, int length) {
  for (int i = 0; i < length; i++)
    if (data[i] != prefix[i])
      return false;
  return true;
}

static __always_inline bool is_request_start(const char *data) {
  return starts_with(data, "GET ", 4) || starts_with(data, "POST ", 5) || starts_with(data, "PUT ", 4) ||
         starts_with(data, "HEAD ", 5) || starts_with(data, "DELETE ", 7) ||
         starts_with(data, "PATCH ", 6) || starts_with(data, "OPTIONS ", 8) ||
         starts_with(data, "CONNECT ", 8) || starts_with(data, "TRACE ", 6);
}

static __always_inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The status of "HTTP/1.x NNN", or 0.
static __always_inline __u16 response_status(const char *data) {
  if (!starts_with(data, "HTTP/1.", 7) || data[8] != ' ' || !is_digit(data[9]) || !is_digit(data[10]) ||
      !is_digit(data[11]))
    return 0;
  return (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');
}

static __always_inline int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1; // W3C requires lowercase hex
}

struct scan_context {
  struct scratch *scratch;
  __u32 length;
  __u32 line_start_at_zero;
  __s32 traceparent_value; // offset of the value, or -1
  __s32 headers_end;       // offset just past the blank line, or -1
};

static __always_inline char lower(char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// One position of the header scan: is a "traceparent:" header line or the blank line ending the headers
// starting here?
static long scan_position(__u64 index, void *argument) {
  struct scan_context *context = argument;
  __u32 i = index & SCAN_MASK;
  if (i >= context->length)
    return 1;
  const char *data = context->scratch->data;
  __u32 name;
  if (i == 0 && context->line_start_at_zero)
    name = 0;
  else if (data[i] == '\n')
    name = i + 1;
  else
    return 0;
  name &= SCAN_MASK;
  // Bytes past `length` are stale; only trust what the read returned.
  if (name + 2 <= context->length && data[name] == '\r' && data[name + 1] == '\n') {
    context->headers_end = name + 2;
    return 1;
  }
  if (name + 2 <= context->length && data[name] == '\n') { // bare LF line endings
    context->headers_end = name + 1;
    return 1;
  }
  if (name + TRACEPARENT_NAME_LEN > context->length)
    return 0;
  const char *expected = "traceparent:";
  for (int k = 0; k < TRACEPARENT_NAME_LEN; k++)
    if (lower(data[name + k]) != expected[k])
      return 0;
  __u32 value = name + TRACEPARENT_NAME_LEN;
  for (int k = 0; k < 4; k++) {
    char c = data[value & SCAN_MASK];
    if (value < context->length && (c == ' ' || c == '\t'))
      value++;
  }
  context->traceparent_value = value & SCAN_MASK;
  return 0;
}

struct id_context {
  const char *value;
  struct fs_span_context *out;
  __u8 any_trace;
  __u8 any_span;
  __u8 malformed;
};

// One byte of the trace id (indexes 0-15, at value[3…34]) or the parent span id (16-23, at value[36…51]).
// A callback rather than an unrolled loop: unrolled, the branches of every hex digit multiply the
// verifier's states past its limit.
static long parse_id_byte(__u64 index, void *argument) {
  struct id_context *context = argument;
  __u32 i = index & 31;
  __u32 at = i < FS_TRACE_ID_LEN ? 3 + 2 * i : 36 + 2 * (i - FS_TRACE_ID_LEN);
  at &= 63;
  int high = hex_value(context->value[at]), low = hex_value(context->value[at + 1]);
  if (high < 0 || low < 0) {
    context->malformed = 1;
    return 1;
  }
  __u8 byte = high << 4 | low;
  if (i < FS_TRACE_ID_LEN) {
    context->out->trace_id[i & 15] = byte;
    context->any_trace |= byte;
  } else {
    context->out->span_id[(i - FS_TRACE_ID_LEN) & 7] = byte;
    context->any_span |= byte;
  }
  return 0;
}

// Parses a traceparent value at `offset` into `out` (trace id then span id). Returns 1 when valid, -1 when
// present but malformed, 0 when it does not fit in what was read.
static __always_inline int parse_traceparent(struct scratch *scratch, __u32 offset, __u32 length,
                                             struct fs_span_context *out) {
  if (offset + TRACEPARENT_VALUE_LEN > length)
    return offset < length ? -1 : 0;
  const char *value = scratch->data + (offset & SCAN_MASK);
  int v0 = hex_value(value[0]), v1 = hex_value(value[1]);
  if (v0 < 0 || v1 < 0 || (v0 == 15 && v1 == 15) || value[2] != '-' || value[35] != '-' || value[52] != '-')
    return -1;
  if (hex_value(value[53]) < 0 || hex_value(value[54]) < 0)
    return -1;
  // Version 00 is exactly 55 characters; later versions may append "-…".
  if (offset + TRACEPARENT_VALUE_LEN < length) {
    char next = value[55];
    bool end = next == '\r' || next == '\n' || next == ' ' || next == '\t';
    if (v0 == 0 && v1 == 0 ? !end : !(end || next == '-'))
      return -1;
  }
  struct id_context ids = {.value = value, .out = out};
  bpf_loop(FS_TRACE_ID_LEN + FS_SPAN_ID_LEN, parse_id_byte, &ids, 0);
  return !ids.malformed && ids.any_trace && ids.any_span ? 1 : -1;
}

// Copies up to SCAN_BYTES of the buffer of a finished read/write into the per-CPU scratch. Returns the
// number of bytes copied, or 0.
static __always_inline __u32 copy_payload(struct scratch *scratch, struct pending_io *io, long transferred) {
  __u64 buffer = io->buffer;
  if (io->indirection == 1) {
    struct iovec first;
    if (bpf_probe_read_user(&first, sizeof(first), (void *)buffer) != 0)
      return 0;
    buffer = (__u64)first.iov_base;
    if ((long)first.iov_len < transferred)
      transferred = first.iov_len;
  } else if (io->indirection == 2) {
    struct user_msghdr message;
    struct iovec first;
    if (bpf_probe_read_user(&message, sizeof(message), (void *)buffer) != 0 || message.msg_iovlen == 0 ||
        bpf_probe_read_user(&first, sizeof(first), message.msg_iov) != 0)
      return 0;
    buffer = (__u64)first.iov_base;
    if ((long)first.iov_len < transferred)
      transferred = first.iov_len;
  }
  if (transferred <= 0)
    return 0;
  __u64 length = transferred > SCAN_BYTES ? SCAN_BYTES : (__u64)transferred;
  // Restate the bound where the verifier can see it on the register it checks.
  length &= (2 * SCAN_BYTES - 1);
  if (length == 0 || length > SCAN_BYTES)
    return 0;
  if (bpf_probe_read_user(scratch->data, length, (void *)buffer) != 0)
    return 0;
  return length;
}

// The request line up to the first '?', CR or LF, copied into the exchange record.
static long line_end_position(__u64 index, void *argument) {
  struct scan_context *context = argument;
  __u32 i = index & SCAN_MASK;
  if (i >= context->length || i >= FS_L7_REQUEST_LINE_LEN)
    return 1;
  char c = context->scratch->data[i];
  if (c == '?' || c == '\r' || c == '\n')
    return 1;
  context->headers_end = i + 1; // reused as "line length so far"
  return 0;
}

static __always_inline void copy_request_line(struct conn *conn, struct scratch *scratch, __u32 length) {
  struct scan_context context = {.scratch = scratch, .length = length, .headers_end = 0};
  bpf_loop(FS_L7_REQUEST_LINE_LEN, line_end_position, &context, 0);
  __u32 line = context.headers_end;
  __builtin_memset(conn->exchange.request_line, 0, FS_L7_REQUEST_LINE_LEN);
  if (line > 0 && line <= FS_L7_REQUEST_LINE_LEN)
    bpf_probe_read_kernel(conn->exchange.request_line, line, scratch->data);
  conn->exchange.request_line_len = line;
}

// Looks for traceparent and the end of the headers in one chunk of a server request.
static __always_inline void scan_request_headers(struct conn *conn, struct scratch *scratch, __u32 length,
                                                 bool refresh_published, __u64 pid_tgid) {
  struct scan_context context = {
      .scratch = scratch,
      .length = length,
      .line_start_at_zero = conn->line_start,
      .traceparent_value = -1,
      .headers_end = -1,
  };
  bpf_loop(SCAN_BYTES, scan_position, &context, 0);
  conn->line_start = length > 0 && scratch->data[(length - 1) & SCAN_MASK] == '\n';
  conn->header_bytes += length;
  if (context.headers_end >= 0 || conn->header_bytes >= MAX_HEADER_BYTES)
    conn->in_headers = 0;
  if (context.traceparent_value < 0 || (conn->exchange.flags & FS_L7_FLAG_TRACEPARENT_HEADER))
    return;
  if (context.headers_end >= 0 && context.traceparent_value >= context.headers_end)
    return;
  struct fs_span_context parent;
  int parsed = parse_traceparent(scratch, context.traceparent_value, length, &parent);
  if (parsed < 0) {
    conn->exchange.flags |= FS_L7_FLAG_TRACEPARENT_INVALID;
    count(FS_L7_COUNTER_BAD_TRACEPARENT);
    return;
  }
  if (parsed == 0)
    return;
  __builtin_memcpy(conn->exchange.trace_id, parent.trace_id, FS_TRACE_ID_LEN);
  __builtin_memcpy(conn->exchange.parent_span_id, parent.span_id, FS_SPAN_ID_LEN);
  conn->exchange.flags |= FS_L7_FLAG_TRACEPARENT_HEADER | FS_L7_FLAG_HAS_PARENT;
  conn->exchange.flags &= ~FS_L7_FLAG_TRACEPARENT_INVALID;
  if (refresh_published && conn->published)
    publish_span(conn, pid_tgid);
}

static __always_inline void begin_exchange(struct conn *conn, struct conn_key *key, __u64 pid_tgid) {
  struct fs_l7_exchange *exchange = &conn->exchange;
  exchange->pid = key->tgid;
  exchange->tid = (__u32)pid_tgid;
  exchange->fd = key->fd;
  exchange->flags = 0;
  exchange->generation = conn->generation;
  exchange->start_ns = bpf_ktime_get_ns();
  exchange->end_ns = 0;
  exchange->bytes_in = 0;
  exchange->bytes_out = 0;
  __builtin_memcpy(exchange->peer_address, conn->peer_address, 16);
  exchange->family = conn->family;
  exchange->peer_port = conn->peer_port;
  exchange->local_port = conn->local_port;
  exchange->status = 0;
  exchange->role = conn->role;
  exchange->end_reason = 0;
  random_bytes(exchange->span_id, 2);
  __builtin_memset(exchange->parent_span_id, 0, FS_SPAN_ID_LEN);
  conn->state = CONN_REQUEST;
  conn->header_bytes = 0;
  conn->line_start = 0;
  conn->published = 0;
}

// ---- syscall handlers --------------------------------------------------------------------------------

static __always_inline void track_connection(int fd, __u8 role) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 tgid = pid_tgid >> 32;
  if (fd < 0 || !is_target(tgid))
    return;
  struct conn_key key = {.tgid = tgid, .fd = fd};
  struct conn *old = bpf_map_lookup_elem(&l7_connections, &key);
  if (old)
    finish_exchange(old, FS_L7_END_REPLACED, 0);
  __u32 zero = 0;
  struct conn *conn = bpf_map_lookup_elem(&l7_conn_template, &zero);
  if (!conn)
    return;
  __builtin_memset(conn, 0, sizeof(*conn));
  conn->generation = bpf_ktime_get_ns();
  conn->role = role;
  read_addresses(conn, fd);
  if (bpf_map_update_elem(&l7_connections, &key, conn, BPF_ANY) != 0)
    count(FS_L7_COUNTER_CONN_MAP_FULL);
}

static __always_inline void note_tls_socket(__u64 pid_tgid, int fd) {
  struct tls_call *call = bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid);
  if (!call || call->fd >= 0)
    return;
  call->fd = fd;
  bpf_map_update_elem(&l7_tls_sockets, &call->ssl, &fd, BPF_ANY);
}

static __always_inline bool inside_tls_call(void) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  return bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid) != NULL;
}

static __always_inline void remember_io(int fd, __u64 buffer, __u8 indirection) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  note_tls_socket(pid_tgid, fd);
  struct conn_key key = {.tgid = pid_tgid >> 32, .fd = fd};
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &key);
  if (!conn)
    return;
  struct pending_io io = {.buffer = buffer, .fd = fd, .indirection = indirection};
  bpf_map_update_elem(&l7_pending, &pid_tgid, &io, BPF_ANY);
}

// A server that goes back to reading a connection has finished answering on it: end the exchange now,
// before the thread blocks, so its idle time and unrelated work do not count.
static __always_inline void before_read(int fd, __u64 buffer, __u8 indirection) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  note_tls_socket(pid_tgid, fd);
  struct conn_key key = {.tgid = pid_tgid >> 32, .fd = fd};
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &key);
  if (!conn)
    return;
  if (conn->role == FS_L7_ROLE_SERVER && conn->state == CONN_RESPONSE)
    finish_exchange(conn, FS_L7_END_NEXT_READ, 0);
  struct pending_io io = {.buffer = buffer, .fd = fd, .indirection = indirection};
  bpf_map_update_elem(&l7_pending, &pid_tgid, &io, BPF_ANY);
}

static __always_inline struct conn *take_pending(struct pending_io *io, struct conn_key *key) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct pending_io *pending = bpf_map_lookup_elem(&l7_pending, &pid_tgid);
  if (!pending)
    return NULL;
  *io = *pending;
  bpf_map_delete_elem(&l7_pending, &pid_tgid);
  key->tgid = pid_tgid >> 32;
  key->fd = io->fd;
  return bpf_map_lookup_elem(&l7_connections, key);
}

static __always_inline bool inside_tls_call(void);
static __always_inline void process_read(struct conn *conn, struct conn_key key, struct pending_io io,
                                         long transferred);
static __always_inline void process_write(struct conn *conn, struct conn_key key, struct pending_io io,
                                          long transferred);

// Syscall exits. Inside an SSL_read/SSL_write the bytes are ciphertext: the uprobes handle the plaintext.
static __always_inline void after_read(long transferred) {
  struct pending_io io;
  struct conn_key key;
  struct conn *conn = take_pending(&io, &key);
  if (!conn || transferred <= 0 || inside_tls_call())
    return;
  process_read(conn, key, io, transferred);
}

static __always_inline void after_write(long transferred) {
  struct pending_io io;
  struct conn_key key;
  struct conn *conn = take_pending(&io, &key);
  if (!conn || transferred <= 0 || inside_tls_call())
    return;
  process_write(conn, key, io, transferred);
}

static __always_inline void process_read(struct conn *conn, struct conn_key key, struct pending_io io,
                                         long transferred) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 zero = 0;
  struct scratch *scratch = bpf_map_lookup_elem(&l7_scratch, &zero);
  if (!scratch)
    return;

  if (conn->role == FS_L7_ROLE_SERVER) {
    if (conn->state == CONN_REQUEST) {
      conn->exchange.bytes_in += transferred;
      if (conn->in_headers) {
        __u32 length = copy_payload(scratch, &io, transferred);
        if (length)
          scan_request_headers(conn, scratch, length, true, pid_tgid);
      }
      return;
    }
    __u32 length = copy_payload(scratch, &io, transferred);
    if (length < 4)
      return;
    if (!is_request_start(scratch->data)) {
      if (conn->state == CONN_IDLE)
        count(FS_L7_COUNTER_NOT_HTTP);
      else
        conn->exchange.bytes_in += transferred; // more of a request body read after a response began
      return;
    }
    finish_exchange(conn, FS_L7_END_NEXT_REQUEST, 0);
    // start_ns is taken before the span is published: no sample can carry it earlier.
    begin_exchange(conn, &key, pid_tgid);
    random_bytes(conn->exchange.trace_id, 4);
    conn->exchange.bytes_in = transferred;
    conn->in_headers = 1;
    copy_request_line(conn, scratch, length);
    scan_request_headers(conn, scratch, length, false, pid_tgid);
    publish_span(conn, pid_tgid);
    return;
  }

  // Client: the response.
  if (conn->state == CONN_IDLE)
    return;
  conn->exchange.bytes_in += transferred;
  conn->exchange.end_ns = bpf_ktime_get_ns();
  if (conn->state == CONN_REQUEST) {
    __u32 length = copy_payload(scratch, &io, transferred);
    if (length >= 12) {
      __u16 status = response_status(scratch->data);
      if (status) {
        conn->exchange.status = status;
        conn->exchange.flags |= FS_L7_FLAG_RESPONSE_SEEN;
      }
    }
    conn->state = CONN_RESPONSE;
  }
}

static __always_inline void process_write(struct conn *conn, struct conn_key key, struct pending_io io,
                                          long transferred) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();

  if (conn->role == FS_L7_ROLE_SERVER) {
    if (conn->state == CONN_IDLE)
      return;
    conn->exchange.bytes_out += transferred;
    if (conn->state == CONN_REQUEST) {
      conn->state = CONN_RESPONSE;
      conn->in_headers = 0;
      __u32 zero = 0;
      struct scratch *scratch = bpf_map_lookup_elem(&l7_scratch, &zero);
      if (scratch && io.indirection != 3 && copy_payload(scratch, &io, transferred) >= 12) {
        __u16 status = response_status(scratch->data);
        if (status) {
          conn->exchange.status = status;
          conn->exchange.flags |= FS_L7_FLAG_RESPONSE_SEEN;
        }
      }
    }
    return;
  }

  // Client: a request goes out.
  if (conn->state == CONN_REQUEST) {
    conn->exchange.bytes_out += transferred;
    return;
  }
  __u32 zero = 0;
  struct scratch *scratch = bpf_map_lookup_elem(&l7_scratch, &zero);
  if (!scratch || io.indirection == 3)
    return;
  __u32 length = copy_payload(scratch, &io, transferred);
  if (length < 4 || !is_request_start(scratch->data))
    return;
  finish_exchange(conn, FS_L7_END_NEXT_REQUEST, conn->exchange.end_ns);
  begin_exchange(conn, &key, pid_tgid);
  // A client request made while the thread serves a span is that span's child.
  struct fs_span_context *serving = bpf_map_lookup_elem(&traces_ctx_v1, &pid_tgid);
  if (serving) {
    __builtin_memcpy(conn->exchange.trace_id, serving->trace_id, FS_TRACE_ID_LEN);
    __builtin_memcpy(conn->exchange.parent_span_id, serving->span_id, FS_SPAN_ID_LEN);
    conn->exchange.flags |= FS_L7_FLAG_HAS_PARENT;
  } else {
    random_bytes(conn->exchange.trace_id, 4);
  }
  conn->exchange.bytes_out = transferred;
  copy_request_line(conn, scratch, length);
}

static __always_inline void on_close(int fd) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct conn_key key = {.tgid = pid_tgid >> 32, .fd = fd};
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &key);
  if (!conn)
    return;
  finish_exchange(conn, FS_L7_END_CLOSE, conn->exchange.end_ns);
  bpf_map_delete_elem(&l7_connections, &key);
}

// ---- tracepoints -------------------------------------------------------------------------------------

#define ARG(ctx, n) ((ctx)->args[n])

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx) {
  track_connection(ctx->ret, FS_L7_ROLE_SERVER);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx) {
  track_connection(ctx->ret, FS_L7_ROLE_SERVER);
  return 0;
}

// connect's fd is only known at entry.
SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if (!is_target(pid_tgid >> 32))
    return 0;
  struct pending_io io = {.fd = ARG(ctx, 0), .indirection = 4};
  bpf_map_update_elem(&l7_pending, &pid_tgid, &io, BPF_ANY);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct pending_io *io = bpf_map_lookup_elem(&l7_pending, &pid_tgid);
  if (!io)
    return 0;
  int fd = io->fd;
  __u8 kind = io->indirection;
  bpf_map_delete_elem(&l7_pending, &pid_tgid);
  if (kind == 4 && (ctx->ret == 0 || ctx->ret == -EINPROGRESS))
    track_connection(fd, FS_L7_ROLE_CLIENT);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx) {
  before_read(ARG(ctx, 0), ARG(ctx, 1), 0);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx) {
  after_read(ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct trace_event_raw_sys_enter *ctx) {
  before_read(ARG(ctx, 0), ARG(ctx, 1), 1);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct trace_event_raw_sys_exit *ctx) {
  after_read(ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx) {
  before_read(ARG(ctx, 0), ARG(ctx, 1), 0);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx) {
  after_read(ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx) {
  before_read(ARG(ctx, 0), ARG(ctx, 1), 2);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx) {
  after_read(ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx) {
  remember_io(ARG(ctx, 0), ARG(ctx, 1), 0);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx) {
  after_write(ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct trace_event_raw_sys_enter *ctx) {
  remember_io(ARG(ctx, 0), ARG(ctx, 1), 1);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct trace_event_raw_sys_exit *ctx) {
  after_write(ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx) {
  remember_io(ARG(ctx, 0), ARG(ctx, 1), 0);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx) {
  after_write(ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx) {
  remember_io(ARG(ctx, 0), ARG(ctx, 1), 2);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx) {
  after_write(ctx->ret);
  return 0;
}

// nginx sends file bodies with sendfile: bytes only, no payload to look at.
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int enter_sendfile(struct trace_event_raw_sys_enter *ctx) {
  remember_io(ARG(ctx, 0), 0, 3);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendfile64")
int exit_sendfile(struct trace_event_raw_sys_exit *ctx) {
  after_write(ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx) {
  on_close(ARG(ctx, 0));
  return 0;
}

// ---- TLS: OpenSSL/BoringSSL plaintext, attached per library by user space ------------------------------

static __always_inline void tls_enter(__u64 ssl, __u64 buffer, __u64 transferred_out, __u8 writing) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if (!is_target(pid_tgid >> 32))
    return;
  struct tls_call call = {
      .ssl = ssl, .buffer = buffer, .transferred_out = transferred_out, .fd = -1, .writing = writing};
  bpf_map_update_elem(&l7_tls_calls, &pid_tgid, &call, BPF_ANY);
}

static __always_inline void tls_exit(long result) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct tls_call *pending = bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid);
  if (!pending)
    return;
  struct tls_call call = *pending;
  bpf_map_delete_elem(&l7_tls_calls, &pid_tgid);
  // Every probed function returns int: the upper half of the register is not part of the value.
  long transferred = (int)result;
  if (call.transferred_out) {
    size_t count = 0;
    if (transferred != 1 || bpf_probe_read_user(&count, sizeof(count), (void *)call.transferred_out) != 0)
      return;
    transferred = count;
  }
  if (transferred <= 0)
    return;
  if (call.fd < 0) {
    __s32 *known = bpf_map_lookup_elem(&l7_tls_sockets, &call.ssl);
    if (!known)
      return;
    call.fd = *known;
  }
  struct conn_key key = {.tgid = pid_tgid >> 32, .fd = call.fd};
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &key);
  if (!conn)
    return;
  struct pending_io io = {.buffer = call.buffer, .fd = call.fd, .indirection = 0};
  if (call.writing) {
    process_write(conn, key, io, transferred);
  } else {
    // A server reading again has answered (the nested read may not have happened: buffered data).
    if (conn->role == FS_L7_ROLE_SERVER && conn->state == CONN_RESPONSE)
      finish_exchange(conn, FS_L7_END_NEXT_READ, 0);
    process_read(conn, key, io, transferred);
  }
}

SEC("uprobe")
int BPF_KPROBE(tls_read_enter, void *ssl, void *buffer, int size) {
  tls_enter((__u64)ssl, (__u64)buffer, 0, 0);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_read_ex_enter, void *ssl, void *buffer, size_t size, size_t *read_bytes) {
  tls_enter((__u64)ssl, (__u64)buffer, (__u64)read_bytes, 0);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_write_enter, void *ssl, const void *buffer, int size) {
  tls_enter((__u64)ssl, (__u64)buffer, 0, 1);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_write_ex_enter, void *ssl, const void *buffer, size_t size, size_t *written) {
  tls_enter((__u64)ssl, (__u64)buffer, (__u64)written, 1);
  return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_exit_probe, long result) {
  tls_exit(result);
  return 0;
}

// Children forked by a target (nginx workers, pre-fork servers) are traced too.
SEC("tp_btf/sched_process_fork")
int BPF_PROG(l7_on_fork, struct task_struct *parent, struct task_struct *child) {
  if (!filter_by_pid)
    return 0;
  __u32 parent_pid = parent->tgid;
  if (!bpf_map_lookup_elem(&l7_targets, &parent_pid))
    return 0;
  __u32 child_pid = child->tgid;
  __u8 yes = 1;
  if (bpf_map_update_elem(&l7_targets, &child_pid, &yes, BPF_ANY) != 0)
    count(FS_L7_COUNTER_TARGETS_FULL);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(l7_on_exit, struct task_struct *task) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 pid = pid_tgid >> 32;
  // A thread that dies while serving must not leave its span for a future thread with the same id.
  bpf_map_delete_elem(&traces_ctx_v1, &pid_tgid);
  bpf_map_delete_elem(&l7_pending, &pid_tgid);
  bpf_map_delete_elem(&l7_tls_calls, &pid_tgid);
  if ((__u32)pid_tgid == pid && filter_by_pid)
    bpf_map_delete_elem(&l7_targets, &pid);
  return 0;
}
