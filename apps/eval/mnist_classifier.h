// otgen's frozen MNIST classifier: the network behind every MNIST metric (classifier score,
// Frechet distance and KID on its features, class histograms), as DATASETS.md prescribes
// ("our own frozen CNN, >= 99.0% test accuracy; features = penultimate layer").
//
// Architecture (LeNet-style, strided convolutions instead of pooling), input [N, 1, 28, 28]
// with pixels in [0, 1]:
//   Conv2d(1, 32, 5, s1, p2)  - ReLU                      28x28
//   Conv2d(32, 32, 4, s2, p1) - ReLU                      14x14
//   Conv2d(32, 64, 3, s1, p1) - ReLU                      14x14
//   Conv2d(64, 64, 4, s2, p1) - ReLU                      7x7
//   Flatten - Linear(3136, 128) - ReLU                    features (penultimate layer, 128-d)
//   Linear(128, 10)                                       logits
// Training (TrainMnistClassifier): Adam, cross-entropy, batches of 128 from seeded shuffled
// epochs of the 60000 training images, 5 epochs, learning rate 1e-3 then 1e-4 for the last
// two epochs; everything seeded, so the
// weights are reproducible for a fixed seed and thread count. The weights are saved as an
// otgen checkpoint (nn/checkpoint.h) with the test accuracy in its metadata.
//
// Metric tools call LoadOrTrainMnistClassifier(dir): it loads dir/mnist_classifier.pb and,
// when there is none, trains the classifier (printing a progress line) and caches it there.
// The default directory is $OTGEN_CACHE_DIR, else $XDG_CACHE_HOME/otgen, else
// $HOME/.cache/otgen.
//
//   OTGEN_ASSIGN_OR_RETURN(auto classifier, LoadOrTrainMnistClassifier(DefaultClassifierDirectory()));
//   OTGEN_ASSIGN_OR_RETURN(ClassifierOutputs out, classifier->Evaluate(samples, PixelRange::kSymmetric));
#ifndef OTGEN_APPS_EVAL_MNIST_CLASSIFIER_H_
#define OTGEN_APPS_EVAL_MNIST_CLASSIFIER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/eval/pixel_range.h"
#include "data/dataset.h"
#include "nn/layers.h"
#include "nn/tensor.h"

namespace otgen::eval {

// Images handed to the classifier in either PixelRange (apps/eval/pixel_range.h) are mapped
// to [0, 1].

struct ClassifierOutputs {
  nn::Tensor features;       // [N, 128], penultimate layer
  nn::Tensor probabilities;  // [N, 10], softmax of the logits
  std::vector<int> predictions;
};

struct MnistClassifierTrainingOptions {
  uint64_t seed = 1;
  int epochs = 5;
  int64_t batch_size = 128;
  float learning_rate = 1e-3f;
  // The learning rate is multiplied by `decay_factor` for the last `decay_epochs` epochs.
  int decay_epochs = 2;
  float decay_factor = 0.1f;
  // Print a progress line on stderr.
  bool progress = true;

  absl::Status Validate() const;
};

class MnistClassifier {
 public:
  static constexpr int64_t kFeatureDim = 128;
  static constexpr int kNumClasses = 10;

  // A freshly initialized network (seeded).
  explicit MnistClassifier(uint64_t seed);

  // Logits [N, 10] for images [N, 1, 28, 28] or [N, 784] in [0, 1] (recorded for training).
  absl::StatusOr<nn::Var> Logits(const nn::Var& images);
  // Features, probabilities and predictions, in batches, without recording.
  absl::StatusOr<ClassifierOutputs> Evaluate(const nn::Tensor& images, PixelRange range,
                                             int64_t batch_size = 500);
  // Fraction of correctly classified examples of a labelled dataset in [0, 1] pixels.
  absl::StatusOr<double> Accuracy(const data::Dataset& dataset);

  absl::Status Save(const std::string& path, double test_accuracy) const;
  absl::Status Load(const std::string& path);
  // The test accuracy recorded by Save (NaN if unknown).
  double recorded_test_accuracy() const { return recorded_test_accuracy_; }

  nn::layers::Sequential& network() { return *network_; }

 private:
  friend absl::StatusOr<std::unique_ptr<MnistClassifier>> TrainMnistClassifier(
      const data::Dataset& train, const struct MnistClassifierTrainingOptions& options);
  std::unique_ptr<nn::layers::Sequential> network_;  // up to the features
  std::unique_ptr<nn::layers::Linear> head_;
  double recorded_test_accuracy_;
};

// Trains on `train` ([N,1,28,28] in [0,1], labelled) and returns the classifier.
absl::StatusOr<std::unique_ptr<MnistClassifier>> TrainMnistClassifier(const data::Dataset& train,
                                                                      const MnistClassifierTrainingOptions& options);

// $OTGEN_CACHE_DIR, else $XDG_CACHE_HOME/otgen, else $HOME/.cache/otgen.
std::string DefaultClassifierDirectory();
// directory/mnist_classifier.pb
std::string ClassifierPath(const std::string& directory);

// Loads the cached classifier from `directory`, or trains one on MNIST (found in the
// runfiles, or in `mnist_dir` when non-empty), checks its test accuracy and caches it.
absl::StatusOr<std::unique_ptr<MnistClassifier>> LoadOrTrainMnistClassifier(
    const std::string& directory, const std::string& mnist_dir = "",
    const MnistClassifierTrainingOptions& options = {});

}  // namespace otgen::eval

#endif  // OTGEN_APPS_EVAL_MNIST_CLASSIFIER_H_
