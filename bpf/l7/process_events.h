// SPDX-License-Identifier: GPL-2.0
// Part of bpf/l7.bpf.c, which includes it after the headers it needs.
// Fork and exit: children of targets are traced, and a dead thread's state goes.
#ifndef FLAMESPAN_L7_PROCESS_EVENTS_H
#define FLAMESPAN_L7_PROCESS_EVENTS_H

// Children forked by a target (nginx workers, pre-fork servers) are traced too.
SEC("tp_btf/sched_process_fork")
int BPF_PROG(l7_on_fork, struct task_struct *parent, struct task_struct *child) {
  if (!filter_by_pid)
    return 0;
  __u32 parent_pid = parent->tgid;
  __u32 child_pid = child->tgid;
  if (child_pid == parent_pid || !is_target(parent_pid))
    return 0;
  __u64 *word = target_word(child_pid);
  if (!word) {
    count(FS_L7_COUNTER_TARGETS_FULL); // a pid past PID_LIMIT
    return 0;
  }
  __atomic_fetch_or(word, 1ULL << (child_pid % 64), __ATOMIC_RELAXED);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(l7_on_exit, struct task_struct *task) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 pid = pid_tgid >> 32;
  // A thread that dies while serving must not leave its span for a future thread with the same id.
  bpf_map_delete_elem(&traces_ctx_v1, &pid_tgid);
  bpf_map_delete_elem(&l7_pending, &pid_tgid);
  bpf_map_delete_elem(&l7_tls_calls, &pid_tgid);
  if ((__u32)pid_tgid == pid && filter_by_pid) {
    __u64 *word = target_word(pid);
    if (word)
      __atomic_fetch_and(word, ~(1ULL << (pid % 64)), __ATOMIC_RELAXED);
  }
  return 0;
}

#endif
