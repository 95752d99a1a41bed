#include "apps/common/network.h"

#include <cmath>

#include "apps/common/config.h"
#include "gtest/gtest.h"
#include "nn/autograd.h"

namespace otgen::apps {
namespace {

NetworkConfig Parse(const std::string& text) {
  NetworkConfig config;
  const absl::Status s = ParseConfig(text, "test", &config);
  EXPECT_TRUE(s.ok()) << s;
  return config;
}

constexpr char kDcganGenerator[] = R"pb(
  layers { linear { out_features: 12544 } }
  layers { batch_norm {} }
  layers { activation: RELU }
  layers { reshape { shape: [ 256, 7, 7 ] } }
  layers { conv_transpose { out_channels: 128 kernel: 4 stride: 2 padding: 1 } }
  layers { batch_norm {} }
  layers { activation: RELU }
  layers { conv_transpose { out_channels: 64 kernel: 4 stride: 2 padding: 1 } }
  layers { batch_norm {} }
  layers { activation: RELU }
  layers { conv_transpose { out_channels: 1 kernel: 3 stride: 1 padding: 1 } }
  layers { activation: TANH }
  init: DCGAN
)pb";

TEST(NetworkTest, DcganGeneratorFromALayerList) {
  nn::Rng rng(1);
  auto net = BuildNetwork(Parse(kDcganGenerator), {100}, {1, 28, 28}, rng, "generator");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ((*net)->size(), 12);
  nn::Var z(nn::Tensor::Uniform({3, 100}, -1, 1, rng));
  auto x = (*net)->Forward(z);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->shape(), (nn::Shape{3, 1, 28, 28}));
  for (float v : x->value().span()) EXPECT_LE(std::abs(v), 1.0f);
  // DCGAN initialization: conv weights N(0, 0.02^2), biases 0.
  for (const auto& [name, p] : (*net)->NamedParameters()) {
    absl::Span<const float> v = p.value().span();
    double sum = 0, sq = 0;
    for (float e : v) sum += e, sq += double{e} * e;
    const double mean = sum / v.size(), var = sq / v.size() - mean * mean;
    if (name == "1.weight" || name == "5.weight" || name == "8.weight") {  // batch norm: N(1, 0.02^2)
      EXPECT_NEAR(mean, 1.0, 0.01) << name;
    } else if (name.find("bias") != std::string::npos) {
      EXPECT_EQ(sq, 0.0) << name;
    } else if (v.size() > 10000) {
      EXPECT_NEAR(std::sqrt(var), 0.02, 0.002) << name;
      EXPECT_NEAR(mean, 0.0, 0.002) << name;
    }
  }
}

TEST(NetworkTest, MlpShorthandInfersTheOutputAndReshapes) {
  nn::Rng rng(2);
  auto net = BuildNetwork(Parse("mlp { hidden: [256, 512, 1024] output_activation: TANH }"), {100}, {1, 28, 28},
                          rng, "generator");
  ASSERT_TRUE(net.ok()) << net.status();
  // 100-256-512-1024-784, seed 000's MLP generator.
  EXPECT_EQ((*net)->NumParameters(), 25856 + 131584 + 525312 + 803600);
  auto x = (*net)->Forward(nn::Var(nn::Tensor::Zeros({2, 100})));
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->shape(), (nn::Shape{2, 1, 28, 28}));

  // A critic on images flattens first: 784-512-256-128-1 (SDOTNN's psi).
  auto critic = BuildNetwork(Parse("mlp { hidden: [512, 256, 128] out_features: 1 }"), {1, 28, 28}, {1}, rng, "psi");
  ASSERT_TRUE(critic.ok()) << critic.status();
  EXPECT_EQ((*critic)->NumParameters(), 784 * 512 + 512 + 512 * 256 + 256 + 256 * 128 + 128 + 129);
}

TEST(NetworkTest, ErrorsNameTheField) {
  nn::Rng rng(3);
  auto linear_on_images = BuildNetwork(Parse("layers { linear { out_features: 3 } }"), {1, 28, 28}, {}, rng, "critic");
  ASSERT_FALSE(linear_on_images.ok());
  EXPECT_NE(linear_on_images.status().message().find("critic.layers[0]"), std::string::npos)
      << linear_on_images.status();

  auto bad_reshape = BuildNetwork(Parse("layers { reshape { shape: [3, 3] } }"), {10}, {}, rng, "g");
  ASSERT_FALSE(bad_reshape.ok());
  EXPECT_NE(bad_reshape.status().message().find("g.layers[0].reshape.shape"), std::string::npos)
      << bad_reshape.status();

  auto wrong_output = BuildNetwork(Parse("mlp { hidden: 4 out_features: 5 }"), {2}, {6}, rng, "g");
  ASSERT_FALSE(wrong_output.ok());
  EXPECT_NE(wrong_output.status().message().find("does not match the expected [6]"), std::string::npos)
      << wrong_output.status();

  auto kernel0 = ValidateNetwork(Parse("layers { conv { out_channels: 4 kernel: 0 } }"), {1, 8, 8}, {}, "d");
  EXPECT_NE(kernel0.message().find("d.layers[0].conv.kernel"), std::string::npos) << kernel0;

  auto both = ValidateNetwork(Parse("mlp { hidden: 4 } layers { flatten: true }"), {2}, {}, "g");
  EXPECT_NE(both.message().find("either"), std::string::npos) << both;

  auto empty = ValidateNetwork(NetworkConfig(), {2}, {}, "g");
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);

  auto negative = ValidateNetwork(Parse("mlp { hidden: -4 out_features: 1 }"), {2}, {}, "g");
  EXPECT_NE(negative.message().find("g.mlp.hidden[0]"), std::string::npos) << negative;
}

}  // namespace
}  // namespace otgen::apps
