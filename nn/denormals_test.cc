#include "nn/denormals.h"

#include <cfloat>
#include <cmath>

#include "gtest/gtest.h"

namespace otgen::nn {
namespace {

// Opaque to the optimizer, so the arithmetic happens at run time under the current MXCSR.
float Multiply(float a, float b) {
  volatile float x = a, y = b;
  return x * y;
}

TEST(ScopedFlushDenormalsTest, FlushesDenormalResultsAndInputsOnlyInsideTheScope) {
  const float tiny = FLT_MIN;  // 2^-126, the smallest normal float
  ASSERT_FALSE(FlushingDenormals());
  const float denormal = Multiply(tiny, 0.5f);
  EXPECT_EQ(std::fpclassify(denormal), FP_SUBNORMAL);
  {
    ScopedFlushDenormals ftz;
    EXPECT_TRUE(FlushingDenormals());
    EXPECT_EQ(Multiply(tiny, 0.5f), 0.0f);     // FTZ: a denormal result is 0
    EXPECT_EQ(Multiply(denormal, 4.0f), 0.0f);  // DAZ: a denormal input reads as 0
    EXPECT_EQ(Multiply(tiny, 2.0f), 2.0f * FLT_MIN);  // normal values are untouched
    {
      ScopedFlushDenormals nested;
      EXPECT_TRUE(FlushingDenormals());
    }
    EXPECT_TRUE(FlushingDenormals());  // the inner guard restored the outer state
  }
  EXPECT_FALSE(FlushingDenormals());
  EXPECT_EQ(std::fpclassify(Multiply(tiny, 0.5f)), FP_SUBNORMAL);
  EXPECT_EQ(Multiply(denormal, 4.0f), 2.0f * FLT_MIN);
}

}  // namespace
}  // namespace otgen::nn
