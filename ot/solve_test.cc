#include "ot/solve.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "apps/eval/npy.h"
#include "gtest/gtest.h"

namespace otgen::ot {
namespace {

std::string Tmp(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") + "/" + name;
}

std::string WriteMatrix(const std::string& name, const RowMatrixXf& m) {
  const std::string path = Tmp(name);
  EXPECT_TRUE(eval::WriteNpyMatrix(path, m).ok());
  return path;
}

double ReadCost(const std::string& dir) {
  std::ifstream in(dir + "/cost.txt");
  double v = 0;
  in >> v;
  return v;
}

TEST(SolveTest, ExactMatchesBruteForceAndWritesOutputs) {
  RowMatrixXf x(3, 1), y(3, 1);
  x << 0, 1, 2;
  y << 2.5, 0.5, 1.5;
  SolveOptions o;
  o.source = WriteMatrix("x.npy", x);
  o.target = WriteMatrix("y.npy", y);
  o.output_dir = Tmp("exact_out");
  absl::StatusOr<std::string> out = RunSolve(o);
  ASSERT_TRUE(out.ok()) << out.status();
  // Sorted matching: each point moves by 0.5 -> mean squared cost 0.25.
  EXPECT_NEAR(ReadCost(o.output_dir), 0.25, 1e-6);
  absl::StatusOr<eval::NpyFloatArray> assignment = eval::ReadNpy(o.output_dir + "/assignment.npy");
  ASSERT_TRUE(assignment.ok()) << assignment.status();
  EXPECT_EQ(assignment->values, (std::vector<float>{1, 2, 0}));
  absl::StatusOr<eval::NpyFloatArray> plan = eval::ReadNpy(o.output_dir + "/plan.npy");
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->shape, (std::vector<int64_t>{3, 3}));
  EXPECT_TRUE(eval::ReadNpy(o.output_dir + "/f.npy").ok());
}

TEST(SolveTest, SinkhornApproachesExactAndDivergenceOfACloudWithItselfIsZero) {
  RowMatrixXf x(4, 2), y(4, 2);
  x << 0, 0, 1, 0, 0, 1, 1, 1;
  y << 0.2, 0.1, 1.1, 0.2, 0.1, 1.3, 1.2, 0.9;
  SolveOptions o;
  o.source = WriteMatrix("sx.npy", x);
  o.target = WriteMatrix("sy.npy", y);
  o.output_dir = Tmp("exact2");
  ASSERT_TRUE(RunSolve(o).ok());
  const double exact = ReadCost(o.output_dir);
  o.method = "sinkhorn";
  o.epsilon = 1e-3f;
  o.output_dir = Tmp("sinkhorn_out");
  ASSERT_TRUE(RunSolve(o).ok());
  EXPECT_NEAR(ReadCost(o.output_dir), exact, 5e-3);
  o.method = "sinkhorn_divergence";
  o.epsilon = 0.1f;
  o.target = o.source;
  o.output_dir = Tmp("div_out");
  ASSERT_TRUE(RunSolve(o).ok());
  EXPECT_NEAR(ReadCost(o.output_dir), 0.0, 1e-4);
}

TEST(SolveTest, SemiDiscreteOneDimensionalKnownPotential) {
  // Source: 2001 points uniform on [0, 1]; targets 0.25 and 0.75 with weights 1/2: the
  // optimal cells are [0, 1/2) and [1/2, 1], so psi_1 - psi_0 = 0 by symmetry.
  RowMatrixXf x(2001, 1), y(2, 1);
  for (int i = 0; i <= 2000; ++i) x(i, 0) = i / 2000.0f;
  y << 0.25, 0.75;
  SolveOptions o;
  o.source = WriteMatrix("sdx.npy", x);
  o.target = WriteMatrix("sdy.npy", y);
  o.method = "semi_discrete";
  o.epsilon = 0.0f;
  o.semi_discrete_steps = 20000;
  o.semi_discrete_gamma = 0.1f;
  o.output_dir = Tmp("sd_out");
  absl::StatusOr<std::string> out = RunSolve(o);
  ASSERT_TRUE(out.ok()) << out.status();
  absl::StatusOr<eval::NpyFloatArray> psi = eval::ReadNpy(o.output_dir + "/psi.npy");
  ASSERT_TRUE(psi.ok());
  EXPECT_NEAR(psi->values[1] - psi->values[0], 0.0, 0.02);
  // W2^2 of U[0,1] to {1/4, 3/4}: each half has variance 1/48.
  EXPECT_NEAR(ReadCost(o.output_dir), 1.0 / 48, 2e-3);
}

TEST(SolveTest, BadInputNamesTheFileOrFlag) {
  SolveOptions o;
  o.output_dir = Tmp("bad");
  EXPECT_NE(RunSolve(o).status().message().find("--source"), std::string::npos);
  const std::string bad = Tmp("bad.npy");
  std::ofstream(bad) << "not a numpy file";
  o.source = bad;
  o.target = bad;
  absl::StatusOr<std::string> r = RunSolve(o);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bad.npy"), std::string::npos) << r.status();
  RowMatrixXf x2(2, 2), x3(2, 3);
  x2.setZero();
  x3.setZero();
  o.source = WriteMatrix("d2.npy", x2);
  o.target = WriteMatrix("d3.npy", x3);
  r = RunSolve(o);
  EXPECT_NE(r.status().message().find("dimension"), std::string::npos) << r.status();
  o.target = o.source;
  o.method = "magic";
  EXPECT_NE(RunSolve(o).status().message().find("--method"), std::string::npos);
  o.method = "sinkhorn";
  o.epsilon = 0;
  EXPECT_NE(RunSolve(o).status().message().find("--epsilon"), std::string::npos);
  o.epsilon = 0.1f;
  o.cost = "lp";
  o.p = 0.5f;
  EXPECT_NE(RunSolve(o).status().message().find("--cost"), std::string::npos);
  o.cost = "sqeuclidean";
  RowMatrixXf w(1, 2);
  w << 0.9f, 0.3f;
  o.source_weights = WriteMatrix("w.npy", w);
  EXPECT_FALSE(RunSolve(o).ok());
}

}  // namespace
}  // namespace otgen::ot
