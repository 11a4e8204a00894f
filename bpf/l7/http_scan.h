// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// Payload inspection: a response's status line and framing headers, and a client's request line.
// Compiled for the host too (bpf/host/l7_response_scan_test.c), with bpf_loop and bpf_probe_read_user
// shimmed: it uses no kernel type.
#ifndef FLAMESPAN_L7_HTTP_SCAN_H
#define FLAMESPAN_L7_HTTP_SCAN_H

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
  // Bare LF line endings: the blank line may be the write's last byte.
  if (name + 1 <= context->length && data[name] == '\n') {
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

// Copied a word at a time (a copy of `length` bytes is a helper call), the rest of the field only when
// the line is longer than most: records carry only the first `length` bytes, and the buffer copied from
// is larger than the field. (A loop that stops at `length` took the verifier past its limit.)
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

// A client's request line up to the first '?', CR or LF, a word at a time. The end goes through map
// memory, so that the verifier's states after the loop are alike whatever the iteration it left in.
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
  // copy_line_words, spelled out: through it, clang keeps one more instruction on the write paths.
  __u64 *to = (__u64 *)conn->exchange.request_line;
  const __u64 *from = (const __u64 *)data;
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

#endif
