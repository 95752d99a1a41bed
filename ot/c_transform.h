// Streamed (regularized) c-transforms against a discrete target measure: the hot path of
// semi-discrete OT generative models (SDOT, seed 000).
//
// For source points x_i (a batch of b points in R^d), targets y_j with weights nu_j
// (ot/target_set.h, J points, sum_j nu_j = 1) and a dual vector psi in R^J:
//
//   lambda = 0 (seed 000 eqs. 5, 11-12, 40):
//     psi^c(x)         = min_{j : nu_j > 0} c(x, y_j) - psi_j,
//     T_psi(x)         = the argmin j (the Laguerre cell of x; the Monge map of eq. 40),
//     grad_x psi^c(x)  = grad_x c(x, y_{T_psi(x)})                     (eq. 43)
//     pi_j(x)          = 1 if j = T_psi(x) else 0.
//   lambda > 0 (eqs. 11-12, 55-56):
//     psi^{c,lambda}(x) = -lambda log sum_j nu_j exp((psi_j - c(x, y_j)) / lambda),
//     pi_j(x)           = nu_j exp((psi^{c,lambda}(x) + psi_j - c(x, y_j)) / lambda)  (sums to 1),
//     grad_x psi^{c,lambda}(x) = sum_j pi_j(x) grad_x c(x, y_j).
//   Supergradient of the batch semi-dual H(psi) = (1/b) sum_i psi^{c,lambda}(x_i) + sum_j nu_j psi_j
//   (eq. 99 with mu_theta replaced by the batch; eq. 101):
//     grad_psi_j = nu_j - (1/b) sum_i pi_j(x_i).
//   Ties of the hard minimum go to the smallest target index. Targets of weight 0 are not in
//   the support of nu and are ignored (never an argmin, pi = 0, grad_psi = 0).
//
// Algorithm. The targets are streamed in tiles of `tile_size` targets; each thread takes whole
// tiles (a shard-local partial over its tiles). For the squared Euclidean cost in dimension
// d > kCostDirectMaxDim (16) one sgemm per tile gives -2/s <x_i, y_j> from the transposed targets
// (d x J), and a fused epilogue forms u_ij = c(x_i, y_j) - psi_j - lambda log nu_j (up to the
// per-row constant ||x_i||^2 / s) while the tile is in cache, folding it into per-row partials:
// (min, argmin) for lambda = 0, the online soft-min (min, sum exp) for lambda > 0. Partials are
// combined across threads and then across shards (TargetSet::AllReduce*), so a sharded target
// set fits behind the same loop. Other costs (L^p, L1, cosine, and the squared Euclidean cost in
// d <= 16, where the difference form avoids cancellation) evaluate the tile with
// ot/cost.h's EvaluateCostTile instead of the fused GEMM. Memory beyond the data is
// O(threads * rows * tile_size) plus O(J) vectors, never O(b J).
//
// For lambda > 0 the weights pi and grad_x need a second look at every significant pair. The
// pass above also keeps, per row and thread, the candidates (j, u_ij) with
// u_ij <= (running min) + prune_threshold * lambda (filtering stale ones when the list fills
// up). A dropped pair has pi_ij < exp(-prune_threshold) times the largest weight of its row, so
// with the default threshold 40 all dropped pairs together change the result by a relative
// amount < J e^-40 (< 1e-11 for J = 10^6), far below float rounding. Sparse path: for the fused
// cost, sum_j exp((m_i - u_ij) / lambda) y_j over the accepted pairs is accumulated during the
// pass in the frame of the thread's running minimum m_i (rescaled exactly whenever m_i drops),
// which gives grad_x without a second look at the targets; after the pass the candidate lists
// give the exact weights for grad_psi (general costs also take grad_x from the lists). A row
// whose candidate list overflows `max_candidates_per_row` (large lambda, or many nearly
// equidistant targets) takes the exact dense path instead: a second streamed pass recomputes
// its tiles, forms the weights, and accumulates grad_x with a second sgemm per tile
// (P_tile @ Y_tile). Before the pass (J >= 2048) a probe GEMM against a fixed strided sample of
// 512 targets bounds each row's minimum from above, which seeds the running minima (fewer stale
// candidates) and sends rows whose extrapolated candidate count exceeds the lists' capacity
// straight to the dense path. The value psi^{c,lambda}(x) itself is always exact (no pruning in
// the sum).
//
// Hard c-transforms of large batches (lambda = 0, fused cost) screen the targets with bf16
// matmuls first (CTransformOptions::large_batch_screening): the argmin of each row is then
// found among the few targets that the error bound cannot exclude, with exact float dot
// products. For MNIST (b = 200, J = 60000, d = 784) about two targets per row survive. A row
// left with more than 1024 candidates is computed exactly against every target (all such rows
// of a block in one streamed pass); when the exact products would exceed 1/8 of the block's
// pairs, the block takes the float streamed path instead (the screening stops as soon as more
// than 1/8 of the rows have overflowed).
// Regularized ones (lambda > 0) screen the same way and keep every pair that the bound cannot
// place beyond prune_threshold * lambda above the row's minimum (MNIST test images against the
// training set at lambda = 0.01: about 1700 of 60000 per row); the kept pairs, grouped by
// target, get exact float dot products, and values, weights and grad_x come from them alone,
// as in the sparse path (dropped pairs weigh less than e^-prune_threshold each). When the probe
// (below) predicts a row with more than 8192 pairs, or a row keeps more than 16384, or all rows
// together more than 1/8 of all pairs (sources far from every target, e.g. an untrained
// generator's samples), the block takes the float streamed path.
// All these choices (and the small-batch screening's below) depend on the call's inputs alone,
// never on earlier calls, so a run resumed from a checkpoint takes the same paths as an
// uninterrupted one.
//
// Small batches (b <= 8, the single-sample stochastic solvers) take a third, dense path that
// splits the targets statically across threads and computes dot products directly from the
// row-major targets (no tiling overhead). For the fused cost it first screens the targets with
// bf16 dot products from a half-size copy (which fits the L2 caches for J d <~ 10^6) and
// computes exact float dot products only for the targets that can matter (see
// CTransformOptions::small_batch_screening); bf16 never enters the returned values.
//
// Precision: float32 data and GEMMs, per-row sums of exponentials in double across tiles. With
// the GEMM form, c(x, y) carries an absolute rounding error of about 1e-7 (||x||^2 + ||y||^2) / s.
// Screened rows take their values from float dot products of the surviving targets (a
// different summation order than the GEMM's, the same error bound); bf16 only decides which
// targets survive, and the bound it uses is rigorous, so the argmin is the float path's up to
// near-ties within float rounding.
//
// Threads: OpenMP (the thread count of nn::SetNumThreads / OMP_NUM_THREADS). Results are
// deterministic for a fixed thread count up to summation order in the soft sums.
//
// Memory layout: x is b x d row-major (any outer stride); psi and grad_psi are indexed like the
// local shard of the targets (J entries for an InMemoryTargetSet); grad_x is b x d row-major.
// The CTransform owns a workspace (tiles, candidate lists, accumulators) that is reused across
// calls; pass the same CTransformResult to Compute() to reuse its buffers as well. A
// CTransform is therefore not thread-safe: one Compute() at a time (it parallelizes inside).
//
// Usage (SDOT: c(x, y) = ||x - y||^2 / alpha with alpha = mean_j ||y_j||^2):
//   OTGEN_ASSIGN_OR_RETURN(auto targets, otgen::ot::InMemoryTargetSet::CreateUniform(y));
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::Cost cost, otgen::ot::NormalizedSquaredEuclideanCost(y));
//   OTGEN_ASSIGN_OR_RETURN(otgen::ot::CTransform ct,
//                          otgen::ot::CTransform::Create(targets, cost, {.lambda = 0.01f}));
//   otgen::ot::CTransformResult r;
//   OTGEN_RETURN_IF_ERROR(ct.Compute(x_batch, psi, {}, &r));   // values, grad_x, grad_psi
//   // Differentiable form (generator loss, or psi produced by a network):
//   OTGEN_ASSIGN_OR_RETURN(nn::Var v, otgen::ot::CTransformValues(ct, x_var, psi_var));
//   nn::Var loss = nn::MeanAll(v);
#ifndef OTGEN_OT_C_TRANSFORM_H_
#define OTGEN_OT_C_TRANSFORM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/autograd.h"
#include "ot/cost.h"
#include "ot/target_set.h"
#include "ot/types.h"

namespace otgen::ot {

struct CTransformOptions {
  // Entropic regularization lambda >= 0 (0: the hard c-transform).
  float lambda = 0.0f;
  // lambda > 0: pairs with u_ij - min_j u_ij > prune_threshold * lambda are dropped from the
  // weights and grad_x (each is < e^-threshold times the row's largest term). Finite, >= 10.
  float prune_threshold = 40.0f;
  // lambda > 0: capacity of each row's candidate list per thread; a row that needs more takes
  // the dense second pass. 0 sends every row to the dense pass. Memory: rows * threads *
  // capacity * 8 bytes (26 MB for 200 rows, 2 threads, the default).
  int max_candidates_per_row = 8192;
  // Targets per streamed tile (>= 16; a multiple of 16 is best).
  int tile_size = 512;
  // Source rows per block: larger batches are processed in blocks of this many rows (>= 1).
  int row_block = 256;
  // Batches with at most this many rows use the small-batch dense path (0 disables it).
  int small_batch_rows = 8;
  // Small batches, squared Euclidean cost in d > 16, at most 2^25 target coordinates: screen
  // the targets with bf16 dot products and compute exact float dot products only for the
  // targets within prune_threshold * lambda (plus a rigorous bound of the bf16 error) of the
  // screened minimum. The result equals the float path's up to the pruning of terms below
  // e^-prune_threshold of the largest (as in the sparse path). Costs a bf16 copy of the
  // targets (2 J d bytes). Each call decides for itself, for each thread's share of the
  // targets, from a sample of every 32nd target screened first: when more than 7/8 of the
  // sampled pairs would need the exact product (lambda large against the spread of the costs),
  // that share takes the float path. Nothing carries over to later calls.
  bool small_batch_screening = true;
  // lambda >= 0, squared Euclidean cost in d > 16, batches larger than small_batch_rows, at most
  // 2^26 target coordinates (a 128 MiB bf16 copy), a CPU with bf16 dot products (oneDNN's bf16
  // matmul, e.g. AVX512_BF16): screen the targets with one bf16 matmul per chunk of 4096
  // targets at twice the float GEMM rate, keep the targets whose screened value minus the
  // rigorous bound of the bf16 error is below the smallest screened upper bound, and pick the
  // argmin among them with exact float dot products. Same values and assignments as the float
  // path up to the float rounding of the dot products (ties aside). A row that keeps more than
  // 1024 candidates is computed exactly against all targets; a block whose exact products
  // would exceed 1/8 of its pairs takes the float path (screening stops as soon as more than
  // 1/8 of its rows have overflowed). lambda > 0: the same screening keeps the targets within
  // prune_threshold * lambda (plus the bound) of the screened minimum and forms values and
  // gradients from their exact float values (see the file comment); a block it cannot prune
  // takes the float path. Both choices are made for each call from its inputs alone. Costs a
  // bf16 copy of the targets (2 J d bytes, shared with small_batch_screening).
  bool large_batch_screening = true;

  absl::Status Validate() const;
};

// What Compute() produces besides the values.
struct CTransformRequest {
  bool grad_x = true;    // b x d gradient in the source points (eqs. 43, 55-56)
  bool grad_psi = true;  // supergradient of the batch semi-dual in psi (eq. 101)
};

struct CTransformResult {
  // psi^{c,lambda}(x_i), b entries.
  Eigen::VectorXf values;
  // lambda = 0: the global index of the argmin target of each x_i (T_psi(x_i)); empty for
  // lambda > 0.
  std::vector<int64_t> assignment;
  // b x d: grad_x psi^{c,lambda}(x_i) (0 x 0 when not requested).
  RowMatrixXf grad_x;
  // Local shard: nu_j - (1/b) sum_i pi_j(x_i) (empty when not requested).
  Eigen::VectorXf grad_psi;
  // (1/b) sum_i values_i.
  double mean_value = 0.0;
  // The batch estimate of the semi-dual H(psi) = mean_value + sum_j nu_j psi_j (eq. 99).
  double semi_dual = 0.0;
  // lambda > 0 with gradients: rows computed by the dense second pass, and the number of
  // (row, target) pairs that carried the sparse path. With bf16 screening (small batches, or
  // lambda = 0 large batches): the pairs whose exact float dot product was computed.
  int64_t dense_rows = 0;
  int64_t candidate_pairs = 0;
  // lambda = 0, large batches: rows whose argmin came from bf16 screening (see
  // CTransformOptions::large_batch_screening).
  int64_t screened_rows = 0;

  // One line, e.g. "c-transform: b=200 mean=0.4213 H=0.4301 dense_rows=0 pairs=34512".
  std::string Summary() const;
};

namespace internal {
class CTransformImpl;
}  // namespace internal

class CTransform {
 public:
  // InvalidArgumentError for invalid options, a null target set, or an invalid cost
  // (Cost::Validate). The target set is shared, not copied.
  static absl::StatusOr<CTransform> Create(std::shared_ptr<const TargetSet> targets, const Cost& cost,
                                           const CTransformOptions& options = {});

  CTransform(CTransform&&) noexcept;
  CTransform& operator=(CTransform&&) noexcept;
  ~CTransform();

  const TargetSet& targets() const;
  const std::shared_ptr<const TargetSet>& shared_targets() const;
  const Cost& cost() const;
  const CTransformOptions& options() const;

  // Computes the c-transform of the rows of x (b x d) for the dual vector psi (local shard of
  // the targets) into *result, reusing its buffers. InvalidArgumentError naming "x" or "psi"
  // for empty or mismatched shapes and non-finite entries (and zero points for the cosine
  // cost); errors of the target set's reductions are passed through.
  absl::Status Compute(const Eigen::Ref<const RowMatrixXf>& x, const Eigen::Ref<const Eigen::VectorXf>& psi,
                       const CTransformRequest& request, CTransformResult* result);
  absl::StatusOr<CTransformResult> Compute(const Eigen::Ref<const RowMatrixXf>& x,
                                           const Eigen::Ref<const Eigen::VectorXf>& psi,
                                           const CTransformRequest& request = {});

  // sum_i row_weights_i pi_j(x_i) for every local target j, given the values
  // psi^{c,lambda}(x_i) (from Compute with the same x and psi) and, for lambda = 0, the
  // assignment. This is the vector-Jacobian product in psi of the values (up to sign); the
  // differentiable form uses it when the upstream gradient is not uniform over the batch.
  absl::Status WeightedAssignmentSums(const Eigen::Ref<const RowMatrixXf>& x,
                                      const Eigen::Ref<const Eigen::VectorXf>& psi,
                                      const Eigen::Ref<const Eigen::VectorXf>& values,
                                      const std::vector<int64_t>& assignment,
                                      const Eigen::Ref<const Eigen::VectorXf>& row_weights,
                                      Eigen::VectorXf* sums);

 private:
  explicit CTransform(std::unique_ptr<internal::CTransformImpl> impl);
  std::shared_ptr<internal::CTransformImpl> impl_;

  friend absl::StatusOr<nn::Var> CTransformValues(CTransform& transform, const nn::Var& x, const nn::Var& psi);
};

// Differentiable per-sample c-transform: a Var of shape [b] holding psi^{c,lambda}(x_i), for x of
// shape [b, ...] (the trailing dimensions flatten to d, e.g. [b, 1, 28, 28] images) and psi of
// shape [J_shard]. Backward gives
//   d/dx_i   = g_i grad_x psi^{c,lambda}(x_i)           (the generator gradient, eqs. 53, 65, 104),
//   d/dpsi_j = -sum_i g_i pi_j(x_i)                       (psi produced by a network: SDOTNN, eq. 105),
// for an upstream gradient g. Only what some input requiring grad needs is computed in the
// forward pass. First order only: the backward rule is not itself differentiable, and a
// backward pass with create_graph = true through this op aborts with a message saying so.
// The graph may outlive `transform`: the node keeps what its backward rule needs (per-sample
// gradients, the assignment sums, and a shared handle on the transform's internals for the
// rare case of a non-uniform upstream gradient in psi, which costs one more streamed pass).
absl::StatusOr<nn::Var> CTransformValues(CTransform& transform, const nn::Var& x, const nn::Var& psi);

// The batch semi-dual objective H(psi) = mean_i psi^{c,lambda}(x_i) + sum_j nu_j psi_j (seed 000
// eq. 99 on a batch; eq. 105 for a network-parameterized psi) as a scalar Var. With a sharded
// target set the second term covers the local shard only (each process adds its own part).
absl::StatusOr<nn::Var> SemiDualObjective(CTransform& transform, const nn::Var& x, const nn::Var& psi);

}  // namespace otgen::ot

#endif  // OTGEN_OT_C_TRANSFORM_H_
