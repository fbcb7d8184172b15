//===- test/unit/ir/IRTest.cpp - Printer, parser, shapes, interpreter -----===//
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "ir/IRParser.h"
#include "ir/Interpreter.h"
#include "ir/Printer.h"
#include "passes/MemoryPlan.h"
#include "test/support/OpSamples.h"

#include <cmath>
#include <gtest/gtest.h>
#include <sstream>

using namespace gradc;
using namespace gradc::ir;

namespace {

std::unique_ptr<Graph> parse(const std::string &text, std::string *errors = nullptr) {
  static SourceManager sources;
  const std::string *file = sources.add("test.gir", text);
  std::ostringstream out;
  Diagnostics diags(&sources, out);
  auto graph = parseGraph(sources.text(file), file, diags);
  if (errors)
    *errors = out.str();
  return graph;
}

// Every op of the table prints and parses back to the same text.
TEST(IRRoundTrip, EveryOpSample) {
  int checked = 0;
  for (const OpInfo &info : allOps()) {
    for (const test::OpSample &sample : test::samplesFor(info.kind)) {
      auto graph = test::buildSampleGraph(info.kind, sample);
      std::string text = toString(*graph);
      std::string errors;
      auto reparsed = parse(text, &errors);
      ASSERT_NE(reparsed, nullptr) << info.mnemonic << " " << sample.label << "\n"
                                   << text << errors;
      EXPECT_EQ(toString(*reparsed), text);
      ++checked;
    }
  }
  EXPECT_GT(checked, 40);
}

TEST(ShapeRules, MatmulReportsInnerDimensions) {
  Type a = Type::f32({5, 4}), b = Type::f32({3});
  const Type *operands[] = {&a, &b};
  TypeResult r = inferType(OpKind::MatMul, operands, {}, nullptr);
  ASSERT_FALSE(r.type);
  EXPECT_EQ(r.error, "matmul of f32[5,4] and f32[3]: inner dimensions 4 and 3 differ");
  EXPECT_EQ(r.operand, 1);
}

TEST(ShapeRules, BroadcastFollowsNumPy) {
  EXPECT_EQ(*broadcastShapes({2, 1, 3}, {4, 3}), (Shape{2, 4, 3}));
  EXPECT_EQ(*broadcastShapes({}, {4}), (Shape{4}));
  EXPECT_FALSE(broadcastShapes({4}, {3}));
}

TEST(ShapeRules, ReduceRemovesAxes) {
  Type x = Type::f32({2, 3, 4});
  const Type *operands[] = {&x};
  Attrs attrs;
  attrs.axes = {0, 2};
  EXPECT_EQ(*inferType(OpKind::Sum, operands, attrs, nullptr).type, Type::f32({3}));
  attrs.axes = {2, 0};
  EXPECT_EQ(inferType(OpKind::Sum, operands, attrs, nullptr).error,
            "axes must be listed in increasing order");
  attrs.axes = {3};
  EXPECT_EQ(inferType(OpKind::Sum, operands, attrs, nullptr).error,
            "axis 3 is out of range for a value of rank 3");
}

// i32 values are class labels: accepted exactly in the slots the op table
// marks OPERAND_LABELS, rejected everywhere else.
TEST(ShapeRules, LabelsOnlyWhereTheTableTakesThem) {
  Type logits = Type::f32({4, 3}), labels = Type::i32({4}), floats = Type::f32({4});
  {
    const Type *operands[] = {&logits, &labels};
    EXPECT_EQ(*inferType(OpKind::CrossEntropy, operands, {}, nullptr).type, Type::scalar());
  }
  {
    const Type *operands[] = {&logits, &floats};
    TypeResult r = inferType(OpKind::CrossEntropy, operands, {}, nullptr);
    EXPECT_EQ(r.error, "'cross_entropy' expects i32 class labels as operand 2, got f32[4]");
    EXPECT_EQ(r.operand, 1);
  }
  {
    Type five = Type::i32({5});
    const Type *operands[] = {&logits, &five};
    TypeResult r = inferType(OpKind::CrossEntropy, operands, {}, nullptr);
    EXPECT_EQ(r.error, "'cross_entropy' needs one label per row of the logits: logits f32[4,3] "
                       "take labels i32[4], got i32[5]");
  }
  {
    Type row = Type::f32({3}), one = Type::i32({});
    const Type *operands[] = {&row, &one};
    EXPECT_EQ(*inferType(OpKind::CrossEntropy, operands, {}, nullptr).type, Type::scalar());
  }
  {
    const Type *operands[] = {&labels};
    EXPECT_EQ(inferType(OpKind::Relu, operands, {}, nullptr).error,
              "'relu' expects f32 operands, operand 1 is i32[4]");
    Type declared = Type::f32({4, 3});
    EXPECT_EQ(*inferType(OpKind::OneHot, operands, {}, &declared).type, declared);
    Type wrong = Type::f32({3, 4});
    EXPECT_EQ(inferType(OpKind::OneHot, operands, {}, &wrong).error,
              "onehot of labels i32[4] has type f32[4,C], C the number of classes; got f32[3,4]");
  }
  {
    Type declared = Type::i32({4});
    EXPECT_EQ(inferType(OpKind::Param, {}, {}, &declared).error,
              "a 'param' value is f32, not i32[4]; only inputs and targets may be i32");
    EXPECT_EQ(*inferType(OpKind::Target, {}, {}, &declared).type, declared);
  }
  EXPECT_TRUE(opInfo(OpKind::CrossEntropy).takesLabels());
  EXPECT_FALSE(opInfo(OpKind::SquaredError).takesLabels());
}

TEST(ShapeRules, SoftmaxTakesVectorsAndMatrices) {
  Type cube = Type::f32({2, 3, 4}), matrix = Type::f32({2, 3});
  const Type *bad[] = {&cube};
  EXPECT_EQ(inferType(OpKind::LogSoftmax, bad, {}, nullptr).error,
            "'log_softmax' normalises the last axis of a vector or a matrix, got f32[2,3,4]");
  const Type *good[] = {&matrix};
  EXPECT_EQ(*inferType(OpKind::Softmax, good, {}, nullptr).type, matrix);
}

const char *kClassifier = R"(graph @c (forward) batch=2 optimizer=sgd {
forward:
  %o = input : f32[2,3]
  %y = target : i32[2]
  %L = cross_entropy %o, %y : f32[]
  return loss=%L
}
)";

TEST(Interpreter, CrossEntropyIsTheMeanNegativeLogLikelihood) {
  auto graph = parse(kClassifier);
  ASSERT_NE(graph, nullptr);
  Interpreter interp(*graph);
  interp.bind(graph->find("o"), Tensor(Type::f32({2, 3}), {1, 2, 3, 0, 0, 0}));
  interp.bind(graph->find("y"), Tensor(Type::i32({2}), {2, 0}));
  std::string error;
  ASSERT_TRUE(interp.run(&error)) << error;
  double row0 = std::log(std::exp(1) + std::exp(2) + std::exp(3)) - 3;
  double row1 = std::log(3.0);
  EXPECT_NEAR(interp.output("loss")->data[0], (row0 + row1) / 2, 1e-15);
}

TEST(Interpreter, CrossEntropyIsFiniteForHugeLogits) {
  auto graph = parse(kClassifier);
  ASSERT_NE(graph, nullptr);
  Interpreter interp(*graph);
  // Row 0 is confidently right, row 1 confidently wrong by 2e4.
  interp.bind(graph->find("o"), Tensor(Type::f32({2, 3}), {1e4, -1e4, 0, 1e4, -1e4, -1e4}));
  interp.bind(graph->find("y"), Tensor(Type::i32({2}), {0, 1}));
  std::string error;
  ASSERT_TRUE(interp.run(&error)) << error;
  EXPECT_NEAR(interp.output("loss")->data[0], (0 + 2e4) / 2, 1e-9);
}

TEST(Interpreter, RunningOnlyWhatAValueNeedsSkipsTheRest) {
  // %side does not feed %L: a run for %L alone leaves it without a value
  // and gives %L exactly as a full run does.
  auto graph = parse(R"(graph @c (forward) batch=2 optimizer=sgd {
forward:
  %o = input : f32[2,3]
  %y = target : i32[2]
  %L = cross_entropy %o, %y : f32[]
  %side = mul %o, %o : f32[2,3]
  return loss=%L, side=%side
}
)");
  ASSERT_NE(graph, nullptr);
  Interpreter interp(*graph);
  interp.bind(graph->find("o"), Tensor(Type::f32({2, 3}), {1, 2, 3, 0, 0, 0}));
  interp.bind(graph->find("y"), Tensor(Type::i32({2}), {2, 0}));
  std::string error;
  ASSERT_TRUE(interp.run(&error)) << error;
  const double full = interp.output("loss")->data[0];
  ASSERT_NE(interp.output("side"), nullptr);
  ASSERT_TRUE(interp.run(&error, graph->find("L"))) << error;
  EXPECT_EQ(interp.output("loss")->data[0], full);
  EXPECT_THROW(interp.value(graph->find("side")), std::out_of_range);
}

TEST(Interpreter, OutOfRangeLabelIsAnError) {
  auto graph = parse(kClassifier);
  ASSERT_NE(graph, nullptr);
  Interpreter interp(*graph);
  interp.bind(graph->find("o"), Tensor(Type::f32({2, 3}), {1, 2, 3, 0, 0, 0}));
  interp.bind(graph->find("y"), Tensor(Type::i32({2}), {2, 3}));
  std::string error;
  EXPECT_FALSE(interp.run(&error));
  EXPECT_EQ(error, "cross_entropy %L: label 3 of row 1 is not a class index in [0, 3)");
  interp.bind(graph->find("y"), Tensor(Type::i32({2}), {-1, 0}));
  EXPECT_FALSE(interp.run(&error));
  EXPECT_EQ(error, "cross_entropy %L: label -1 of row 0 is not a class index in [0, 3)");
}

TEST(Interpreter, RowOpsAndBinaryCrossEntropy) {
  auto graph = parse(R"(graph @r (forward) optimizer=sgd {
forward:
  %x = input : f32[2,2]
  %t = input : f32[2,2]
  %p = softmax %x : f32[2,2]
  %q = log_softmax %x : f32[2,2]
  %m = max %x {axes=[0]} : f32[2]
  %hi = maximum %x, %t : f32[2,2]
  %lo = minimum %x, %t : f32[2,2]
  %L = bce_logits %x, %t : f32[]
  return loss=%L
}
)");
  ASSERT_NE(graph, nullptr);
  Interpreter interp(*graph);
  interp.bind(graph->find("x"), Tensor(Type::f32({2, 2}), {0, std::log(3.0), 1e4, -1e4}));
  interp.bind(graph->find("t"), Tensor(Type::f32({2, 2}), {1, 0, 1, 0}));
  std::string error;
  ASSERT_TRUE(interp.run(&error)) << error;
  EXPECT_NEAR(interp.value(graph->find("p")).data[0], 0.25, 1e-15);
  EXPECT_NEAR(interp.value(graph->find("p")).data[1], 0.75, 1e-15);
  EXPECT_NEAR(interp.value(graph->find("q")).data[2], 0, 1e-15);
  EXPECT_NEAR(interp.value(graph->find("q")).data[3], -2e4, 1e-9);
  EXPECT_EQ(interp.value(graph->find("m")).data, (std::vector<double>{1e4, std::log(3.0)}));
  EXPECT_EQ(interp.value(graph->find("hi")).data, (std::vector<double>{1, std::log(3.0), 1e4, 0}));
  EXPECT_EQ(interp.value(graph->find("lo")).data, (std::vector<double>{0, 0, 1, -1e4}));
  // bce: log 2 - 0 for (0, 1); log(1 + 3) - 0 ... each element by the stable form.
  double expected = (std::log(2.0) + std::log(4.0) + 0 + 0) / 4;
  EXPECT_NEAR(interp.output("loss")->data[0], expected, 1e-15);
}

TEST(Interpreter, ComputesTheLectureForwardPass) {
  auto graph = parse(R"(graph @g (forward) optimizer=sgd {
forward:
  %x = input : f32[2]
  %W = param {init=zeros} : f32[2,2]
  %z = matmul %W, %x : f32[2]
  %h = relu %z : f32[2]
  %y = target : f32[2]
  %L = squared_error %h, %y {scale=0.5} : f32[]
  return loss=%L
}
)");
  ASSERT_NE(graph, nullptr);
  Interpreter interp(*graph);
  interp.bind(graph->find("x"), Tensor(Type::f32({2}), {1, 2}));
  interp.bind(graph->find("W"), Tensor(Type::f32({2, 2}), {1, -1, 0.5, 2}));
  interp.bind(graph->find("y"), Tensor(Type::f32({2}), {0, 1}));
  std::string error;
  ASSERT_TRUE(interp.run(&error)) << error;
  // z = [1 - 2, 0.5 + 4] = [-1, 4.5]; h = [0, 4.5]; L = (0 + 3.5^2) / 2.
  EXPECT_EQ(interp.value(graph->find("z")).data, (std::vector<double>{-1, 4.5}));
  EXPECT_DOUBLE_EQ(interp.output("loss")->data[0], 6.125);
}

TEST(Interpreter, UnboundLeafIsAnError) {
  auto graph = parse("graph @g (forward) optimizer=sgd {\n  %x = input : f32[2]\n  return "
                     "loss=%x\n}\n");
  ASSERT_NE(graph, nullptr);
  Interpreter interp(*graph);
  std::string error;
  EXPECT_FALSE(interp.run(&error));
  EXPECT_EQ(error, "no value was given for input %x");
}

TEST(MemoryPlan, LiveValuesNeverShareBytes) {
  // A chain with a long-lived value (a) and short-lived temporaries.
  auto graph = parse(R"(graph @g (forward) optimizer=sgd {
forward:
  %x = input : f32[64]
  %a = exp %x : f32[64]
  %b = relu %a : f32[64]
  %c = tanh %b : f32[64]
  %d = neg %c : f32[64]
  %e = add %d, %a : f32[64]
  %L = sumsq %e : f32[]
  return loss=%L
}
)");
  ASSERT_NE(graph, nullptr);
  passes::MemoryPlan plan = passes::planMemory(*graph);
  for (const auto &p : plan.buffers)
    for (const auto &q : plan.buffers) {
      if (&p == &q || p.external || q.external)
        continue;
      bool overlapInTime = !(p.lastUse < q.firstDef || q.lastUse < p.firstDef);
      bool overlapInBytes = p.offset < q.offset + q.bytes && q.offset < p.offset + p.bytes;
      EXPECT_FALSE(overlapInTime && overlapInBytes) << p.value->name << " and " << q.value->name;
      EXPECT_EQ(p.offset % passes::kArenaAlignment, 0);
    }
  EXPECT_LT(plan.arenaBytes, plan.noReuseBytes);
  EXPECT_TRUE(plan.of(graph->find("L")).external); // a result lives in a caller buffer
}

} // namespace
