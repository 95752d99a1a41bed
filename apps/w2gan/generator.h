// The W2GAN generator parameterization (seed 002, A.10): a map R^d -> R^d that starts at (or
// near) the identity, so that training moves the source distribution along the W2 geodesic
// towards the target (Section 5, Propositions 1-4):
//
//   G(z) = s H(z) + skip(z),   skip(z) = z (IDENTITY) or clip(z, -1, 1) (CLIPPED)
//
// 2-D sets: s = 1, skip = z, H an MLP 2-128-128-128-128-2 with batch norm and ReLU;
// Gaussian -> MNIST: s = 2, skip = clip, H 784-1024-1024-784 with batch norm and tanh output;
// domain adaptation: s = 2, skip = z, H 256-200-500-256 with batch norm and tanh output.
// H's last Linear layer (weights and bias) is multiplied by `output_init_scale` after the
// usual initialization: 0 gives H(z) = 0 at step 0 when H's output activation maps 0 to 0
// (none, tanh), i.e. G = identity (or clip) exactly; the gradient w.r.t. that layer is
// non-zero, so training starts at once. The same module serves the WGAN-GP/LP baselines
// ("we similarly initialize their generators as identity functions") and Barycentric-OT's map.
//
// Layout: [B, d] rows in, [B, d] rows out. The module owns H as child "h" (checkpoint keys
// "h.<layer>.weight", ...).
//
//   OTGEN_ASSIGN_OR_RETURN(std::unique_ptr<ResidualGenerator> g,
//                          ResidualGenerator::Create(config.generator(), 2, rng, "generator"));
//   OTGEN_ASSIGN_OR_RETURN(nn::Var y, g->Forward(z));   // == z at initialization
#ifndef OTGEN_APPS_W2GAN_GENERATOR_H_
#define OTGEN_APPS_W2GAN_GENERATOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/w2gan/w2gan.pb.h"
#include "nn/autograd.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "nn/random.h"

namespace otgen::apps::w2gan {

// Checks `config` for data dimension `dim` (H must map [d] to [d]); errors name `field`.
absl::Status ValidateGeneratorConfig(const GeneratorConfig& config, int64_t dim, const std::string& field);

class ResidualGenerator : public nn::Module {
 public:
  static absl::StatusOr<std::unique_ptr<ResidualGenerator>> Create(const GeneratorConfig& config, int64_t dim,
                                                                   nn::Rng& rng, const std::string& field);

  absl::StatusOr<nn::Shape> OutputShape(const nn::Shape& input) const override;
  std::string Describe() const override;

  int64_t dim() const { return dim_; }
  float residual_scale() const { return scale_; }
  bool clipped_skip() const { return clipped_; }
  nn::layers::Sequential& h() { return *h_; }

 protected:
  nn::Var ForwardImpl(const nn::Var& z) override;

 private:
  ResidualGenerator(int64_t dim, float scale, bool clipped);

  int64_t dim_;
  float scale_;
  bool clipped_;
  nn::layers::Sequential* h_ = nullptr;
};

}  // namespace otgen::apps::w2gan

#endif  // OTGEN_APPS_W2GAN_GENERATOR_H_
