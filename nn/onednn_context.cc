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

}  // namespace otgen::nn
