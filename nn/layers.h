// Network layers for otgen's generators, critics and potentials (PyTorch's torch.nn layers
// with the same semantics, weight layouts and default initializations), in namespace
// otgen::nn::layers; the Module base class is nn/module.h.
//
//   Linear(in, out)                    y = x W^T + b;  x [N, in], W [out, in], b [out]
//   Conv2d(in, out, k, s, p)           x [N, in, H, W], W [out, in, k, k], b [out]
//   ConvTranspose2d(in, out, k, s, p, op)  W [in, out, k, k] (in first, as PyTorch),
//                                      Ho = (H - 1) s - 2p + k + op
//   BatchNorm1d(C) / BatchNorm2d(C)    per-channel normalization of [N, C] / [N, C, L] and
//                                      [N, C, H, W]; parameters weight (gamma), bias (beta),
//                                      buffers running_mean, running_var. Training mode uses
//                                      the batch statistics (biased variance) and updates
//                                      r <- (1 - momentum) r + momentum * stat (unbiased
//                                      variance); eval mode uses the running statistics.
//   LayerNorm(shape)                   normalization over the trailing `shape` dimensions.
//   ReLU, LeakyReLU(slope), Tanh, Sigmoid    element-wise.
//   GLU                                a * sigmoid(b) where [a, b] split dim 1 in halves.
//   CReLU                              concat(relu(x), relu(-x)) along dim 1.
//   Upsample2x                         nearest-neighbour, [N, C, H, W] -> [N, C, 2H, 2W].
//   Flatten                            [N, ...] -> [N, prod(...)].
//   Reshape(shape)                     [N, ...] -> [N, shape...] (one entry may be -1).
//   Sequential                         children "0", "1", ... applied in order.
//
// Initialization (seeded through nn::Rng, deterministic): every layer is constructed with
// PyTorch's default, kaiming_uniform(a = sqrt(5)), i.e. W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
// and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in = in (Linear), in * k * k (Conv2d)
// and W.dim(1) * k * k = out * k * k (ConvTranspose2d, as PyTorch computes it); norm layers
// start at gamma = 1, beta = 0. `InitDcgan` re-draws a network with the DCGAN scheme
// (Radford et al. 2016): conv / transposed-conv / linear weights ~ N(0, 0.02^2), batch-norm
// gamma ~ N(1, 0.02^2), beta = 0.
//
//   namespace layers = otgen::nn::layers;
//   Rng rng(1);
//   auto critic = layers::Mlp({2, 512, 512, 512, 1}, layers::ActivationKind::kRelu,
//                             layers::ActivationKind::kNone, rng).value();
//   layers::Sequential gen;
//   gen.Emplace<layers::Linear>(128, 4096, rng);
//   gen.Emplace<layers::BatchNorm1d>(4096);
//   gen.Emplace<layers::ReLU>();
//   gen.Emplace<layers::Reshape>(Shape{256, 4, 4});
//   gen.Emplace<layers::ConvTranspose2d>(256, 128, 5, 2, 2, /*output_padding=*/0, rng);
//   layers::InitDcgan(gen, rng);
//   absl::StatusOr<Var> y = gen.Forward(z);
#ifndef OTGEN_NN_LAYERS_H_
#define OTGEN_NN_LAYERS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "nn/conv_ops.h"
#include "nn/module.h"
#include "nn/random.h"
#include "nn/tensor.h"

// The layer classes live in a namespace of their own because their names (Linear, Conv2d,
// Tanh, ...) are also the names of the differentiable ops in otgen::nn (nn/ops.h).
namespace otgen::nn::layers {

// ---- Parametrized layers ----------------------------------------------------------------

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias = true);
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;
  std::string Describe() const override;
  void ResetParameters(Rng& rng) override;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }  // undefined without bias

  // Forward(x) without the shape check, followed by LeakyReLU(negative_slope) (ReLU for 0) in
  // one op (nn::LinearRelu): a Sequential runs Linear-ReLU pairs so. Needs the bias and
  // negative_slope >= 0.
  Var ForwardWithRelu(const Var& x, float negative_slope);

 protected:
  Var ForwardImpl(const Var& x) override;

 private:
  int64_t in_, out_;
  Var weight_, bias_;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding, Rng& rng,
         bool bias = true);
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;
  std::string Describe() const override;
  void ResetParameters(Rng& rng) override;

  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }

 protected:
  Var ForwardImpl(const Var& x) override;

 private:
  int64_t in_, out_, kernel_;
  Conv2dGeometry geometry_;
  Var weight_, bias_;
};

class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
                  int64_t output_padding, Rng& rng, bool bias = true);
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;
  std::string Describe() const override;
  void ResetParameters(Rng& rng) override;

  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }

  // Forward(x) without the shape check, also returning the output's batch statistics (see
  // nn::ConvTranspose2d with moments); Sequential uses it when a training-mode BatchNorm follows.
  Var ForwardWithMoments(const Var& x, ChannelMoments* moments);

 protected:
  Var ForwardImpl(const Var& x) override;

 private:
  int64_t in_, out_, kernel_;
  Conv2dGeometry geometry_;
  Var weight_, bias_;
};

struct BatchNormLayerOptions {
  float eps = 1e-5f;
  float momentum = 0.1f;  // running-statistics update weight, in [0, 1]
  bool affine = true;     // learnable gamma ("weight") and beta ("bias")
};

// Shared implementation of BatchNorm1d and BatchNorm2d.
class BatchNormBase : public Module {
 public:
  std::string Describe() const override;
  void ResetParameters(Rng& rng) override;
  // Resets running_mean to 0 and running_var to 1.
  void ResetRunningStats();

  int64_t num_features() const { return features_; }
  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }
  const Tensor& running_mean() const { return *running_mean_; }
  const Tensor& running_var() const { return *running_var_; }

  // Forward(x) without the shape check, fused with its neighbours in a Sequential:
  // `moments` (or null) are x's batch statistics, already computed by the layer before
  // (training mode only; BatchNormOptions::batch_moments); `relu` returns max(0, Forward(x)),
  // this layer followed by ReLU, with the max taken in the normalization's output pass when
  // no gradient is recorded (BatchNormOptions::relu).
  Var ForwardFused(const Var& x, const ChannelMoments* moments, bool relu) {
    return NormalizeInput(x, moments, relu);
  }

 protected:
  BatchNormBase(std::string type, int64_t num_features, const BatchNormLayerOptions& options);
  // Checks channels and, in training, that there is more than one value per channel.
  absl::Status CheckChannelsAndCount(const Shape& input, const std::string& expected) const;
  // BN(x), or max(0, BN(x)) when `relu`, on a checked input of the subclass's layout; see
  // ForwardFused for `moments`.
  virtual Var NormalizeInput(const Var& x, const ChannelMoments* moments, bool relu) = 0;
  Var Normalize(const Var& x, const ChannelMoments* moments, bool relu);
  Var ForwardImpl(const Var& x) override { return NormalizeInput(x, nullptr, /*relu=*/false); }

 private:
  int64_t features_;
  BatchNormLayerOptions options_;
  Var weight_, bias_;
  Tensor* running_mean_;
  Tensor* running_var_;
};

// Input [N, C] or [N, C, L].
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(int64_t num_features, const BatchNormLayerOptions& options = {});
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;

 protected:
  Var NormalizeInput(const Var& x, const ChannelMoments* moments, bool relu) override;
};

// Input [N, C, H, W].
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(int64_t num_features, const BatchNormLayerOptions& options = {});
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;

 protected:
  Var NormalizeInput(const Var& x, const ChannelMoments* moments, bool relu) override;
};

class LayerNorm : public Module {
 public:
  // Normalizes over the trailing dimensions equal to `normalized_shape` (non-empty).
  explicit LayerNorm(Shape normalized_shape, float eps = 1e-5f, bool affine = true);
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;
  std::string Describe() const override;
  void ResetParameters(Rng& rng) override;

  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }

 protected:
  Var ForwardImpl(const Var& x) override;

 private:
  Shape normalized_shape_;
  float eps_;
  Var weight_, bias_;
};

// ---- Parameter-free layers --------------------------------------------------------------

// Accepts any input of rank >= 1 and keeps its shape.
class ElementwiseModule : public Module {
 public:
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;

 protected:
  using Module::Module;
};

class ReLU : public ElementwiseModule {
 public:
  ReLU() : ElementwiseModule("ReLU") {}

 protected:
  Var ForwardImpl(const Var& x) override;
};

class LeakyReLU : public ElementwiseModule {
 public:
  explicit LeakyReLU(float negative_slope = 0.01f);
  std::string Describe() const override;
  float negative_slope() const { return slope_; }

 protected:
  Var ForwardImpl(const Var& x) override;

 private:
  float slope_;
};

class Tanh : public ElementwiseModule {
 public:
  Tanh() : ElementwiseModule("Tanh") {}

 protected:
  Var ForwardImpl(const Var& x) override;
};

class Sigmoid : public ElementwiseModule {
 public:
  Sigmoid() : ElementwiseModule("Sigmoid") {}

 protected:
  Var ForwardImpl(const Var& x) override;
};

// [N, 2C, ...] -> [N, C, ...]: first half * sigmoid(second half).
class GLU : public Module {
 public:
  GLU() : Module("GLU") {}
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;

 protected:
  Var ForwardImpl(const Var& x) override;
};

// [N, C, ...] -> [N, 2C, ...]: concat(relu(x), relu(-x)) along dim 1.
class CReLU : public Module {
 public:
  CReLU() : Module("CReLU") {}
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;

 protected:
  Var ForwardImpl(const Var& x) override;
};

class Upsample2x : public Module {
 public:
  Upsample2x() : Module("Upsample2x") {}
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;

 protected:
  Var ForwardImpl(const Var& x) override;
};

class Flatten : public Module {
 public:
  Flatten() : Module("Flatten") {}
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;

 protected:
  Var ForwardImpl(const Var& x) override;
};

// [N, ...] -> [N, shape...]; `shape` excludes the batch dimension, one entry may be -1.
class Reshape : public Module {
 public:
  explicit Reshape(Shape shape);
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;
  std::string Describe() const override;

 protected:
  Var ForwardImpl(const Var& x) override;

 private:
  Shape shape_;
};

// ---- Containers -----------------------------------------------------------------------

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}

  // Appends a module (named by its position) and returns it.
  Module* Add(std::unique_ptr<Module> module);
  template <typename T, typename... Args>
  T* Emplace(Args&&... args) {
    T* raw = new T(std::forward<Args>(args)...);
    Add(std::unique_ptr<Module>(raw));
    return raw;
  }

  int size() const { return static_cast<int>(children().size()); }
  Module& at(int index) { return *children()[index].second; }
  const Module& at(int index) const { return *children()[index].second; }

  // Chains the children's OutputShape; errors name the failing child, e.g.
  // "Sequential[3]: Linear(4096, 1, bias=true): expected input of shape [N, 4096], got [64, 2048]".
  absl::StatusOr<Shape> OutputShape(const Shape& input) const override;
  std::string Describe() const override;

 protected:
  Var ForwardImpl(const Var& x) override;
};

// ---- Builders and initializers -------------------------------------------------------

enum class ActivationKind { kNone, kRelu, kLeakyRelu, kTanh, kSigmoid };

// A new activation module (nullptr for kNone). `negative_slope` is used by kLeakyRelu.
std::unique_ptr<Module> MakeActivation(ActivationKind kind, float negative_slope = 0.2f);

// Linear(sizes[0], sizes[1]) - act - Linear(sizes[1], sizes[2]) - act - ... - Linear - output_act.
// InvalidArgumentError unless sizes has >= 2 entries, all positive.
absl::StatusOr<std::unique_ptr<Sequential>> Mlp(const std::vector<int64_t>& sizes, ActivationKind activation,
                                                 ActivationKind output_activation, Rng& rng,
                                                 float negative_slope = 0.2f);

struct DcganInitOptions {
  float stddev = 0.02f;
  // Also set the biases of conv / transposed-conv / linear layers to 0 (PyTorch's DCGAN
  // example leaves them at their default initialization).
  bool zero_bias = false;
};

// Re-draws every Conv2d, ConvTranspose2d and Linear weight of `module` (and descendants)
// from N(0, stddev^2), every batch-norm weight from N(1, stddev^2) and its bias to 0.
void InitDcgan(Module& module, Rng& rng, const DcganInitOptions& options = {});

// Re-draws every parameter of `module` with PyTorch's default initialization.
void InitDefault(Module& module, Rng& rng);

}  // namespace otgen::nn::layers

#endif  // OTGEN_NN_LAYERS_H_
