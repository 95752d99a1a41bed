// An optim::Optimizer from an OptimizerConfig (apps/common/experiment.proto): Adam (lr, beta1,
// beta2, eps, weight_decay), SGD (lr, momentum, weight_decay) or ASGD (gamma, alpha; seed 000
// eq. 102), with PyTorch's semantics. Errors name the config field, e.g.
// "generator_optimizer.beta1: expected a value in [0, 1), got 1.5".
#ifndef OTGEN_APPS_COMMON_OPTIMIZER_FACTORY_H_
#define OTGEN_APPS_COMMON_OPTIMIZER_FACTORY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apps/common/experiment.pb.h"
#include "nn/autograd.h"
#include "optim/optimizer.h"

namespace otgen::apps {

// Checks the fields the chosen kind uses; `field` prefixes the messages.
absl::Status ValidateOptimizerConfig(const OptimizerConfig& config, const std::string& field);

// The optimizer over `parameters`; `maximize` makes it ascend (dual potentials).
absl::StatusOr<std::unique_ptr<optim::Optimizer>> MakeOptimizer(const OptimizerConfig& config,
                                                                 std::vector<nn::Var> parameters,
                                                                 const std::string& field, bool maximize = false);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_OPTIMIZER_FACTORY_H_
