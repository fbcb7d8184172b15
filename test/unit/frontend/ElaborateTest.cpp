//===- test/unit/frontend/ElaborateTest.cpp - AST to the forward graph ----===//
#include "FrontendTestUtil.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

using namespace gradc;
using namespace gradc::test;
using gradc::ir::Node;
using gradc::ir::OpKind;

namespace {

const char *kLecture = R"(# comments start with '#'
model lecture {
  input  x : f32[4]
  target y : f32[2]
  param  W1 : f32[5, 4] = xavier_normal
  param  W2 : f32[2, 5] = xavier_normal
  z = W1 @ x
  h = dropout(relu(z), 0.5)
  o = W2 @ h
  loss squared_error(o, y)
  weight_decay 0.01
}
)";

const char *kDense = R"(
block dense(n_in, n_out, act = relu)(x) {
  param W : f32[n_out, n_in] = xavier_uniform
  param b : f32[n_out] = zeros
  out act(x @ W^T + b)
}
)";

/// Elaborates `source`, expecting success and a graph that verifies.
std::unique_ptr<ir::Graph> build(const std::string &source, frontend::ElaborateOptions options = {},
                                 const std::string &fileName = "test.grad") {
  Compiled c = compileModel(source, options, fileName);
  EXPECT_NE(c.graph, nullptr) << c.diagnostics;
  EXPECT_EQ(c.errors, 0u) << c.diagnostics;
  if (!c.graph)
    return nullptr;
  std::ostringstream out;
  Diagnostics diags(&testSources(), out);
  EXPECT_TRUE(ir::verify(*c.graph, diags)) << out.str() << ir::toString(*c.graph);
  return std::move(c.graph);
}

std::vector<std::string> nodeNames(const ir::Graph &graph) {
  std::vector<std::string> names;
  for (const auto &node : graph.nodes())
    names.push_back(node->name);
  return names;
}

std::string where(const Node &node) { return fmt::format("{}:{}", node.loc.line, node.loc.col); }

TEST(Elaborate, LectureGraph) {
  auto graph = build(kLecture, {}, "lecture.grad");
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->name, "lecture");
  EXPECT_EQ(graph->kind, ir::GraphKind::Forward);
  EXPECT_EQ(graph->weightDecay, 0.01);
  EXPECT_EQ(graph->batch, 0);
  EXPECT_EQ(graph->optimizer.kind, "sgd");
  EXPECT_EQ(nodeNames(*graph),
            (std::vector<std::string>{"x", "y", "W1", "W2", "z", "relu", "h", "o", "L"}));

  Node *x = graph->find("x");
  EXPECT_EQ(x->kind, OpKind::Input);
  EXPECT_EQ(x->type, ir::Type::f32({4}));
  EXPECT_EQ(graph->find("y")->kind, OpKind::Target);

  Node *w1 = graph->find("W1");
  EXPECT_EQ(w1->kind, OpKind::Param);
  EXPECT_EQ(w1->type, ir::Type::f32({5, 4}));
  EXPECT_EQ(w1->attrs.init.kind, "xavier_normal");
  EXPECT_EQ(w1->attrs.fanIn, 4);  // lecture 2.7: n_in = d = 4
  EXPECT_EQ(w1->attrs.fanOut, 5); // n_out = h = 5
  Node *w2 = graph->find("W2");
  EXPECT_EQ(w2->attrs.fanIn, 5);
  EXPECT_EQ(w2->attrs.fanOut, 2);

  Node *z = graph->find("z");
  EXPECT_EQ(z->kind, OpKind::MatMul);
  EXPECT_EQ(z->operands, (std::vector<Node *>{w1, x}));
  EXPECT_FALSE(z->attrs.transA || z->attrs.transB);
  EXPECT_EQ(z->type, ir::Type::f32({5}));

  Node *h = graph->find("h");
  EXPECT_EQ(h->kind, OpKind::Dropout);
  EXPECT_EQ(h->attrs.value, 0.5);
  EXPECT_EQ(h->operands[0]->kind, OpKind::Relu);

  Node *loss = graph->find("L");
  EXPECT_EQ(loss->kind, OpKind::SquaredError);
  EXPECT_EQ(loss->attrs.value, 0.5); // L = 1/2 ||o - y||^2 (lecture 2.6)
  EXPECT_EQ(loss->type, ir::Type::scalar());
  EXPECT_EQ(graph->output("loss"), loss);
  EXPECT_EQ(graph->output("prediction"), graph->find("o"));

  // Locations: declared names, operators, function names.
  EXPECT_EQ(*x->loc.file, "lecture.grad");
  EXPECT_EQ(where(*x), "3:10");
  EXPECT_EQ(where(*w1), "5:10");
  EXPECT_EQ(where(*z), "7:10");
  EXPECT_EQ(where(*h->operands[0]), "8:15");
  EXPECT_EQ(where(*h), "8:7");
  EXPECT_EQ(where(*loss), "10:8");
}

TEST(Elaborate, DefaultInitByRank) {
  auto graph = build(R"(model m {
  input x : f32[3]
  param W : f32[2, 3]
  param b : f32[2]
  param s : f32[]
  loss sum(s * (W @ x + b))
})");
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->find("W")->attrs.init.kind, "xavier_normal");
  EXPECT_EQ(graph->find("b")->attrs.init.kind, "zeros");
  EXPECT_EQ(graph->find("s")->attrs.init.kind, "zeros");
}

TEST(Elaborate, InitializersWithArguments) {
  auto graph = build(R"(model m {
  param A : f32[2] = normal(0.01)
  param B : f32[2] = uniform(-0.5, 0.5)
  param C : f32[2] = constant(3)
  param D : f32[2] = he_uniform
  loss sum(A + B + C + D)
})");
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->find("A")->attrs.init, (ir::InitSpec{"normal", {0.01}}));
  EXPECT_EQ(graph->find("B")->attrs.init, (ir::InitSpec{"uniform", {-0.5, 0.5}}));
  EXPECT_EQ(graph->find("C")->attrs.init, (ir::InitSpec{"constant", {3}}));
  EXPECT_EQ(graph->find("D")->attrs.init, (ir::InitSpec{"he_uniform", {}}));
}

// Lecture 2.7: fan_in / fan_out follow the weight's role in its matmul.
TEST(Elaborate, FansFromMatmulRoles) {
  auto graph = build(R"(model m {
  input x : f32[6, 3]
  input v : f32[3]
  param A : f32[4, 3]
  param B : f32[3, 5]
  param C : f32[7, 3]
  param D : f32[3, 2]
  param E : f32[2, 9]
  param w : f32[3]
  param u : f32[8]
  a = A @ v
  b = x @ B
  c = x @ C^T
  d = D^T @ v
  k = w @ v
  loss sum(a) + sum(b) + sum(c) + sum(d) + k + sum(E) + sum(u)
})");
  ASSERT_NE(graph, nullptr);
  // "fan_in/fan_out" of a param.
  auto fans = [&](const char *name) {
    Node *node = graph->find(name);
    return fmt::format("{}/{}", node->attrs.fanIn, node->attrs.fanOut);
  };
  EXPECT_EQ(fans("A"), "3/4"); // W @ x, W [out, in]
  EXPECT_EQ(fans("B"), "3/5"); // x @ W, W [in, out]
  EXPECT_EQ(fans("C"), "3/7"); // x @ W^T, W [out, in]
  EXPECT_EQ(fans("D"), "3/2"); // W^T @ x, W [in, out]
  EXPECT_EQ(fans("w"), "3/1"); // a dot product
  EXPECT_EQ(fans("E"), "9/2"); // unused in a matmul
  EXPECT_EQ(fans("u"), "8/8");
  EXPECT_TRUE(graph->find("c")->attrs.transB);
  EXPECT_TRUE(graph->find("d")->attrs.transA);
}

TEST(Elaborate, ReassignmentIsSsa) {
  auto graph = build(R"(model m {
  input x : f32[4]
  h = relu(x)
  h = tanh(h)
  h = h * 2
  g = h
  loss sum(g)
})");
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(nodeNames(*graph), (std::vector<std::string>{"x", "h", "h.1", "h.2", "L"}));
  EXPECT_EQ(graph->find("h.1")->operands[0], graph->find("h"));
  EXPECT_EQ(graph->find("L")->operands[0], graph->find("h.2"));
  // An alias creates no node; the last assigned value is the prediction.
  EXPECT_EQ(graph->output("prediction"), graph->find("h.2"));
}

TEST(Elaborate, Literals) {
  auto graph = build(R"(model m {
  input x : f32[3]
  a = 3 * x
  b = x * 0.5
  c = x / 4
  d = x + 1
  e = 2 - x
  f = x * (1 + 2 * 3) / 7
  g = -x
  k = x ^ 3
  loss sum(a + b + c + d + e + f + g + k)
})");
  ASSERT_NE(graph, nullptr);
  auto check = [&](const char *name, OpKind kind, double value) {
    Node *node = graph->find(name);
    ASSERT_NE(node, nullptr) << name;
    EXPECT_EQ(node->kind, kind) << name;
    EXPECT_EQ(node->attrs.value, value) << name;
  };
  check("a", OpKind::Scale, 3);
  check("b", OpKind::Scale, 0.5);
  check("c", OpKind::Scale, 0.25);
  check("d", OpKind::Add, 0);
  EXPECT_EQ(graph->find("d")->operands[1]->kind, OpKind::Const);
  EXPECT_EQ(graph->find("d")->operands[1]->attrs.value, 1);
  EXPECT_EQ(graph->find("d")->operands[1]->type, ir::Type::scalar());
  check("e", OpKind::Sub, 0);
  EXPECT_EQ(graph->find("e")->operands[0]->kind, OpKind::Const);
  check("f", OpKind::Scale, 1.0 / 7);
  EXPECT_EQ(graph->find("f")->operands[0]->attrs.value, 7); // (1 + 2*3) folded
  check("g", OpKind::Neg, 0);
  check("k", OpKind::Pow, 3);
}

TEST(Elaborate, TransposeOutsideMatmulIsAnOp) {
  auto graph = build(R"(model m {
  param W : f32[2, 3]
  t = W^T
  loss sum(t)
})");
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->find("t")->kind, OpKind::Transpose);
  EXPECT_EQ(graph->find("t")->type, ir::Type::f32({3, 2}));
}

TEST(Elaborate, ReductionsAndAxes) {
  auto graph = build(R"(model m {
  input x : f32[2, 3]
  a = sum(x)
  b = sum(x, 0)
  c = mean(x, -1)
  d = mean(x, axis = 1)
  loss a + sum(b) + sum(c) + sum(d)
})");
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->find("a")->attrs.axes, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(graph->find("a")->type, ir::Type::scalar());
  EXPECT_EQ(graph->find("b")->attrs.axes, (std::vector<int64_t>{0}));
  EXPECT_EQ(graph->find("b")->type, ir::Type::f32({3}));
  EXPECT_EQ(graph->find("c")->attrs.axes, (std::vector<int64_t>{1}));
  EXPECT_EQ(graph->find("c")->kind, OpKind::Mean);
  EXPECT_EQ(graph->find("d")->attrs.axes, (std::vector<int64_t>{1}));
}

TEST(Elaborate, OutputStatementAndPredictionDefaults) {
  auto withOutput = build(R"(model m {
  input x : f32[2]
  target y : f32[2]
  o = x * 2
  output sigmoid(o)
  loss squared_error(o, y)
})");
  ASSERT_NE(withOutput, nullptr);
  EXPECT_EQ(withOutput->output("prediction")->name, "prediction");
  EXPECT_EQ(withOutput->output("prediction")->kind, OpKind::Sigmoid);

  auto fromLoss = build(R"(model m {
  input x : f32[2]
  target y : f32[2]
  o = x * 2
  p = o + 1
  loss squared_error(o, y)
})");
  ASSERT_NE(fromLoss, nullptr);
  EXPECT_EQ(fromLoss->output("prediction")->name, "o");

  auto lastAssigned = build(R"(model m {
  input x : f32[2]
  o = x * 2
  p = relu(o)
  loss sum(o)
})");
  ASSERT_NE(lastAssigned, nullptr);
  EXPECT_EQ(lastAssigned->output("prediction")->name, "p");
}

TEST(Elaborate, BatchResolution) {
  const char *source = R"(model m {
  input x : f32[batch, 4]
  target y : f32[batch, 2]
  param W : f32[2, 4]
  o = x @ W^T
  loss squared_error(o, y)
})";
  frontend::ElaborateOptions options;
  options.batch = 16;
  auto graph = build(source, options);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->batch, 16);
  EXPECT_EQ(graph->find("x")->type, ir::Type::f32({16, 4}));
  EXPECT_EQ(graph->find("o")->type, ir::Type::f32({16, 2}));
  // 1/2 ||o - y||^2 per example, averaged over the batch.
  EXPECT_EQ(graph->find("L")->attrs.value, 0.5 / 16);
  EXPECT_EQ(graph->find("W")->attrs.fanIn, 4);
  EXPECT_EQ(graph->find("W")->attrs.fanOut, 2);

  Compiled missing = compileModel(source);
  EXPECT_EQ(missing.graph, nullptr);
  EXPECT_EQ(missing.errors, 1u) << missing.diagnostics;
  EXPECT_EQ(firstDiagnostic(missing),
            "test.grad:2:17: error: the batch size is not set; pass --batch=N");
}

TEST(Elaborate, BatchGivenButUnused) {
  frontend::ElaborateOptions options;
  options.batch = 8;
  auto graph = build(kLecture, options);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->batch, 0);
  EXPECT_EQ(graph->find("L")->attrs.value, 0.5);
}

TEST(Elaborate, BlockInstancesHaveHierarchicalNames) {
  frontend::ElaborateOptions options;
  options.batch = 4;
  auto graph = build(std::string(kDense) + R"(
model m {
  input x : f32[batch, 784]
  target y : f32[batch, 10]
  h = dense(784, 256)(x)
  repeat 2 { h = dense(256, 256)(h) }
  o = dense(256, 10, act = none)(h)
  loss squared_error(o, y)
})",
                     options);
  ASSERT_NE(graph, nullptr);
  std::vector<std::string> params;
  for (Node *param : graph->nodesOfKind(OpKind::Param))
    params.push_back(param->name);
  EXPECT_EQ(params, (std::vector<std::string>{"dense1.W", "dense1.b", "dense2.W", "dense2.b",
                                              "dense3.W", "dense3.b", "dense4.W", "dense4.b"}));
  Node *w1 = graph->find("dense1.W");
  EXPECT_EQ(w1->type, ir::Type::f32({256, 784}));
  EXPECT_EQ(w1->attrs.init.kind, "xavier_uniform");
  EXPECT_EQ(w1->attrs.fanIn, 784);
  EXPECT_EQ(w1->attrs.fanOut, 256);
  EXPECT_EQ(graph->find("dense4.b")->type, ir::Type::f32({10}));
  // The value a block returns takes the name it is assigned to.
  EXPECT_EQ(graph->find("h")->kind, OpKind::Relu);
  EXPECT_EQ(graph->find("h.2")->kind, OpKind::Relu);
  EXPECT_EQ(graph->find("o")->kind, OpKind::Add); // act = none: no activation
  EXPECT_EQ(graph->find("dense1.matmul")->attrs.transB, true);
  // Nodes of an instance point at the block's lines.
  EXPECT_EQ(where(*w1), "3:9");
  EXPECT_EQ(where(*graph->find("dense3.W")), "3:9");
  EXPECT_EQ(graph->nodesOfKind(OpKind::Relu).size(), 3u);
}

TEST(Elaborate, NestedBlocksAndScopes) {
  auto graph = build(std::string(kDense) + R"(
block mlp(n_in, width, n_out)(x) {
  h = dense(n_in, width)(x)
  h = dense(width, width)(h)
  out dense(width, n_out, act = none)(h)
}
model m {
  input x : f32[1, 4]
  a = mlp(4, 8, 2)(x)
  b = mlp(2, 3, 1)(a)
  c = dense(1, 1)(b)
  loss sum(c)
})");
  ASSERT_NE(graph, nullptr);
  for (const char *name :
       {"mlp1.dense1.W", "mlp1.dense2.W", "mlp1.dense3.W", "mlp2.dense1.W", "mlp2.dense3.b",
        "dense1.W", "dense1.b", "mlp1.h", "mlp1.h.1", "a", "b", "c"})
    EXPECT_NE(graph->find(name), nullptr) << name << "\n" << ir::toString(*graph);
  EXPECT_EQ(graph->find("mlp1.dense2.W")->type, ir::Type::f32({8, 8}));
  EXPECT_EQ(graph->find("mlp2.dense3.W")->type, ir::Type::f32({1, 3}));
  EXPECT_EQ(graph->find("a")->type, ir::Type::f32({1, 2}));
}

TEST(Elaborate, BlockDefaultsUseEarlierConfig) {
  auto graph = build(R"(
block square(n, m = n, act = tanh)(x) {
  param W : f32[m, n]
  out act(W @ x)
}
block twice(n)(x) {
  repeat 2 { x = square(n)(x) }
  out x
}
model m {
  input x : f32[3]
  h = twice(3)(x)
  loss sum(h)
})");
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->find("twice1.square1.W")->type, ir::Type::f32({3, 3}));
  EXPECT_EQ(graph->find("twice1.square2.W")->type, ir::Type::f32({3, 3}));
  // `out x` returns an existing value, so `h` is an alias and names no node.
  EXPECT_EQ(graph->find("h"), nullptr);
  EXPECT_EQ(graph->output("prediction")->name, "twice1.x.1");
  EXPECT_EQ(graph->output("prediction")->kind, OpKind::Tanh);
}

TEST(Elaborate, ModelSelection) {
  const char *source = "model a { input x : f32[1]; loss sum(x) }\n"
                       "model b { input x : f32[2]; loss sum(x) }\n";
  frontend::ElaborateOptions options;
  options.model = "b";
  auto graph = build(source, options);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->name, "b");
  Compiled both = compileModel(source);
  EXPECT_EQ(both.graph, nullptr);
  EXPECT_EQ(firstDiagnostic(both),
            "test.grad: error: the file defines 2 models (a, b); choose one with --model=NAME");
}

struct ErrorCase {
  const char *source;
  const char *firstError;
};

// One semantic error each, exact message and position, and only one error.
TEST(Elaborate, Errors) {
  const ErrorCase cases[] = {
      {"model m {\n  input x : f32[4]\n  o = W3 @ x\n  loss sum(o)\n}\n",
       "test.grad:3:7: error: unknown name 'W3'"},
      {"model m {\n  input x : f32[3]\n  param W : f32[5, 4]\n  z = W @ x\n  loss sum(z)\n}\n",
       "test.grad:4:9: error: matmul of f32[5,4] and f32[3]: inner dimensions 4 and 3 differ"},
      {"model m {\n  input x : f32[4]\n  param b : f32[3]\n  z = x + b\n  loss sum(z)\n}\n",
       "test.grad:4:9: error: shapes [4] and [3] do not broadcast for 'add'"},
      {"model m {\n  input x : f32[4]\n  param W : f32[4]\n  W = x\n  loss sum(x)\n}\n",
       "test.grad:4:3: error: redefinition of 'W'"},
      {"model m {\n  input x : f32[4]\n  h = x\n  target h : f32[4]\n  loss sum(x)\n}\n",
       "test.grad:4:10: error: redefinition of 'h'"},
      {"model m {\n  input x : f32[4]\n  loss sum(relu(x, 2))\n}\n",
       "test.grad:3:12: error: 'relu' takes 1 argument, got 2"},
      {"model m {\n  input x : f32[4]\n  loss sum(gelu(x))\n}\n",
       "test.grad:3:12: error: unknown function 'gelu'; expected one of relu, sigmoid, tanh, exp, "
       "log, sqrt, dropout, softmax, log_softmax, maximum, minimum, sum, mean, max, flatten, "
       "reshape, "
       "squared_error, cross_entropy, bce_logits, none"},
      {"model m {\n  param W : f32[4] = he\n  loss sum(W)\n}\n",
       "test.grad:2:22: error: unknown initializer 'he'; expected one of xavier_normal, "
       "xavier_uniform, he_normal, he_uniform, normal, uniform, zeros, ones, constant"},
      {"model m {\n  param W : f32[4] = constant\n  loss sum(W)\n}\n",
       "test.grad:2:22: error: initializer 'constant' takes 1 argument, got 0"},
      {"model m {\n  input x : f32[4]\n  loss sum(dropout(x, 1.0))\n}\n",
       "test.grad:3:23: error: dropout probability must be in [0, 1), got 1"},
      {"model m {\n  input x : f32[4]\n  loss sum(x)\n  weight_decay -2\n}\n",
       "test.grad:4:16: error: weight decay must be >= 0, got -2"},
      {"model m {\n  input x : f32[4]\n}\n",
       "test.grad:1:7: error: model 'm' has no loss; add a 'loss EXPR' statement"},
      {"model m {\n  input x : f32[4]\n  loss x\n}\n",
       "test.grad:3:8: error: the loss must be a scalar, got f32[4]; reduce it with sum(...) or "
       "mean(...)"},
      {"model m {\n  input x : f32[4]\n  loss sum(x)\n  loss sum(x)\n}\n",
       "test.grad:4:3: error: the model already has a loss"},
      {"model m {\n  input x : f32[4]\n  loss sum(x)\n  weight_decay 1\n  weight_decay 2\n}\n",
       "test.grad:5:3: error: the weight decay is already set"},
      {"model m {\n  input x : f32[4]\n  loss sum(x / 0)\n}\n",
       "test.grad:3:14: error: division by zero"},
      {"model m {\n  input x : i32[4]\n  loss sum(relu(x))\n}\n",
       "test.grad:3:12: error: 'relu' expects f32 operands, operand 1 is i32[4]"},
      {"model m {\n  param W : i32[4]\n  loss sum(W)\n}\n",
       "test.grad:2:13: error: param 'W' must be f32, got i32[4]"},
      {"model m {\n  input o : f32[2, 3]\n  target y : f32[2]\n  loss cross_entropy(o, y)\n}\n",
       "test.grad:4:8: error: 'cross_entropy' expects i32 class labels as operand 2, got f32[2]"},
      {"model m {\n  input o : f32[2, 3]\n  label y : i32[3]\n  loss cross_entropy(o, y)\n}\n",
       "test.grad:4:8: error: 'cross_entropy' needs one label per row of the logits: logits "
       "f32[2,3] take labels i32[2], got i32[3]"},
      {"model m {\n  label o : i32[2, 3]\n  label y : i32[2]\n  loss cross_entropy(o, y)\n}\n",
       "test.grad:4:8: error: 'cross_entropy' expects an f32 operand 1, got i32[2,3]"},
      {"model m {\n  input x : f32[2, 3, 4]\n  loss sum(softmax(x))\n}\n",
       "test.grad:3:12: error: 'softmax' normalises the last axis of a vector or a matrix, got "
       "f32[2,3,4]"},
      {"model m {\n  input x : f32[4]\n  target t : f32[3]\n  loss bce_logits(x, t)\n}\n",
       "test.grad:4:8: error: 'bce_logits' compares values of equal shape: the prediction is [4], "
       "the target [3]"},
      {"model m {\n  input x : f32[4]\n  loss sum(maximum(x))\n}\n",
       "test.grad:3:12: error: 'maximum' takes 2 arguments, got 1"},
      {"model m {\n  input x : f32[4]\n  loss max(x, 1)\n}\n",
       "test.grad:3:15: error: the axis of 'max' must be an integer in [-1, 1) for a value of rank "
       "1, got 1"},
      {"model m {\n  input x : f32[4, 0]\n  loss sum(x)\n}\n",
       "test.grad:2:20: error: the dimensions of 'x' must be positive integers up to 2147483648, "
       "got "
       "0"},
      {"model m {\n  input x : f32[65536, 65536, 65536]\n  loss sum(x)\n}\n",
       "test.grad:2:13: error: 'x' is too large: f32[65536,65536,65536] has more than "
       "1099511627776 elements"},
      {"model m {\n  input x : f32[4]\n  loss sum(x, 1)\n}\n",
       "test.grad:3:15: error: the axis of 'sum' must be an integer in [-1, 1) for a value of rank "
       "1, got 1"},
      {"model m {\n  input x : f32[4]\n  h = relu\n  loss sum(x)\n}\n",
       "test.grad:3:7: error: 'relu' is a function, not a value; call it as relu(...)"},
      {"model m {\n  input x : f32[4]\n  loss sum(x(1))\n}\n",
       "test.grad:3:12: error: 'x' is a value, not a function"},
      {"model m {\n  input x : f32[2, 3]\n  loss sum(x^T @ x^T)\n}\n",
       "test.grad:3:16: error: matmul of f32[2,3]^T and f32[2,3]^T: inner dimensions 2 and 3 "
       "differ"},
      {"model m {\n  input x : f32[4]\n  loss sum(x^T)\n}\n",
       "test.grad:3:13: error: transpose expects a matrix, got f32[4]"},
      {"model m {\n  input x : f32[4]\n  y = squared_error(x, x, x)\n  loss y\n}\n",
       "test.grad:3:7: error: 'squared_error' takes 2 arguments, got 3"},
      {"block b()(x) {\n  out x\n}\nblock b()(x) {\n  out x\n}\nmodel m {\n  input x : f32[4]\n"
       "  loss sum(x)\n}\n",
       "test.grad:4:7: error: redefinition of block 'b'"},
      {"block relu()(x) {\n  out x\n}\nmodel m {\n  input x : f32[4]\n  loss sum(x)\n}\n",
       "test.grad:1:7: error: block 'relu' has the name of a built-in function"},
      {"block b(n)(x) {\n  param W : f32[n, k]\n  out W @ x\n}\nmodel m {\n  input x : f32[4]\n"
       "  loss sum(b(2)(x))\n}\n",
       "test.grad:2:20: error: unknown dimension 'k'; a dimension is an integer, a config "
       "parameter or 'batch'"},
      {"block b(n)(x) {\n  out b(n)(x)\n}\nmodel m {\n  input x : f32[4]\n  loss sum(b(1)(x))\n}\n",
       "test.grad:2:7: error: block 'b' instantiates itself; blocks cannot be recursive"},
      {"model m {\n  input x : f32[4]\n  h = x\n  repeat 100000000 { h = relu(h) }\n  loss "
       "sum(h)\n}\n",
       "test.grad:4:26: error: the model is too large: more than 10000 operations"},
  };
  for (const ErrorCase &test : cases) {
    Compiled c = compileModel(test.source);
    ASSERT_NE(c.ast, nullptr) << test.source << c.diagnostics;
    EXPECT_EQ(c.graph, nullptr) << test.source;
    EXPECT_EQ(firstDiagnostic(c), test.firstError) << test.source << "\n" << c.diagnostics;
    EXPECT_EQ(c.errors, 1u) << test.source << "\n" << c.diagnostics;
  }
}

// Models that would take the compiler forever (or its stack) are errors.
TEST(Elaborate, SizeLimits) {
  for (const char *body : {"h = x", ""}) {
    Compiled loop = compileModel(fmt::format(
        "model m {{\n  input x : f32[4]\n  repeat 1000000000 {{ {} }}\n  loss sum(x)\n}}\n", body));
    EXPECT_EQ(loop.graph, nullptr);
    EXPECT_EQ(loop.errors, 1u) << loop.diagnostics;
    EXPECT_NE(loop.diagnostics.find("error: the model is too large: more than 1000000 statements "
                                    "to elaborate; check the repeat counts"),
              std::string::npos)
        << loop.diagnostics;
  }

  std::string chain;
  for (int i = 0; i < 150; ++i)
    chain += fmt::format("block b{}()(x) {{\n  out b{}()(x)\n}}\n", i, i + 1);
  chain += "block b150()(x) {\n  out x\n}\nmodel m {\n  input x : f32[4]\n  loss sum(b0()(x))\n}\n";
  Compiled deep = compileModel(chain);
  EXPECT_EQ(deep.graph, nullptr);
  EXPECT_EQ(deep.errors, 1u);
  EXPECT_NE(deep.diagnostics.find("error: blocks are nested too deeply (more than 100 levels)"),
            std::string::npos);
}

TEST(Elaborate, RedefinitionNotesThePreviousDeclaration) {
  Compiled c = compileModel("model m {\n  param W1 : f32[2]\n  W1 = W1 * 2\n  loss sum(W1)\n}\n");
  EXPECT_EQ(c.diagnostics, "test.grad:3:3: error: redefinition of 'W1'\n"
                           "  W1 = W1 * 2\n"
                           "  ^~\n"
                           "test.grad:2:9: note: 'W1' was declared here\n"
                           "  param W1 : f32[2]\n"
                           "        ^~\n");
}

TEST(Elaborate, BlockErrorsNoteTheInstantiation) {
  Compiled c = compileModel(std::string(kDense) + R"(model m {
  input x : f32[2, 5]
  h = dense(4, 3)(x)
  loss sum(h)
})");
  EXPECT_EQ(c.graph, nullptr);
  EXPECT_EQ(c.diagnostics,
            "test.grad:5:13: error: matmul of f32[2,5] and f32[3,4]^T: inner dimensions 5 and 4 "
            "differ\n"
            "  out act(x @ W^T + b)\n"
            "            ^\n"
            "test.grad:9:7: note: in block 'dense' instantiated here\n"
            "  h = dense(4, 3)(x)\n"
            "      ^~~~~\n");
}

TEST(Elaborate, ReportsEveryErrorWithoutCascades) {
  Compiled c = compileModel(R"(model lecture {
  input  x : f32[4]
  target y : f32[2]
  param  W1 : f32[5, 3]
  param  W2 : f32[2, 5] = xavier
  z = W1 @ x
  h = relu(z)
  o = W2 @ h + W9
  q = W2 @ x
  loss squared_error(o, y)
  weight_decay -1
})");
  EXPECT_EQ(c.graph, nullptr);
  EXPECT_EQ(c.errors, 5u) << c.diagnostics;
  for (const char *expected :
       {"test.grad:5:27: error: unknown initializer 'xavier'",
        "test.grad:6:10: error: matmul of f32[5,3] and f32[4]: inner dimensions 3 and 4 differ",
        "test.grad:8:16: error: unknown name 'W9'",
        "test.grad:9:10: error: matmul of f32[2,5] and f32[4]: inner dimensions 5 and 4 differ",
        "test.grad:11:16: error: weight decay must be >= 0, got -1"})
    EXPECT_NE(c.diagnostics.find(expected), std::string::npos) << expected << "\n" << c.diagnostics;
}

// The classification builtins, `label` as the synonym of `target`, and the
// prediction of a loss call (its first argument).
TEST(Elaborate, ClassifierWithLabels) {
  frontend::ElaborateOptions options;
  options.batch = 4;
  auto graph = build(R"(model classify {
  input x : f32[batch, 6]
  label y : i32[batch]
  param W : f32[3, 6]
  param b : f32[3]
  o = x @ W^T + b
  p = softmax(o)
  q = log_softmax(o)
  top = max(p, -1)
  clipped = minimum(maximum(o, -5), 5)
  loss cross_entropy(o, y)
}
)",
                     options);
  ASSERT_NE(graph, nullptr);
  Node *y = graph->find("y");
  EXPECT_EQ(y->kind, OpKind::Target);
  EXPECT_EQ(y->type, ir::Type::i32({4}));
  EXPECT_EQ(graph->find("p")->kind, OpKind::Softmax);
  EXPECT_EQ(graph->find("q")->kind, OpKind::LogSoftmax);
  Node *top = graph->find("top");
  EXPECT_EQ(top->kind, OpKind::Max);
  EXPECT_EQ(top->attrs.axes, (std::vector<int64_t>{1}));
  EXPECT_EQ(top->type, ir::Type::f32({4}));
  Node *clipped = graph->find("clipped");
  EXPECT_EQ(clipped->kind, OpKind::Minimum);
  EXPECT_EQ(clipped->operands[0]->kind, OpKind::Maximum);
  EXPECT_EQ(clipped->operands[1]->kind, OpKind::Const);
  Node *loss = graph->find("L");
  EXPECT_EQ(loss->kind, OpKind::CrossEntropy);
  EXPECT_EQ(loss->operands, (std::vector<Node *>{graph->find("o"), y}));
  EXPECT_EQ(graph->output("prediction"), graph->find("o"));
}

TEST(Elaborate, BceLogitsPredictsItsLogits) {
  auto graph = build(R"(model m {
  input x : f32[4]
  target t : f32[2]
  param W : f32[2, 4]
  o = W @ x
  loss bce_logits(o, t)
}
)");
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->find("L")->kind, OpKind::BceLogits);
  EXPECT_EQ(graph->output("prediction"), graph->find("o"));
}

} // namespace
