// 1-nearest-neighbour classification on raw pixels: the domain-adaptation protocol of W2GAN
// (seed 002, Sec. 6.2 and Table 1, following Seguy et al.; DATASETS.md, "Domain adaptation"). Images 16x16 in [-1, 1] are
// flattened to vectors in R^256; the labelled source training set is mapped through the
// learned transport map, a 1-NN classifier is fitted on the mapped images with the source
// labels, and its accuracy is measured on the target test set (USPS -> MNIST: 2007 random
// MNIST test images and all 10000; MNIST -> USPS: the 2007 USPS test images). The "source"
// baseline fits the classifier on the unmapped source images.
//
// Rule: a query q takes the label of argmin_j ||q - t_j||^2 over the training rows t_j, ties
// going to the lowest index j.
//
// Computation: ||q - t||^2 = ||q||^2 + ||t||^2 - 2 q.t; the dot products of a block of
// `query_block` queries against a block of `train_block` training rows come from one oneDNN
// sgemm (float32), so memory stays at query_block x train_block floats besides the data. The
// float values are only used to shortlist: every training row whose approximate value lies
// within a rigorous bound of the float rounding error (|err| <= u (2 T^2 + (2.02 d + 2) ||q|| T),
// u = 2^-24, T = max_j ||t_j||, doubled for safety) of the best one is re-scored exactly in
// double, so the result equals a brute-force double-precision search, ties included. Each
// tile is scanned in two passes per query (a vectorized minimum, then, only if the tile
// comes near the best value so far, the collection of the rows near it); the sgemm uses
// oneDNN's threads, the scan runs on the calling thread.
//
// Layout: images are rows of row-major float matrices (n x d, d = 256 for 16x16).
//
// Usage:
//   otgen::ot::RowMatrixXf mapped_source = ...;            // G(source train), n x 256
//   std::vector<int> source_labels = ...;
//   OTGEN_ASSIGN_OR_RETURN(auto knn, otgen::eval::NearestNeighborClassifier::Create(
//                                        std::move(mapped_source), std::move(source_labels)));
//   OTGEN_ASSIGN_OR_RETURN(otgen::eval::NearestNeighborResult r,
//                          knn.Evaluate(target_test_images, target_test_labels));
//   std::cerr << r.accuracy << "\n";
#ifndef OTGEN_APPS_EVAL_NEAREST_NEIGHBOR_H_
#define OTGEN_APPS_EVAL_NEAREST_NEIGHBOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ot/types.h"

namespace otgen::eval {

struct NearestNeighborOptions {
  // Queries per sgemm tile (>= 1).
  int64_t query_block = 256;
  // Training rows per sgemm tile (>= 1). The tile holds query_block x train_block floats.
  int64_t train_block = 4096;

  absl::Status Validate() const;
};

struct NearestNeighborResult {
  std::vector<int> predictions;                 // label of the nearest training row, per query
  std::vector<int64_t> nearest_index;           // its row index
  std::vector<double> nearest_squared_distance; // ||q - t||^2, exact in double
  // With labels (Evaluate): correct / number of queries; -1 from Predict.
  double accuracy = -1.0;
  int64_t correct = 0;
};

class NearestNeighborClassifier {
 public:
  // Takes the training rows (n x d, n >= 1, d >= 1, finite) and their n labels.
  static absl::StatusOr<NearestNeighborClassifier> Create(ot::RowMatrixXf train, std::vector<int> labels,
                                                          const NearestNeighborOptions& options = {});

  // Nearest training row of each query (m x d, finite; m may be 0).
  absl::StatusOr<NearestNeighborResult> Predict(const Eigen::Ref<const ot::RowMatrixXf>& queries) const;
  // Predict, then accuracy against `labels` (m entries).
  absl::StatusOr<NearestNeighborResult> Evaluate(const Eigen::Ref<const ot::RowMatrixXf>& queries,
                                                 absl::Span<const int> labels) const;

  int64_t size() const { return train_.rows(); }
  int64_t dim() const { return train_.cols(); }

 private:
  NearestNeighborClassifier() = default;

  ot::RowMatrixXf train_;
  std::vector<int> labels_;
  Eigen::VectorXf train_norms_;  // ||t_j||^2 rounded to float (the sgemm path)
  double max_norm_ = 0.0;        // T = max_j ||t_j||
  NearestNeighborOptions options_;
};

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_NEAREST_NEIGHBOR_H_
