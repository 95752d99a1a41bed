// Fisher-Yates shuffling with otgen's seeded generator: the one permutation routine of
// data/ (epoch permutations in batching.h, shuffled 2-D batches in synthetic2d.h).
//
// For i = n-1 down to 1: j = rng.UniformInt(i + 1), swap(x[i], x[j]). Every permutation
// is equally likely (UniformInt is unbiased), and the result depends only on the Rng
// state, so it is the same on every machine.
//
//   std::vector<int64_t> order(n);
//   std::iota(order.begin(), order.end(), 0);
//   FisherYatesShuffle(absl::MakeSpan(order), rng);
#ifndef OTGEN_DATA_SHUFFLE_H_
#define OTGEN_DATA_SHUFFLE_H_

#include <cstdint>
#include <utility>

#include "absl/types/span.h"
#include "nn/random.h"

namespace otgen::data {

template <typename T>
void FisherYatesShuffle(absl::Span<T> values, nn::Rng& rng) {
  for (size_t i = values.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.UniformInt(i));
    using std::swap;
    swap(values[i - 1], values[j]);
  }
}

}  // namespace otgen::data

#endif  // OTGEN_DATA_SHUFFLE_H_
