// A program in another Bazel workspace that uses otgen as a library: it loads the MNIST
// test split through //data:mnist and prints a short summary.
#include <cstdio>
#include <vector>

#include "data/mnist.h"

int main(int argc, char** argv) {
  (void)argc;
  absl::StatusOr<std::string> dir = otgen::data::FindMnistDirectory(argv[0]);
  if (!dir.ok()) {
    std::fprintf(stderr, "%s\n", dir.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<otgen::data::InMemoryDataset> test =
      otgen::data::LoadMnist(*dir, otgen::data::Split::kTest, {});
  if (!test.ok()) {
    std::fprintf(stderr, "%s\n", test.status().ToString().c_str());
    return 1;
  }
  std::vector<int> counts(10, 0);
  for (int64_t i = 0; i < test->size(); ++i) ++counts[test->label(i)];
  double mean = 0;
  for (float v : test->examples().span()) mean += v;
  mean /= static_cast<double>(test->examples().numel());
  std::printf("otgen consumer: MNIST test split, %lld examples, first label %d, mean pixel %.4f\n",
              static_cast<long long>(test->size()), test->label(0), mean);
  if (test->size() != 10000 || test->label(0) != 7) return 1;
  return 0;
}
