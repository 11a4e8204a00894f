// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// TLS: OpenSSL/BoringSSL plaintext, attached per library by user space.
#ifndef FLAMESPAN_L7_TLS_H
#define FLAMESPAN_L7_TLS_H

// Inside an SSL_read/SSL_write the bytes on the socket are ciphertext: the uprobes handle the plaintext.
// Notes the connection of the call in flight; returns whether there is one.
static __always_inline bool note_tls_connection(__u64 pid_tgid, __u64 connection) {
  if (!tls_calls_seen)
    return false;
  struct tls_call *call = bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid);
  if (!call)
    return false;
  if (!call->has_connection) {
    call->connection = connection;
    call->has_connection = 1;
    bpf_map_update_elem(&l7_tls_sockets, &call->ssl, &connection, BPF_ANY);
  }
  return true;
}

static __always_inline void tls_enter(__u64 ssl, __u64 buffer, __u64 transferred_out, __u8 writing) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if (!is_target(pid_tgid >> 32))
    return;
  struct tls_call call = {.ssl = ssl, .buffer = buffer, .transferred_out = transferred_out, .writing = writing};
  bpf_map_update_elem(&l7_tls_calls, &pid_tgid, &call, BPF_ANY);
  if (!tls_calls_seen)
    tls_calls_seen = 1;
}

static __always_inline void tls_exit(long result) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct tls_call *pending = bpf_map_lookup_elem(&l7_tls_calls, &pid_tgid);
  if (!pending)
    return;
  struct tls_call call = *pending;
  bpf_map_delete_elem(&l7_tls_calls, &pid_tgid);
  // Every probed function returns int: the upper half of the register is not part of the value.
  long transferred = (int)result;
  if (call.transferred_out) {
    size_t count = 0;
    if (transferred != 1 || bpf_probe_read_user(&count, sizeof(count), (void *)call.transferred_out) != 0)
      return;
    transferred = count;
  }
  if (transferred <= 0)
    return;
  if (!call.has_connection) {
    __u64 *known = bpf_map_lookup_elem(&l7_tls_sockets, &call.ssl);
    if (!known)
      return;
    call.connection = *known;
  }
  struct conn *conn = bpf_map_lookup_elem(&l7_connections, &call.connection);
  if (!conn)
    return;
  struct pending_io io = {.buffer = call.buffer, .fd = conn->fd, .indirection = 0};
  if (call.writing) {
    process_write(conn, io, transferred, pid_tgid);
  } else {
    // A server reading again has answered (the nested read may not have happened: buffered data).
    if (conn->role == FS_L7_ROLE_SERVER && conn->state == CONN_RESPONSE) {
      finish_exchange(conn, FS_L7_END_NEXT_READ, 0);
      serve_next_queued(conn, pid_tgid, true);
    }
    process_read(conn, io, transferred, pid_tgid);
  }
}

SEC("uprobe")
int BPF_KPROBE(tls_read_enter, void *ssl, void *buffer, int size) {
  tls_enter((__u64)ssl, (__u64)buffer, 0, 0);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_read_ex_enter, void *ssl, void *buffer, size_t size, size_t *read_bytes) {
  tls_enter((__u64)ssl, (__u64)buffer, (__u64)read_bytes, 0);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_write_enter, void *ssl, const void *buffer, int size) {
  tls_enter((__u64)ssl, (__u64)buffer, 0, 1);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(tls_write_ex_enter, void *ssl, const void *buffer, size_t size, size_t *written) {
  tls_enter((__u64)ssl, (__u64)buffer, (__u64)written, 1);
  return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_exit_probe, long result) {
  tls_exit(result);
  return 0;
}

#endif
