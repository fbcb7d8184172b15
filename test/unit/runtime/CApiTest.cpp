//===- test/unit/runtime/CApiTest.cpp - The C interface of AOT models -----===//
//
// runtime/CApi.h over a hand-written descriptor (runtime/AotModel.h) whose
// kernels are plain C++: linear regression p = W . x, L = mean (p - y)^2 / 2,
// W -= lr dL/dW.  No LLVM: what `gradc build` writes is tested end to end
// by test/lit/aot.
//
//===----------------------------------------------------------------------===//
#include "runtime/CApi.h"
#include "runtime/AotKernels.h"
#include "runtime/AotModel.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>

namespace {

constexpr int kBatch = 2, kFeatures = 3;

/// Buffers: x, y, W, loss, prediction (train and eval); x, W, prediction (predict).
void linearStep(const gradc_step_context *ctx, bool train, bool withTarget) {
  const float *x = static_cast<const float *>(ctx->buffers[0]);
  int base = withTarget ? 2 : 1;
  const float *y = withTarget ? static_cast<const float *>(ctx->buffers[1]) : nullptr;
  float *w = static_cast<float *>(ctx->buffers[base]);
  float *loss = withTarget ? static_cast<float *>(ctx->buffers[base + 1]) : nullptr;
  float *prediction = static_cast<float *>(ctx->buffers[withTarget ? base + 2 : base + 1]);
  float grad[kFeatures] = {};
  float total = 0;
  for (int b = 0; b < kBatch; ++b) {
    float p = 0;
    for (int j = 0; j < kFeatures; ++j)
      p += w[j] * x[b * kFeatures + j];
    prediction[b] = p;
    if (!y)
      continue;
    float error = p - y[b];
    total += 0.5f * error * error;
    for (int j = 0; j < kFeatures; ++j)
      grad[j] += error * x[b * kFeatures + j] / kBatch;
  }
  if (loss)
    *loss = total / kBatch;
  if (train)
    for (int j = 0; j < kFeatures; ++j)
      w[j] -= ctx->hypers[0] * grad[j];
}

void trainKernel(const gradc_step_context *ctx) { linearStep(ctx, true, true); }
void evalKernel(const gradc_step_context *ctx) { linearStep(ctx, false, true); }
void predictKernel(const gradc_step_context *ctx) { linearStep(ctx, false, false); }

const int64_t kXDims[] = {kBatch, kFeatures}, kYDims[] = {kBatch}, kWDims[] = {kFeatures};
const double kHalf[] = {0.5};
const gradc_aot_tensor kX = {"x", kXDims, "", nullptr, 0, 0, 2, GRADC_ROLE_INPUT, 0, 0};
const gradc_aot_tensor kY = {"y", kYDims, "", nullptr, 0, 0, 1, GRADC_ROLE_TARGET, 0, 0};
const gradc_aot_tensor kW = {"W", kWDims, "constant", kHalf, 0, 0, 1, GRADC_ROLE_PARAM, 0, 1};
const gradc_aot_tensor kLoss = {"loss", nullptr, "", nullptr, 0, 0, 0, GRADC_ROLE_OUTPUT, 0, 0};
const gradc_aot_tensor kPrediction = {"prediction",      kYDims, "", nullptr, 0, 0, 1,
                                      GRADC_ROLE_OUTPUT, 0,      0};
const gradc_aot_tensor kTrainBuffers[] = {kX, kY, kW, kLoss, kPrediction};
const gradc_aot_tensor kPredictBuffers[] = {kX, kW, kPrediction};
const char *const kHypers[] = {"lr"};
const gradc_aot_kernel kKernels[] = {
    {"train_step", trainKernel, kTrainBuffers, kHypers, 64, kBatch, 5, 1},
    {"eval", evalKernel, kTrainBuffers, nullptr, 64, kBatch, 5, 0},
    {"predict", predictKernel, kPredictBuffers, nullptr, 0, kBatch, 3, 0},
};
const gradc_aot_model kModel = {GRADC_AOT_ABI_VERSION,
                                3,
                                "linear",
                                "linear.grad",
                                "test",
                                "sgd",
                                kKernels,
                                "constant",
                                0.1,
                                1,
                                0.1,
                                0,
                                5,
                                1};

const float kInputs[kBatch * kFeatures] = {1, 0, 0, 0, 1, 2};
const float kTargets[kBatch] = {2, -1};

struct Model {
  gradc_model *m = nullptr;
  Model() {
    EXPECT_EQ(gradc_model_create(&kModel, 1, 1, &m), GRADC_OK) << gradc_model_error(nullptr);
  }
  ~Model() { gradc_model_destroy(m); }
};

std::string tempPath(const char *name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("gradc-capi-") + std::to_string(::getpid()) + "-" + name))
      .string();
}

TEST(CApi, DescriptorBecomesKernelSpecs) {
  std::vector<gradc::rt::KernelSpec> specs;
  std::string error;
  ASSERT_TRUE(gradc::rt::aotKernelSpecs(kModel, specs, error)) << error;
  ASSERT_EQ(specs.size(), 3u);
  EXPECT_EQ(specs[0].name, "train_step");
  EXPECT_EQ(specs[0].buffers[2].init.kind, "constant");
  EXPECT_EQ(specs[0].buffers[2].init.args, std::vector<double>{0.5});
  EXPECT_EQ(specs[0].buffers[0].dims, (std::vector<int64_t>{kBatch, kFeatures}));
  EXPECT_EQ(specs[0].hypers, std::vector<std::string>{"lr"});
  EXPECT_EQ(gradc::rt::findKernel(specs, "predict"), &specs[2]);
  EXPECT_EQ(gradc::rt::findKernel(specs, "predict", 7), nullptr);

  gradc_aot_model other = kModel;
  other.abi_version = GRADC_AOT_ABI_VERSION + 1;
  EXPECT_FALSE(gradc::rt::aotKernelSpecs(other, specs, error));
  EXPECT_NE(error.find("descriptor version 2, this runtime reads version 1"), std::string::npos)
      << error;
}

TEST(CApi, TrainsPredictsAndReadsParams) {
  Model model;
  float w[kFeatures];
  ASSERT_EQ(gradc_model_get_tensor(model.m, "W", w, kFeatures), GRADC_OK);
  EXPECT_EQ(w[0], 0.5f); // constant(0.5)
  float first = 0, loss = 0;
  ASSERT_EQ(gradc_model_train_step(model.m, kInputs, kTargets, 0.1f, &first), GRADC_OK);
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(gradc_model_train_step(model.m, kInputs, kTargets, 0.1f, &loss), GRADC_OK);
  EXPECT_LT(loss, first * 1e-3f);
  EXPECT_EQ(gradc_model_step(model.m), 201u);
  float out[kBatch];
  ASSERT_EQ(gradc_model_predict(model.m, kInputs, out), GRADC_OK);
  EXPECT_NEAR(out[0], 2, 1e-2);
  EXPECT_NEAR(out[1], -1, 1e-2);
  float evalLoss = -1;
  ASSERT_EQ(gradc_model_evaluate(model.m, kInputs, kTargets, &evalLoss, nullptr), GRADC_OK);
  EXPECT_LT(evalLoss, 1e-3f);

  const float set[kFeatures] = {1, 2, 3};
  ASSERT_EQ(gradc_model_set_tensor(model.m, "W", set, kFeatures), GRADC_OK);
  ASSERT_EQ(gradc_model_predict(model.m, kInputs, out), GRADC_OK);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 8.0f);
}

TEST(CApi, ErrorsAreCodesWithMessages) {
  Model model;
  float w[kFeatures];
  int64_t count = 0;
  EXPECT_EQ(gradc_model_tensor_size(model.m, "W", &count), GRADC_OK);
  EXPECT_EQ(count, kFeatures);
  EXPECT_EQ(gradc_model_get_tensor(model.m, "V", w, kFeatures), GRADC_ERROR_ARGUMENT);
  EXPECT_STREQ(gradc_model_error(model.m), "model 'linear' has no param or state 'V' (it has: W)");
  EXPECT_EQ(gradc_model_get_tensor(model.m, "W", w, 2), GRADC_ERROR_ARGUMENT);
  EXPECT_STREQ(gradc_model_error(model.m), "'W' is f32[3] with 3 elements; got 2 elements");
  EXPECT_EQ(gradc_model_train_step(model.m, nullptr, kTargets, 0.1f, nullptr),
            GRADC_ERROR_ARGUMENT);
  EXPECT_STREQ(gradc_model_error(model.m), "training step: inputs is NULL");
  EXPECT_EQ(gradc_model_train_step(model.m, kInputs, kTargets, NAN, nullptr), GRADC_ERROR_ARGUMENT);
  // A successful call clears the message.
  EXPECT_EQ(gradc_model_tensor_size(model.m, "W", &count), GRADC_OK);
  EXPECT_STREQ(gradc_model_error(model.m), "");

  const float huge[kBatch] = {1e30f, 1e30f};
  EXPECT_EQ(gradc_model_train_step(model.m, kInputs, huge, 1.0f, nullptr), GRADC_ERROR_NUMERIC);
  EXPECT_NE(std::string(gradc_model_error(model.m)).find("step 0: the loss is inf"),
            std::string::npos)
      << gradc_model_error(model.m);

  EXPECT_EQ(gradc_model_load(model.m, "/nonexistent/w.safetensors"), GRADC_ERROR_IO);
  EXPECT_EQ(gradc_model_save(model.m, "/nonexistent/w.safetensors"), GRADC_ERROR_IO);
  EXPECT_EQ(gradc_model_save(nullptr, "w"), GRADC_ERROR_ARGUMENT);

  gradc_model *none = nullptr;
  EXPECT_EQ(gradc_model_create(nullptr, 1, 1, &none), GRADC_ERROR_ARGUMENT);
  EXPECT_EQ(none, nullptr);
  EXPECT_STREQ(gradc_model_error(nullptr), "gradc_model_create: the model descriptor is NULL");
  gradc_aot_model old = kModel;
  old.abi_version = 0;
  EXPECT_EQ(gradc_model_create(&old, 1, 1, &none), GRADC_ERROR_INTERNAL);
  gradc_model_destroy(nullptr);
}

TEST(CApi, CheckpointRoundTrip) {
  std::string path = tempPath("w.safetensors");
  Model a, b;
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(gradc_model_train_step(a.m, kInputs, kTargets, 0.1f, nullptr), GRADC_OK);
  ASSERT_EQ(gradc_model_save(a.m, path.c_str()), GRADC_OK) << gradc_model_error(a.m);
  ASSERT_EQ(gradc_model_load(b.m, path.c_str()), GRADC_OK) << gradc_model_error(b.m);
  EXPECT_EQ(gradc_model_step(b.m), 3u);
  float wa[kFeatures], wb[kFeatures];
  ASSERT_EQ(gradc_model_get_tensor(a.m, "W", wa, kFeatures), GRADC_OK);
  ASSERT_EQ(gradc_model_get_tensor(b.m, "W", wb, kFeatures), GRADC_OK);
  for (int j = 0; j < kFeatures; ++j)
    EXPECT_EQ(wa[j], wb[j]);
  std::remove(path.c_str());
}

} // namespace
