// For host tests of the parts of the L7 tracer next to its request-head parser (the response scan,
// traceparent values): l7_head.h declares hooks its includer must define. These tests never run the head
// parser, so each hook is a failed check if it is called.
#ifndef FLAMESPAN_HOST_NO_HEAD_HOOKS_H
#define FLAMESPAN_HOST_NO_HEAD_HOOKS_H

#include "host/check.h"

static int head_on_begin(struct head_parse *p, __u32 at) {
  CHECK(0, "the head parser ran");
  return 0;
}
static int head_copy(struct head_parse *p, char *to, __u32 offset, __u32 length) {
  CHECK(0, "the head parser ran");
  return 0;
}
static void head_on_line(struct head_parse *p, __u32 at, __u32 length, bool cut) { CHECK(0, "the head parser ran"); }
static void head_on_traceparent(struct head_parse *p, int result, struct fs_span_context *ids) {
  CHECK(0, "the head parser ran");
}
static void head_on_end(struct head_parse *p, __u32 at, __u32 end) { CHECK(0, "the head parser ran"); }
static void head_on_other(struct head_parse *p, __u32 at) { CHECK(0, "the head parser ran"); }
static void head_count(struct head_parse *p, __u32 counter) { CHECK(0, "the head parser ran"); }

#endif
