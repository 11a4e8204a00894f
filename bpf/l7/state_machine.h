// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// The exchange state machine, shared by both sets of hooks and the TLS probes: what one read or write
// does to a connection's exchange.
#ifndef FLAMESPAN_L7_STATE_MACHINE_H
#define FLAMESPAN_L7_STATE_MACHINE_H

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
    if (BENCH_STOP(STOP_AFTER_REQUEST)) {
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
        if (BENCH_STOP(STOP_AFTER_STATUS)) {
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
      if (BENCH_STOP(STOP_AFTER_RESPONSE)) {
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

#endif
