//===- test/unit/runtime/DataTest.cpp - Data sets -------------------------===//
#include "runtime/Data.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <stdexcept>
#include <vector>

using namespace gradc::rt;

namespace {

bool sameBits(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(SyntheticRegression, ShapesAndDescription) {
  Dataset data = makeSyntheticRegression(100, {2, 3}, {2}, 1);
  EXPECT_EQ(data.size, 100);
  EXPECT_EQ(data.featureSize(), 6);
  EXPECT_EQ(data.targetSize(), 2);
  EXPECT_FALSE(data.intTargets);
  EXPECT_EQ(data.features.size(), 600u);
  EXPECT_EQ(data.targetsF.size(), 200u);
  EXPECT_EQ(data.check(), "");
  EXPECT_EQ(data.description,
            "synthetic regression: 100 examples, x ~ N(0, 1)^[2,3], y[2] = W2 tanh(W1 x + b1) + "
            "0.05 N(0, 1), teacher hidden 16, seed 1");
}

TEST(SyntheticRegression, SameSeedSameBitsOtherSeedOtherData) {
  Dataset a = makeSyntheticRegression(500, {8}, {}, 3);
  Dataset b = makeSyntheticRegression(500, {8}, {}, 3);
  Dataset c = makeSyntheticRegression(500, {8}, {}, 4);
  EXPECT_TRUE(sameBits(a.features, b.features));
  EXPECT_TRUE(sameBits(a.targetsF, b.targetsF));
  EXPECT_NE(a.features[0], c.features[0]);
  EXPECT_NE(a.targetsF[0], c.targetsF[0]);
}

TEST(SyntheticRegression, ASmallerSetIsAPrefixOfALargerOne) {
  Dataset small = makeSyntheticRegression(37, {5}, {3}, 9);
  Dataset large = makeSyntheticRegression(200, {5}, {3}, 9);
  EXPECT_TRUE(std::equal(small.features.begin(), small.features.end(), large.features.begin()));
  EXPECT_TRUE(std::equal(small.targetsF.begin(), small.targetsF.end(), large.targetsF.begin()));
}

TEST(SyntheticRegression, FeaturesAreStandardNormalAndNoiseHasItsScale) {
  const int64_t n = 20000;
  Dataset noisy = makeSyntheticRegression(n, {4}, {}, 2, 0.05);
  Dataset clean = makeSyntheticRegression(n, {4}, {}, 2, 0.0);
  double sum = 0, sumSquares = 0;
  for (float x : noisy.features) {
    sum += x;
    sumSquares += double(x) * x;
  }
  double count = double(noisy.features.size());
  EXPECT_NEAR(sum / count, 0.0, 0.02);
  EXPECT_NEAR(sumSquares / count, 1.0, 0.03);
  // Same x and teacher; the difference of the targets is the noise.
  EXPECT_TRUE(sameBits(noisy.features, clean.features));
  double noiseSquares = 0, signalSquares = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = double(noisy.targetsF[i]) - clean.targetsF[i];
    noiseSquares += d * d;
    signalSquares += double(clean.targetsF[i]) * clean.targetsF[i];
  }
  EXPECT_NEAR(std::sqrt(noiseSquares / n), 0.05, 0.002);
  // The teacher's output has variance about E[tanh^2] ~ 0.3-0.5, far above the noise.
  EXPECT_GT(signalSquares / n, 0.1);
}

// Pinned bits: the data set of a seed must not change between versions.
TEST(SyntheticRegression, GoldenBits) {
  Dataset data = makeSyntheticRegression(2, {3}, {}, 1);
  std::vector<uint32_t> features, targets;
  for (float x : data.features)
    features.push_back(std::bit_cast<uint32_t>(x));
  for (float y : data.targetsF)
    targets.push_back(std::bit_cast<uint32_t>(y));
  // An independent implementation in Python (libm log, cos, sin, tanh) gives
  // exactly these floats.
  const std::vector<uint32_t> expectedFeatures = {0xbe6fe43e, 0x3f9e7263, 0x3fc10b3e,
                                                  0x3e49cca9, 0xbf98012e, 0x3fed440d};
  const std::vector<uint32_t> expectedTargets = {0x3df7fb7b, 0x3e68ab91};
  EXPECT_EQ(features, expectedFeatures);
  EXPECT_EQ(targets, expectedTargets);
}

TEST(SyntheticRegression, BadArgumentsAreClearErrors) {
  auto messageOf = [](auto make) -> std::string {
    try {
      make();
    } catch (const std::invalid_argument &e) {
      return e.what();
    }
    return "no exception";
  };
  EXPECT_EQ(messageOf([] { makeSyntheticRegression(-1, {2}, {1}, 1); }),
            "synthetic regression: the size must be >= 0, got -1");
  EXPECT_EQ(messageOf([] {
              makeSyntheticRegression(10, {2, 0}, {1}, 1);
            }),
            "synthetic regression: dimensions must be positive, got [2,0]");
  EXPECT_EQ(messageOf([] { makeSyntheticRegression(10, {2}, {1}, 1, -0.5); }),
            "synthetic regression: the noise must be finite and >= 0, got -0.5");
}

TEST(Dataset, CheckFindsInconsistentSizes) {
  Dataset data = makeSyntheticRegression(10, {3}, {}, 1);
  data.features.pop_back();
  EXPECT_EQ(data.check(), "the data set has 10 examples of 3 features each but 29 features in all");
}

TEST(Dataset, SplitTrainTest) {
  Dataset data = makeSyntheticRegression(100, {3}, {2}, 1);
  TrainTestSplit split;
  std::string error;
  ASSERT_TRUE(splitTrainTest(data, 0.2, split, error)) << error;
  EXPECT_EQ(split.train.size, 80);
  EXPECT_EQ(split.test.size, 20);
  EXPECT_EQ(split.train.check(), "");
  EXPECT_EQ(split.test.check(), "");
  EXPECT_EQ(split.test.features[0], data.features[80 * 3]);
  EXPECT_EQ(split.test.targetsF[1], data.targetsF[80 * 2 + 1]);
  EXPECT_FALSE(splitTrainTest(data, 1.5, split, error));
  EXPECT_EQ(error, "the test fraction must be in [0, 1], got 1.5");
}

} // namespace

namespace {

using namespace gradc::rt;

TensorSpec tensor(const std::string &name, Role role, std::vector<int64_t> dims,
                  bool isInt = false) {
  TensorSpec s;
  s.name = name;
  s.role = role;
  s.dims = std::move(dims);
  s.isInt = isInt;
  return s;
}

Dataset labelled(std::vector<int32_t> labels, int64_t features) {
  Dataset data;
  data.size = int64_t(labels.size());
  data.featureDims = {features};
  data.intTargets = true;
  data.features.assign(size_t(data.size * features), 0.5f);
  data.targetsI = std::move(labels);
  data.description = "labels.csv (4 rows)";
  return data;
}

TEST(DataFits, ShapeFromKernels) {
  KernelSpec step;
  step.name = "train_step";
  step.batch = 128;
  step.buffers = {tensor("x", Role::Input, {128, 28, 28}), tensor("y", Role::Target, {128}, true),
                  tensor("loss", Role::Output, {})};
  KernelSpec eval = step;
  eval.name = "eval";
  eval.buffers.push_back(tensor("prediction", Role::Output, {128, 10}));
  DataShape shape;
  std::string error;
  ASSERT_TRUE(dataShapeOf(step, &eval, shape, error)) << error;
  EXPECT_EQ(shape.inputName, "x");
  EXPECT_EQ(shape.features, 784);
  EXPECT_EQ(shape.targetName, "y");
  EXPECT_TRUE(shape.intTargets);
  EXPECT_EQ(shape.targetSize, 1);
  EXPECT_EQ(shape.classes, 10);
  // Without a prediction there is no class count to check against.
  ASSERT_TRUE(dataShapeOf(step, nullptr, shape, error)) << error;
  EXPECT_EQ(shape.classes, 0);
  // One example per call: nothing to strip.
  KernelSpec single;
  single.name = "lecture";
  single.buffers = {tensor("x", Role::Input, {4}), tensor("y", Role::Target, {2})};
  ASSERT_TRUE(dataShapeOf(single, nullptr, shape, error)) << error;
  EXPECT_EQ(shape.features, 4);
  EXPECT_EQ(shape.targetSize, 2);
  EXPECT_FALSE(shape.intTargets);
  single.buffers.pop_back();
  EXPECT_FALSE(dataShapeOf(single, nullptr, shape, error));
  EXPECT_EQ(error, "kernel 'lecture' has no target: the model needs an input and a target to "
                   "train or evaluate on data");
}

TEST(DataFits, MessagesNameBothSides) {
  DataShape classifier{"x", 3, "y", true, 1, 10};
  std::string error;
  EXPECT_TRUE(checkDataFits(labelled({0, 9, 3, 4}, 3), "", classifier, error)) << error;

  EXPECT_FALSE(checkDataFits(labelled({0, 9, 3, 4}, 5), "fashion-mnist", classifier, error));
  EXPECT_EQ(error, "fashion-mnist has 5 features per example, the model's input 'x' takes 3");
  EXPECT_FALSE(checkDataFits(labelled({0, 9, 12, 4}, 3), "", classifier, error));
  EXPECT_EQ(error, "label 12 of example 2 of labels.csv (4 rows) is out of range for the model's "
                   "10 classes");
  EXPECT_FALSE(checkDataFits(labelled({0, -1, 3, 4}, 3), "", classifier, error));
  EXPECT_EQ(error, "label -1 of example 1 of labels.csv (4 rows) is out of range for the model's "
                   "10 classes");

  DataShape regression{"x", 3, "y", false, 2, 0};
  EXPECT_FALSE(checkDataFits(labelled({0, 1, 2, 3}, 3), "idx", regression, error));
  EXPECT_EQ(error, "idx has class labels; the model's target 'y' is f32 (declare it 'label y : "
                   "i32[...]')");
  Dataset values = makeSyntheticRegression(4, {3}, {1}, 1);
  EXPECT_FALSE(checkDataFits(values, "values.csv", classifier, error));
  EXPECT_EQ(error, "values.csv has real-valued targets; the model's 'y' is an i32 class label");
  EXPECT_FALSE(checkDataFits(values, "values.csv", regression, error));
  EXPECT_EQ(error, "values.csv has 1 target value per example, the model's target 'y' takes 2");
  values.targetsF.pop_back();
  regression.targetSize = 1;
  EXPECT_FALSE(checkDataFits(values, "values.csv", regression, error));
  EXPECT_EQ(error,
            "values.csv: the data set has 4 examples of 1 targets each but 3 targets in all");
}

} // namespace
