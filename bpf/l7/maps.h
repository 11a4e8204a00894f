// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// The tracer's maps, its counters and the traced-pid filter.
#ifndef FLAMESPAN_L7_MAPS_H
#define FLAMESPAN_L7_MAPS_H

// Set by the first SSL call the uprobes see: until then no I/O can be inside one, and the per-I/O lookup
// of l7_tls_calls is skipped.
__u8 tls_calls_seen = 0;

// Exchange records go to a ring buffer of the CPU that finishes the exchange, which user space creates
// and sizes at load (16 MiB in all by default: seconds of a busy loopback server, so that a consumer that
// falls behind for a moment does not lose spans). In one shared ring, a single record reserved and not
// yet committed (its producer's vCPU stopped by the host, say) holds up every CPU's records behind it
// until the ring is full; a ring per CPU confines that to the stopped CPU, which produces nothing
// meanwhile. It also keeps the ring's lock and producer position out of the other CPUs' caches.
struct l7_ring {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  // Only the template libbpf creates and drops at load: 64 KiB is a whole number of pages on any kernel.
  // User space sizes each CPU's ring.
  __uint(max_entries, 64 * 1024);
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 1); // one slot per possible CPU, set at load
  __type(key, __u32);
  __array(values, struct l7_ring);
} l7_rings SEC(".maps");

// The traced thread groups: bit `tgid` (Linux pids stay below 2^22). Every socket read and write asks, so
// it is an array, whose lookups the verifier inlines; a hash lookup here cost more than the rest of the
// check for the processes we do not trace. User space sets bits through a shared mapping.
#define PID_LIMIT (1 << 22)
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, PID_LIMIT / 64);
  __uint(map_flags, BPF_F_MMAPABLE);
  __type(key, __u32);
  __type(value, __u64);
} l7_target_bits SEC(".maps");

// LRU: a process that exits closes its sockets without a close() syscall we would see, so entries can go
// stale; the least recently used ones make room instead of blocking new connections.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct conn);
} l7_connections SEC(".maps");

// The socket hooks keep each connection in its socket's own storage: one lookup call instead of a hash
// and a lookup, nothing preallocated, and freed with the socket. (TLS connections stay in l7_connections:
// the uprobes that finish them cannot reach socket storage.)
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct conn);
} l7_socket_conns SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct pending_io);
} l7_pending SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct scratch);
} l7_scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct conn);
} l7_conn_template SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, FS_L7_COUNTER_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} l7_counters SEC(".maps");

// An SSL_read/SSL_write(_ex) in flight on a thread: the plaintext buffer, and the connection once the nested
// socket read/write names it.
struct tls_call {
  __u64 ssl;
  __u64 buffer;
  __u64 transferred_out; // the size_t* of the _ex forms, or 0
  __u64 connection;      // l7_connections key, valid when has_connection
  __u8 has_connection;
  __u8 writing;
  __u8 reserved[6];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct tls_call);
} l7_tls_calls SEC(".maps");

// The connection of each SSL object, for the calls OpenSSL answers from its buffer without a syscall.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, __u64);
} l7_tls_sockets SEC(".maps");

// Same definition as in profile.bpf.c: the sampler reuses this map's fd.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64);
  __type(value, struct fs_span_context);
} traces_ctx_v1 SEC(".maps");

static __always_inline void count(__u32 counter) {
  __u64 *value = bpf_map_lookup_elem(&l7_counters, &counter);
  if (value)
    *value += 1;
}

static __always_inline __u64 *target_word(__u32 tgid) {
  __u32 index = tgid / 64;
  return bpf_map_lookup_elem(&l7_target_bits, &index);
}

static __always_inline bool is_target(__u32 tgid) {
  if (!filter_by_pid)
    return true;
  __u64 *word = target_word(tgid);
  return word && (*word >> (tgid % 64)) & 1;
}

static __always_inline void count_many(__u32 counter, __u64 n) {
  __u64 *value = bpf_map_lookup_elem(&l7_counters, &counter);
  if (value)
    *value += n;
}

#endif
