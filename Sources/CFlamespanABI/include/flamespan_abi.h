// The records that cross the BPF ring buffer and the maps shared with user space.
// This header is the single source of truth: bpf/*.bpf.c include it after vmlinux.h, Swift imports it
// through the CFlamespanABI module. Each size is pinned by a _Static_assert here and a MemoryLayout test
// in Tests/FlamespanBPFTests, so a change on one side cannot go unnoticed on the other.
#ifndef FLAMESPAN_ABI_H
#define FLAMESPAN_ABI_H

#ifndef __VMLINUX_H__
#include <stdint.h>
typedef uint8_t fs_u8;
typedef uint16_t fs_u16;
typedef uint32_t fs_u32;
typedef int32_t fs_s32;
typedef uint64_t fs_u64;
typedef int64_t fs_s64;
#else
typedef __u8 fs_u8;
typedef __u16 fs_u16;
typedef __u32 fs_u32;
typedef __s32 fs_s32;
typedef __u64 fs_u64;
typedef __s64 fs_s64;
#endif

#define FS_MAX_STACK_DEPTH 127
#define FS_COMM_LEN 16
#define FS_TRACE_ID_LEN 16
#define FS_SPAN_ID_LEN 8

enum fs_event_kind {
  FS_EVENT_SAMPLE = 1,
  FS_EVENT_EXEC = 2,
  FS_EVENT_EXIT = 3,
  FS_EVENT_SAMPLE_WITH_STACK = 4, // struct fs_sample_with_stack: a sample plus a copy of the user stack
};

// Indexes into the per-CPU `fs_counters` array.
enum fs_counter {
  FS_COUNTER_SAMPLES = 0,          // samples written to the ring buffer
  FS_COUNTER_RINGBUF_FULL = 1,     // samples lost because the ring buffer had no room
  FS_COUNTER_KERNEL_STACK_ERR = 2, // bpf_get_stack failed for the kernel stack
  FS_COUNTER_USER_STACK_ERR = 3,   // bpf_get_stack failed for the user stack
  FS_COUNTER_IDLE = 4,             // samples that hit the idle task, not recorded
  FS_COUNTER_FILTERED = 5,         // samples of processes outside the --pid set
  FS_COUNTER_PROCESS_EVENTS_LOST = 6, // exec/exit notices lost to a full ring buffer
  FS_COUNTER_TARGETS_FULL = 7,     // children that could not join the pid filter (map full)
  FS_COUNTER_STACK_MAP_FULL = 8,   // in-kernel aggregation: stack map full or hash collision
  FS_COUNTER_COUNTS_FULL = 9,      // in-kernel aggregation: counts map full, sample lost
  FS_COUNTER_STACK_COPY_FAILED = 10, // DWARF mode: the first page of the user stack could not be read
  FS_COUNTER_STACK_COPY_SHORT = 11,  // DWARF mode: the copy stopped early at an unreadable page
  FS_COUNTER_PYTHON_STACKS = 12,     // samples of a walked Python process whose thread had a frame chain
  FS_COUNTER_PYTHON_TRUNCATED = 13,  // Python frame chains longer than FS_MAX_PYTHON_FRAMES: outer frames lost
  FS_COUNTER_PYTHON_READ_FAILED = 14, // Python walks stopped by an unreadable thread state or frame
  FS_COUNTER_COUNT = 15,
};

// Value layout of the `traces_ctx_v1` map shared by OBI and the OpenTelemetry eBPF profiler, keyed by
// pid_tgid (tgid << 32 | tid). A zero trace id means "no active span".
struct fs_span_context {
  fs_u8 trace_id[FS_TRACE_ID_LEN];
  fs_u8 span_id[FS_SPAN_ID_LEN];
};

// One CPU sample. Stacks are leaf first; *_stack_bytes is what bpf_get_stack returned: a byte count, or a
// negative errno when the stack could not be read.
struct fs_sample {
  fs_u32 kind; // FS_EVENT_SAMPLE
  fs_u32 pid;  // thread group id
  fs_u32 tid;
  fs_u32 cpu;
  fs_u64 time_ns; // CLOCK_MONOTONIC (bpf_ktime_get_ns)
  fs_s32 kernel_stack_bytes;
  fs_s32 user_stack_bytes;
  struct fs_span_context span;
  char comm[FS_COMM_LEN];
  fs_u64 kernel_stack[FS_MAX_STACK_DEPTH];
  fs_u64 user_stack[FS_MAX_STACK_DEPTH];
};

// The largest user stack copy a sample can carry; the copy size actually used is a rodata setting.
#define FS_MAX_USER_STACK_COPY 65536
// Where the stack bytes start in struct fs_sample_with_stack (Swift does not import the 64 KiB array).
#define FS_SAMPLE_WITH_STACK_HEADER_BYTES 3696

// The user-mode registers a DWARF CFI unwinder starts from, read from the task's saved user registers
// (so they are right even when the sample interrupted the kernel). x86-64 only.
struct fs_user_regs {
  fs_u64 ip;
  fs_u64 sp;
  fs_u64 bp;
};

// CPython's frame chain, read at sample time (issue 18). The sampler follows the sampled thread's
// PyThreadState (found through the interpreter's pthread TSS key) down its _PyInterpreterFrame chain and
// records each frame's code object and instruction pointer; user space reads the code objects and decodes
// lines. Innermost frame first.
#define FS_MAX_PYTHON_FRAMES 64
// An offset in struct fs_python_process that this CPython version does not have.
#define FS_PYTHON_NO_OFFSET 0xffff

enum fs_python_stack_status {
  FS_PYTHON_STACK_NONE = 0,        // not a walked Python process, or this thread has no thread state/frame
  FS_PYTHON_STACK_COMPLETE = 1,    // walked to the outermost frame
  FS_PYTHON_STACK_TRUNCATED = 2,   // more than FS_MAX_PYTHON_FRAMES frames: the outer ones are missing
  FS_PYTHON_STACK_READ_FAILED = 3, // a read failed: frames before it are kept, read_error says why
};

struct fs_python_frame {
  fs_u64 code;        // the frame's code object (f_code; f_executable in 3.13)
  fs_u64 instruction; // the frame's instruction pointer (prev_instr; instr_ptr in 3.13)
  fs_u32 stamp;       // 4 bytes of the code object at fs_python_process.code_stamp, read now: a freed and
                      // reused code address shows up as a different stamp
  fs_u8 owner;        // the frame's owner field (3.12+: FRAME_OWNED_BY_CSTACK marks an entry shim)
  fs_u8 is_entry;     // 3.11's is_entry: the first frame a C-level call of the eval loop ran
  fs_u16 reserved;
};

struct fs_python_stack {
  fs_u32 count;  // frames used
  fs_u32 status; // fs_python_stack_status
  fs_s32 read_error; // negative errno of the read that stopped the walk, or 0
  fs_u32 reserved;
  fs_u64 thread_state; // the PyThreadState the walk started from
  struct fs_python_frame frames[FS_MAX_PYTHON_FRAMES];
};

// Value of the sampler's `python_processes` map (key: tgid): how to find and walk one process's Python
// frames. User space writes it when its CPython plug-in recognises a process (FlamespanRuntimes).
// The thread state of a thread is the pthread TSS value of the interpreter's auto-TSS key:
//   key  = *(u32 *)(tss_address + 4), used only when *(s32 *)tss_address (is_initialized) is non-zero;
//   data = *(u64 *)(fsbase + tsd_data_offset + key * tsd_stride), for key < tsd_key_limit (glibc's first
//          block; keys above it are not followed).
struct fs_python_process {
  fs_u64 tss_address;      // the interpreter's Py_tss_t (autoTSSkey) in the process
  fs_s64 tsd_data_offset;  // from the thread's fsbase to the data pointer of TSD key 0
  fs_u32 tsd_stride;       // bytes between two keys' slots
  fs_u32 tsd_key_limit;    // keys at or above it are not followed
  fs_u16 tstate_cframe;    // PyThreadState.cframe (3.11, 3.12), or FS_PYTHON_NO_OFFSET
  fs_u16 cframe_current_frame; // _PyCFrame.current_frame (3.11, 3.12), or FS_PYTHON_NO_OFFSET
  fs_u16 tstate_current_frame; // PyThreadState.current_frame (3.13+), or FS_PYTHON_NO_OFFSET
  fs_u16 frame_code;
  fs_u16 frame_previous;
  fs_u16 frame_instruction;
  fs_u16 frame_owner;
  fs_u16 frame_is_entry;   // 3.11 only, else FS_PYTHON_NO_OFFSET
  fs_u16 code_stamp;       // offset of the 4 bytes of a code object recorded as the frame's stamp
  fs_u16 reserved[3];
};

// A sample with the top of its user stack (DWARF unwinding mode). Records are variable length: only
// `stack_copy_bytes` bytes of `stack` are sent, starting at regs.sp. The frame-pointer stack in `sample`
// is still filled: it is the fallback when a frame's CFI is missing.
struct fs_sample_with_stack {
  struct fs_sample sample; // sample.kind is FS_EVENT_SAMPLE_WITH_STACK
  struct fs_user_regs regs;
  struct fs_python_stack python; // status FS_PYTHON_STACK_NONE for every process that is not Python
  fs_u32 stack_copy_bytes;
  fs_s32 stack_copy_error; // 0, or the negative errno of the read that stopped the copy
  fs_u8 stack[FS_MAX_USER_STACK_COPY];
};

// Key of the in-kernel aggregation mode's `stack_counts` map: one entry per distinct (thread, stacks).
// Stack ids index the `stack_traces` map, or are a negative errno when that stack could not be stored.
struct fs_aggregate_key {
  fs_u32 pid;
  fs_u32 tid;
  fs_s32 kernel_stack_id;
  fs_s32 user_stack_id;
  char comm[FS_COMM_LEN];
};

// A process exec'd or exited. User space snapshots /proc/PID/maps when it sees one, so that samples
// taken before the image changed still resolve against the old one.
struct fs_process_event {
  fs_u32 kind; // FS_EVENT_EXEC or FS_EVENT_EXIT
  fs_u32 pid;
  fs_u32 tid;
  fs_u32 reserved;
  fs_u64 time_ns;
  char comm[FS_COMM_LEN];
};

_Static_assert(sizeof(struct fs_span_context) == 24, "fs_span_context layout");
_Static_assert(sizeof(struct fs_sample) == 2104, "fs_sample layout");
_Static_assert(sizeof(struct fs_user_regs) == 24, "fs_user_regs layout");
_Static_assert(__builtin_offsetof(struct fs_sample_with_stack, regs) == 2104, "fs_sample_with_stack layout");
_Static_assert(__builtin_offsetof(struct fs_sample_with_stack, stack) == FS_SAMPLE_WITH_STACK_HEADER_BYTES,
               "fs_sample_with_stack layout");
_Static_assert(sizeof(struct fs_sample_with_stack) == 3696 + FS_MAX_USER_STACK_COPY, "fs_sample_with_stack layout");
_Static_assert(sizeof(struct fs_python_frame) == 24, "fs_python_frame layout");
_Static_assert(sizeof(struct fs_python_stack) == 24 + 24 * FS_MAX_PYTHON_FRAMES, "fs_python_stack layout");
_Static_assert(sizeof(struct fs_python_process) == 48, "fs_python_process layout");
_Static_assert(sizeof(struct fs_process_event) == 40, "fs_process_event layout");
_Static_assert(sizeof(struct fs_aggregate_key) == 32, "fs_aggregate_key layout");

#endif
