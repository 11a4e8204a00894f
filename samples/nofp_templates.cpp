// C++ workload built WITHOUT frame pointers (-O2 -g -fomit-frame-pointer): templates, inlining and a
// std::function callback, so complete stacks need DWARF CFI. `nofp_templates [SECONDS]` (default 5).
//
// Stack of the hot code (leaf last):
//   main → run_for → Pipeline<Mixer<3>>::run_batch → Mixer<3>::mix (leaf, ≈ 75 %)
//   main → run_for → Pipeline<Mixer<1>>::run_batch → Mixer<1>::mix (leaf, ≈ 25 %)
// `Mixer<N>::step` is always inlined into `mix`.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

template <int Rounds> struct Mixer {
  __attribute__((always_inline)) static inline uint64_t step(uint64_t x) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
  __attribute__((noinline)) static uint64_t mix(uint64_t seed, const std::vector<uint64_t> &data) {
    uint64_t acc = seed;
    for (int round = 0; round < Rounds; round++)
      for (uint64_t value : data) acc = step(acc ^ value);
    return acc;
  }
};

template <typename M> struct Pipeline {
  std::vector<uint64_t> data;
  explicit Pipeline(size_t size) : data(size) {
    for (size_t i = 0; i < size; i++) data[i] = i * 0x9e3779b97f4a7c15ull;
  }
  __attribute__((noinline)) uint64_t run_batch(uint64_t seed) {
    uint64_t result = M::mix(seed, data);
    return result + 1;  // not a tail call: run_batch stays on the stack
  }
};

__attribute__((noinline)) static uint64_t run_for(double seconds, const std::function<uint64_t(uint64_t)> &heavy,
                                                  const std::function<uint64_t(uint64_t)> &light) {
  auto start = std::chrono::steady_clock::now();
  uint64_t checksum = 1;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    checksum = heavy(checksum);
    checksum = light(checksum);
  }
  return checksum;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 5;
  Pipeline<Mixer<3>> heavy(4096);
  Pipeline<Mixer<1>> light(4096);
  uint64_t checksum = run_for(
      seconds, [&](uint64_t seed) { return heavy.run_batch(seed); },
      [&](uint64_t seed) { return light.run_batch(seed); });
  printf("nofp_templates: checksum %llx\n", (unsigned long long)checksum);
  return 0;
}
