#include "nn/layers.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nn/ops.h"
#include "nn/status_macros.h"

namespace otgen::nn::layers {
namespace {

// U(-bound, bound), PyTorch's kaiming_uniform(a = sqrt(5)) bound for bound = 1/sqrt(fan_in).
void DrawUniform(Var& v, double bound, Rng& rng) {
  v.mutable_value().CopyFrom(
      Tensor::Uniform(v.shape(), static_cast<float>(-bound), static_cast<float>(bound), rng));
}

void DrawNormal(Var& v, float mean, float stddev, Rng& rng) {
  v.mutable_value().CopyFrom(Tensor::Normal(v.shape(), mean, stddev, rng));
}

const char* BoolString(bool b) { return b ? "true" : "false"; }

std::string Pattern(std::initializer_list<std::string> dims) { return absl::StrCat("[", absl::StrJoin(dims, ", "), "]"); }

}  // namespace

// ---- Linear ---------------------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, Rng& rng, bool bias)
    : Module("Linear"), in_(in_features), out_(out_features) {
  OTGEN_CHECK(in_ > 0 && out_ > 0, absl::StrCat("Linear: expected positive sizes, got in_features ", in_,
                                                ", out_features ", out_));
  weight_ = RegisterParameter("weight", Tensor::Zeros({out_, in_}));
  if (bias) bias_ = RegisterParameter("bias", Tensor::Zeros({out_}));
  ResetParameters(rng);
}

void Linear::ResetParameters(Rng& rng) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
  DrawUniform(weight_, bound, rng);
  if (bias_.defined()) DrawUniform(bias_, bound, rng);
}

absl::StatusOr<Shape> Linear::OutputShape(const Shape& input) const {
  if (input.size() != 2 || input[1] != in_) return ShapeError(Pattern({"N", absl::StrCat(in_)}), input);
  return Shape{input[0], out_};
}

std::string Linear::Describe() const {
  return absl::StrCat("Linear(", in_, ", ", out_, ", bias=", BoolString(bias_.defined()), ")");
}

Var Linear::ForwardImpl(const Var& x) { return nn::Linear(x, weight_, bias_); }

Var Linear::ForwardWithRelu(const Var& x, float negative_slope) {
  return nn::LinearRelu(x, weight_, bias_, negative_slope);
}

// ---- Conv2d ---------------------------------------------------------------------------------

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding, Rng& rng,
               bool bias)
    : Module("Conv2d"),
      in_(in_channels),
      out_(out_channels),
      kernel_(kernel),
      geometry_{.stride = stride, .padding = padding, .output_padding = 0} {
  OTGEN_CHECK(in_ > 0 && out_ > 0 && kernel_ > 0 && stride > 0 && padding >= 0,
              absl::StrCat("Conv2d: invalid hyperparameters in_channels ", in_, ", out_channels ", out_, ", kernel ",
                           kernel_, ", stride ", stride, ", padding ", padding));
  weight_ = RegisterParameter("weight", Tensor::Zeros({out_, in_, kernel_, kernel_}));
  if (bias) bias_ = RegisterParameter("bias", Tensor::Zeros({out_}));
  ResetParameters(rng);
}

void Conv2d::ResetParameters(Rng& rng) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_ * kernel_ * kernel_));
  DrawUniform(weight_, bound, rng);
  if (bias_.defined()) DrawUniform(bias_, bound, rng);
}

absl::StatusOr<Shape> Conv2d::OutputShape(const Shape& input) const {
  if (input.size() != 4 || input[1] != in_) return ShapeError(Pattern({"N", absl::StrCat(in_), "H", "W"}), input);
  absl::StatusOr<Shape> out = Conv2dOutputShape(input, weight_.shape(), geometry_);
  if (!out.ok()) {
    return ShapeError(absl::StrCat(Pattern({"N", absl::StrCat(in_), "H", "W"}), " with H + 2*padding >= kernel and W + 2*padding >= kernel (",
                                   out.status().message(), ")"),
                      input);
  }
  return out;
}

std::string Conv2d::Describe() const {
  return absl::StrCat("Conv2d(", in_, ", ", out_, ", kernel=", kernel_, ", stride=", geometry_.stride,
                      ", padding=", geometry_.padding, ", bias=", BoolString(bias_.defined()), ")");
}

Var Conv2d::ForwardImpl(const Var& x) { return nn::Conv2d(x, weight_, bias_, geometry_); }

// ---- ConvTranspose2d -------------------------------------------------------------------------

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                                 int64_t padding, int64_t output_padding, Rng& rng, bool bias)
    : Module("ConvTranspose2d"),
      in_(in_channels),
      out_(out_channels),
      kernel_(kernel),
      geometry_{.stride = stride, .padding = padding, .output_padding = output_padding} {
  OTGEN_CHECK(in_ > 0 && out_ > 0 && kernel_ > 0 && stride > 0 && padding >= 0 && output_padding >= 0 &&
                  output_padding < stride,
              absl::StrCat("ConvTranspose2d: invalid hyperparameters in_channels ", in_, ", out_channels ", out_,
                           ", kernel ", kernel_, ", stride ", stride, ", padding ", padding, ", output_padding ",
                           output_padding, " (0 <= output_padding < stride)"));
  weight_ = RegisterParameter("weight", Tensor::Zeros({in_, out_, kernel_, kernel_}));
  if (bias) bias_ = RegisterParameter("bias", Tensor::Zeros({out_}));
  ResetParameters(rng);
}

void ConvTranspose2d::ResetParameters(Rng& rng) {
  // PyTorch's fan_in for a [in, out, k, k] weight is weight.size(1) * k * k.
  const double bound = 1.0 / std::sqrt(static_cast<double>(out_ * kernel_ * kernel_));
  DrawUniform(weight_, bound, rng);
  if (bias_.defined()) DrawUniform(bias_, bound, rng);
}

absl::StatusOr<Shape> ConvTranspose2d::OutputShape(const Shape& input) const {
  if (input.size() != 4 || input[1] != in_) return ShapeError(Pattern({"N", absl::StrCat(in_), "H", "W"}), input);
  absl::StatusOr<Shape> out = ConvTranspose2dOutputShape(input, weight_.shape(), geometry_);
  if (!out.ok()) {
    return ShapeError(absl::StrCat(Pattern({"N", absl::StrCat(in_), "H", "W"}), " with a positive output size (",
                                   out.status().message(), ")"),
                      input);
  }
  return out;
}

std::string ConvTranspose2d::Describe() const {
  return absl::StrCat("ConvTranspose2d(", in_, ", ", out_, ", kernel=", kernel_, ", stride=", geometry_.stride,
                      ", padding=", geometry_.padding, ", output_padding=", geometry_.output_padding,
                      ", bias=", BoolString(bias_.defined()), ")");
}

Var ConvTranspose2d::ForwardImpl(const Var& x) { return nn::ConvTranspose2d(x, weight_, bias_, geometry_); }

Var ConvTranspose2d::ForwardWithMoments(const Var& x, ChannelMoments* moments) {
  return nn::ConvTranspose2d(x, weight_, bias_, geometry_, moments);
}

// ---- Batch norm -------------------------------------------------------------------------------

BatchNormBase::BatchNormBase(std::string type, int64_t num_features, const BatchNormLayerOptions& options)
    : Module(std::move(type)), features_(num_features), options_(options) {
  OTGEN_CHECK(features_ > 0, absl::StrCat(this->type(), ": expected num_features > 0, got ", features_));
  OTGEN_CHECK(options_.eps > 0 && options_.momentum >= 0 && options_.momentum <= 1,
              absl::StrCat(this->type(), ": expected eps > 0 and momentum in [0, 1], got eps ", options_.eps,
                           ", momentum ", options_.momentum));
  if (options_.affine) {
    weight_ = RegisterParameter("weight", Tensor::Ones({features_}));
    bias_ = RegisterParameter("bias", Tensor::Zeros({features_}));
  }
  running_mean_ = &RegisterBuffer("running_mean", Tensor::Zeros({features_}));
  running_var_ = &RegisterBuffer("running_var", Tensor::Ones({features_}));
}

void BatchNormBase::ResetParameters(Rng& /*rng*/) {
  if (!options_.affine) return;
  weight_.mutable_value().Fill(1.0f);
  bias_.mutable_value().Fill(0.0f);
}

void BatchNormBase::ResetRunningStats() {
  running_mean_->Fill(0.0f);
  running_var_->Fill(1.0f);
}

std::string BatchNormBase::Describe() const {
  return absl::StrCat(type(), "(", features_, ", eps=", options_.eps, ", momentum=", options_.momentum,
                      ", affine=", BoolString(options_.affine), ")");
}

absl::Status BatchNormBase::CheckChannelsAndCount(const Shape& input, const std::string& expected) const {
  if (input[1] != features_) return ShapeError(expected, input);
  if (is_training() && NumElements(input) / features_ <= 1) {
    return ShapeError(absl::StrCat(expected, " with more than one value per channel in training mode"), input);
  }
  return absl::OkStatus();
}

Var BatchNormBase::Normalize(const Var& x, const ChannelMoments* moments, bool relu) {
  return nn::BatchNorm(x, weight_, bias_, running_mean_, running_var_,
                       {.training = is_training(),
                        .momentum = options_.momentum,
                        .eps = options_.eps,
                        .relu = relu,
                        .batch_moments = is_training() ? moments : nullptr});
}

BatchNorm1d::BatchNorm1d(int64_t num_features, const BatchNormLayerOptions& options)
    : BatchNormBase("BatchNorm1d", num_features, options) {}

absl::StatusOr<Shape> BatchNorm1d::OutputShape(const Shape& input) const {
  const std::string expected = absl::StrCat(Pattern({"N", absl::StrCat(num_features())}), " or ",
                                            Pattern({"N", absl::StrCat(num_features()), "L"}));
  if (input.size() != 2 && input.size() != 3) return ShapeError(expected, input);
  OTGEN_RETURN_IF_ERROR(CheckChannelsAndCount(input, expected));
  return input;
}

Var BatchNorm1d::NormalizeInput(const Var& x, const ChannelMoments* moments, bool relu) {
  if (x.rank() == 2) return Normalize(x, moments, relu);
  // [N, C, L] as [N, C, L, 1]: the same per-channel statistics over N and L.
  return nn::Reshape(Normalize(nn::Reshape(x, {x.dim(0), x.dim(1), x.dim(2), 1}), moments, relu), x.shape());
}

BatchNorm2d::BatchNorm2d(int64_t num_features, const BatchNormLayerOptions& options)
    : BatchNormBase("BatchNorm2d", num_features, options) {}

absl::StatusOr<Shape> BatchNorm2d::OutputShape(const Shape& input) const {
  const std::string expected = Pattern({"N", absl::StrCat(num_features()), "H", "W"});
  if (input.size() != 4) return ShapeError(expected, input);
  OTGEN_RETURN_IF_ERROR(CheckChannelsAndCount(input, expected));
  return input;
}

Var BatchNorm2d::NormalizeInput(const Var& x, const ChannelMoments* moments, bool relu) {
  return Normalize(x, moments, relu);
}

// ---- LayerNorm ---------------------------------------------------------------------------------

LayerNorm::LayerNorm(Shape normalized_shape, float eps, bool affine)
    : Module("LayerNorm"), normalized_shape_(std::move(normalized_shape)), eps_(eps) {
  OTGEN_CHECK(!normalized_shape_.empty() && NumElements(normalized_shape_) > 0 && eps_ > 0,
              absl::StrCat("LayerNorm: expected a non-empty normalized_shape of positive dimensions and eps > 0, got ",
                           ShapeToString(normalized_shape_), ", eps ", eps_));
  if (affine) {
    weight_ = RegisterParameter("weight", Tensor::Ones(normalized_shape_));
    bias_ = RegisterParameter("bias", Tensor::Zeros(normalized_shape_));
  }
}

void LayerNorm::ResetParameters(Rng& /*rng*/) {
  if (!weight_.defined()) return;
  weight_.mutable_value().Fill(1.0f);
  bias_.mutable_value().Fill(0.0f);
}

absl::StatusOr<Shape> LayerNorm::OutputShape(const Shape& input) const {
  const size_t k = normalized_shape_.size();
  if (input.size() <= k || !std::equal(normalized_shape_.begin(), normalized_shape_.end(), input.end() - k)) {
    const std::string dims = ShapeToString(normalized_shape_);
    return ShapeError(absl::StrCat("[N, ..., ", dims.substr(1)), input);
  }
  return input;
}

std::string LayerNorm::Describe() const {
  return absl::StrCat("LayerNorm(", ShapeToString(normalized_shape_), ", eps=", eps_,
                      ", affine=", BoolString(weight_.defined()), ")");
}

Var LayerNorm::ForwardImpl(const Var& x) {
  return nn::LayerNorm(x, weight_, bias_, static_cast<int>(normalized_shape_.size()), eps_);
}

// ---- Parameter-free layers ------------------------------------------------------------------------

absl::StatusOr<Shape> ElementwiseModule::OutputShape(const Shape& input) const { return input; }

Var ReLU::ForwardImpl(const Var& x) { return nn::Relu(x); }

LeakyReLU::LeakyReLU(float negative_slope) : ElementwiseModule("LeakyReLU"), slope_(negative_slope) {
  OTGEN_CHECK(std::isfinite(slope_), "LeakyReLU: negative_slope must be finite");
}
std::string LeakyReLU::Describe() const { return absl::StrCat("LeakyReLU(", slope_, ")"); }
Var LeakyReLU::ForwardImpl(const Var& x) { return nn::LeakyRelu(x, slope_); }

Var Tanh::ForwardImpl(const Var& x) { return nn::Tanh(x); }

Var Sigmoid::ForwardImpl(const Var& x) { return nn::Sigmoid(x); }

absl::StatusOr<Shape> GLU::OutputShape(const Shape& input) const {
  if (input.size() < 2 || input[1] % 2 != 0) return ShapeError("[N, 2C, ...] (even dimension 1)", input);
  Shape out = input;
  out[1] /= 2;
  return out;
}

Var GLU::ForwardImpl(const Var& x) {
  const int64_t c = x.dim(1) / 2;
  return nn::Mul(nn::Slice(x, 1, 0, c), nn::Sigmoid(nn::Slice(x, 1, c, 2 * c)));
}

absl::StatusOr<Shape> CReLU::OutputShape(const Shape& input) const {
  if (input.size() < 2) return ShapeError("[N, C, ...]", input);
  Shape out = input;
  out[1] *= 2;
  return out;
}

Var CReLU::ForwardImpl(const Var& x) { return nn::Concat({nn::Relu(x), nn::Relu(nn::Neg(x))}, 1); }

absl::StatusOr<Shape> Upsample2x::OutputShape(const Shape& input) const {
  if (input.size() != 4) return ShapeError("[N, C, H, W]", input);
  return Shape{input[0], input[1], 2 * input[2], 2 * input[3]};
}

Var Upsample2x::ForwardImpl(const Var& x) { return nn::Upsample2x(x); }

absl::StatusOr<Shape> Flatten::OutputShape(const Shape& input) const {
  if (input.empty()) return ShapeError("[N, ...]", input);
  return Shape{input[0], NumElements(Shape(input.begin() + 1, input.end()))};
}

Var Flatten::ForwardImpl(const Var& x) {
  return nn::Reshape(x, {x.dim(0), NumElements(Shape(x.shape().begin() + 1, x.shape().end()))});
}

Reshape::Reshape(Shape shape) : Module("Reshape"), shape_(std::move(shape)) {
  int inferred = 0;
  for (int64_t d : shape_) {
    OTGEN_CHECK(d >= 0 || d == -1, absl::StrCat("Reshape: invalid target shape ", ShapeToString(shape_)));
    inferred += d == -1;
  }
  OTGEN_CHECK(inferred <= 1, absl::StrCat("Reshape: more than one -1 in ", ShapeToString(shape_)));
}

absl::StatusOr<Shape> Reshape::OutputShape(const Shape& input) const {
  const std::string expected = absl::StrCat("[N, ...] with ", ShapeToString(shape_), " elements per sample");
  if (input.empty()) return ShapeError(expected, input);
  const int64_t per_sample = NumElements(Shape(input.begin() + 1, input.end()));
  Shape out = {input[0]};
  int64_t known = 1;
  int inferred = -1;
  for (size_t i = 0; i < shape_.size(); ++i) {
    if (shape_[i] == -1) {
      inferred = static_cast<int>(i) + 1;
      out.push_back(0);
    } else {
      known *= shape_[i];
      out.push_back(shape_[i]);
    }
  }
  if (inferred >= 0) {
    if (known == 0 || per_sample % known != 0) return ShapeError(expected, input);
    out[inferred] = per_sample / known;
  } else if (known != per_sample) {
    return ShapeError(expected, input);
  }
  return out;
}

std::string Reshape::Describe() const { return absl::StrCat("Reshape(", ShapeToString(shape_), ")"); }

Var Reshape::ForwardImpl(const Var& x) { return nn::Reshape(x, OutputShape(x.shape()).value()); }

// ---- Sequential ---------------------------------------------------------------------------------

Module* Sequential::Add(std::unique_ptr<Module> module) {
  return RegisterModule(absl::StrCat(size()), std::move(module));
}

absl::StatusOr<Shape> Sequential::OutputShape(const Shape& input) const {
  Shape shape = input;
  for (int i = 0; i < size(); ++i) {
    absl::StatusOr<Shape> next = at(i).OutputShape(shape);
    if (!next.ok()) {
      return absl::Status(next.status().code(), absl::StrCat("Sequential[", i, "]: ", next.status().message()));
    }
    shape = *std::move(next);
  }
  return shape;
}

std::string Sequential::Describe() const {
  std::vector<std::string> parts;
  for (int i = 0; i < size(); ++i) parts.push_back(at(i).Describe());
  return absl::StrCat("Sequential(", absl::StrJoin(parts, ", "), ")");
}

Var Sequential::ForwardImpl(const Var& x) {
  Var h = x;
  // Fusions with the same results as the layers one by one (same graph with gradients):
  // ConvTranspose2d then a training-mode BatchNorm gets the batch statistics from the
  // convolution's output pass; BatchNorm then ReLU is one pass over the activations when no
  // gradient is recorded; Linear (with bias) then ReLU or LeakyReLU (slope >= 0) is one op,
  // the activation applied by the product (nn::LinearRelu).
  auto next = [this](int i) -> Module* { return i + 1 < size() ? &at(i + 1) : nullptr; };
  // The negative slope of a ReLU-family module LinearRelu can take, if `m` is one.
  auto relu_slope = [](const Module* m) -> std::optional<float> {
    if (dynamic_cast<const ReLU*>(m) != nullptr) return 0.0f;
    const auto* leaky = dynamic_cast<const LeakyReLU*>(m);
    if (leaky != nullptr && leaky->negative_slope() >= 0.0f) return leaky->negative_slope();
    return std::nullopt;
  };
  for (int i = 0; i < size(); ++i) {
    if (auto* linear = dynamic_cast<Linear*>(&at(i)); linear != nullptr && linear->bias().defined()) {
      if (const std::optional<float> slope = relu_slope(next(i)); slope.has_value()) {
        h = linear->ForwardWithRelu(h, *slope);
        ++i;
        continue;
      }
    }
    ChannelMoments moments;
    const ChannelMoments* norm_moments = nullptr;
    auto* deconv = dynamic_cast<ConvTranspose2d*>(&at(i));
    if (deconv != nullptr && dynamic_cast<BatchNormBase*>(next(i)) != nullptr && next(i)->is_training()) {
      h = deconv->ForwardWithMoments(h, &moments);
      norm_moments = &moments;
      ++i;
    }
    if (auto* norm = dynamic_cast<BatchNormBase*>(&at(i)); norm != nullptr) {
      const bool relu = dynamic_cast<ReLU*>(next(i)) != nullptr;
      h = norm->ForwardFused(h, norm_moments, relu);
      if (relu) ++i;
      continue;
    }
    h = ForwardUnchecked(at(i), h);
  }
  return h;
}

// ---- Builders and initializers -------------------------------------------------------------------

std::unique_ptr<Module> MakeActivation(ActivationKind kind, float negative_slope) {
  switch (kind) {
    case ActivationKind::kNone:
      return nullptr;
    case ActivationKind::kRelu:
      return std::make_unique<ReLU>();
    case ActivationKind::kLeakyRelu:
      return std::make_unique<LeakyReLU>(negative_slope);
    case ActivationKind::kTanh:
      return std::make_unique<Tanh>();
    case ActivationKind::kSigmoid:
      return std::make_unique<Sigmoid>();
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<Sequential>> Mlp(const std::vector<int64_t>& sizes, ActivationKind activation,
                                                 ActivationKind output_activation, Rng& rng, float negative_slope) {
  if (sizes.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("Mlp: sizes: expected at least 2 entries (input, output), got ", sizes.size()));
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("Mlp: sizes[", i, "]: expected a positive size, got ", sizes[i],
                                                     " in [", absl::StrJoin(sizes, ", "), "]"));
    }
  }
  if (!std::isfinite(negative_slope)) return absl::InvalidArgumentError("Mlp: negative_slope must be finite");
  auto net = std::make_unique<Sequential>();
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    net->Emplace<Linear>(sizes[i], sizes[i + 1], rng);
    const bool last = i + 2 == sizes.size();
    std::unique_ptr<Module> act = MakeActivation(last ? output_activation : activation, negative_slope);
    if (act != nullptr) net->Add(std::move(act));
  }
  return net;
}

void InitDcgan(Module& module, Rng& rng, const DcganInitOptions& options) {
  module.Apply([&](Module& m) {
    Var weight, bias;
    if (auto* l = dynamic_cast<Linear*>(&m)) {
      weight = l->weight();
      bias = l->bias();
    } else if (auto* c = dynamic_cast<Conv2d*>(&m)) {
      weight = c->weight();
      bias = c->bias();
    } else if (auto* t = dynamic_cast<ConvTranspose2d*>(&m)) {
      weight = t->weight();
      bias = t->bias();
    } else if (auto* b = dynamic_cast<BatchNormBase*>(&m)) {
      if (!b->weight().defined()) return;
      Var gamma = b->weight();
      DrawNormal(gamma, 1.0f, options.stddev, rng);
      Var beta = b->bias();
      beta.mutable_value().Fill(0.0f);
      return;
    } else {
      return;
    }
    DrawNormal(weight, 0.0f, options.stddev, rng);
    if (options.zero_bias && bias.defined()) bias.mutable_value().Fill(0.0f);
  });
}

void InitDefault(Module& module, Rng& rng) {
  module.Apply([&](Module& m) { m.ResetParameters(rng); });
}

}  // namespace otgen::nn::layers
