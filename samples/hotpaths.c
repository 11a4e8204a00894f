// A workload whose CPU profile is known in advance, for tests, benchmarks and the README.
//
// Stack of every hot sample:  main -> run_workload -> hot_path_heavy | hot_path_light -> (inline) mix_step
// hot_path_heavy does 3 work units per round and hot_path_light 1 (on average: see jittered), through the same
// inner loop, so the split is 75% / 25% of CPU regardless of clock speed or contention.
//
// Usage: hotpaths [SECONDS] [THREADS]   (defaults: 5 seconds, 1 thread)
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

// GCC may otherwise specialise a callee for its constant argument (hot_path_heavy.constprop.0), which would
// rename the frame that tests look for.
#if defined(__clang__)
#define KEEP_FRAME __attribute__((noinline))
#else
#define KEEP_FRAME __attribute__((noinline, noclone))
#endif

enum { ITERATIONS_PER_UNIT = 100000, HEAVY_UNITS = 3, LIGHT_UNITS = 1 };

// Always inlined so that symbolizers must report an inline frame inside each hot path.
static inline __attribute__((always_inline)) uint64_t mix_step(uint64_t state, uint64_t input) {
  state ^= input + 0x9e3779b97f4a7c15ULL;
  state ^= state >> 31;
  state *= 0xbf58476d1ce4e5b9ULL;
  state ^= state >> 27;
  return state;
}

KEEP_FRAME uint64_t hot_path_heavy(uint64_t state, uint64_t iterations) {
  for (uint64_t i = 0; i < iterations; i++) {
    state = mix_step(state, i);
  }
  return state;
}

KEEP_FRAME uint64_t hot_path_light(uint64_t state, uint64_t iterations) {
  for (uint64_t i = 0; i < iterations; i++) {
    state = mix_step(state, i);
  }
  return state;
}

static double monotonic_seconds(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

struct worker {
  pthread_t thread;
  double deadline;
  uint64_t seed;
  uint64_t rounds;
  uint64_t checksum;
};

// A round is about 0.7 ms, a small multiple of a profiler's 2 ms period: with fixed lengths, samples could
// lock onto one phase of the round and skew the split by several points either way. Each path's length
// varies by up to a quarter from round to round, so the split is 3:1 on average over many rounds and
// samples cannot keep step with the phases.
static uint64_t jittered(uint64_t units, uint64_t *random) {
  *random ^= *random << 13;
  *random ^= *random >> 7;
  *random ^= *random << 17;
  uint64_t base = units * ITERATIONS_PER_UNIT;
  return base - base / 4 + *random % (base / 2 + 1);
}

KEEP_FRAME void run_workload(struct worker *worker) {
  uint64_t state = worker->seed;
  uint64_t random = 0x2545f4914f6cdd1dULL ^ worker->seed;
  uint64_t rounds = 0;
  do {
    state = hot_path_heavy(state, jittered(HEAVY_UNITS, &random));
    state = hot_path_light(state, jittered(LIGHT_UNITS, &random));
    rounds++;
  } while (monotonic_seconds() < worker->deadline);
  worker->rounds = rounds;
  worker->checksum = state;
}

static void *thread_main(void *argument) {
  run_workload(argument);
  return NULL;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 5.0;
  long threads = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
  if (seconds <= 0 || threads < 1 || threads > 1024) {
    fprintf(stderr, "usage: hotpaths [SECONDS > 0] [THREADS 1..1024]\n");
    return 2;
  }
  struct worker *workers = calloc((size_t)threads, sizeof *workers);
  if (workers == NULL) {
    perror("calloc");
    return 1;
  }
  double deadline = monotonic_seconds() + seconds;
  for (long i = 0; i < threads; i++) {
    workers[i].deadline = deadline;
    workers[i].seed = (uint64_t)i + 1;
  }
  // The main thread works too, so with one thread the stack is exactly main -> run_workload -> hot path.
  for (long i = 1; i < threads; i++) {
    if (pthread_create(&workers[i].thread, NULL, thread_main, &workers[i]) != 0) {
      perror("pthread_create");
      return 1;
    }
  }
  run_workload(&workers[0]);
  uint64_t rounds = workers[0].rounds, checksum = workers[0].checksum;
  for (long i = 1; i < threads; i++) {
    pthread_join(workers[i].thread, NULL);
    rounds += workers[i].rounds;
    checksum ^= workers[i].checksum;
  }
  printf("hotpaths: seconds=%g threads=%ld rounds=%llu heavy_units=%llu light_units=%llu checksum=%016llx\n",
         seconds, threads, (unsigned long long)rounds, (unsigned long long)rounds * HEAVY_UNITS,
         (unsigned long long)rounds * LIGHT_UNITS, (unsigned long long)checksum);
  free(workers);
  return 0;
}
