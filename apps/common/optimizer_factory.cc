#include "apps/common/optimizer_factory.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "optim/adam.h"
#include "optim/asgd.h"
#include "optim/sgd.h"

namespace otgen::apps {
namespace {

absl::Status Check(bool ok, const std::string& field, const char* name, const char* expected, double value) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, ".", name, ": expected ", expected, ", got ", value));
}

#define OTGEN_CHECK_FIELD(cond, name, expected, value) \
  do {                                                 \
    absl::Status s_ = Check((cond), field, name, expected, value); \
    if (!s_.ok()) return s_;                           \
  } while (0)

}  // namespace

absl::Status ValidateOptimizerConfig(const OptimizerConfig& c, const std::string& field) {
  switch (c.kind()) {
    case OptimizerConfig::ADAM:
      OTGEN_CHECK_FIELD(c.lr() > 0 && std::isfinite(c.lr()), "lr", "> 0", c.lr());
      OTGEN_CHECK_FIELD(c.beta1() >= 0 && c.beta1() < 1, "beta1", "a value in [0, 1)", c.beta1());
      OTGEN_CHECK_FIELD(c.beta2() >= 0 && c.beta2() < 1, "beta2", "a value in [0, 1)", c.beta2());
      OTGEN_CHECK_FIELD(c.eps() >= 0, "eps", ">= 0", c.eps());
      OTGEN_CHECK_FIELD(c.weight_decay() >= 0, "weight_decay", ">= 0", c.weight_decay());
      return absl::OkStatus();
    case OptimizerConfig::SGD:
      OTGEN_CHECK_FIELD(c.lr() > 0 && std::isfinite(c.lr()), "lr", "> 0", c.lr());
      OTGEN_CHECK_FIELD(c.momentum() >= 0, "momentum", ">= 0", c.momentum());
      OTGEN_CHECK_FIELD(c.weight_decay() >= 0, "weight_decay", ">= 0", c.weight_decay());
      return absl::OkStatus();
    case OptimizerConfig::ASGD:
      OTGEN_CHECK_FIELD(c.gamma() > 0 && std::isfinite(c.gamma()), "gamma", "> 0", c.gamma());
      OTGEN_CHECK_FIELD(c.alpha() > 0 && c.alpha() <= 1, "alpha", "a value in (0, 1]", c.alpha());
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ".kind: unknown optimizer ", static_cast<int>(c.kind())));
}

absl::StatusOr<std::unique_ptr<optim::Optimizer>> MakeOptimizer(const OptimizerConfig& c,
                                                                 std::vector<nn::Var> parameters,
                                                                 const std::string& field, bool maximize) {
  absl::Status valid = ValidateOptimizerConfig(c, field);
  if (!valid.ok()) return valid;
  absl::StatusOr<std::unique_ptr<optim::Optimizer>> made;
  switch (c.kind()) {
    case OptimizerConfig::ADAM: {
      optim::AdamOptions o{.lr = c.lr(), .beta1 = c.beta1(), .beta2 = c.beta2(), .eps = c.eps(),
                           .weight_decay = c.weight_decay(), .maximize = maximize};
      auto a = optim::Adam::Create(std::move(parameters), o);
      if (!a.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", a.status().message()));
      return std::unique_ptr<optim::Optimizer>(std::move(*a));
    }
    case OptimizerConfig::SGD: {
      optim::SgdOptions o{.lr = c.lr(), .momentum = c.momentum(), .weight_decay = c.weight_decay(), .maximize = maximize};
      auto s = optim::Sgd::Create(std::move(parameters), o);
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.status().message()));
      return std::unique_ptr<optim::Optimizer>(std::move(*s));
    }
    case OptimizerConfig::ASGD: {
      optim::AsgdOptions o{.gamma = c.gamma(), .alpha = c.alpha(), .maximize = maximize};
      auto s = optim::Asgd::Create(std::move(parameters), o);
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.status().message()));
      return std::unique_ptr<optim::Optimizer>(std::move(*s));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ".kind: unknown optimizer"));
}

}  // namespace otgen::apps
