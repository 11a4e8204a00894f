// What the L7 tracer's headers need from the kernel and libbpf, for their host builds (the unit tests
// here and Fuzz/Targets/L7Head): the integer types, __always_inline, bpf_loop as the kernel runs it, and
// bpf_probe_read_user as a copy that fails where a test says the process's memory is unreadable.
#ifndef FLAMESPAN_HOST_BPF_SHIMS_H
#define FLAMESPAN_HOST_BPF_SHIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;
typedef int64_t __s64;
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

// bpf_loop as the kernel runs it: the callback until it returns non-zero, at most `count` times.
static inline long bpf_loop(__u32 count, long (*callback)(__u64, void *), void *context, __u64 flags) {
  (void)flags;
  for (__u32 i = 0; i < count; i++)
    if (callback(i, context))
      return i + 1;
  return count;
}

// [unreadable_start, unreadable_end): memory bpf_probe_read_user cannot read, as when a page of the
// process is not mapped in. Empty unless a test sets it.
static const char *unreadable_start, *unreadable_end;

static inline long bpf_probe_read_user(void *to, __u32 size, const void *from) {
  const char *start = from, *end = start + size;
  if (!from || (start < unreadable_end && end > unreadable_start)) {
    memset(to, 0, size); // as the kernel leaves the destination after a fault
    return -14;          // -EFAULT
  }
  memcpy(to, from, size);
  return 0;
}

#endif
