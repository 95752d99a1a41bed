// The unsupervised domain-adaptation evaluation of W2GAN (seed 002, Sec. 6.2 and Table 1,
// following Seguy et al. 2018; DATASETS.md, "Domain adaptation"): how well a transport map
// from a labelled source domain to an unlabelled target domain preserves digit identity.
//
// Data: USPS (7291 train / 2007 test, 16x16) and MNIST resized to 16x16 (mnist16: exact
// area averaging, data/mnist.h), pixels of both in [-1, 1], images flattened to R^256.
// Protocol, for a map G from source to target images (G = identity: the "source" baseline
// of Table 1, 33.31% for USPS -> MNIST and 70.05% for MNIST -> USPS in the paper):
//   1. map the labelled source training set: x_i -> G(x_i);
//   2. fit a 1-nearest-neighbour classifier (raw pixels, squared Euclidean distance, ties to
//      the lowest index; apps/eval/nearest_neighbor.h) on the G(x_i) with the source labels;
//   3. report its accuracy on the target test set:
//        USPS -> MNIST  train = USPS train (7291), test = 2007 random MNIST test images (a
//                       uniformly random subset without replacement, seeded), and also all
//                       10000 MNIST test images;
//        MNIST -> USPS  train = MNIST train (60000), test = the 2007 USPS test images.
//
// Layout: a data set's examples are rows of an n x d row-major float matrix (d = 256).
//
// Usage:
//   OTGEN_ASSIGN_OR_RETURN(DomainAdaptationData d, LoadDomainAdaptationData(usps_h5, mnist_dir));
//   OTGEN_ASSIGN_OR_RETURN(std::vector<TransferResult> r, EvaluateDomainAdaptation(d, {}, {}));
//   std::printf("%s", FormatTransferResults(r).c_str());   // no mapping: the source baseline
#ifndef OTGEN_APPS_EVAL_DOMAIN_ADAPTATION_H_
#define OTGEN_APPS_EVAL_DOMAIN_ADAPTATION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/eval/nearest_neighbor.h"
#include "data/dataset.h"
#include "ot/types.h"

namespace otgen::eval {

// The protocol's number of random MNIST test images for USPS -> MNIST (the size of the USPS
// test set).
inline constexpr int64_t kDomainAdaptationSubsetSize = 2007;

struct DomainAdaptationDataOptions {
  // Seed of the nn::Rng choosing the random MNIST test subset.
  uint64_t mnist_subset_seed = 0;
  // Size of that subset (1 <= size <= 10000).
  int64_t mnist_subset_size = kDomainAdaptationSubsetSize;

  absl::Status Validate() const;
};

// Both domains at 16x16, pixels in [-1, 1], examples flattened to {256}, labelled.
struct DomainAdaptationData {
  data::InMemoryDataset usps_train, usps_test;
  data::InMemoryDataset mnist_train, mnist_test;
  data::InMemoryDataset mnist_test_subset;  // the random MNIST test images
  // Their indices in mnist_test: RandomSubsetIndices(10000, size, seed) (random_subset.h).
  std::vector<int64_t> mnist_subset_indices;
};

// Loads USPS from the HDF5 file `usps_path` (data/usps.h) and MNIST from `mnist_dir` (empty:
// the @mnist runfiles), resized to 16x16, and draws the MNIST test subset.
absl::StatusOr<DomainAdaptationData> LoadDomainAdaptationData(const std::string& usps_path,
                                                              const std::string& mnist_dir,
                                                              const DomainAdaptationDataOptions& options = {});

// A transport map applied to a batch of source images (n x d in, n x d out). An empty
// function is the identity (no mapping).
using ImageMap = std::function<absl::StatusOr<ot::RowMatrixXf>(const ot::RowMatrixXf& source)>;

struct TransferResult {
  std::string task;           // e.g. "USPS -> MNIST (2007 random test images)"
  bool mapped = false;        // a map was applied (false: the source baseline)
  int64_t train_size = 0;     // labelled (mapped) source images
  int64_t test_size = 0;      // target test images
  int64_t correct = 0;
  double accuracy = 0.0;      // correct / test_size, in [0, 1]
};

// Steps 1-3 for one task: `source_train` (labelled, examples of d floats) mapped by `map`,
// 1-NN accuracy on the labelled `target_test` (examples of d floats). InvalidArgumentError
// for unlabelled sets, different example sizes, or a map returning another shape.
absl::StatusOr<TransferResult> OneNearestNeighborTransfer(const std::string& task,
                                                          const data::InMemoryDataset& source_train,
                                                          const data::InMemoryDataset& target_test,
                                                          const ImageMap& map = {},
                                                          const NearestNeighborOptions& options = {});

// The three evaluations of Table 1: USPS -> MNIST on the random subset and on all test
// images (map `usps_to_mnist`), then MNIST -> USPS (map `mnist_to_usps`).
absl::StatusOr<std::vector<TransferResult>> EvaluateDomainAdaptation(const DomainAdaptationData& data,
                                                                     const ImageMap& usps_to_mnist,
                                                                     const ImageMap& mnist_to_usps,
                                                                     const NearestNeighborOptions& options = {});

// One line per result: "USPS -> MNIST (2007 random test images)   7291 -> 2007   33.33%".
std::string FormatTransferResults(const std::vector<TransferResult>& results);

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_DOMAIN_ADAPTATION_H_
