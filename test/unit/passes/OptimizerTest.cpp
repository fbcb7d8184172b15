//===- test/unit/passes/OptimizerTest.cpp - Updates against their formulas ===//
//
// Each optimizer's training step, run for a few steps by the interpreter,
// against the update formula written out here by hand (PyTorch's
// torch.optim formulations).  The objective is J = sum(W * x) + lambda/2
// ||W||^2, so dJ/dW = x + lambda W (for adamw: x, with decoupled decay).
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "ir/Interpreter.h"
#include "passes/Pass.h"

#include <cmath>
#include <gtest/gtest.h>
#include <sstream>

using namespace gradc;
using namespace gradc::ir;

namespace {

constexpr int kSize = 4;
constexpr double kLr = 0.1, kLambda = 0.05;
const double kX[kSize] = {0.5, -1.0, 2.0, 0.25};
const double kW0[kSize] = {1.0, -0.5, 0.25, 2.0};

std::unique_ptr<Graph> buildStep(const OptimizerConfig &config) {
  auto graph = std::make_unique<Graph>();
  graph->name = "opt";
  graph->weightDecay = kLambda;
  graph->optimizer = config;
  Attrs init;
  init.init.kind = "zeros";
  Attrs decay = init;
  decay.decay = kLambda; // a vector: weight decay only by override
  Node *w = graph->create(OpKind::Param, {}, Type::f32({kSize}), decay, "W");
  Node *x = graph->create(OpKind::Input, {}, Type::f32({kSize}), {}, "x");
  Node *wx = graph->create(OpKind::Mul, {w, x}, Type::f32({kSize}), {}, "wx");
  Attrs all;
  all.axes = {0};
  Node *loss = graph->create(OpKind::Sum, {wx}, Type::scalar(), all, "L");
  graph->setOutput("loss", loss);
  std::ostringstream errors;
  Diagnostics diags(nullptr, errors);
  std::vector<std::string> pipeline = {"l2", "autodiff", "optimizer", "simplify"};
  EXPECT_TRUE(passes::runPipeline(*graph, pipeline, diags)) << errors.str();
  return graph;
}

/// Runs `steps` training steps in the interpreter; returns W after each.
std::vector<std::vector<double>> runSteps(const Graph &graph, int steps) {
  Interpreter interp(graph);
  for (const auto &node : graph.nodes()) {
    if (node->is(OpKind::Param))
      interp.bind(node.get(), Tensor(node->type, std::vector<double>(kW0, kW0 + kSize)));
    else if (node->is(OpKind::Input))
      interp.bind(node.get(), Tensor(node->type, std::vector<double>(kX, kX + kSize)));
    else if (node->is(OpKind::Hyper))
      interp.bind(node.get(), Tensor(node->type, {kLr}));
    else if (node->is(OpKind::State))
      interp.bind(node.get(),
                  Tensor(node->type, std::vector<double>(node->type.numel(),
                                                         node->attrs.init.kind == "ones" ? 1 : 0)));
  }
  std::vector<std::vector<double>> history;
  for (int s = 0; s < steps; ++s) {
    std::string error;
    EXPECT_TRUE(interp.run(&error)) << error;
    history.push_back(interp.leafValue(graph.find("W")).data);
  }
  return history;
}

void expectHistory(const std::vector<std::vector<double>> &got,
                   const std::vector<std::vector<double>> &want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t s = 0; s < got.size(); ++s)
    for (int i = 0; i < kSize; ++i)
      EXPECT_NEAR(got[s][i], want[s][i], 1e-12) << "step " << s + 1 << ", W[" << i << "]";
}

TEST(Optimizer, PlainSgd) {
  OptimizerConfig config;
  auto history = runSteps(*buildStep(config), 3);
  std::vector<double> w(kW0, kW0 + kSize);
  std::vector<std::vector<double>> want;
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < kSize; ++i)
      w[i] -= kLr * (kX[i] + kLambda * w[i]);
    want.push_back(w);
  }
  expectHistory(history, want);
}

void checkMomentum(bool nesterov) {
  OptimizerConfig config;
  config.momentum = 0.9;
  config.nesterov = nesterov;
  auto history = runSteps(*buildStep(config), 4);
  std::vector<double> w(kW0, kW0 + kSize), v(kSize, 0);
  std::vector<std::vector<double>> want;
  for (int s = 0; s < 4; ++s) {
    for (int i = 0; i < kSize; ++i) {
      double g = kX[i] + kLambda * w[i];
      v[i] = 0.9 * v[i] + g;
      w[i] -= kLr * (nesterov ? g + 0.9 * v[i] : v[i]);
    }
    want.push_back(w);
  }
  expectHistory(history, want);
}

TEST(Optimizer, SgdWithMomentum) { checkMomentum(false); }
TEST(Optimizer, SgdWithNesterovMomentum) { checkMomentum(true); }

void checkAdam(bool decoupled) {
  OptimizerConfig config;
  config.kind = decoupled ? "adamw" : "adam";
  config.beta1 = 0.8;
  config.beta2 = 0.95;
  config.eps = 1e-3;
  auto history = runSteps(*buildStep(config), 4);
  std::vector<double> w(kW0, kW0 + kSize), m(kSize, 0), u(kSize, 0);
  std::vector<std::vector<double>> want;
  for (int t = 1; t <= 4; ++t) {
    for (int i = 0; i < kSize; ++i) {
      double g = decoupled ? kX[i] : kX[i] + kLambda * w[i];
      if (decoupled)
        w[i] -= kLr * kLambda * w[i];
      m[i] = 0.8 * m[i] + 0.2 * g;
      u[i] = 0.95 * u[i] + 0.05 * g * g;
      double mHat = m[i] / (1 - std::pow(0.8, t)), uHat = u[i] / (1 - std::pow(0.95, t));
      w[i] -= kLr * mHat / (std::sqrt(uHat) + 1e-3);
    }
    want.push_back(w);
  }
  expectHistory(history, want);
}

TEST(Optimizer, Adam) { checkAdam(false); }
TEST(Optimizer, AdamW) { checkAdam(true); }

TEST(Optimizer, ClipGradNorm) {
  OptimizerConfig config;
  config.clipGradNorm = 0.5;
  auto history = runSteps(*buildStep(config), 2);
  std::vector<double> w(kW0, kW0 + kSize);
  std::vector<std::vector<double>> want;
  for (int s = 0; s < 2; ++s) {
    double norm = 0;
    std::vector<double> g(kSize);
    for (int i = 0; i < kSize; ++i) {
      g[i] = kX[i] + kLambda * w[i];
      norm += g[i] * g[i];
    }
    norm = std::sqrt(norm);
    double factor = 0.5 / std::max(norm, 0.5);
    for (int i = 0; i < kSize; ++i)
      w[i] -= kLr * g[i] * factor;
    want.push_back(w);
  }
  expectHistory(history, want);
}

} // namespace
