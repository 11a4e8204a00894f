// Host unit tests of bpf/l7/http_scan.h, the L7 tracer's reading of a server's response (status line,
// Content-Length, Transfer-Encoding, the blank line, the last chunk) and of a client's request line: the
// same C the kernel runs, compiled for the host with bpf/host/bpf_shims.h.
//   clang -O1 -g -Wall -Werror -fsanitize=address,undefined -I Sources/CFlamespanABI/include -I bpf \
//     bpf/host/l7_response_scan_test.c -o t && ./t
// Run by Tests/FlamespanBPFTests/L7HostTests.swift. Prints one line per case and exits 1 when any check
// failed.
#include <stdio.h>
#include <stdlib.h>

#include "host/bpf_shims.h"
#include "host/check.h"
#include "l7_head.h"
#include "host/no_head_hooks.h"
#include "l7/conn_state.h"
#include "l7/http_scan.h"

static struct scratch scratch;

// What process_write does with the first write of a response: copy up to SCAN_BYTES of its first buffer
// into the scratch (whose later bytes are stale from earlier writes), read the status, and frame it.
static struct conn frame_write(struct pending_io io, long transferred, const char *first_buffer, __u32 first_length,
                               bool head_request) {
  struct conn conn;
  memset(&conn, 0, sizeof(conn));
  conn.head_request = head_request;
  conn.framing = 0xee; // read_response_framing must set it whatever it finds
  // Stale bytes that would frame the response if the scan trusted them.
  static const char stale[] = "\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t i = 0; i < sizeof(scratch.data); i++)
    scratch.data[i] = stale[i % (sizeof(stale) - 1)];
  __u32 length = first_length < SCAN_BYTES ? first_length : SCAN_BYTES;
  if (length > (__u32)transferred)
    length = transferred;
  memcpy(scratch.data, first_buffer, length);
  __u16 status = length >= 12 ? response_status(scratch.data) : 0;
  conn.exchange.status = status;
  if (status)
    read_response_framing(&conn, &scratch, length, &io, transferred, status);
  else
    conn.framing = FRAMING_UNKNOWN;
  return conn;
}

// One plain write(2) of `text`.
static struct conn frame(const char *text, bool head_request) {
  __u32 length = strlen(text);
  struct pending_io io = {.buffer = (__u64)(uintptr_t)text, .indirection = 0};
  return frame_write(io, length, text, length, head_request);
}

static void expect_framing(const char *name, const char *text, bool head_request, __u8 framing, __s64 remaining) {
  struct conn conn = frame(text, head_request);
  CHECK(conn.framing == framing, "%s: framing %d, want %d", name, conn.framing, framing);
  if (framing != FRAMING_UNKNOWN)
    CHECK(conn.body_remaining == remaining, "%s: body_remaining %lld, want %lld", name,
          (long long)conn.body_remaining, (long long)remaining);
}

static void statuses(void) {
  int before = failures;
  struct {
    const char *line;
    __u16 status;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\n", 200},   {"HTTP/1.0 404 Not Found", 404}, {"HTTP/1.1 101 Switching", 101},
      {"HTTP/1.1 999 Whatever", 999}, {"HTTP/1.1 20x OK\r\n", 0},       {"HTTP/2 200 OK\r\n\r\n", 0},
      {"http/1.1 200 OK\r\n", 0},     {"HTTP/1.1  200 OK\r\n", 0},      {"XTTP/1.1 200 OK\r\n", 0},
      {"HTTP/1.1 2000 OK\r\n", 200}, // the status is three digits; what follows is not looked at
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char line[32] = {0};
    strncpy(line, cases[i].line, sizeof(line) - 1);
    CHECK(response_status(line) == cases[i].status, "'%s': status %d, want %d", cases[i].line,
          response_status(line), cases[i].status);
  }
  printf("ok? %-52s %s\n", "status lines", failures == before ? "pass" : "see FAILs");
}

static void framings(void) {
  int before = failures;
  expect_framing("length, whole", "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n0123456789abcdefg", false,
                 FRAMING_LENGTH, 0);
  expect_framing("length, head only", "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 100\r\n\r\n", false,
                 FRAMING_LENGTH, 100);
  expect_framing("length, part of the body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", false,
                 FRAMING_LENGTH, 6);
  expect_framing("length, any case, blanks", "HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh:\t  42 \r\n\r\n", false,
                 FRAMING_LENGTH, 42);
  expect_framing("length 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, FRAMING_LENGTH, 0);
  expect_framing("length, 15 digits", "HTTP/1.1 200 OK\r\nContent-Length: 999999999999999\r\n\r\n", false,
                 FRAMING_LENGTH, 999999999999999LL);
  expect_framing("length, 16 digits", "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\n", false,
                 FRAMING_UNKNOWN, 0);
  expect_framing("length, not a number", "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", false,
                 FRAMING_UNKNOWN, 0);
  expect_framing("length, negative", "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", false, FRAMING_UNKNOWN, 0);
  expect_framing("length, empty", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false, FRAMING_UNKNOWN, 0);
  expect_framing("length, bare LF", "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", false, FRAMING_LENGTH, 0);
  expect_framing("bare LF, the blank line last", "HTTP/1.1 200 OK\nContent-Length: 3\n\n", false,
                 FRAMING_LENGTH, 3);
  expect_framing("CRLF, the blank line last", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false,
                 FRAMING_LENGTH, 3);
  // Names that only begin like the ones looked for, or contain them.
  expect_framing("Content-Type only", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", false,
                 FRAMING_UNKNOWN, 0);
  expect_framing("X-Content-Length", "HTTP/1.1 200 OK\r\nX-Content-Length: 3\r\n\r\nabc", false, FRAMING_UNKNOWN,
                 0);
  expect_framing("Content-Lengthy", "HTTP/1.1 200 OK\r\nContent-Lengthy: 3\r\n\r\nabc", false, FRAMING_UNKNOWN, 0);
  expect_framing("Transfer-Encodings", "HTTP/1.1 200 OK\r\nTransfer-Encodings: chunked\r\n\r\n", false,
                 FRAMING_UNKNOWN, 0);
  // Headers after the blank line are body.
  expect_framing("Content-Length in the body", "HTTP/1.1 200 OK\r\n\r\nContent-Length: 5\r\n\r\n", false,
                 FRAMING_UNKNOWN, 0);
  // Chunked: done when the write ends with the last chunk.
  expect_framing("chunked, whole", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                 false, FRAMING_CHUNKED, 0);
  expect_framing("chunked, more to come", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                 false, FRAMING_CHUNKED, 1);
  expect_framing("chunked, head only", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", false,
                 FRAMING_CHUNKED, 1);
  expect_framing("chunked wins over a length",
                 "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false,
                 FRAMING_CHUNKED, 0);
  // No body whatever the headers say.
  expect_framing("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true, FRAMING_LENGTH, 0);
  expect_framing("204", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false, FRAMING_LENGTH, 0);
  expect_framing("304", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, FRAMING_LENGTH,
                 0);
  // Interim responses and protocol switches end some other way.
  expect_framing("100", "HTTP/1.1 100 Continue\r\n\r\n", false, FRAMING_UNKNOWN, 0);
  expect_framing("101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false, FRAMING_UNKNOWN,
                 0);
  // Close-delimited, or a head not ended in the write.
  expect_framing("no framing header", "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody", false, FRAMING_UNKNOWN, 0);
  expect_framing("head not ended", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", false, FRAMING_UNKNOWN, 0);
  expect_framing("not HTTP", "SSH-2.0-OpenSSH_9.6\r\n\r\n", false, FRAMING_UNKNOWN, 0);
  printf("ok? %-52s %s\n", "framings", failures == before ? "pass" : "see FAILs");
}

// A response written in two writes, cut at every offset: the framing is known exactly when the first
// write holds the whole head, and then counts the body bytes that write carried.
static void split_at_every_offset(void) {
  int before = failures;
  const char *response = "HTTP/1.1 200 OK\r\nDate: Mon, 07 Dec 2026 17:00:00 GMT\r\nContent-Length: 26\r\n"
                         "Content-Type: text/plain\r\n\r\nabcdefghijklmnopqrstuvwxyz";
  __u32 total = strlen(response);
  __u32 head = strstr(response, "\r\n\r\n") - response + 4;
  for (__u32 cut = 1; cut <= total; cut++) {
    char first[512];
    memcpy(first, response, cut);
    struct conn conn = frame_write((struct pending_io){.buffer = (__u64)(uintptr_t)first}, cut, first, cut, false);
    if (cut < head) {
      CHECK(conn.framing == FRAMING_UNKNOWN, "cut at %u, in the head: framing %d", cut, conn.framing);
    } else {
      CHECK(conn.framing == FRAMING_LENGTH && conn.body_remaining == 26 - (__s64)(cut - head),
            "cut at %u: framing %d, %lld to go", cut, conn.framing, (long long)conn.body_remaining);
    }
  }
  printf("ok? %-52s %u cuts: %s\n", "a response split at every offset", total,
         failures == before ? "pass" : "see FAILs");
}

// The head is looked for in the first SCAN_BYTES of the write only.
static void long_heads(void) {
  int before = failures;
  static char text[4096];
  for (int filler = 900; filler <= 1100; filler += 4) {
    int length = snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Filler: %*s\r\n\r\nhello",
                          filler, "f");
    __u32 head = strstr(text, "\r\n\r\n") - text + 4;
    struct conn conn = frame(text, false);
    if (head <= SCAN_BYTES)
      CHECK(conn.framing == FRAMING_LENGTH && conn.body_remaining == 0, "head of %u bytes: framing %d", head,
            conn.framing);
    else
      CHECK(conn.framing == FRAMING_UNKNOWN, "head of %u bytes, past %d: framing %d", head, SCAN_BYTES,
            conn.framing);
    (void)length;
  }
  printf("ok? %-52s %s\n", "heads about SCAN_BYTES long", failures == before ? "pass" : "see FAILs");
}

// writev: the head in the first iovec (looked at), the last chunk at the end of the last one.
static void gathered_writes(void) {
  int before = failures;
  char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  char body[] = "5\r\nhello\r\n";
  char last[] = "0\r\n\r\n";
  struct iovec parts[3] = {{head, strlen(head)}, {body, strlen(body)}, {last, strlen(last)}};
  long transferred = strlen(head) + strlen(body) + strlen(last);
  struct pending_io io = {.buffer = (__u64)(uintptr_t)parts, .indirection = 1, .count = 3};
  struct conn conn = frame_write(io, transferred, head, strlen(head), false);
  CHECK(conn.framing == FRAMING_CHUNKED && conn.body_remaining == 0, "writev ending with the last chunk: %d %lld",
        conn.framing, (long long)conn.body_remaining);
  io.count = 2;
  conn = frame_write(io, transferred - strlen(last), head, strlen(head), false);
  CHECK(conn.framing == FRAMING_CHUNKED && conn.body_remaining == 1, "writev without the last chunk: %d %lld",
        conn.framing, (long long)conn.body_remaining);
  // The Content-Length value cut by the end of the first iovec: the head is not whole in it.
  char cut_head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1";
  char rest[] = "2\r\n\r\n0123456789ab";
  struct iovec cut_parts[2] = {{cut_head, strlen(cut_head)}, {rest, strlen(rest)}};
  io = (struct pending_io){.buffer = (__u64)(uintptr_t)cut_parts, .indirection = 1, .count = 2};
  conn = frame_write(io, strlen(cut_head) + strlen(rest), cut_head, strlen(cut_head), false);
  CHECK(conn.framing == FRAMING_UNKNOWN, "Content-Length cut by the first iovec: framing %d", conn.framing);
  printf("ok? %-52s %s\n", "writev", failures == before ? "pass" : "see FAILs");
}

static void last_chunks(void) {
  int before = failures;
  struct {
    const char *tail;
    bool last;
  } cases[] = {
      {"0\r\n\r\n", true},      {"a\r\n0123456789\r\n0\r\n\r\n", true}, {"0\r\n\r", false}, {"10\r\n\r\n", true},
      {"0\r\nX: y\r\n\r\n", false}, {"0\n\n", false},                      {"", false},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct pending_io io = {.buffer = (__u64)(uintptr_t)cases[i].tail, .indirection = 0};
    bool last = ends_with_last_chunk(&io, strlen(cases[i].tail));
    CHECK(last == cases[i].last, "'%s': last chunk %d, want %d", cases[i].tail, last, cases[i].last);
  }
  // Unreadable memory, and kinds of I/O whose bytes are not known (msghdr, sendfile): not the end.
  const char *tail = "0\r\n\r\n";
  unreadable_start = tail;
  unreadable_end = tail + 5;
  struct pending_io io = {.buffer = (__u64)(uintptr_t)tail, .indirection = 0};
  CHECK(!ends_with_last_chunk(&io, 5), "unreadable memory is not a last chunk");
  unreadable_start = unreadable_end = NULL;
  io.indirection = 2;
  CHECK(!ends_with_last_chunk(&io, 5), "a msghdr's end is not looked at");
  io.indirection = 3;
  CHECK(!ends_with_last_chunk(&io, 5), "sendfile's bytes are not looked at");
  printf("ok? %-52s %s\n", "last chunks", failures == before ? "pass" : "see FAILs");
}

// A client's request line, cut at '?', CR or LF, or at the record's field.
static void request_lines(void) {
  int before = failures;
  struct {
    const char *request;
    const char *line;
  } cases[] = {
      {"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n", "GET /a"},
      {"POST /submit HTTP/1.1\r\n\r\n", "POST /submit HTTP/1.1"},
      {"GET /bare-lf HTTP/1.0\nHost: x\n\n", "GET /bare-lf HTTP/1.0"},
      {"GET ?x", "GET "},
      {"GET /no-end", "GET /no-end"},
  };
  struct conn conn;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    memset(&conn, 0, sizeof(conn));
    memset(scratch.data, '?' + 1, sizeof(scratch.data));
    __u32 length = strlen(cases[i].request);
    memcpy(scratch.data, cases[i].request, length);
    copy_request_line(&conn, &scratch, length);
    __u32 want = strlen(cases[i].line);
    CHECK(conn.exchange.request_line_len == want && memcmp(conn.exchange.request_line, cases[i].line, want) == 0,
          "'%s': line '%.*s'", cases[i].line, (int)conn.exchange.request_line_len, conn.exchange.request_line);
  }
  // A line longer than the record's field is cut at it; the terminator at every offset around it.
  char request[FS_L7_REQUEST_LINE_LEN + 64];
  for (__u32 end = 4; end < sizeof(request) - 8; end++) {
    memset(request, 'p', sizeof(request));
    memcpy(request, "GET /", 5);
    memcpy(request + end, "\r\nHost: x\r\n", 11 < sizeof(request) - end ? 11 : sizeof(request) - end);
    memset(&conn, 0, sizeof(conn));
    memset(scratch.data, 'z', sizeof(scratch.data));
    memcpy(scratch.data, request, sizeof(request));
    copy_request_line(&conn, &scratch, sizeof(request));
    __u32 want = end < FS_L7_REQUEST_LINE_LEN ? end : FS_L7_REQUEST_LINE_LEN;
    CHECK(conn.exchange.request_line_len == want && memcmp(conn.exchange.request_line, request, want) == 0,
          "line ending at %u: %u bytes, want %u", end, conn.exchange.request_line_len, want);
  }
  printf("ok? %-52s %s\n", "client request lines", failures == before ? "pass" : "see FAILs");
}

// Random heads from a vocabulary of header lines, well-formed and not, cut anywhere, and random bytes:
// nothing is read outside the buffers (ASan), and what is found agrees with the lines the head holds.
static const char *vocabulary[] = {
    "Content-Length: 12\r\n", "content-length:0\r\n", "CONTENT-LENGTH: \t 7\r\n", "Content-Length: x\r\n",
    "Content-Length: 99999999999999999\r\n", "Transfer-Encoding: chunked\r\n", "Server: nginx\r\n",
    "Connection: keep-alive\r\n", "Content-Type: text/html\r\n", "X-Content-Length: 5\r\n", "\n", "\r\n",
    "Date: Mon, 07 Dec 2026\n", ": \r\n", "c\r\n", "t\r\n", "\r", "\x00\xff\x80",
};

static void garbage(void) {
  int before = failures;
  __u64 seed = 0x9E3779B97F4A7C15ULL;
#define NEXT() (seed = seed * 6364136223846793005ULL + 1442695040888963407ULL, seed >> 33)
  static char text[SCAN_BYTES + 512];
  int framed[3] = {0};
  for (int round = 0; round < 50000; round++) {
    __u32 length = 0;
    const char *status = NEXT() % 8 ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 204 No Content\r\n";
    length += snprintf(text, sizeof(text), "%s", status);
    int lines = NEXT() % 40;
    for (int i = 0; i < lines; i++) {
      if (NEXT() % 10 == 0) { // a run of random bytes
        for (int k = NEXT() % 60; k > 0 && length < sizeof(text) - 1; k--)
          text[length++] = (char)NEXT();
        continue;
      }
      const char *line = vocabulary[NEXT() % (sizeof(vocabulary) / sizeof(vocabulary[0]))];
      __u32 n = strlen(line);
      if (length + n >= sizeof(text))
        break;
      memcpy(text + length, line, n);
      length += n;
    }
    __u32 cut = 12 + NEXT() % (length - 11); // the write may end anywhere
    struct conn conn = frame_write((struct pending_io){.buffer = (__u64)(uintptr_t)text}, cut, text, cut, false);
    CHECK(conn.framing <= FRAMING_CHUNKED, "round %d: framing %d", round, conn.framing);
    if (conn.framing > FRAMING_CHUNKED)
      continue;
    framed[conn.framing]++;
    if (conn.framing == FRAMING_UNKNOWN)
      continue;
    // A framing needs the blank line inside what was scanned, and the header that gives it before that.
    __u32 scanned = cut < SCAN_BYTES ? cut : SCAN_BYTES;
    char *blank_crlf = memmem(text, scanned, "\n\r\n", 3), *blank_lf = memmem(text, scanned, "\n\n", 2);
    char *blank = !blank_crlf ? blank_lf : !blank_lf ? blank_crlf : blank_crlf < blank_lf ? blank_crlf : blank_lf;
    CHECK(blank != NULL, "round %d: framed (%d) without a blank line in %u bytes", round, conn.framing, scanned);
    if (!blank || strncmp(status, "HTTP/1.1 204", 12) == 0)
      continue;
    __u32 head = blank - text;
    char lowered[sizeof(text)];
    for (__u32 i = 0; i < head; i++)
      lowered[i] = text[i] >= 'A' && text[i] <= 'Z' ? text[i] | 0x20 : text[i];
    const char *name = conn.framing == FRAMING_CHUNKED ? "\ntransfer-encoding:" : "\ncontent-length:";
    CHECK(memmem(lowered, head, name, strlen(name)) != NULL, "round %d: framing %d without its header", round,
          conn.framing);
  }
#undef NEXT
  printf("ok? %-52s 50000 heads: %d unknown, %d length, %d chunked: %s\n", "garbage", framed[0], framed[1],
         framed[2], failures == before ? "pass" : "see FAILs");
  CHECK(framed[0] > 1000 && framed[1] > 1000 && framed[2] > 1000, "the garbage reached every framing");
}

int main(void) {
  statuses();
  framings();
  split_at_every_offset();
  long_heads();
  gathered_writes();
  last_chunks();
  request_lines();
  garbage();
  printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
