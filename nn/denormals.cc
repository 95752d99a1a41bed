#include "nn/denormals.h"

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define OTGEN_HAS_MXCSR 1
#else
#define OTGEN_HAS_MXCSR 0
#endif

namespace otgen::nn {
namespace {
constexpr unsigned int kFlushToZero = 0x8000;      // MXCSR bit 15: FTZ
constexpr unsigned int kDenormalsAreZero = 0x0040;  // MXCSR bit 6: DAZ
}  // namespace

ScopedFlushDenormals::ScopedFlushDenormals() {
#if OTGEN_HAS_MXCSR
  saved_ = _mm_getcsr();
  _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero);
#endif
}

ScopedFlushDenormals::~ScopedFlushDenormals() {
#if OTGEN_HAS_MXCSR
  _mm_setcsr(saved_);
#endif
}

bool FlushingDenormals() {
#if OTGEN_HAS_MXCSR
  const unsigned int bits = kFlushToZero | kDenormalsAreZero;
  return (_mm_getcsr() & bits) == bits;
#else
  return false;
#endif
}

}  // namespace otgen::nn
