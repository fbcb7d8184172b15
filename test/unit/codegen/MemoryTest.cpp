//===- test/unit/codegen/MemoryTest.cpp - Signature, arena, determinism ---===//
//
// A kernel's signature and arena come from describeKernel / the memory plan;
// a small network whose plan reuses arena bytes must still compute what the
// interpreter computes, whatever the arena held before, and give the same
// bits on every run.
//
//===----------------------------------------------------------------------===//
#include "KernelRunner.h"
#include "codegen/Codegen.h"
#include "codegen/KernelLayout.h"
#include "ir/Interpreter.h"
#include "ir/Printer.h"
#include "passes/MemoryPlan.h"

#include <cstring>
#include <gtest/gtest.h>
#include <random>

using namespace gradc;
using namespace gradc::ir;

namespace {

/// A two-layer network on a batch of 8, with dropout and a mean, so that
/// several arena values die early and their bytes are reused.
std::unique_ptr<Graph> mlp() {
  auto g = std::make_unique<Graph>();
  g->name = "mlp";
  g->batch = 8;
  Node *x = g->create(OpKind::Input, {}, Type::f32({8, 16}), {}, "x");
  Node *y = g->create(OpKind::Target, {}, Type::f32({8, 4}), {}, "y");
  Attrs w1Init;
  w1Init.init = {"xavier_uniform", {}};
  w1Init.fanIn = 16;
  w1Init.fanOut = 32;
  Node *W1 = g->create(OpKind::Param, {}, Type::f32({32, 16}), w1Init, "dense1.W");
  Attrs zeros;
  zeros.init = {"zeros", {}};
  Node *b1 = g->create(OpKind::Param, {}, Type::f32({32}), zeros, "dense1.b");
  Node *W2 = g->create(OpKind::Param, {}, Type::f32({4, 32}), w1Init, "dense2.W");
  Node *m = g->create(OpKind::State, {}, Type::f32({4, 32}), zeros, "dense2.W.m");
  Attrs tb;
  tb.transB = true;
  Node *a1 = g->create(OpKind::MatMul, {x, W1}, Type::f32({8, 32}), tb, "a1");
  Node *z1 = g->create(OpKind::Add, {a1, b1}, a1->type, {}, "z1");
  Node *h1 = g->create(OpKind::Tanh, {z1}, z1->type, {}, "h1");
  Attrs drop;
  drop.value = 0.25;
  drop.stream = 3;
  Node *mask = g->create(OpKind::DropoutMask, {}, h1->type, drop, "mask");
  Node *hd = g->create(OpKind::Mul, {h1, mask}, h1->type, {}, "h1.drop");
  Node *o = g->create(OpKind::MatMul, {hd, W2}, Type::f32({8, 4}), tb, "o");
  Attrs half;
  half.value = 0.5;
  Node *L = g->create(OpKind::SquaredError, {o, y}, Type::scalar(), half, "L");
  Attrs batchAxis;
  batchAxis.axes = {0};
  Node *mean = g->create(OpKind::Mean, {h1}, Type::f32({32}), batchAxis, "h1.mean");
  Node *mo = g->create(OpKind::Sum, {m}, Type::f32({32}), batchAxis, "m.colsum");
  Node *r = g->create(OpKind::Reshape, {mean}, Type::f32({4, 8}), {}, "h1.mean.grid");
  Node *e = g->create(OpKind::Exp, {r}, r->type, {}, "grid.exp");
  g->setOutput("loss", L);
  g->setOutput("prediction", o);
  g->setOutput("grid", e);
  g->setOutput("mo", mo);
  return g;
}

TEST(Memory, SignatureFollowsTheGraph) {
  auto g = mlp();
  rt::KernelSpec spec = codegen::describeKernel(*g, "train_step");
  EXPECT_EQ(spec.name, "train_step");
  EXPECT_EQ(spec.fn, nullptr);
  EXPECT_EQ(spec.batch, 8);
  std::vector<std::string> names;
  for (const rt::TensorSpec &t : spec.buffers)
    names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"x", "y", "dense1.W", "dense1.b", "dense2.W",
                                             "dense2.W.m", "loss", "prediction", "grid", "mo"}));
  EXPECT_EQ(spec.buffers[0].role, rt::Role::Input);
  EXPECT_EQ(spec.buffers[1].role, rt::Role::Target);
  EXPECT_EQ(spec.buffers[2].role, rt::Role::Param);
  EXPECT_EQ(spec.buffers[5].role, rt::Role::State);
  EXPECT_EQ(spec.buffers[6].role, rt::Role::Output);
  EXPECT_EQ(spec.buffers[2].dims, (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(spec.buffers[2].init.kind, "xavier_uniform");
  EXPECT_EQ(spec.buffers[2].init.fanIn, 16);
  EXPECT_EQ(spec.buffers[2].init.fanOut, 32);
  EXPECT_TRUE(spec.buffers[6].dims.empty());
  EXPECT_TRUE(spec.hypers.empty());
  EXPECT_EQ(codegen::kernelSymbol(*g, "train_step"), "gradc_mlp_train_step");
  g->name = "my-net.v2";
  EXPECT_EQ(codegen::kernelSymbol(*g, "train step"), "gradc_my_net_v2_train_step");
}

TEST(Memory, ArenaIsThePlannedOne) {
  auto g = mlp();
  passes::MemoryPlan plan = passes::planMemory(*g);
  ASSERT_LT(plan.arenaBytes, plan.noReuseBytes) << "the test graph should reuse arena bytes";
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*g, "train_step", spec, error)) << error;
  EXPECT_EQ(spec.arenaBytes, plan.arenaBytes);
  EXPECT_EQ(codegen::describeKernel(*g, "train_step").arenaBytes, plan.arenaBytes);
}

TEST(Memory, ReusedArenaStillMatchesInterpreterAndIsDeterministic) {
  auto g = mlp();
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*g, "train_step", spec, error)) << error;
  test::KernelRunner runner(*g, spec);
  Interpreter interp(*g);
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> dist(-1, 1);
  for (const auto &node : g->nodes()) {
    if (!node->isLeaf())
      continue;
    Tensor t(node->type);
    for (double &v : t.data)
      v = static_cast<float>(dist(rng));
    interp.bind(node.get(), t);
    runner.bind(node.get(), t);
  }
  const uint64_t seed = 99, step = 12;
  interp.setRandomKey(seed, step);
  ASSERT_TRUE(interp.run(&error)) << error;
  runner.run(seed, step);
  for (const GraphOutput &out : g->outputs) {
    const std::vector<double> &expected = interp.output(out.key)->data;
    std::vector<float> got = runner.output(out.key);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i)
      EXPECT_NEAR(got[i], expected[i], 1e-5 + 1e-5 * std::fabs(expected[i]))
          << out.key << "[" << i << "]\n"
          << toString(*g);
  }

  // Same inputs, an arena full of NaNs: the same bits.
  std::vector<std::vector<uint32_t>> first;
  for (const GraphOutput &out : g->outputs)
    first.push_back(runner.bits(out.key));
  std::memset(runner.arena(), 0xff, spec.arenaBytes);
  runner.run(seed, step);
  for (size_t k = 0; k < g->outputs.size(); ++k)
    EXPECT_EQ(runner.bits(g->outputs[k].key), first[k]) << g->outputs[k].key;
}

TEST(Memory, ReshapeReadsItsOperandInPlaceOnlyWhenSafe) {
  // %r = reshape %e while %e stays live (used again by %k): %r can read %e's
  // bytes.  %r2 = reshape %f is %f's last use, so the plan may give %f's
  // bytes to %g while %r2 is still to be read: then %r2 must be a copy.
  Graph g;
  g.name = "alias";
  Node *x = g.create(OpKind::Input, {}, Type::f32({2, 8}), {}, "x");
  Node *e = g.create(OpKind::Exp, {x}, x->type, {}, "e");
  Node *r = g.create(OpKind::Reshape, {e}, Type::f32({16}), {}, "r");
  Node *s = g.create(OpKind::Neg, {r}, r->type, {}, "s");
  Node *k = g.create(OpKind::Add, {e, e}, e->type, {}, "k");
  Node *f = g.create(OpKind::Exp, {s}, s->type, {}, "f");
  Node *r2 = g.create(OpKind::Reshape, {f}, Type::f32({4, 4}), {}, "r2");
  Node *g1 = g.create(OpKind::Neg, {x}, x->type, {}, "g");
  Node *g2 = g.create(OpKind::Reshape, {g1}, Type::f32({4, 4}), {}, "g.sq");
  Node *k2 = g.create(OpKind::Reshape, {k}, Type::f32({4, 4}), {}, "k.sq");
  Node *t = g.create(OpKind::Add, {r2, g2}, Type::f32({4, 4}), {}, "t");
  Node *sum = g.create(OpKind::Add, {t, k2}, Type::f32({4, 4}), {}, "sum");
  g.setOutput("sum", sum);

  codegen::KernelLayout layout;
  std::string error;
  ASSERT_TRUE(codegen::layoutKernel(g, "k", layout, error)) << error;
  EXPECT_EQ(layout.of(r).aliasOf, e);
  EXPECT_EQ(layout.of(r).home, layout.of(e).home);
  ASSERT_EQ(layout.of(g1).home.offset, layout.of(f).home.offset)
      << "the plan no longer puts %g over %f; the test needs a new graph";
  EXPECT_EQ(layout.of(r2).aliasOf, nullptr) << "%g overwrites %f while %r2 is live";

  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(g, "k", spec, error)) << error;
  test::KernelRunner runner(g, spec);
  Interpreter interp(g);
  Tensor xv(x->type);
  for (size_t i = 0; i < xv.data.size(); ++i)
    xv.data[i] = 0.125 * static_cast<double>(i) - 1;
  interp.bind(x, xv);
  runner.bind(x, xv);
  ASSERT_TRUE(interp.run(&error)) << error;
  runner.run();
  std::vector<float> got = runner.output("sum");
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], interp.output("sum")->data[i], 1e-5) << i;
}

} // namespace
