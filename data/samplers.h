// Noise and source distributions of the seeds, as Samplers (data/sampler.h):
//   UniformSampler             Z ~ U[lo, hi)^d; SDOT (seed 000) draws Z uniform on
//                              [-1, 1]^100 in batches of 200.
//   NormalSampler              Z ~ N(mean, std^2 I); SWGAN (seed 001) and WGAN-GP use
//                              128-d standard normal noise, 2-d or 4-d for the toys.
//   MultivariateNormalSampler  N(mu, Sigma) fitted by maximum likelihood to a data set
//                              (W2GAN, seed 002, Section 6.2: "mvg_mnist", a Gaussian with
//                              the mean and covariance of MNIST as the source Pz).
//
// Maximum-likelihood fit of rows x_1..x_N in R^d:
//   mu = (1/N) sum_i x_i,   Sigma = (1/N) sum_i (x_i - mu)(x_i - mu)^T   (1/N, not 1/(N-1)).
// Sampling factors Sigma by the symmetric eigendecomposition Sigma = V diag(lambda) V^T
// (Eigen's SelfAdjointEigenSolver, in double), clamps negative eigenvalues (round-off of a
// singular Sigma) to 0, and draws x = mu + V diag(sqrt(lambda)) z with z ~ N(0, I). Unlike
// a Cholesky factor this tolerates a singular covariance such as MNIST's (its border pixels
// are constant, so Sigma has a null space); directions with lambda = 0 are dropped, so z
// has rank(Sigma) components and samples lie in mu + range(Sigma) exactly.
// Memory: mean and covariance in double (d and d^2), the factor in float (r x d,
// r = number of positive eigenvalues); fitting costs N d^2 / 2 double multiply-adds
// (MNIST: 18 GFLOP), a batch of n samples one n x r x d float GEMM.
//
//   OTGEN_ASSIGN_OR_RETURN(MultivariateNormalSampler mvg,
//                          MultivariateNormalSampler::Fit(mnist.examples()));
//   nn::Tensor z = mvg.Sample(64, rng);   // {64, 1, 28, 28}, like the fitted examples
#ifndef OTGEN_DATA_SAMPLERS_H_
#define OTGEN_DATA_SAMPLERS_H_

#include <cstdint>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/sampler.h"
#include "nn/random.h"
#include "nn/tensor.h"

namespace otgen::data {

// Independent uniform coordinates on [lo, hi) (Rng::Uniform's 24-bit grid).
class UniformSampler : public Sampler {
 public:
  // Requires lo < hi (checked) and a non-negative shape.
  explicit UniformSampler(nn::Shape sample_shape, float lo = -1.0f, float hi = 1.0f);

  const nn::Shape& sample_shape() const override { return shape_; }
  void SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const override;
  float lo() const { return lo_; }
  float hi() const { return hi_; }

 private:
  nn::Shape shape_;
  float lo_, hi_;
};

// Independent normal coordinates N(mean, stddev^2) (Rng::Normal, Box-Muller).
class NormalSampler : public Sampler {
 public:
  // Requires stddev >= 0 (checked).
  explicit NormalSampler(nn::Shape sample_shape, float mean = 0.0f, float stddev = 1.0f);

  const nn::Shape& sample_shape() const override { return shape_; }
  void SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const override;
  float mean() const { return mean_; }
  float stddev() const { return stddev_; }

 private:
  nn::Shape shape_;
  float mean_, stddev_;
};

struct MultivariateNormalOptions {
  // Added to the diagonal of the covariance before factoring (0: the exact ML fit). The
  // W2GAN authors' code used numpy's 1/(N-1) covariance plus 0.1 I; DATASETS.md asks for
  // the maximum-likelihood fit, which is the default here.
  double diagonal_loading = 0.0;
  // Eigenvalues at or below this, after clamping negatives to 0, count as 0 (dropped
  // from the factor). Relative to the largest eigenvalue.
  double relative_eigenvalue_floor = 0.0;

  absl::Status Validate() const;
};

class MultivariateNormalSampler : public Sampler {
 public:
  // Fits mu and Sigma by maximum likelihood to the N >= 1 rows of `examples`
  // ({N, sample shape...}; each example is flattened to d values). Samples have the
  // example shape. Two passes in double (mean, then Gram matrices of centred row
  // blocks). InvalidArgumentError for an undefined tensor, N = 0, or
  // non-finite values (naming the first one).
  static absl::StatusOr<MultivariateNormalSampler> Fit(const nn::Tensor& examples,
                                                       const MultivariateNormalOptions& options = {});

  // From a given mean (d) and symmetric covariance (d x d); samples have shape
  // `sample_shape` (d values; {d} when empty). InvalidArgumentError for mismatched sizes,
  // non-finite entries or an asymmetric covariance (relative tolerance 1e-6).
  static absl::StatusOr<MultivariateNormalSampler> FromMeanAndCovariance(const Eigen::VectorXd& mean,
                                                                         const Eigen::MatrixXd& covariance,
                                                                         nn::Shape sample_shape = {},
                                                                         const MultivariateNormalOptions& options = {});

  const nn::Shape& sample_shape() const override { return shape_; }
  // x = mu + z F with z {n, r} standard normal (drawn row by row from `rng`) and
  // F = diag(sqrt(lambda_+)) V_+^T (r x d).
  void SampleInto(int64_t n, nn::Rng& rng, nn::Tensor* out) const override;

  int64_t dim() const { return mean_.size(); }
  const Eigen::VectorXd& mean() const { return mean_; }
  // The covariance as fitted (or given), before diagonal loading.
  const Eigen::MatrixXd& covariance() const { return covariance_; }
  // Eigenvalues of the loaded covariance in increasing order, negatives clamped to 0.
  const Eigen::VectorXd& eigenvalues() const { return eigenvalues_; }
  // Number of positive eigenvalues kept in the factor (= dimension of z).
  int64_t rank() const { return factor_.rows(); }

 private:
  using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  MultivariateNormalSampler() = default;
  absl::Status Factor(const MultivariateNormalOptions& options);

  nn::Shape shape_;
  Eigen::VectorXd mean_;
  Eigen::MatrixXd covariance_;
  Eigen::VectorXd eigenvalues_;
  Eigen::VectorXf mean_f_;
  RowMatrixXf factor_;  // r x d
};

}  // namespace otgen::data

#endif  // OTGEN_DATA_SAMPLERS_H_
