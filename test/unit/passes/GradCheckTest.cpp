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
#include "ir/Interpreter.h"
#include "ir/Printer.h"
#include "passes/Pass.h"
#include "test/support/OpSamples.h"

#include <cmath>
#include <gtest/gtest.h>
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
        continue;
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
