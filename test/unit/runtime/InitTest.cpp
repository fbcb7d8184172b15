//===- test/unit/runtime/InitTest.cpp - Parameter initializers ------------===//
//
// Sample moments against the formulas (lecture 2.7 for Xavier), exact
// constants, reproducibility, and the messages for bad initializers.
//
//===----------------------------------------------------------------------===//
#include "runtime/Init.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <stdexcept>
#include <tuple>
#include <vector>

using namespace gradc::rt;

namespace {

/// A param [rows, cols] laid out [fan_out, fan_in], with explicit fans.
TensorSpec weight(const std::string &kind, std::vector<double> args = {}, int64_t rows = 400,
                  int64_t cols = 300) {
  TensorSpec spec;
  spec.name = "W";
  spec.role = Role::Param;
  spec.dims = {rows, cols};
  spec.init.kind = kind;
  spec.init.args = std::move(args);
  spec.init.fanIn = cols;
  spec.init.fanOut = rows;
  return spec;
}

struct Moments {
  double mean = 0, variance = 0, min = 0, max = 0;
};

Moments moments(const std::vector<float> &values) {
  double sum = 0, sumSquares = 0;
  for (float v : values) {
    sum += v;
    sumSquares += double(v) * v;
  }
  Moments m;
  m.mean = sum / values.size();
  m.variance = sumSquares / values.size() - m.mean * m.mean;
  m.min = *std::min_element(values.begin(), values.end());
  m.max = *std::max_element(values.begin(), values.end());
  return m;
}

std::vector<float> sample(const TensorSpec &spec, uint64_t seed = 1, uint32_t index = 0) {
  std::vector<float> data(spec.numel());
  initializeTensor(spec, data.data(), seed, index);
  return data;
}

/// Mean within 5 standard errors of 0, variance within 3% of `variance`.
void expectMoments(const TensorSpec &spec, double mean, double variance) {
  SCOPED_TRACE(spec.init.kind);
  Moments m = moments(sample(spec));
  double standardError = std::sqrt(variance / spec.numel());
  EXPECT_NEAR(m.mean, mean, 5 * standardError);
  EXPECT_NEAR(m.variance, variance, 0.03 * variance);
}

TEST(Init, XavierNormalHasTheLectureVariance) {
  // Lecture 2.7: sigma^2 = 2 / (n_in + n_out).
  expectMoments(weight("xavier_normal"), 0.0, 2.0 / (300 + 400));
}

TEST(Init, XavierUniformHasTheLectureBounds) {
  // Lecture 2.7: U(-a, a), a = sqrt(6 / (n_in + n_out)), variance a^2 / 3.
  double a = std::sqrt(6.0 / (300 + 400));
  TensorSpec spec = weight("xavier_uniform");
  expectMoments(spec, 0.0, a * a / 3);
  Moments m = moments(sample(spec));
  EXPECT_GE(m.min, -a);
  EXPECT_LE(m.max, a);
  EXPECT_LT(m.min, -0.999 * a); // 120,000 draws reach the ends
  EXPECT_GT(m.max, 0.999 * a);
}

TEST(Init, HeInitializers) {
  expectMoments(weight("he_normal"), 0.0, 2.0 / 300);
  double a = std::sqrt(6.0 / 300);
  expectMoments(weight("he_uniform"), 0.0, a * a / 3);
  Moments m = moments(sample(weight("he_uniform")));
  EXPECT_GE(m.min, -a);
  EXPECT_LE(m.max, a);
}

TEST(Init, NormalAndUniformWithArguments) {
  expectMoments(weight("normal", {0.5}), 0.0, 0.25);
  TensorSpec uniform = weight("uniform", {-1.0, 3.0});
  Moments m = moments(sample(uniform));
  EXPECT_NEAR(m.mean, 1.0, 0.02);
  EXPECT_NEAR(m.variance, 16.0 / 12, 0.03 * 16 / 12);
  EXPECT_GE(m.min, -1.0);
  EXPECT_LE(m.max, 3.0);
}

TEST(Init, Constants) {
  for (auto [kind, args, value] : {std::tuple{"zeros", std::vector<double>{}, 0.0f},
                                   std::tuple{"ones", std::vector<double>{}, 1.0f},
                                   std::tuple{"constant", std::vector<double>{2.5}, 2.5f},
                                   std::tuple{"", std::vector<double>{}, 0.0f}}) {
    std::vector<float> data = sample(weight(kind, args, 3, 5));
    EXPECT_EQ(data, std::vector<float>(15, value)) << "'" << kind << "'";
  }
  TensorSpec counter = weight("constant", {7}, 2, 2);
  counter.isInt = true;
  std::vector<int32_t> ints(4);
  initializeTensor(counter, ints.data(), 1, 0);
  EXPECT_EQ(ints, std::vector<int32_t>(4, 7));
}

TEST(Init, SameSeedSameBits) {
  for (const char *kind : {"xavier_normal", "xavier_uniform", "he_normal", "he_uniform"}) {
    std::vector<float> first = sample(weight(kind), 123, 4), second = sample(weight(kind), 123, 4);
    EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)), 0) << kind;
  }
}

TEST(Init, DifferentIndexOrSeedDifferentValues) {
  TensorSpec spec = weight("xavier_normal", {}, 20, 30);
  std::vector<float> base = sample(spec, 1, 0);
  std::vector<float> otherIndex = sample(spec, 1, 1);
  std::vector<float> otherSeed = sample(spec, 2, 0);
  auto equalCount = [&](const std::vector<float> &other) {
    int count = 0;
    for (size_t i = 0; i < base.size(); ++i)
      count += base[i] == other[i];
    return count;
  };
  EXPECT_EQ(equalCount(otherIndex), 0);
  EXPECT_EQ(equalCount(otherSeed), 0);
}

TEST(Init, PrefixOfALargerTensorIsTheSame) {
  // Element i depends only on (seed, index, i): a [2, 3] tensor is the first
  // six elements of a [4, 3] one with the same fans.
  TensorSpec small = weight("normal", {1.0}, 2, 3), large = weight("normal", {1.0}, 4, 3);
  std::vector<float> a = sample(small), b = sample(large);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
}

// Pinned bits (see RandomTest's GoldenBits): the first weights of a model
// with seed 1 must not change between versions.
TEST(Init, GoldenBits) {
  std::vector<float> data = sample(weight("xavier_normal", {}, 5, 4), 1, 0);
  std::vector<uint32_t> bits;
  for (int i = 0; i < 6; ++i)
    bits.push_back(std::bit_cast<uint32_t>(data[i]));
  // An independent Box-Muller in Python (libm log, cos, sin) gives the same
  // floats for these six.
  const std::vector<uint32_t> expected = {0xbdd216d0, 0xbd16aae2, 0xbe28ce72,
                                          0x3f1d40c6, 0x3eb4979c, 0xbefcd923};
  EXPECT_EQ(bits, expected);
}

TEST(Init, FansDefaultToTheShape) {
  TensorSpec spec = weight("xavier_normal", {}, 8, 3);
  spec.init.fanIn = spec.init.fanOut = 0;
  Fans fans = initializerFans(spec);
  EXPECT_EQ(fans.in, 3);
  EXPECT_EQ(fans.out, 8);
  spec.dims = {8, 3, 5, 5}; // a convolution kernel: receptive field 25
  fans = initializerFans(spec);
  EXPECT_EQ(fans.in, 75);
  EXPECT_EQ(fans.out, 200);
  spec.dims = {6};
  fans = initializerFans(spec);
  EXPECT_EQ(fans.in, 6);
  EXPECT_EQ(fans.out, 6);
}

TEST(Init, BadInitializersAreClearErrors) {
  EXPECT_EQ(checkInitializer(weight("xavier_normal")), "");
  EXPECT_EQ(checkInitializer(weight("glorot")),
            "tensor 'W': unknown initializer 'glorot' (known: xavier_normal, xavier_uniform, "
            "he_normal, he_uniform, normal, uniform, zeros, ones, constant)");
  EXPECT_EQ(checkInitializer(weight("uniform", {1.0})),
            "tensor 'W': initializer 'uniform' takes 2 arguments, got 1");
  EXPECT_EQ(checkInitializer(weight("uniform", {2.0, 1.0})),
            "tensor 'W': uniform(a, b) needs a <= b, got a = 2, b = 1");
  EXPECT_EQ(checkInitializer(weight("normal", {-1.0})),
            "tensor 'W': normal(sigma) needs sigma >= 0, got -1");
  TensorSpec ints = weight("he_normal");
  ints.isInt = true;
  EXPECT_EQ(checkInitializer(ints), "tensor 'W' is i32; the random initializer 'he_normal' is "
                                    "for f32 tensors (use zeros, ones or constant)");
  std::vector<float> data(400 * 300);
  try {
    initializeTensor(weight("glorot"), data.data(), 1, 0);
    FAIL() << "no exception";
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find("unknown initializer 'glorot'"), std::string::npos);
  }
}

} // namespace
