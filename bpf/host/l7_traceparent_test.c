// Host unit tests of parse_traceparent in bpf/l7_head.h, the W3C traceparent value parser the L7 tracer
// runs in the kernel: valid values of each version, every byte of a value made invalid, every cut of a
// value at the end of the bytes seen so far, offsets up to the end of the step buffer, and random
// mutations checked against a plain reading of the W3C rules.
//   clang -O1 -g -Wall -Werror -fsanitize=address,undefined -I Sources/CFlamespanABI/include -I bpf \
//     bpf/host/l7_traceparent_test.c -o t && ./t
// Run by Tests/FlamespanBPFTests/L7HostTests.swift. Exits 1 when any check failed.
#include <stdio.h>
#include <stdlib.h>

#include "host/bpf_shims.h"
#include "host/check.h"
#include "l7_head.h"
#include "host/no_head_hooks.h"

static const char *VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// The step buffer the parser reads, with its slack; bytes past `length` are stale.
static char buffer[BUF_BYTES + BUF_SLACK];

static int parse_at(const char *value, __u32 offset, __u32 length, struct fs_span_context *ids) {
  memset(buffer, '7', sizeof(buffer)); // stale hex digits: they must not complete a value
  __u32 n = strlen(value);
  memcpy(buffer + offset, value, n < sizeof(buffer) - offset ? n : sizeof(buffer) - offset);
  memset(ids, 0, sizeof(*ids));
  return parse_traceparent(buffer, offset, length, ids);
}

// value + "\r\n", whole in the buffer.
static int parse(const char *value, struct fs_span_context *ids) {
  char line[128];
  snprintf(line, sizeof(line), "%s\r\n", value);
  return parse_at(line, 0, strlen(line), ids);
}

static bool hex_is(const __u8 *bytes, const char *hex, int count) {
  for (int i = 0; i < count; i++) {
    unsigned value;
    if (sscanf(hex + 2 * i, "%2x", &value) != 1 || bytes[i] != value)
      return false;
  }
  return true;
}

static void valid_values(void) {
  int before = failures;
  struct fs_span_context ids;
  CHECK(parse(VALID, &ids) == 1, "the W3C example");
  CHECK(hex_is(ids.trace_id, VALID + 3, 16) && hex_is(ids.span_id, VALID + 36, 8), "the example's ids");
  char line[128];
  // What may follow a version-00 value: the line's end, or blanks before it.
  const char *endings[] = {"\r\n", "\n", " \r\n", "\t\r\n"};
  for (int i = 0; i < 4; i++) {
    snprintf(line, sizeof(line), "%s%s", VALID, endings[i]);
    CHECK(parse_at(line, 0, strlen(line), &ids) == 1, "version 00 then '%s'", i == 0 ? "CRLF" : endings[i]);
  }
  // A later version may carry more fields.
  CHECK(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &ids) == 1, "version 01");
  CHECK(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes", &ids) == 1,
        "version cc with a suffix");
  CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &ids) == 1, "not sampled");
  printf("ok? %-52s %s\n", "valid values", failures == before ? "pass" : "see FAILs");
}

static void invalid_values(void) {
  int before = failures;
  struct fs_span_context ids;
  const char *cases[] = {
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // version ff is invalid
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     // all-zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     // all-zero span id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     // upper case
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",  // version 00 has no suffix
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",    // a suffix starts with '-'
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // separators
      "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",      // a digit short
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
      "",
      "00",
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    CHECK(parse(cases[i], &ids) == -1, "'%s' is not valid", cases[i]);
  // Every hex digit replaced by a non-hex byte, and every separator by a digit.
  char value[64];
  for (int at = 0; at < 55; at++) {
    for (const char *replacement = "g/:G \x7f"; *replacement; replacement++) {
      strcpy(value, VALID);
      bool separator = at == 2 || at == 35 || at == 52;
      value[at] = separator ? 'a' : *replacement;
      CHECK(parse(value, &ids) == -1, "byte %d made '%c': accepted", at, value[at]);
      if (separator)
        break;
    }
  }
  printf("ok? %-52s %s\n", "invalid values", failures == before ? "pass" : "see FAILs");
}

// The bytes seen so far end inside the value: wait for more (0), unless a line end inside them already
// says the value is short (-1). The byte after the value is needed too, to know that it ends there.
static void cuts(void) {
  int before = failures;
  struct fs_span_context ids;
  char line[128];
  snprintf(line, sizeof(line), "%s\r\n", VALID);
  for (__u32 seen = 0; seen <= 55; seen++)
    CHECK(parse_at(line, 0, seen, &ids) == 0, "%u bytes of the value seen: %d", seen, parse_at(line, 0, seen, &ids));
  CHECK(parse_at(line, 0, 56, &ids) == 1, "the value and its line end seen");
  // A value that ends early, seen with its line end: malformed now, wherever the bytes seen stop.
  const char *short_line = "00-4bf92f3577b34da6\r\nHost: x\r\n";
  for (__u32 seen = 20; seen < strlen(short_line); seen++)
    CHECK(parse_at(short_line, 0, seen, &ids) == -1, "a short value, %u bytes seen", seen);
  for (__u32 seen = 0; seen < 20; seen++)
    CHECK(parse_at(short_line, 0, seen, &ids) == 0, "a short value's first %u bytes: wait", seen);
  printf("ok? %-52s %s\n", "values cut by the bytes seen", failures == before ? "pass" : "see FAILs");
}

// Anywhere in the step buffer, including its last bytes (the slack past BUF_BYTES takes the reads).
static void offsets(void) {
  int before = failures;
  struct fs_span_context ids;
  char line[128];
  snprintf(line, sizeof(line), "%s\r\n", VALID);
  for (__u32 offset = 0; offset + 57 <= BUF_BYTES; offset += 13) {
    int result = parse_at(line, offset, offset + 57, &ids);
    CHECK(result == 1 && hex_is(ids.trace_id, VALID + 3, 16), "at %u: %d", offset, result);
  }
  CHECK(parse_at(line, BUF_BYTES - 57, BUF_BYTES, &ids) == 1, "ending at the buffer's end");
  CHECK(parse_at(line, BUF_BYTES - 40, BUF_BYTES, &ids) == 0, "cut by the buffer's end");
  printf("ok? %-52s %s\n", "offsets", failures == before ? "pass" : "see FAILs");
}

// The W3C rules, read plainly: version 2 hex (not ff), trace id 32 hex not all zero, span id 16 hex not
// all zero, flags 2 hex, lower case; version 00 ends after the flags, later ones may go on with '-'.
static int reference(const char *value, __u32 length) {
  if (length < 56)
    return -2; // not used: the mutations keep the length
  for (int i = 0; i < 55; i++) {
    bool separator = i == 2 || i == 35 || i == 52;
    char c = value[i];
    if (separator ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return -1;
  }
  if (value[0] == 'f' && value[1] == 'f')
    return -1;
  bool zero_trace = true, zero_span = true;
  for (int i = 3; i < 35; i++)
    zero_trace &= value[i] == '0';
  for (int i = 36; i < 52; i++)
    zero_span &= value[i] == '0';
  if (zero_trace || zero_span)
    return -1;
  char next = value[55];
  bool end = next == '\r' || next == '\n' || next == ' ' || next == '\t';
  if (value[0] == '0' && value[1] == '0')
    return end ? 1 : -1;
  return end || next == '-' ? 1 : -1;
}

static void mutations(void) {
  int before = failures;
  struct fs_span_context ids;
  const char alphabet[] = "0123456789abcdefABF-g \r\n\t\x00\xff";
  __u64 seed = 0x243F6A8885A308D3ULL;
  int accepted = 0;
  for (int round = 0; round < 200000; round++) {
    char line[64];
    snprintf(line, sizeof(line), "%s\r\n", VALID);
    for (int k = (seed >> 60) % 3; k >= 0; k--) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      int at = (seed >> 33) % 57;
      int pick = (seed >> 45) % 4;
      // Mostly digits that keep the value well formed, so that zero ids and versions get reached.
      line[at] = pick == 0 ? alphabet[(seed >> 20) % (sizeof(alphabet) - 1)] : pick == 1 ? '0' : pick == 2 ? 'f' : 'a';
    }
    int want = reference(line, 57);
    int got = parse_at(line, 0, 57, &ids);
    // Nothing the parser returns may disagree with the rules, except that a line end inside the value is
    // found before its digits are checked: both say -1.
    CHECK(got == want, "'%.57s': %d, the rules say %d", line, got, want);
    accepted += got == 1;
  }
  printf("ok? %-52s 200000 values, %d valid: %s\n", "random mutations", accepted,
         failures == before ? "pass" : "see FAILs");
}

int main(void) {
  valid_values();
  invalid_values();
  cuts();
  offsets();
  mutations();
  printf("%d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
