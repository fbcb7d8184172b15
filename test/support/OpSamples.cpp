//===- test/support/OpSamples.cpp - A small instance of every op ----------===//
#include "test/support/OpSamples.h"

#include <cassert>
#include <fmt/format.h>

namespace gradc::test {

using namespace ir;

namespace {
OperandSample operand(Shape shape, double lo = -2, double hi = 2) {
  return OperandSample{Type::f32(std::move(shape)), lo, hi};
}
/// i32 class labels in [0, classes).
OperandSample labels(Shape shape, int64_t classes) {
  return OperandSample{Type::i32(std::move(shape)), 0, static_cast<double>(classes - 1), true};
}
OpSample sample(std::string label, std::vector<OperandSample> operands, Attrs attrs = {},
                std::optional<Type> declared = std::nullopt) {
  return OpSample{std::move(label), std::move(operands), std::move(attrs), std::move(declared)};
}
Attrs value(double v) {
  Attrs a;
  a.value = v;
  return a;
}
Attrs axes(std::vector<int64_t> list) {
  Attrs a;
  a.axes = std::move(list);
  return a;
}
Attrs trans(bool ta, bool tb) {
  Attrs a;
  a.transA = ta;
  a.transB = tb;
  return a;
}
} // namespace

std::vector<OpSample> samplesFor(OpKind kind) {
  switch (kind) {
  case OpKind::Input:
  case OpKind::Target:
  case OpKind::Param:
  case OpKind::State:
  case OpKind::Hyper:
  case OpKind::Update:
    return {};
  case OpKind::Const:
    return {sample("const 1.5", {}, value(1.5), Type::f32({2, 3}))};
  case OpKind::DropoutMask: {
    Attrs a = value(0.3);
    a.stream = 7;
    return {sample("dropout_mask p=0.3", {}, a, Type::f32({67}))};
  }
  case OpKind::Neg:
  case OpKind::Exp:
  case OpKind::Relu:
  case OpKind::Sigmoid:
  case OpKind::Tanh:
  case OpKind::Step:
  case OpKind::Dropout:
    return {sample("[3,4]", {operand({3, 4})}, value(kind == OpKind::Dropout ? 0.5 : 0))};
  case OpKind::Log:
  case OpKind::Sqrt:
    return {sample("[3,4] positive", {operand({3, 4}, 0.3, 3)})};
  case OpKind::Scale:
    return {sample("[3,4] * -0.7", {operand({3, 4})}, value(-0.7))};
  case OpKind::Pow:
    return {sample("[3,4] ^ 2", {operand({3, 4})}, value(2)),
            sample("[3,4] ^ 3", {operand({3, 4})}, value(3)),
            sample("positive [5] ^ -1.5", {operand({5}, 0.5, 2)}, value(-1.5))};
  case OpKind::Add:
  case OpKind::Sub:
  case OpKind::Mul:
  case OpKind::Div:
  case OpKind::Maximum:
  case OpKind::Minimum: {
    double lo = kind == OpKind::Div ? 0.5 : -2;
    return {sample("[3,4] . [3,4]", {operand({3, 4}), operand({3, 4}, lo, 2)}),
            sample("[3,4] . [4]", {operand({3, 4}), operand({4}, lo, 2)}),
            sample("[4] . [3,4]", {operand({4}), operand({3, 4}, lo, 2)}),
            sample("[2,1,3] . [4,3]", {operand({2, 1, 3}), operand({4, 3}, lo, 2)}),
            sample("[3,4] . []", {operand({3, 4}), operand({}, lo, 2)}),
            sample("[5] . [5]", {operand({5}), operand({5}, lo, 2)})};
  }
  case OpKind::Sum:
  case OpKind::Mean:
    return {sample("[2,3,4] axes [1]", {operand({2, 3, 4})}, axes({1})),
            sample("[2,3,4] axes [0,2]", {operand({2, 3, 4})}, axes({0, 2})),
            sample("[2,3,4] all axes", {operand({2, 3, 4})}, axes({0, 1, 2}))};
  case OpKind::Max:
    // Uniform values: ties (where the gradient is not defined) have
    // probability zero; GradCheckTest checks how ties share the gradient.
    return {sample("[2,3,4] axes [1]", {operand({2, 3, 4})}, axes({1})),
            sample("[2,3,4] axes [0,2]", {operand({2, 3, 4})}, axes({0, 2})),
            sample("[3,4] axes [1]", {operand({3, 4})}, axes({1})),
            sample("[3,4] axes [0]", {operand({3, 4})}, axes({0})),
            sample("[5] all axes", {operand({5})}, axes({0})),
            sample("[2,3,4] all axes", {operand({2, 3, 4})}, axes({0, 1, 2}))};
  case OpKind::Softmax:
  case OpKind::LogSoftmax:
    return {sample("[5]", {operand({5})}), sample("[3,4]", {operand({3, 4})}),
            sample("[2,7] in [-10,10]", {operand({2, 7}, -10, 10)})};
  case OpKind::CrossEntropy:
    return {sample("[4,3] labels [4]", {operand({4, 3}), labels({4}, 3)}),
            sample("[2,7] in [-10,10] labels [2]", {operand({2, 7}, -10, 10), labels({2}, 7)}),
            sample("[5] label []", {operand({5}), labels({}, 5)})};
  case OpKind::BceLogits:
    return {sample("[3,4] targets in [0,1]", {operand({3, 4}, -4, 4), operand({3, 4}, 0, 1)}),
            sample("[5] targets in [0,1]", {operand({5}, -4, 4), operand({5}, 0, 1)})};
  case OpKind::OneHot:
    return {sample("[4] -> [4,3]", {labels({4}, 3)}, {}, Type::f32({4, 3})),
            sample("[] -> [5]", {labels({}, 5)}, {}, Type::f32({5}))};
  case OpKind::SumSq:
    return {sample("[3,4]", {operand({3, 4})})};
  case OpKind::Broadcast:
    return {sample("[3] -> [2,3]", {operand({3})}, axes({0}), Type::f32({2, 3})),
            sample("[2,3] -> [2,4,3]", {operand({2, 3})}, axes({1}), Type::f32({2, 4, 3}))};
  case OpKind::Reshape:
    return {sample("[2,6] -> [3,4]", {operand({2, 6})}, {}, Type::f32({3, 4}))};
  case OpKind::Transpose:
    return {sample("[3,4]", {operand({3, 4})})};
  case OpKind::MatMul:
    return {sample("[3,4] @ [4,5]", {operand({3, 4}), operand({4, 5})}),
            sample("[4,3]^T @ [4,5]", {operand({4, 3}), operand({4, 5})}, trans(true, false)),
            sample("[3,4] @ [5,4]^T", {operand({3, 4}), operand({5, 4})}, trans(false, true)),
            sample("[4,3]^T @ [5,4]^T", {operand({4, 3}), operand({5, 4})}, trans(true, true)),
            sample("[3,4] @ [4]", {operand({3, 4}), operand({4})}),
            sample("[4,3]^T @ [4]", {operand({4, 3}), operand({4})}, trans(true, false)),
            sample("[4] @ [4,5]", {operand({4}), operand({4, 5})}),
            sample("[4] @ [5,4]^T", {operand({4}), operand({5, 4})}, trans(false, true)),
            sample("[4] @ [4]", {operand({4}), operand({4})})};
  case OpKind::Outer:
    return {sample("[3] x [4]", {operand({3}), operand({4})})};
  case OpKind::SquaredError:
    return {sample("[3,4] scale 0.5", {operand({3, 4}), operand({3, 4})}, value(0.5)),
            sample("[5] scale 0.125", {operand({5}), operand({5})}, value(0.125))};
  }
  return {};
}

std::unique_ptr<Graph> buildSampleGraph(OpKind kind, const OpSample &s) {
  auto graph = std::make_unique<Graph>();
  graph->name = "sample";
  std::vector<Node *> operands;
  std::vector<const Type *> types;
  for (size_t i = 0; i < s.operands.size(); ++i) {
    std::string name(1, char('a' + i));
    if (opInfo(kind).operand(static_cast<int>(i)) == OPERAND_LABELS) {
      // Class labels are data, never differentiated nor perturbed.
      operands.push_back(graph->create(OpKind::Target, {}, s.operands[i].type, {}, name));
    } else {
      Attrs init;
      init.init.kind = "zeros";
      operands.push_back(graph->create(OpKind::Param, {}, s.operands[i].type, init, name));
    }
    types.push_back(&operands.back()->type);
  }
  TypeResult result = inferType(kind, types, s.attrs, s.declared ? &*s.declared : nullptr);
  assert(result.type && "an op sample must be well typed");
  Node *out = graph->create(kind, operands, *result.type, s.attrs, "out");
  Node *r = graph->create(OpKind::Input, {}, out->type, {}, "r");
  Node *prod = graph->create(OpKind::Mul, {out, r}, out->type, {}, "weighted");
  Attrs all;
  for (int i = 0; i < out->type.rank(); ++i)
    all.axes.push_back(i);
  Node *loss = graph->create(OpKind::Sum, {prod}, Type::scalar(), all, "L");
  graph->setOutput("loss", loss);
  graph->setOutput("value", out);
  return graph;
}

std::vector<std::pair<const Node *, Tensor>> randomLeafValues(const Graph &graph, const OpSample &s,
                                                              uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::pair<const Node *, Tensor>> values;
  for (const auto &node : graph.nodes()) {
    if (!node->isLeaf())
      continue;
    OperandSample range{node->type, -1, 1};
    // The operands are the leaves %a, %b, ... (buildSampleGraph).
    if (node->name.size() == 1 && size_t(node->name[0] - 'a') < s.operands.size())
      range = s.operands[size_t(node->name[0] - 'a')];
    Tensor t(node->type);
    if (range.integers) {
      std::uniform_int_distribution<int64_t> dist(static_cast<int64_t>(range.lo),
                                                  static_cast<int64_t>(range.hi));
      for (double &v : t.data)
        v = static_cast<double>(dist(rng));
    } else {
      std::uniform_real_distribution<double> dist(range.lo, range.hi);
      for (double &v : t.data)
        v = static_cast<float>(dist(rng)); // representable in f32, for the JIT
    }
    values.emplace_back(node.get(), std::move(t));
  }
  return values;
}

} // namespace gradc::test
