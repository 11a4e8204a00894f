// SPDX-License-Identifier: GPL-2.0
// The CPU sampler: attached to one software cpu-clock perf event per online CPU. Each sample carries both
// stacks, the thread identity and the span active on the thread, and goes to user space through a ring
// buffer; aggregation happens there (see docs/design-choices.md for why).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "flamespan_abi.h"

// errno values (vmlinux.h carries types, not macros).
#define ENOMEM 12
#define EEXIST 17

char LICENSE[] SEC("license") = "GPL";

// Set by user space before load.
const volatile bool filter_by_pid = false;
const volatile bool include_idle = false;
// Count distinct stacks in maps instead of streaming every sample (no timestamps, no span ids; see
// docs/architecture.md for the measured trade-off).
const volatile bool aggregate_in_kernel = false;

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

// Thread groups to sample when filter_by_pid is set. Children forked by a target join automatically.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192);
  __type(key, __u32);
  __type(value, __u8);
} targets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, FS_COUNTER_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} fs_counters SEC(".maps");

// The span active on each thread, keyed by pid_tgid, in the traces_ctx_v1 layout. The L7 tracer writes it;
// the sampler only reads it.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct fs_span_context);
} traces_ctx_v1 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 16384);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, FS_MAX_STACK_DEPTH * sizeof(__u64));
} stack_traces SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 32768);
  __type(key, struct fs_aggregate_key);
  __type(value, __u64);
} stack_counts SEC(".maps");

static __always_inline void count(__u32 counter) {
  __u64 *value = bpf_map_lookup_elem(&fs_counters, &counter);
  if (value)
    *value += 1;
}

static __always_inline bool is_target(__u32 pid) {
  return !filter_by_pid || bpf_map_lookup_elem(&targets, &pid) != NULL;
}

// -EEXIST (a hash collision in the stack map) and -ENOMEM (map full) lose the stack but not the sample:
// it is still counted, under the negative id, so totals stay right.
static __always_inline int aggregate(struct bpf_perf_event_data *ctx, __u32 pid, __u32 tid) {
  struct fs_aggregate_key key = {};
  key.pid = pid;
  key.tid = tid;
  bpf_get_current_comm(key.comm, sizeof(key.comm));
  key.kernel_stack_id = bpf_get_stackid(ctx, &stack_traces, 0);
  key.user_stack_id = bpf_get_stackid(ctx, &stack_traces, BPF_F_USER_STACK);
  if (key.kernel_stack_id == -EEXIST || key.kernel_stack_id == -ENOMEM || key.user_stack_id == -EEXIST ||
      key.user_stack_id == -ENOMEM)
    count(FS_COUNTER_STACK_MAP_FULL);
  __u64 *value = bpf_map_lookup_elem(&stack_counts, &key);
  if (value) {
    __sync_fetch_and_add(value, 1);
  } else {
    __u64 one = 1;
    if (bpf_map_update_elem(&stack_counts, &key, &one, BPF_NOEXIST) != 0) {
      value = bpf_map_lookup_elem(&stack_counts, &key);
      if (value)
        __sync_fetch_and_add(value, 1);
      else {
        count(FS_COUNTER_COUNTS_FULL);
        return 0;
      }
    }
  }
  count(FS_COUNTER_SAMPLES);
  return 0;
}

SEC("perf_event")
int sample_cpu(struct bpf_perf_event_data *ctx) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 pid = pid_tgid >> 32;
  __u32 tid = (__u32)pid_tgid;

  if (tid == 0 && !include_idle) {
    count(FS_COUNTER_IDLE);
    return 0;
  }
  if (!is_target(pid)) {
    count(FS_COUNTER_FILTERED);
    return 0;
  }

  if (aggregate_in_kernel)
    return aggregate(ctx, pid, tid);

  struct fs_sample *sample = bpf_ringbuf_reserve(&events, sizeof(*sample), 0);
  if (!sample) {
    count(FS_COUNTER_RINGBUF_FULL);
    return 0;
  }
  sample->kind = FS_EVENT_SAMPLE;
  sample->pid = pid;
  sample->tid = tid;
  sample->cpu = bpf_get_smp_processor_id();
  sample->time_ns = bpf_ktime_get_ns();
  bpf_get_current_comm(sample->comm, sizeof(sample->comm));

  long kernel_bytes = bpf_get_stack(ctx, sample->kernel_stack, sizeof(sample->kernel_stack), 0);
  if (kernel_bytes < 0)
    count(FS_COUNTER_KERNEL_STACK_ERR);
  sample->kernel_stack_bytes = kernel_bytes;

  long user_bytes = 0;
  if (tid != 0) {
    user_bytes = bpf_get_stack(ctx, sample->user_stack, sizeof(sample->user_stack), BPF_F_USER_STACK);
    if (user_bytes < 0)
      count(FS_COUNTER_USER_STACK_ERR);
  }
  sample->user_stack_bytes = user_bytes;

  struct fs_span_context *span = bpf_map_lookup_elem(&traces_ctx_v1, &pid_tgid);
  if (span)
    __builtin_memcpy(&sample->span, span, sizeof(sample->span));
  else
    __builtin_memset(&sample->span, 0, sizeof(sample->span));

  bpf_ringbuf_submit(sample, 0);
  count(FS_COUNTER_SAMPLES);
  return 0;
}

static __always_inline void notify_process(__u32 kind, __u32 pid, __u32 tid) {
  struct fs_process_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
  if (!event) {
    count(FS_COUNTER_PROCESS_EVENTS_LOST);
    return;
  }
  event->kind = kind;
  event->pid = pid;
  event->tid = tid;
  event->reserved = 0;
  event->time_ns = bpf_ktime_get_ns();
  bpf_get_current_comm(event->comm, sizeof(event->comm));
  bpf_ringbuf_submit(event, 0);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 pid = pid_tgid >> 32;
  if (is_target(pid))
    notify_process(FS_EVENT_EXEC, pid, (__u32)pid_tgid);
  return 0;
}

// Only the last thread of a group leaving matters: that is when the mappings go away.
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 pid = pid_tgid >> 32;
  if ((__u32)pid_tgid != pid || !is_target(pid))
    return 0;
  notify_process(FS_EVENT_EXIT, pid, (__u32)pid_tgid);
  if (filter_by_pid)
    bpf_map_delete_elem(&targets, &pid);
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child) {
  if (!filter_by_pid)
    return 0;
  __u32 parent_pid = parent->tgid;
  if (!bpf_map_lookup_elem(&targets, &parent_pid))
    return 0;
  __u32 child_pid = child->tgid;
  __u8 yes = 1;
  if (bpf_map_update_elem(&targets, &child_pid, &yes, BPF_ANY) != 0)
    count(FS_COUNTER_TARGETS_FULL);
  return 0;
}
