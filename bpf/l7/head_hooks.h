// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// The hooks of l7_head.h: what the request-head parser's findings do to a server's exchange.
#ifndef FLAMESPAN_L7_HEAD_HOOKS_H
#define FLAMESPAN_L7_HEAD_HOOKS_H

// What the head hooks work on: the connection and the read in progress.
struct head_owner {
  struct conn *conn;
  __u64 pid_tgid;
  __u64 buffer; // the read's first buffer in the process
};

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

#endif
