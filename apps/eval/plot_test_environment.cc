// Linked into a test (testonly, alwayslink), registers a GoogleTest environment that frees
// Cairo's and Fontconfig's process-wide caches after the last test, so that LeakSanitizer
// (--config=asan) reports no leak from a test that drew a plot. Nothing to call: depend on
// //apps/eval:plot_test_environment.
#include "apps/eval/plot.h"
#include "gtest/gtest.h"

namespace otgen::eval {
namespace {

class PlotFontCacheEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { ReleasePlotFontCaches(); }
};

const ::testing::Environment* const kPlotFontCacheEnvironment =
    ::testing::AddGlobalTestEnvironment(new PlotFontCacheEnvironment);

}  // namespace
}  // namespace otgen::eval
