// Dataset: the interface through which otgen's training loops read examples, and the
// in-memory implementation that every loader (MNIST, USPS, CIFAR-10) returns.
//
// A dataset is a fixed, indexable set of N examples of one shape (e.g. {1, 28, 28} for an
// MNIST image, {784} when flattened, {2} for a point cloud), optionally with integer class
// labels in [0, num_classes). A batch of examples is gathered by index into a Tensor of
// shape {batch, example shape...}: contiguous float32, row-major (NCHW for images), one
// example after the other. Indices usually come from data/batching.h.
//
// Memory layout of InMemoryDataset: one Tensor {N, example shape...} holding all
// examples (shared, not copied, when the dataset is copied) and a vector of N labels.
//
//   OTGEN_ASSIGN_OR_RETURN(InMemoryDataset train, LoadMnist(dir, Split::kTrain, {}));
//   nn::Tensor batch;                                    // reused across iterations
//   std::vector<int64_t> idx = {3, 1, 4, 1, 5};
//   OTGEN_RETURN_IF_ERROR(train.CopyBatch(idx, &batch)); // batch: {5, 1, 28, 28}
//   int first_label = train.label(idx[0]);
#ifndef OTGEN_DATA_DATASET_H_
#define OTGEN_DATA_DATASET_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "nn/tensor.h"

namespace otgen::data {

// Which part of a dataset with a canonical train/test split to load.
enum class Split { kTrain, kTest };
// "train" / "test".
std::string_view SplitName(Split split);
// Parses "train" or "test"; InvalidArgumentError otherwise.
absl::StatusOr<Split> ParseSplit(std::string_view name);

// Pixel value range of image datasets. Pixels are first mapped to [0, 1] (bytes: v / 255);
// kSymmetric then applies 2 v - 1 (torchvision's Normalize(0.5, 0.5), used with tanh
// generators by SWGAN, W2GAN and WGAN-GP).
enum class PixelScaling {
  kUnit,       // [0, 1]
  kSymmetric,  // [-1, 1]
};
// "unit" / "symmetric".
std::string_view PixelScalingName(PixelScaling scaling);
// Accepts "unit" or "[0,1]", and "symmetric" or "[-1,1]"; InvalidArgumentError otherwise.
absl::StatusOr<PixelScaling> ParsePixelScaling(std::string_view name);

class Dataset {
 public:
  virtual ~Dataset() = default;

  // Number of examples N.
  virtual int64_t size() const = 0;
  // Shape of one example, without the batch dimension.
  virtual const nn::Shape& example_shape() const = 0;
  // Number of floats in one example.
  int64_t example_numel() const { return nn::NumElements(example_shape()); }

  // Whether examples carry class labels; label() requires it.
  virtual bool has_labels() const = 0;
  // Labels are in [0, num_classes()); 0 when the dataset has no labels.
  virtual int num_classes() const = 0;
  // Label of example i, 0 <= i < size() (checked; a programming error otherwise).
  virtual int label(int64_t i) const = 0;

  // Gathers the examples at `indices` into `*batch`, shape {indices.size(), example shape}.
  // When `*batch` already has exactly that shape its storage is reused (so a training loop
  // allocates once); otherwise a new tensor is allocated. OutOfRangeError naming the
  // offending position and index when an index is outside [0, size()).
  virtual absl::Status CopyBatch(absl::Span<const int64_t> indices, nn::Tensor* batch) const = 0;

  // Allocating form of CopyBatch.
  absl::StatusOr<nn::Tensor> GetBatch(absl::Span<const int64_t> indices) const;
  // The labels at `indices`; FailedPreconditionError without labels, OutOfRangeError for a
  // bad index.
  absl::StatusOr<std::vector<int>> GetLabels(absl::Span<const int64_t> indices) const;

 protected:
  // Shared validation for implementations: every index in [0, size()).
  absl::Status CheckIndices(absl::Span<const int64_t> indices) const;
};

// A dataset held in memory: examples {N, ...} plus optional labels.
class InMemoryDataset : public Dataset {
 public:
  // An empty, unlabelled dataset (0 examples of shape {}); use Create.
  InMemoryDataset();

  // Takes `examples` (rank >= 1; axis 0 indexes examples; shared, not copied). With
  // num_classes > 0 the dataset is labelled and `labels` holds one label per example in
  // [0, num_classes); with num_classes == 0 `labels` must be empty. `name` appears in
  // error messages and DebugString (e.g. the file the data came from).
  // InvalidArgumentError for an undefined or rank-0 tensor, a label count different from
  // N, labels without num_classes, or a label out of range (naming its index).
  static absl::StatusOr<InMemoryDataset> Create(nn::Tensor examples, std::vector<int32_t> labels = {},
                                                int num_classes = 0, std::string name = "dataset");

  int64_t size() const override { return examples_.dim(0); }
  const nn::Shape& example_shape() const override { return example_shape_; }
  bool has_labels() const override { return num_classes_ > 0; }
  int num_classes() const override { return num_classes_; }
  int label(int64_t i) const override;
  absl::Status CopyBatch(absl::Span<const int64_t> indices, nn::Tensor* batch) const override;

  // All examples, {N, example shape...}; shares storage with the dataset.
  const nn::Tensor& examples() const { return examples_; }
  // All labels (empty without labels).
  absl::Span<const int32_t> labels() const { return labels_; }
  const std::string& name() const { return name_; }

  // Number of examples of each class (size num_classes()); empty without labels.
  std::vector<int64_t> ClassCounts() const;

  // A new dataset made of copies of the examples (and labels) at `indices`, in that order,
  // e.g. a fixed random subset of 2007 MNIST test images. OutOfRangeError for a bad index.
  absl::StatusOr<InMemoryDataset> Subset(absl::Span<const int64_t> indices) const;
  // The same data viewed with another example shape of the same size, e.g. {784} for
  // {1, 28, 28}. Shares storage. InvalidArgumentError when the sizes differ.
  absl::StatusOr<InMemoryDataset> WithExampleShape(const nn::Shape& example_shape) const;

  // "mnist train: 60000 x [1, 28, 28], 10 classes"
  std::string DebugString() const;

 private:
  nn::Tensor examples_;
  nn::Shape example_shape_;
  std::vector<int32_t> labels_;
  int num_classes_ = 0;
  std::string name_;
};

}  // namespace otgen::data

#endif  // OTGEN_DATA_DATASET_H_
