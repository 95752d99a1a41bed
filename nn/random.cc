#include "nn/random.h"

#include <cmath>

namespace otgen::nn {
namespace {

constexpr unsigned __int128 kMultiplier =
    (static_cast<unsigned __int128>(2549297995355413924ULL) << 64) + 4865540595714422341ULL;

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

Rng::Rng(uint64_t seed, uint64_t stream) {
  uint64_t s = seed;
  const uint64_t hi = SplitMix64(s);
  const uint64_t lo = SplitMix64(s);
  uint64_t t = stream ^ 0xDA3E39CB94B95BDBULL;
  const uint64_t inc_hi = SplitMix64(t);
  const uint64_t inc_lo = SplitMix64(t);
  increment_ = ((static_cast<unsigned __int128>(inc_hi) << 64) | inc_lo) | 1u;
  state_ = 0;
  NextU64();
  state_ += (static_cast<unsigned __int128>(hi) << 64) | lo;
  NextU64();
}

uint64_t Rng::NextU64() {
  const unsigned __int128 old = state_;
  state_ = old * kMultiplier + increment_;
  const uint64_t xored = static_cast<uint64_t>(old >> 64) ^ static_cast<uint64_t>(old);
  const unsigned rot = static_cast<unsigned>(old >> 122);
  return (xored >> rot) | (xored << ((64 - rot) & 63));
}

float Rng::Uniform() { return static_cast<float>(NextU64() >> 40) * 0x1.0p-24f; }

double Rng::UniformDouble() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

float Rng::Normal() {
  if (has_cached_normal_) {
    has_cached_normal_ = false;
    return cached_normal_;
  }
  // Box-Muller in double; u1 in (0, 1] so the log is finite.
  const double u1 = 1.0 - UniformDouble();
  const double u2 = UniformDouble();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 6.283185307179586476925286766559 * u2;
  cached_normal_ = static_cast<float>(r * std::sin(theta));
  has_cached_normal_ = true;
  return static_cast<float>(r * std::cos(theta));
}

uint64_t Rng::UniformInt(uint64_t n) {
  // Lemire, "Fast random integer generation in an interval" (2019).
  uint64_t x = NextU64();
  unsigned __int128 m = static_cast<unsigned __int128>(x) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      x = NextU64();
      m = static_cast<unsigned __int128>(x) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

Rng Rng::Split() {
  const uint64_t seed = NextU64();
  const uint64_t stream = NextU64();
  return Rng(seed, stream);
}

Rng::State Rng::GetState() const {
  State s;
  s.words = {static_cast<uint64_t>(state_ >> 64), static_cast<uint64_t>(state_),
             static_cast<uint64_t>(increment_ >> 64), static_cast<uint64_t>(increment_)};
  s.has_cached_normal = has_cached_normal_;
  s.cached_normal = cached_normal_;
  return s;
}

void Rng::SetState(const State& s) {
  state_ = (static_cast<unsigned __int128>(s.words[0]) << 64) | s.words[1];
  increment_ = ((static_cast<unsigned __int128>(s.words[2]) << 64) | s.words[3]) | 1u;
  has_cached_normal_ = s.has_cached_normal;
  cached_normal_ = s.cached_normal;
}

}  // namespace otgen::nn
