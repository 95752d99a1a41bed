#include "apps/eval/domain_adaptation.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "apps/eval/random_subset.h"
#include "data/mnist.h"
#include "data/usps.h"
#include "nn/status_macros.h"

namespace otgen::eval {
namespace {

constexpr int kImageSize = 16;

// The examples of `set` as an n x d matrix (a copy).
ot::RowMatrixXf Rows(const data::InMemoryDataset& set) {
  return Eigen::Map<const ot::RowMatrixXf>(set.examples().data(), set.size(), set.example_numel());
}

absl::Status CheckLabelled(const data::InMemoryDataset& set, const char* what) {
  if (!set.has_labels() || set.size() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected a labelled data set with at least one example, got ",
                                                   set.DebugString()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DomainAdaptationDataOptions::Validate() const {
  if (mnist_subset_size < 1 || mnist_subset_size > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat("mnist_subset_size: expected a value in [1, 10000], got ", mnist_subset_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<DomainAdaptationData> LoadDomainAdaptationData(const std::string& usps_path,
                                                              const std::string& mnist_dir,
                                                              const DomainAdaptationDataOptions& options) {
  OTGEN_RETURN_IF_ERROR(options.Validate());
  const data::UspsOptions usps_options{.scaling = data::PixelScaling::kSymmetric, .flatten = true};
  const data::MnistOptions mnist_options{
      .scaling = data::PixelScaling::kSymmetric, .image_size = kImageSize, .flatten = true};
  DomainAdaptationData d;
  OTGEN_ASSIGN_OR_RETURN(d.usps_train, data::LoadUsps(usps_path, data::Split::kTrain, usps_options));
  OTGEN_ASSIGN_OR_RETURN(d.usps_test, data::LoadUsps(usps_path, data::Split::kTest, usps_options));
  OTGEN_ASSIGN_OR_RETURN(d.mnist_train, data::LoadMnist(mnist_dir, data::Split::kTrain, mnist_options));
  OTGEN_ASSIGN_OR_RETURN(d.mnist_test, data::LoadMnist(mnist_dir, data::Split::kTest, mnist_options));
  if (d.mnist_test.size() < options.mnist_subset_size) {
    return absl::InvalidArgumentError(absl::StrCat("mnist_subset_size: ", options.mnist_subset_size,
                                                   " exceeds the ", d.mnist_test.size(), " MNIST test images"));
  }
  d.mnist_subset_indices = RandomSubsetIndices(d.mnist_test.size(), options.mnist_subset_size, options.mnist_subset_seed);
  OTGEN_ASSIGN_OR_RETURN(d.mnist_test_subset, d.mnist_test.Subset(d.mnist_subset_indices));
  return d;
}

absl::StatusOr<TransferResult> OneNearestNeighborTransfer(const std::string& task,
                                                          const data::InMemoryDataset& source_train,
                                                          const data::InMemoryDataset& target_test,
                                                          const ImageMap& map, const NearestNeighborOptions& options) {
  OTGEN_RETURN_IF_ERROR(CheckLabelled(source_train, "source_train"));
  OTGEN_RETURN_IF_ERROR(CheckLabelled(target_test, "target_test"));
  if (source_train.example_numel() != target_test.example_numel()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target_test: expected examples of ", source_train.example_numel(), " values like source_train, got ",
        nn::ShapeToString(target_test.example_shape())));
  }
  ot::RowMatrixXf train = Rows(source_train);
  if (map) {
    OTGEN_ASSIGN_OR_RETURN(ot::RowMatrixXf mapped, map(train));
    if (mapped.rows() != train.rows() || mapped.cols() != train.cols()) {
      return absl::InvalidArgumentError(absl::StrCat("map: expected ", train.rows(), " x ", train.cols(),
                                                     " mapped images, got ", mapped.rows(), " x ", mapped.cols()));
    }
    train = std::move(mapped);
  }
  std::vector<int> labels(source_train.labels().begin(), source_train.labels().end());
  OTGEN_ASSIGN_OR_RETURN(NearestNeighborClassifier knn,
                         NearestNeighborClassifier::Create(std::move(train), std::move(labels), options));
  const std::vector<int> test_labels(target_test.labels().begin(), target_test.labels().end());
  OTGEN_ASSIGN_OR_RETURN(NearestNeighborResult r, knn.Evaluate(Rows(target_test), test_labels));
  TransferResult out;
  out.task = task;
  out.mapped = static_cast<bool>(map);
  out.train_size = source_train.size();
  out.test_size = target_test.size();
  out.correct = r.correct;
  out.accuracy = r.accuracy;
  return out;
}

absl::StatusOr<std::vector<TransferResult>> EvaluateDomainAdaptation(const DomainAdaptationData& data,
                                                                     const ImageMap& usps_to_mnist,
                                                                     const ImageMap& mnist_to_usps,
                                                                     const NearestNeighborOptions& options) {
  std::vector<TransferResult> out;
  OTGEN_ASSIGN_OR_RETURN(
      TransferResult a,
      OneNearestNeighborTransfer(absl::StrCat("USPS -> MNIST (", data.mnist_test_subset.size(), " random test images)"),
                                 data.usps_train, data.mnist_test_subset, usps_to_mnist, options));
  out.push_back(std::move(a));
  OTGEN_ASSIGN_OR_RETURN(
      TransferResult b,
      OneNearestNeighborTransfer(absl::StrCat("USPS -> MNIST (all ", data.mnist_test.size(), " test images)"),
                                 data.usps_train, data.mnist_test, usps_to_mnist, options));
  out.push_back(std::move(b));
  OTGEN_ASSIGN_OR_RETURN(TransferResult c, OneNearestNeighborTransfer("MNIST -> USPS", data.mnist_train,
                                                                      data.usps_test, mnist_to_usps, options));
  out.push_back(std::move(c));
  return out;
}

std::string FormatTransferResults(const std::vector<TransferResult>& results) {
  size_t width = 4;
  for (const TransferResult& r : results) width = std::max(width, r.task.size());
  std::string out = absl::StrFormat("%-*s  %-7s  %6s  %6s  %8s\n", width, "task", "map", "train", "test", "accuracy");
  for (const TransferResult& r : results) {
    absl::StrAppend(&out, absl::StrFormat("%-*s  %-7s  %6d  %6d  %7.2f%%\n", width, r.task,
                                          r.mapped ? "learned" : "none", r.train_size, r.test_size,
                                          100.0 * r.accuracy));
  }
  return out;
}

}  // namespace otgen::eval
