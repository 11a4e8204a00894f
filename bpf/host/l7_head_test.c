// Host unit tests of bpf/l7_head.h, the request-head parser the L7 tracer runs in the kernel: the same C,
// compiled for the host, fed the same byte streams cut every way a socket can cut them.
//   clang -O2 -Wall -Werror -I Sources/CFlamespanABI/include -I bpf bpf/host/l7_head_test.c -o t && ./t
// Run by Tests/FlamespanBPFTests/L7HostTests.swift. Prints one line per case and exits 1 when
// any check failed.
#include <stdio.h>
#include <stdlib.h>

#include "host/bpf_shims.h"
#include "host/check.h"
#include "l7_head.h"

struct request_seen {
  char line[FS_L7_REQUEST_LINE_LEN + 1];
  int line_cut;
  int traceparent; // 1 valid, -1 rejected, 0 none
  __u8 trace_id[FS_TRACE_ID_LEN];
  __u8 span_id[FS_SPAN_ID_LEN];
  int ended;
  __u32 head_length;
};

#define MAX_REQUESTS 512
struct head_owner {
  const char *read;
  struct request_seen requests[MAX_REQUESTS];
  int count;
  int other;
  __u64 counters[FS_L7_COUNTER_COUNT];
};

static struct request_seen *newest(struct head_parse *p) {
  return p->owner->count ? &p->owner->requests[p->owner->count - 1] : NULL;
}

static int head_on_begin(struct head_parse *p, __u32 at) {
  (void)at;
  if (p->owner->count >= MAX_REQUESTS)
    return 0;
  memset(&p->owner->requests[p->owner->count++], 0, sizeof(struct request_seen));
  return 1;
}

static void head_on_line(struct head_parse *p, __u32 at, __u32 length, bool cut) {
  struct request_seen *r = newest(p);
  memcpy(r->line, p->scratch->data + at, length);
  r->line[length] = 0;
  r->line_cut = cut;
}

static void head_on_traceparent(struct head_parse *p, int result, struct fs_span_context *ids) {
  struct request_seen *r = newest(p);
  r->traceparent = result;
  if (result > 0) {
    memcpy(r->trace_id, ids->trace_id, FS_TRACE_ID_LEN);
    memcpy(r->span_id, ids->span_id, FS_SPAN_ID_LEN);
  }
}

static void head_on_end(struct head_parse *p, __u32 at, __u32 end) {
  struct request_seen *r = newest(p);
  r->ended = 1;
  r->head_length = end - at;
}

static void head_on_other(struct head_parse *p, __u32 at) {
  (void)at;
  p->owner->other++;
}

static void head_count(struct head_parse *p, __u32 counter) { p->owner->counters[counter]++; }

static int head_copy(struct head_parse *p, char *to, __u32 offset, __u32 length) {
  memcpy(to, p->owner->read + offset, length);
  return 1;
}

// ---- a connection fed reads ------------------------------------------------------------------------

static struct scratch scratch;
struct connection {
  struct head_state state;
  struct head_owner owner;
};

static void connection_reset(struct connection *c) {
  memset(c, 0, sizeof(*c));
  c->state.line_start = 1;
}

static void feed(struct connection *c, const char *bytes, __u32 length) {
  c->owner.read = bytes;
  struct head_parse p = {.scratch = &scratch, .state = &c->state, .owner = &c->owner, .pos = &scratch.position};
  // Stale bytes from earlier steps must not matter.
  memset(scratch.data, 'x', sizeof(scratch.data));
  head_read(&p, length);
}

// What the tracer does when the server starts its response: a head past the bound is given up.
static void respond(struct connection *c) {
  if (c->state.phase == HEAD_OVERFLOW || c->state.body_skip == BODY_UNKNOWN) {
    c->state.phase = HEAD_IDLE;
    c->state.carry_len = 0;
    c->state.body_skip = 0;
    c->state.line_start = 1;
  }
}

// ---- requests ----------------------------------------------------------------------------------------

static const char *TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
static const char *SPAN = "00f067aa0ba902b7";

// A GET whose head is `size` bytes (at least 120) with its traceparent line starting at about `at` (or
// none when at < 0), a cookie filling the rest.
static int make_request(char *out, const char *path, int size, int at) {
  char tp[128];
  snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01\r\n", TRACE, SPAN);
  int n = sprintf(out, "GET %s?q=1 HTTP/1.1\r\nHost: localhost\r\n", path);
  int tail = 2; // the blank line
  int tp_length = at >= 0 ? (int)strlen(tp) : 0;
  int fill = size - n - tail - tp_length;
  if (fill < 12)
    fill = 0;
  int before = at >= 0 && at > n ? at - n : 0;
  if (before > fill)
    before = fill;
  // Cookie lines of at most ~1000 bytes, before and after the traceparent.
  for (int part = 0; part < 2; part++) {
    int want = part == 0 ? before : fill - before;
    while (want >= 12) {
      int line = want > 1000 ? 1000 : want;
      if (want - line > 0 && want - line < 12)
        line = want - 12;
      n += sprintf(out + n, "Cookie: ");
      memset(out + n, 'c', line - 10);
      n += line - 10;
      n += sprintf(out + n, "\r\n");
      want -= line;
    }
    if (part == 0 && at >= 0)
      n += sprintf(out + n, "%s", tp);
  }
  n += sprintf(out + n, "\r\n");
  return n;
}

static int hex_equal(const __u8 *bytes, const char *hex, int count) {
  for (int i = 0; i < count; i++) {
    unsigned value;
    sscanf(hex + 2 * i, "%2x", &value);
    if (bytes[i] != value)
      return 0;
  }
  return 1;
}

// Every request of a stream seen whole: its line, its traceparent (when expected), its end.
static int expect_requests(struct connection *c, int count, const char *line, int traceparent,
                           const char *label) {
  int before = failures;
  CHECK(c->owner.count == count, "%s: %d requests, want %d", label, c->owner.count, count);
  for (int i = 0; i < c->owner.count && i < count; i++) {
    struct request_seen *r = &c->owner.requests[i];
    CHECK(strcmp(r->line, line) == 0, "%s: request %d line '%s', want '%s'", label, i, r->line, line);
    CHECK(r->ended, "%s: request %d never ended", label, i);
    CHECK(r->traceparent == traceparent, "%s: request %d traceparent %d, want %d", label, i, r->traceparent,
          traceparent);
    if (traceparent > 0)
      CHECK(hex_equal(r->trace_id, TRACE, 16) && hex_equal(r->span_id, SPAN, 8), "%s: request %d ids", label, i);
  }
  CHECK(c->owner.other == 0, "%s: %d non-request reads", label, c->owner.other);
  return failures == before;
}

static char stream[1 << 20];

// One head, fed in two reads split at every offset, and one byte per read.
static void splits_and_bytes(int size, int at, int traceparent, __u64 too_long, const char *name) {
  int length = make_request(stream, "/split12", size, at);
  struct connection c;
  int bad = 0;
  for (int split = 0; split <= length; split++) {
    connection_reset(&c);
    feed(&c, stream, split);
    feed(&c, stream + split, length - split);
    char label[64];
    snprintf(label, sizeof(label), "%s split at %d", name, split);
    if (too_long) {
      CHECK(c.owner.count == 1 && strcmp(c.owner.requests[0].line, "GET /split12") == 0, "%s: line", label);
      CHECK(c.owner.requests[0].traceparent == traceparent, "%s: traceparent %d", label,
            c.owner.requests[0].traceparent);
      CHECK(c.owner.counters[FS_L7_COUNTER_HEAD_TOO_LONG] == 1, "%s: too long counted %llu", label,
            (unsigned long long)c.owner.counters[FS_L7_COUNTER_HEAD_TOO_LONG]);
    } else if (!expect_requests(&c, 1, "GET /split12", traceparent, label)) {
      bad++;
    }
    if (bad > 3)
      break;
  }
  connection_reset(&c);
  for (int i = 0; i < length; i++)
    feed(&c, stream + i, 1);
  char label[64];
  snprintf(label, sizeof(label), "%s 1-byte reads", name);
  if (too_long) {
    CHECK(c.owner.count == 1 && c.owner.requests[0].traceparent == traceparent, "%s", label);
    CHECK(c.owner.counters[FS_L7_COUNTER_HEAD_TOO_LONG] == 1, "%s: too long counted", label);
  } else {
    expect_requests(&c, 1, "GET /split12", traceparent, label);
  }
  printf("ok? %-44s %d bytes, traceparent at %d: %s\n", name, length, at, failures ? "see FAILs" : "pass");
}

// `count` requests in one stream, read in one read, in reads of `chunk` bytes, and split at every offset
// (two reads) for small pipelines.
static void pipeline(int count, int size, const char *name) {
  int one = make_request(stream, "/p", size, 40);
  for (int i = 1; i < count; i++)
    memcpy(stream + i * one, stream, one);
  int length = one * count;
  struct connection c;
  char label[80];
  int chunks[] = {0, 1, 7, 100, 1000, 1500};
  for (unsigned k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
    int chunk = chunks[k] ? chunks[k] : length;
    connection_reset(&c);
    for (int offset = 0; offset < length; offset += chunk)
      feed(&c, stream + offset, offset + chunk > length ? length - offset : chunk);
    snprintf(label, sizeof(label), "%s in reads of %d", name, chunk);
    expect_requests(&c, count, "GET /p", 1, label);
    CHECK(c.owner.counters[FS_L7_COUNTER_PIPELINE_OVERFLOW] == 0, "%s: overflow", label);
  }
  if (count <= 2) {
    for (int split = 0; split <= length; split++) {
      connection_reset(&c);
      feed(&c, stream, split);
      feed(&c, stream + split, length - split);
      snprintf(label, sizeof(label), "%s split at %d", name, split);
      if (!expect_requests(&c, count, "GET /p", 1, label))
        break;
    }
  }
  printf("ok? %-44s %d requests of %d bytes: %s\n", name, count, one, failures ? "see FAILs" : "pass");
}

static void pipelined_bodies(void) {
  // A POST with a body, then a GET, then a POST whose body holds something like a request.
  const char *text = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                     "GET /b HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n"
                     "POST /c HTTP/1.1\r\ncontent-length:  18\r\n\r\nGET /fake HTTP/1.1"
                     "GET /d HTTP/1.1\r\n\r\n";
  int length = strlen(text);
  struct connection c;
  for (int split = 0; split <= length; split++) {
    connection_reset(&c);
    feed(&c, text, split);
    feed(&c, text + split, length - split);
    const char *lines[] = {"POST /a HTTP/1.1", "GET /b HTTP/1.1", "POST /c HTTP/1.1", "GET /d HTTP/1.1"};
    int ok = c.owner.count == 4 && c.owner.other == 0;
    for (int i = 0; ok && i < 4; i++)
      ok = strcmp(c.owner.requests[i].line, lines[i]) == 0 && c.owner.requests[i].ended;
    ok = ok && c.owner.requests[1].traceparent == 1 && c.owner.requests[0].traceparent == 0;
    CHECK(ok, "bodies split at %d: %d requests, %d other", split, c.owner.count, c.owner.other);
    for (int i = 0; !ok && i < c.owner.count; i++)
      printf("  %d '%s' ended %d traceparent %d\n", i, c.owner.requests[i].line, c.owner.requests[i].ended,
             c.owner.requests[i].traceparent);
    if (!ok)
      break;
  }
  printf("ok? %-44s: %s\n", "pipelined bodies (Content-Length)", failures ? "see FAILs" : "pass");
}

static void malformed_and_cut(void) {
  struct connection c;
  connection_reset(&c);
  const char *bad = "GET /x HTTP/1.1\r\ntraceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01\r\n\r\n";
  feed(&c, bad, strlen(bad));
  CHECK(c.owner.count == 1 && c.owner.requests[0].traceparent == -1, "uppercase traceparent rejected");
  connection_reset(&c);
  const char *shortened = "GET /x HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7\r\n\r\n";
  for (int i = 0; i < (int)strlen(shortened); i++)
    feed(&c, shortened + i, 1);
  CHECK(c.owner.count == 1 && c.owner.requests[0].traceparent == -1 && c.owner.requests[0].ended,
        "a short traceparent rejected, byte by byte");
  connection_reset(&c);
  char longline[600];
  int n = sprintf(longline, "GET /");
  memset(longline + n, 'a', 300);
  n += 300;
  n += sprintf(longline + n, " HTTP/1.1\r\n\r\n");
  for (int i = 0; i < n; i += 3)
    feed(&c, longline + i, i + 3 > n ? n - i : 3);
  CHECK(c.owner.count == 1 && c.owner.requests[0].line_cut && strlen(c.owner.requests[0].line) == 128 &&
            c.owner.counters[FS_L7_COUNTER_LINE_CUT] == 1 && c.owner.requests[0].ended,
        "a 300-byte path is cut at 128 and counted");
  connection_reset(&c);
  feed(&c, "\x16\x03\x01\x02\x00\x01\x00\x01", 8);
  CHECK(c.owner.count == 0 && c.owner.other == 1, "TLS bytes are not a request");
  printf("ok? %-44s: %s\n", "malformed, cut, not HTTP", failures ? "see FAILs" : "pass");
}

int main(void) {
  // Heads of 800, 1,500, 6,000 and 9,000 bytes with the traceparent near their end, and the bound.
  splits_and_bytes(800, 700, 1, 0, "800-byte head");
  splits_and_bytes(1500, 1400, 1, 0, "1,500-byte head (traceparent at 1.4 KB)");
  splits_and_bytes(6000, 5900, 1, 0, "6,000-byte head (traceparent at 5.9 KB)");
  splits_and_bytes(9000, 6000, 1, 1, "9,000-byte head, traceparent at 6 KB");
  splits_and_bytes(9000, 8900, 0, 1, "9,000-byte head, traceparent at 8.9 KB");
  splits_and_bytes(8192, 8000, 1, 0, "8,192-byte head (the bound)");
  splits_and_bytes(200, -1, 0, 0, "200-byte head, no traceparent");
  pipeline(1, 150, "pipeline of 1");
  pipeline(2, 150, "pipeline of 2");
  pipeline(100, 150, "pipeline of 100");
  pipeline(100, 40 + 200, "pipeline of 100, larger heads");
  pipelined_bodies();
  malformed_and_cut();
  // A head past the bound, then the server's response, then the next request: traced again.
  struct connection c;
  connection_reset(&c);
  int length = make_request(stream, "/big", 9000, 100);
  feed(&c, stream, length);
  respond(&c);
  int next = make_request(stream, "/after", 300, 100);
  feed(&c, stream, next);
  CHECK(c.owner.count == 2 && strcmp(c.owner.requests[1].line, "GET /after") == 0 &&
            c.owner.requests[1].traceparent == 1 && c.owner.requests[1].ended,
        "the request after a head past the bound is whole");
  printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
