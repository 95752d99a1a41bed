// Seeded random subsets of indices, for evaluation protocols that score "N random images" of
// a larger set (the MNIST real-vs-real baseline, the 2007 random MNIST test images of the
// domain-adaptation protocol).
//
// RandomSubsetIndices(n, k, seed) is a uniformly random k-subset of [0, n) in random order:
// the first k steps of a Fisher-Yates shuffle of 0, 1, ..., n - 1 driven by nn::Rng(seed)
// (step i swaps position i with i + UniformInt(n - i)), so it is the same on every machine
// and k = n gives a uniformly random permutation. O(n) time and memory.
//
//   std::vector<int64_t> idx = otgen::eval::RandomSubsetIndices(10000, 2007, /*seed=*/0);
//   OTGEN_ASSIGN_OR_RETURN(otgen::data::InMemoryDataset subset, test.Subset(idx));
#ifndef OTGEN_APPS_EVAL_RANDOM_SUBSET_H_
#define OTGEN_APPS_EVAL_RANDOM_SUBSET_H_

#include <cassert>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "nn/random.h"

namespace otgen::eval {

// Requires 0 <= k <= n.
inline std::vector<int64_t> RandomSubsetIndices(int64_t n, int64_t k, uint64_t seed) {
  assert(k >= 0 && k <= n);
  std::vector<int64_t> index(static_cast<size_t>(n));
  std::iota(index.begin(), index.end(), int64_t{0});
  nn::Rng rng(seed);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng.UniformInt(static_cast<uint64_t>(n - i)));
    std::swap(index[i], index[j]);
  }
  index.resize(static_cast<size_t>(k));
  return index;
}

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_RANDOM_SUBSET_H_
