// C workload built WITHOUT frame pointers whose hot function is a qsort comparator, so every hot stack
// passes through Debian's libc (no frame pointers either). `qsort_callback [SECONDS]` (default 5).
// Stack of the hot code (leaf last): main → sort_rounds → qsort (libc: msort internals) → compare_keys.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct record {
  uint64_t key;
  uint64_t payload[3];
};

// Deliberately expensive: hashes both keys before comparing, so most CPU time is in the callback.
__attribute__((noinline)) int compare_keys(const void *left, const void *right) {
  uint64_t a = ((const struct record *)left)->key, b = ((const struct record *)right)->key;
  for (int i = 0; i < 40; i++) {
    a = a * 6364136223846793005ull + 1442695040888963407ull;
    b = b * 6364136223846793005ull + 1442695040888963407ull;
  }
  return (a > b) - (a < b);
}

static double now(void) {
  struct timespec time;
  clock_gettime(CLOCK_MONOTONIC, &time);
  return time.tv_sec + time.tv_nsec / 1e9;
}

__attribute__((noinline)) uint64_t sort_rounds(double seconds) {
  enum { COUNT = 20000 };
  static struct record records[COUNT];
  uint64_t state = 88172645463325252ull, checksum = 0;
  double start = now();
  while (now() - start < seconds) {
    for (int i = 0; i < COUNT; i++) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      records[i].key = state;
    }
    qsort(records, COUNT, sizeof records[0], compare_keys);
    checksum += records[COUNT / 2].key;
  }
  return checksum;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 5;
  printf("qsort_callback: checksum %llx\n", (unsigned long long)sort_rounds(seconds));
  return 0;
}
