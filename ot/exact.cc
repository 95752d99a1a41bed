#include "ot/exact.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "ot/assignment.h"
#include "ot/cost.h"
#include "ot/dense_kernels.h"
#include "ot/types.h"

namespace otgen::ot {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---------------------------------------------------------------------------------------------
// Network simplex on the complete bipartite graph sources -> targets.
//
// Nodes 0..n-1 are the sources (supply a_i), n..n+m-1 the targets (supply -b_j) and N = n + m
// is the artificial root. Real arc (i, j) has id i * m + j, runs from node i to node n + j,
// costs C_ij and is uncapacitated. Every node u also has an artificial arc to the root:
// u -> root when its supply is >= 0, root -> u (with a big-M cost) otherwise, carrying the
// node's supply in the initial tree (strongly feasible: zero-flow arcs point up).
//
// The basis is a spanning tree rooted at the root: parent_[u], the arc to the parent pred_[u]
// (-1 for the artificial one), its direction dir_[u] (+1: u -> parent, -1: parent -> u) and
// its flow flow_[u]; thread_/rev_thread_ (a preorder, circular through the root),
// succ_num_[u] (subtree size) and last_succ_[u] (last node of the subtree in the preorder).
// Non-tree arcs carry no flow (no capacities), so flows live on the nodes.
// Potentials: pi_[target] - pi_[source] = cost on every tree arc; reduced cost of a real arc
// C_ij + pi_i - pi_{n+j} >= 0 at optimality; then f = -pi(sources), g = pi(targets).
template <typename T>
class NetworkSimplex {
 public:
  NetworkSimplex(const T* cost, int64_t stride, int n, int m, const std::vector<double>& a,
                 const std::vector<double>& b, int64_t block_size)
      : cost_(cost), stride_(stride), n_(n), m_(m), num_nodes_(n + m), root_(n + m) {
    const int total = num_nodes_ + 1;
    parent_.assign(total, -1);
    pred_.assign(total, -1);
    dir_.assign(total, 1);
    flow_.assign(total, 0.0);
    thread_.assign(total, 0);
    rev_thread_.assign(total, 0);
    succ_num_.assign(total, 1);
    last_succ_.assign(total, 0);
    pi_.assign(total, 0.0);
    path_.reserve(total);
    saved_last_.reserve(total);
    saved_rev_.reserve(total);
    saved_next_.reserve(total);
    saved_succ_.reserve(total);

    // Row minima r_i and column minima s_j of C - r: the reduced matrix C_ij - r_i - s_j is
    // >= 0 with a zero in every row and column, and its maximum R (not the magnitude of C)
    // sets the big M. Equivalent to solving for C - r - s, which has the same optimal plans,
    // but carried out on C itself by giving the artificial arcs the offsets as costs.
    std::vector<double> r(n_), s(m_, kInf);
    double max_abs = 0.0;
    for (int i = 0; i < n_; ++i) {
      const T* row = Row(i);
      double lo = kInf;
      for (int j = 0; j < m_; ++j) {
        const double c = static_cast<double>(row[j]);
        lo = std::min(lo, c);
        max_abs = std::max(max_abs, std::abs(c));
      }
      r[i] = lo;
      for (int j = 0; j < m_; ++j) s[j] = std::min(s[j], static_cast<double>(row[j]) - lo);
    }
    double range = 0.0;
    for (int i = 0; i < n_; ++i) {
      const T* row = Row(i);
      for (int j = 0; j < m_; ++j)
        range = std::max(range, static_cast<double>(row[j]) - r[i] - s[j]);
    }
    // Big M: more than any alternating path of reduced costs (at most N arcs).
    const double big_m = (static_cast<double>(num_nodes_) + 1.0) *
                         (range > 0.0 ? range : (max_abs > 0.0 ? max_abs : 1.0));
    // Reduced costs are differences of potentials of magnitude up to ~|C| + 2M; an arc enters
    // only if its reduced cost is below -epsilon_ (a few dozen ulps of that magnitude), which
    // keeps rounding noise on tree arcs from ever looking like an improving arc.
    epsilon_ = 64.0 * std::numeric_limits<double>::epsilon() * (big_m + 2.0 * max_abs);

    // Artificial arc costs: source i -> root: r_i; target j: root -> j costs M + s_j when it
    // carries demand, j -> root costs -s_j when b_j = 0. Then every real arc starts with
    // reduced cost C_ij - r_i - s_j - M < 0 (or >= 0 into zero-demand targets).
    art_cost_.resize(num_nodes_);
    for (int i = 0; i < n_; ++i) art_cost_[i] = r[i];
    for (int j = 0; j < m_; ++j) art_cost_[n_ + j] = b[j] > 0.0 ? big_m + s[j] : -s[j];

    const int64_t arcs = static_cast<int64_t>(n_) * m_;
    block_size_ =
        block_size > 0
            ? block_size
            : std::max<int64_t>(64, static_cast<int64_t>(std::sqrt(static_cast<double>(arcs))));
    block_size_ = std::min(block_size_, arcs);

    // Initial tree: every node hangs from the root by its artificial arc.
    for (int u = 0; u < num_nodes_; ++u) {
      const double supply = u < n_ ? a[u] : -b[u - n_];
      parent_[u] = root_;
      pred_[u] = -1;
      thread_[u] = u + 1;
      rev_thread_[u] = u == 0 ? root_ : u - 1;
      succ_num_[u] = 1;
      last_succ_[u] = u;
      if (supply >= 0.0) {
        dir_[u] = 1;  // u -> root
        flow_[u] = supply;
        pi_[u] = -art_cost_[u];
      } else {
        dir_[u] = -1;  // root -> u
        flow_[u] = -supply;
        pi_[u] = art_cost_[u];
      }
    }
    parent_[root_] = -1;
    thread_[num_nodes_ - 1] = root_;
    thread_[root_] = 0;
    rev_thread_[root_] = num_nodes_ - 1;
    succ_num_[root_] = total;
    last_succ_[root_] = num_nodes_ - 1;
    pi_[root_] = 0.0;
  }

  // Pivots until optimal or `max_iterations` pivots; returns true when optimal.
  bool Run(int64_t max_iterations) {
    const int64_t refresh_period = std::max<int64_t>(num_nodes_, 1024);
    int64_t since_refresh = 0;
    int i_in, j_in;
    while (true) {
      if (!FindEnteringArc(&i_in, &j_in)) {
        // Confirm with exactly recomputed potentials before declaring optimality.
        RecomputePotentials();
        since_refresh = 0;
        if (!FindEnteringArc(&i_in, &j_in)) return true;
      }
      if (iterations_ >= max_iterations) return false;
      const int64_t arc = static_cast<int64_t>(i_in) * m_ + j_in;
      if (pred_[i_in] == arc || pred_[n_ + j_in] == arc) {
        // A tree arc looked improving: potentials drifted. Recompute and search again.
        RecomputePotentials();
        since_refresh = 0;
        continue;
      }
      Pivot(i_in, j_in);
      ++iterations_;
      if (++since_refresh >= refresh_period) {
        RecomputePotentials();
        since_refresh = 0;
      }
    }
  }

  int64_t iterations() const { return iterations_; }

  // Non-zero flows of real tree arcs, sorted by (i, j).
  std::vector<TransportEntry> Plan() const {
    std::vector<TransportEntry> plan;
    plan.reserve(num_nodes_);
    for (int u = 0; u < num_nodes_; ++u) {
      if (pred_[u] < 0 || !(flow_[u] > 0.0)) continue;
      const int64_t arc = pred_[u];
      plan.push_back({static_cast<int>(arc / m_), static_cast<int>(arc % m_), flow_[u]});
    }
    std::sort(plan.begin(), plan.end(), [](const TransportEntry& x, const TransportEntry& y) {
      return x.i != y.i ? x.i < y.i : x.j < y.j;
    });
    return plan;
  }

  // Total flow left on artificial arcs (0 at an optimum of a balanced problem, up to rounding).
  double ArtificialFlow() const {
    double total = 0.0;
    for (int u = 0; u < num_nodes_; ++u) {
      if (pred_[u] < 0) total += std::abs(flow_[u]);
    }
    return total;
  }

  // f_i = -pi_i, g_j = pi_{n+j}.
  void Potentials(Eigen::VectorXd* f, Eigen::VectorXd* g) const {
    f->resize(n_);
    g->resize(m_);
    for (int i = 0; i < n_; ++i) (*f)[i] = -pi_[i];
    for (int j = 0; j < m_; ++j) (*g)[j] = pi_[n_ + j];
  }

 private:
  const T* Row(int i) const { return cost_ + static_cast<int64_t>(i) * stride_; }

  double TreeArcCost(int u) const {
    const int64_t arc = pred_[u];
    if (arc < 0) return art_cost_[u];
    return static_cast<double>(Row(static_cast<int>(arc / m_))[arc % m_]);
  }

  // pi from the tree, in preorder: one rounding per node, so every tree arc has a reduced
  // cost of at most an ulp or so.
  void RecomputePotentials() {
    pi_[root_] = 0.0;
    for (int u = thread_[root_]; u != root_; u = thread_[u]) {
      const double c = TreeArcCost(u);
      pi_[u] = dir_[u] > 0 ? pi_[parent_[u]] - c : pi_[parent_[u]] + c;
    }
  }

  // Block search pricing: scans arcs cyclically from where the last search stopped, in blocks
  // of block_size_ arcs, and returns the most negative reduced cost of the first block that
  // has one below -epsilon_. False if a full cycle finds none.
  bool FindEnteringArc(int* i_out, int* j_out) {
    const int64_t total = static_cast<int64_t>(n_) * m_;
    const double* pi_targets = pi_.data() + n_;
    double best = -epsilon_;
    int best_i = -1, best_j = -1;
    int i = next_i_, j = next_j_;
    int64_t scanned = 0, in_block = 0;
    while (scanned < total) {
      const int64_t len64 = std::min<int64_t>({m_ - j, block_size_ - in_block, total - scanned});
      const int len = static_cast<int>(len64);
      double row_min;
      int arg;
      internal::simd::ReducedArgmin(Row(i) + j, pi_targets + j, len, &row_min, &arg);
      const double rc = row_min + pi_[i];
      if (rc < best) {
        best = rc;
        best_i = i;
        best_j = j + arg;
      }
      j += len;
      scanned += len;
      in_block += len;
      if (j == m_) {
        j = 0;
        if (++i == n_) i = 0;
      }
      if (in_block == block_size_) {
        if (best_i >= 0) break;
        in_block = 0;
      }
    }
    next_i_ = i;
    next_j_ = j;
    if (best_i < 0) return false;
    *i_out = best_i;
    *j_out = best_j;
    return true;
  }

  int FindJoin(int u, int v) const {
    while (u != v) {
      if (succ_num_[u] < succ_num_[v]) {
        u = parent_[u];
      } else {
        v = parent_[v];
      }
    }
    return u;
  }

  void Link(int from, int to) {
    thread_[from] = to;
    rev_thread_[to] = from;
  }

  // One pivot with entering arc (i, j) (reduced cost < 0, flow to increase from source i to
  // target n + j).
  void Pivot(int i, int j) {
    const int first = i;
    const int second = n_ + j;
    const int64_t in_arc = static_cast<int64_t>(i) * m_ + j;
    const int join = FindJoin(first, second);

    // Leaving arc: the blocking arc met last when the cycle is traversed in the direction of
    // the flow change starting at the join (keeps the tree strongly feasible).
    double delta = kInf;
    int u_out = -1;
    int side = 0;
    for (int u = first; u != join; u = parent_[u]) {
      // Flow moves parent -> u: decreases the arc when it points up.
      if (dir_[u] > 0 && flow_[u] < delta) {
        delta = flow_[u];
        u_out = u;
        side = 1;
      }
    }
    for (int u = second; u != join; u = parent_[u]) {
      // Flow moves u -> parent: decreases the arc when it points down.
      if (dir_[u] < 0 && flow_[u] <= delta) {
        delta = flow_[u];
        u_out = u;
        side = 2;
      }
    }
    // A cycle always has a decreasing arc: the path back to a source ends on an up arc.
    if (delta < 0.0) delta = 0.0;  // Rounding can leave a flow at -1e-17.

    if (delta > 0.0) {
      for (int u = first; u != join; u = parent_[u]) flow_[u] -= dir_[u] * delta;
      for (int u = second; u != join; u = parent_[u]) flow_[u] += dir_[u] * delta;
    }

    const int u_in = side == 1 ? first : second;
    const int v_in = side == 1 ? second : first;
    const double rc_in = static_cast<double>(Row(i)[j]) + pi_[first] - pi_[second];
    const double sigma = side == 1 ? -rc_in : rc_in;

    // Path u_in = s_0, s_1 = parent(s_0), ..., s_k = u_out, and what the splice needs of it.
    path_.clear();
    saved_last_.clear();
    saved_rev_.clear();
    saved_next_.clear();
    saved_succ_.clear();
    for (int u = u_in;; u = parent_[u]) {
      path_.push_back(u);
      saved_last_.push_back(last_succ_[u]);
      saved_rev_.push_back(rev_thread_[u]);
      saved_next_.push_back(thread_[last_succ_[u]]);
      saved_succ_.push_back(succ_num_[u]);
      if (u == u_out) break;
    }
    const int k = static_cast<int>(path_.size()) - 1;
    const int moved = saved_succ_[k];
    const int old_parent_out = parent_[u_out];

    // Cut the subtree of u_out out of the preorder.
    {
      const int prev = saved_rev_[k];
      Link(prev, saved_next_[k]);
      for (int w = old_parent_out; w != -1 && last_succ_[w] == saved_last_[k]; w = parent_[w]) {
        last_succ_[w] = prev;
      }
      for (int w = old_parent_out; w != join; w = parent_[w]) succ_num_[w] -= moved;
    }

    // Preorder of the re-rooted subtree: the old subtree of s_0, then for t = 1..k the old
    // subtree of s_t without that of s_{t-1} (two contiguous pieces of the old preorder).
    int tail = saved_last_[0];
    for (int t = 1; t <= k; ++t) {
      Link(tail, path_[t]);
      tail = saved_rev_[t - 1];
      if (saved_last_[t - 1] != saved_last_[t]) {
        Link(tail, saved_next_[t - 1]);
        tail = saved_last_[t];
      }
    }
    const int last = tail;

    // Hang it below v_in, as its first child.
    {
      const int after = thread_[v_in];
      Link(v_in, path_[0]);
      Link(last, after);
      for (int w = v_in; w != -1 && last_succ_[w] == v_in; w = parent_[w]) last_succ_[w] = last;
      for (int w = v_in; w != join; w = parent_[w]) succ_num_[w] += moved;
    }

    // Subtree sizes and last successors along the reversed path.
    int acc = 0;
    for (int t = k; t >= 0; --t) {
      acc += saved_succ_[t] - (t > 0 ? saved_succ_[t - 1] : 0);
      succ_num_[path_[t]] = acc;
      last_succ_[path_[t]] = last;
    }

    // Reverse parents along the path; tree arcs move one node down the path.
    for (int t = k; t >= 1; --t) {
      const int s = path_[t];
      const int below = path_[t - 1];
      parent_[s] = below;
      pred_[s] = pred_[below];
      dir_[s] = static_cast<int8_t>(-dir_[below]);
      flow_[s] = flow_[below];
    }
    parent_[u_in] = v_in;
    pred_[u_in] = in_arc;
    dir_[u_in] = static_cast<int8_t>(u_in == first ? 1 : -1);
    flow_[u_in] = delta;

    // Potentials of the moved subtree shift so that the entering arc has reduced cost 0.
    int u = u_in;
    for (int c = 0; c < moved; ++c) {
      pi_[u] += sigma;
      u = thread_[u];
    }
  }

  const T* cost_;
  const int64_t stride_;
  const int n_;
  const int m_;
  const int num_nodes_;
  const int root_;
  std::vector<double> art_cost_;  // Cost of each node's artificial arc.
  double epsilon_ = 0.0;
  int64_t block_size_ = 0;
  int next_i_ = 0;
  int next_j_ = 0;
  int64_t iterations_ = 0;

  std::vector<int> parent_;
  std::vector<int64_t> pred_;
  std::vector<int8_t> dir_;
  std::vector<double> flow_;
  std::vector<int> thread_;
  std::vector<int> rev_thread_;
  std::vector<int> succ_num_;
  std::vector<int> last_succ_;
  std::vector<double> pi_;

  std::vector<int> path_;
  std::vector<int> saved_last_;
  std::vector<int> saved_rev_;
  std::vector<int> saved_next_;
  std::vector<int> saved_succ_;
};

// ---------------------------------------------------------------------------------------------
// Validation.

template <typename Matrix>
absl::Status ValidateCost(const Matrix& cost) {
  if (cost.rows() == 0 || cost.cols() == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cost: expected a non-empty matrix, got %d x %d", cost.rows(), cost.cols()));
  }
  if (cost.rows() > std::numeric_limits<int>::max() / 2 ||
      cost.cols() > std::numeric_limits<int>::max() / 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cost: %d x %d exceeds the supported size", cost.rows(), cost.cols()));
  }
  for (Eigen::Index i = 0; i < cost.rows(); ++i) {
    const auto* row = cost.data() + i * cost.outerStride();
    bool ok = true;
    for (Eigen::Index j = 0; j < cost.cols(); ++j) ok &= std::isfinite(row[j]);
    if (!ok) {
      for (Eigen::Index j = 0; j < cost.cols(); ++j) {
        if (!std::isfinite(row[j])) {
          return absl::InvalidArgumentError(
              absl::StrFormat("cost: expected finite entries, got %g at (%d, %d)",
                              static_cast<double>(row[j]), i, j));
        }
      }
    }
  }
  return absl::OkStatus();
}

// Checks and normalizes one weight vector; `expected` is the number of entries it must have
// and `what` says where that number comes from.
template <typename Vector>
absl::StatusOr<std::vector<double>> NormalizedWeights(const Vector& w, Eigen::Index expected,
                                                      std::string_view name, std::string_view what,
                                                      double tolerance) {
  if (w.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: expected %d entries (%s), got %d", name, expected, what, w.size()));
  }
  double sum = 0.0;
  for (Eigen::Index k = 0; k < w.size(); ++k) {
    const double x = static_cast<double>(w[k]);
    if (!std::isfinite(x) || x < 0.0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: expected finite non-negative entries, got %g at %d", name, x, k));
    }
    sum += x;
  }
  if (!(std::abs(sum - 1.0) <= tolerance) || !(sum > 0.0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: expected %d non-negative entries summing to 1 (relative tolerance %g), got sum %.9g",
        name, expected, tolerance, sum));
  }
  std::vector<double> out(w.size());
  for (Eigen::Index k = 0; k < w.size(); ++k) out[k] = static_cast<double>(w[k]) / sum;
  return out;
}

bool IsUniform(const std::vector<double>& w, double tolerance) {
  const double n = static_cast<double>(w.size());
  for (const double x : w) {
    if (!(std::abs(x * n - 1.0) <= tolerance)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Duals.

// g_j = min_i C_ij - f_i, then f_i = min_j C_ij - g_j.
template <typename T>
void CTransformPotentials(const T* cost, int64_t stride, int n, int m, Eigen::VectorXd* f,
                          Eigen::VectorXd* g) {
  std::vector<double> gmin(m, kInf);
  for (int i = 0; i < n; ++i) {
    const T* row = cost + static_cast<int64_t>(i) * stride;
    const double fi = (*f)[i];
    for (int j = 0; j < m; ++j) gmin[j] = std::min(gmin[j], static_cast<double>(row[j]) - fi);
  }
  for (int j = 0; j < m; ++j) (*g)[j] = gmin[j];
  for (int i = 0; i < n; ++i) {
    const T* row = cost + static_cast<int64_t>(i) * stride;
    (*f)[i] = internal::simd::RowMinExcept(row, g->data(), m, -1);
  }
}

// f += s, g -= s with s chosen so that <a, f> = <b, g>.
void CenterPotentials(const std::vector<double>& a, const std::vector<double>& b,
                      Eigen::VectorXd* f, Eigen::VectorXd* g) {
  double af = 0.0, bg = 0.0;
  for (size_t i = 0; i < a.size(); ++i) af += a[i] * (*f)[i];
  for (size_t j = 0; j < b.size(); ++j) bg += b[j] * (*g)[j];
  const double s = 0.5 * (bg - af);
  f->array() += s;
  g->array() -= s;
}

// ---------------------------------------------------------------------------------------------
// Solve on a validated cost matrix with normalized weights.

template <typename T>
absl::StatusOr<ExactOTResult> SolveValidated(const T* cost, int64_t stride, int n, int m,
                                             const std::vector<double>& a,
                                             const std::vector<double>& b,
                                             const ExactOTOptions& options,
                                             Clock::time_point start) {
  ExactOTResult r;
  r.rows = n;
  r.cols = m;
  const bool uniform = n == m && options.use_assignment_for_uniform &&
                       IsUniform(a, options.uniform_weight_tolerance) &&
                       IsUniform(b, options.uniform_weight_tolerance);
  if (uniform) {
    internal::LapSolution s = internal::SolveLapDense(cost, stride, n, /*jv_initialization=*/true);
    r.solver = ExactOTSolver::kAssignment;
    r.iterations = s.augmentations;
    r.plan.resize(n);
    const double mass = 1.0 / n;
    double total = 0.0;
    for (int i = 0; i < n; ++i) {
      const int j = s.target_of_source[i];
      r.plan[i] = {i, j, mass};
      total += static_cast<double>(cost[static_cast<int64_t>(i) * stride + j]);
    }
    r.cost = total / n;
    r.source_potential = std::move(s.source_potential);
    r.target_potential = std::move(s.target_potential);
    const std::vector<double> uniform_weights(n, mass);
    CenterPotentials(uniform_weights, uniform_weights, &r.source_potential, &r.target_potential);
  } else {
    NetworkSimplex<T> simplex(cost, stride, n, m, a, b, options.block_size);
    const bool optimal = simplex.Run(options.max_iterations);
    r.solver = ExactOTSolver::kNetworkSimplex;
    r.iterations = simplex.iterations();
    r.termination =
        optimal ? ExactOTTermination::kOptimal : ExactOTTermination::kMaxIterationsReached;
    r.plan = simplex.Plan();
    double total = 0.0;
    for (const TransportEntry& e : r.plan) {
      total += static_cast<double>(cost[static_cast<int64_t>(e.i) * stride + e.j]) * e.mass;
    }
    r.cost = total;
    simplex.Potentials(&r.source_potential, &r.target_potential);
    if (optimal) {
      const double artificial = simplex.ArtificialFlow();
      if (artificial > 1e-9) {
        return absl::InternalError(absl::StrFormat(
            "network simplex ended with mass %g on artificial arcs (numerical breakdown)",
            artificial));
      }
      CTransformPotentials(cost, stride, n, m, &r.source_potential, &r.target_potential);
      CenterPotentials(a, b, &r.source_potential, &r.target_potential);
    }
  }
  r.solve_seconds = SecondsSince(start);
  return r;
}

// `cost_is_trusted`: the matrix was built here from validated points (finite by
// construction), so the O(nm) finiteness scan is skipped.
template <typename Matrix, typename Vector>
absl::StatusOr<ExactOTResult> SolveMatrix(const Matrix& cost, const Vector* source_weights,
                                          const Vector* target_weights,
                                          const ExactOTOptions& options, Clock::time_point start,
                                          bool cost_is_trusted = false) {
  absl::Status st = options.Validate();
  if (!st.ok()) return st;
  if (!cost_is_trusted) {
    st = ValidateCost(cost);
    if (!st.ok()) return st;
  }
  const int n = static_cast<int>(cost.rows());
  const int m = static_cast<int>(cost.cols());
  std::vector<double> a, b;
  if (source_weights != nullptr) {
    absl::StatusOr<std::vector<double>> wa = NormalizedWeights(
        *source_weights, n, "source_weights", "the rows of cost", options.weight_sum_tolerance);
    if (!wa.ok()) return wa.status();
    absl::StatusOr<std::vector<double>> wb = NormalizedWeights(
        *target_weights, m, "target_weights", "the columns of cost", options.weight_sum_tolerance);
    if (!wb.ok()) return wb.status();
    a = *std::move(wa);
    b = *std::move(wb);
  } else {
    a.assign(n, 1.0 / n);
    b.assign(m, 1.0 / m);
  }
  return SolveValidated(cost.data(), cost.outerStride(), n, m, a, b, options, start);
}

// ---------------------------------------------------------------------------------------------
// Cost matrices from point clouds.

absl::Status ValidatePointClouds(const Eigen::Ref<const RowMatrixXf>& x,
                                 const Eigen::Ref<const RowMatrixXf>& y, const Cost& cost) {
  absl::Status st = cost.Validate();
  if (!st.ok()) return st;
  st = ValidatePoints(cost, x, "source_points");
  if (!st.ok()) return st;
  st = ValidatePoints(cost, y, "target_points");
  if (!st.ok()) return st;
  if (x.cols() != y.cols()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "target_points: expected %d columns (the dimension of source_points), got %d", x.cols(),
        y.cols()));
  }
  if (x.rows() > std::numeric_limits<int>::max() / 2 ||
      y.rows() > std::numeric_limits<int>::max() / 2) {
    return absl::InvalidArgumentError("source_points/target_points: too many points");
  }
  return absl::OkStatus();
}

// Runs body(begin, end) over [0, n) split across up to hardware_concurrency threads when the
// work (n * work_per_item) is large enough to pay for them.
template <typename Body>
void ParallelRows(int64_t n, double work_per_item, const Body& body) {
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = static_cast<int>(std::min<double>(
      {static_cast<double>(hw), static_cast<double>(n), std::max(1.0, n * work_per_item / 4e6)}));
  if (threads <= 1) {
    body(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  const int64_t chunk = (n + threads - 1) / threads;
  for (int t = 1; t < threads; ++t) {
    const int64_t begin = std::min(n, t * chunk), end = std::min(n, (t + 1) * chunk);
    pool.emplace_back([&body, begin, end] { body(begin, end); });
  }
  body(int64_t{0}, std::min(n, chunk));
  for (std::thread& t : pool) t.join();
}

// An upper bound of every |C_ij| from the bounding box of both clouds (in double).
double CostMagnitudeBound(const Eigen::Ref<const RowMatrixXf>& x,
                          const Eigen::Ref<const RowMatrixXf>& y, const Cost& cost) {
  const Eigen::RowVectorXd lo =
      x.cast<double>().colwise().minCoeff().cwiseMin(y.cast<double>().colwise().minCoeff());
  const Eigen::RowVectorXd hi =
      x.cast<double>().colwise().maxCoeff().cwiseMax(y.cast<double>().colwise().maxCoeff());
  const double inv_scale = 1.0 / static_cast<double>(cost.scale);
  switch (cost.kind) {
    case CostKind::kSquaredEuclidean:
      return (hi - lo).squaredNorm() * inv_scale;
    case CostKind::kLp:
      return std::pow((hi - lo).norm(), static_cast<double>(cost.p)) * inv_scale;
    case CostKind::kL1:
      return (hi - lo).sum() * inv_scale;
    case CostKind::kCosine:
      return 2.0 * inv_scale;
  }
  return kInf;
}

RowMatrixXd BuildCostMatrixUnchecked(const Eigen::Ref<const RowMatrixXf>& x,
                                     const Eigen::Ref<const RowMatrixXf>& y, const Cost& cost);

// Validates the clouds, builds C and makes sure it is finite (a large p or a tiny scale can
// overflow; the bounding-box bound spares the O(nm) check in every other case).
absl::StatusOr<RowMatrixXd> BuildCostMatrix(const Eigen::Ref<const RowMatrixXf>& x,
                                            const Eigen::Ref<const RowMatrixXf>& y,
                                            const Cost& cost) {
  absl::Status st = ValidatePointClouds(x, y, cost);
  if (!st.ok()) return st;
  const double bound = CostMagnitudeBound(x, y, cost);
  RowMatrixXd c = BuildCostMatrixUnchecked(x, y, cost);
  if (!(bound < std::numeric_limits<double>::max()) && !c.allFinite()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cost: %s overflows double on these points (costs up to %g); rescale the points or "
        "raise cost.scale",
        cost.ToString(), bound));
  }
  return c;
}

RowMatrixXd BuildCostMatrixUnchecked(const Eigen::Ref<const RowMatrixXf>& x,
                                     const Eigen::Ref<const RowMatrixXf>& y, const Cost& cost) {
  const Eigen::Index n = x.rows(), m = y.rows(), d = x.cols();
  const double inv_scale = 1.0 / static_cast<double>(cost.scale);
  RowMatrixXd c(n, m);

  if (cost.kind == CostKind::kL1) {
    const RowMatrixXd yd = y.cast<double>();
    ParallelRows(n, static_cast<double>(m) * d, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const Eigen::RowVectorXd xi = x.row(i).cast<double>();
        c.row(i) = ((yd.rowwise() - xi).cwiseAbs().rowwise().sum() * inv_scale).transpose();
      }
    });
    return c;
  }

  const bool distance_kind = cost.kind == CostKind::kSquaredEuclidean || cost.kind == CostKind::kLp;
  // The power applied to ||x - y|| for distance kinds.
  const double p = cost.kind == CostKind::kLp ? static_cast<double>(cost.p) : 2.0;
  auto finish_distance = [&](double sq) {
    sq = std::max(sq, 0.0);
    if (p == 2.0) return sq * inv_scale;
    if (p == 1.0) return std::sqrt(sq) * inv_scale;
    return std::pow(sq, 0.5 * p) * inv_scale;
  };

  if (distance_kind && d <= 4) {
    // Direct differences: exact in double, no cancellation.
    const Eigen::MatrixXd yt = y.cast<double>().transpose();  // d x m, column-major
    ParallelRows(n, static_cast<double>(m) * d, [&](int64_t begin, int64_t end) {
      Eigen::RowVectorXd acc(m);
      for (int64_t i = begin; i < end; ++i) {
        acc.setZero();
        for (Eigen::Index k = 0; k < d; ++k) {
          const double xk = x(i, k);
          acc.array() += (yt.row(k).array() - xk).square();
        }
        double* out = c.data() + i * m;
        for (Eigen::Index j = 0; j < m; ++j) out[j] = finish_distance(acc[j]);
      }
    });
    return c;
  }

  // Dot products by a double GEMM on points centred at the mean of both clouds (cancellation
  // in ||x||^2 + ||y||^2 - 2 <x, y> is relative to the centred norms).
  Eigen::RowVectorXd center = Eigen::RowVectorXd::Zero(d);
  if (distance_kind) {
    center = (x.cast<double>().colwise().sum() + y.cast<double>().colwise().sum()) /
             static_cast<double>(n + m);
  }
  const RowMatrixXd xc = x.cast<double>().rowwise() - center;
  const RowMatrixXd yc = y.cast<double>().rowwise() - center;
  const Eigen::VectorXd xn = xc.rowwise().squaredNorm();
  const Eigen::VectorXd yn = yc.rowwise().squaredNorm();
  ParallelRows(n, static_cast<double>(m) * d, [&](int64_t begin, int64_t end) {
    if (begin >= end) return;
    auto block = c.middleRows(begin, end - begin);
    block.noalias() = xc.middleRows(begin, end - begin) * yc.transpose();
    for (int64_t i = begin; i < end; ++i) {
      double* out = c.data() + i * m;
      if (distance_kind) {
        for (Eigen::Index j = 0; j < m; ++j) {
          out[j] = finish_distance(xn[i] + yn[j] - 2.0 * out[j]);
        }
      } else {  // kCosine: 1 - <x, y> / (|x| |y|)
        const double nx = std::sqrt(xn[i]);
        for (Eigen::Index j = 0; j < m; ++j) {
          out[j] = (1.0 - out[j] / (nx * std::sqrt(yn[j]))) * inv_scale;
        }
      }
    }
  });
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

absl::Status ExactOTOptions::Validate() const {
  if (max_iterations <= 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ExactOTOptions.max_iterations: expected > 0, got %d", max_iterations));
  }
  if (!(weight_sum_tolerance >= 0.0 && weight_sum_tolerance < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ExactOTOptions.weight_sum_tolerance: expected a value in [0, 1), got %g",
                        weight_sum_tolerance));
  }
  if (!(uniform_weight_tolerance >= 0.0 && uniform_weight_tolerance < 1.0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ExactOTOptions.uniform_weight_tolerance: expected a value in [0, 1), got %g",
        uniform_weight_tolerance));
  }
  if (block_size < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ExactOTOptions.block_size: expected >= 0 (0 = automatic), got %d", block_size));
  }
  return absl::OkStatus();
}

RowMatrixXd ExactOTResult::DensePlan() const {
  RowMatrixXd p = RowMatrixXd::Zero(rows, cols);
  for (const TransportEntry& e : plan) p(e.i, e.j) += e.mass;
  return p;
}

double ExactOTResult::DualObjective(const Eigen::Ref<const Eigen::VectorXd>& source_weights,
                                    const Eigen::Ref<const Eigen::VectorXd>& target_weights) const {
  return source_weights.dot(source_potential) + target_weights.dot(target_potential);
}

std::vector<int> ExactOTResult::MainTargets() const {
  std::vector<int> target(rows, -1);
  std::vector<double> best(rows, -1.0);
  for (const TransportEntry& e : plan) {
    if (e.mass > best[e.i]) {
      best[e.i] = e.mass;
      target[e.i] = e.j;
    }
  }
  return target;
}

std::string ExactOTResult::BriefReport() const {
  return absl::StrFormat(
      "ExactOT[%s]: %d x %d, cost %.10g, %d non-zeros, %d %s, %.4f s, %s",
      solver == ExactOTSolver::kAssignment ? "assignment" : "network simplex", rows, cols, cost,
      plan.size(), iterations, solver == ExactOTSolver::kAssignment ? "augmentations" : "pivots",
      solve_seconds, optimal() ? "optimal" : "max_iterations reached (not optimal)");
}

absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXd>& cost,
                                           const Eigen::Ref<const Eigen::VectorXd>& source_weights,
                                           const Eigen::Ref<const Eigen::VectorXd>& target_weights,
                                           const ExactOTOptions& options) {
  return SolveMatrix(cost, &source_weights, &target_weights, options, Clock::now());
}

absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXf>& cost,
                                           const Eigen::Ref<const Eigen::VectorXf>& source_weights,
                                           const Eigen::Ref<const Eigen::VectorXf>& target_weights,
                                           const ExactOTOptions& options) {
  return SolveMatrix(cost, &source_weights, &target_weights, options, Clock::now());
}

absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXd>& cost,
                                           const ExactOTOptions& options) {
  return SolveMatrix<Eigen::Ref<const RowMatrixXd>, Eigen::Ref<const Eigen::VectorXd>>(
      cost, nullptr, nullptr, options, Clock::now());
}

absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXf>& cost,
                                           const ExactOTOptions& options) {
  return SolveMatrix<Eigen::Ref<const RowMatrixXf>, Eigen::Ref<const Eigen::VectorXf>>(
      cost, nullptr, nullptr, options, Clock::now());
}

absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXf>& source_points,
                                           const Eigen::Ref<const RowMatrixXf>& target_points,
                                           const Cost& cost, const ExactOTOptions& options) {
  const Clock::time_point start = Clock::now();
  absl::Status st = options.Validate();
  if (!st.ok()) return st;
  absl::StatusOr<RowMatrixXd> c = BuildCostMatrix(source_points, target_points, cost);
  if (!c.ok()) return c.status();
  const Eigen::Ref<const RowMatrixXd> view(*c);
  return SolveMatrix<Eigen::Ref<const RowMatrixXd>, Eigen::Ref<const Eigen::VectorXd>>(
      view, nullptr, nullptr, options, start, /*cost_is_trusted=*/true);
}

absl::StatusOr<ExactOTResult> SolveExactOT(const Eigen::Ref<const RowMatrixXf>& source_points,
                                           const Eigen::Ref<const Eigen::VectorXf>& source_weights,
                                           const Eigen::Ref<const RowMatrixXf>& target_points,
                                           const Eigen::Ref<const Eigen::VectorXf>& target_weights,
                                           const Cost& cost, const ExactOTOptions& options) {
  const Clock::time_point start = Clock::now();
  absl::Status st = options.Validate();
  if (!st.ok()) return st;
  st = ValidatePointClouds(source_points, target_points, cost);
  if (!st.ok()) return st;
  // Check the weights against the point counts before the (possibly large) cost matrix.
  absl::StatusOr<std::vector<double>> wa =
      NormalizedWeights(source_weights, source_points.rows(), "source_weights",
                        "the rows of source_points", options.weight_sum_tolerance);
  if (!wa.ok()) return wa.status();
  absl::StatusOr<std::vector<double>> wb =
      NormalizedWeights(target_weights, target_points.rows(), "target_weights",
                        "the rows of target_points", options.weight_sum_tolerance);
  if (!wb.ok()) return wb.status();
  absl::StatusOr<RowMatrixXd> c = BuildCostMatrix(source_points, target_points, cost);
  if (!c.ok()) return c.status();
  const Eigen::Ref<const RowMatrixXd> view(*c);
  const Eigen::Ref<const Eigen::VectorXd> a =
      Eigen::Map<const Eigen::VectorXd>(wa->data(), static_cast<Eigen::Index>(wa->size()));
  const Eigen::Ref<const Eigen::VectorXd> b =
      Eigen::Map<const Eigen::VectorXd>(wb->data(), static_cast<Eigen::Index>(wb->size()));
  return SolveMatrix(view, &a, &b, options, start, /*cost_is_trusted=*/true);
}

absl::StatusOr<RowMatrixXd> ExactCostMatrix(const Eigen::Ref<const RowMatrixXf>& source_points,
                                            const Eigen::Ref<const RowMatrixXf>& target_points,
                                            const Cost& cost) {
  return BuildCostMatrix(source_points, target_points, cost);
}

}  // namespace otgen::ot
