#include "nn/onednn_context.h"

#include <omp.h>

namespace otgen::nn {

OneDnnContext& OneDnnContext::Get() {
  // Never destroyed: kernels may run from other statics' destructors, and the engine must
  // outlive every primitive handed out from the cache.
  static OneDnnContext* const context = new OneDnnContext();
  return *context;
}

OneDnnContext::OneDnnContext() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}

void SetNumThreads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

int GetNumThreads() { return omp_get_max_threads(); }

ScopedSerialBelow::ScopedSerialBelow(int64_t work, int64_t min_parallel_work) {
  if (work >= min_parallel_work) return;
  const int threads = omp_get_max_threads();
  if (threads <= 1) return;
  previous_ = threads;
  omp_set_num_threads(1);
}

ScopedSerialBelow::~ScopedSerialBelow() {
  if (previous_ > 0) omp_set_num_threads(previous_);
}

}  // namespace otgen::nn
