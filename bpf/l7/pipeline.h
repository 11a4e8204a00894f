// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// Pipelining: requests read ahead of their responses wait in l7_pipeline.
#ifndef FLAMESPAN_L7_PIPELINE_H
#define FLAMESPAN_L7_PIPELINE_H

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

#endif
