// Prints the no-mapping ("source") baselines of the W2GAN domain-adaptation experiment
// (seed 002, Table 1; DATASETS.md, "Domain adaptation"): 1-nearest-neighbour accuracy on raw
// 16x16 pixels in [-1, 1], fitted on the labelled source training set and tested on the
// target test set, for USPS -> MNIST (2007 random MNIST test images, and all 10000) and
// MNIST -> USPS (the 2007 USPS test images). The paper reports 33.31% and 70.05%.
//   bazel run -c opt //apps/eval:domain_adaptation_baseline -- --usps=/path/to/usps.h5
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "apps/eval/domain_adaptation.h"
#include "apps/common/user_path.h"
#include "apps/eval/sample_scoring.h"
#include "nn/onednn_context.h"

ABSL_FLAG(std::string, usps, "", "The USPS HDF5 file (/train/data, /train/target, /test/data, /test/target).");
ABSL_FLAG(std::string, mnist_dir, "", "Folder with the MNIST IDX files (default: the @mnist runfiles).");
ABSL_FLAG(uint64_t, subset_seed, 0, "Seed choosing the 2007 random MNIST test images.");
ABSL_FLAG(int, threads, 0, "oneDNN threads (0 = all cores).");

namespace {

int Run() {
  const std::string usps = otgen::apps::ResolveInputPath(absl::GetFlag(FLAGS_usps));
  if (usps.empty()) {
    std::fprintf(stderr, "domain_adaptation_baseline: --usps: expected the path of the USPS HDF5 file\n");
    return 2;
  }
  const int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) {
    std::fprintf(stderr, "domain_adaptation_baseline: --threads: expected >= 0, got %d\n", threads);
    return 2;
  }
  if (threads > 0) otgen::nn::SetNumThreads(threads);
  std::string mnist_dir = otgen::apps::ResolveInputPath(absl::GetFlag(FLAGS_mnist_dir));
  const absl::Time start = absl::Now();
  otgen::eval::DomainAdaptationDataOptions options;
  options.mnist_subset_seed = absl::GetFlag(FLAGS_subset_seed);
  absl::StatusOr<otgen::eval::DomainAdaptationData> data =
      otgen::eval::LoadDomainAdaptationData(usps, mnist_dir, options);
  if (!data.ok()) {
    std::fprintf(stderr, "domain_adaptation_baseline: %s\n", data.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::vector<otgen::eval::TransferResult>> results =
      otgen::eval::EvaluateDomainAdaptation(*data, {}, {});
  if (!results.ok()) {
    std::fprintf(stderr, "domain_adaptation_baseline: %s\n", results.status().ToString().c_str());
    return 1;
  }
  std::printf("1-NN on raw 16x16 pixels in [-1, 1], no mapping (W2GAN Table 1 \"source\"; paper: USPS -> MNIST "
              "33.31%%, MNIST -> USPS 70.05%%)\nMNIST test subset seed %llu\n%s(%.1f s)\n",
              static_cast<unsigned long long>(options.mnist_subset_seed),
              otgen::eval::FormatTransferResults(*results).c_str(), absl::ToDoubleSeconds(absl::Now() - start));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Run();
}
