//===- ir/ShapeRules.cpp - Result types from the op table's shape rules ---===//
//
// One function per ShapeRule column value; an op names its rule in
// ir/Ops.def.  Messages say what was expected, for the frontend and the IR
// parser to report at the op's location.
//
//===----------------------------------------------------------------------===//
#include "ir/Graph.h"

#include <algorithm>
#include <fmt/format.h>
#include <set>

namespace gradc::ir {

std::optional<Shape> broadcastShapes(const Shape &a, const Shape &b) {
  size_t rank = std::max(a.size(), b.size());
  Shape result(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      return std::nullopt;
    result[i] = da == 1 ? db : da;
  }
  return result;
}

static TypeResult fail(std::string message, int operand = -1) {
  return TypeResult{std::nullopt, std::move(message), operand};
}
static TypeResult ok(Type type) { return TypeResult{std::move(type), {}, -1}; }

static std::string shapeStr(const Shape &shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

/// Checks {axes} against a rank: in range, increasing, no repeats.
static std::string checkAxes(const std::vector<int64_t> &axes, int64_t rank) {
  std::set<int64_t> seen;
  for (int64_t axis : axes) {
    if (axis < 0 || axis >= rank)
      return fmt::format("axis {} is out of range for a value of rank {}", axis, rank);
    if (!seen.insert(axis).second)
      return fmt::format("axis {} is listed twice", axis);
  }
  if (!std::is_sorted(axes.begin(), axes.end()))
    return "axes must be listed in increasing order";
  return {};
}

static TypeResult inferDeclared(OpKind kind, std::span<const Type *const> operands,
                                const Attrs &attrs, const Type *declared) {
  if (!declared)
    return fail(fmt::format("'{}' needs its result type written", opInfo(kind).mnemonic));
  const Type &out = *declared;
  switch (kind) {
  case OpKind::Hyper:
    if (out.rank() != 0 || out.dtype != DType::F32)
      return fail("a hyperparameter is a scalar, expected type f32[]");
    break;
  case OpKind::Param:
  case OpKind::State:
  case OpKind::Const:
  case OpKind::DropoutMask:
    if (out.dtype != DType::F32)
      return fail(fmt::format("a '{}' value is f32, not {}; only inputs and targets may be i32",
                              opInfo(kind).mnemonic, out.str()));
    break;
  case OpKind::OneHot: {
    const Type &labels = *operands[0];
    Shape expected = labels.shape;
    expected.push_back(out.rank() > 0 ? out.shape.back() : 1);
    if (out.dtype != DType::F32 || out.shape != expected)
      return fail(fmt::format("onehot of labels {} has type f32[{}{}C], C the number of classes; "
                              "got {}",
                              labels.str(), fmt::join(labels.shape, ","),
                              labels.rank() > 0 ? "," : "", out.str()),
                  0);
    break;
  }
  case OpKind::Reshape:
    if (operands[0]->numel() != out.numel())
      return fail(fmt::format("cannot reshape {} ({} elements) to {} ({} elements)",
                              operands[0]->str(), operands[0]->numel(), out.str(), out.numel()),
                  0);
    if (operands[0]->dtype != out.dtype)
      return fail("reshape cannot change the element type", 0);
    break;
  case OpKind::Broadcast: {
    const Type &in = *operands[0];
    if (out.rank() != in.rank() + static_cast<int>(attrs.axes.size()))
      return fail(fmt::format("broadcast of {} with {} new axes must have rank {}, not {}",
                              in.str(), attrs.axes.size(), in.rank() + attrs.axes.size(),
                              out.rank()));
    if (std::string e = checkAxes(attrs.axes, out.rank()); !e.empty())
      return fail(e);
    std::set<int64_t> added(attrs.axes.begin(), attrs.axes.end());
    for (int64_t i = 0, k = 0; i < out.rank(); ++i) {
      if (added.count(i))
        continue;
      if (out.shape[i] != in.shape[k])
        return fail(fmt::format("broadcast keeps dimension {} of {} but the result has {} there", k,
                                in.str(), out.shape[i]),
                    0);
      ++k;
    }
    break;
  }
  default:
    break;
  }
  for (int64_t d : out.shape)
    if (d <= 0)
      return fail(fmt::format("dimensions must be positive, got {}", shapeStr(out.shape)));
  return ok(out);
}

TypeResult inferType(OpKind kind, std::span<const Type *const> operands, const Attrs &attrs,
                     const Type *declared) {
  const OpInfo &info = opInfo(kind);
  if (static_cast<int>(operands.size()) != info.arity)
    return fail(fmt::format("'{}' takes {} operand{}, got {}", info.mnemonic, info.arity,
                            info.arity == 1 ? "" : "s", operands.size()));
  // Every arithmetic op works on f32; i32 values are class labels, read
  // only by the slots the op table marks OPERAND_LABELS.
  for (size_t i = 0; i < operands.size(); ++i) {
    const Type &operand = *operands[i];
    switch (info.operand(static_cast<int>(i))) {
    case OPERAND_ANY:
      break;
    case OPERAND_LABELS:
      if (operand.dtype != DType::I32)
        return fail(fmt::format("'{}' expects i32 class labels as operand {}, got {}",
                                info.mnemonic, i + 1, operand.str()),
                    static_cast<int>(i));
      break;
    case OPERAND_F32:
      if (operand.dtype != DType::F32)
        return fail(info.takesLabels() ? fmt::format("'{}' expects an f32 operand {}, got {}",
                                                     info.mnemonic, i + 1, operand.str())
                                       : fmt::format("'{}' expects f32 operands, operand {} is {}",
                                                     info.mnemonic, i + 1, operand.str()),
                    static_cast<int>(i));
      break;
    }
  }

  switch (info.shapeRule) {
  case SHAPE_DECLARED:
    return inferDeclared(kind, operands, attrs, declared);
  case SHAPE_SAME:
    return ok(*operands[0]);
  case SHAPE_BROADCAST: {
    auto shape = broadcastShapes(operands[0]->shape, operands[1]->shape);
    if (!shape)
      return fail(fmt::format("shapes {} and {} do not broadcast for '{}'",
                              shapeStr(operands[0]->shape), shapeStr(operands[1]->shape),
                              info.mnemonic));
    return ok(Type::f32(*shape));
  }
  case SHAPE_REDUCE: {
    const Type &in = *operands[0];
    if (std::string e = checkAxes(attrs.axes, in.rank()); !e.empty())
      return fail(e);
    Shape shape;
    for (int64_t i = 0; i < in.rank(); ++i)
      if (std::find(attrs.axes.begin(), attrs.axes.end(), i) == attrs.axes.end())
        shape.push_back(in.shape[i]);
    return ok(Type::f32(shape));
  }
  case SHAPE_SCALAR:
    return ok(Type::scalar());
  case SHAPE_LOSS:
    if (operands[0]->shape != operands[1]->shape)
      return fail(fmt::format("'{}' compares values of equal shape: the prediction is {}, the "
                              "target {}",
                              info.mnemonic, shapeStr(operands[0]->shape),
                              shapeStr(operands[1]->shape)),
                  1);
    return ok(Type::scalar());
  case SHAPE_TRANSPOSE:
    if (operands[0]->rank() != 2)
      return fail(fmt::format("transpose expects a matrix, got {}", operands[0]->str()), 0);
    return ok(Type::f32({operands[0]->shape[1], operands[0]->shape[0]}));
  case SHAPE_MATMUL: {
    const Type &a = *operands[0], &b = *operands[1];
    for (int i = 0; i < 2; ++i) {
      const Type &t = i == 0 ? a : b;
      if (t.rank() < 1 || t.rank() > 2)
        return fail(
            fmt::format("matmul expects a vector or a matrix, operand {} is {}", i + 1, t.str()),
            i);
    }
    if (a.rank() == 1 && attrs.transA)
      return fail("transpose_a needs a matrix, the first operand is a vector", 0);
    if (b.rank() == 1 && attrs.transB)
      return fail("transpose_b needs a matrix, the second operand is a vector", 1);
    // Rows and columns of op(a) and op(b).
    int64_t am = a.rank() == 1 ? 1 : (attrs.transA ? a.shape[1] : a.shape[0]);
    int64_t ak = a.rank() == 1 ? a.shape[0] : (attrs.transA ? a.shape[0] : a.shape[1]);
    int64_t bk = b.rank() == 1 ? b.shape[0] : (attrs.transB ? b.shape[1] : b.shape[0]);
    int64_t bn = b.rank() == 1 ? 1 : (attrs.transB ? b.shape[0] : b.shape[1]);
    if (ak != bk)
      return fail(fmt::format("matmul of {}{} and {}{}: inner dimensions {} and {} differ", a.str(),
                              attrs.transA ? "^T" : "", b.str(), attrs.transB ? "^T" : "", ak, bk),
                  1);
    Shape shape;
    if (a.rank() == 2)
      shape.push_back(am);
    if (b.rank() == 2)
      shape.push_back(bn);
    return ok(Type::f32(shape));
  }
  case SHAPE_OUTER:
    if (operands[0]->rank() != 1 || operands[1]->rank() != 1)
      return fail(fmt::format("outer expects two vectors, got {} and {}", operands[0]->str(),
                              operands[1]->str()));
    return ok(Type::f32({operands[0]->shape[0], operands[1]->shape[0]}));
  case SHAPE_ROWS:
    if (operands[0]->rank() < 1 || operands[0]->rank() > 2)
      return fail(fmt::format("'{}' normalises the last axis of a vector or a matrix, got {}",
                              info.mnemonic, operands[0]->str()),
                  0);
    return ok(*operands[0]);
  case SHAPE_CLASSES: {
    const Type &logits = *operands[0], &labels = *operands[1];
    if (logits.rank() < 1 || logits.rank() > 2)
      return fail(fmt::format("'{}' expects logits [classes] or [batch, classes], got {}",
                              info.mnemonic, logits.str()),
                  0);
    Type expected = Type::i32(Shape(logits.shape.begin(), logits.shape.end() - 1));
    if (labels.shape != expected.shape)
      return fail(fmt::format("'{}' needs one label per row of the logits: logits {} take labels "
                              "{}, got {}",
                              info.mnemonic, logits.str(), expected.str(), labels.str()),
                  1);
    return ok(Type::scalar());
  }
  case SHAPE_NONE:
    if (kind == OpKind::Update && *operands[0] != *operands[1])
      return fail(fmt::format("update of {} with a value of type {}", operands[0]->str(),
                              operands[1]->str()),
                  1);
    return ok(Type{});
  }
  return fail("unknown shape rule");
}

} // namespace gradc::ir
