// The process-wide oneDNN engine and stream, the primitive cache, and the thread setting.
//
// Every oneDNN-backed kernel asks `OneDnnContext::Get()` for the CPU engine and stream and
// looks its primitive up by a key that encodes the op and its shapes, so a network pays
// primitive creation once per distinct shape. oneDNN here is built with OpenMP:
// `SetNumThreads(n)` (the apps' --threads flag) sets the OpenMP thread count, and results
// are deterministic for a fixed thread count.
//
//   auto& ctx = otgen::nn::OneDnnContext::Get();
//   auto prim = ctx.GetOrCreate<dnnl::matmul>(key, [&] { return dnnl::matmul(pd); });
//   prim.execute(ctx.stream(), args);
//   ctx.stream().wait();
#ifndef OTGEN_NN_ONEDNN_CONTEXT_H_
#define OTGEN_NN_ONEDNN_CONTEXT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace otgen::nn {

class OneDnnContext {
 public:
  static OneDnnContext& Get();

  const dnnl::engine& engine() const { return engine_; }
  dnnl::stream& stream() { return stream_; }

  // Returns the primitive cached under `key`, creating it with `make` on first use.
  template <typename Primitive>
  Primitive GetOrCreate(const std::string& key, const std::function<Primitive()>& make) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return Primitive(*static_cast<Primitive*>(it->second.get()));
    auto p = std::make_shared<Primitive>(make());
    cache_[key] = p;
    return *p;
  }

  size_t cache_size() const { return cache_.size(); }

 private:
  OneDnnContext();
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<void>> cache_;
};

// Number of threads oneDNN (OpenMP) uses; n <= 0 keeps the default (all cores).
void SetNumThreads(int n);
int GetNumThreads();

// Work below which an op runs on one thread: forking and joining an OpenMP team costs a few
// microseconds, more than a second thread saves on an element-wise op over fewer than
// kMinParallelElements elements or a product of fewer than kMinParallelMacs multiply-adds
// (measured on the W2GAN 2-D networks, batch 256, widths 128).
inline constexpr int64_t kMinParallelElements = int64_t{1} << 15;
inline constexpr int64_t kMinParallelMacs = int64_t{1} << 20;

// Limits the OpenMP regions the calling thread starts (oneDNN primitives created and run in
// the scope included: their cache keys carry the thread count) to one thread when `work` is
// below `min_parallel_work`; otherwise changes nothing. Restores the count on exit.
class ScopedSerialBelow {
 public:
  ScopedSerialBelow(int64_t work, int64_t min_parallel_work);
  ~ScopedSerialBelow();
  ScopedSerialBelow(const ScopedSerialBelow&) = delete;
  ScopedSerialBelow& operator=(const ScopedSerialBelow&) = delete;

 private:
  int previous_ = 0;  // 0: nothing to restore
};

}  // namespace otgen::nn

#endif  // OTGEN_NN_ONEDNN_CONTEXT_H_
