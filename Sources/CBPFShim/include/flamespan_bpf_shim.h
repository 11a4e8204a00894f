// What Swift cannot express directly around libbpf: the variadic perf_event_open syscall and the
// LIBBPF_OPTS-initialized open options.
#ifndef FLAMESPAN_BPF_SHIM_H
#define FLAMESPAN_BPF_SHIM_H
#include <bpf/libbpf.h>
#include <stddef.h>

// Opens a software cpu-clock sampling event on `cpu` for all processes, sampling `frequency` times a
// second. Returns the fd, or -errno.
int fs_open_cpu_clock_event(int cpu, unsigned long frequency);

// bpf_object__open_mem with a name, so libbpf's messages say which object they are about.
struct bpf_object *fs_open_object_from_memory(const void *bytes, size_t size, const char *name);

// Routes libbpf's own diagnostics into a buffer the caller can read, instead of stderr; returns the
// previous level. Messages of level > max_level are dropped.
void fs_capture_libbpf_messages(int max_level);
// Copies and clears the captured messages; returns the number of bytes written (without the NUL).
size_t fs_take_libbpf_messages(char *buffer, size_t capacity);

#endif

#ifndef FLAMESPAN_BPF_SHIM_RODATA
#define FLAMESPAN_BPF_SHIM_RODATA
// Writes a `const volatile` global of an opened (not yet loaded) object, found by name through the BTF of
// its .rodata section. Returns 0, -ENOENT (no such variable), -EINVAL (size mismatch) or -ESRCH (no .rodata).
int fs_set_rodata_variable(struct bpf_object *object, const char *name, const void *value, size_t size);
#endif

#ifndef FLAMESPAN_BPF_SHIM_BITS
#define FLAMESPAN_BPF_SHIM_BITS
#include <stdint.h>
// Sets bit `bit` of a bit array shared with BPF programs (a BPF_F_MMAPABLE array map), atomically: the
// programs set and clear other bits of the same words at the same time.
void fs_atomic_set_bit(uint64_t *words, uint32_t bit);
#endif
