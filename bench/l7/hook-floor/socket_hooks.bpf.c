// Empty programs on the socket tracepoints the L7 tracer hooks by default (see syscall_hooks.bpf.c).
#include "vmlinux.h"
#include <bpf/bpf_tracing.h>
#include "filter.h"
SEC("tp_btf/sock_recv_length") int BPF_PROG(received, struct sock *sk, int ret, int flags) { return filtered(); }
SEC("tp_btf/sock_send_length") int BPF_PROG(sent, struct sock *sk, int ret, int flags) { return filtered(); }
SEC("tp_btf/inet_sock_set_state") int BPF_PROG(state, struct sock *sk, int old, int new) { return filtered(); }
