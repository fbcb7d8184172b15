//===- test/unit/codegen/JitVsInterpreterTest.cpp - Every op, JIT vs reference -===//
//
// Walks ir/Ops.def: for every op with samples in test/support/OpSamples.cpp
// the sample graph is compiled with the JIT and run next to the reference
// interpreter on the same leaf values; "value" (the op's result) and "loss"
// (a weighted sum of it) must agree to f32 accuracy.  A GRAD op without
// samples fails, as in the gradient check.
//
// Tolerance: |jit - ref| <= 1e-5 + 1e-5 |ref|.  The interpreter works in
// double, the JIT in f32 with reassociated sums; exp, log, tanh, sigmoid and
// general pow are polynomial approximations within 3 ulp (~2e-7 relative,
// MathApproxTest.cpp), far inside this bound, so one tolerance serves all.
//
//===----------------------------------------------------------------------===//
#include "KernelRunner.h"
#include "codegen/Codegen.h"
#include "ir/Diagnostics.h"
#include "ir/IRParser.h"
#include "ir/Interpreter.h"
#include "ir/Printer.h"
#include "passes/Pass.h"
#include "runtime/Philox.h"
#include "runtime/ThreadPool.h"
#include "test/support/OpSamples.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <sstream>

using namespace gradc;
using namespace gradc::ir;

namespace {

constexpr double kAbsTolerance = 1e-5, kRelTolerance = 1e-5;

void expectClose(const std::vector<double> &reference, const std::vector<float> &jit,
                 const std::string &what, const Graph &graph) {
  ASSERT_EQ(reference.size(), jit.size()) << what;
  for (size_t i = 0; i < reference.size(); ++i)
    EXPECT_NEAR(jit[i], reference[i], kAbsTolerance + kRelTolerance * std::fabs(reference[i]))
        << what << "[" << i << "]\n"
        << toString(graph);
}

class OpJit : public ::testing::TestWithParam<OpKind> {};

TEST_P(OpJit, MatchesInterpreter) {
  OpKind kind = GetParam();
  const OpInfo &info = opInfo(kind);
  std::vector<test::OpSample> samples = test::samplesFor(kind);
  ASSERT_FALSE(samples.empty()) << "op '" << info.mnemonic
                                << "' has a gradient rule but no sample in OpSamples.cpp";
  for (const test::OpSample &sample : samples) {
    SCOPED_TRACE(std::string(info.mnemonic) + " " + sample.label);
    std::unique_ptr<Graph> graph = test::buildSampleGraph(kind, sample);
    std::string error;
    rt::KernelSpec spec;
    ASSERT_TRUE(test::sharedJit().addKernel(*graph, "check", spec, error)) << error;
    ASSERT_NE(spec.fn, nullptr);

    Interpreter interp(*graph);
    test::KernelRunner runner(*graph, spec);
    for (auto &[leaf, value] : test::randomLeafValues(*graph, sample, 4321)) {
      interp.bind(leaf, value);
      runner.bind(leaf, value);
    }
    const uint64_t seed = 0x0123456789abcdefull, step = 0x100000007ull;
    interp.setRandomKey(seed, step);
    ASSERT_TRUE(interp.run(&error)) << error;
    runner.run(seed, step);

    expectClose(interp.output("value")->data, runner.output("value"), "value", *graph);
    expectClose(interp.output("loss")->data, runner.output("loss"), "loss", *graph);
  }
}

// The backward ops a gradient rule writes (step, onehot, softmax, ...) are
// lowered too: for every GRAD op, the sample graph after autodiff and
// simplify gives the same gradients compiled as interpreted.
class OpJitGradient : public ::testing::TestWithParam<OpKind> {};

TEST_P(OpJitGradient, MatchesInterpreter) {
  OpKind kind = GetParam();
  for (const test::OpSample &sample : test::samplesFor(kind)) {
    SCOPED_TRACE(std::string(opInfo(kind).mnemonic) + " " + sample.label);
    std::unique_ptr<Graph> graph = test::buildSampleGraph(kind, sample);
    std::ostringstream errors;
    Diagnostics diags(nullptr, errors);
    std::vector<std::string> pipeline = {"autodiff", "simplify"};
    ASSERT_TRUE(passes::runPipeline(*graph, pipeline, diags)) << errors.str();
    std::string error;
    rt::KernelSpec spec;
    ASSERT_TRUE(test::sharedJit().addKernel(*graph, "grad", spec, error)) << error;

    Interpreter interp(*graph);
    test::KernelRunner runner(*graph, spec);
    for (auto &[leaf, value] : test::randomLeafValues(*graph, sample, 987)) {
      interp.bind(leaf, value);
      runner.bind(leaf, value);
    }
    ASSERT_TRUE(interp.run(&error)) << error;
    runner.run();
    int gradients = 0;
    for (const GraphOutput &out : graph->outputs)
      if (out.key.starts_with("grad.")) {
        expectClose(interp.output(out.key)->data, runner.output(out.key), out.key, *graph);
        ++gradients;
      }
    EXPECT_GT(gradients, 0);
  }
}

std::vector<OpKind> differentiableOps() {
  std::vector<OpKind> kinds;
  for (const OpInfo &info : allOps())
    if (info.traits & GRAD)
      kinds.push_back(info.kind);
  return kinds;
}

INSTANTIATE_TEST_SUITE_P(OpTable, OpJitGradient, ::testing::ValuesIn(differentiableOps()),
                         [](const ::testing::TestParamInfo<OpKind> &param) {
                           return std::string(opInfo(param.param).mnemonic);
                         });

/// Every op with samples, and every GRAD op (which must have some).  The
/// others are leaves and update, whose lowering UpdateTest and MemoryTest
/// check.
std::vector<OpKind> checkedOps() {
  std::vector<OpKind> kinds;
  for (const OpInfo &info : allOps())
    if ((info.traits & GRAD) || !test::samplesFor(info.kind).empty())
      kinds.push_back(info.kind);
  return kinds;
}

INSTANTIATE_TEST_SUITE_P(OpTable, OpJit, ::testing::ValuesIn(checkedOps()),
                         [](const ::testing::TestParamInfo<OpKind> &param) {
                           return std::string(opInfo(param.param).mnemonic);
                         });

// --- dropout_mask, bit for bit. --------------------------------------------

std::unique_ptr<Graph> maskGraph(int64_t count, double p, int64_t stream) {
  auto graph = std::make_unique<Graph>();
  graph->name = "mask";
  Attrs attrs;
  attrs.value = p;
  attrs.stream = stream;
  Node *mask = graph->create(OpKind::DropoutMask, {}, Type::f32({count}), attrs, "m");
  graph->setOutput("mask", mask);
  return graph;
}

TEST(DropoutMask, EqualsInterpreterBitForBit) {
  for (int64_t count : {1, 3, 4, 67, 1000}) {
    for (double p : {0.0, 0.3, 0.5, 0.9}) {
      SCOPED_TRACE("count " + std::to_string(count) + " p " + std::to_string(p));
      auto graph = maskGraph(count, p, 11);
      std::string error;
      rt::KernelSpec spec;
      ASSERT_TRUE(test::sharedJit().addKernel(*graph, "mask", spec, error)) << error;
      test::KernelRunner runner(*graph, spec);
      for (auto [seed, step] : {std::pair<uint64_t, uint64_t>{0, 0},
                                {42, 7},
                                {0xfedcba9876543210ull, 0x123456789ull}}) {
        Interpreter interp(*graph);
        interp.setRandomKey(seed, step);
        ASSERT_TRUE(interp.run(&error)) << error;
        runner.run(seed, step);
        std::vector<uint32_t> jit = runner.bits("mask");
        const std::vector<double> &reference = interp.output("mask")->data;
        for (int64_t i = 0; i < count; ++i) {
          float expected = static_cast<float>(reference[i]);
          uint32_t expectedBits;
          std::memcpy(&expectedBits, &expected, 4);
          ASSERT_EQ(jit[i], expectedBits)
              << "element " << i << " seed " << seed << " step " << step;
        }
      }
    }
  }
}

TEST(DropoutMask, BigMasksOnThePoolEqualInterpreterForAnyThreadCount) {
  // 16899 elements: drawn on the pool (4224 Philox groups split among
  // its threads), and a partial last group of 3 on the calling thread.
  const int64_t count = 16899;
  auto graph = maskGraph(count, 0.3, 2);
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph, "big_mask", spec, error)) << error;
  const uint64_t seed = 7, step = 123456789012ull;
  Interpreter interp(*graph);
  interp.setRandomKey(seed, step);
  ASSERT_TRUE(interp.run(&error)) << error;
  const std::vector<double> &reference = interp.output("mask")->data;
  test::KernelRunner runner(*graph, spec);
  rt::ThreadPool one(1), two(2), three(3);
  for (rt::ThreadPool *pool : {static_cast<rt::ThreadPool *>(nullptr), &one, &two, &three}) {
    runner.run(seed, step, pool);
    std::vector<float> got = runner.output("mask");
    ASSERT_EQ(int64_t(got.size()), count);
    for (int64_t i = 0; i < count; ++i)
      ASSERT_EQ(got[i], static_cast<float>(reference[i]))
          << "element " << i << " with " << (pool ? pool->threads() : 0) << " threads";
  }
}

// A big reduction down the columns of a matrix (a bias's gradient: the
// sum over the batch) runs on the pool, each task a block of whole cache
// lines of columns through all rows (codegen/Lowering.cpp, reduceColumns).
// 1,000 columns leave the last block shorter.  Sum, mean and max must
// match the interpreter, and be the same bits serially and on 1-3 threads.
TEST(Reduction, BigSumsDownColumnsEqualInterpreterForAnyThreadCount) {
  const char *text = R"(graph @columns (forward) {
forward:
  %x = input : f32[256,1000]
  %s = sum %x {axes=[0]} : f32[1000]
  %a = mean %x {axes=[0]} : f32[1000]
  %m = max %x {axes=[0]} : f32[1000]
  return sum=%s, mean=%a, max=%m
}
)";
  SourceManager sources;
  std::string ir, error;
  std::unique_ptr<Graph> graph = test::parseGraphText(sources, "columns.gir", text, error);
  ASSERT_NE(graph, nullptr) << error;
  ASSERT_TRUE(codegen::emitLLVMIR(*graph, "columns", {}, /*optimized=*/false, ir, error)) << error;
  EXPECT_NE(ir.find("@gradc_columns_columns.s.columns("), std::string::npos) << ir;

  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph, "columns", spec, error)) << error;
  Interpreter interp(*graph);
  test::KernelRunner runner(*graph, spec);
  Tensor x(graph->find("x")->type);
  for (size_t i = 0; i < x.data.size(); ++i)
    x.data[i] = static_cast<float>(std::sin(0.37 * double(i)) * 3.0);
  interp.bind(graph->find("x"), x);
  runner.bind(graph->find("x"), x);
  ASSERT_TRUE(interp.run(&error)) << error;
  std::vector<std::vector<uint32_t>> serial;
  rt::ThreadPool one(1), two(2), three(3);
  for (rt::ThreadPool *pool : {static_cast<rt::ThreadPool *>(nullptr), &one, &two, &three}) {
    runner.run(0, 0, pool);
    size_t k = 0;
    for (const char *key : {"sum", "mean", "max"}) {
      if (!pool) {
        expectClose(interp.output(key)->data, runner.output(key), key, *graph);
        serial.push_back(runner.bits(key));
      } else {
        EXPECT_EQ(runner.bits(key), serial[k]) << key << " with " << pool->threads() << " threads";
      }
      ++k;
    }
  }
}

TEST(DropoutMask, BigMasksOfOneSizeAreEachTheirOwnStream) {
  // Two masks of one size and p are two calls of gradc_dropout_mask that
  // differ only in the stream; each must be its own stream's mask.
  const int64_t count = 16384;
  auto graph = maskGraph(count, 0.5, 2);
  Attrs attrs;
  attrs.value = 0.5;
  attrs.stream = 5;
  graph->setOutput("other",
                   graph->create(OpKind::DropoutMask, {}, Type::f32({count}), attrs, "m5"));
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph, "two_masks", spec, error)) << error;
  Interpreter interp(*graph);
  interp.setRandomKey(3, 4);
  ASSERT_TRUE(interp.run(&error)) << error;
  test::KernelRunner runner(*graph, spec);
  rt::ThreadPool two(2);
  runner.run(3, 4, &two);
  for (const char *key : {"mask", "other"}) {
    std::vector<float> got = runner.output(key);
    const std::vector<double> &reference = interp.output(key)->data;
    ASSERT_EQ(got.size(), reference.size());
    for (int64_t i = 0; i < count; ++i)
      ASSERT_EQ(got[i], static_cast<float>(reference[i])) << key << " element " << i;
  }
  EXPECT_NE(runner.output("mask"), runner.output("other"));
}

TEST(DropoutMask, DropsAboutPOfTheElements) {
  const int64_t count = 100000;
  auto graph = maskGraph(count, 0.3, 2);
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph, "mask", spec, error)) << error;
  test::KernelRunner runner(*graph, spec);
  runner.run(/*seed=*/2024, /*step=*/1);
  std::vector<float> mask = runner.output("mask");
  int64_t zeros = 0;
  const float kept = static_cast<float>(1.0 / 0.7);
  for (float v : mask) {
    zeros += v == 0.0f;
    ASSERT_TRUE(v == 0.0f || v == kept) << v;
  }
  // Binomial(1e5, 0.3): standard deviation 145, so +-0.6% is over 4 sigma.
  EXPECT_NEAR(static_cast<double>(zeros) / count, 0.3, 0.006);
  // The same key gives the same mask; the next step another one.
  runner.run(2024, 1);
  EXPECT_EQ(runner.output("mask"), mask);
  runner.run(2024, 2);
  EXPECT_NE(runner.output("mask"), mask);
}

} // namespace
