//===- test/unit/runtime/BuffersTest.cpp - Tensor store -------------------===//
#include "runtime/Buffers.h"
#include "runtime/Init.h"

#include <cstring>
#include <gtest/gtest.h>
#include <vector>

using namespace gradc::rt;

namespace {

TensorSpec tensor(const std::string &name, Role role, std::vector<int64_t> dims,
                  const std::string &init = "", bool isInt = false) {
  TensorSpec spec;
  spec.name = name;
  spec.role = role;
  spec.dims = std::move(dims);
  spec.isInt = isInt;
  spec.init.kind = init;
  return spec;
}

KernelSpec trainStep(int64_t batch = 8) {
  KernelSpec kernel;
  kernel.name = "train_step";
  kernel.batch = batch;
  kernel.arenaBytes = 1000;
  kernel.buffers = {tensor("x", Role::Input, {batch, 4}),
                    tensor("y", Role::Target, {batch}, "", /*isInt=*/true),
                    tensor("W1", Role::Param, {5, 4}, "xavier_normal"),
                    tensor("b1", Role::Param, {5}, "zeros"),
                    tensor("W1.velocity", Role::State, {5, 4}),
                    tensor("loss", Role::Output, {})};
  return kernel;
}

KernelSpec evalKernel(int64_t batch = 100) {
  KernelSpec kernel;
  kernel.name = "eval";
  kernel.batch = batch;
  kernel.buffers = {tensor("x", Role::Input, {batch, 4}),
                    tensor("y", Role::Target, {batch}, "", /*isInt=*/true),
                    tensor("W1", Role::Param, {5, 4}, "xavier_normal"),
                    tensor("b1", Role::Param, {5}, "zeros"), tensor("loss", Role::Output, {})};
  return kernel;
}

bool aligned(const void *p) { return reinterpret_cast<uintptr_t>(p) % kBufferAlignment == 0; }

TEST(AlignedBuffer, AlignedZeroedAndMovable) {
  AlignedBuffer buffer(100);
  ASSERT_NE(buffer.data(), nullptr);
  EXPECT_TRUE(aligned(buffer.data()));
  EXPECT_EQ(buffer.bytes(), 100);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(buffer.as<unsigned char>()[i], 0);
  void *data = buffer.data();
  AlignedBuffer moved(std::move(buffer));
  EXPECT_EQ(moved.data(), data);
  EXPECT_EQ(buffer.data(), nullptr);
  AlignedBuffer empty(0);
  EXPECT_NE(empty.data(), nullptr); // a kernel never sees a null buffer
}

TEST(TensorStore, CreatesInitializesAndBindsInSignatureOrder) {
  TensorStore store(7);
  std::string error;
  KernelSpec step = trainStep();
  ASSERT_TRUE(store.addKernel(step, error)) << error;
  std::span<void *const> pointers = store.bindings("train_step");
  ASSERT_EQ(pointers.size(), step.buffers.size());
  for (size_t i = 0; i < step.buffers.size(); ++i) {
    const Tensor *t = store.find("train_step", step.buffers[i].name);
    ASSERT_NE(t, nullptr) << step.buffers[i].name;
    EXPECT_EQ(pointers[i], t->data());
    EXPECT_TRUE(aligned(pointers[i]));
    EXPECT_EQ(t->spec.dims, step.buffers[i].dims);
  }
  // Params and state, numbered in the order first added.
  ASSERT_EQ(store.persistent().size(), 3u);
  EXPECT_EQ(store.persistent()[0]->spec.name, "W1");
  EXPECT_EQ(store.persistent()[1]->spec.name, "b1");
  EXPECT_EQ(store.persistent()[2]->spec.name, "W1.velocity");
  EXPECT_EQ(store.find("W1.velocity")->initIndex, 2);
  // W1 holds exactly what initializeTensor gives for (seed 7, index 0).
  std::vector<float> expected(20);
  initializeTensor(step.buffers[2], expected.data(), 7, 0);
  EXPECT_EQ(std::memcmp(store.find("W1")->f32(), expected.data(), 80), 0);
  // Inputs are per kernel: not found by name alone.
  EXPECT_EQ(store.find("x"), nullptr);
  EXPECT_TRUE(store.bindings("nope").empty());
}

TEST(TensorStore, SharesParamsAcrossKernelsButNotInputs) {
  TensorStore store;
  std::string error;
  ASSERT_TRUE(store.addKernel(trainStep(8), error)) << error;
  float *w1 = store.find("W1")->f32();
  w1[0] = 42.0f; // training happened
  // The eval kernel has another batch size for "x": fine, inputs are per kernel.
  ASSERT_TRUE(store.addKernel(evalKernel(100), error)) << error;
  EXPECT_EQ(store.find("eval", "W1")->f32(), w1);
  EXPECT_EQ(w1[0], 42.0f); // not re-initialized
  EXPECT_NE(store.find("eval", "x"), store.find("train_step", "x"));
  EXPECT_EQ(store.find("eval", "x")->numel(), 400);
  EXPECT_EQ(store.persistent().size(), 3u);
  // Adding the same kernel again is a no-op.
  ASSERT_TRUE(store.addKernel(trainStep(8), error)) << error;
}

TEST(TensorStore, ClashesAreClearErrorsAndChangeNothing) {
  TensorStore store;
  std::string error;
  ASSERT_TRUE(store.addKernel(trainStep(), error)) << error;

  KernelSpec badShape = evalKernel();
  badShape.buffers[2].dims = {4, 5};
  EXPECT_FALSE(store.addKernel(badShape, error));
  EXPECT_EQ(error, "kernel 'eval', tensor 'W1': declared as f32[4,5] param here but as "
                   "f32[5,4] param by kernel 'train_step'");
  EXPECT_TRUE(store.bindings("eval").empty());

  KernelSpec badRole = evalKernel();
  badRole.buffers[3].role = Role::State;
  EXPECT_FALSE(store.addKernel(badRole, error));
  EXPECT_EQ(error, "kernel 'eval', tensor 'b1': declared as f32[5] state here but as f32[5] "
                   "param by kernel 'train_step'");

  KernelSpec inputNamedLikeParam = evalKernel();
  inputNamedLikeParam.buffers[0].name = "W1";
  inputNamedLikeParam.buffers[2].name = "W9";
  EXPECT_FALSE(store.addKernel(inputNamedLikeParam, error));
  EXPECT_EQ(error, "kernel 'eval', tensor 'W1': declared as f32[100,4] input here but as "
                   "f32[5,4] param by kernel 'train_step'");

  KernelSpec paramNamedLikeInput = evalKernel();
  paramNamedLikeInput.buffers.push_back(tensor("x2", Role::Param, {3}, "zeros"));
  paramNamedLikeInput.buffers[0].name = "x3";
  paramNamedLikeInput.buffers.back().name = "x";
  EXPECT_FALSE(store.addKernel(paramNamedLikeInput, error));
  EXPECT_EQ(error, "kernel 'eval', tensor 'x': declared as f32[3] param here but as f32[8,4] "
                   "input by kernel 'train_step'");

  KernelSpec twice = evalKernel();
  twice.buffers.push_back(twice.buffers[0]);
  EXPECT_FALSE(store.addKernel(twice, error));
  EXPECT_EQ(error, "kernel 'eval', tensor 'x': the name appears twice in the signature");

  KernelSpec badInit = evalKernel();
  badInit.buffers.push_back(tensor("W2", Role::Param, {2, 5}, "glorot"));
  EXPECT_FALSE(store.addKernel(badInit, error));
  EXPECT_NE(error.find("kernel 'eval': tensor 'W2': unknown initializer 'glorot'"),
            std::string::npos)
      << error;

  KernelSpec changed = trainStep();
  changed.buffers.pop_back();
  EXPECT_FALSE(store.addKernel(changed, error));
  EXPECT_EQ(error, "kernel 'train_step' was added before with a different signature");

  EXPECT_EQ(store.persistent().size(), 3u);
  EXPECT_EQ(store.find("W2"), nullptr);
}

TEST(TensorStore, Arena) {
  KernelSpec step = trainStep();
  AlignedBuffer arena = allocateArena(step);
  EXPECT_EQ(arena.bytes(), 1000);
  EXPECT_TRUE(aligned(arena.data()));
}

} // namespace
