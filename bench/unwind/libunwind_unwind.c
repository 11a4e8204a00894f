// Reference point for the unwinder choice: libunwind's remote unwinder over the same captured stack
// copy, with accessors in the style of perf's unwind-libunwind-local.c (the .eh_frame_hdr table found in
// each mapped file; stack reads from the copy, code and CFI reads from the files, mmapped once).
// usage: libunwind_unwind CAPTURE_DIR ITERATIONS. Prints the frame count and mean time per unwind.
#include <elf.h>
#include <fcntl.h>
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip, unw_dyn_info_t *di,
                                              unw_proc_info_t *pi, int need_unwind_info, void *arg);

struct mapping {
  uint64_t start, end, offset;
  char path[512];
  const uint8_t *file;  // the whole file, mmapped
  size_t file_size;
  uint64_t bias;        // runtime address of link address 0
};
static struct mapping maps[256];
static int map_count;
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

static void load_maps(char *text) {
  for (char *line = strtok(text, "\n"); line && map_count < 256; line = strtok(NULL, "\n")) {
    struct mapping *m = &maps[map_count];
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %511s", &m->start, &m->end, perms, &m->offset, m->path) != 5 ||
        m->path[0] != '/')
      continue;
    int fd = open(m->path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) continue;
    m->file_size = st.st_size;
    m->file = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    map_count++;
  }
  // PIE objects and shared libraries: the mapping of file offset 0 is link address 0.
  for (int i = 0; i < map_count; i++)
    for (int j = 0; j < map_count; j++)
      if (strcmp(maps[i].path, maps[j].path) == 0 && maps[j].offset == 0) maps[i].bias = maps[j].start;
}

static struct mapping *mapping_of(uint64_t address) {
  for (int i = 0; i < map_count; i++)
    if (address >= maps[i].start && address < maps[i].end) return &maps[i];
  return NULL;
}

static const Elf64_Shdr *section(const struct mapping *m, const char *name) {
  const Elf64_Ehdr *header = (const Elf64_Ehdr *)m->file;
  const Elf64_Shdr *sections = (const Elf64_Shdr *)(m->file + header->e_shoff);
  const char *names = (const char *)(m->file + sections[header->e_shstrndx].sh_offset);
  for (int i = 0; i < header->e_shnum; i++)
    if (strcmp(names + sections[i].sh_name, name) == 0) return &sections[i];
  return NULL;
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need_unwind_info,
                          void *arg) {
  struct mapping *m = mapping_of(ip);
  if (!m) return -UNW_EINVAL;
  const Elf64_Shdr *hdr = section(m, ".eh_frame_hdr");
  if (!hdr) return -UNW_ENOINFO;
  const uint8_t *table = m->file + hdr->sh_offset;
  uint32_t fde_count;
  memcpy(&fde_count, table + 8, 4);  // version, 3 encodings, eh_frame_ptr (sdata4), fde_count (udata4)
  unw_dyn_info_t info = {0};
  info.format = UNW_INFO_FORMAT_REMOTE_TABLE;
  info.start_ip = m->start;
  info.end_ip = m->end;
  info.u.rti.segbase = m->bias + hdr->sh_addr;
  info.u.rti.table_data = m->bias + hdr->sh_addr + 12;
  info.u.rti.table_len = fde_count * 8 / sizeof(unw_word_t);
  return UNW_OBJ(dwarf_search_unwind_table)(as, ip, &info, pi, need_unwind_info, arg);
}

static int access_mem(unw_addr_space_t as, unw_word_t address, unw_word_t *value, int write, void *arg) {
  if (write) return -UNW_EINVAL;
  if (address >= regs[1] && address + 8 <= regs[1] + stack_size) {
    memcpy(value, stack_copy + (address - regs[1]), 8);
    return 0;
  }
  struct mapping *m = mapping_of(address);
  if (!m) return -UNW_EINVAL;
  uint64_t offset = address - m->start + m->offset;
  if (offset + 8 > m->file_size) return -UNW_EINVAL;
  memcpy(value, m->file + offset, 8);
  return 0;
}

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *value, int write, void *arg) {
  if (write) return -UNW_EREADONLYREG;
  switch (reg) {
  case UNW_X86_64_RIP: *value = regs[0]; return 0;
  case UNW_X86_64_RSP: *value = regs[1]; return 0;
  case UNW_X86_64_RBP: *value = regs[2]; return 0;
  default: return -UNW_EBADREG;
  }
}

static void put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg) {}
static int get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg) { return -UNW_ENOINFO; }
static int access_fpreg(unw_addr_space_t as, unw_regnum_t r, unw_fpreg_t *v, int w, void *a) { return -UNW_EINVAL; }
static int resume(unw_addr_space_t as, unw_cursor_t *c, void *arg) { return -UNW_EINVAL; }
static int get_proc_name(unw_addr_space_t as, unw_word_t a, char *b, size_t l, unw_word_t *o, void *arg) {
  return -UNW_EINVAL;
}

static unw_accessors_t accessors = {find_proc_info, put_unwind_info, get_dyn_info_list_addr, access_mem,
                                    access_reg,     access_fpreg,    resume,                 get_proc_name};

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  size_t size;
  memcpy(regs, slurp(argv[1], "registers", &size), sizeof regs);
  stack_copy = slurp(argv[1], "stack", &stack_size);
  char *text = slurp(argv[1], "maps", &size);
  text[size] = 0;
  load_maps(text);
  unw_addr_space_t space = unw_create_addr_space(&accessors, 0);
  unw_set_caching_policy(space, UNW_CACHE_GLOBAL);
  long iterations = atol(argv[2]);
  int frames = 0;
  struct timespec start, end;
  for (long i = -1; i < iterations; i++) {
    if (i == 0) clock_gettime(CLOCK_MONOTONIC, &start);  // the first unwind fills libunwind's caches
    unw_cursor_t cursor;
    if (unw_init_remote(&cursor, space, NULL) != 0) { fprintf(stderr, "init failed\n"); return 1; }
    frames = 1;
    while (unw_step(&cursor) > 0) frames++;
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
  printf("libunwind: %d frames, %.2f us per unwind over %ld unwinds\n", frames, ns / iterations / 1000,
         iterations);
  return 0;
}
