// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// Connection identity, addresses and records.
#ifndef FLAMESPAN_L7_CONNECTION_H
#define FLAMESPAN_L7_CONNECTION_H

static __always_inline __u64 fd_connection(__u32 tgid, int fd) { return ((__u64)tgid << 32) | (__u32)fd; }

// The socket behind an fd of the current task, for its addresses. NULL when the fd is not a socket we can
// read (private_data of other files is not a struct socket, so callers only use this on accept/connect fds).
static __always_inline struct sock *socket_of_fd(int fd) {
  struct task_struct *task = bpf_get_current_task_btf();
  struct file **files = BPF_CORE_READ(task, files, fdt, fd);
  struct file *file = NULL;
  if (bpf_probe_read_kernel(&file, sizeof(file), &files[fd & 0xfffff]) != 0 || !file)
    return NULL;
  struct socket *socket = BPF_CORE_READ(file, private_data);
  if (!socket)
    return NULL;
  return BPF_CORE_READ(socket, sk);
}

static __always_inline void read_socket_addresses(struct conn *conn, struct sock *sk) {
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  conn->family = family;
  conn->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
  conn->peer_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (family == AF_INET) {
    __u32 address = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(conn->peer_address, &address, 4);
  } else if (family == AF_INET6) {
    BPF_CORE_READ_INTO(&conn->peer_address, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
  }
}


static __always_inline void close_connection(__u64 connection) {
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &connection);
  if (!conn)
    return;
  finish_exchange(conn, FS_L7_END_CLOSE, conn->exchange.end_ns);
  forget_queued(conn);
  bpf_map_delete_elem(&l7_connections, &connection);
}

// A new connection record: role 0 (socket hooks learn it from the first request) or the role accept or
// connect gave it.
static __always_inline struct conn *connection_template(int fd, __u8 role, __u64 generation, struct sock *sk) {
  __u32 zero = 0;
  struct conn *conn = bpf_map_lookup_elem(&l7_conn_template, &zero);
  if (!conn)
    return NULL;
  __builtin_memset(conn, 0, sizeof(*conn));
  conn->generation = generation;
  conn->role = role;
  conn->fd = fd;
  if (sk)
    read_socket_addresses(conn, sk);
  return conn;
}

static __always_inline struct conn *new_connection(__u64 connection, int fd, __u8 role, __u64 generation,
                                                   struct sock *sk) {
  struct conn *conn = connection_template(fd, role, generation, sk);
  if (!conn)
    return NULL;
  if (bpf_map_update_elem(&l7_connections, &connection, conn, BPF_ANY) != 0) {
    count(FS_L7_COUNTER_CONN_MAP_FULL);
    return NULL;
  }
  return bpf_map_lookup_elem(&l7_connections, &connection);
}

#endif
