// Seeded random streams for otgen: reproducible across machines and library versions.
//
// Every random stream of an experiment is an `Rng` seeded from the config, so a run is
// bit-for-bit repeatable for a fixed seed and thread count. The generator is PCG64
// (XSL-RR 128/64, O'Neill 2014); distributions are written here (not <random>'s, whose
// output is implementation-defined):
//   Uniform()  in [0, 1) with 24 random bits (exact float grid),
//   Normal()   Box-Muller on two uniforms (both outputs are used),
//   UniformInt(n) Lemire's unbiased multiply-shift.
// The full state (including the cached second normal) can be saved and restored, which
// checkpoints use.
//
//   otgen::nn::Rng rng(/*seed=*/42);
//   float z = rng.Normal();
//   otgen::nn::Rng child = rng.Split();  // an independent stream, e.g. per data loader
#ifndef OTGEN_NN_RANDOM_H_
#define OTGEN_NN_RANDOM_H_

#include <array>
#include <cstdint>

namespace otgen::nn {

class Rng {
 public:
  // Seeds the stream; equal seeds give equal streams. `stream` selects one of 2^63
  // independent sequences for the same seed.
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0);

  // Next 64 random bits.
  uint64_t NextU64();
  // Uniform in [0, 1).
  float Uniform();
  // Uniform in [lo, hi).
  float Uniform(float lo, float hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform in [0, 1) with 53 bits.
  double UniformDouble();
  // Standard normal N(0, 1).
  float Normal();
  // Uniform integer in [0, n); n > 0.
  uint64_t UniformInt(uint64_t n);
  // A new generator on an independent stream, seeded from this one.
  Rng Split();

  // Serializable state: 128-bit state, 128-bit increment, cached normal flag and value.
  struct State {
    std::array<uint64_t, 4> words{};
    bool has_cached_normal = false;
    float cached_normal = 0.0f;
  };
  State GetState() const;
  void SetState(const State& state);

 private:
  unsigned __int128 state_ = 0;
  unsigned __int128 increment_ = 0;
  bool has_cached_normal_ = false;
  float cached_normal_ = 0.0f;
};

}  // namespace otgen::nn

#endif  // OTGEN_NN_RANDOM_H_
