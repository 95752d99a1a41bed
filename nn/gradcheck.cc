#include "nn/gradcheck.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "nn/ops.h"
#include "nn/random.h"

namespace otgen::nn {
namespace {

double Dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  const float* pa = a.data();
  const float* pb = b.data();
  for (int64_t i = 0, n = a.numel(); i < n; ++i) s += static_cast<double>(pa[i]) * pb[i];
  return s;
}

std::vector<Var> MakeLeaves(const std::vector<Tensor>& values, const std::vector<bool>& diff) {
  std::vector<Var> vars;
  for (size_t i = 0; i < values.size(); ++i) vars.push_back(Var(values[i].Clone(), diff[i]));
  return vars;
}

// A scalar function of the inputs and its analytic gradient w.r.t. the differentiable ones.
using ScalarFunction = std::function<double(const std::vector<Tensor>&)>;
using GradientFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

absl::Status Compare(const char* what, const ScalarFunction& scalar, const GradientFunction& gradient,
                     const std::vector<Tensor>& inputs, const std::vector<bool>& diff,
                     const GradCheckOptions& options) {
  const std::vector<Tensor> analytic = gradient(inputs);
  std::vector<Tensor> x;
  for (const Tensor& t : inputs) x.push_back(t.Clone());
  for (size_t k = 0; k < x.size(); ++k) {
    if (!diff[k]) continue;
    for (int64_t i = 0; i < x[k].numel(); ++i) {
      const float original = x[k].data()[i];
      x[k].data()[i] = static_cast<float>(original + options.step);
      const double plus = scalar(x);
      x[k].data()[i] = static_cast<float>(original - options.step);
      const double minus = scalar(x);
      x[k].data()[i] = original;
      const double numeric = (plus - minus) / (2 * options.step);
      const double a = analytic[k].defined() ? analytic[k].data()[i] : 0.0;
      if (!std::isfinite(a) || std::abs(a - numeric) > options.atol + options.rtol * std::abs(numeric)) {
        return absl::InternalError(absl::StrCat(what, ": input ", k, " ", ShapeToString(x[k].shape()),
                                                " element ", i, ": analytic ", a, " vs numeric ", numeric));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<bool> DiffMask(size_t n, const GradCheckOptions& options) {
  std::vector<bool> diff(n, true);
  for (int k : options.skip_inputs) diff[k] = false;
  return diff;
}

}  // namespace

absl::Status GradCheck(const DifferentiableFunction& f, const std::vector<Tensor>& inputs,
                       const GradCheckOptions& options) {
  const std::vector<bool> diff = DiffMask(inputs.size(), options);
  Tensor u;
  {
    const std::vector<Var> probe = MakeLeaves(inputs, std::vector<bool>(inputs.size(), false));
    Rng rng(options.seed);
    u = Tensor::Normal(f(probe).shape(), 0.0f, 1.0f, rng);
  }
  // No NoGradGuard here: f may take gradients internally (gradient penalties); the leaves
  // do not require grad, so nothing else is recorded.
  ScalarFunction scalar = [&](const std::vector<Tensor>& x) {
    return Dot(f(MakeLeaves(x, std::vector<bool>(x.size(), false))).value(), u);
  };
  GradientFunction gradient = [&](const std::vector<Tensor>& x) {
    std::vector<Var> leaves = MakeLeaves(x, diff);
    Var y = f(leaves);
    std::vector<Var> wrt;
    for (size_t k = 0; k < leaves.size(); ++k) {
      if (diff[k]) wrt.push_back(leaves[k]);
    }
    std::vector<Tensor> result(x.size());
    if (!y.requires_grad()) return result;
    std::vector<Var> g = Grad({y}, wrt, {Var::Constant(u)}, {.allow_unused = true});
    for (size_t k = 0, j = 0; k < leaves.size(); ++k) {
      if (diff[k]) {
        if (g[j].defined()) result[k] = g[j].value();
        ++j;
      }
    }
    return result;
  };
  return Compare("GradCheck", scalar, gradient, inputs, diff, options);
}

absl::Status GradGradCheck(const DifferentiableFunction& f, const std::vector<Tensor>& inputs,
                           const GradCheckOptions& options) {
  const std::vector<bool> diff = DiffMask(inputs.size(), options);
  Rng rng(options.seed);
  Tensor u;
  std::vector<Tensor> v(inputs.size());
  {
    const std::vector<Var> probe = MakeLeaves(inputs, std::vector<bool>(inputs.size(), false));
    u = Tensor::Normal(f(probe).shape(), 0.0f, 1.0f, rng);
    for (size_t k = 0; k < inputs.size(); ++k) v[k] = Tensor::Normal(inputs[k].shape(), 0.0f, 1.0f, rng);
  }
  // S(x) = sum_k <v_k, dL/dx_k>, with the first-order gradients recorded.
  auto s_of = [&](const std::vector<Var>& leaves, bool create_graph) -> Var {
    Var y = f(leaves);
    std::vector<Var> wrt;
    std::vector<Tensor> vs;
    for (size_t k = 0; k < leaves.size(); ++k) {
      if (diff[k]) {
        wrt.push_back(leaves[k]);
        vs.push_back(v[k]);
      }
    }
    std::vector<Var> g = Grad({y}, wrt, {Var::Constant(u)}, {.create_graph = create_graph, .allow_unused = true});
    Var s;
    for (size_t j = 0; j < g.size(); ++j) {
      if (!g[j].defined()) continue;
      Var term = SumAll(Mul(g[j], Var::Constant(vs[j])));
      s = s.defined() ? Add(s, term) : term;
    }
    return s;
  };
  ScalarFunction scalar = [&](const std::vector<Tensor>& x) {
    Var s = s_of(MakeLeaves(x, diff), /*create_graph=*/false);
    return s.defined() ? static_cast<double>(s.item()) : 0.0;
  };
  GradientFunction gradient = [&](const std::vector<Tensor>& x) {
    std::vector<Var> leaves = MakeLeaves(x, diff);
    Var s = s_of(leaves, /*create_graph=*/true);
    std::vector<Tensor> result(x.size());
    if (!s.defined() || !s.requires_grad()) return result;
    std::vector<Var> wrt;
    for (size_t k = 0; k < leaves.size(); ++k) {
      if (diff[k]) wrt.push_back(leaves[k]);
    }
    std::vector<Var> g = Grad({s}, wrt, {}, {.allow_unused = true});
    for (size_t k = 0, j = 0; k < leaves.size(); ++k) {
      if (diff[k]) {
        if (g[j].defined()) result[k] = g[j].value();
        ++j;
      }
    }
    return result;
  };
  return Compare("GradGradCheck", scalar, gradient, inputs, diff, options);
}

}  // namespace otgen::nn
