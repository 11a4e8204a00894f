// Reference point for the unwinder choice: libdw's unwinder (dwfl_getthread_frames, as perf's
// --call-graph dwarf uses it) over the same captured stack copy the Flamespan unwinder is timed on.
// usage: libdw_unwind CAPTURE_DIR ITERATIONS   (CAPTURE_DIR as written by the unwinder test fixture:
// registers, stack, maps). Prints the frame count and the mean time per unwind after a warm-up.
#include <elfutils/libdwfl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t regs[3];  // ip, sp, bp
static uint8_t *stack_copy;
static size_t stack_size;

static void *slurp(const char *dir, const char *name, size_t *size) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *file = fopen(path, "rb");
  if (!file) { perror(path); exit(2); }
  fseek(file, 0, SEEK_END);
  *size = ftell(file);
  fseek(file, 0, SEEK_SET);
  void *bytes = malloc(*size + 1);
  if (fread(bytes, 1, *size, file) != *size) { perror(path); exit(2); }
  fclose(file);
  return bytes;
}

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_arg) {
  (void)dwfl; (void)arg;
  if (*thread_arg) return 0;
  *thread_arg = (void *)1;
  return 1;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr address, Dwarf_Word *result, void *arg) {
  (void)dwfl; (void)arg;
  if (address < regs[1] || address + 8 > regs[1] + stack_size) return false;
  memcpy(result, stack_copy + (address - regs[1]), 8);
  return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg) {
  (void)arg;
  Dwarf_Word values[2] = {regs[2], regs[1]};  // DWARF 6 = rbp, 7 = rsp
  dwfl_thread_state_register_pc(thread, regs[0]);
  return dwfl_thread_state_registers(thread, 6, 2, values);
}

static const Dwfl_Thread_Callbacks callbacks = {
    .next_thread = next_thread, .memory_read = memory_read, .set_initial_registers = set_initial_registers};

static int frames;
static int count_frame(Dwfl_Frame *frame, void *arg) {
  (void)frame; (void)arg;
  frames++;
  return DWARF_CB_OK;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  size_t size;
  memcpy(regs, slurp(argv[1], "registers", &size), sizeof regs);
  stack_copy = slurp(argv[1], "stack", &stack_size);
  char *maps_text = slurp(argv[1], "maps", &size);
  maps_text[size] = 0;
  FILE *maps = fmemopen(maps_text, size, "r");

  static char *debuginfo_path;
  static const Dwfl_Callbacks dwfl_callbacks = {
      .find_elf = dwfl_linux_proc_find_elf, .find_debuginfo = dwfl_standard_find_debuginfo,
      .debuginfo_path = &debuginfo_path};
  Dwfl *dwfl = dwfl_begin(&dwfl_callbacks);
  if (dwfl_linux_proc_maps_report(dwfl, maps) != 0 || dwfl_report_end(dwfl, NULL, NULL) != 0) {
    fprintf(stderr, "maps report failed: %s\n", dwfl_errmsg(-1));
    return 1;
  }
  if (!dwfl_attach_state(dwfl, NULL, 1, &callbacks, NULL)) {
    fprintf(stderr, "attach failed: %s\n", dwfl_errmsg(-1));
    return 1;
  }
  long iterations = atol(argv[2]);
  struct timespec start, end;
  for (long i = -1; i < iterations; i++) {
    if (i == 0) clock_gettime(CLOCK_MONOTONIC, &start);  // the first unwind loads the CFI
    frames = 0;
    dwfl_getthread_frames(dwfl, 1, count_frame, NULL);
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
  printf("libdw: %d frames, %.2f us per unwind over %ld unwinds\n", frames, ns / iterations / 1000,
         iterations);
  dwfl_end(dwfl);
  return 0;
}
