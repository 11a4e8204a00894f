// libFuzzer target for the L7 request-head parser (bpf/l7_head.h) compiled for the host: the input is a
// byte stream cut into reads the way a socket may cut it. Each read starts with one control byte: its
// high bit answers the request in progress first (as a response would), its low 7 bits pick the read's
// length. AddressSanitizer and UBSan catch any read or write outside the parser's buffers; the checks
// below catch results the kernel would export wrong.
//
// The host harness of the unit tests (bpf/host/l7_head_test.c: the parser's callbacks, `feed`,
// `respond`) is reused as it is, its main renamed away, so the fuzzer drives exactly what the tests do.
#define main l7_head_host_tests_main
#include "l7_head_test.c"
#undef main

static struct connection fuzzed;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  connection_reset(&fuzzed);
  size_t at = 0;
  while (at < size) {
    uint8_t control = data[at++];
    if (control & 0x80)
      respond(&fuzzed);
    // 1 to 128 bytes, or (for 0 and 127) a large read that crosses the 1 KiB steps and the 8 KiB bound.
    size_t length = (control & 0x7f) == 0 ? 9000 : (control & 0x7f) == 0x7f ? 1500 : (control & 0x7f);
    if (length > size - at)
      length = size - at;
    feed(&fuzzed, (const char *)data + at, (__u32)length);
    at += length;
  }
  if (fuzzed.owner.count > MAX_REQUESTS)
    __builtin_trap();
  for (int i = 0; i < fuzzed.owner.count; i++) {
    // A request line is at most what the ring record carries, and always terminated.
    if (memchr(fuzzed.owner.requests[i].line, 0, sizeof(fuzzed.owner.requests[i].line)) == NULL)
      __builtin_trap();
    if (fuzzed.owner.requests[i].traceparent < -1 || fuzzed.owner.requests[i].traceparent > 1)
      __builtin_trap();
  }
  return 0;
}
