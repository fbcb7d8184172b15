//===- test/unit/codegen/MathApproxTest.cpp - Accuracy of inline exp/log/... ===//
//
// Measures the error of the inline approximations (codegen/MathApprox.cpp)
// in ulp of the correctly rounded result, against double-precision libm, on
// 2^24 f32 inputs (2^22 for each pow exponent) evenly spaced by bit pattern
// over each range (so every binade is covered as densely as its share of the
// floats), and checks the
// special values.  The bounds asserted here are the ones documented in
// codegen/MathApprox.h; the measured maxima are printed.
//
//===----------------------------------------------------------------------===//
#include "KernelRunner.h"
#include "codegen/Codegen.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <functional>
#include <gtest/gtest.h>
#include <limits>

using namespace gradc;
using namespace gradc::ir;

namespace {

constexpr int64_t kChunk = 1 << 20;

/// input x : f32[count]; y = op(x); return y.
std::unique_ptr<Graph> unaryGraph(OpKind kind, double attr = 0, int64_t count = kChunk) {
  auto graph = std::make_unique<Graph>();
  graph->name = "approx";
  Node *x = graph->create(OpKind::Input, {}, Type::f32({count}), {}, "x");
  Attrs attrs;
  attrs.value = attr;
  Node *y = graph->create(kind, {x}, x->type, attrs, "y");
  graph->setOutput("y", y);
  return graph;
}

/// Total order on floats as integers: -0 and +0 are neighbours.
int64_t ordered(float f) {
  int32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits < 0 ? -static_cast<int64_t>(bits & 0x7fffffff) : bits;
}
float fromOrdered(int64_t k) {
  int32_t bits = k < 0 ? static_cast<int32_t>((-k) | 0x80000000u) : static_cast<int32_t>(k);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// Error of `got` in units in the last place of the f32 nearest to `ref`.
double ulpError(float got, double ref) {
  if (std::isnan(ref))
    return std::isnan(got) ? 0 : INFINITY;
  float rounded = static_cast<float>(ref);
  if (std::isinf(rounded) || std::isinf(got))
    return got == rounded ? 0 : INFINITY;
  int exponent = rounded == 0 ? -126 : std::max(std::ilogb(rounded), -126);
  double ulp = std::ldexp(1.0, exponent - 23);
  return std::fabs(static_cast<double>(got) - ref) / ulp;
}

struct Measured {
  double maxUlp = 0;
  float worstInput = 0;
};

/// Max ulp error of `kind` against `reference` over 2^log2Samples inputs
/// in [lo, hi].
Measured measure(OpKind kind, double attr, float lo, float hi,
                 const std::function<double(double)> &reference, int log2Samples = 24) {
  auto graph = unaryGraph(kind, attr);
  std::string error;
  rt::KernelSpec spec;
  EXPECT_TRUE(test::sharedJit().addKernel(*graph, "k", spec, error)) << error;
  if (!spec.fn)
    return {INFINITY, 0};
  test::KernelRunner runner(*graph, spec);
  const Node *x = graph->find("x");
  int64_t first = ordered(lo), last = ordered(hi);
  int64_t stride = std::max<int64_t>(1, (last - first) / (int64_t(1) << log2Samples));
  Measured result;
  Tensor input(x->type);
  for (int64_t k = first; k <= last;) {
    std::vector<float> values;
    for (int64_t i = 0; i < kChunk; ++i, k = std::min(k + stride, last + 1))
      input.data[i] = k <= last ? fromOrdered(k) : hi;
    runner.bind(x, input);
    runner.run();
    std::vector<float> y = runner.output("y");
    for (int64_t i = 0; i < kChunk; ++i) {
      double e = ulpError(y[i], reference(input.data[i]));
      if (e > result.maxUlp) {
        result.maxUlp = e;
        result.worstInput = static_cast<float>(input.data[i]);
      }
    }
  }
  return result;
}

void report(const char *what, const Measured &m) {
  std::printf("  %-28s max error %.3f ulp (at x = %.9g)\n", what, m.maxUlp, m.worstInput);
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

TEST(MathApprox, ExpWithinOneUlp) {
  Measured m = measure(OpKind::Exp, 0, -104.0f, 88.72283f, [](double x) { return std::exp(x); });
  report("exp [-104, 88.7]", m);
  EXPECT_LE(m.maxUlp, 1.01);
}

TEST(MathApprox, LogWithinOneUlp) {
  Measured m = measure(OpKind::Log, 0, std::numeric_limits<float>::denorm_min(), FLT_MAX,
                       [](double x) { return std::log(x); });
  report("log (0, FLT_MAX]", m);
  EXPECT_LE(m.maxUlp, 1.0);
}

TEST(MathApprox, TanhWithinOneAndAHalfUlp) {
  Measured m = measure(OpKind::Tanh, 0, -10.0f, 10.0f, [](double x) { return std::tanh(x); });
  report("tanh [-10, 10]", m);
  EXPECT_LE(m.maxUlp, 1.5);
}

TEST(MathApprox, SigmoidWithinTwoAndAHalfUlp) {
  Measured m = measure(OpKind::Sigmoid, 0, -104.0f, 40.0f, sigmoid);
  report("sigmoid [-104, 40]", m);
  EXPECT_LE(m.maxUlp, 2.5);
}

TEST(MathApprox, PowSpecialisedExponents) {
  for (double e : {2.0, 3.0, 0.5, -1.0, -1.5, 5.0}) {
    Measured m = measure(
        OpKind::Pow, e, 0.01f, 100.0f, [e](double x) { return std::pow(x, e); }, 22);
    report(("pow x^" + std::to_string(e) + " [0.01, 100]").c_str(), m);
    EXPECT_LE(m.maxUlp, 1.0) << "exponent " << e;
  }
}

TEST(MathApprox, PowGeneralExponent) {
  // exp(e log x) with e log x in double: the f32 log1p and exp polynomials'
  // errors remain (in f32 throughout it would be 22 ulp here, where
  // |e ln x| reaches 12.4).
  Measured m = measure(OpKind::Pow, 2.7, 0.01f, 100.0f, [](double x) { return std::pow(x, 2.7); });
  report("pow x^2.7 [0.01, 100]", m);
  EXPECT_LE(m.maxUlp, 2.0);
  Measured wide =
      measure(OpKind::Pow, -0.37, 1e-30f, 1e30f, [](double x) { return std::pow(x, -0.37); });
  report("pow x^-0.37 [1e-30, 1e30]", wide);
  EXPECT_LE(wide.maxUlp, 2.0);
}

TEST(MathApprox, SpecialValues) {
  const float inf = INFINITY, nan = NAN;
  struct Case {
    OpKind kind;
    double attr;
    float x, expected;
  };
  const Case cases[] = {
      {OpKind::Exp, 0, -inf, 0},     {OpKind::Exp, 0, inf, inf},     {OpKind::Exp, 0, 0, 1},
      {OpKind::Exp, 0, -200, 0},     {OpKind::Exp, 0, 89, inf},      {OpKind::Exp, 0, nan, nan},
      {OpKind::Log, 0, 0, -inf},     {OpKind::Log, 0, -0.0f, -inf},  {OpKind::Log, 0, -1, nan},
      {OpKind::Log, 0, inf, inf},    {OpKind::Log, 0, 1, 0},         {OpKind::Log, 0, nan, nan},
      {OpKind::Tanh, 0, inf, 1},     {OpKind::Tanh, 0, -inf, -1},    {OpKind::Tanh, 0, 0, 0},
      {OpKind::Tanh, 0, nan, nan},   {OpKind::Sigmoid, 0, inf, 1},   {OpKind::Sigmoid, 0, -inf, 0},
      {OpKind::Sigmoid, 0, 0, 0.5f}, {OpKind::Sigmoid, 0, nan, nan}, {OpKind::Relu, 0, nan, 0},
      {OpKind::Sqrt, 0, -1, nan},    {OpKind::Pow, 2.7, 0, 0},       {OpKind::Pow, -1.5, 0, inf},
      {OpKind::Pow, 2.7, -1, nan},   {OpKind::Pow, 3, -2, -8},       {OpKind::Pow, -1, -4, -0.25f},
      {OpKind::Pow, 0, nan, 1},
  };
  for (const Case &c : cases) {
    // 19 elements: a vector body and a scalar remainder.
    auto graph = unaryGraph(c.kind, c.attr, 19);
    std::string error;
    rt::KernelSpec spec;
    ASSERT_TRUE(test::sharedJit().addKernel(*graph, "k", spec, error)) << error;
    test::KernelRunner runner(*graph, spec);
    Tensor input(graph->find("x")->type);
    std::fill(input.data.begin(), input.data.end(), c.x);
    runner.bind(graph->find("x"), input);
    runner.run();
    for (float got : runner.output("y")) {
      if (std::isnan(c.expected))
        EXPECT_TRUE(std::isnan(got)) << opInfo(c.kind).mnemonic << "(" << c.x << ") = " << got;
      else
        EXPECT_EQ(got, c.expected) << opInfo(c.kind).mnemonic << "(" << c.x << ")";
    }
  }
}

} // namespace
