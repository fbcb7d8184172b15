//===- test/unit/codegen/EpilogueTest.cpp - Maps run in a product's tiles -===//
//
// The elementwise maps that read a product run in its epilogue, on each
// tile as it completes (codegen/Lowering.cpp, "Epilogues of matrix
// products"): a bias broadcast over rows, relu and a mask after one
// product; momentum and an in-place update of optimizer state after
// another.  The shapes give the tiles a remainder of rows, a masked last
// panel of columns and k split into blocks (the last one shorter for one
// product, as long as the others for the other), and the products are
// big enough to run on the pool.  Results must match the interpreter, and
// be the same bits for any thread count.
//
//===----------------------------------------------------------------------===//
#include "KernelRunner.h"
#include "codegen/Codegen.h"
#include "ir/Diagnostics.h"
#include "ir/IRParser.h"
#include "ir/Interpreter.h"
#include "runtime/ThreadPool.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <sstream>

using namespace gradc;
using namespace gradc::ir;

namespace {

/// Random values in [-1, 1) for every leaf of `graph` (a hyper gets 0.1),
/// drawn in node order from `seed`.
std::vector<std::pair<const Node *, Tensor>> randomLeaves(const Graph &graph, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<std::pair<const Node *, Tensor>> leaves;
  for (const auto &node : graph.nodes()) {
    if (!node->isLeaf())
      continue;
    Tensor value(node->type);
    for (double &v : value.data)
      v = node->is(OpKind::Hyper) ? 0.1 : static_cast<float>(dist(rng));
    leaves.emplace_back(node.get(), value);
  }
  return leaves;
}

const char *kEpilogueGraph = R"(graph @epi (train) optimizer=sgd {
forward:
  %x = input : f32[61,700]
  %x2 = input : f32[61,702]
  %w = input : f32[700,94]
  %wt = input : f32[94,702]
  %b = input : f32[94]
  %mask = input : f32[61,94]
  %p = matmul %x, %w : f32[61,94]
  %e = exp %b : f32[94]
  %q = add %p, %b : f32[61,94]
  %h = relu %q : f32[61,94]
  %o = mul %h, %mask : f32[61,94]
  %p2 = matmul %x2, %wt {transpose_b} : f32[61,94]
update:
  %lr = hyper {key="lr"} : f32[]
  %V = state {init=zeros} : f32[61,94]
  %V.decayed = scale %V {factor=0.9} : f32[61,94]
  %V.next = add %V.decayed, %p2 : f32[61,94]
  update %V, %V.next
  %V.step = mul %lr, %V.next : f32[61,94]
  return pre=%q, out=%o, exp=%e, step=%V.step
}
)";

class Epilogue : public ::testing::Test {
protected:
  void SetUp() override {
    const std::string *file = sources_.add("epilogue.gir", kEpilogueGraph);
    std::ostringstream errors;
    Diagnostics diags(&sources_, errors);
    graph_ = parseGraph(sources_.text(file), file, diags);
    ASSERT_NE(graph_, nullptr) << errors.str();
    leaves_ = randomLeaves(*graph_, 11);
  }

  SourceManager sources_;
  std::unique_ptr<Graph> graph_;
  std::vector<std::pair<const Node *, Tensor>> leaves_;
};

TEST_F(Epilogue, BothProductsTakeTheirMaps) {
  std::string ir, error;
  ASSERT_TRUE(codegen::emitLLVMIR(*graph_, "step", codegen::CodegenOptions{}, false, ir, error))
      << error;
  // The first product takes the bias, relu and mask (and stores the
  // pre-activation, a result); exp of the bias is stepped over, and so is
  // V's decay, which reads neither product.  The second takes the decay,
  // the momentum, the update of V (in place) and the step (a result).
  EXPECT_NE(ir.find("define internal void @gradc_epi_step.p.epilogue(ptr %pre.out, ptr "
                    "%out.out, ptr %b.buf, ptr %mask.buf, ptr %tile,"),
            std::string::npos)
      << ir;
  EXPECT_NE(ir.find("define internal void @gradc_epi_step.p2.epilogue(ptr %step.out, ptr "
                    "%V.buf, ptr %lr.hyper, ptr %tile,"),
            std::string::npos)
      << ir;
  // k is split into blocks for both (AVX2: 3 blocks of 234 for k = 702 and
  // 234, 234, 232 for k = 700; AVX-512 the other way round), so one of them
  // decides at run time in its loop over blocks whether a tile is complete
  // (epilogue) or partial (stored to C).
  EXPECT_NE(ir.find(".complete.then:"), std::string::npos) << ir;
  EXPECT_NE(ir.find(".partial.then:"), std::string::npos) << ir;
}

TEST_F(Epilogue, MatchesTheInterpreterForAnyThreadCount) {
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph_, "step", spec, error)) << error;
  Interpreter interp(*graph_);
  test::KernelRunner runner(*graph_, spec);
  auto bindAll = [&] {
    for (auto &[leaf, value] : leaves_)
      runner.bind(leaf, value);
  };
  for (auto &[leaf, value] : leaves_)
    interp.bind(leaf, value);
  bindAll();
  ASSERT_TRUE(interp.run(&error)) << error;
  runner.run();
  const char *keys[] = {"pre", "out", "exp", "step"};
  for (const char *key : keys) {
    const std::vector<double> &expected = interp.output(key)->data;
    std::vector<float> got = runner.output(key);
    ASSERT_EQ(got.size(), expected.size()) << key;
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], expected[i], 1e-4 + 1e-5 * std::fabs(expected[i])) << key << i;
  }
  const Node *V = graph_->find("V");
  const std::vector<double> &expectedV = interp.leafValue(V).data;
  std::vector<float> gotV = runner.floats("V");
  for (size_t i = 0; i < gotV.size(); ++i)
    ASSERT_NEAR(gotV[i], expectedV[i], 1e-4 + 1e-5 * std::fabs(expectedV[i])) << "V" << i;

  // The state V is updated in place: every run starts from the same leaves.
  std::vector<std::vector<uint32_t>> serial;
  for (const char *key : keys)
    serial.push_back(runner.bits(key));
  serial.push_back(runner.bits("V"));
  rt::ThreadPool one(1), two(2), three(3);
  for (rt::ThreadPool *pool : {&one, &two, &three}) {
    bindAll();
    runner.run(0, 0, pool);
    size_t i = 0;
    for (const char *key : keys)
      EXPECT_EQ(runner.bits(key), serial[i++]) << key << " with " << pool->threads() << " threads";
    EXPECT_EQ(runner.bits("V"), serial[i]) << "V with " << pool->threads() << " threads";
  }
}

/// Binds every leaf of `graph` to the same randomLeaves values in the
/// interpreter and the kernel.
void bindRandomLeaves(const Graph &graph, unsigned seed, Interpreter &interp,
                      test::KernelRunner &runner) {
  for (auto &[leaf, value] : randomLeaves(graph, seed)) {
    interp.bind(leaf, value);
    runner.bind(leaf, value);
  }
}

// sink-penalty puts the sum of squares of a weight after the weight's last
// map, before its update.  When the update runs in the epilogue of the
// weight's gradient product, the sum would read the new weight there, so
// it is computed before the product instead (its bytes are free from the
// product on), and the update stays in the epilogue.
TEST(EpilogueWithPenalty, SumOfSquaresOfAnUpdatedWeightGoesBeforeTheProduct) {
  const char *text = R"(graph @pen (train) optimizer=sgd {
forward:
  %a = input : f32[32,64]
  %x = input : f32[32,80]
  %W = param {init=ones} : f32[64,80]
backward:
  %g = matmul %a, %x {transpose_a} : f32[64,80]
update:
  %lr = hyper {key="lr"} : f32[]
  %V = state {init=zeros} : f32[64,80]
  %V.decayed = scale %V {factor=0.9} : f32[64,80]
  %V.next = add %V.decayed, %g : f32[64,80]
  update %V, %V.next
  %step = mul %lr, %V.next : f32[64,80]
  %W.next = sub %W, %step : f32[64,80]
forward:
  %sW = sumsq %W : f32[]
update:
  update %W, %W.next
forward:
  %pen = scale %sW {factor=0.5} : f32[]
  return penalty=%pen
}
)";
  SourceManager sources;
  std::string ir, error;
  std::unique_ptr<Graph> graph = test::parseGraphText(sources, "penalty.gir", text, error);
  ASSERT_NE(graph, nullptr) << error;
  ASSERT_TRUE(codegen::emitLLVMIR(*graph, "step", codegen::CodegenOptions{}, false, ir, error))
      << error;
  EXPECT_NE(ir.find("define internal void @gradc_pen_step.g.epilogue("), std::string::npos) << ir;
  size_t sum = ir.find("\nsW:"), product = ir.find("\ng:");
  ASSERT_NE(sum, std::string::npos) << ir;
  ASSERT_NE(product, std::string::npos) << ir;
  EXPECT_LT(sum, product) << ir;

  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph, "step", spec, error)) << error;
  Interpreter interp(*graph);
  test::KernelRunner runner(*graph, spec);
  bindRandomLeaves(*graph, 3, interp, runner);
  ASSERT_TRUE(interp.run(&error)) << error;
  runner.run();
  EXPECT_NEAR(runner.output("penalty")[0], interp.output("penalty")->data[0],
              1e-4 * std::fabs(interp.output("penalty")->data[0]));
  for (const char *leaf : {"W", "V"}) {
    const std::vector<double> &expected = interp.leafValue(graph->find(leaf)).data;
    std::vector<float> got = runner.floats(leaf);
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], expected[i], 1e-4 + 1e-5 * std::fabs(expected[i])) << leaf << i;
  }
}

// A shallow product (k = 10: the gradient of a layer before a 10-class
// output) with an epilogue runs on the pool, its rows split between the
// threads, where one without would run serially (MatMul.cpp,
// kMinParallelDepth); the results are the interpreter's and the same bits
// for any thread count.
TEST(ShallowEpilogue, RunsOnThePoolAndMatchesTheInterpreterForAnyThreadCount) {
  const char *text = R"(graph @shallow (train) optimizer=sgd {
forward:
  %d = input : f32[128,10]
  %w = input : f32[10,256]
  %mask = input : f32[128,256]
  %pre = input : f32[128,256]
  %g = matmul %d, %w : f32[128,256]
  %gm = mul %g, %mask : f32[128,256]
  %s = step %pre : f32[128,256]
  %out = mul %gm, %s : f32[128,256]
  %d3 = matmul %d, %w : f32[128,256]
  return out=%out, plain=%d3
}
)";
  SourceManager sources;
  std::string ir, error;
  std::unique_ptr<Graph> graph = test::parseGraphText(sources, "shallow.gir", text, error);
  ASSERT_NE(graph, nullptr) << error;
  ASSERT_TRUE(codegen::emitLLVMIR(*graph, "step", codegen::CodegenOptions{}, false, ir, error))
      << error;
  EXPECT_NE(ir.find("define internal void @gradc_shallow_step.g.epilogue("), std::string::npos)
      << ir;
  EXPECT_NE(ir.find("define internal void @gradc.matmul.g.tasks("), std::string::npos) << ir;
  // The same product without an epilogue stays serial.
  EXPECT_NE(ir.find("define internal void @gradc.matmul.d3.range("), std::string::npos) << ir;

  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph, "step", spec, error)) << error;
  Interpreter interp(*graph);
  test::KernelRunner runner(*graph, spec);
  bindRandomLeaves(*graph, 5, interp, runner);
  ASSERT_TRUE(interp.run(&error)) << error;
  runner.run();
  const std::vector<double> &expected = interp.output("out")->data;
  std::vector<float> got = runner.output("out");
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], expected[i], 1e-5 + 1e-5 * std::fabs(expected[i])) << i;
  const std::vector<uint32_t> serial = runner.bits("out");
  rt::ThreadPool one(1), two(2), three(3);
  for (rt::ThreadPool *pool : {&one, &two, &three}) {
    runner.run(0, 0, pool);
    EXPECT_EQ(runner.bits("out"), serial) << pool->threads() << " threads";
  }
}

} // namespace
