#include "flamespan_bpf_shim.h"
#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int fs_open_cpu_clock_event(int cpu, unsigned long frequency) {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.freq = 1;
  attr.sample_freq = frequency;
  long fd = syscall(__NR_perf_event_open, &attr, -1 /* every process */, cpu, -1, PERF_FLAG_FD_CLOEXEC);
  return fd < 0 ? -errno : (int)fd;
}

struct bpf_object *fs_open_object_from_memory(const void *bytes, size_t size, const char *name) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
  return bpf_object__open_mem(bytes, size, &opts);
}

static pthread_mutex_t messages_lock = PTHREAD_MUTEX_INITIALIZER;
static char messages[16384];
static size_t messages_length;
static int messages_max_level;

static int capture(enum libbpf_print_level level, const char *format, va_list args) {
  if ((int)level > messages_max_level)
    return 0;
  pthread_mutex_lock(&messages_lock);
  if (messages_length < sizeof(messages) - 1) {
    int n = vsnprintf(messages + messages_length, sizeof(messages) - messages_length, format, args);
    if (n > 0) {
      messages_length += (size_t)n;
      if (messages_length > sizeof(messages) - 1)
        messages_length = sizeof(messages) - 1;
    }
  }
  pthread_mutex_unlock(&messages_lock);
  return 0;
}

void fs_capture_libbpf_messages(int max_level) {
  messages_max_level = max_level;
  libbpf_set_print(capture);
}

size_t fs_take_libbpf_messages(char *buffer, size_t capacity) {
  pthread_mutex_lock(&messages_lock);
  size_t n = messages_length < capacity - 1 ? messages_length : capacity - 1;
  memcpy(buffer, messages, n);
  buffer[n] = 0;
  messages_length = 0;
  pthread_mutex_unlock(&messages_lock);
  return n;
}
