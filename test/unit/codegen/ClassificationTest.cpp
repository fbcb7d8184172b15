//===- test/unit/codegen/ClassificationTest.cpp - Classification ops, compiled -===//
//
// What the table-driven tests (random values in a small range) do not
// reach: logits of +-1e4, where a naive softmax overflows, and class labels
// outside [0, C), which generated code clamps instead of reading out of
// bounds (the interpreter reports them).
//
//===----------------------------------------------------------------------===//
#include "KernelRunner.h"
#include "codegen/Codegen.h"
#include "ir/IRParser.h"
#include "ir/Interpreter.h"
#include "ir/Printer.h"
#include "passes/Pass.h"

#include <cmath>
#include <gtest/gtest.h>
#include <sstream>

using namespace gradc;
using namespace gradc::ir;

namespace {

/// Parses `text` and runs `passes` on it.
std::unique_ptr<Graph> build(const std::string &text, std::vector<std::string> passes) {
  static SourceManager sources;
  const std::string *file = sources.add("classification.gir", text);
  std::ostringstream errors;
  Diagnostics diags(&sources, errors);
  std::unique_ptr<Graph> graph = parseGraph(sources.text(file), file, diags);
  EXPECT_NE(graph, nullptr) << errors.str();
  if (graph) {
    EXPECT_TRUE(passes::runPipeline(*graph, passes, diags)) << errors.str();
  }
  return graph;
}

const char *kClassifier = R"(graph @c (forward) batch=4 optimizer=sgd {
forward:
  %o = param {init=zeros} : f32[4,3]
  %y = target : i32[4]
  %L = cross_entropy %o, %y : f32[]
  %p = softmax %o : f32[4,3]
  %q = log_softmax %o : f32[4,3]
  %t = input : f32[4,3]
  %B = bce_logits %o, %t : f32[]
  return loss=%L, probabilities=%p, log_probabilities=%q, bce=%B
}
)";

void expectNear(const std::vector<double> &reference, const std::vector<float> &jit,
                const std::string &what) {
  ASSERT_EQ(reference.size(), jit.size()) << what;
  for (size_t i = 0; i < jit.size(); ++i) {
    EXPECT_TRUE(std::isfinite(jit[i])) << what << "[" << i << "] = " << jit[i];
    EXPECT_NEAR(jit[i], reference[i], 1e-6 + 1e-6 * std::fabs(reference[i]))
        << what << "[" << i << "]";
  }
}

TEST(Classification, HugeLogitsStayFinite) {
  auto graph = build(kClassifier, {"autodiff", "simplify"});
  ASSERT_NE(graph, nullptr);
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph, "huge", spec, error)) << error;
  // Right and confident, wrong by 2e4, a tie at +1e4, all at -1e4.
  Tensor logits(Type::f32({4, 3}),
                {1e4, -1e4, 0, 1e4, -1e4, -1e4, 1e4, 1e4, -1e4, -1e4, -1e4, -1e4});
  Tensor labels(Type::i32({4}), {0, 1, 1, 2});
  Tensor targets(Type::f32({4, 3}), {1, 0, 0.5, 0, 1, 1, 1, 0, 0, 0, 0, 1});
  Interpreter interp(*graph);
  test::KernelRunner runner(*graph, spec);
  for (auto &[name, value] :
       {std::pair{"o", &logits}, std::pair{"y", &labels}, std::pair{"t", &targets}}) {
    interp.bind(graph->find(name), *value);
    runner.bind(graph->find(name), *value);
  }
  ASSERT_TRUE(interp.run(&error)) << error;
  runner.run();
  // (0 + 2e4 + log 2 + log 3) / 4.
  EXPECT_NEAR(interp.output("loss")->data[0], (2e4 + std::log(2.0) + std::log(3.0)) / 4, 1e-9);
  for (const char *key : {"loss", "probabilities", "log_probabilities", "bce", "grad.o"})
    expectNear(interp.output(key)->data, runner.output(key), key);
}

TEST(Classification, OutOfRangeLabelsAreClampedInGeneratedCode) {
  auto graph = build(R"(graph @c (forward) batch=4 optimizer=sgd {
forward:
  %o = input : f32[4,3]
  %y = target : i32[4]
  %L = cross_entropy %o, %y : f32[]
  %h = onehot %y : f32[4,3]
  return loss=%L, onehot=%h
}
)",
                     {});
  ASSERT_NE(graph, nullptr);
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph, "clamp", spec, error)) << error;
  Tensor logits(Type::f32({4, 3}), {1, 2, 3, 0.5, -1, 2, 0, 0, 1, 4, 1, -2});
  test::KernelRunner runner(*graph, spec);
  runner.bind(graph->find("o"), logits);
  runner.bind(graph->find("y"), Tensor(Type::i32({4}), {-5, 3, 1000000, 1}));
  runner.run();

  // The interpreter refuses those labels ...
  Interpreter interp(*graph);
  interp.bind(graph->find("o"), logits);
  interp.bind(graph->find("y"), Tensor(Type::i32({4}), {-5, 3, 1000000, 1}));
  EXPECT_FALSE(interp.run(&error));
  EXPECT_EQ(error, "cross_entropy %L: label -5 of row 0 is not a class index in [0, 3)");
  // ... and the compiled step computes what the clamped labels give.
  interp.bind(graph->find("y"), Tensor(Type::i32({4}), {0, 2, 2, 1}));
  ASSERT_TRUE(interp.run(&error)) << error;
  expectNear(interp.output("loss")->data, runner.output("loss"), "loss");
  expectNear(interp.output("onehot")->data, runner.output("onehot"), "onehot");
}

} // namespace
