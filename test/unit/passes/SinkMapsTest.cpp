//===- test/unit/passes/SinkMapsTest.cpp - sink-maps keeps what a step does ===//
//
// sink-maps changes program order only.  A two-layer network with dropout,
// weight decay and momentum is trained for a few steps by the interpreter
// from the optimize pipeline with and without the pass: every loss, weight
// and velocity must be the same bit for bit, and the pass must have moved
// the second weight's decay into the update section (or the comparison
// would prove nothing).
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "ir/Interpreter.h"
#include "passes/Pass.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <random>
#include <sstream>

using namespace gradc;
using namespace gradc::ir;

namespace {

/// x[8, 6] -> relu(x W1^T + b1) -> dropout 0.25 -> W2 -> squared error.
std::unique_ptr<Graph> twoLayers() {
  auto g = std::make_unique<Graph>();
  g->name = "two";
  g->weightDecay = 0.01;
  g->optimizer.momentum = 0.9;
  Node *x = g->create(OpKind::Input, {}, Type::f32({8, 6}), {}, "x");
  Node *y = g->create(OpKind::Target, {}, Type::f32({8, 3}), {}, "y");
  Attrs w;
  w.init = {"xavier_uniform", {}};
  Node *W1 = g->create(OpKind::Param, {}, Type::f32({5, 6}), w, "W1");
  Node *b1 = g->create(OpKind::Param, {}, Type::f32({5}), w, "b1");
  Node *W2 = g->create(OpKind::Param, {}, Type::f32({3, 5}), w, "W2");
  Attrs transB;
  transB.transB = true;
  Node *z = g->create(OpKind::MatMul, {x, W1}, Type::f32({8, 5}), transB, "z");
  Node *zb = g->create(OpKind::Add, {z, b1}, z->type, {}, "zb");
  Node *h = g->create(OpKind::Relu, {zb}, z->type, {}, "h");
  Attrs drop;
  drop.value = 0.25;
  Node *hd = g->create(OpKind::Dropout, {h}, h->type, drop, "hd");
  Node *o = g->create(OpKind::MatMul, {hd, W2}, Type::f32({8, 3}), transB, "o");
  Attrs half;
  half.value = 0.5;
  Node *L = g->create(OpKind::SquaredError, {o, y}, Type::scalar(), half, "L");
  g->setOutput("loss", L);
  return g;
}

std::unique_ptr<Graph> compiled(bool sink) {
  auto g = twoLayers();
  std::vector<std::string> pipeline = passes::trainPipeline();
  for (const std::string &pass : passes::optimizePipeline())
    if (sink || pass != "sink-maps")
      pipeline.push_back(pass);
  std::ostringstream errors;
  Diagnostics diags(nullptr, errors);
  EXPECT_TRUE(passes::runPipeline(*g, pipeline, diags)) << errors.str();
  return g;
}

/// Losses, then every param and state, after each of `steps` steps.
std::vector<std::vector<double>> train(const Graph &graph, int steps) {
  Interpreter interp(graph);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> uniform(-1, 1);
  auto random = [&](const Type &type) {
    std::vector<double> values(type.numel());
    for (double &v : values)
      v = static_cast<float>(uniform(rng));
    return Tensor(type, values);
  };
  std::vector<const Node *> leaves;
  for (const auto &node : graph.nodes()) // in program order, the same in both graphs
    if (node->isLeaf())
      leaves.push_back(node.get());
  std::sort(leaves.begin(), leaves.end(),
            [](const Node *a, const Node *b) { return a->name < b->name; });
  for (const Node *leaf : leaves) {
    if (leaf->is(OpKind::Hyper))
      interp.bind(leaf, Tensor(leaf->type, {0.05}));
    else if (leaf->is(OpKind::State))
      interp.bind(leaf, Tensor(leaf->type, std::vector<double>(leaf->type.numel(), 0.0)));
    else
      interp.bind(leaf, random(leaf->type));
  }
  std::vector<std::vector<double>> history;
  for (int step = 0; step < steps; ++step) {
    interp.setRandomKey(1, step);
    std::string error;
    EXPECT_TRUE(interp.run(&error)) << error;
    history.push_back(interp.output("loss")->data);
    for (const Node *leaf : leaves)
      if (leaf->is(OpKind::Param) || leaf->is(OpKind::State))
        history.push_back(interp.leafValue(leaf).data);
  }
  return history;
}

TEST(SinkMaps, MovesTheSecondWeightsDecayNextToItsMomentum) {
  auto g = compiled(true);
  const Node *dJ = g->find("dJ_dW2");
  const Node *decayed = g->find("W2.velocity.decayed");
  ASSERT_TRUE(dJ && decayed);
  EXPECT_GT(g->indexOf(dJ), g->indexOf(decayed));
  EXPECT_EQ(dJ->phase, Phase::Backward); // moved, not re-labelled
}

TEST(SinkMaps, TrainingIsTheSameBitForBit) {
  auto sunk = compiled(true), plain = compiled(false);
  auto a = train(*sunk, 4), b = train(*plain, 4);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(a[i], b[i]) << "value " << i;
}

} // namespace
