// Empty programs on the socket tracepoints the L7 tracer hooks by default (see syscall_hooks.bpf.c).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
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
SEC("tp_btf/sock_recv_length") int BPF_PROG(received, struct sock *sk, int ret, int flags) { return filtered(); }
SEC("tp_btf/sock_send_length") int BPF_PROG(sent, struct sock *sk, int ret, int flags) { return filtered(); }
SEC("tp_btf/inet_sock_set_state") int BPF_PROG(state, struct sock *sk, int old, int new) { return filtered(); }
