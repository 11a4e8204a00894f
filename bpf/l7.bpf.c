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
// For bench/l7/floor.sh and paired.sh only: the socket hooks stop early, to measure what the stages before
// the HTTP work cost. 1: after the pid filter; 3: after the connection lookup; 4: after that and the
// syscall's registers; 2: after those and the payload copy; 5: as 2, with copies of the same sizes from
// kernel memory instead; 6: server requests handled in full, responses not at all; 7: server responses
// read too, but a complete one is dropped without ending its span; 8: after the socket checks, before the
// lookup; 9: a response's status read, its framing not; 10: exchanges end with the span withdrawn but no
// end time or record; 11: as 10, with the end time. Recordings leave it 0, and the verifier drops the
// tests as dead code.
const volatile __u8 benchmark_stop = 0;
// Set by the first SSL call the uprobes see: until then no I/O can be inside one, and the per-I/O lookup
// of l7_tls_calls is skipped.
__u8 tls_calls_seen = 0;

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

// Exchange records go to a ring buffer of the CPU that finishes the exchange, which user space creates
// and sizes at load (16 MiB in all by default: seconds of a busy loopback server, so that a consumer that
// falls behind for a moment does not lose spans). In one shared ring, a single record reserved and not
// yet committed (its producer's vCPU stopped by the host, say) holds up every CPU's records behind it
// until the ring is full; a ring per CPU confines that to the stopped CPU, which produces nothing
// meanwhile. It also keeps the ring's lock and producer position out of the other CPUs' caches.
struct l7_ring {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  // Only the template libbpf creates and drops at load: 64 KiB is a whole number of pages on any kernel.
  // User space sizes each CPU's ring.
  __uint(max_entries, 64 * 1024);
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 1); // one slot per possible CPU, set at load
  __type(key, __u32);
  __array(values, struct l7_ring);
} l7_rings SEC(".maps");

// The traced thread groups: bit `tgid` (Linux pids stay below 2^22). Every socket read and write asks, so
// it is an array, whose lookups the verifier inlines; a hash lookup here cost more than the rest of the
// check for the processes we do not trace. User space sets bits through a shared mapping.
#define PID_LIMIT (1 << 22)
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, PID_LIMIT / 64);
  __uint(map_flags, BPF_F_MMAPABLE);
  __type(key, __u32);
  __type(value, __u64);
} l7_target_bits SEC(".maps");

// LRU: a process that exits closes its sockets without a close() syscall we would see, so entries can go
// stale; the least recently used ones make room instead of blocking new connections.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct conn);
} l7_connections SEC(".maps");

// The socket hooks keep each connection in its socket's own storage: one lookup call instead of a hash
// and a lookup, nothing preallocated, and freed with the socket. (TLS connections stay in l7_connections:
// the uprobes that finish them cannot reach socket storage.)
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct conn);
} l7_socket_conns SEC(".maps");

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

// An SSL_read/SSL_write(_ex) in flight on a thread: the plaintext buffer, and the connection once the nested
// socket read/write names it.
struct tls_call {
  __u64 ssl;
  __u64 buffer;
  __u64 transferred_out; // the size_t* of the _ex forms, or 0
  __u64 connection;      // l7_connections key, valid when has_connection
  __u8 has_connection;
  __u8 writing;
  __u8 reserved[6];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct tls_call);
} l7_tls_calls SEC(".maps");

// The connection of each SSL object, for the calls OpenSSL answers from its buffer without a syscall.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, __u64);
} l7_tls_sockets SEC(".maps");

// Same definition as in profile.bpf.c: the sampler reuses this map's fd.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct fs_span_context);
} traces_ctx_v1 SEC(".maps");

static __always_inline void count(__u32 counter) {
  __u64 *value = bpf_map_lookup_elem(&l7_counters, &counter);
  if (value)
    *value += 1;
}

static __always_inline __u64 *target_word(__u32 tgid) {
  __u32 index = tgid / 64;
  return bpf_map_lookup_elem(&l7_target_bits, &index);
}

static __always_inline bool is_target(__u32 tgid) {
  if (!filter_by_pid)
    return true;
  __u64 *word = target_word(tgid);
  return word && (*word >> (tgid % 64)) & 1;
}

// Ids come from a per-CPU splitmix64 sequence seeded from the kernel's PRNG: six helper calls per request
// cost more than the header scans. Every output word is non-zero, so no id can be all zeros (invalid).
static __always_inline __u64 next_random(struct scratch *scratch) {
  if (!scratch->random_state)
    scratch->random_state = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32() | 1;
  __u64 z = scratch->random_state += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return z ? z : 1;
}

static __always_inline void random_id(struct scratch *scratch, __u8 *out, int words) {
  for (int i = 0; i < words; i++) {
    __u64 value = next_random(scratch);
    __builtin_memcpy(out + 8 * i, &value, 8);
  }
}

// ---- connection identity -------------------------------------------------------------------------

static __always_inline __u64 fd_connection(__u32 tgid, int fd) { return ((__u64)tgid << 32) | (__u32)fd; }

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

static __always_inline void read_socket_addresses(struct conn *conn, struct sock *sk) {
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

// A thread's entry in traces_ctx_v1 stays while the thread lives (l7_on_exit deletes it) and is rewritten
// in place: a hash update and delete per request cost more than the rest of a request's work. A zero
// span id means "no span". The writes go in an order that the sampler, which can interrupt this program
// between any two of them on the same CPU, reads either no span or a whole one: the span id is cleared
// first and set last, each with one 8-byte store.
#define compiler_barrier() asm volatile("" ::: "memory")

static __always_inline void publish_span(struct conn *conn, __u64 pid_tgid) {
  struct fs_span_context *current = bpf_map_lookup_elem(&traces_ctx_v1, &pid_tgid);
  if (current) {
    *(volatile __u64 *)current->span_id = 0;
    compiler_barrier();
    __builtin_memcpy(current->trace_id, conn->exchange.trace_id, FS_TRACE_ID_LEN);
    compiler_barrier();
    *(volatile __u64 *)current->span_id = *(__u64 *)conn->exchange.span_id;
    conn->published = 1;
    return;
  }
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
  if (!current || *(__u64 *)current->span_id != *(__u64 *)conn->exchange.span_id)
    return;
  *(volatile __u64 *)current->span_id = 0;
  compiler_barrier();
  __builtin_memset(current->trace_id, 0, FS_TRACE_ID_LEN);
}

// Ends the exchange in progress (if any) and sends its record. Server end times are taken after the span
// is withdrawn, so no sample that carried it can be later than end_ns.
static __always_inline void finish_exchange(struct conn *conn, __u8 reason, __u64 client_end_ns) {
  if (conn->state == CONN_IDLE)
    return;
  withdraw_span(conn);
  if (benchmark_stop == 10 || benchmark_stop == 11) {
    if (benchmark_stop == 11)
      conn->exchange.end_ns = bpf_ktime_get_ns();
    conn->state = CONN_IDLE; // no record
    return;
  }
  conn->exchange.end_ns = conn->role == FS_L7_ROLE_CLIENT && client_end_ns ? client_end_ns : bpf_ktime_get_ns();
  conn->exchange.end_reason = reason;
  conn->state = CONN_IDLE;
  // Only the used part of the request line goes out: every cache line of the ring this CPU writes was
  // last read by the consumer on another CPU, and moving them was most of the cost of a record.
  __u32 line = conn->exchange.request_line_len;
  if (line > FS_L7_REQUEST_LINE_LEN)
    line = FS_L7_REQUEST_LINE_LEN;
  __u32 size = offsetof(struct fs_l7_exchange, request_line) + line;
  __u32 cpu = bpf_get_smp_processor_id();
  void *ring = bpf_map_lookup_elem(&l7_rings, &cpu);
  if (!ring || bpf_ringbuf_output(ring, &conn->exchange, size, 0) != 0)
    count(FS_L7_COUNTER_EVENTS_LOST);
  else
    count(FS_L7_COUNTER_EXCHANGES);
}

// ---- payload inspection ------------------------------------------------------------------------------
// Requests go through l7_head.h. Responses and client requests are looked at in the first SCAN_BYTES of
// one write or read.

struct scan_context {
  struct scratch *scratch;
  __u32 length;
  __s32 headers_end;    // offset just past the blank line, or -1
  __s32 content_length; // offset of the Content-Length value, or -1
  __u8 chunked;         // a Transfer-Encoding header was seen
};

// Does the response header line starting at `name` end the headers, or name a framing header? Returns 1
// to stop the scan.
static __always_inline long check_response_line(struct scan_context *context, __u32 name) {
  name &= BUF_MASK;
  const char *data = context->scratch->data;
  // Bytes past `length` are stale; only trust what the write held.
  if (name + 2 <= context->length && data[name] == '\r' && data[name + 1] == '\n') {
    context->headers_end = name + 2;
    return 1;
  }
  if (name + 2 <= context->length && data[name] == '\n') { // bare LF line endings
    context->headers_end = name + 1;
    return 1;
  }
  char first = data[name] | 0x20;
  if (first == 'c' && header_name_is(data, name, context->length, "content-length:", 15))
    context->content_length = (name + 15) & BUF_MASK;
  else if (first == 't' && header_name_is(data, name, context->length, "transfer-encoding:", 18))
    context->chunked = 1;
  return 0;
}

static long check_response_candidate(__u64 index, void *argument) {
  struct scan_context *context = argument;
  struct scratch *scratch = context->scratch;
  __u32 at = next_candidate(scratch);
  if (at >= BUF_BYTES)
    return 1;
  if (at >= context->length || scratch->data[at] != '\n')
    return 0;
  return check_response_line(context, at + 1);
}

// `length` is at most SCAN_BYTES.
static __always_inline void scan_response_headers(struct scan_context *context) {
  if (context->length > SCAN_BYTES)
    return;
  first_pass(context->scratch, context->length);
  bpf_loop(SCAN_BYTES, check_response_candidate, context, 0);
}

// The first buffer of an I/O: the plain buffer, or the first iovec of an iovec array or msghdr, with the
// bytes of `transferred` that landed in it.
static __always_inline __u64 first_buffer(struct pending_io *io, long *transferred) {
  __u64 buffer = io->buffer;
  if (io->indirection == 1) {
    struct iovec first;
    if (bpf_probe_read_user(&first, sizeof(first), (void *)buffer) != 0)
      return 0;
    buffer = (__u64)first.iov_base;
    if ((long)first.iov_len < *transferred)
      *transferred = first.iov_len;
  } else if (io->indirection == 2) {
    struct user_msghdr message;
    struct iovec first;
    if (bpf_probe_read_user(&message, sizeof(message), (void *)buffer) != 0 || message.msg_iovlen == 0 ||
        bpf_probe_read_user(&first, sizeof(first), message.msg_iov) != 0)
      return 0;
    buffer = (__u64)first.iov_base;
    if ((long)first.iov_len < *transferred)
      *transferred = first.iov_len;
  } else if (io->indirection != 0) {
    return 0;
  }
  return buffer;
}

// Copies up to SCAN_BYTES of the buffer of a finished read/write into the per-CPU scratch. Returns the
// number of bytes copied, or 0.
static __always_inline __u32 copy_payload(struct scratch *scratch, struct pending_io *io, long transferred) {
  __u64 buffer = first_buffer(io, &transferred);
  if (!buffer || transferred <= 0)
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

// Benchmark stage 5 only: the reads copy_payload makes, of the same sizes, from kernel memory (the task)
// instead of the process's, to measure what reading user memory costs.
static __always_inline void copy_from_kernel_instead(struct scratch *scratch, struct pending_io *io,
                                                     long transferred, struct task_struct *task) {
  if (io->indirection >= 3 || transferred <= 0)
    return;
  if (io->indirection > 0) {
    struct iovec first;
    bpf_probe_read_kernel(&first, sizeof(first), task);
  }
  __u64 length = transferred > SCAN_BYTES ? SCAN_BYTES : (__u64)transferred;
  length &= (2 * SCAN_BYTES - 1);
  if (length == 0 || length > SCAN_BYTES)
    return;
  bpf_probe_read_kernel(scratch->data, length, task);
}

// Did this write end with the zero-length chunk ("0\r\n\r\n") that ends a chunked body? Looks at the end
// of a plain buffer or of the last iovec of a writev.
static __always_inline bool ends_with_last_chunk(struct pending_io *io, long transferred) {
  __u64 end = 0;
  if (io->indirection == 0) {
    end = io->buffer + transferred;
  } else if (io->indirection == 1 && io->count > 0 && io->count <= 1024) {
    struct iovec last;
    if (bpf_probe_read_user(&last, sizeof(last), (void *)(io->buffer + (io->count - 1) * sizeof(last))) != 0)
      return false;
    end = (__u64)last.iov_base + last.iov_len;
  }
  char tail[5];
  if (!end || transferred < 5 || bpf_probe_read_user(tail, sizeof(tail), (void *)(end - 5)) != 0)
    return false;
  return tail[0] == '0' && tail[1] == '\r' && tail[2] == '\n' && tail[3] == '\r' && tail[4] == '\n';
}

// The request line up to the first '?', CR or LF, a word at a time. The end goes through map memory, so
// that the verifier's states after the loop are alike whatever the iteration it left in.
static __always_inline void copy_request_line(struct conn *conn, struct scratch *scratch, __u32 length) {
  const char *data = scratch->data;
  scratch->line_end = length;
#pragma clang loop unroll(disable)
  for (__u32 base = 0; base < FS_L7_REQUEST_LINE_LEN; base += 8) {
    if (base >= length)
      break;
    __u64 word = *(__u64 *)(data + base);
    __u64 matches = byte_matches(word, '?') | byte_matches(word, '\r') | byte_matches(word, '\n');
    if (matches) {
      // The lowest flagged byte is always a real match (a false flag needs a real one below it).
      scratch->line_end = base + flagged_byte_index(matches & -matches);
      break;
    }
  }
  __u32 line = scratch->line_end;
  if (line > length)
    line = length;
  if (line > FS_L7_REQUEST_LINE_LEN)
    line = FS_L7_REQUEST_LINE_LEN;
  // Copied a word at a time (a copy of `line` bytes is a helper call), the rest of the field only when
  // the line is longer than most: records carry only the first `line` bytes, and the scratch buffer is
  // larger than the field. (A loop that stops at `line` took the verifier past its limit.)
  __u64 *to = (__u64 *)conn->exchange.request_line;
  const __u64 *from = (const __u64 *)data;
#define SHORT_LINE_WORDS 4
#pragma clang loop unroll(full)
  for (int i = 0; i < SHORT_LINE_WORDS; i++)
    to[i] = from[i];
  if (line > 8 * SHORT_LINE_WORDS) {
#pragma clang loop unroll(full)
    for (int i = SHORT_LINE_WORDS; i < FS_L7_REQUEST_LINE_LEN / 8; i++)
      to[i] = from[i];
  }
  conn->exchange.request_line_len = line;
}

// How the body of the response that starts in this write ends, from its status and headers, which must
// all be in the first buffer of the write. What is already written of the body counts.
static __always_inline void read_response_framing(struct conn *conn, struct scratch *scratch, __u32 length,
                                                  struct pending_io *io, long transferred, __u16 status) {
  conn->framing = FRAMING_UNKNOWN;
  // An interim response (100 Continue) or a protocol switch: the exchange ends some other way.
  if (status < 200)
    return;
  struct scan_context context = {
      .scratch = scratch,
      .length = length,
      .headers_end = -1,
      .content_length = -1,
  };
  scan_response_headers(&context);
  if (context.headers_end < 0)
    return;
  __s64 body_written = transferred - context.headers_end;
  if (conn->head_request || status == 204 || status == 304) {
    conn->framing = FRAMING_LENGTH;
    conn->body_remaining = 0;
  } else if (context.chunked) {
    conn->framing = FRAMING_CHUNKED;
    conn->body_remaining = body_written > 0 && ends_with_last_chunk(io, transferred) ? 0 : 1;
  } else if (context.content_length >= 0) {
    __u32 value = skip_blanks(scratch->data, context.content_length, length);
    __s64 declared = parse_length(scratch->data, value, length);
    if (declared < 0)
      return; // malformed, or past what the write's first buffer held
    conn->framing = FRAMING_LENGTH;
    conn->body_remaining = declared - body_written;
  }
}

static __always_inline void begin_exchange(struct conn *conn, struct scratch *scratch, __u64 pid_tgid) {
  struct fs_l7_exchange *exchange = &conn->exchange;
  exchange->pid = pid_tgid >> 32;
  exchange->tid = (__u32)pid_tgid;
  exchange->fd = conn->fd;
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
  random_id(scratch, exchange->span_id, 1);
  __builtin_memset(exchange->parent_span_id, 0, FS_SPAN_ID_LEN);
  conn->state = CONN_REQUEST;
  conn->published = 0;
  conn->framing = FRAMING_UNKNOWN;
  conn->body_remaining = 0;
}

// ---- the exchange state machine, shared by both sets of hooks and the TLS probes ----------------------

// Connections whose messages keep not being HTTP/1.x (databases, TLS without probes, HTTP/2) stop being
// copied and checked on the socket hooks after this many; a tracer started mid-stream still gets a few
// chances to see the next request.
#define NOT_HTTP_LIMIT 8

static __always_inline void count_not_http(struct conn *conn) {
  if (conn->not_http_streak < NOT_HTTP_LIMIT)
    conn->not_http_streak++;
  if (conn->not_http_counted)
    return;
  conn->not_http_counted = 1;
  count(FS_L7_COUNTER_NOT_HTTP);
}

// ---- pipelining and the request-head hooks -----------------------------------------------------------

struct pipeline_key {
  __u64 connection; // the connection's generation (its socket cookie on the socket hooks)
  __u32 sequence;
  __u32 reserved;
};

// Requests read ahead of their responses (pipelining), by connection and order; the connection's
// queue_head/queue_tail say which are its. LRU: a connection that goes away with requests unanswered
// leaves entries that make room for new ones (its close counts them).
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct pipeline_key);
  __type(value, struct fs_l7_exchange);
} l7_pipeline SEC(".maps");

static __always_inline void count_many(__u32 counter, __u64 n) {
  __u64 *value = bpf_map_lookup_elem(&l7_counters, &counter);
  if (value)
    *value += n;
}

// What the head hooks work on: the connection and the read in progress.
struct head_owner {
  struct conn *conn;
  __u64 pid_tgid;
  __u64 buffer; // the read's first buffer in the process
};

// The oldest queued request becomes the connection's exchange, served from now by `pid_tgid`'s thread
// (published) or, at a close, ended unanswered (not published).
static __always_inline void serve_next_queued(struct conn *conn, __u64 pid_tgid, bool publish) {
  if (conn->queue_head == conn->queue_tail || conn->state != CONN_IDLE)
    return;
  struct pipeline_key key = {.connection = conn->generation, .sequence = conn->queue_head};
  conn->queue_head++;
  struct fs_l7_exchange *next = bpf_map_lookup_elem(&l7_pipeline, &key);
  if (!next) {
    count(FS_L7_COUNTER_PIPELINE_OVERFLOW); // evicted from the LRU map
    return;
  }
  __builtin_memcpy(&conn->exchange, next, sizeof(conn->exchange));
  bpf_map_delete_elem(&l7_pipeline, &key);
  conn->state = CONN_REQUEST;
  conn->published = 0;
  conn->framing = FRAMING_UNKNOWN;
  conn->body_remaining = 0;
  conn->head_request = starts_with(conn->exchange.request_line, "HEAD ", 5);
  if (!publish)
    return;
  // Its span starts when the server turns to it, on the thread that does.
  conn->exchange.pid = pid_tgid >> 32;
  conn->exchange.tid = (__u32)pid_tgid;
  conn->exchange.start_ns = bpf_ktime_get_ns();
  publish_span(conn, pid_tgid);
}

// The connection closed: requests it read and never answered are counted, not followed.
static __always_inline void forget_queued(struct conn *conn) {
  __u32 unanswered = conn->queue_tail - conn->queue_head;
  if (!unanswered)
    return;
  conn->queue_head = conn->queue_tail;
  count_many(FS_L7_COUNTER_PIPELINE_OVERFLOW, unanswered);
}

static __always_inline bool newest_is_queued(struct conn *conn) { return conn->queue_head != conn->queue_tail; }

static __always_inline struct fs_l7_exchange *newest_queued(struct conn *conn) {
  struct pipeline_key key = {.connection = conn->generation, .sequence = conn->queue_tail - 1};
  return bpf_map_lookup_elem(&l7_pipeline, &key);
}

static __always_inline int head_on_begin(struct head_parse *p, __u32 at) {
  struct head_owner *owner = p->owner;
  struct conn *conn = owner->conn;
  struct scratch *scratch = p->scratch;
  __u64 pid_tgid = owner->pid_tgid;
  // Whoever reads a request serves it. (A response of unknown length was ended before the parse, by
  // end_unframed_response.)
  conn->role = FS_L7_ROLE_SERVER;
  conn->not_http_streak = 0;
  if (conn->state == CONN_IDLE) {
    // start_ns is taken before the span is published: no sample can carry it earlier.
    begin_exchange(conn, scratch, pid_tgid);
    random_id(scratch, conn->exchange.trace_id, 2);
    conn->exchange.bytes_in = p->pos->transferred - (p->pos->offset - p->pos->length) - at;
    conn->head_request = 0;
    publish_span(conn, pid_tgid);
    return 1;
  }
  // Pipelined: the connection owes earlier responses. The request waits its turn in l7_pipeline.
  if (conn->queue_tail - conn->queue_head >= PIPELINE_DEPTH) {
    count(FS_L7_COUNTER_PIPELINE_OVERFLOW);
    return 0;
  }
  struct fs_l7_exchange *exchange = &scratch->building;
  __builtin_memcpy(exchange, &conn->exchange, offsetof(struct fs_l7_exchange, request_line));
  exchange->flags = 0;
  exchange->start_ns = bpf_ktime_get_ns();
  exchange->end_ns = 0;
  exchange->bytes_in = 0;
  exchange->bytes_out = 0;
  exchange->status = 0;
  exchange->end_reason = 0;
  exchange->request_line_len = 0;
  random_id(scratch, exchange->trace_id, 2);
  random_id(scratch, exchange->span_id, 1);
  __builtin_memset(exchange->parent_span_id, 0, FS_SPAN_ID_LEN);
  struct pipeline_key key = {.connection = conn->generation, .sequence = conn->queue_tail};
  if (bpf_map_update_elem(&l7_pipeline, &key, exchange, BPF_ANY) != 0) {
    count(FS_L7_COUNTER_PIPELINE_OVERFLOW);
    return 0;
  }
  conn->queue_tail++;
  return 1;
}

// Copied a word at a time (a copy of `length` bytes is a helper call), the rest of the field only when
// the line is longer than most: records carry only the first `length` bytes.
static __always_inline void copy_line_words(char *to_bytes, const char *from_bytes, __u32 length) {
  __u64 *to = (__u64 *)to_bytes;
  const __u64 *from = (const __u64 *)from_bytes;
#define SHORT_LINE_WORDS 4
#pragma clang loop unroll(full)
  for (int i = 0; i < SHORT_LINE_WORDS; i++)
    to[i] = from[i];
  if (length > 8 * SHORT_LINE_WORDS) {
#pragma clang loop unroll(full)
    for (int i = SHORT_LINE_WORDS; i < FS_L7_REQUEST_LINE_LEN / 8; i++)
      to[i] = from[i];
  }
}

static __always_inline void head_on_line(struct head_parse *p, __u32 at, __u32 length, bool cut) {
  struct conn *conn = p->owner->conn;
  const char *line = p->scratch->data + (at & BUF_MASK);
  if (length > FS_L7_REQUEST_LINE_LEN)
    length = FS_L7_REQUEST_LINE_LEN;
  if (!newest_is_queued(conn)) {
    copy_line_words(conn->exchange.request_line, line, length);
    conn->exchange.request_line_len = length;
    conn->head_request = starts_with(line, "HEAD ", 5);
    return;
  }
  struct fs_l7_exchange *queued = newest_queued(conn);
  if (!queued)
    return;
  copy_line_words(queued->request_line, line, length);
  queued->request_line_len = length;
}

static __always_inline void take_traceparent(struct fs_l7_exchange *exchange, int result,
                                             struct fs_span_context *ids) {
  if (result < 0) {
    exchange->flags |= FS_L7_FLAG_TRACEPARENT_INVALID;
    return;
  }
  __builtin_memcpy(exchange->trace_id, ids->trace_id, FS_TRACE_ID_LEN);
  __builtin_memcpy(exchange->parent_span_id, ids->span_id, FS_SPAN_ID_LEN);
  exchange->flags |= FS_L7_FLAG_TRACEPARENT_HEADER | FS_L7_FLAG_HAS_PARENT;
}

static __always_inline void head_on_traceparent(struct head_parse *p, int result, struct fs_span_context *ids) {
  struct conn *conn = p->owner->conn;
  if (result < 0)
    count(FS_L7_COUNTER_BAD_TRACEPARENT);
  if (!newest_is_queued(conn)) {
    take_traceparent(&conn->exchange, result, ids);
    // The span went out with a fresh trace id when the request began: now it has the caller's.
    if (result > 0 && conn->published)
      publish_span(conn, p->owner->pid_tgid);
    return;
  }
  struct fs_l7_exchange *queued = newest_queued(conn);
  if (queued)
    take_traceparent(queued, result, ids);
}

static __always_inline void head_on_end(struct head_parse *p, __u32 at, __u32 end) {
  struct conn *conn = p->owner->conn;
  if (!newest_is_queued(conn))
    return;
  struct fs_l7_exchange *queued = newest_queued(conn);
  if (queued)
    queued->bytes_in = end - at;
}

static __always_inline void head_on_other(struct head_parse *p, __u32 at) {
  struct conn *conn = p->owner->conn;
  // Bytes after a head that start no request are its body (counted in bytes_in); on an idle connection
  // the stream is not HTTP/1.x.
  if (at == 0 && conn->state == CONN_IDLE)
    count_not_http(conn);
}

static __always_inline void head_count(struct head_parse *p, __u32 counter) { count(counter); }

static __always_inline int head_copy(struct head_parse *p, char *to, __u32 offset, __u32 length) {
  return bpf_probe_read_user(to, length, (void *)(p->owner->buffer + offset)) == 0;
}

// The server starts answering the request it is serving: a head given up on (past HEAD_LIMIT, a chunked
// body) is over, and the parse waits for the next request.
static __always_inline void head_response_started(struct conn *conn) {
  struct head_state *head = &conn->head;
  if (newest_is_queued(conn) || (head->phase == HEAD_IDLE && head->body_skip != BODY_UNKNOWN))
    return;
  head->phase = HEAD_IDLE;
  head->body_skip = 0;
  head->carry_len = 0;
  head->line_start = 1;
}

// A response whose end its framing did not give (close-delimited, an interim 1xx, headers not seen
// whole) ends when the next request arrives: a read that starts with one. Done here, before the parse,
// rather than in head_on_begin, whose paths the verifier would follow inside every path of the parse.
static __always_inline void end_unframed_response(struct conn *conn, struct head_state *head, __u64 buffer,
                                                  long transferred, __u64 pid_tgid) {
  if (head->phase != HEAD_IDLE || head->body_skip || head->carry_len)
    return;
  char first[8] = {};
  __u32 length = transferred < 8 ? transferred : 8;
  if (bpf_probe_read_user(first, length & 15, (void *)buffer) != 0 || request_start_kind(first, length) <= 0)
    return;
  finish_exchange(conn, FS_L7_END_NEXT_REQUEST, 0);
  serve_next_queued(conn, pid_tgid, true);
}

// Does a server-side read need its bytes? Not while it is all request body of a known length.
static __always_inline bool server_read_wants_bytes(struct conn *conn, long transferred) {
  struct head_state *head = &conn->head;
  if (head->phase == HEAD_OVERFLOW || head->body_skip == BODY_UNKNOWN)
    return false;
  return head->body_skip < (__u64)transferred;
}

static __always_inline void process_read(struct conn *conn, struct pending_io io, long transferred,
                                         __u64 pid_tgid) {
  __u32 zero = 0;
  struct scratch *scratch = bpf_map_lookup_elem(&l7_scratch, &zero);
  if (!scratch)
    return;

  if (conn->role == FS_L7_ROLE_SERVER || conn->role == 0) {
    if (conn->state != CONN_IDLE)
      conn->exchange.bytes_in += transferred; // more of the request, or read ahead of its response
    struct head_state *head = &conn->head;
    if (!server_read_wants_bytes(conn, transferred)) {
      if (head->body_skip != BODY_UNKNOWN && head->phase != HEAD_OVERFLOW)
        head->body_skip -= transferred;
      return;
    }
    __u64 buffer = first_buffer(&io, &transferred);
    if (!buffer || transferred <= 0)
      return;
    if (conn->state == CONN_RESPONSE)
      end_unframed_response(conn, head, buffer, transferred, pid_tgid);
    struct head_owner owner = {.conn = conn, .pid_tgid = pid_tgid, .buffer = buffer};
    struct head_parse parse = {.scratch = scratch, .state = head, .owner = &owner, .pos = &scratch->position};
    head_read(&parse, transferred);
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

static __always_inline void process_write(struct conn *conn, struct pending_io io, long transferred,
                                          __u64 pid_tgid) {

  if (conn->role == FS_L7_ROLE_SERVER) {
    if (conn->state == CONN_IDLE)
      return;
    if (benchmark_stop == 6) {
      // The response is not looked at and the exchange is dropped: the next request starts a new one.
      conn->state = CONN_IDLE;
      return;
    }
    conn->exchange.bytes_out += transferred;
    if (conn->state == CONN_REQUEST) {
      conn->state = CONN_RESPONSE;
      head_response_started(conn);
      conn->framing = FRAMING_UNKNOWN;
      __u32 zero = 0;
      struct scratch *scratch = bpf_map_lookup_elem(&l7_scratch, &zero);
      if (scratch && io.indirection < 3) {
        __u32 length = copy_payload(scratch, &io, transferred);
        __u16 status = length >= 12 ? response_status(scratch->data) : 0;
        if (benchmark_stop == 9) {
          conn->exchange.status = status;
          conn->state = CONN_IDLE; // no framing, no end
          return;
        }
        if (status) {
          conn->exchange.status = status;
          conn->exchange.flags |= FS_L7_FLAG_RESPONSE_SEEN;
          read_response_framing(conn, scratch, length, &io, transferred, status);
        }
      }
    } else if (conn->framing == FRAMING_LENGTH) {
      conn->body_remaining -= transferred;
    } else if (conn->framing == FRAMING_CHUNKED && ends_with_last_chunk(&io, transferred)) {
      conn->body_remaining = 0;
    }
    // The whole response is out: the span ends here, not when the server next reads.
    if (conn->framing != FRAMING_UNKNOWN && conn->body_remaining <= 0) {
      if (benchmark_stop == 7) {
        conn->state = CONN_IDLE; // no withdrawal, no end time, no record
        return;
      }
      finish_exchange(conn, FS_L7_END_COMPLETE, 0);
      serve_next_queued(conn, pid_tgid, true);
    }
    return;
  }

  // Client: a request goes out.
  if (conn->role == FS_L7_ROLE_CLIENT && conn->state == CONN_REQUEST) {
    conn->exchange.bytes_out += transferred;
    return;
  }
  __u32 zero = 0;
  struct scratch *scratch = bpf_map_lookup_elem(&l7_scratch, &zero);
  if (!scratch || io.indirection >= 3)
    return;
  __u32 length = copy_payload(scratch, &io, transferred);
  if (length < 4)
    return;
  if (!is_request_start(scratch->data)) {
    if (conn->role == 0 && conn->state == CONN_IDLE)
      count_not_http(conn);
    return;
  }
  // Whoever writes a request is the client.
  conn->role = FS_L7_ROLE_CLIENT;
  conn->not_http_streak = 0;
  finish_exchange(conn, FS_L7_END_NEXT_REQUEST, conn->exchange.end_ns);
  begin_exchange(conn, scratch, pid_tgid);
  // A client request made while the thread serves a span is that span's child.
  struct fs_span_context *serving = bpf_map_lookup_elem(&traces_ctx_v1, &pid_tgid);
  if (serving && *(__u64 *)serving->span_id) {
    __builtin_memcpy(conn->exchange.trace_id, serving->trace_id, FS_TRACE_ID_LEN);
    __builtin_memcpy(conn->exchange.parent_span_id, serving->span_id, FS_SPAN_ID_LEN);
    conn->exchange.flags |= FS_L7_FLAG_HAS_PARENT;
  } else {
    random_id(scratch, conn->exchange.trace_id, 2);
  }
  conn->exchange.bytes_out = transferred;
  copy_request_line(conn, scratch, length);
}

// Inside an SSL_read/SSL_write the bytes on the socket are ciphertext: the uprobes handle the plaintext.
// Notes the connection of the call in flight; returns whether there is one.
static __always_inline bool note_tls_connection(__u64 pid_tgid, __u64 connection) {
  if (!tls_calls_seen)
    return false;
  struct tls_call *call = bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid);
  if (!call)
    return false;
  if (!call->has_connection) {
    call->connection = connection;
    call->has_connection = 1;
    bpf_map_update_elem(&l7_tls_sockets, &call->ssl, &connection, BPF_ANY);
  }
  return true;
}

static __always_inline void close_connection(__u64 connection) {
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &connection);
  if (!conn)
    return;
  finish_exchange(conn, FS_L7_END_CLOSE, conn->exchange.end_ns);
  forget_queued(conn);
  bpf_map_delete_elem(&l7_connections, &connection);
}

// A new connection record: role 0 (socket hooks learn it from the first request) or the role accept or
// connect gave it.
static __always_inline struct conn *connection_template(int fd, __u8 role, __u64 generation, struct sock *sk) {
  __u32 zero = 0;
  struct conn *conn = bpf_map_lookup_elem(&l7_conn_template, &zero);
  if (!conn)
    return NULL;
  __builtin_memset(conn, 0, sizeof(*conn));
  conn->generation = generation;
  conn->role = role;
  conn->fd = fd;
  if (sk)
    read_socket_addresses(conn, sk);
  return conn;
}

static __always_inline struct conn *new_connection(__u64 connection, int fd, __u8 role, __u64 generation,
                                                   struct sock *sk) {
  struct conn *conn = connection_template(fd, role, generation, sk);
  if (!conn)
    return NULL;
  if (bpf_map_update_elem(&l7_connections, &connection, conn, BPF_ANY) != 0) {
    count(FS_L7_COUNTER_CONN_MAP_FULL);
    return NULL;
  }
  return bpf_map_lookup_elem(&l7_connections, &connection);
}

// ---- socket hooks (default) ------------------------------------------------------------------------

// The syscall a socket I/O came from, read from the task's saved user registers (x86-64 numbers and
// argument registers). Returns false for I/O that did not come straight from one we understand, such as
// io_uring workers and kernel sockets.
static __always_inline bool socket_syscall(struct task_struct *task, struct pending_io *io, bool receiving) {
  struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
  long number = regs->orig_ax;
  io->fd = regs->di;
  io->buffer = regs->si;
  io->count = regs->dx;
  if (receiving) {
    switch (number) {
    case 0:  // read
    case 45: // recvfrom
      io->indirection = 0;
      return true;
    case 19: // readv
      io->indirection = 1;
      return true;
    case 47: // recvmsg
      io->indirection = 2;
      return true;
    }
    return false;
  }
  switch (number) {
  case 1:  // write
  case 44: // sendto
    io->indirection = 0;
    return true;
  case 20: // writev
    io->indirection = 1;
    return true;
  case 46: // sendmsg
    io->indirection = 2;
    return true;
  case 40: // sendfile: bytes only, the fd is the first argument
    io->indirection = 3;
    return true;
  case 275: // splice: bytes only, the socket is fd_out
    io->fd = regs->dx;
    io->indirection = 3;
    return true;
  }
  return false;
}

// Is the socket one the tracer follows: TCP over IPv4 or IPv6? Sets its cookie, which names its
// connection and tells reused sockets apart.
static __always_inline bool tcp_socket(struct sock *sk, __u64 *connection) {
  if (sk->sk_protocol != IPPROTO_TCP)
    return false;
  __u16 family = sk->__sk_common.skc_family;
  if (family != AF_INET && family != AF_INET6)
    return false;
  // A socket seen before has its cookie: reading it spares a helper call, dear on this kind of machine.
  *connection = sk->__sk_common.skc_cookie.counter;
  if (!*connection)
    *connection = bpf_get_socket_cookie(sk);
  return true;
}

// Does the state machine look at this I/O's bytes, or only count them? Mirrors process_read and
// process_write. Only then is the syscall's buffer fetched: a body write or read needs neither.
static __always_inline bool needs_payload(struct conn *conn, bool receiving, long transferred) {
  if (receiving) {
    if (conn->role == FS_L7_ROLE_CLIENT)
      return conn->state == CONN_REQUEST;
    return server_read_wants_bytes(conn, transferred);
  }
  if (conn->role == FS_L7_ROLE_SERVER)
    return conn->state == CONN_REQUEST || (conn->state == CONN_RESPONSE && conn->framing == FRAMING_CHUNKED);
  return conn->role != FS_L7_ROLE_CLIENT || conn->state != CONN_REQUEST;
}

// Socket I/O inside an SSL call: the bytes are ciphertext, and the uprobes handle the plaintext through
// the connection's entry in l7_connections, created here if need be.
static __always_inline void tls_socket_io(struct task_struct *task, struct sock *sk, __u64 pid_tgid,
                                          __u64 connection, bool receiving) {
  if (!bpf_map_lookup_elem(&l7_connections, &connection)) {
    struct pending_io io = {};
    if (!socket_syscall(task, &io, receiving) || !new_connection(connection, io.fd, 0, connection, sk))
      return;
  }
  note_tls_connection(pid_tgid, connection);
}

static __always_inline void socket_io(struct sock *sk, int transferred, int flags, bool receiving) {
  if (transferred < 0 || (flags & MSG_PEEK))
    return;
  // The task's ids rather than bpf_get_current_pid_tgid: the JIT inlines bpf_get_current_task_btf into one
  // load, where the other is a call on every socket I/O of the machine.
  struct task_struct *task = bpf_get_current_task_btf();
  __u64 pid_tgid = ((__u64)task->tgid << 32) | (__u32)task->pid;
  if (!is_target(pid_tgid >> 32) || benchmark_stop == 1)
    return;
  __u64 connection = 0;
  if (!tcp_socket(sk, &connection))
    return;
  if (tls_calls_seen && bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid)) {
    tls_socket_io(task, sk, pid_tgid, connection, receiving);
    return;
  }
  struct pending_io io = {.indirection = 3}; // no payload
  if (benchmark_stop == 8)
    return;
  struct conn *conn = bpf_sk_storage_get(&l7_socket_conns, sk, 0, 0);
  if (!conn) {
    if (!socket_syscall(task, &io, receiving))
      return;
    struct conn *template = connection_template(io.fd, 0, connection, sk);
    if (!template)
      return;
    conn = bpf_sk_storage_get(&l7_socket_conns, sk, template, BPF_SK_STORAGE_GET_F_CREATE);
    if (!conn) {
      count(FS_L7_COUNTER_CONN_MAP_FULL);
      return;
    }
  } else if (needs_payload(conn, receiving, transferred)) {
    if (!socket_syscall(task, &io, receiving))
      return;
    conn->fd = io.fd; // the same socket may be reached through a dup'ed fd
  } else {
    io.fd = conn->fd;
  }
  if (conn->not_http_streak >= NOT_HTTP_LIMIT)
    return;
  if (benchmark_stop == 3)
    return;
  if (benchmark_stop == 4) {
    socket_syscall(task, &io, receiving);
    return;
  }
  if (benchmark_stop == 2 || benchmark_stop == 5) {
    // The connection stays unknown (role 0), so every I/O on it fetches its registers and copies its bytes.
    __u32 zero = 0;
    struct scratch *scratch = bpf_map_lookup_elem(&l7_scratch, &zero);
    if (scratch && benchmark_stop == 2)
      copy_payload(scratch, &io, transferred);
    else if (scratch)
      copy_from_kernel_instead(scratch, &io, transferred, task);
    return;
  }
  if (transferred == 0) {
    // The peer closed: whatever was in progress ends now.
    if (receiving) {
      finish_exchange(conn, FS_L7_END_CLOSE, conn->exchange.end_ns);
      forget_queued(conn);
    }
    return;
  }
  if (receiving)
    process_read(conn, io, transferred, pid_tgid);
  else
    process_write(conn, io, transferred, pid_tgid);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(socket_received, struct sock *sk, int transferred, int flags) {
  socket_io(sk, transferred, flags, true);
  return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(socket_sent, struct sock *sk, int transferred, int flags) {
  socket_io(sk, transferred, flags, false);
  return 0;
}

// close() and shutdown() move a socket to FIN_WAIT1 or LAST_ACK in the closing thread; resets and
// timeouts move it to CLOSE. Any of them ends the connection's exchange. Sockets never given a cookie were
// never tracked, and are skipped without giving them one.
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(socket_state_changed, const struct sock *sk, const int old_state, const int new_state) {
  if (new_state != TCP_FIN_WAIT1 && new_state != TCP_LAST_ACK && new_state != TCP_CLOSE)
    return 0;
  struct conn *conn = bpf_sk_storage_get(&l7_socket_conns, (struct sock *)sk, 0, 0);
  if (conn) {
    finish_exchange(conn, FS_L7_END_CLOSE, conn->exchange.end_ns);
    forget_queued(conn);
  }
  // Connections of the syscall hooks and TLS connections live in l7_connections, by cookie.
  __u64 connection = sk->__sk_common.skc_cookie.counter;
  if (connection)
    close_connection(connection);
  return 0;
}

// ---- syscall hooks (fallback) ------------------------------------------------------------------------

static __always_inline void track_connection(int fd, __u8 role) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 tgid = pid_tgid >> 32;
  if (fd < 0 || !is_target(tgid))
    return;
  __u64 connection = fd_connection(tgid, fd);
  struct conn *old = bpf_map_lookup_elem(&l7_connections, &connection);
  if (old) {
    finish_exchange(old, FS_L7_END_REPLACED, 0);
    forget_queued(old);
  }
  new_connection(connection, fd, role, bpf_ktime_get_ns(), socket_of_fd(fd));
}

// Remembers the buffer of a read or write on a tracked connection until the syscall returns. A server
// that goes back to reading a connection has finished answering on it: the exchange ends now, before the
// thread blocks, so its idle time and unrelated work do not count.
static __always_inline void before_io(int fd, __u64 buffer, __u64 count, __u8 indirection, bool reading) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 tgid = pid_tgid >> 32;
  if (!is_target(tgid))
    return;
  __u64 connection = fd_connection(tgid, fd);
  note_tls_connection(pid_tgid, connection);
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &connection);
  if (!conn)
    return;
  if (reading && conn->role == FS_L7_ROLE_SERVER && conn->state == CONN_RESPONSE) {
    finish_exchange(conn, FS_L7_END_NEXT_READ, 0);
    serve_next_queued(conn, pid_tgid, true);
  }
  struct pending_io io = {.buffer = buffer, .fd = fd, .indirection = indirection, .count = count};
  bpf_map_update_elem(&l7_pending, &pid_tgid, &io, BPF_ANY);
}

static __always_inline void after_io(long transferred, bool reading) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct pending_io *pending = bpf_map_lookup_elem(&l7_pending, &pid_tgid);
  if (!pending)
    return;
  struct pending_io io = *pending;
  bpf_map_delete_elem(&l7_pending, &pid_tgid);
  if (transferred <= 0 || (tls_calls_seen && bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid)))
    return;
  __u64 connection = fd_connection(pid_tgid >> 32, io.fd);
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &connection);
  if (!conn)
    return;
  if (reading)
    process_read(conn, io, transferred, pid_tgid);
  else
    process_write(conn, io, transferred, pid_tgid);
}

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

// One enter/exit pair per hooked syscall: (name, indirection, reading).
#define IO_SYSCALL(name, indirection, reading)                                                             \
  SEC("tracepoint/syscalls/sys_enter_" #name)                                                            \
  int enter_##name(struct trace_event_raw_sys_enter *ctx) {                                              \
    before_io(ARG(ctx, 0), indirection == 3 ? 0 : ARG(ctx, 1), ARG(ctx, 2), indirection, reading);       \
    return 0;                                                                                            \
  }                                                                                                      \
  SEC("tracepoint/syscalls/sys_exit_" #name)                                                             \
  int exit_##name(struct trace_event_raw_sys_exit *ctx) {                                                \
    after_io(ctx->ret, reading);                                                                         \
    return 0;                                                                                            \
  }

IO_SYSCALL(read, 0, true)
IO_SYSCALL(readv, 1, true)
IO_SYSCALL(recvfrom, 0, true)
IO_SYSCALL(recvmsg, 2, true)
IO_SYSCALL(write, 0, false)
IO_SYSCALL(writev, 1, false)
IO_SYSCALL(sendto, 0, false)
IO_SYSCALL(sendmsg, 2, false)
// nginx sends file bodies with sendfile: bytes only, no payload to look at.
IO_SYSCALL(sendfile64, 3, false)

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  close_connection(fd_connection(pid_tgid >> 32, ARG(ctx, 0)));
  return 0;
}

// ---- TLS: OpenSSL/BoringSSL plaintext, attached per library by user space ------------------------------

static __always_inline void tls_enter(__u64 ssl, __u64 buffer, __u64 transferred_out, __u8 writing) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if (!is_target(pid_tgid >> 32))
    return;
  struct tls_call call = {.ssl = ssl, .buffer = buffer, .transferred_out = transferred_out, .writing = writing};
  bpf_map_update_elem(&l7_tls_calls, &pid_tgid, &call, BPF_ANY);
  if (!tls_calls_seen)
    tls_calls_seen = 1;
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
  if (!call.has_connection) {
    __u64 *known = bpf_map_lookup_elem(&l7_tls_sockets, &call.ssl);
    if (!known)
      return;
    call.connection = *known;
  }
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &call.connection);
  if (!conn)
    return;
  struct pending_io io = {.buffer = call.buffer, .fd = conn->fd, .indirection = 0};
  if (call.writing) {
    process_write(conn, io, transferred, pid_tgid);
  } else {
    // A server reading again has answered (the nested read may not have happened: buffered data).
    if (conn->role == FS_L7_ROLE_SERVER && conn->state == CONN_RESPONSE) {
      finish_exchange(conn, FS_L7_END_NEXT_READ, 0);
      serve_next_queued(conn, pid_tgid, true);
    }
    process_read(conn, io, transferred, pid_tgid);
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
  __u32 child_pid = child->tgid;
  if (child_pid == parent_pid || !is_target(parent_pid))
    return 0;
  __u64 *word = target_word(child_pid);
  if (!word) {
    count(FS_L7_COUNTER_TARGETS_FULL); // a pid past PID_LIMIT
    return 0;
  }
  __atomic_fetch_or(word, 1ULL << (child_pid % 64), __ATOMIC_RELAXED);
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
  if ((__u32)pid_tgid == pid && filter_by_pid) {
    __u64 *word = target_word(pid);
    if (word)
      __atomic_fetch_and(word, ~(1ULL << (pid % 64)), __ATOMIC_RELAXED);
  }
  return 0;
}
