// Empty programs on the syscall tracepoints that the L7 tracer's fallback hooks: what the kernel charges for the
// hooks alone, before any work of ours. Each returns after one pid-filter lookup, like a real hook for a
// process that is not traced.
#include "vmlinux.h"
#include "filter.h"
#define HOOK(name)                                                                                       \
  SEC("tracepoint/syscalls/sys_enter_" #name) int enter_##name(void *ctx) { return filtered(); }        \
  SEC("tracepoint/syscalls/sys_exit_" #name) int exit_##name(void *ctx) { return filtered(); }
HOOK(read) HOOK(readv) HOOK(recvfrom) HOOK(recvmsg) HOOK(write) HOOK(writev) HOOK(sendto) HOOK(sendmsg)
HOOK(sendfile64) HOOK(close) HOOK(accept4) HOOK(connect)
