// What every empty hook here does: the pid-filter lookup a real hook makes before returning for a process
// that is not traced.
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
