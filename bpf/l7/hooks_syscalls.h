// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// The syscall hooks (fallback for kernels without the socket tracepoints).
#ifndef FLAMESPAN_L7_HOOKS_SYSCALLS_H
#define FLAMESPAN_L7_HOOKS_SYSCALLS_H

static __always_inline void track_connection(int fd, __u8 role) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 tgid = pid_tgid >> 32;
  if (fd < 0 || !is_target(tgid))
    return;
  __u64 connection = fd_connection(tgid, fd);
  struct conn *old = bpf_map_lookup_elem(&l7_connections, &connection);
  if (old) {
    finish_exchange(old, FS_L7_END_REPLACED, 0);
    forget_queued(old);
  }
  new_connection(connection, fd, role, bpf_ktime_get_ns(), socket_of_fd(fd));
}

// Remembers the buffer of a read or write on a tracked connection until the syscall returns. A server
// that goes back to reading a connection has finished answering on it: the exchange ends now, before the
// thread blocks, so its idle time and unrelated work do not count.
static __always_inline void before_io(int fd, __u64 buffer, __u64 count, __u8 indirection, bool reading) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 tgid = pid_tgid >> 32;
  if (!is_target(tgid))
    return;
  __u64 connection = fd_connection(tgid, fd);
  note_tls_connection(pid_tgid, connection);
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &connection);
  if (!conn)
    return;
  if (reading && conn->role == FS_L7_ROLE_SERVER && conn->state == CONN_RESPONSE) {
    finish_exchange(conn, FS_L7_END_NEXT_READ, 0);
    serve_next_queued(conn, pid_tgid, true);
  }
  struct pending_io io = {.buffer = buffer, .fd = fd, .indirection = indirection, .count = count};
  bpf_map_update_elem(&l7_pending, &pid_tgid, &io, BPF_ANY);
}

static __always_inline void after_io(long transferred, bool reading) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct pending_io *pending = bpf_map_lookup_elem(&l7_pending, &pid_tgid);
  if (!pending)
    return;
  struct pending_io io = *pending;
  bpf_map_delete_elem(&l7_pending, &pid_tgid);
  if (transferred <= 0 || (tls_calls_seen && bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid)))
    return;
  __u64 connection = fd_connection(pid_tgid >> 32, io.fd);
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &connection);
  if (!conn)
    return;
  if (reading)
    process_read(conn, io, transferred, pid_tgid);
  else
    process_write(conn, io, transferred, pid_tgid);
}

#define ARG(ctx, n) ((ctx)->args[n])

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx) {
  track_connection(ctx->ret, FS_L7_ROLE_SERVER);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx) {
  track_connection(ctx->ret, FS_L7_ROLE_SERVER);
  return 0;
}

// connect's fd is only known at entry.
SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if (!is_target(pid_tgid >> 32))
    return 0;
  struct pending_io io = {.fd = ARG(ctx, 0), .indirection = 4};
  bpf_map_update_elem(&l7_pending, &pid_tgid, &io, BPF_ANY);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct pending_io *io = bpf_map_lookup_elem(&l7_pending, &pid_tgid);
  if (!io)
    return 0;
  int fd = io->fd;
  __u8 kind = io->indirection;
  bpf_map_delete_elem(&l7_pending, &pid_tgid);
  if (kind == 4 && (ctx->ret == 0 || ctx->ret == -EINPROGRESS))
    track_connection(fd, FS_L7_ROLE_CLIENT);
  return 0;
}

// One enter/exit pair per hooked syscall: (name, indirection, reading).
#define IO_SYSCALL(name, indirection, reading)                                                             \
  SEC("tracepoint/syscalls/sys_enter_" #name)                                                            \
  int enter_##name(struct trace_event_raw_sys_enter *ctx) {                                              \
    before_io(ARG(ctx, 0), indirection == 3 ? 0 : ARG(ctx, 1), ARG(ctx, 2), indirection, reading);       \
    return 0;                                                                                            \
  }                                                                                                      \
  SEC("tracepoint/syscalls/sys_exit_" #name)                                                             \
  int exit_##name(struct trace_event_raw_sys_exit *ctx) {                                                \
    after_io(ctx->ret, reading);                                                                         \
    return 0;                                                                                            \
  }

IO_SYSCALL(read, 0, true)
IO_SYSCALL(readv, 1, true)
IO_SYSCALL(recvfrom, 0, true)
IO_SYSCALL(recvmsg, 2, true)
IO_SYSCALL(write, 0, false)
IO_SYSCALL(writev, 1, false)
IO_SYSCALL(sendto, 0, false)
IO_SYSCALL(sendmsg, 2, false)
// nginx sends file bodies with sendfile: bytes only, no payload to look at.
IO_SYSCALL(sendfile64, 3, false)

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  close_connection(fd_connection(pid_tgid >> 32, ARG(ctx, 0)));
  return 0;
}

#endif
