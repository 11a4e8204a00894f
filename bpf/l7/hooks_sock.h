// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// The socket hooks (default): tp_btf on sock_recv_length / sock_send_length and inet_sock_set_state.
#ifndef FLAMESPAN_L7_HOOKS_SOCK_H
#define FLAMESPAN_L7_HOOKS_SOCK_H

// The syscall a socket I/O came from, read from the task's saved user registers (x86-64 numbers and
// argument registers). Returns false for I/O that did not come straight from one we understand, such as
// io_uring workers and kernel sockets.
static __always_inline bool socket_syscall(struct task_struct *task, struct pending_io *io, bool receiving) {
  struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
  long number = regs->orig_ax;
  io->fd = regs->di;
  io->buffer = regs->si;
  io->count = regs->dx;
  if (receiving) {
    switch (number) {
    case 0:  // read
    case 45: // recvfrom
      io->indirection = 0;
      return true;
    case 19: // readv
      io->indirection = 1;
      return true;
    case 47: // recvmsg
      io->indirection = 2;
      return true;
    }
    return false;
  }
  switch (number) {
  case 1:  // write
  case 44: // sendto
    io->indirection = 0;
    return true;
  case 20: // writev
    io->indirection = 1;
    return true;
  case 46: // sendmsg
    io->indirection = 2;
    return true;
  case 40: // sendfile: bytes only, the fd is the first argument
    io->indirection = 3;
    return true;
  case 275: // splice: bytes only, the socket is fd_out
    io->fd = regs->dx;
    io->indirection = 3;
    return true;
  }
  return false;
}

// Is the socket one the tracer follows: TCP over IPv4 or IPv6? Sets its cookie, which names its
// connection and tells reused sockets apart.
static __always_inline bool tcp_socket(struct sock *sk, __u64 *connection) {
  if (sk->sk_protocol != IPPROTO_TCP)
    return false;
  __u16 family = sk->__sk_common.skc_family;
  if (family != AF_INET && family != AF_INET6)
    return false;
  // A socket seen before has its cookie: reading it spares a helper call, dear on this kind of machine.
  *connection = sk->__sk_common.skc_cookie.counter;
  if (!*connection)
    *connection = bpf_get_socket_cookie(sk);
  return true;
}

// Does the state machine look at this I/O's bytes, or only count them? Mirrors process_read and
// process_write. Only then is the syscall's buffer fetched: a body write or read needs neither.
static __always_inline bool needs_payload(struct conn *conn, bool receiving, long transferred) {
  if (receiving) {
    if (conn->role == FS_L7_ROLE_CLIENT)
      return conn->state == CONN_REQUEST;
    return server_read_wants_bytes(conn, transferred);
  }
  if (conn->role == FS_L7_ROLE_SERVER)
    return conn->state == CONN_REQUEST || (conn->state == CONN_RESPONSE && conn->framing == FRAMING_CHUNKED);
  return conn->role != FS_L7_ROLE_CLIENT || conn->state != CONN_REQUEST;
}

// Socket I/O inside an SSL call: the bytes are ciphertext, and the uprobes handle the plaintext through
// the connection's entry in l7_connections, created here if need be.
static __always_inline void tls_socket_io(struct task_struct *task, struct sock *sk, __u64 pid_tgid,
                                          __u64 connection, bool receiving) {
  if (!bpf_map_lookup_elem(&l7_connections, &connection)) {
    struct pending_io io = {};
    if (!socket_syscall(task, &io, receiving) || !new_connection(connection, io.fd, 0, connection, sk))
      return;
  }
  note_tls_connection(pid_tgid, connection);
}

static __always_inline void socket_io(struct sock *sk, int transferred, int flags, bool receiving) {
  if (transferred < 0 || (flags & MSG_PEEK))
    return;
  // The task's ids rather than bpf_get_current_pid_tgid: the JIT inlines bpf_get_current_task_btf into one
  // load, where the other is a call on every socket I/O of the machine.
  struct task_struct *task = bpf_get_current_task_btf();
  __u64 pid_tgid = ((__u64)task->tgid << 32) | (__u32)task->pid;
  if (!is_target(pid_tgid >> 32) || BENCH_STOP(STOP_AFTER_FILTER))
    return;
  __u64 connection = 0;
  if (!tcp_socket(sk, &connection))
    return;
  if (tls_calls_seen && bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid)) {
    tls_socket_io(task, sk, pid_tgid, connection, receiving);
    return;
  }
  struct pending_io io = {.indirection = 3}; // no payload
  if (BENCH_STOP(STOP_AFTER_SOCKET))
    return;
  struct conn *conn = bpf_sk_storage_get(&l7_socket_conns, sk, 0, 0);
  if (!conn) {
    if (!socket_syscall(task, &io, receiving))
      return;
    struct conn *template = connection_template(io.fd, 0, connection, sk);
    if (!template)
      return;
    conn = bpf_sk_storage_get(&l7_socket_conns, sk, template, BPF_SK_STORAGE_GET_F_CREATE);
    if (!conn) {
      count(FS_L7_COUNTER_CONN_MAP_FULL);
      return;
    }
  } else if (needs_payload(conn, receiving, transferred)) {
    if (!socket_syscall(task, &io, receiving))
      return;
    conn->fd = io.fd; // the same socket may be reached through a dup'ed fd
  } else {
    io.fd = conn->fd;
  }
  if (conn->not_http_streak >= NOT_HTTP_LIMIT)
    return;
  if (BENCH_STOP(STOP_AFTER_STORAGE))
    return;
  if (BENCH_STOP(STOP_AFTER_REGISTERS)) {
    socket_syscall(task, &io, receiving);
    return;
  }
  if (BENCH_STOP(STOP_AFTER_PAYLOAD) || BENCH_STOP(STOP_AFTER_KERNEL_COPY)) {
    // The connection stays unknown (role 0), so every I/O on it fetches its registers and copies its bytes.
    __u32 zero = 0;
    struct scratch *scratch = bpf_map_lookup_elem(&l7_scratch, &zero);
    if (scratch && BENCH_STOP(STOP_AFTER_PAYLOAD))
      copy_payload(scratch, &io, transferred);
    else if (scratch)
      copy_from_kernel_instead(scratch, &io, transferred, task);
    return;
  }
  if (transferred == 0) {
    // The peer closed: whatever was in progress ends now.
    if (receiving) {
      finish_exchange(conn, FS_L7_END_CLOSE, conn->exchange.end_ns);
      forget_queued(conn);
    }
    return;
  }
  if (receiving)
    process_read(conn, io, transferred, pid_tgid);
  else
    process_write(conn, io, transferred, pid_tgid);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(socket_received, struct sock *sk, int transferred, int flags) {
  socket_io(sk, transferred, flags, true);
  return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(socket_sent, struct sock *sk, int transferred, int flags) {
  socket_io(sk, transferred, flags, false);
  return 0;
}

// close() and shutdown() move a socket to FIN_WAIT1 or LAST_ACK in the closing thread; resets and
// timeouts move it to CLOSE. Any of them ends the connection's exchange. Sockets never given a cookie were
// never tracked, and are skipped without giving them one.
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(socket_state_changed, const struct sock *sk, const int old_state, const int new_state) {
  if (new_state != TCP_FIN_WAIT1 && new_state != TCP_LAST_ACK && new_state != TCP_CLOSE)
    return 0;
  struct conn *conn = bpf_sk_storage_get(&l7_socket_conns, (struct sock *)sk, 0, 0);
  if (conn) {
    finish_exchange(conn, FS_L7_END_CLOSE, conn->exchange.end_ns);
    forget_queued(conn);
  }
  // Connections of the syscall hooks and TLS connections live in l7_connections, by cookie.
  __u64 connection = sk->__sk_common.skc_cookie.counter;
  if (connection)
    close_connection(connection);
  return 0;
}

#endif
