//===- test/unit/runtime/HealthTest.cpp - gradc train --health ------------===//
//
// The monitor reads a kernel's health.grad.* and health.act.* results and
// the params in the store; here the test writes those buffers itself, as a
// kernel would, and checks the table and the warnings.
//
//===----------------------------------------------------------------------===//
#include "runtime/Health.h"

#include <gtest/gtest.h>

using namespace gradc::rt;

namespace {

TensorSpec tensor(std::string name, Role role, std::vector<int64_t> dims) {
  TensorSpec spec;
  spec.name = std::move(name);
  spec.role = role;
  spec.dims = std::move(dims);
  if (role == Role::Param)
    spec.init.kind = "zeros";
  return spec;
}

struct Fixture {
  KernelSpec kernel;
  TensorStore store;
  float *w = nullptr, *grad = nullptr, *act = nullptr;

  explicit Fixture(bool withGrad = true) {
    kernel.name = "train_step";
    kernel.buffers.push_back(tensor("W", Role::Param, {4}));
    if (withGrad)
      kernel.buffers.push_back(tensor("health.grad.W", Role::Output, {4}));
    kernel.buffers.push_back(tensor("health.act.h", Role::Output, {2, 2}));
    std::string error;
    EXPECT_TRUE(store.addKernel(kernel, error)) << error;
    w = store.find("W")->f32();
    if (withGrad)
      grad = store.find("train_step", "health.grad.W")->f32();
    act = store.find("train_step", "health.act.h")->f32();
  }
  void set(float *to, std::initializer_list<float> values) {
    std::copy(values.begin(), values.end(), to);
  }
};

TEST(Health, TableOfNormsAndActivationStatistics) {
  Fixture f;
  std::string error;
  HealthMonitor monitor(f.store, {&f.kernel}, 2, error);
  ASSERT_TRUE(monitor.valid()) << error;
  std::string report;
  // Step 0: not a report step.
  f.set(f.w, {1, 1, 1, 1});
  f.set(f.grad, {1, 1, 1, 1});
  monitor.beforeStep(1, 0, f.kernel);
  monitor.afterStep(1, 0, f.kernel, report);
  EXPECT_EQ(report, "");
  // Step 1 (the 2nd): W goes from (1,1,1,1) to (3,1,1,1): |update| = 2.
  monitor.beforeStep(1, 1, f.kernel);
  f.set(f.w, {3, 1, 1, 1});
  f.set(f.grad, {0, 0, 3, 4});
  f.set(f.act, {0, 2, 0, 2});
  monitor.afterStep(1, 1, f.kernel, report);
  EXPECT_NE(report.find("health at step 2 (epoch 1)"), std::string::npos) << report;
  // |W| = sqrt(12), |grad| = 5, |update| = 2, update/W = 2/sqrt(12).
  EXPECT_NE(report.find("  W          3.4641e+00   5.0000e+00   2.0000e+00   5.7735e-01\n"),
            std::string::npos)
      << report;
  // Activations: mean 1, std 1, half zeros.
  EXPECT_NE(report.find("  h          1.0000e+00   1.0000e+00        50.0%\n"), std::string::npos)
      << report;
  EXPECT_EQ(monitor.warnings(), 0);
}

TEST(Health, WarnsOnceAboutVanishingAndExplodingGradients) {
  Fixture f;
  std::string error;
  HealthMonitor monitor(f.store, {&f.kernel}, 1000, error);
  ASSERT_TRUE(monitor.valid()) << error;
  f.set(f.w, {1, 0, 0, 0});
  std::string report;
  uint64_t step = 0;
  auto run = [&](float gradNorm) {
    f.set(f.grad, {gradNorm, 0, 0, 0});
    report.clear();
    monitor.beforeStep(1, step, f.kernel);
    monitor.afterStep(1, step, f.kernel, report);
    ++step;
    return report;
  };
  // Ten ordinary steps, one of them with an almost-zero gradient.
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(run(i == 4 ? 1e-6f : 1.0f), "");
  // 50x the median is not an explosion; 200x is, and is reported once.
  EXPECT_EQ(run(50), "");
  EXPECT_NE(run(200).find("the gradient of W is exploding: |grad| grew 200x over the median of "
                          "the last 10 steps"),
            std::string::npos)
      << report;
  EXPECT_EQ(run(40000), "");
  // Vanishing: below 1e-7 of |W| = 1.
  EXPECT_NE(run(1e-8f).find("the gradient of W is vanishing"), std::string::npos) << report;
  EXPECT_EQ(run(1e-9f), "");
  EXPECT_EQ(monitor.warnings(), 2);
}

TEST(Health, NeedsTheHealthResults) {
  Fixture f(/*withGrad=*/false);
  std::string error;
  HealthMonitor monitor(f.store, {&f.kernel}, 10, error);
  EXPECT_FALSE(monitor.valid());
  EXPECT_EQ(error, "--health: kernel 'train_step' has no result 'health.grad.W' (compile it with "
                   "the health pass)");
}

} // namespace
