#include "nn/work_counter.h"

#include <atomic>
#include <cstdint>

namespace otgen::nn {
namespace {

std::atomic<int64_t> product_macs{0};

}  // namespace

void CountProductMacs(int64_t macs) { product_macs.fetch_add(macs, std::memory_order_relaxed); }

int64_t ProductMacs() { return product_macs.load(std::memory_order_relaxed); }

void ResetProductMacs() { product_macs.store(0, std::memory_order_relaxed); }

}  // namespace otgen::nn
