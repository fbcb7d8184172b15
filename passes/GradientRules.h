//===- passes/GradientRules.h - The chain rule, op by op -------*- C++ -*-===//
//
// Each GRAD row of ir/Ops.def has its rule in GradientRules.cpp: given the
// adjoint of the op's result, write ordinary ops that compute the
// contribution to each operand's adjoint.  Rules build through GradBuilder,
// whose small algebra keeps constant adjoints symbolic: the adjoint of the
// objective is the constant 1 and that of lambda/2 ||W||^2 the constant
// lambda/2, so the rules emit `sub %o, %y` for dL/do and `scale %W2
// {factor=lambda}` for ds/dW2 instead of multiplications by constants —
// the lecture's formulas, not noise.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Graph.h"

#include <optional>
#include <string_view>
#include <vector>

namespace gradc::passes {

/// An adjoint: a node, or the constant `constant` in every element of
/// `type` (no node needed).
struct Grad {
  ir::Node *node = nullptr;
  double constant = 0;
  ir::Type type;

  bool isConstant() const { return node == nullptr; }
  static Grad of(ir::Node *node) { return Grad{node, 0, node->type}; }
  static Grad constantOf(double value, ir::Type type) {
    return Grad{nullptr, value, std::move(type)};
  }
};

/// Builds backward ops for one forward op: every node it creates is in the
/// backward phase, carries the forward op's location, and is recorded in
/// `created`.
class GradBuilder {
public:
  GradBuilder(ir::Graph &graph, ir::Node &op, Grad adjoint) : op(op), adj(adjoint), graph_(graph) {}

  ir::Node &op; ///< the forward op being differentiated
  Grad adj;     ///< adjoint of its result
  std::vector<ir::Node *> created;

  ir::Node *create(ir::OpKind kind, std::vector<ir::Node *> operands, ir::Type type,
                   ir::Attrs attrs = {}, std::string_view name = {});
  /// A node for `g` (a `const` node when it is symbolic).
  ir::Node *materialize(const Grad &g);

  Grad scale(const Grad &g, double factor);
  Grad neg(const Grad &g);
  /// x - z, broadcasting.
  Grad sub(const Grad &x, const Grad &z, std::string_view name = {});
  /// g * x * factor, broadcasting g and x.  A node it creates is called
  /// `name` when one is given (here and below), else after its op.
  Grad mul(const Grad &g, ir::Node *x, double factor = 1, std::string_view name = {});
  /// g / x, broadcasting.
  Grad div(const Grad &g, ir::Node *x);
  /// Sums away the dimensions that NumPy broadcasting added to reach g's
  /// shape from `to` (the inverse of broadcasting).
  Grad unbroadcast(const Grad &g, const ir::Type &to);
  /// The inverse of sum over `axes`: g broadcast to `to`.
  Grad broadcast(const Grad &g, const std::vector<int64_t> &axes, const ir::Type &to);
  /// Sum of g over `axes`, giving type `to`.
  Grad sum(const Grad &g, const std::vector<int64_t> &axes, const ir::Type &to,
           std::string_view name = {});

private:
  ir::Graph &graph_;
};

/// False for operand slots an op never differentiates: those its row in
/// ir/Ops.def marks OPERAND_LABELS (the class labels of cross_entropy).
bool isDifferentiableOperand(ir::OpKind kind, int operand);

/// Writes the backward ops of `b.op`: result[i] is the contribution to
/// operand i's adjoint, for every i with wanted[i].  Must only be called for
/// ops whose row has the GRAD trait.
void applyGradientRule(GradBuilder &b, const std::vector<bool> &wanted,
                       std::vector<std::optional<Grad>> &result);

} // namespace gradc::passes
