//===- test/unit/passes/GradCheckTest.cpp - Every op's gradient vs FD -----===//
//
// Walks ir/Ops.def: for every op with a gradient rule, for every sample in
// test/support/OpSamples.cpp, derives the gradient with the autodiff pass
// and compares it with central finite differences of the interpreter
// (double precision).  A GRAD op without samples fails; so does a gradient
// that is all zero (a rule that forgot to contribute would pass otherwise).
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/IRParser.h"
#include "ir/Interpreter.h"
#include "ir/Printer.h"
#include "passes/GradientRules.h"
#include "passes/Pass.h"
#include "test/support/OpSamples.h"

#include <cmath>
#include <gtest/gtest.h>
#include <map>
#include <sstream>

using namespace gradc;
using namespace gradc::ir;

namespace {

class OpGradient : public ::testing::TestWithParam<OpKind> {};

TEST_P(OpGradient, MatchesCentralDifferences) {
  OpKind kind = GetParam();
  const OpInfo &info = opInfo(kind);
  std::vector<test::OpSample> samples = test::samplesFor(kind);
  ASSERT_FALSE(samples.empty()) << "op '" << info.mnemonic
                                << "' has a gradient rule but no sample in OpSamples.cpp";
  for (const test::OpSample &sample : samples) {
    SCOPED_TRACE(std::string(info.mnemonic) + " " + sample.label);
    std::unique_ptr<Graph> graph = test::buildSampleGraph(kind, sample);
    std::ostringstream errors;
    Diagnostics diags(nullptr, errors);
    std::vector<std::string> pipeline = {"autodiff", "verify"};
    ASSERT_TRUE(passes::runPipeline(*graph, pipeline, diags)) << errors.str();

    Interpreter interp(*graph);
    auto leafValues = test::randomLeafValues(*graph, sample, 1234);
    for (auto &[leaf, value] : leafValues)
      interp.bind(leaf, value);
    std::string error;
    ASSERT_TRUE(interp.run(&error)) << error;

    for (auto &[leaf, value] : leafValues) {
      if (!leaf->is(OpKind::Param))
        continue; // inputs, and class labels (targets): data, not perturbed
      ASSERT_EQ(leaf->type.dtype, DType::F32) << "%" << leaf->name << " is perturbed";
      const Tensor *derivedTensor = interp.output("grad." + leaf->name);
      ASSERT_NE(derivedTensor, nullptr) << "no gradient for %" << leaf->name << "\n"
                                        << toString(*graph);
      // A copy: every run of the interpreter replaces its values.
      std::vector<double> derived = derivedTensor->data;
      bool nonzero = false;
      for (size_t i = 0; i < value.data.size(); ++i) {
        const double eps = 1e-6;
        Tensor perturbed = value;
        perturbed.data[i] += eps;
        interp.bind(leaf, perturbed);
        ASSERT_TRUE(interp.run(&error));
        double plus = interp.output("loss")->data[0];
        perturbed.data[i] -= 2 * eps;
        interp.bind(leaf, perturbed);
        ASSERT_TRUE(interp.run(&error));
        double minus = interp.output("loss")->data[0];
        double fd = (plus - minus) / (2 * eps);
        double g = derived[i];
        EXPECT_NEAR(g, fd, 1e-6 + 1e-5 * std::fabs(fd))
            << "d loss / d " << leaf->name << "[" << i << "]\n"
            << toString(*graph);
        nonzero |= g != 0;
      }
      interp.bind(leaf, value);
      EXPECT_TRUE(nonzero) << "the gradient of %" << leaf->name << " is all zero";
    }
  }
}

// --- Where the finite differences cannot look: ties and labels. ----------

/// Runs autodiff on `text` and the interpreter with `values`; returns the
/// gradients "grad.<param>" by param name.
std::map<std::string, std::vector<double>>
gradientsOf(const std::string &text, const std::map<std::string, std::vector<double>> &values) {
  static SourceManager sources;
  const std::string *file = sources.add("ties.gir", text);
  std::ostringstream errors;
  Diagnostics diags(&sources, errors);
  std::unique_ptr<Graph> graph = parseGraph(sources.text(file), file, diags);
  EXPECT_NE(graph, nullptr) << errors.str();
  if (!graph)
    return {};
  std::vector<std::string> pipeline = {"autodiff", "verify"};
  EXPECT_TRUE(passes::runPipeline(*graph, pipeline, diags)) << errors.str();
  Interpreter interp(*graph);
  for (const auto &[name, data] : values) {
    const Node *leaf = graph->find(name);
    interp.bind(leaf, Tensor(leaf->type, data));
  }
  std::string error;
  EXPECT_TRUE(interp.run(&error)) << error;
  std::map<std::string, std::vector<double>> result;
  for (const GraphOutput &out : graph->outputs)
    if (out.key.starts_with("grad."))
      result[out.key.substr(5)] = interp.value(out.value).data;
  return result;
}

// max shares its adjoint equally between the elements that attain it.
TEST(GradientRules, MaxSharesTiesEqually) {
  auto grads = gradientsOf(R"(graph @g (forward) optimizer=sgd {
forward:
  %a = param {init=zeros} : f32[3,3]
  %m = max %a {axes=[1]} : f32[3]
  %L = sum %m {axes=[0]} : f32[]
  return loss=%L
}
)",
                           {{"a", {1, 3, 3, 2, 0, 1, 5, 5, 5}}});
  EXPECT_EQ(grads["a"], (std::vector<double>{0, 0.5, 0.5, 1, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3}));
}

// maximum and minimum give the whole adjoint to the first operand on ties.
TEST(GradientRules, MaximumAndMinimumTiesGoToTheFirstOperand) {
  const char *text = R"(graph @g (forward) optimizer=sgd {
forward:
  %a = param {init=zeros} : f32[3]
  %b = param {init=zeros} : f32[3]
  %y = OP %a, %b : f32[3]
  %L = sum %y {axes=[0]} : f32[]
  return loss=%L
}
)";
  std::map<std::string, std::vector<double>> values = {{"a", {1, 2, 3}}, {"b", {1, 3, 2}}};
  std::string maximum = text, minimum = text;
  maximum.replace(maximum.find("OP"), 2, "maximum");
  minimum.replace(minimum.find("OP"), 2, "minimum");
  auto high = gradientsOf(maximum, values);
  EXPECT_EQ(high["a"], (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(high["b"], (std::vector<double>{0, 1, 0}));
  auto low = gradientsOf(minimum, values);
  EXPECT_EQ(low["a"], (std::vector<double>{1, 1, 0}));
  EXPECT_EQ(low["b"], (std::vector<double>{0, 0, 1}));
}

// Class labels are never differentiated: the table's OPERAND_LABELS slots.
TEST(GradientRules, LabelsAreNotDifferentiable) {
  for (const OpInfo &info : allOps())
    for (int i = 0; i < info.arity; ++i)
      EXPECT_EQ(passes::isDifferentiableOperand(info.kind, i), info.operand(i) != OPERAND_LABELS)
          << info.mnemonic << " operand " << i;
  EXPECT_TRUE(passes::isDifferentiableOperand(OpKind::CrossEntropy, 0));
  EXPECT_FALSE(passes::isDifferentiableOperand(OpKind::CrossEntropy, 1));
}

/// Every op whose row in ir/Ops.def has the GRAD trait.
std::vector<OpKind> differentiableOps() {
  std::vector<OpKind> kinds;
  for (const OpInfo &info : allOps())
    if (info.traits & GRAD)
      kinds.push_back(info.kind);
  return kinds;
}

INSTANTIATE_TEST_SUITE_P(OpTable, OpGradient, ::testing::ValuesIn(differentiableOps()),
                         [](const ::testing::TestParamInfo<OpKind> &param) {
                           return std::string(opInfo(param.param).mnemonic);
                         });

} // namespace
