#include "apps/common/network.h"

#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nn/status_macros.h"

namespace otgen::apps {
namespace {

using nn::Shape;
using nn::layers::Sequential;

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

int64_t Product(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

absl::Status AddActivation(Activation activation, float slope, Sequential* net) {
  switch (activation) {
    case NONE: return absl::OkStatus();
    case RELU: net->Emplace<nn::layers::ReLU>(); return absl::OkStatus();
    case LEAKY_RELU: net->Emplace<nn::layers::LeakyReLU>(slope); return absl::OkStatus();
    case TANH: net->Emplace<nn::layers::Tanh>(); return absl::OkStatus();
    case SIGMOID: net->Emplace<nn::layers::Sigmoid>(); return absl::OkStatus();
    case GLU: net->Emplace<nn::layers::GLU>(); return absl::OkStatus();
    case CRELU: net->Emplace<nn::layers::CReLU>(); return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown activation ", static_cast<int>(activation)));
}

// Appends the layer `layer` for inputs of per-example shape `shape`.
absl::Status AddLayer(const LayerConfig& layer, const Shape& shape, float slope, nn::Rng& rng,
                      const std::string& field, Sequential* net) {
  switch (layer.kind_case()) {
    case LayerConfig::kLinear: {
      if (shape.size() != 1) {
        return Invalid(field, absl::StrCat("a linear layer needs [features] inputs, got ", nn::ShapeToString(shape),
                                           " (add `flatten: true` first)"));
      }
      if (layer.linear().out_features() < 1) return Invalid(field + ".out_features", "expected >= 1");
      net->Emplace<nn::layers::Linear>(shape[0], layer.linear().out_features(), rng, layer.linear().bias());
      return absl::OkStatus();
    }
    case LayerConfig::kConv:
    case LayerConfig::kConvTranspose: {
      const bool transposed = layer.kind_case() == LayerConfig::kConvTranspose;
      const ConvLayer& c = transposed ? layer.conv_transpose() : layer.conv();
      const std::string f = field + (transposed ? ".conv_transpose" : ".conv");
      if (shape.size() != 3) {
        return Invalid(f, absl::StrCat("needs [channels, height, width] inputs, got ", nn::ShapeToString(shape),
                                       " (add a reshape first)"));
      }
      if (c.out_channels() < 1) return Invalid(f + ".out_channels", "expected >= 1");
      if (c.kernel() < 1) return Invalid(f + ".kernel", "expected >= 1");
      if (c.stride() < 1) return Invalid(f + ".stride", "expected >= 1");
      if (c.padding() < 0) return Invalid(f + ".padding", "expected >= 0");
      if (c.output_padding() < 0 || (!transposed && c.output_padding() != 0)) {
        return Invalid(f + ".output_padding", "expected >= 0, and 0 for a convolution");
      }
      if (transposed) {
        net->Emplace<nn::layers::ConvTranspose2d>(shape[0], c.out_channels(), c.kernel(), c.stride(), c.padding(),
                                                  c.output_padding(), rng, c.bias());
      } else {
        net->Emplace<nn::layers::Conv2d>(shape[0], c.out_channels(), c.kernel(), c.stride(), c.padding(), rng,
                                         c.bias());
      }
      return absl::OkStatus();
    }
    case LayerConfig::kBatchNorm: {
      const BatchNormLayer& b = layer.batch_norm();
      if (!(b.eps() > 0)) return Invalid(field + ".batch_norm.eps", "expected > 0");
      if (!(b.momentum() >= 0 && b.momentum() <= 1)) return Invalid(field + ".batch_norm.momentum", "expected in [0, 1]");
      nn::layers::BatchNormLayerOptions options{.eps = b.eps(), .momentum = b.momentum()};
      if (shape.size() == 1) {
        net->Emplace<nn::layers::BatchNorm1d>(shape[0], options);
      } else if (shape.size() == 3) {
        net->Emplace<nn::layers::BatchNorm2d>(shape[0], options);
      } else {
        return Invalid(field + ".batch_norm",
                       absl::StrCat("needs [features] or [channels, height, width] inputs, got ", nn::ShapeToString(shape)));
      }
      return absl::OkStatus();
    }
    case LayerConfig::kLayerNorm:
      if (!(layer.layer_norm().eps() > 0)) return Invalid(field + ".layer_norm.eps", "expected > 0");
      net->Emplace<nn::layers::LayerNorm>(shape, layer.layer_norm().eps());
      return absl::OkStatus();
    case LayerConfig::kActivation: return AddActivation(layer.activation(), slope, net);
    case LayerConfig::kReshape: {
      const Shape target(layer.reshape().shape().begin(), layer.reshape().shape().end());
      if (target.empty()) return Invalid(field + ".reshape.shape", "expected at least one dimension");
      for (int64_t d : target) {
        if (d < 1) return Invalid(field + ".reshape.shape", absl::StrCat("expected positive sizes, got ", nn::ShapeToString(target)));
      }
      if (Product(target) != Product(shape)) {
        return Invalid(field + ".reshape.shape", absl::StrCat(nn::ShapeToString(target), " does not hold the ",
                                                              Product(shape), " values of ", nn::ShapeToString(shape)));
      }
      net->Emplace<nn::layers::Reshape>(target);
      return absl::OkStatus();
    }
    case LayerConfig::kFlatten:
      net->Emplace<nn::layers::Flatten>();
      return absl::OkStatus();
    case LayerConfig::kUpsample2X:
      net->Emplace<nn::layers::Upsample2x>();
      return absl::OkStatus();
    case LayerConfig::KIND_NOT_SET: return Invalid(field, "a layer needs one of its kinds set");
  }
  return Invalid(field, "unknown layer kind");
}

// The per-example output shape of the last module of `net` given per-example `shape`.
absl::StatusOr<Shape> Propagate(const nn::Module& module, const Shape& shape, const std::string& field) {
  Shape batched = {2};
  batched.insert(batched.end(), shape.begin(), shape.end());
  absl::StatusOr<Shape> out = module.OutputShape(batched);
  if (!out.ok()) return Invalid(field, std::string(out.status().message()));
  return Shape(out->begin() + 1, out->end());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Sequential>> BuildNetwork(const NetworkConfig& config, const Shape& input,
                                                         const Shape& output, nn::Rng& rng,
                                                         const std::string& field) {
  if (input.empty() || Product(input) < 1) {
    return Invalid(field, absl::StrCat("invalid input shape ", nn::ShapeToString(input)));
  }
  if (config.layers_size() > 0 && config.has_mlp()) {
    return Invalid(field, "set either `layers` or `mlp`, not both");
  }
  if (config.layers_size() == 0 && !config.has_mlp()) return Invalid(field, "expected `layers` or `mlp`");
  if (!(config.leaky_relu_slope() >= 0)) return Invalid(field + ".leaky_relu_slope", "expected >= 0");
  const float slope = config.leaky_relu_slope();
  auto net = std::make_unique<Sequential>();
  Shape shape = input;
  auto add = [&](const LayerConfig& layer, const std::string& f) -> absl::Status {
    const int before = net->size();
    OTGEN_RETURN_IF_ERROR(AddLayer(layer, shape, slope, rng, f, net.get()));
    if (net->size() > before) {
      OTGEN_ASSIGN_OR_RETURN(shape, Propagate(net->at(net->size() - 1), shape, f));
    }
    return absl::OkStatus();
  };
  if (config.has_mlp()) {
    const MlpConfig& mlp = config.mlp();
    const std::string f = field + ".mlp";
    if (input.size() != 1) {
      LayerConfig flatten;
      flatten.set_flatten(true);
      OTGEN_RETURN_IF_ERROR(add(flatten, f));
    }
    if (mlp.batch_norm() && mlp.layer_norm()) return Invalid(f, "batch_norm and layer_norm are exclusive");
    for (int i = 0; i < mlp.hidden_size(); ++i) {
      const std::string fi = absl::StrCat(f, ".hidden[", i, "]");
      if (mlp.hidden(i) < 1) return Invalid(fi, absl::StrCat("expected >= 1, got ", mlp.hidden(i)));
      LayerConfig linear;
      linear.mutable_linear()->set_out_features(mlp.hidden(i));
      OTGEN_RETURN_IF_ERROR(add(linear, fi));
      if (mlp.batch_norm()) {
        LayerConfig bn;
        bn.mutable_batch_norm();
        OTGEN_RETURN_IF_ERROR(add(bn, fi));
      }
      if (mlp.layer_norm()) {
        LayerConfig ln;
        ln.mutable_layer_norm();
        OTGEN_RETURN_IF_ERROR(add(ln, fi));
      }
      LayerConfig act;
      act.set_activation(mlp.activation());
      OTGEN_RETURN_IF_ERROR(add(act, fi));
    }
    if (mlp.out_features() < 0) return Invalid(f + ".out_features", "expected >= 0");
    const int64_t out = mlp.out_features() > 0 ? mlp.out_features() : Product(output);
    if (out < 1) return Invalid(f + ".out_features", "expected >= 1 (no output shape to infer it from)");
    LayerConfig last;
    last.mutable_linear()->set_out_features(out);
    OTGEN_RETURN_IF_ERROR(add(last, f + ".out_features"));
    LayerConfig act;
    act.set_activation(mlp.output_activation());
    OTGEN_RETURN_IF_ERROR(add(act, f + ".output_activation"));
    if (output.size() > 1 && Product(output) == out) {
      LayerConfig reshape;
      for (int64_t d : output) reshape.mutable_reshape()->add_shape(d);
      OTGEN_RETURN_IF_ERROR(add(reshape, f));
    }
  } else {
    for (int i = 0; i < config.layers_size(); ++i) {
      OTGEN_RETURN_IF_ERROR(add(config.layers(i), absl::StrCat(field, ".layers[", i, "]")));
    }
  }
  if (!output.empty() && shape != output) {
    return Invalid(field, absl::StrCat("output shape ", nn::ShapeToString(shape), " does not match the expected ",
                                       nn::ShapeToString(output)));
  }
  if (config.init() == NetworkConfig::DCGAN) {
    nn::layers::InitDcgan(*net, rng, {.stddev = 0.02f, .zero_bias = true});
  }
  return net;
}

absl::Status ValidateNetwork(const NetworkConfig& config, const Shape& input, const Shape& output,
                             const std::string& field) {
  nn::Rng rng(0);
  return BuildNetwork(config, input, output, rng, field).status();
}

}  // namespace otgen::apps
