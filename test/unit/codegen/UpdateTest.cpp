//===- test/unit/codegen/UpdateTest.cpp - update ops: when and what they write -===//
//
// The interpreter applies every `update %p, %v` after the step, in program
// order.  The JIT writes in place when nothing later reads p, else at the end
// of the kernel, saving v first when its arena bytes would be reused
// (codegen/KernelLayout.h).  Each case checks the chosen schedule and that
// params, state and results match the interpreter.
//
//===----------------------------------------------------------------------===//
#include "KernelRunner.h"
#include "codegen/Codegen.h"
#include "codegen/KernelLayout.h"
#include "ir/Interpreter.h"
#include "ir/Printer.h"

#include <gtest/gtest.h>
#include <random>

using namespace gradc;
using namespace gradc::ir;

namespace {

Node *param(Graph &g, const std::string &name, Shape shape) {
  Attrs attrs;
  attrs.init.kind = "zeros";
  return g.create(OpKind::Param, {}, Type::f32(std::move(shape)), attrs, name);
}

Tensor randomTensor(const Type &type, std::mt19937 &rng) {
  std::uniform_real_distribution<double> dist(-1, 1);
  Tensor t(type);
  for (double &v : t.data)
    v = static_cast<float>(dist(rng));
  return t;
}

/// Runs `graph` in the JIT and the interpreter from the same random leaves
/// (`hyper` for every hyperparameter) for `steps` steps, and checks every
/// param and output after each step.
void expectSameAsInterpreter(const Graph &graph, int steps = 1, double hyper = 0.1) {
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(graph, "step", spec, error)) << error;
  test::KernelRunner runner(graph, spec);
  Interpreter interp(graph);
  std::mt19937 rng(77);
  for (const auto &node : graph.nodes()) {
    if (!node->isLeaf())
      continue;
    Tensor value =
        node->is(OpKind::Hyper) ? Tensor(Type::scalar(), {hyper}) : randomTensor(node->type, rng);
    interp.bind(node.get(), value);
    runner.bind(node.get(), value);
  }
  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    ASSERT_TRUE(interp.run(&error)) << error;
    runner.run(0, step);
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
      for (size_t i = 0; i < expected.size(); ++i)
        EXPECT_NEAR(got[i], expected[i], 1e-5 + 1e-5 * std::fabs(expected[i]))
            << out.key << "[" << i << "]\n"
            << toString(graph);
    }
  }
}

codegen::UpdateLayout::Kind scheduleOf(const Graph &graph, const Node *update) {
  codegen::KernelLayout layout;
  std::string error;
  EXPECT_TRUE(codegen::layoutKernel(graph, "step", layout, error)) << error;
  return layout.updates.at(update).kind;
}

TEST(Update, SgdStepMatchesInterpreter) {
  // L = ||W x||^2, dL/dW = outer(2 W x, x), W <- W - lr dL/dW.
  Graph g;
  g.name = "sgd";
  Node *W = param(g, "W", {3, 4});
  Node *x = g.create(OpKind::Input, {}, Type::f32({4}), {}, "x");
  Node *z = g.create(OpKind::MatMul, {W, x}, Type::f32({3}), {}, "z");
  Node *L = g.create(OpKind::SumSq, {z}, Type::scalar(), {}, "L");
  Attrs two;
  two.value = 2;
  Node *dz = g.create(OpKind::Scale, {z}, z->type, two, "dL_dz");
  Node *gW = g.create(OpKind::Outer, {dz, x}, W->type, {}, "dL_dW");
  g.setPhase(Phase::Update);
  Attrs lrKey;
  lrKey.key = "lr";
  Node *lr = g.create(OpKind::Hyper, {}, Type::scalar(), lrKey, "lr");
  Node *step = g.create(OpKind::Mul, {lr, gW}, W->type, {}, "W.step");
  Node *next = g.create(OpKind::Sub, {W, step}, W->type, {}, "W.next");
  Node *update = g.create(OpKind::Update, {W, next}, Type{}, {}, "");
  g.setOutput("loss", L);

  EXPECT_EQ(scheduleOf(g, update), codegen::UpdateLayout::InPlace);
  expectSameAsInterpreter(g, /*steps=*/3, /*lr=*/0.05);
}

TEST(Update, SwapOfTwoParamsSeesTheOldValues) {
  // update a, b; update b, a: a gets the old b, b the old a, and a sum of a
  // after the updates still sees the old a.
  Graph g;
  g.name = "swap";
  Node *a = param(g, "a", {5});
  Node *b = param(g, "b", {5});
  Node *ua = g.create(OpKind::Update, {a, b}, Type{}, {}, "");
  Node *ub = g.create(OpKind::Update, {b, a}, Type{}, {}, "");
  Attrs all;
  all.axes = {0};
  Node *s = g.create(OpKind::Sum, {a}, Type::scalar(), all, "s");
  g.setOutput("s", s);

  EXPECT_EQ(scheduleOf(g, ua), codegen::UpdateLayout::StagedEnd); // b changes in place
  EXPECT_EQ(scheduleOf(g, ub), codegen::UpdateLayout::InPlace);
  expectSameAsInterpreter(g, 2);
}

TEST(Update, ReadAfterUpdateWaitsForTheEnd) {
  // %n = neg %W; update %W, %n; %o = sum %W: the sum reads the old W, and
  // %n is an output (a caller buffer) that nothing overwrites.
  Graph g;
  g.name = "late";
  Node *W = param(g, "W", {4, 3});
  Node *n = g.create(OpKind::Neg, {W}, W->type, {}, "n");
  Node *update = g.create(OpKind::Update, {W, n}, Type{}, {}, "");
  Attrs all;
  all.axes = {0, 1};
  Node *o = g.create(OpKind::Sum, {W}, Type::scalar(), all, "o");
  g.setOutput("o", o);
  g.setOutput("n", n);

  EXPECT_EQ(scheduleOf(g, update), codegen::UpdateLayout::AtEnd);
  expectSameAsInterpreter(g, 2);
}

TEST(Update, ValueWhoseBytesAreReusedIsStaged) {
  // %n lives in the arena until the update; %t, defined after it, may take
  // its bytes, so the update saves %n before the end of the step.
  Graph g;
  g.name = "staged";
  Node *W = param(g, "W", {64});
  Node *n = g.create(OpKind::Neg, {W}, W->type, {}, "n");
  Node *update = g.create(OpKind::Update, {W, n}, Type{}, {}, "");
  Node *t = g.create(OpKind::Exp, {W}, W->type, {}, "t");
  Attrs all;
  all.axes = {0};
  Node *o = g.create(OpKind::Sum, {t}, Type::scalar(), all, "o");
  g.setOutput("o", o);

  codegen::KernelLayout layout;
  std::string error;
  ASSERT_TRUE(codegen::layoutKernel(g, "step", layout, error)) << error;
  ASSERT_EQ(layout.of(t).home.offset, layout.of(n).home.offset)
      << "the memory plan no longer reuses %n's bytes for %t; the test needs a new graph";
  EXPECT_EQ(layout.updates.at(update).kind, codegen::UpdateLayout::StagedEnd);
  // The staging bytes come after the plan's arena.
  EXPECT_GE(layout.updates.at(update).stagingOffset, layout.plan.arenaBytes);
  EXPECT_EQ(layout.spec.arenaBytes, layout.updates.at(update).stagingOffset + 64 * 4);
  expectSameAsInterpreter(g, 2);
}

TEST(Update, OnlyTheLastUpdateOfATensorCounts) {
  Graph g;
  g.name = "twice";
  Node *W = param(g, "W", {6});
  Node *n = g.create(OpKind::Neg, {W}, W->type, {}, "n");
  Node *first = g.create(OpKind::Update, {W, n}, Type{}, {}, "");
  Node *e = g.create(OpKind::Exp, {W}, W->type, {}, "e");
  Node *second = g.create(OpKind::Update, {W, e}, Type{}, {}, "");
  g.setOutput("e", e);

  EXPECT_EQ(scheduleOf(g, first), codegen::UpdateLayout::Skip);
  EXPECT_EQ(scheduleOf(g, second), codegen::UpdateLayout::InPlace);
  expectSameAsInterpreter(g, 2);
}

TEST(Update, LeafResultIsTheValueBeforeTheUpdate) {
  Graph g;
  g.name = "leafout";
  Node *W = param(g, "W", {7});
  Attrs half;
  half.value = 0.5;
  Node *h = g.create(OpKind::Scale, {W}, W->type, half, "h");
  g.create(OpKind::Update, {W, h}, Type{}, {}, "");
  g.setOutput("W.before", W);
  g.setOutput("h", h);
  g.setOutput("h.again", h);
  expectSameAsInterpreter(g, 3);
}

TEST(Update, OfAnInputIsAnErrorNotACrash) {
  // The verifier rejects this graph; codegen must still fail cleanly.
  Graph g;
  g.name = "bad";
  Node *x = g.create(OpKind::Input, {}, Type::f32({3}), {}, "x");
  Node *n = g.create(OpKind::Neg, {x}, x->type, {}, "n");
  g.create(OpKind::Update, {x, n}, Type{}, {}, "");
  std::string error;
  rt::KernelSpec spec;
  EXPECT_FALSE(test::sharedJit().addKernel(g, "step", spec, error));
  EXPECT_NE(error.find("can only write a param or state, not %x"), std::string::npos) << error;
}

} // namespace
