// Test fixture: captures its own user registers and the top of its stack at a known point, the way the
// BPF sampler does, and writes them with /proc/self/maps for the unwinder tests. Built at test time
// without frame pointers. Usage: capture OUTDIR {deep|qsort|signal}
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *out_dir;
static volatile int captured;

static void write_file(const char *name, const void *bytes, size_t size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", out_dir, name);
  FILE *file = fopen(path, "wb");
  if (!file || fwrite(bytes, 1, size, file) != size) { perror(path); exit(2); }
  fclose(file);
}

static uint64_t stack_top(uint64_t sp) {
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[4096];
  uint64_t top = 0;
  while (fgets(line, sizeof line, maps)) {
    unsigned long start, end;
    if (sscanf(line, "%lx-%lx", &start, &end) == 2 && sp >= start && sp < end) top = end;
  }
  fclose(maps);
  return top;
}

// Reads rip, rsp and rbp at one instruction, then copies the stack from that rsp up: what the sampler
// would have recorded had it interrupted this thread here.
__attribute__((noinline)) static void capture_here(void) {
  uint64_t regs[3];
  __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                   : "=r"(regs[0]), "=r"(regs[1]), "=r"(regs[2]));
  static uint8_t copy[65536];
  uint64_t size = stack_top(regs[1]) - regs[1];
  if (size > sizeof copy) size = sizeof copy;
  memcpy(copy, (const void *)regs[1], size);
  write_file("registers", regs, sizeof regs);
  write_file("stack", copy, size);
  FILE *maps = fopen("/proc/self/maps", "r");
  static char text[1 << 20];
  size_t length = fread(text, 1, sizeof text, maps);
  fclose(maps);
  write_file("maps", text, length);
  captured = 1;
}

__attribute__((noinline)) int level_three(int n) {
  if (n == 0) capture_here();
  return n + 1;
}
__attribute__((noinline)) int level_two(int n) { return level_three(n) * 3; }
__attribute__((noinline)) int level_one(int n) { return level_two(n) + 7; }

static int compare_calls;
__attribute__((noinline)) int compare_ints(const void *a, const void *b) {
  if (++compare_calls == 5) level_one(0);
  return *(const int *)a - *(const int *)b;
}

// Work after each call keeps the compiler from turning it into a tail jump, which would drop the frame.
static volatile int sink;

__attribute__((noinline)) void on_signal(int signal_number) {
  sink = level_one(0) + signal_number;
}

__attribute__((noinline)) void raise_signal(void) {
  raise(SIGUSR1);
  sink++;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  out_dir = argv[1];
  if (strcmp(argv[2], "deep") == 0) {
    level_one(0);
  } else if (strcmp(argv[2], "qsort") == 0) {
    int values[64];
    for (int i = 0; i < 64; i++) values[i] = (i * 37) % 64;
    qsort(values, 64, sizeof values[0], compare_ints);
  } else if (strcmp(argv[2], "signal") == 0) {
    // The test runner may have blocked SIGUSR1 for its children.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGUSR1, on_signal);
    raise_signal();
  }
  // Keep main from being a tail-call-only frame, and the process alive no longer than needed.
  return captured ? 0 : 1;
}
