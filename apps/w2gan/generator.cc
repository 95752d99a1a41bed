#include "apps/w2gan/generator.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "apps/common/network.h"
#include "nn/ops.h"
#include "nn/status_macros.h"

namespace otgen::apps::w2gan {

absl::Status ValidateGeneratorConfig(const GeneratorConfig& config, int64_t dim, const std::string& field) {
  if (!config.has_h()) return absl::InvalidArgumentError(absl::StrCat(field, ".h: required (the network H)"));
  OTGEN_RETURN_IF_ERROR(ValidateNetwork(config.h(), {dim}, {dim}, field + ".h"));
  if (!std::isfinite(config.residual_scale()) || config.residual_scale() <= 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".residual_scale: expected a finite value > 0, got ", config.residual_scale()));
  }
  if (!std::isfinite(config.output_init_scale()) || config.output_init_scale() < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".output_init_scale: expected a finite value >= 0, got ", config.output_init_scale()));
  }
  return absl::OkStatus();
}

ResidualGenerator::ResidualGenerator(int64_t dim, float scale, bool clipped)
    : Module("ResidualGenerator"), dim_(dim), scale_(scale), clipped_(clipped) {}

absl::StatusOr<std::unique_ptr<ResidualGenerator>> ResidualGenerator::Create(const GeneratorConfig& config,
                                                                             int64_t dim, nn::Rng& rng,
                                                                             const std::string& field) {
  OTGEN_RETURN_IF_ERROR(ValidateGeneratorConfig(config, dim, field));
  OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<nn::layers::Sequential> h, BuildNetwork(config.h(), {dim}, {dim}, rng, field + ".h"));
  // The last Linear layer of H, scaled by output_init_scale.
  nn::layers::Linear* last = nullptr;
  h->Apply([&last](nn::Module& m) {
    if (auto* linear = dynamic_cast<nn::layers::Linear*>(&m)) last = linear;
  });
  if (last == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".h: needs a linear layer (its last one starts at scale ",
                                                   config.output_init_scale(), ")"));
  }
  const float s = config.output_init_scale();
  for (nn::Var p : {last->weight(), last->bias()}) {
    if (!p.defined()) continue;
    for (float& v : p.mutable_value().mutable_span()) v *= s;
  }
  std::unique_ptr<ResidualGenerator> g(
      new ResidualGenerator(dim, config.residual_scale(), config.skip() == GeneratorConfig::CLIPPED));
  g->h_ = g->RegisterModule("h", std::move(h));
  return g;
}

absl::StatusOr<nn::Shape> ResidualGenerator::OutputShape(const nn::Shape& input) const {
  if (input.size() != 2 || input[1] != dim_) return ShapeError(absl::StrCat("[N, ", dim_, "]"), input);
  return h_->OutputShape(input);
}

std::string ResidualGenerator::Describe() const {
  return absl::StrCat("ResidualGenerator(G(z) = ", scale_, " H(z) + ", clipped_ ? "clip(z, -1, 1)" : "z", ", H = ",
                      h_->Describe(), ")");
}

nn::Var ResidualGenerator::ForwardImpl(const nn::Var& z) {
  const nn::Var hz = ForwardUnchecked(*h_, z);
  const nn::Var skip = clipped_ ? nn::Clamp(z, -1.0f, 1.0f) : z;
  return nn::Add(scale_ == 1.0f ? hz : nn::MulScalar(hz, scale_), skip);
}

}  // namespace otgen::apps::w2gan
