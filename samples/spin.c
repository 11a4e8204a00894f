// Fixed integer work on every thread, then exit: its wall time under a profiler measures the profiler's cost.
//
// Usage: spin ITERATIONS THREADS
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct worker {
  pthread_t thread;
  uint64_t iterations;
  uint64_t seed;
  uint64_t result;
};

__attribute__((noinline)) static uint64_t spin_work(uint64_t iterations, uint64_t state) {
  for (uint64_t i = 0; i < iterations; i++) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    state += i;
  }
  return state;
}

static void *spin_thread(void *argument) {
  struct worker *worker = argument;
  worker->result = spin_work(worker->iterations, worker->seed);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: spin ITERATIONS THREADS\n");
    return 2;
  }
  uint64_t iterations = strtoull(argv[1], NULL, 10);
  long threads = strtol(argv[2], NULL, 10);
  if (iterations == 0 || threads < 1 || threads > 4096) {
    fprintf(stderr, "spin: ITERATIONS must be > 0 and THREADS in 1..4096\n");
    return 2;
  }
  struct worker *workers = calloc((size_t)threads, sizeof *workers);
  if (workers == NULL) {
    perror("calloc");
    return 1;
  }
  struct timespec begin, end;
  clock_gettime(CLOCK_MONOTONIC, &begin);
  for (long i = 0; i < threads; i++) {
    workers[i].iterations = iterations;
    workers[i].seed = 0x2545f4914f6cdd1dULL + (uint64_t)i;
    if (pthread_create(&workers[i].thread, NULL, spin_thread, &workers[i]) != 0) {
      perror("pthread_create");
      return 1;
    }
  }
  uint64_t checksum = 0;
  for (long i = 0; i < threads; i++) {
    pthread_join(workers[i].thread, NULL);
    checksum ^= workers[i].result;
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  double elapsed = (double)(end.tv_sec - begin.tv_sec) + (double)(end.tv_nsec - begin.tv_nsec) / 1e9;
  printf("spin: iterations=%llu threads=%ld elapsed=%.3f checksum=%016llx\n", (unsigned long long)iterations,
         threads, elapsed, (unsigned long long)checksum);
  free(workers);
  return 0;
}
