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
  case OpKind::Div: {
    double lo = kind == OpKind::Div ? 0.5 : -2;
    return {sample("[3,4] . [3,4]", {operand({3, 4}), operand({3, 4}, lo, 2)}),
            sample("[3,4] . [4]", {operand({3, 4}), operand({4}, lo, 2)}),
            sample("[4] . [3,4]", {operand({4}), operand({3, 4}, lo, 2)}),
            sample("[2,1,3] . [4,3]", {operand({2, 1, 3}), operand({4, 3}, lo, 2)}),
            sample("[3,4] . []", {operand({3, 4}), operand({}, lo, 2)})};
  }
  case OpKind::Sum:
  case OpKind::Mean:
    return {sample("[2,3,4] axes [1]", {operand({2, 3, 4})}, axes({1})),
            sample("[2,3,4] axes [0,2]", {operand({2, 3, 4})}, axes({0, 2})),
            sample("[2,3,4] all axes", {operand({2, 3, 4})}, axes({0, 1, 2}))};
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
    Attrs init;
    init.init.kind = "zeros";
    operands.push_back(graph->create(OpKind::Param, {}, s.operands[i].type, init,
                                     std::string(1, char('a' + i))));
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

std::vector<std::pair<const Node *, Tensor>> randomLeafValues(const Graph &graph,
                                                              const OpSample &s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::pair<const Node *, Tensor>> values;
  size_t operandIndex = 0;
  for (const auto &node : graph.nodes()) {
    if (!node->isLeaf())
      continue;
    double lo = -1, hi = 1;
    if (node->is(OpKind::Param)) {
      lo = s.operands[operandIndex].lo;
      hi = s.operands[operandIndex].hi;
      ++operandIndex;
    }
    std::uniform_real_distribution<double> dist(lo, hi);
    Tensor t(node->type);
    for (double &v : t.data)
      v = static_cast<float>(dist(rng)); // representable in f32, for the JIT
    values.emplace_back(node.get(), std::move(t));
  }
  return values;
}

} // namespace gradc::test
