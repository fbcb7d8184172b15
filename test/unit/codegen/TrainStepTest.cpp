//===- test/unit/codegen/TrainStepTest.cpp - Whole pipelines through the JIT -===//
//
// The lecture's network (notes 2.6) with dropout and weight decay, taken
// through the standard pass pipelines (passes/Pass.h) and compiled: the
// training step, the gradient kernel and the inference kernel must agree
// with the interpreter on the same graph, step after step.
//
//===----------------------------------------------------------------------===//
#include "KernelRunner.h"
#include "codegen/Codegen.h"
#include "ir/Diagnostics.h"
#include "ir/Interpreter.h"
#include "ir/Printer.h"
#include "passes/Pass.h"
#include "runtime/ThreadPool.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <random>
#include <sstream>

using namespace gradc;
using namespace gradc::ir;

namespace {

/// z = W1 x, h = dropout(relu(z), 0.5), o = W2 h, L = 1/2 ||o - y||^2,
/// weight decay 0.01: the lecture's 4 inputs and 5 hidden units, or more.
std::unique_ptr<Graph> lecture(int64_t inputs = 4, int64_t hidden = 5) {
  auto g = std::make_unique<Graph>();
  g->name = "lecture";
  g->weightDecay = 0.01;
  Node *x = g->create(OpKind::Input, {}, Type::f32({inputs}), {}, "x");
  Node *y = g->create(OpKind::Target, {}, Type::f32({2}), {}, "y");
  Attrs w1;
  w1.init = {"xavier_normal", {}};
  w1.fanIn = inputs;
  w1.fanOut = hidden;
  Node *W1 = g->create(OpKind::Param, {}, Type::f32({hidden, inputs}), w1, "W1");
  Attrs w2 = w1;
  w2.fanIn = hidden;
  w2.fanOut = 2;
  Node *W2 = g->create(OpKind::Param, {}, Type::f32({2, hidden}), w2, "W2");
  Node *z = g->create(OpKind::MatMul, {W1, x}, Type::f32({hidden}), {}, "z");
  Node *h = g->create(OpKind::Relu, {z}, z->type, {}, "h");
  Attrs drop;
  drop.value = 0.5;
  Node *hd = g->create(OpKind::Dropout, {h}, h->type, drop, "h.drop");
  Node *o = g->create(OpKind::MatMul, {W2, hd}, Type::f32({2}), {}, "o");
  Attrs half;
  half.value = 0.5;
  Node *L = g->create(OpKind::SquaredError, {o, y}, Type::scalar(), half, "L");
  g->setOutput("loss", L);
  g->setOutput("prediction", o);
  return g;
}

/// What `gradc train` compiles: the training pipeline, then the optimizing one.
std::vector<std::string> trainingPipeline() {
  std::vector<std::string> pipeline = passes::trainPipeline();
  for (const std::string &pass : passes::optimizePipeline())
    pipeline.push_back(pass);
  return pipeline;
}

std::unique_ptr<Graph> through(std::vector<std::string> pipeline) {
  auto g = lecture();
  std::ostringstream errors;
  Diagnostics diags(nullptr, errors);
  if (!passes::runPipeline(*g, pipeline, diags)) {
    ADD_FAILURE() << errors.str();
    return nullptr;
  }
  return g;
}

/// `rarelyRun`: compiled as a tail kernel is (KernelRequest::rarelyRun).
void expectSameSteps(const Graph &graph, int steps, bool rarelyRun = false) {
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernels({{&graph, "k", &spec, rarelyRun}}, error))
      << error << toString(graph);
  test::KernelRunner runner(graph, spec);
  Interpreter interp(graph);
  std::mt19937 rng(2026);
  std::uniform_real_distribution<double> dist(-1, 1);
  for (const auto &node : graph.nodes()) {
    if (!node->isLeaf())
      continue;
    Tensor t(node->type);
    for (double &v : t.data)
      v = node->is(OpKind::Hyper) ? 0.1 : static_cast<float>(dist(rng));
    // Optimizer state as the trainer starts it (Adam's second moment must
    // not be negative).
    if (node->is(OpKind::State))
      std::fill(t.data.begin(), t.data.end(), node->attrs.init.kind == "ones" ? 1.0 : 0.0);
    interp.bind(node.get(), t);
    runner.bind(node.get(), t);
  }
  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    interp.setRandomKey(7, step);
    ASSERT_TRUE(interp.run(&error)) << error;
    runner.run(7, step);
    for (const Node *p : graph.nodesOfKind(OpKind::Param)) {
      const std::vector<double> &expected = interp.leafValue(p).data;
      std::vector<float> got = runner.floats(p->name);
      for (size_t i = 0; i < expected.size(); ++i)
        EXPECT_NEAR(got[i], expected[i], 1e-5 + 1e-5 * std::fabs(expected[i]))
            << "%" << p->name << "[" << i << "]\n"
            << toString(graph);
    }
    for (const GraphOutput &out : graph.outputs) {
      const std::vector<double> &expected = interp.output(out.key)->data;
      std::vector<float> got = runner.output(out.key);
      ASSERT_EQ(got.size(), expected.size()) << out.key;
      for (size_t i = 0; i < expected.size(); ++i)
        EXPECT_NEAR(got[i], expected[i], 1e-5 + 1e-5 * std::fabs(expected[i]))
            << out.key << "[" << i << "]\n"
            << toString(graph);
    }
  }
}

TEST(TrainStep, TrainingStepMatchesInterpreter) {
  auto g = through(trainingPipeline());
  ASSERT_NE(g, nullptr);
  ASSERT_FALSE(g->nodesOfKind(OpKind::Update).empty()) << toString(*g);
  expectSameSteps(*g, 4);
}

// Every optimizer's update chain is fused into one loop per parameter that
// writes the parameter and its state in place (codegen/Lowering.cpp); the
// state must still evolve exactly as the interpreter's, step after step.
TEST(TrainStep, EveryOptimizerMatchesInterpreter) {
  struct Case {
    const char *kind;
    double momentum;
    bool nesterov;
  };
  for (Case c : {Case{"sgd", 0.9, false}, Case{"sgd", 0.9, true}, Case{"adam", 0, false},
                 Case{"adamw", 0, false}}) {
    SCOPED_TRACE(std::string(c.kind) + (c.nesterov ? " nesterov" : ""));
    auto g = lecture();
    g->optimizer.kind = c.kind;
    g->optimizer.momentum = c.momentum;
    g->optimizer.nesterov = c.nesterov;
    std::ostringstream errors;
    Diagnostics diags(nullptr, errors);
    ASSERT_TRUE(passes::runPipeline(*g, trainingPipeline(), diags)) << errors.str();
    ASSERT_FALSE(g->nodesOfKind(OpKind::State).empty()) << toString(*g);
    expectSameSteps(*g, 4);
  }
}

// Tail kernels are compiled for compile speed (optnone, LLVM's -O0 paths):
// other code, the same maths.
TEST(TrainStep, RarelyRunKernelMatchesInterpreter) {
  auto g = through(trainingPipeline());
  ASSERT_NE(g, nullptr);
  expectSameSteps(*g, 4, /*rarelyRun=*/true);
}

TEST(TrainStep, GradientKernelMatchesInterpreter) {
  auto g = through(passes::gradientPipeline());
  ASSERT_NE(g, nullptr);
  ASSERT_NE(g->output("grad.W1"), nullptr) << toString(*g);
  expectSameSteps(*g, 2);
}

// sink-penalty moves the sums of squares of weight decay into the weights'
// update loops.  A weight of 78,000 elements is updated on the pool by
// blocks of rows, and its sum of squares is added up in the same blocks:
// the objective must match the interpreter's, and be the same bits for any
// thread count.
TEST(TrainStep, SumOfSquaresInABigWeightsUpdateMatchesInterpreter) {
  auto g = lecture(300, 260);
  g->optimizer.momentum = 0.9;
  std::ostringstream errors;
  Diagnostics diags(nullptr, errors);
  ASSERT_TRUE(passes::runPipeline(*g, trainingPipeline(), diags)) << errors.str();

  std::string ir, error;
  ASSERT_TRUE(codegen::emitLLVMIR(*g, "k", {}, /*optimized=*/false, ir, error)) << error;
  EXPECT_NE(ir.find("%sqnorm_W1.sum = fadd"), std::string::npos) << ir;
  EXPECT_NE(ir.find("sqnorm_W1.partials"), std::string::npos) << ir;
  // One step: with 300 inputs and lr 0.1 the second one's weights are in
  // the thousands, beyond f32's agreement with the f64 interpreter.
  expectSameSteps(*g, 1);

  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernels({{g.get(), "k", &spec, false}}, error)) << error;
  test::KernelRunner runner(*g, spec);
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<std::pair<const Node *, Tensor>> leaves;
  for (const auto &node : g->nodes())
    if (node->isLeaf()) {
      Tensor t(node->type);
      for (double &v : t.data)
        v = node->is(OpKind::Hyper) ? 0.1 : node->is(OpKind::State) ? 0.0 : dist(rng);
      leaves.emplace_back(node.get(), t);
    }
  std::vector<std::vector<uint32_t>> objectives;
  rt::ThreadPool one(1), two(2), three(3);
  for (rt::ThreadPool *pool : {&one, &two, &three}) {
    for (auto &[leaf, value] : leaves)
      runner.bind(leaf, value);
    runner.run(0, 0, pool);
    objectives.push_back(runner.bits("objective"));
  }
  EXPECT_EQ(objectives[1], objectives[0]) << "2 threads";
  EXPECT_EQ(objectives[2], objectives[0]) << "3 threads";
}

TEST(TrainStep, InferenceKernelMatchesInterpreter) {
  auto g = through(passes::inferencePipeline());
  ASSERT_NE(g, nullptr);
  expectSameSteps(*g, 1);
}

} // namespace
