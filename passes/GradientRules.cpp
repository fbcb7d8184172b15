//===- passes/GradientRules.cpp - The chain rule, op by op ----------------===//
//
// Notation in the comments: y = op(a, b), G = dJ/dy (the adjoint), and the
// rule returns the contributions G * dy/da and G * dy/db.
//
//===----------------------------------------------------------------------===//
#include "passes/GradientRules.h"

#include <cassert>
#include <fmt/format.h>

namespace gradc::passes {

using namespace ir;

Node *GradBuilder::create(OpKind kind, std::vector<Node *> operands, Type type, Attrs attrs,
                          std::string_view name) {
  graph_.setPhase(Phase::Backward);
  Node *node =
      graph_.create(kind, std::move(operands), std::move(type), std::move(attrs), name, op.loc);
  created.push_back(node);
  return node;
}

Node *GradBuilder::materialize(const Grad &g) {
  if (!g.isConstant())
    return g.node;
  Attrs attrs;
  attrs.value = g.constant;
  return create(OpKind::Const, {}, g.type, attrs);
}

Grad GradBuilder::scale(const Grad &g, double factor) {
  if (g.isConstant())
    return Grad::constantOf(g.constant * factor, g.type);
  if (factor == 1)
    return g;
  Attrs attrs;
  attrs.value = factor;
  return Grad::of(create(OpKind::Scale, {g.node}, g.type, attrs));
}

Grad GradBuilder::neg(const Grad &g) {
  if (g.isConstant())
    return Grad::constantOf(-g.constant, g.type);
  return Grad::of(create(OpKind::Neg, {g.node}, g.type));
}

Grad GradBuilder::sub(const Grad &x, const Grad &z, std::string_view name) {
  Type type = Type::f32(*broadcastShapes(x.type.shape, z.type.shape));
  if (x.isConstant() && z.isConstant())
    return Grad::constantOf(x.constant - z.constant, type);
  if (z.isConstant() && z.constant == 0 && x.type == type)
    return x;
  if (x.isConstant() && x.constant == 0 && z.type == type)
    return neg(z);
  return Grad::of(create(OpKind::Sub, {materialize(x), materialize(z)}, type, {}, name));
}

Grad GradBuilder::mul(const Grad &g, Node *x, double factor, std::string_view name) {
  Type type = Type::f32(*broadcastShapes(g.type.shape, x->type.shape));
  if (g.isConstant() && g.constant * factor == 0)
    return Grad::constantOf(0, type);
  if (g.isConstant() && x->type == type) {
    double c = g.constant * factor;
    if (c == 1)
      return Grad::of(x);
    Attrs attrs;
    attrs.value = c;
    return Grad::of(create(OpKind::Scale, {x}, type, attrs, name));
  }
  Node *product = create(OpKind::Mul, {materialize(g), x}, type, {}, factor == 1 ? name : "");
  return scale(Grad::of(product), factor);
}

Grad GradBuilder::div(const Grad &g, Node *x) {
  Type type = Type::f32(*broadcastShapes(g.type.shape, x->type.shape));
  if (g.isConstant() && g.constant == 0)
    return Grad::constantOf(0, type);
  return Grad::of(create(OpKind::Div, {materialize(g), x}, type));
}

Grad GradBuilder::unbroadcast(const Grad &g, const Type &to) {
  if (g.type.shape == to.shape)
    return g;
  if (g.isConstant())
    return Grad::constantOf(g.constant * double(g.type.numel()) / double(to.numel()), to);
  // Dimensions broadcasting added in front, and size-1 dimensions it stretched.
  size_t extra = g.type.shape.size() - to.shape.size();
  std::vector<int64_t> axes;
  Shape kept;
  for (size_t i = 0; i < g.type.shape.size(); ++i) {
    bool added = i < extra;
    bool stretched = !added && to.shape[i - extra] == 1 && g.type.shape[i] != 1;
    if (added || stretched)
      axes.push_back(static_cast<int64_t>(i));
    else
      kept.push_back(g.type.shape[i]);
  }
  Grad summed = sum(g, axes, Type::f32(kept));
  if (summed.type.shape == to.shape)
    return summed;
  return Grad::of(create(OpKind::Reshape, {materialize(summed)}, to));
}

Grad GradBuilder::broadcast(const Grad &g, const std::vector<int64_t> &axes, const Type &to) {
  if (g.isConstant())
    return Grad::constantOf(g.constant, to);
  if (axes.empty())
    return g;
  Attrs attrs;
  attrs.axes = axes;
  return Grad::of(create(OpKind::Broadcast, {g.node}, to, attrs));
}

Grad GradBuilder::sum(const Grad &g, const std::vector<int64_t> &axes, const Type &to,
                      std::string_view name) {
  if (g.isConstant())
    return Grad::constantOf(g.constant * double(g.type.numel()) / double(to.numel()), to);
  if (axes.empty())
    return g;
  Attrs attrs;
  attrs.axes = axes;
  return Grad::of(create(OpKind::Sum, {g.node}, to, attrs, name));
}

bool isDifferentiableOperand(OpKind kind, int operand) {
  return opInfo(kind).operand(operand) != OPERAND_LABELS;
}

/// Name of a local derivative dy/da, e.g. "drelu_dz".
static std::string localName(const Node &y, const Node &a) {
  return fmt::format("d{}_d{}", y.name, a.name);
}

void applyGradientRule(GradBuilder &b, const std::vector<bool> &wanted,
                       std::vector<std::optional<Grad>> &result) {
  Node &y = b.op;
  const Grad &G = b.adj;
  Node *a = y.operands.empty() ? nullptr : y.operands[0];
  Node *c = y.operands.size() > 1 ? y.operands[1] : nullptr;
  const Attrs &attrs = y.attrs;
  result.assign(y.operands.size(), std::nullopt);
  auto want = [&](int i) { return i < static_cast<int>(wanted.size()) && wanted[i]; };
  auto one = [&]() {
    Attrs value;
    value.value = 1;
    return b.create(OpKind::Const, {}, Type::scalar(), value, "one");
  };

  switch (y.kind) {
  case OpKind::Input:
  case OpKind::Target:
  case OpKind::Param:
  case OpKind::State:
  case OpKind::Hyper:
  case OpKind::Const:
  case OpKind::DropoutMask:
  case OpKind::Step:
  case OpKind::Dropout:
  case OpKind::OneHot:
  case OpKind::Update:
    assert(false && "op has no gradient rule (NOGRAD in ir/Ops.def)");
    return;

  case OpKind::Neg: // dy/da = -1
    result[0] = b.neg(G);
    return;
  case OpKind::Exp: // dy/da = exp(a) = y
    result[0] = b.mul(G, &y);
    return;
  case OpKind::Log: // dy/da = 1/a
    result[0] = b.div(G, a);
    return;
  case OpKind::Sqrt: // dy/da = 1/(2 sqrt a) = 0.5 / y
    result[0] = b.scale(b.div(G, &y), 0.5);
    return;
  case OpKind::Relu: { // dy/da = step(a): the lecture's phi'(z)
    Node *derivative = b.create(OpKind::Step, {a}, a->type, {}, localName(y, *a));
    result[0] = b.mul(G, derivative);
    return;
  }
  case OpKind::Sigmoid: { // dy/da = y (1 - y)
    Node *complement = b.create(OpKind::Sub, {one(), &y}, y.type);
    Node *derivative = b.create(OpKind::Mul, {&y, complement}, y.type, {}, localName(y, *a));
    result[0] = b.mul(G, derivative);
    return;
  }
  case OpKind::Tanh: { // dy/da = 1 - y^2
    Attrs square;
    square.value = 2;
    Node *squared = b.create(OpKind::Pow, {&y}, y.type, square);
    Node *derivative = b.create(OpKind::Sub, {one(), squared}, y.type, {}, localName(y, *a));
    result[0] = b.mul(G, derivative);
    return;
  }
  case OpKind::Scale: // dy/da = factor
    result[0] = b.scale(G, attrs.value);
    return;
  case OpKind::Pow: { // dy/da = e a^(e-1)
    double e = attrs.value;
    if (e == 1) {
      result[0] = G;
    } else if (e == 2) {
      result[0] = b.mul(G, a, 2);
    } else {
      Attrs lower;
      lower.value = e - 1;
      Node *power = b.create(OpKind::Pow, {a}, a->type, lower);
      result[0] = b.mul(G, power, e);
    }
    return;
  }
  case OpKind::Add: // dy/da = dy/db = 1, summed over broadcast dimensions
    if (want(0))
      result[0] = b.unbroadcast(G, a->type);
    if (want(1))
      result[1] = b.unbroadcast(G, c->type);
    return;
  case OpKind::Sub:
    if (want(0))
      result[0] = b.unbroadcast(G, a->type);
    if (want(1))
      result[1] = b.unbroadcast(b.neg(G), c->type);
    return;
  case OpKind::Mul: // dy/da = b, dy/db = a
    if (want(0))
      result[0] = b.unbroadcast(b.mul(G, c), a->type);
    if (want(1))
      result[1] = b.unbroadcast(b.mul(G, a), c->type);
    return;
  case OpKind::Div: // dy/da = 1/b, dy/db = -a/b^2 = -y/b
    if (want(0))
      result[0] = b.unbroadcast(b.div(G, c), a->type);
    if (want(1))
      result[1] = b.unbroadcast(b.neg(b.div(b.mul(G, &y), c)), c->type);
    return;
  case OpKind::Maximum:
  case OpKind::Minimum: {
    // b wins where it is strictly larger (smaller): step(b - a) for
    // maximum, step(a - b) for minimum; a gets the rest, ties included.
    bool isMax = y.is(OpKind::Maximum);
    Node *margin = b.create(OpKind::Sub, {isMax ? c : a, isMax ? a : c}, y.type);
    Node *bWins = b.create(OpKind::Step, {margin}, y.type, {}, localName(y, *c));
    if (want(0)) {
      Node *aWins = b.create(OpKind::Sub, {one(), bWins}, y.type, {}, localName(y, *a));
      result[0] = b.unbroadcast(b.mul(G, aWins), a->type);
    }
    if (want(1))
      result[1] = b.unbroadcast(b.mul(G, bWins), c->type);
    return;
  }
  case OpKind::Sum: // the inverse of the reduction: broadcast G back
    result[0] = b.broadcast(G, attrs.axes, a->type);
    return;
  case OpKind::Mean:
    result[0] = b.scale(b.broadcast(G, attrs.axes, a->type),
                        double(y.type.numel()) / double(a->type.numel()));
    return;
  case OpKind::Max: {
    // G goes to the elements equal to the maximum, shared equally between
    // ties: da = broadcast(G / ties) * is_max, is_max = 1 - step(y - a)
    // (1 where a attains the maximum), ties = sum of is_max over the axes.
    if (attrs.axes.empty()) {
      result[0] = G;
      return;
    }
    Attrs axes;
    axes.axes = attrs.axes;
    Node *peak = b.create(OpKind::Broadcast, {&y}, a->type, axes);
    Node *gap = b.create(OpKind::Sub, {peak, a}, a->type);
    Node *below = b.create(OpKind::Step, {gap}, a->type);
    Node *isMax = b.create(OpKind::Sub, {one(), below}, a->type, {}, y.name + ".is_max");
    Node *ties = b.create(OpKind::Sum, {isMax}, y.type, axes, y.name + ".ties");
    Grad share = b.div(G, ties);
    result[0] = b.mul(b.broadcast(share, attrs.axes, a->type), isMax);
    return;
  }
  case OpKind::SumSq: // d/da sum(a^2) = 2 a
    result[0] = b.mul(G, a, 2);
    return;
  case OpKind::Broadcast:
    result[0] = b.sum(G, attrs.axes, a->type);
    return;
  case OpKind::Reshape:
    if (G.isConstant())
      result[0] = Grad::constantOf(G.constant, a->type);
    else
      result[0] = Grad::of(b.create(OpKind::Reshape, {G.node}, a->type));
    return;
  case OpKind::Transpose:
    if (G.isConstant())
      result[0] = Grad::constantOf(G.constant, a->type);
    else
      result[0] = Grad::of(b.create(OpKind::Transpose, {G.node}, a->type));
    return;
  case OpKind::MatMul: {
    // y = op(A) op(B).  With vectors: A a row vector (y = a^T op(B)) or B a
    // column vector (y = op(A) b); the lecture's dL/dW2 = dL/do h^T is the
    // matrix-times-vector case and becomes an outer product.
    Node *g = b.materialize(G);
    bool ta = attrs.transA, tb = attrs.transB;
    auto matmul = [&](Node *x, Node *z, bool tx, bool tz, const Type &type) {
      Attrs t;
      t.transA = tx;
      t.transB = tz;
      return Grad::of(b.create(OpKind::MatMul, {x, z}, type, t));
    };
    auto outer = [&](Node *x, Node *z, const Type &type) {
      return Grad::of(b.create(OpKind::Outer, {x, z}, type));
    };
    int ra = a->type.rank(), rc = c->type.rank();
    if (want(0)) {
      if (ra == 2 && rc == 2) // dA = G op(B)^T, or its transpose when A is transposed
        result[0] = ta ? matmul(c, g, tb, true, a->type) : matmul(g, c, false, !tb, a->type);
      else if (ra == 2) // y = op(A) b:  dA = G b^T
        result[0] = ta ? outer(c, g, a->type) : outer(g, c, a->type);
      else if (rc == 2) // y = a^T op(B):  da = op(B) G
        result[0] = matmul(c, g, tb, false, a->type);
      else // dot product: da = G b
        result[0] = b.mul(G, c);
    }
    if (want(1)) {
      if (ra == 2 && rc == 2) // dB = op(A)^T G, or its transpose when B is transposed
        result[1] = tb ? matmul(g, a, true, ta, c->type) : matmul(a, g, !ta, false, c->type);
      else if (ra == 2) // y = op(A) b:  db = op(A)^T G
        result[1] = matmul(a, g, !ta, false, c->type);
      else if (rc == 2) // y = a^T op(B):  dB = a G^T
        result[1] = tb ? outer(g, a, c->type) : outer(a, g, c->type);
      else
        result[1] = b.mul(G, a);
    }
    return;
  }
  case OpKind::Outer: { // y = a b^T:  da = G b, db = G^T a
    Node *g = b.materialize(G);
    if (want(0))
      result[0] = Grad::of(b.create(OpKind::MatMul, {g, c}, a->type));
    if (want(1)) {
      Attrs t;
      t.transA = true;
      result[1] = Grad::of(b.create(OpKind::MatMul, {g, a}, c->type, t));
    }
    return;
  }
  case OpKind::Softmax: { // da = y * (G - sum_last(G * y))
    std::vector<int64_t> last = {a->type.rank() - 1};
    Type rows = Type::f32(Shape(y.type.shape.begin(), y.type.shape.end() - 1));
    Grad weighted = b.mul(G, &y, 1, y.name + ".weighted");
    Grad along = b.sum(weighted, last, rows, y.name + ".weighted_sum");
    result[0] = b.mul(b.sub(G, b.broadcast(along, last, y.type), y.name + ".centered"), &y);
    return;
  }
  case OpKind::LogSoftmax: { // da = G - softmax(a) sum_last(G), softmax(a) = exp(y)
    std::vector<int64_t> last = {a->type.rank() - 1};
    Type rows = Type::f32(Shape(y.type.shape.begin(), y.type.shape.end() - 1));
    Node *probabilities = b.create(OpKind::Exp, {&y}, y.type, {}, a->name + ".softmax");
    Grad along = b.broadcast(b.sum(G, last, rows, y.name + ".adjoint_sum"), last, y.type);
    result[0] = b.sub(G, b.mul(along, probabilities));
    return;
  }
  case OpKind::CrossEntropy: {
    // y = mean over the B rows of logsumexp(o) - o[label]:
    // do = G (softmax(o) - onehot(labels)) / B.  The labels get nothing.
    int64_t rows = a->type.numel() / a->type.shape.back();
    // (Created in this order, the schedule prints softmax first.)
    Node *onehot = b.create(OpKind::OneHot, {c}, a->type, {}, c->name + ".onehot");
    Node *probabilities = b.create(OpKind::Softmax, {a}, a->type, {}, a->name + ".softmax");
    Node *residual =
        b.create(OpKind::Sub, {probabilities, onehot}, a->type, {}, a->name + ".residual");
    result[0] = b.mul(G, residual, 1.0 / static_cast<double>(rows));
    return;
  }
  case OpKind::BceLogits: {
    // y = mean of max(x,0) - x t + log(1 + exp(-|x|)) over N elements:
    // dx = G (sigmoid(x) - t) / N, dt = -G x / N.
    double n = static_cast<double>(a->type.numel());
    if (want(0)) {
      Node *probabilities = b.create(OpKind::Sigmoid, {a}, a->type, {}, a->name + ".sigmoid");
      Node *residual =
          b.create(OpKind::Sub, {probabilities, c}, a->type, {}, a->name + ".residual");
      result[0] = b.mul(G, residual, 1 / n);
    }
    if (want(1))
      result[1] = b.mul(G, a, -1 / n);
    return;
  }
  case OpKind::SquaredError: { // y = s sum((o - t)^2):  do = 2 s (o - t), dt = -do
    Node *difference = b.create(OpKind::Sub, {a, c}, a->type);
    Grad gradO = b.mul(G, difference, 2 * attrs.value);
    if (want(0))
      result[0] = gradO;
    if (want(1))
      result[1] = b.neg(gradO);
    return;
  }
  }
}

} // namespace gradc::passes
