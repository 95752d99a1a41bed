// Builds an nn::layers::Sequential from a NetworkConfig (apps/common/network.proto), inferring
// each layer's input size from the running shape, and checks the output shape the app needs.
//
//   NetworkConfig config;  // from the app's text proto
//   OTGEN_ASSIGN_OR_RETURN(auto generator,
//                          BuildNetwork(config, {100}, {1, 28, 28}, rng, "generator"));
//
// Errors (InvalidArgumentError) name the config field, e.g. "generator.layers[3].conv:
// kernel must be >= 1" or "generator: output shape [1, 27, 27] does not match the expected
// [1, 28, 28]".
#ifndef OTGEN_APPS_COMMON_NETWORK_H_
#define OTGEN_APPS_COMMON_NETWORK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "apps/common/network.pb.h"
#include "nn/layers.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::apps {

// `input` and `output` are per-example shapes (no batch dimension). An MLP shorthand whose
// out_features is 0 ends with prod(output) features, reshaped to `output` when it has more than
// one dimension. An empty `output` skips the check. `field` names the config in errors.
absl::StatusOr<std::unique_ptr<nn::layers::Sequential>> BuildNetwork(const NetworkConfig& config,
                                                                     const nn::Shape& input,
                                                                     const nn::Shape& output, nn::Rng& rng,
                                                                     const std::string& field);

// Checks the config without building it (the same messages as BuildNetwork).
absl::Status ValidateNetwork(const NetworkConfig& config, const nn::Shape& input, const nn::Shape& output,
                             const std::string& field);

}  // namespace otgen::apps

#endif  // OTGEN_APPS_COMMON_NETWORK_H_
