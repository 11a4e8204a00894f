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

#include <bpf/btf.h>

int fs_set_rodata_variable(struct bpf_object *object, const char *name, const void *value, size_t size) {
  struct bpf_map *map = NULL;
  struct bpf_map *rodata = NULL;
  while ((map = bpf_object__next_map(object, map)) != NULL) {
    const char *map_name = bpf_map__name(map);
    size_t length = strlen(map_name);
    if (length >= 7 && strcmp(map_name + length - 7, ".rodata") == 0) {
      rodata = map;
      break;
    }
  }
  struct btf *btf = bpf_object__btf(object);
  if (!rodata || !btf)
    return -ESRCH;
  int section_id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
  if (section_id < 0)
    return -ESRCH;
  const struct btf_type *section = btf__type_by_id(btf, section_id);
  const struct btf_var_secinfo *info = btf_var_secinfos(section);
  for (int i = 0; i < btf_vlen(section); i++, info++) {
    const struct btf_type *variable = btf__type_by_id(btf, info->type);
    if (strcmp(btf__name_by_offset(btf, variable->name_off), name) != 0)
      continue;
    if (info->size != size)
      return -EINVAL;
    size_t data_size = 0;
    // Before load this is the mmap-ed image libbpf will load from, so writing it configures the program.
    char *data = (char *)bpf_map__initial_value(rodata, &data_size);
    if (!data || info->offset + size > data_size)
      return -EINVAL;
    memcpy(data + info->offset, value, size);
    return 0;
  }
  return -ENOENT;
}

void fs_atomic_set_bit(uint64_t *words, uint32_t bit) {
  __atomic_fetch_or(&words[bit / 64], (uint64_t)1 << (bit % 64), __ATOMIC_SEQ_CST);
}
