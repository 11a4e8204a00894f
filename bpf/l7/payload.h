// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// Copying the first bytes of a read or write out of the process, into the per-CPU scratch.
#ifndef FLAMESPAN_L7_PAYLOAD_H
#define FLAMESPAN_L7_PAYLOAD_H

// The first buffer of an I/O: the plain buffer, or the first iovec of an iovec array or msghdr, with the
// bytes of `transferred` that landed in it.
static __always_inline __u64 first_buffer(struct pending_io *io, long *transferred) {
  __u64 buffer = io->buffer;
  if (io->indirection == 1) {
    struct iovec first;
    if (bpf_probe_read_user(&first, sizeof(first), (void *)buffer) != 0)
      return 0;
    buffer = (__u64)first.iov_base;
    if ((long)first.iov_len < *transferred)
      *transferred = first.iov_len;
  } else if (io->indirection == 2) {
    struct user_msghdr message;
    struct iovec first;
    if (bpf_probe_read_user(&message, sizeof(message), (void *)buffer) != 0 || message.msg_iovlen == 0 ||
        bpf_probe_read_user(&first, sizeof(first), message.msg_iov) != 0)
      return 0;
    buffer = (__u64)first.iov_base;
    if ((long)first.iov_len < *transferred)
      *transferred = first.iov_len;
  } else if (io->indirection != 0) {
    return 0;
  }
  return buffer;
}

// Copies up to SCAN_BYTES of the buffer of a finished read/write into the per-CPU scratch. Returns the
// number of bytes copied, or 0.
static __always_inline __u32 copy_payload(struct scratch *scratch, struct pending_io *io, long transferred) {
  __u64 buffer = first_buffer(io, &transferred);
  if (!buffer || transferred <= 0)
    return 0;
  __u64 length = transferred > SCAN_BYTES ? SCAN_BYTES : (__u64)transferred;
  // Restate the bound where the verifier can see it on the register it checks.
  length &= (2 * SCAN_BYTES - 1);
  if (length == 0 || length > SCAN_BYTES)
    return 0;
  if (bpf_probe_read_user(scratch->data, length, (void *)buffer) != 0)
    return 0;
  return length;
}

// Benchmark stage 5 only: the reads copy_payload makes, of the same sizes, from kernel memory (the task)
// instead of the process's, to measure what reading user memory costs.
static __always_inline void copy_from_kernel_instead(struct scratch *scratch, struct pending_io *io,
                                                     long transferred, struct task_struct *task) {
  if (io->indirection >= 3 || transferred <= 0)
    return;
  if (io->indirection > 0) {
    struct iovec first;
    bpf_probe_read_kernel(&first, sizeof(first), task);
  }
  __u64 length = transferred > SCAN_BYTES ? SCAN_BYTES : (__u64)transferred;
  length &= (2 * SCAN_BYTES - 1);
  if (length == 0 || length > SCAN_BYTES)
    return;
  bpf_probe_read_kernel(scratch->data, length, task);
}

#endif
