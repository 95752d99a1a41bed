#include "apps/eval/domain_adaptation.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "apps/eval/random_subset.h"
#include "apps/eval/test_util.h"
#include "gtest/gtest.h"

namespace otgen::eval {
namespace {

using testutil::StatusIs;

data::InMemoryDataset Points(const std::vector<float>& xy, const std::vector<int32_t>& labels) {
  const int64_t n = static_cast<int64_t>(labels.size());
  absl::StatusOr<data::InMemoryDataset> d =
      data::InMemoryDataset::Create(nn::Tensor::FromVector({n, 2}, xy), labels, 10);
  EXPECT_TRUE(d.ok()) << d.status();
  return *d;
}

// Source: class 0 near x = 0, class 1 near x = 10. Target: the same classes shifted by +100
// in x (class 0 at x = 100, class 1 at x = 110).
data::InMemoryDataset Source() { return Points({0, 0, 0, 1, 10, 0, 10, 1}, {0, 0, 1, 1}); }
data::InMemoryDataset Target() { return Points({100, 0.2f, 100, 0.9f, 110, 0.1f}, {0, 0, 1}); }

ImageMap Shift(float dx, int* calls = nullptr) {
  return [dx, calls](const ot::RowMatrixXf& x) -> absl::StatusOr<ot::RowMatrixXf> {
    if (calls != nullptr) ++*calls;
    ot::RowMatrixXf y = x;
    y.col(0).array() += dx;
    return y;
  };
}

TEST(DomainAdaptationTest, NoMappingAndAPerfectMap) {
  // Without a map every target point is nearest to a class-1 source point (x = 10): only
  // the one class-1 target point is right.
  absl::StatusOr<TransferResult> none = OneNearestNeighborTransfer("toy", Source(), Target());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->task, "toy");
  EXPECT_FALSE(none->mapped);
  EXPECT_EQ(none->train_size, 4);
  EXPECT_EQ(none->test_size, 3);
  EXPECT_EQ(none->correct, 1);
  EXPECT_DOUBLE_EQ(none->accuracy, 1.0 / 3.0);
  // Shifting the source by +100 aligns the domains: all right.
  int calls = 0;
  absl::StatusOr<TransferResult> mapped = OneNearestNeighborTransfer("toy", Source(), Target(), Shift(100, &calls));
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(mapped->mapped);
  EXPECT_EQ(mapped->correct, 3);
  EXPECT_DOUBLE_EQ(mapped->accuracy, 1.0);
  // Shifting by +110 puts the class-0 source points at x = 110: the class-1 target point
  // (110, 0.1) is then nearest to (110, 0), labelled 0; the two class-0 targets stay right.
  absl::StatusOr<TransferResult> over = OneNearestNeighborTransfer("toy", Source(), Target(), Shift(110));
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(over->correct, 2);
}

TEST(DomainAdaptationTest, RejectsBadInputs) {
  const auto code = absl::StatusCode::kInvalidArgument;
  const data::InMemoryDataset unlabelled = *data::InMemoryDataset::Create(nn::Tensor::Zeros({3, 2}));
  EXPECT_TRUE(StatusIs(OneNearestNeighborTransfer("t", unlabelled, Target()).status(), code, {"source_train"}));
  EXPECT_TRUE(StatusIs(OneNearestNeighborTransfer("t", Source(), unlabelled).status(), code, {"target_test"}));
  const data::InMemoryDataset three_d = *data::InMemoryDataset::Create(nn::Tensor::Zeros({3, 3}), {0, 1, 2}, 10);
  EXPECT_TRUE(StatusIs(OneNearestNeighborTransfer("t", Source(), three_d).status(), code, {"target_test", "[3]"}));
  ImageMap drop_row = [](const ot::RowMatrixXf& x) -> absl::StatusOr<ot::RowMatrixXf> {
    return ot::RowMatrixXf(x.topRows(x.rows() - 1));
  };
  EXPECT_TRUE(StatusIs(OneNearestNeighborTransfer("t", Source(), Target(), drop_row).status(), code,
                       {"map", "4 x 2", "3 x 2"}));
  ImageMap failing = [](const ot::RowMatrixXf&) -> absl::StatusOr<ot::RowMatrixXf> {
    return absl::InternalError("generator exploded");
  };
  EXPECT_TRUE(StatusIs(OneNearestNeighborTransfer("t", Source(), Target(), failing).status(),
                       absl::StatusCode::kInternal, {"generator exploded"}));
  EXPECT_TRUE(StatusIs(DomainAdaptationDataOptions{.mnist_subset_size = 0}.Validate(), code, {"mnist_subset_size"}));
  EXPECT_TRUE(StatusIs(LoadDomainAdaptationData(testutil::TempPath("no_usps.h5"), "").status(),
                       absl::StatusCode::kNotFound, {"no_usps.h5"}));
}

TEST(DomainAdaptationTest, TheThreeTasksUseTheirMaps) {
  DomainAdaptationData d;
  d.usps_train = Source();                                  // 4 images
  d.mnist_test = Target();                                  // 3 images
  d.mnist_subset_indices = {2, 0};
  d.mnist_test_subset = *d.mnist_test.Subset(d.mnist_subset_indices);
  d.mnist_train = Target();                                 // "MNIST -> USPS": target -> source
  d.usps_test = Source();
  int forward = 0, backward = 0;
  absl::StatusOr<std::vector<TransferResult>> r =
      EvaluateDomainAdaptation(d, Shift(100, &forward), Shift(-100, &backward));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(forward, 2);
  EXPECT_EQ(backward, 1);
  EXPECT_EQ((*r)[0].task, "USPS -> MNIST (2 random test images)");
  EXPECT_EQ((*r)[0].test_size, 2);
  EXPECT_EQ((*r)[1].task, "USPS -> MNIST (all 3 test images)");
  EXPECT_EQ((*r)[1].test_size, 3);
  EXPECT_EQ((*r)[2].task, "MNIST -> USPS");
  EXPECT_EQ((*r)[2].train_size, 3);
  EXPECT_EQ((*r)[2].test_size, 4);
  for (const TransferResult& t : *r) EXPECT_DOUBLE_EQ(t.accuracy, 1.0) << t.task;

  // No mapping. USPS -> MNIST predicts class 1 everywhere: 1 of the 2 subset images
  // {(110, 0.1) class 1, (100, 0.2) class 0}, 1 of all 3. MNIST -> USPS: every source point
  // (x = 0 or 10) is nearest to a target point at x = 100, labelled 0: 2 of 4 right.
  absl::StatusOr<std::vector<TransferResult>> base = EvaluateDomainAdaptation(d, {}, {});
  ASSERT_TRUE(base.ok());
  EXPECT_EQ((*base)[0].correct, 1);
  EXPECT_DOUBLE_EQ((*base)[0].accuracy, 0.5);
  EXPECT_DOUBLE_EQ((*base)[1].accuracy, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ((*base)[2].accuracy, 0.5);
  const std::string table = FormatTransferResults(*base);
  EXPECT_NE(table.find("USPS -> MNIST (all 3 test images)"), std::string::npos) << table;
  EXPECT_NE(table.find("33.33%"), std::string::npos) << table;
  EXPECT_NE(table.find("50.00%"), std::string::npos) << table;
  EXPECT_NE(table.find("none"), std::string::npos) << table;
}

TEST(RandomSubsetTest, DistinctSeededAndUniform) {
  const std::vector<int64_t> a = RandomSubsetIndices(10000, 2007, 0);
  ASSERT_EQ(a.size(), 2007u);
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 2007u);
  for (int64_t i : a) EXPECT_TRUE(i >= 0 && i < 10000);
  EXPECT_EQ(a, RandomSubsetIndices(10000, 2007, 0));
  EXPECT_NE(a, RandomSubsetIndices(10000, 2007, 1));
  std::vector<int64_t> perm = RandomSubsetIndices(50, 50, 3);
  std::sort(perm.begin(), perm.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(perm[i], i);
  EXPECT_TRUE(RandomSubsetIndices(5, 0, 1).empty());
  // Each index is drawn with probability k / n = 0.3: over 20000 seeds, a binomial count with
  // std sqrt(20000 * 0.3 * 0.7) = 64.8; allow 5 std. The first position is uniform over n.
  std::vector<int> included(10, 0), first(10, 0);
  for (uint64_t seed = 0; seed < 20000; ++seed) {
    const std::vector<int64_t> s = RandomSubsetIndices(10, 3, seed);
    for (int64_t i : s) ++included[i];
    ++first[s[0]];
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_NEAR(included[i], 6000, 5 * 64.8) << i;
    EXPECT_NEAR(first[i], 2000, 5 * 42.4) << i;  // std sqrt(20000 * 0.1 * 0.9)
  }
}

// The real data, when OTGEN_USPS_H5 names the file (e.g.
// `bazel test --test_env=OTGEN_USPS_H5=/path/to/usps.h5 //apps/eval:domain_adaptation_test`).
TEST(DomainAdaptationRealDataTest, LoadsBothDomainsAt16x16InMinusOneToOne) {
  const char* env = std::getenv("OTGEN_USPS_H5");
  if (env == nullptr || env[0] == '\0') GTEST_SKIP() << "OTGEN_USPS_H5 is not set";
  if (!std::ifstream(env).good()) GTEST_SKIP() << "OTGEN_USPS_H5=" << env << " does not exist";
  absl::StatusOr<DomainAdaptationData> d = LoadDomainAdaptationData(env, "");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->usps_train.size(), 7291);
  EXPECT_EQ(d->usps_test.size(), 2007);
  EXPECT_EQ(d->mnist_train.size(), 60000);
  EXPECT_EQ(d->mnist_test.size(), 10000);
  EXPECT_EQ(d->mnist_test_subset.size(), 2007);
  EXPECT_EQ(d->mnist_subset_indices, RandomSubsetIndices(10000, 2007, 0));
  for (const data::InMemoryDataset* s : {&d->usps_train, &d->usps_test, &d->mnist_train, &d->mnist_test}) {
    EXPECT_EQ(s->example_shape(), (nn::Shape{256}));
    const auto [lo, hi] = std::minmax_element(s->examples().span().begin(), s->examples().span().end());
    // Within float rounding of [-1, 1] (area averaging and 2 v - 1 round).
    EXPECT_GE(*lo, -1.0f - 1e-6f) << s->DebugString();
    EXPECT_LE(*hi, 1.0f + 1e-6f) << s->DebugString();
    EXPECT_GT(*hi, 0.99f) << s->DebugString();
    EXPECT_EQ(*lo, -1.0f);  // background
  }
  // Subset row r is test image indices[r].
  EXPECT_EQ(d->mnist_test_subset.label(5), d->mnist_test.label(d->mnist_subset_indices[5]));
}

}  // namespace
}  // namespace otgen::eval
