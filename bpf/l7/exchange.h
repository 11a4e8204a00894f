// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// An exchange's ids, start and end, and the span the sampler reads while it is served.
#ifndef FLAMESPAN_L7_EXCHANGE_H
#define FLAMESPAN_L7_EXCHANGE_H

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

// Span publication.

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
  if (BENCH_STOP(STOP_AFTER_WITHDRAW) || BENCH_STOP(STOP_AFTER_CLOCK)) {
    if (BENCH_STOP(STOP_AFTER_CLOCK))
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


static __always_inline void count_not_http(struct conn *conn) {
  if (conn->not_http_streak < NOT_HTTP_LIMIT)
    conn->not_http_streak++;
  if (conn->not_http_counted)
    return;
  conn->not_http_counted = 1;
  count(FS_L7_COUNTER_NOT_HTTP);
}

#endif
