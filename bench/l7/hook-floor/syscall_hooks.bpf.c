// Empty programs on the syscall tracepoints the L7 tracer's fallback hooks: what the kernel charges for the
// hooks alone, before any work of ours. Each returns after one pid-filter lookup, like a real hook for a
// process that is not traced.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u8);
} targets SEC(".maps");
static __always_inline int filtered(void) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  return bpf_map_lookup_elem(&targets, &tgid) != 0;
}
#define HOOK(name)                                                                                       \
  SEC("tracepoint/syscalls/sys_enter_" #name) int enter_##name(void *ctx) { return filtered(); }        \
  SEC("tracepoint/syscalls/sys_exit_" #name) int exit_##name(void *ctx) { return filtered(); }
HOOK(read) HOOK(readv) HOOK(recvfrom) HOOK(recvmsg) HOOK(write) HOOK(writev) HOOK(sendto) HOOK(sendmsg)
HOOK(sendfile64) HOOK(close) HOOK(accept4) HOOK(connect)
