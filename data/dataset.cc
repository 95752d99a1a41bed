#include "data/dataset.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace otgen::data {

std::string_view SplitName(Split split) { return split == Split::kTrain ? "train" : "test"; }

absl::StatusOr<Split> ParseSplit(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  if (lower == "train") return Split::kTrain;
  if (lower == "test") return Split::kTest;
  return absl::InvalidArgumentError(
      absl::StrCat("split: expected \"train\" or \"test\", got \"", std::string(name), "\""));
}

std::string_view PixelScalingName(PixelScaling scaling) {
  return scaling == PixelScaling::kUnit ? "unit" : "symmetric";
}

absl::StatusOr<PixelScaling> ParsePixelScaling(std::string_view name) {
  std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  lower.erase(std::remove(lower.begin(), lower.end(), ' '), lower.end());
  if (lower == "unit" || lower == "[0,1]") return PixelScaling::kUnit;
  if (lower == "symmetric" || lower == "[-1,1]") return PixelScaling::kSymmetric;
  return absl::InvalidArgumentError(absl::StrCat(
      "pixel scaling: expected \"unit\" ([0,1]) or \"symmetric\" ([-1,1]), got \"", std::string(name), "\""));
}

absl::Status Dataset::CheckIndices(absl::Span<const int64_t> indices) const {
  const int64_t n = size();
  for (size_t k = 0; k < indices.size(); ++k) {
    if (indices[k] < 0 || indices[k] >= n) {
      return absl::OutOfRangeError(
          absl::StrCat("indices[", k, "] = ", indices[k], " is outside [0, ", n, ") (dataset of ", n, " examples)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<nn::Tensor> Dataset::GetBatch(absl::Span<const int64_t> indices) const {
  nn::Tensor batch;
  absl::Status status = CopyBatch(indices, &batch);
  if (!status.ok()) return status;
  return batch;
}

absl::StatusOr<std::vector<int>> Dataset::GetLabels(absl::Span<const int64_t> indices) const {
  if (!has_labels()) return absl::FailedPreconditionError("GetLabels: the dataset has no labels");
  absl::Status status = CheckIndices(indices);
  if (!status.ok()) return status;
  std::vector<int> out(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) out[k] = label(indices[k]);
  return out;
}

InMemoryDataset::InMemoryDataset() : examples_(nn::Tensor::Empty({0})), example_shape_{}, name_("dataset") {}

absl::StatusOr<InMemoryDataset> InMemoryDataset::Create(nn::Tensor examples, std::vector<int32_t> labels,
                                                        int num_classes, std::string name) {
  if (!examples.defined() || examples.rank() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": examples must be a tensor of rank >= 1 (axis 0 indexes examples), got ",
                     examples.defined() ? nn::ShapeToString(examples.shape()) : "an undefined tensor"));
  }
  const int64_t n = examples.dim(0);
  if (num_classes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": num_classes must be >= 0, got ", num_classes));
  }
  if (num_classes == 0 && !labels.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", labels.size(), " labels given with num_classes = 0 (expected num_classes >= 1)"));
  }
  if (num_classes > 0) {
    if (static_cast<int64_t>(labels.size()) != n) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": expected one label per example (", n, "), got ", labels.size(), " labels"));
    }
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] < 0 || labels[i] >= num_classes) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": label[", i, "] = ", labels[i], " is outside [0, ", num_classes, ")"));
      }
    }
  }
  InMemoryDataset d;
  d.example_shape_.assign(examples.shape().begin() + 1, examples.shape().end());
  d.examples_ = std::move(examples);
  d.labels_ = std::move(labels);
  d.num_classes_ = num_classes;
  d.name_ = std::move(name);
  return d;
}

int InMemoryDataset::label(int64_t i) const {
  OTGEN_CHECK(has_labels(), absl::StrCat(name_, ": label() on a dataset without labels"));
  OTGEN_CHECK(i >= 0 && i < size(), absl::StrCat(name_, ": label index ", i, " outside [0, ", size(), ")"));
  return labels_[i];
}

absl::Status InMemoryDataset::CopyBatch(absl::Span<const int64_t> indices, nn::Tensor* batch) const {
  if (batch == nullptr) return absl::InvalidArgumentError("CopyBatch: batch must not be null");
  absl::Status status = CheckIndices(indices);
  if (!status.ok()) return status;
  nn::Shape shape;
  shape.reserve(example_shape_.size() + 1);
  shape.push_back(static_cast<int64_t>(indices.size()));
  shape.insert(shape.end(), example_shape_.begin(), example_shape_.end());
  if (!batch->defined() || batch->shape() != shape) *batch = nn::Tensor::Empty(shape);
  const int64_t row = example_numel();
  const float* src = examples_.data();
  float* dst = batch->data();
  if (row == 0) return absl::OkStatus();
  for (size_t k = 0; k < indices.size(); ++k) {
    std::memcpy(dst + k * row, src + indices[k] * row, row * sizeof(float));
  }
  return absl::OkStatus();
}

std::vector<int64_t> InMemoryDataset::ClassCounts() const {
  std::vector<int64_t> counts(num_classes_, 0);
  for (int32_t y : labels_) ++counts[y];
  return counts;
}

absl::StatusOr<InMemoryDataset> InMemoryDataset::Subset(absl::Span<const int64_t> indices) const {
  absl::Status status = CheckIndices(indices);
  if (!status.ok()) return status;
  nn::Tensor examples;
  status = CopyBatch(indices, &examples);
  if (!status.ok()) return status;
  std::vector<int32_t> labels;
  if (has_labels()) {
    labels.resize(indices.size());
    for (size_t k = 0; k < indices.size(); ++k) labels[k] = labels_[indices[k]];
  }
  return Create(std::move(examples), std::move(labels), num_classes_, absl::StrCat(name_, " subset"));
}

absl::StatusOr<InMemoryDataset> InMemoryDataset::WithExampleShape(const nn::Shape& example_shape) const {
  for (int64_t d : example_shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": example shape ", nn::ShapeToString(example_shape), " has a negative dimension"));
    }
  }
  if (nn::NumElements(example_shape) != example_numel()) {
    return absl::InvalidArgumentError(absl::StrCat(
        name_, ": cannot view examples of shape ", nn::ShapeToString(example_shape_), " (", example_numel(),
        " values) as ", nn::ShapeToString(example_shape), " (", nn::NumElements(example_shape), " values)"));
  }
  nn::Shape full;
  full.push_back(size());
  full.insert(full.end(), example_shape.begin(), example_shape.end());
  InMemoryDataset d = *this;
  d.examples_ = examples_.Reshape(full);
  d.example_shape_ = example_shape;
  return d;
}

std::string InMemoryDataset::DebugString() const {
  std::string s = absl::StrCat(name_, ": ", size(), " x ", nn::ShapeToString(example_shape_));
  if (has_labels()) {
    absl::StrAppend(&s, ", ", num_classes_, " classes");
  } else {
    absl::StrAppend(&s, ", unlabelled");
  }
  return s;
}

}  // namespace otgen::data
