// SPDX-License-Identifier: GPL-2.0
// The CPU sampler: attached to one software cpu-clock perf event per online CPU. Each sample carries both
// stacks, the thread identity and the span active on the thread, and goes to user space through a ring
// buffer; aggregation happens there: an in-kernel count loses each sample's time and span, which
// drill-down and OTLP's per-sample timestamps need ("Stream, don't aggregate in the kernel" in
// docs/architecture.md; the costs measured are in bench/overhead/RESULTS.md).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "flamespan_abi.h"

// errno values (vmlinux.h carries types, not macros).
#define ENOMEM 12
#define EEXIST 17
#define ERANGE 34

char LICENSE[] SEC("license") = "GPL";

// Set by user space before load.
const volatile bool filter_by_pid = false;
const volatile bool include_idle = false;
// Count distinct stacks in maps instead of streaming every sample (record --kernel-aggregation): no
// timestamps, no span ids; cheaper per sample (bench/overhead/RESULTS.md).
const volatile bool aggregate_in_kernel = false;
// DWARF unwinding mode: also send the user registers and the top `user_stack_copy_bytes` of the user stack
// (at most FS_MAX_USER_STACK_COPY), which user space unwinds with the CFI of each mapped file.
const volatile bool copy_user_stack = false;
const volatile __u32 user_stack_copy_bytes = 16384;

// User space may resize it before load (bigger in DWARF mode, where each record carries a stack copy).
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

#define PAGE_BYTES 4096
// The record is assembled here and then sent at its used length with bpf_ringbuf_output, so a short stack
// costs ring buffer space for what was copied only. The slack lets the verifier see that a page-sized read
// at any offset below FS_MAX_USER_STACK_COPY stays inside the value. One slot per CPU (user space sizes
// the array to the possible CPUs); a perf_event program cannot be preempted on its CPU.
// `python_frame` holds the head of the _PyInterpreterFrame being walked: one read per frame, fields picked
// from the copy (every field the walk follows sits in the first PYTHON_FRAME_WINDOW bytes on 3.11-3.13).
#define PYTHON_FRAME_WINDOW 72
struct stack_copy_scratch {
  struct fs_sample_with_stack record;
  __u8 slack[PAGE_BYTES];
  __u8 python_frame[PYTHON_FRAME_WINDOW];
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1); // resized to the number of possible CPUs before load
  __type(key, __u32);
  __type(value, struct stack_copy_scratch);
} stack_copies SEC(".maps");

// The CPython processes whose frames are walked, with their layouts (struct fs_python_process). User space
// adds a process once its plug-in recognises the interpreter; exec and exit remove it here, since the
// layout belongs to the image that was running.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, struct fs_python_process);
} python_processes SEC(".maps");

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
// the sampler only reads it. One entry per thread that has served a request, rewritten in place per request
// and deleted when the thread exits; an all-zero span id means no span.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
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

// Waking the reader for every sample costs it a context switch each time; it drains the buffer every 100 ms
// anyway (CPUSampler.poll), so a sample forces a wakeup only once a quarter of the buffer is in use.
// The first sample of a process (or of its new image after exec) wakes the reader at once all the same: it
// must read /proc/PID/maps before a short-lived process is gone.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, __u8);
} announced_pids SEC(".maps");

static __always_inline __u64 sample_wakeup_flags(__u32 pid) {
  __u8 yes = 1;
  if (bpf_map_update_elem(&announced_pids, &pid, &yes, BPF_NOEXIST) == 0)
    return BPF_RB_FORCE_WAKEUP;
  // A quarter of the ring, whatever size user space gave it (the agent's is smaller than record's).
  __u64 quarter = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 4;
  return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > quarter ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

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

static __always_inline void fill_sample(struct bpf_perf_event_data *ctx, struct fs_sample *sample,
                                        __u32 kind, __u64 pid_tgid) {
  __u32 pid = pid_tgid >> 32;
  __u32 tid = (__u32)pid_tgid;
  sample->kind = kind;
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
}

// Copies the user stack from `sp` upward a page at a time, so a stack that ends (the top of the mapping)
// before the configured size still yields everything below that end. Returns the bytes copied.
static __always_inline __u32 copy_stack(struct fs_sample_with_stack *record, __u64 sp) {
  __u32 limit = user_stack_copy_bytes;
  if (limit > FS_MAX_USER_STACK_COPY)
    limit = FS_MAX_USER_STACK_COPY;
  __u32 copied = 0;
  record->stack_copy_error = 0;
  for (int page = 0; page < FS_MAX_USER_STACK_COPY / PAGE_BYTES + 1; page++) {
    if (copied >= limit || copied >= FS_MAX_USER_STACK_COPY)
      break;
    __u64 address = sp + copied;
    __u32 chunk = PAGE_BYTES - (address & (PAGE_BYTES - 1));
    if (chunk > limit - copied)
      chunk = limit - copied;
    if (chunk > PAGE_BYTES || chunk == 0)
      break;
    long status = bpf_probe_read_user(&record->stack[copied & (FS_MAX_USER_STACK_COPY - 1)], chunk,
                                      (const void *)address);
    if (status != 0) {
      record->stack_copy_error = status;
      count(copied == 0 ? FS_COUNTER_STACK_COPY_FAILED : FS_COUNTER_STACK_COPY_SHORT);
      break;
    }
    copied += chunk;
  }
  return copied;
}

// CPython frames (issue 18). The sampled thread is stopped while this runs, so its own frame chain cannot
// change under the walk; what another thread frees can, and user space checks each code object's stamp.
struct python_tss {
  __s32 is_initialized;
  __u32 key;
};

// What the bpf_loop callback needs; it lives on the caller's stack.
struct python_walk {
  struct fs_python_stack *stack;
  const struct fs_python_process *process;
  __u8 *frame; // the PYTHON_FRAME_WINDOW bytes of the frame being read
  __u64 next;  // the frame to read next; 0 once the chain ended
};

static __always_inline void python_walk_failed(struct fs_python_stack *stack, long error) {
  stack->status = FS_PYTHON_STACK_READ_FAILED;
  stack->read_error = error;
}

// Offsets come from user space, which checks that each field fits the window (CPUSampler
// .publishInterpreter); the bound here is what lets the verifier accept the variable offset.
static __always_inline bool window_u64(const __u8 *window, __u16 offset, __u64 *value) {
  if (offset > PYTHON_FRAME_WINDOW - sizeof(__u64))
    return false;
  *value = *(const __u64 *)(window + offset);
  return true;
}

static __always_inline __u8 window_u8(const __u8 *window, __u16 offset) {
  if (offset > PYTHON_FRAME_WINDOW - 1)
    return 0;
  return window[offset];
}

static long walk_python_frame(__u64 index, void *context) {
  struct python_walk *walk = context;
  struct fs_python_stack *stack = walk->stack;
  const struct fs_python_process *process = walk->process;
  __u8 *window = walk->frame;
  if (index >= FS_MAX_PYTHON_FRAMES || walk->next == 0)
    return 1;
  long error = bpf_probe_read_user(window, PYTHON_FRAME_WINDOW, (const void *)walk->next);
  if (error != 0) {
    python_walk_failed(stack, error);
    return 1;
  }
  struct fs_python_frame *frame = &stack->frames[index];
  __u64 previous = 0;
  if (!window_u64(window, process->frame_code, &frame->code) ||
      !window_u64(window, process->frame_instruction, &frame->instruction) ||
      !window_u64(window, process->frame_previous, &previous)) {
    python_walk_failed(stack, -ERANGE);
    return 1;
  }
  frame->owner = window_u8(window, process->frame_owner);
  frame->is_entry =
      process->frame_is_entry == FS_PYTHON_NO_OFFSET ? 0 : window_u8(window, process->frame_is_entry);
  frame->reserved = 0;
  error = bpf_probe_read_user(&frame->stamp, sizeof(frame->stamp),
                              (const void *)(frame->code + process->code_stamp));
  if (error != 0) {
    python_walk_failed(stack, error);
    return 1;
  }
  stack->count = index + 1;
  walk->next = previous;
  return previous == 0 ? 1 : 0;
}

// Fills record->python (already reset to "none") for a process in `python_processes`: the thread state
// through the interpreter's TSS key and glibc's per-thread key slots (fs_python_process in
// flamespan_abi.h), then the frame chain.
static __always_inline void walk_python(struct stack_copy_scratch *scratch, struct task_struct *task,
                                        __u32 pid) {
  struct fs_python_stack *stack = &scratch->record.python;
  const struct fs_python_process *process = bpf_map_lookup_elem(&python_processes, &pid);
  if (!process)
    return;

  struct python_tss tss = {};
  long error = bpf_probe_read_user(&tss, sizeof(tss), (const void *)process->tss_address);
  if (error != 0)
    goto failed;
  if (tss.is_initialized == 0)
    return; // the interpreter has not created its key yet
  if (tss.key >= process->tsd_key_limit) {
    error = -ERANGE;
    goto failed;
  }
  __u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
  __u64 slot = fsbase + process->tsd_data_offset + (__u64)tss.key * process->tsd_stride;
  __u64 thread_state = 0;
  error = bpf_probe_read_user(&thread_state, sizeof(thread_state), (const void *)slot);
  if (error != 0)
    goto failed;
  if (thread_state == 0)
    return; // a thread the interpreter does not know (a native helper thread)
  stack->thread_state = thread_state;

  __u64 frame = 0;
  if (process->tstate_current_frame != FS_PYTHON_NO_OFFSET) {
    error = bpf_probe_read_user(&frame, sizeof(frame),
                                (const void *)(thread_state + process->tstate_current_frame));
  } else {
    __u64 cframe = 0;
    error = bpf_probe_read_user(&cframe, sizeof(cframe),
                                (const void *)(thread_state + process->tstate_cframe));
    if (error == 0 && cframe != 0)
      error = bpf_probe_read_user(&frame, sizeof(frame),
                                  (const void *)(cframe + process->cframe_current_frame));
  }
  if (error != 0)
    goto failed;
  if (frame == 0)
    return; // no Python code running on this thread

  count(FS_COUNTER_PYTHON_STACKS);
  struct python_walk walk = {
      .stack = stack, .process = process, .frame = scratch->python_frame, .next = frame};
  bpf_loop(FS_MAX_PYTHON_FRAMES, walk_python_frame, &walk, 0);
  if (stack->status == FS_PYTHON_STACK_READ_FAILED) {
    count(FS_COUNTER_PYTHON_READ_FAILED);
  } else if (walk.next != 0) {
    stack->status = FS_PYTHON_STACK_TRUNCATED;
    count(FS_COUNTER_PYTHON_TRUNCATED);
  } else {
    stack->status = FS_PYTHON_STACK_COMPLETE;
  }
  return;

failed:
  python_walk_failed(stack, error);
  count(FS_COUNTER_PYTHON_READ_FAILED);
}

static __always_inline int sample_with_stack(struct bpf_perf_event_data *ctx, __u64 pid_tgid) {
  __u32 slot = bpf_get_smp_processor_id();
  struct stack_copy_scratch *scratch = bpf_map_lookup_elem(&stack_copies, &slot);
  if (!scratch)
    return 0;
  struct fs_sample_with_stack *record = &scratch->record;
  fill_sample(ctx, &record->sample, FS_EVENT_SAMPLE_WITH_STACK, pid_tgid);
  // User space reads only `count` frames, so the 1.5 KiB frame array is not cleared.
  record->python.count = 0;
  record->python.status = FS_PYTHON_STACK_NONE;
  record->python.read_error = 0;
  record->python.reserved = 0;
  record->python.thread_state = 0;

  // The user-mode registers saved on kernel entry: right whether the sample hit user or kernel code.
  struct task_struct *task = bpf_get_current_task_btf();
  __u32 copied = 0;
  record->regs.ip = 0;
  record->regs.sp = 0;
  record->regs.bp = 0;
  record->stack_copy_error = 0;
  if (task->mm) {
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
    record->regs.ip = BPF_CORE_READ(regs, ip);
    record->regs.sp = BPF_CORE_READ(regs, sp);
    record->regs.bp = BPF_CORE_READ(regs, bp);
    walk_python(scratch, task, pid_tgid >> 32);
    copied = copy_stack(record, record->regs.sp);
  }
  record->stack_copy_bytes = copied;

  __u64 size = __builtin_offsetof(struct fs_sample_with_stack, stack) + copied;
  if (size > sizeof(*record))
    size = sizeof(*record);
  if (bpf_ringbuf_output(&events, record, size, sample_wakeup_flags(pid_tgid >> 32)) != 0) {
    count(FS_COUNTER_RINGBUF_FULL);
    return 0;
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

  if (copy_user_stack)
    return sample_with_stack(ctx, pid_tgid);

  struct fs_sample *sample = bpf_ringbuf_reserve(&events, sizeof(*sample), 0);
  if (!sample) {
    count(FS_COUNTER_RINGBUF_FULL);
    return 0;
  }
  fill_sample(ctx, sample, FS_EVENT_SAMPLE, pid_tgid);
  bpf_ringbuf_submit(sample, sample_wakeup_flags(pid));
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
  bpf_map_delete_elem(&announced_pids, &pid);
  bpf_map_delete_elem(&python_processes, &pid);
  if (is_target(pid))
    notify_process(FS_EVENT_EXEC, pid, (__u32)pid_tgid);
  return 0;
}

// Only the last thread of a group leaving matters: that is when the mappings go away.
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 pid = pid_tgid >> 32;
  if ((__u32)pid_tgid != pid)
    return 0;
  bpf_map_delete_elem(&python_processes, &pid);
  if (!is_target(pid))
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
