#pragma once
// Portable deterministic randomness. std::uniform_*_distribution results differ
// between standard libraries, so ground truth made from them would not be
// reproducible elsewhere; splitmix64 plus explicit bit tricks is.
#include <cstdint>

namespace hallo::synth {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t next_u64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // [0, n) for n > 0 (modulo bias is irrelevant at these sizes).
  int below(int n) { return static_cast<int>(next_u64() % static_cast<uint64_t>(n)); }

 private:
  uint64_t state_;
};

// Independent stream per (seed, video index, purpose), so adding a new random
// draw in one part does not shift the numbers another part sees.
inline uint64_t derive_seed(uint64_t seed, uint64_t index, uint64_t purpose) {
  Rng r(seed ^ (index * 0xD1B54A32D192ED03ull) ^ (purpose * 0x8CB92BA72F3D8DD7ull));
  r.next_u64();
  return r.next_u64();
}

}  // namespace hallo::synth
