// SPDX-License-Identifier: GPL-2.0
// The HTTP/1.x request-head parser of the L7 tracer, shared by bpf/l7.bpf.c and a host build
// (bpf/host/l7_head_test.c, run by Tests/FlamespanBPFTests/L7HostTests): the same C walks the
// same bytes in the kernel and in the unit tests.
//
// A connection's request bytes are a stream that arrives in reads of any size. The parser takes it one
// buffer at a time: what it kept of the previous buffer (the carry, at most HEAD_CARRY bytes: the request
// line so far, or the header line so far) followed by up to SCAN_BYTES new bytes. It finds, in order:
// - the start of each request (a method and a space), even when the method arrives a byte at a time;
// - the request line up to '?', CR or LF, assembled over as many reads as it takes, cut at
//   FS_L7_REQUEST_LINE_LEN bytes (counted);
// - `traceparent`, `content-length` and `transfer-encoding` anywhere in the first HEAD_LIMIT bytes of the
//   head, split across reads or not (a head longer than that is counted, and looked at no further);
// - the blank line that ends the head, after which the next pipelined request may start at once, or after
//   the body its Content-Length announces.
// It stops at the blank line: bodies are never read, and a read is looked at only as far as heads go.
//
// The includer defines, before including this file: the integer types (__u8 … __s64), bool, bpf_loop
// (the host build loops in C), `struct head_owner` (what the hooks need) and these hooks:
//   static int  head_on_begin(struct head_parse *p, __u32 at);  a request starts at `at`; 0 refuses it
//   static void head_on_line(struct head_parse *p, __u32 at, __u32 length, bool cut);
//   static void head_on_traceparent(struct head_parse *p, int result, struct fs_span_context *ids);
//   static void head_on_end(struct head_parse *p, __u32 at, __u32 end);  the head [at, end) is complete
//   static void head_on_other(struct head_parse *p, __u32 at);  bytes at `at` that do not start a request
//   static void head_count(struct head_parse *p, __u32 counter);  an fs_l7_counter
//   static int  head_copy(struct head_parse *p, char *to, __u32 offset, __u32 length);  copies bytes
//               [offset, offset + length) of the read being parsed; 0 when they cannot be read
// The hooks are declared below and defined by the includer after this file.
#ifndef FLAMESPAN_L7_HEAD_H
#define FLAMESPAN_L7_HEAD_H

#include "flamespan_l7_abi.h"

// New bytes looked at per step: a read longer than this is taken in several steps, as far as heads go.
#define SCAN_BYTES 1024
// Bytes kept per connection between steps and reads: a request line or a header line not yet complete.
// A traceparent line needs 12 + 4 + 56 bytes of it, a request line FS_L7_REQUEST_LINE_LEN.
#define HEAD_CARRY 128
// The documented bound on a request head: traceparent (and the head's end) are looked for in its first
// HEAD_LIMIT bytes, however many reads bring them. A head that does not end within them is counted
// (FS_L7_COUNTER_HEAD_TOO_LONG) and its remaining bytes are not looked at.
#define HEAD_LIMIT 8192
// Steps per read: a read can hold many pipelined heads. What is past them is counted.
#define READ_STEPS 64
// Requests a connection may have read but not yet answered (pipelining); past that they are counted.
#define PIPELINE_DEPTH 128

// The step buffer: carry + new bytes, at most HEAD_CARRY + SCAN_BYTES, in a power of two for masking.
#define BUF_BYTES 2048
#define BUF_MASK (BUF_BYTES - 1)
#define BUF_WORDS (BUF_BYTES / 8)
// Room past BUF_BYTES so that fixed-size peeks after a masked index stay inside the buffer.
#define BUF_SLACK 256
// Kept for the response and client paths, which look at the first SCAN_BYTES of one write or read.
#define SCAN_MASK BUF_MASK

// "traceparent:" then optional blanks then "00-" + 32 + "-" + 16 + "-" + 2.
#define TRACEPARENT_NAME_LEN 12
#define TRACEPARENT_VALUE_LEN 55

enum head_phase {
  HEAD_IDLE = 0,     // between requests: the next bytes should start one
  HEAD_LINE = 1,     // a request started; its line is not complete (the carry holds it from its start)
  HEAD_FIELDS = 2,   // in the header fields
  HEAD_OVERFLOW = 3, // the head passed HEAD_LIMIT (counted): bytes only until the response
};

enum head_flags {
  HEAD_TRACEPARENT_DONE = 1, // this head's traceparent was taken (or rejected)
  HEAD_CHUNKED = 2,          // this head has Transfer-Encoding: its body's end is not known here
  HEAD_DROPPED = 4,          // this request was refused by head_on_begin (counted there)
};

#define BODY_UNKNOWN 0xffffffffffffffffULL

// Per connection, kept between reads.
struct head_state {
  __u64 body_skip;    // request body bytes still to come before the next request (BODY_UNKNOWN: chunked)
  __s64 content_length; // this head's Content-Length, or -1
  __u32 head_bytes;   // bytes of the current head before this step's buffer
  __u8 phase;         // enum head_phase
  __u8 line_start;    // the next new byte starts a line (when the carry is empty)
  __u8 carry_len;
  __u8 flags;         // enum head_flags
  char carry[HEAD_CARRY];
};

// Where the parse of a read is. It lives in map memory (the per-CPU scratch), whose values the verifier
// does not track: on the stack, every combination of these flags was a separate state, and the tracer
// took the verifier past its million instructions.
struct head_position {
  __u32 length; // bytes in scratch->data: carry, then new bytes
  __u32 start;  // where the current request's head starts in the buffer (0 when it started before)
  __u32 offset;      // bytes of the read taken so far
  __u32 transferred; // bytes in the read
  __u8 stop;    // the rest of the step's bytes are not heads (a body of unknown length, not HTTP, too long)
  __u8 more;    // the step ended inside a head or between requests: the read's next bytes are wanted
  __u8 line_start; // the buffer starts a header line
  __u8 walk;       // unused
  __u8 result;     // what head_on_begin returned
  __u8 pending_request; // the second pass starts (or resumes) the request at `at` before its next line
  __u8 check_zero;      // the second pass looks at the line at 0 before its candidates
  __u8 reserved;
  __u32 at;        // a callback's argument
};

struct scratch {
  char data[BUF_BYTES + BUF_SLACK];
  // The line feeds a header scan's first pass found worth a look: the offset of each word that has one,
  // and a mask of them (bit 7 of their bytes).
  __u32 candidate_words[BUF_WORDS];
  __u64 candidate_masks[BUF_WORDS];
  // The scan's positions live in map memory, whose values the verifier does not track: kept on the stack,
  // every step's exact position was a new verifier state, and loading took seconds.
  __u32 candidate_count;
  __u32 cursor;
  __u32 line_end; // copy_request_line's result
  __u32 reserved;
  __u64 random_state; // next_random's splitmix64 state
  struct fs_l7_exchange building; // a pipelined request's exchange before it is queued
  struct head_position position;
};

// One parse: pointers only, on the caller's stack (bpf_loop hands callbacks a stack pointer).
struct head_parse {
  struct scratch *scratch;
  struct head_state *state;
  struct head_owner *owner;
  struct head_position *pos;
};

static int head_on_begin(struct head_parse *p, __u32 at);
static int head_copy(struct head_parse *p, char *to, __u32 offset, __u32 length);
static void head_on_line(struct head_parse *p, __u32 at, __u32 length, bool cut);
static void head_on_traceparent(struct head_parse *p, int result, struct fs_span_context *ids);
static void head_on_end(struct head_parse *p, __u32 at, __u32 end);
static void head_on_other(struct head_parse *p, __u32 at);
static void head_count(struct head_parse *p, __u32 counter);

// ---- bytes -------------------------------------------------------------------------------------------

static __always_inline __u64 load_word(const char *data) {
  __u64 word;
  __builtin_memcpy(&word, data, 8);
  return word;
}

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

// The first up-to-8 bytes of each method and its space, as little-endian words, and their lengths.
#define METHOD_WORD(a, b, c, d, e, f, g, h)                                                                \
  ((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 |                \
   (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

// Is data[0, available) (fewer than 8 bytes) all of a method and its space (1), the first bytes of one
// (-1), or neither (0)? Whole words against masks: per-byte loops here multiplied the verifier's paths.
static __always_inline int short_request_start_kind(const char *data, __u32 available) {
  __u64 mask = available >= 8 ? ~0ULL : (1ULL << (8 * (available & 7))) - 1;
  __u64 word = load_word(data) & mask;
  int kind = 0;
#define METHOD(length, a, b, c, d, e, f, g, h)                                                             \
  if ((METHOD_WORD(a, b, c, d, e, f, g, h) & mask) ==                                                      \
      (word & (length >= 8 ? ~0ULL : (1ULL << (8 * (length & 7))) - 1))) {                                 \
    if (available >= length)                                                                               \
      return 1;                                                                                            \
    kind = -1;                                                                                             \
  }
  METHOD(4, 'G', 'E', 'T', ' ', 0, 0, 0, 0)
  METHOD(5, 'P', 'O', 'S', 'T', ' ', 0, 0, 0)
  METHOD(4, 'P', 'U', 'T', ' ', 0, 0, 0, 0)
  METHOD(5, 'H', 'E', 'A', 'D', ' ', 0, 0, 0)
  METHOD(7, 'D', 'E', 'L', 'E', 'T', 'E', ' ', 0)
  METHOD(6, 'P', 'A', 'T', 'C', 'H', ' ', 0, 0)
  METHOD(8, 'O', 'P', 'T', 'I', 'O', 'N', 'S', ' ')
  METHOD(8, 'C', 'O', 'N', 'N', 'E', 'C', 'T', ' ')
  METHOD(6, 'T', 'R', 'A', 'C', 'E', ' ', 0, 0)
#undef METHOD
  return kind;
}

// 1: a request starts here; 0: it does not; -1: too few bytes to tell (a method's first bytes).
static __always_inline int request_start_kind(const char *data, __u32 available) {
  if (available >= 8)
    return is_request_start(data) ? 1 : 0;
  return short_request_start_kind(data, available);
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

// Word-at-a-time byte search: the scans below look at 8 bytes per step and only examine single bytes in
// words that hold a line feed. A bpf_loop callback per byte cost more than the rest of a request together.
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static __always_inline __u64 byte_matches(__u64 word, __u8 byte) {
  __u64 x = word ^ (ONES * byte);
  return (x - ONES) & ~x & HIGHS;
}

// Case-insensitive header names, compared 8 bytes at a time: OR-ing 0x20 into every byte lowercases
// ASCII letters and leaves '-' and ':' alone, the other characters of the names we look for. (A control
// character could pass for '-' or ':', which no valid header name contains.) Per-byte loops here made the
// verifier's state count explode.
static __always_inline __u64 word_at(const char *data, __u32 at) {
  return load_word(data + (at & BUF_MASK)) | 0x2020202020202020ULL;
}

static __always_inline __u64 name_word(const char *name) { return load_word(name); }

// `name` is lowercase, 8 to 24 bytes long.
static __always_inline bool header_name_is(const char *data, __u32 at, __u32 length, const char *name,
                                           int name_length) {
  if (at + name_length > length)
    return false;
  if (word_at(data, at) != name_word(name) ||
      word_at(data, at + name_length - 8) != name_word(name + name_length - 8))
    return false;
  return name_length <= 16 || word_at(data, at + 8) == name_word(name + 8);
}

// Skips blanks after a header name's colon; returns the value's offset.
static __always_inline __u32 skip_blanks(const char *data, __u32 at, __u32 length) {
  for (int k = 0; k < 4; k++) {
    char c = data[at & BUF_MASK];
    if (at < length && (c == ' ' || c == '\t'))
      at++;
  }
  return at & BUF_MASK;
}

// A Content-Length value: up to 15 digits, then the end of the line. -1: malformed; -2: the line goes on
// past `length`.
static __always_inline __s64 parse_length(const char *data, __u32 at, __u32 length) {
  __s64 value = 0;
  int digits = 0;
  for (int k = 0; k < 16; k++) {
    __u32 i = (at + k) & BUF_MASK;
    if (at + k >= length)
      return -2;
    char c = data[i];
    if (!is_digit(c))
      return digits > 0 && (c == '\r' || c == '\n' || c == ' ' || c == '\t') ? value : -1;
    value = value * 10 + (c - '0');
    digits++;
  }
  return -1;
}

// ---- traceparent ---------------------------------------------------------------------------------------

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

// Parses a traceparent value at `offset` of `data` into `out` (trace id then span id). Returns 1 when
// valid, -1 when present but malformed, 0 when its line goes on past `length` (the rest comes later).
static __always_inline int parse_traceparent(const char *data, __u32 offset, __u32 length,
                                             struct fs_span_context *out) {
  // The value and the byte after it: a version-00 value must end there.
  if (offset + TRACEPARENT_VALUE_LEN >= length) {
    // A short value whose line ends before 55 bytes is malformed now; otherwise wait for more bytes.
    // A word at a time, bytes past `length` masked off.
#pragma clang loop unroll(full)
    for (int k = 0; k < 56; k += 8) {
      __u32 left = offset + k < length ? length - (offset + k) : 0;
      __u64 valid = left >= 8 ? ~0ULL : (1ULL << (8 * (left & 7))) - 1;
      __u64 word = load_word(data + ((offset + k) & BUF_MASK)) & valid;
      // Zero bytes (masked off) are not line ends: test CR and LF on the valid bytes only.
      __u64 ends = (byte_matches(word, '\r') | byte_matches(word, '\n')) & (valid & HIGHS);
      // byte_matches can flag a byte above a real match only: any flag means a line end.
      if (ends && left)
        return -1;
    }
    return 0;
  }
  const char *value = data + (offset & BUF_MASK);
  int v0 = hex_value(value[0]), v1 = hex_value(value[1]);
  if (v0 < 0 || v1 < 0 || (v0 == 15 && v1 == 15) || value[2] != '-' || value[35] != '-' || value[52] != '-')
    return -1;
  if (hex_value(value[53]) < 0 || hex_value(value[54]) < 0)
    return -1;
  // Version 00 is exactly 55 characters; later versions may append "-…".
  char next = value[55];
  bool end = next == '\r' || next == '\n' || next == ' ' || next == '\t';
  if (v0 == 0 && v1 == 0 ? !end : !(end || next == '-'))
    return -1;
  struct id_context ids = {.value = value, .out = out};
  bpf_loop(FS_TRACE_ID_LEN + FS_SPAN_ID_LEN, parse_id_byte, &ids, 0);
  return !ids.malformed && ids.any_trace && ids.any_span ? 1 : -1;
}

// ---- the header scan's first pass ---------------------------------------------------------------------

// A header scan runs in two passes. The first looks at every word without a branch and notes the line
// feeds whose next line could matter: the blank line, or a name whose first and eighth letters are those
// of a header we look for. The second checks only those, which is two or three lines of a typical message.
// This machine's kind (retpolines, safe RET) makes every call and return dear, so the first pass is one
// callback call that loops over every word, and the second makes one call per candidate line.

// Byte i of the result is the byte after byte i of `word` (`next` is the word after it).
static __always_inline __u64 bytes_after(__u64 word, __u64 next) { return (word >> 8) | (next << 56); }

#define LOWER 0x2020202020202020ULL
// A header name's first and eighth letters, XOR-ed and case-folded (bit 5 cleared).
#define LETTER_PAIR(first, eighth) (((first) ^ (eighth)) & ~0x20)

// The line feeds of `word` (bit 7 of their bytes) that start a line worth a check. For a line feed at
// byte i, the line's first letter is byte i of bytes_after(word, next) and its eighth is byte i of `next`
// itself; testing the XOR of the two costs half of testing each, and the second pass rejects the names
// that only share the XOR. byte_matches can flag the byte above a real match; the second pass reads the
// bytes themselves, so such a flag too costs a check only.
static __always_inline __u64 wanted_line_feeds(__u64 word, __u64 next) {
  __u64 first = bytes_after(word, next);
  __u64 pair = (first ^ next) & ~LOWER;
  // '\r' and '\n' are the only bytes a line can start with that OR-ed with 7 give 0x0f, but for control
  // characters no header name holds.
  __u64 wanted = byte_matches(first | 0x0707070707070707ULL, 0x0f);
  // traceparent, transfer-encoding: the same pair; content-length.
  wanted |= byte_matches(pair, LETTER_PAIR('t', 'r'));
  wanted |= byte_matches(pair, LETTER_PAIR('c', '-'));
  return byte_matches(word, '\n') & wanted;
}

// 1 when any bit is set in a mask, without a branch.
static __always_inline __u32 any_flagged(__u64 mask) {
  __u64 flagged_bytes = ((mask >> 7) * ONES) >> 56; // 0…8
  return (flagged_bytes + 7) >> 3;
}

// The first pass over data[0, length), as one callback call: its loop can end after any word, and
// inline, each of those ends was a separate state for the verifier to carry through the rest of the
// program. The caller zeroes the 16 bytes after `length`.
struct mark_argument {
  struct scratch *scratch;
  __u32 length;
  __u32 reserved;
};

static long mark_candidates(__u64 index, void *argument) {
  struct mark_argument *marking = argument;
  struct scratch *scratch = marking->scratch;
  __u32 length = marking->length;
  const char *data = scratch->data;
  __u32 count = 0;
#pragma clang loop unroll(disable)
  for (__u32 base = 0; base < BUF_BYTES; base += 8) {
    if (base >= length)
      break;
    __u64 word = load_word(data + base);
    __u64 next = load_word(data + base + 8);
    __u64 mask = wanted_line_feeds(word, next);
    __u32 slot = count & (BUF_WORDS - 1);
    scratch->candidate_words[slot] = base;
    scratch->candidate_masks[slot] = mask;
    count += any_flagged(mask);
  }
  scratch->candidate_count = count;
  scratch->cursor = 0;
  return 1;
}

static __always_inline void first_pass(struct scratch *scratch, __u32 length) {
  __builtin_memset(scratch->data + (length & BUF_MASK), 0, 16);
  struct mark_argument argument = {.scratch = scratch, .length = length};
  bpf_loop(1, mark_candidates, &argument, 0);
}

// The lowest flagged byte of a mask with one bit set, at bit 8 * i + 7: i, by a multiply rather than a
// count-trailing-zeros, which BPF does not have.
static __always_inline __u32 flagged_byte_index(__u64 lowest) {
  return ((lowest >> 7) * 0x0001020304050607ULL) >> 56;
}

// The next candidate line feed of the second pass, or BUF_BYTES when there are no more.
static __always_inline __u32 next_candidate(struct scratch *scratch) {
  __u32 k = scratch->cursor;
  if (k >= scratch->candidate_count)
    return BUF_BYTES;
  __u32 slot = k & (BUF_WORDS - 1);
  __u64 mask = scratch->candidate_masks[slot];
  __u64 rest = mask & (mask - 1);
  scratch->candidate_masks[slot] = rest;
  if (!rest)
    scratch->cursor = k + 1;
  return (scratch->candidate_words[slot] + flagged_byte_index(mask & ~rest)) & BUF_MASK;
}

// ---- the request head stream ----------------------------------------------------------------------------

// Keeps data[from, length) (at most HEAD_CARRY bytes) for the next step.
static __always_inline void carry_from(struct head_parse *p, __u32 from) {
  struct head_state *state = p->state;
  __u32 n = p->pos->length - from;
  if (from > p->pos->length || n > HEAD_CARRY) {
    state->carry_len = 0;
    return;
  }
  const char *source = p->scratch->data + (from & BUF_MASK);
#pragma clang loop unroll(full)
  for (int i = 0; i < HEAD_CARRY / 8; i++)
    __builtin_memcpy(state->carry + 8 * i, source + 8 * i, 8);
  state->carry_len = n;
}

// Puts the carry at the start of the step buffer; returns its length, where the new bytes go.
static __always_inline __u32 head_prepare(struct head_state *state, struct scratch *scratch) {
  __u32 n = state->carry_len;
  if (n > HEAD_CARRY)
    n = state->carry_len = 0;
  if (n) {
#pragma clang loop unroll(full)
    for (int i = 0; i < HEAD_CARRY / 8; i++)
      __builtin_memcpy(scratch->data + 8 * i, state->carry + 8 * i, 8);
  }
  return n;
}

// The end of the request line at `at`: the first '?', CR or LF, or `at` + FS_L7_REQUEST_LINE_LEN (cut).
// BUF_BYTES when neither is in the buffer yet.
static __always_inline __u32 request_line_end(struct head_parse *p, __u32 at) {
  const char *data = p->scratch->data;
  __u32 length = p->pos->length;
  p->scratch->line_end = BUF_BYTES;
#pragma clang loop unroll(disable)
  for (__u32 k = 0; k < FS_L7_REQUEST_LINE_LEN; k += 8) {
    if (at + k >= length)
      break;
    __u64 word = load_word(data + ((at + k) & BUF_MASK));
    __u64 matches = byte_matches(word, '?') | byte_matches(word, '\r') | byte_matches(word, '\n');
    if (matches) {
      // The lowest flagged byte is always a real match (a false flag needs a real one below it).
      p->scratch->line_end = at + k + flagged_byte_index(matches & -matches);
      break;
    }
  }
  __u32 end = p->scratch->line_end;
  if (end < length)
    return end;
  if (length >= at + FS_L7_REQUEST_LINE_LEN)
    return at + FS_L7_REQUEST_LINE_LEN;
  return BUF_BYTES;
}

// Starts (HEAD_IDLE) or resumes (HEAD_LINE) the request at `at`. Returns 1 when its line is complete and
// the header fields follow; 0 when the step is over (bytes carried, or not a request).
static __always_inline int request_at(struct head_parse *p, __u32 at) {
  struct head_state *state = p->state;
  const char *data = p->scratch->data;
  if (at >= p->pos->length) {
    p->pos->more = 1; // the next request starts in the read's next bytes, if any
    return 0;
  }
  if (state->phase == HEAD_IDLE) {
    int kind = request_start_kind(data + (at & BUF_MASK), p->pos->length - at);
    if (kind == 0) {
      head_on_other(p, at);
      p->pos->stop = 1;
      return 0;
    }
    if (kind < 0) {
      carry_from(p, at);
      p->pos->more = 1;
      return 0;
    }
    state->flags = head_on_begin(p, at) ? 0 : HEAD_DROPPED;
    state->phase = HEAD_LINE;
    state->head_bytes = 0;
    state->content_length = -1;
  }
  __u32 end = request_line_end(p, at);
  if (end >= BUF_BYTES) {
    carry_from(p, at); // the line so far; at most HEAD_CARRY bytes, or its end would be known
    p->pos->more = 1;
    return 0;
  }
  bool cut = end - at >= FS_L7_REQUEST_LINE_LEN;
  if (cut)
    head_count(p, FS_L7_COUNTER_LINE_CUT);
  if (!(state->flags & HEAD_DROPPED))
    head_on_line(p, at, end - at, cut);
  state->phase = HEAD_FIELDS;
  p->pos->start = at;
  return 1;
}

// The head that started at p->pos->start ends at `end`: the next request may follow, after its body.
static __always_inline int head_ended(struct head_parse *p, __u32 end) {
  struct head_state *state = p->state;
  if (!(state->flags & HEAD_DROPPED))
    head_on_end(p, p->pos->start, end);
  state->phase = HEAD_IDLE;
  state->line_start = 1;
  state->head_bytes = 0;
  if (state->flags & HEAD_CHUNKED) {
    state->body_skip = BODY_UNKNOWN; // until the response
    p->pos->stop = 1;
    return 0;
  }
  __u64 body = state->content_length > 0 ? state->content_length : 0;
  if (body >= p->pos->length - end) {
    state->body_skip = body - (p->pos->length - end);
    p->pos->more = 1;
    return 0;
  }
  // The second pass starts the next request before it looks at another line: one place in the program
  // starts requests, which keeps the verifier's work in bounds.
  p->pos->pending_request = 1;
  p->pos->at = end + body;
  return 1;
}

// Is the line at `name` the blank line, or a header we want? Returns 1 to stop the step's second pass.
static __always_inline long check_request_line(struct head_parse *p, __u32 name) {
  struct head_state *state = p->state;
  const char *data = p->scratch->data;
  __u32 length = p->pos->length;
  name &= BUF_MASK;
  if (state->head_bytes + (name - p->pos->start) >= HEAD_LIMIT) {
    head_count(p, FS_L7_COUNTER_HEAD_TOO_LONG);
    state->phase = HEAD_OVERFLOW;
    p->pos->stop = 1;
    return 1;
  }
  if (name + 2 <= length && data[name] == '\r' && data[name + 1] == '\n')
    return !head_ended(p, name + 2);
  if (name + 1 <= length && data[name] == '\n') // bare LF line endings
    return !head_ended(p, name + 1);
  char first = data[name] | 0x20;
  if (first == 't' && !(state->flags & HEAD_TRACEPARENT_DONE) &&
      header_name_is(data, name, length, "traceparent:", TRACEPARENT_NAME_LEN)) {
    __u32 value = skip_blanks(data, name + TRACEPARENT_NAME_LEN, length);
    // Only a value inside the bound counts.
    if (state->head_bytes + (value - p->pos->start) + TRACEPARENT_VALUE_LEN > HEAD_LIMIT)
      return 0;
    struct fs_span_context ids;
    int parsed = parse_traceparent(data, value, length, &ids);
    if (parsed != 0) {
      state->flags |= HEAD_TRACEPARENT_DONE;
      if (!(state->flags & HEAD_DROPPED))
        head_on_traceparent(p, parsed, &ids);
    }
  } else if (first == 't' && header_name_is(data, name, length, "transfer-encoding:", 18)) {
    state->flags |= HEAD_CHUNKED;
  } else if (first == 'c' && header_name_is(data, name, length, "content-length:", 15)) {
    __u32 value = skip_blanks(data, name + 15, length);
    __s64 declared = parse_length(data, value, length);
    if (declared >= 0)
      state->content_length = declared;
  }
  return 0;
}

// The second pass, one callback call per line worth a look, and per request start.
static long walk_candidate(__u64 index, void *argument) {
  struct head_parse *p = argument;
  struct head_position *pos = p->pos;
  struct scratch *scratch = p->scratch;
  if (pos->pending_request) {
    pos->pending_request = 0;
    return !request_at(p, pos->at);
  }
  __u32 name = 0;
  if (pos->check_zero) {
    pos->check_zero = 0;
  } else {
    __u32 at = next_candidate(scratch);
    if (at >= BUF_BYTES)
      return 1;
    if (at >= pos->length || at < pos->start || scratch->data[at] != '\n')
      return 0;
    name = at + 1;
  }
  if (p->state->phase != HEAD_FIELDS)
    return 1;
  return check_request_line(p, name);
}

// One byte of the backward search for the last line feed, as a callback (taken only when a head goes on
// past a step).
static long find_last_line_feed(__u64 index, void *argument) {
  struct head_parse *p = argument;
  struct head_position *pos = p->pos;
  __u32 i = pos->length - 1 - (__u32)index;
  if (i < pos->at || i >= pos->length)
    return 1;
  if (p->scratch->data[i & BUF_MASK] == '\n') {
    pos->result = 1;
    pos->at = i;
    return 1;
  }
  return 0;
}

// The last line of a head the step ends inside: carried when short enough to matter (a traceparent,
// content-length or transfer-encoding line, or the blank line's CR).
static __always_inline void carry_last_line(struct head_parse *p) {
  struct head_state *state = p->state;
  __u32 length = p->pos->length;
  __u32 from = length > HEAD_CARRY + p->pos->start ? length - HEAD_CARRY : p->pos->start;
  p->pos->at = from;
  p->pos->result = 0;
  bpf_loop(HEAD_CARRY, find_last_line_feed, p, 0);
  __u32 last = p->pos->result ? p->pos->at : BUF_BYTES;
  state->head_bytes += length - p->pos->start;
  if (last < BUF_BYTES) {
    carry_from(p, last + 1);
    state->line_start = 1;
  } else if (p->pos->line_start && from == 0) {
    carry_from(p, 0); // one header line so far, begun at a line start: short enough to keep
    state->line_start = 1;
  } else {
    // The step began with the carried line, or the current line is longer than any we look for.
    state->carry_len = 0;
    state->line_start = 0;
  }
  state->head_bytes -= state->carry_len;
  if (state->head_bytes >= HEAD_LIMIT) {
    head_count(p, FS_L7_COUNTER_HEAD_TOO_LONG);
    state->phase = HEAD_OVERFLOW;
    state->carry_len = 0;
    p->pos->stop = 1;
    return;
  }
  p->pos->more = 1;
}

static long step_end(__u64 index, void *argument) {
  carry_last_line(argument);
  return 1;
}

// One step over scratch->data[0, p->pos->length) (the carry, then new bytes).
static __always_inline void head_step(struct head_parse *p) {
  struct head_state *state = p->state;
  struct head_position *pos = p->pos;
  pos->start = 0;
  pos->stop = 0;
  pos->more = 0;
  // A carried header line starts a line; a step that starts a request starts with its line.
  bool line_start = state->line_start || state->carry_len;
  state->carry_len = 0;
  if (state->phase == HEAD_OVERFLOW) {
    pos->stop = 1;
    return;
  }
  first_pass(p->scratch, pos->length);
  pos->pending_request = state->phase != HEAD_FIELDS;
  pos->at = 0;
  pos->check_zero = state->phase == HEAD_FIELDS && line_start;
  pos->line_start = pos->check_zero;
  bpf_loop(BUF_BYTES, walk_candidate, p, 0);
  if (state->phase == HEAD_FIELDS && !pos->stop)
    bpf_loop(1, step_end, p, 0);
}

// ---- one read --------------------------------------------------------------------------------------

// One step of a read: skips a request body, then takes up to SCAN_BYTES new bytes after the carry.
// Returns 1 when the read needs no more steps.
static __always_inline long head_read_step_inline(struct head_parse *p) {
  struct head_state *state = p->state;
  struct head_position *pos = p->pos;
  __u32 offset = pos->offset, transferred = pos->transferred;
  if (offset >= transferred || state->phase == HEAD_OVERFLOW)
    return 1;
  __u32 left = transferred - offset;
  __u64 skip = state->body_skip;
  if (skip) {
    if (skip == BODY_UNKNOWN)
      return 1;
    if (skip >= left) {
      state->body_skip = skip - left;
      pos->offset = transferred;
      return 1;
    }
    state->body_skip = 0;
    offset += skip;
    left -= skip;
  }
  __u32 piece = left > SCAN_BYTES ? SCAN_BYTES : left;
  __u32 carried = head_prepare(state, p->scratch);
  if (piece == 0 || piece > SCAN_BYTES || carried > HEAD_CARRY ||
      !head_copy(p, p->scratch->data + carried, offset, piece)) {
    state->carry_len = 0;
    pos->offset = transferred;
    return 1;
  }
  pos->length = carried + piece;
  pos->offset = offset + piece;
  head_step(p);
  return pos->stop || !pos->more || pos->offset >= transferred;
}

static long head_read_step(__u64 index, void *argument) { return head_read_step_inline(argument); }

// Parses one read of `transferred` bytes, as far as heads go. Bytes left unlooked at after READ_STEPS
// steps (many pipelined heads in one read) are counted, and the rest of the read is not followed.
static __always_inline void head_read(struct head_parse *p, __u32 transferred) {
  struct head_position *pos = p->pos;
  pos->offset = 0;
  pos->transferred = transferred;
  pos->stop = 0;
  // The first step inline: most reads need no other, and a call costs on this kind of machine.
  if (!head_read_step_inline(p))
    bpf_loop(READ_STEPS - 1, head_read_step, p, 0);
  struct head_state *state = p->state;
  if (pos->offset < pos->transferred && !pos->stop && state->phase != HEAD_OVERFLOW && !state->body_skip) {
    head_count(p, FS_L7_COUNTER_PIPELINE_OVERFLOW);
    state->phase = HEAD_OVERFLOW;
    state->carry_len = 0;
  }
}

#endif
