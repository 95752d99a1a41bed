// The data side of the GAN apps (apps/wgan_gp, apps/swgan): real batches, the generator's
// noise, sample outputs and the end-of-run metrics, configured by apps/wgan_gp/gan.proto.
//
// Real data (GanData):
//   2-D sets (grid25, grid25_wgangp, ring8, ring8_wgangp, swissroll; data/synthetic2d.h):
//     a fresh batch of batch_size points per call, drawn from the "data" random stream.
//   images (mnist 1x28x28, cifar10 3x32x32; pixels in [-1, 1]): shuffled epochs
//     (data::EpochBatcher, partial last batches dropped); the batcher's position and epoch
//     stream are part of the checkpoint (Register / BeforeCheckpoint / AfterRestore), so a
//     resumed run sees exactly the batches an uninterrupted one would.
//
// Evaluation (GanEvaluator), on N generated samples (N = eval.num_samples, by default the
// protocol's size: 2500 for the 2-D sets, 10000 for MNIST), drawn from a noise stream that is
// re-seeded at every evaluation (so evaluations do not disturb training and are comparable
// across steps):
//   Gaussian-mixture 2-D sets: mode coverage (apps/eval/mode_coverage.h: modes captured, %HQ,
//     reverse KL) as eval_modes, eval_hq, eval_reverse_kl;
//   every 2-D set: the debiased Sinkhorn divergence S_eps (squared Euclidean cost,
//     eps = eval.sinkhorn_epsilon) against N fresh data points, eval_sinkhorn;
//   MNIST (eval.mnist_metrics): the classifier metrics of apps/eval/mnist_sample_metrics.h
//     as eval_cs, eval_cs_std, eval_fd, eval_kid, eval_kid_std, eval_class_kl, eval_confident.
// Samples: samples_<step>.png (2-D: scatter over the true means; images: a grid of
// eval.grid_images images from a fixed noise batch); at the end also samples.npy (the N
// evaluated samples) and samples.png.
//
// Generation runs the generator without recording, in chunks of the training batch size, in
// the generator's current mode (batch-norm layers use chunk statistics, as in training).
//
//   OTGEN_ASSIGN_OR_RETURN(auto data, GanData::Create(config.data(), config.run().seed()));
//   nn::Tensor real;
//   OTGEN_RETURN_IF_ERROR(data->NextBatch(&real));   // {batch_size, 2} or {batch_size, 1, 28, 28}
#ifndef OTGEN_APPS_WGAN_GP_GAN_IO_H_
#define OTGEN_APPS_WGAN_GP_GAN_IO_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/common/training_loop.h"
#include "apps/eval/mnist_sample_metrics.h"
#include "apps/wgan_gp/gan.pb.h"
#include "data/batching.h"
#include "data/dataset.h"
#include "data/sampler.h"
#include "data/synthetic2d.h"
#include "nn/checkpoint.h"
#include "nn/module.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::apps::gan {

// Random streams of a GAN run, all seeded by run.seed (nn::Rng's stream argument).
inline constexpr uint64_t kInitStream = 0;          // network initialization
inline constexpr uint64_t kDataStream = 1;          // real batches
inline constexpr uint64_t kNoiseStream = 2;         // the generator's noise in training
inline constexpr uint64_t kAuxStream = 3;           // app-specific (interpolates, ...)
inline constexpr uint64_t kFixedNoiseStream = 10;   // the noise of the sample grids
inline constexpr uint64_t kEvalNoiseStream = 11;    // the noise of evaluations
inline constexpr uint64_t kEvalDataStream = 12;     // reference data of evaluations

// The data sets GanDataConfig.dataset accepts.
std::vector<std::string> GanDatasetNames();

// Field checks; messages start with `field` (e.g. "data.batch_size: expected >= 2, got 1").
absl::Status ValidateGanDataConfig(const GanDataConfig& config, const std::string& field);
absl::Status ValidateNoiseConfig(const NoiseConfig& config, const std::string& field);
absl::Status ValidateGanEvalConfig(const GanEvalConfig& config, const std::string& field);

// The per-example shape of the data set named in `config` ({2}, {1, 28, 28}, {3, 32, 32}),
// known without loading it.
absl::StatusOr<nn::Shape> DataExampleShape(const GanDataConfig& config);

// The noise distribution of `config`: samples of shape {dim}.
std::unique_ptr<data::Sampler> MakeNoiseSampler(const NoiseConfig& config);

class GanData {
 public:
  // Loads image data sets (mnist: `directory` or the runfiles; cifar10: `files` or
  // `directory`); errors name the field and the file.
  static absl::StatusOr<std::unique_ptr<GanData>> Create(const GanDataConfig& config, uint64_t seed);

  const GanDataConfig& config() const { return config_; }
  const std::string& name() const { return config_.dataset(); }
  const nn::Shape& example_shape() const { return example_shape_; }
  int64_t batch_size() const { return config_.batch_size(); }
  bool is_image() const { return dataset_ != nullptr; }
  // The 2-D distribution (nullptr for images).
  const data::Synthetic2d* synthetic() const { return synthetic_.get(); }
  // The image set (nullptr for 2-D data).
  const data::InMemoryDataset* images() const { return dataset_.get(); }

  // The next real batch {batch_size, example_shape...} (storage reused when the shape fits).
  absl::Status NextBatch(nn::Tensor* batch);

  // Lists the data streams (and the batcher position) in `state`.
  void Register(nn::TrainingState* state);
  // Copies the batcher position into the registered tensors / back after a restore.
  absl::Status BeforeCheckpoint();
  absl::Status AfterRestore();

 private:
  GanData() = default;

  GanDataConfig config_;
  nn::Shape example_shape_;
  std::unique_ptr<data::Synthetic2d> synthetic_;
  std::unique_ptr<data::InMemoryDataset> dataset_;
  std::unique_ptr<data::EpochBatcher> batcher_;
  nn::Rng rng_;                 // 2-D draws
  nn::Rng batcher_epoch_rng_;   // checkpoint copy of the batcher's epoch stream
  nn::Tensor batcher_position_;  // {2}: epoch, position (checkpoint copy)
};

// n samples of `generator` (noise from `noise` and `rng`) without recording, in chunks of
// `chunk` rows: a tensor {n, output shape...}.
absl::StatusOr<nn::Tensor> GenerateSamples(nn::Module& generator, const data::Sampler& noise, int64_t n,
                                           int64_t chunk, nn::Rng& rng);

class GanEvaluator {
 public:
  GanEvaluator(GanEvalConfig config, const GanData* data, const data::Sampler* noise, uint64_t seed,
               std::string output_dir);

  // The number of samples evaluated (the config's, or the protocol's size).
  int64_t num_samples() const;
  // The metrics.csv columns Evaluate fills for this data set.
  std::vector<std::string> Columns() const;

  // Generates num_samples() samples and scores them (the samples are kept for WriteSamples).
  absl::StatusOr<MetricRow> Evaluate(nn::Module& generator, int64_t step);
  // samples_<step>.png from the fixed noise batch; when `last`, also samples.npy and
  // samples.png from the samples of the latest evaluation (generated now if there is none
  // for `step`).
  absl::Status WriteSamples(nn::Module& generator, int64_t step, bool last);

  // A one-line summary of the latest evaluation, e.g. "modes 25/25, HQ 98.8% ... ".
  const std::string& last_report() const { return last_report_; }
  // The paths written by the last WriteSamples call.
  const std::vector<std::string>& written() const { return written_; }

 private:
  absl::Status EnsureSamples(nn::Module& generator, int64_t step);

  GanEvalConfig config_;
  const GanData* data_;
  const data::Sampler* noise_;
  uint64_t seed_;
  std::string output_dir_;
  nn::Tensor fixed_noise_;
  nn::Tensor samples_;
  int64_t samples_step_ = -1;
  std::unique_ptr<eval::MnistSampleScorer> mnist_scorer_;
  std::string last_report_;
  std::vector<std::string> written_;
};

}  // namespace otgen::apps::gan

#endif  // OTGEN_APPS_WGAN_GP_GAN_IO_H_
