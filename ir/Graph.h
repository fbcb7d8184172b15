//===- ir/Graph.h - The gradc computational-graph IR -----------*- C++ -*-===//
//
// A Graph is a list of Nodes in program (topological) order.  Every node is
// one operation from ir/Ops.def producing at most one value, in SSA form: a
// node is defined once and used by later nodes.  Every value has a static
// shape and an element type.  Gradient values remember the forward value
// they differentiate (`gradOf`) so dumps can follow the chain rule.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Diagnostics.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gradc::ir {

enum class DType : uint8_t { F32, I32 };
const char *dtypeName(DType type);

using Shape = std::vector<int64_t>;

/// Element type and static shape of a value.  Rank 0 is a scalar.
struct Type {
  DType dtype = DType::F32;
  Shape shape;

  int rank() const { return static_cast<int>(shape.size()); }
  int64_t numel() const;
  int64_t bytes() const { return numel() * 4; }
  bool operator==(const Type &other) const = default;
  /// "f32[5,4]"; a scalar is "f32[]".
  std::string str() const;
  static Type f32(Shape shape) { return Type{DType::F32, std::move(shape)}; }
  static Type i32(Shape shape) { return Type{DType::I32, std::move(shape)}; }
  static Type scalar() { return Type{DType::F32, {}}; }
};

// --- The op table. --------------------------------------------------------

enum AttrFlags : uint32_t {
  ATTR_NONE = 0,
  ATTR_AXES = 1 << 0,   ///< {axes=[...]}
  ATTR_TRANS = 1 << 1,  ///< {transpose_a, transpose_b}
  ATTR_STREAM = 1 << 2, ///< {stream=N}: the dropout mask's Philox stream
  ATTR_INIT = 1 << 3,   ///< {init=..., fan_in=..., fan_out=..., decay=...}
  ATTR_KEY = 1 << 4,    ///< {key="lr"}
};

enum ShapeRule : uint8_t {
  SHAPE_DECLARED,  ///< result type is written, then checked against operands
  SHAPE_SAME,      ///< same type as the operand
  SHAPE_BROADCAST, ///< NumPy broadcast of the two operand shapes
  SHAPE_REDUCE,    ///< operand shape minus {axes}
  SHAPE_SCALAR,    ///< f32[]
  SHAPE_LOSS,      ///< f32[] from two operands of equal shape
  SHAPE_TRANSPOSE, ///< rank 2, dimensions swapped
  SHAPE_MATMUL,    ///< op(a) @ op(b)
  SHAPE_OUTER,     ///< [m] x [n] -> [m, n]
  SHAPE_ROWS,      ///< same type; a vector or a matrix, normalised along its last axis
  SHAPE_CLASSES,   ///< f32[] from logits [B, C] or [C] and one label per row, [B] or []
  SHAPE_NONE,      ///< no result (effects)
};

/// What an operand slot accepts; a row's `operands` column (ir/Ops.def).
enum OperandType : uint8_t {
  OPERAND_F32,    ///< an f32 value (every arithmetic operand)
  OPERAND_LABELS, ///< i32 class indices; never differentiated
  OPERAND_ANY,    ///< either element type (update copies what it is given)
};
/// One entry per operand slot (slots past the arity are OPERAND_F32).
using OperandTypes = std::array<OperandType, 2>;

enum TraitFlags : uint32_t {
  NOGRAD = 0,
  GRAD = 1 << 0,              ///< has a gradient rule
  TRAIT_LEAF = 1 << 1,        ///< storage that lives outside the step
  TRAIT_ELEMENTWISE = 1 << 2, ///< result[i] depends on operand[i] only
  TRAIT_EFFECT = 1 << 3,      ///< writes state; never removed as dead
  TRAIT_LOSS = 1 << 4,        ///< a loss function: operand 0 is the prediction
};

enum class OpKind : uint8_t {
#define GRADC_OP(Name, ...) Name,
#include "ir/Ops.def"
};

/// One row of ir/Ops.def.
struct OpInfo {
  OpKind kind;
  const char *mnemonic;
  int arity;
  OperandTypes operands; ///< element type each operand slot accepts
  const char *valueAttr; ///< name of the scalar attribute, or nullptr
  uint32_t attrs;        ///< AttrFlags
  ShapeRule shapeRule;
  uint32_t traits; ///< TraitFlags

  OperandType operand(int slot) const { return operands[static_cast<size_t>(slot)]; }
  /// Whether some operand slot takes class labels.
  bool takesLabels() const {
    for (int i = 0; i < arity; ++i)
      if (operand(i) == OPERAND_LABELS)
        return true;
    return false;
  }
};

const OpInfo &opInfo(OpKind kind);
/// All rows, in table order.
std::span<const OpInfo> allOps();
std::optional<OpKind> opKindFromMnemonic(std::string_view mnemonic);

// --- Attributes. ----------------------------------------------------------

/// How a parameter or state tensor is initialised.
struct InitSpec {
  std::string kind;         ///< "xavier_normal", "zeros", "normal", ...
  std::vector<double> args; ///< e.g. sigma for normal, (a, b) for uniform
  bool operator==(const InitSpec &) const = default;
};

/// The typed attributes an op may carry; which ones a given op uses is its
/// row's valueAttr / attrs columns.  Fields an op does not use stay default.
struct Attrs {
  double value = 0;          ///< the row's valueAttr
  std::vector<int64_t> axes; ///< ATTR_AXES
  bool transA = false;       ///< ATTR_TRANS
  bool transB = false;
  int64_t stream = 0; ///< ATTR_STREAM
  std::string key;    ///< ATTR_KEY
  InitSpec init;      ///< ATTR_INIT
  int64_t fanIn = 0, fanOut = 0;
  std::optional<double> decay; ///< per-parameter weight decay override
  bool operator==(const Attrs &) const = default;
};

// --- Nodes and graphs. ----------------------------------------------------

/// Which part of a step a node belongs to; printed as `forward:`,
/// `backward:` and `update:` section labels, which the IR parser reads back.
enum class Phase : uint8_t { Forward, Backward, Update };
const char *phaseName(Phase phase);

class Node {
public:
  OpKind kind;
  std::string name; ///< unique within the graph; printed as %name
  Type type;
  std::vector<Node *> operands;
  Attrs attrs;
  SourceLoc loc;          ///< the model line this op comes from
  Node *gradOf = nullptr; ///< for a gradient value: what it differentiates
  Phase phase = Phase::Forward;

  const OpInfo &info() const { return opInfo(kind); }
  const char *mnemonic() const { return info().mnemonic; }
  bool is(OpKind k) const { return kind == k; }
  bool hasResult() const { return info().shapeRule != SHAPE_NONE; }
  bool isLeaf() const { return info().traits & TRAIT_LEAF; }
  /// result[i] depends on operand[i] only (TRAIT_ELEMENTWISE): a map that
  /// passes may move and codegen fuses into loops.
  bool isElementwise() const { return info().traits & TRAIT_ELEMENTWISE; }
};

/// A named result of a graph: "loss", "objective", "prediction",
/// "grad.W1" (the gradient of the objective with respect to W1), ...
struct GraphOutput {
  std::string key;
  Node *value;
};

/// The optimizer the `optimizer` pass writes into the training step, with
/// its constant settings (the learning rate is a `hyper`, set per step).
/// Printed in the graph header, e.g. `optimizer=sgd(momentum=0.9, nesterov)`.
struct OptimizerConfig {
  std::string kind = "sgd";                      ///< sgd | adam | adamw
  double momentum = 0;                           ///< sgd
  bool nesterov = false;                         ///< sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8; ///< adam, adamw
  double clipGradNorm = 0; ///< > 0: scale all gradients so their global norm is at most this
  bool operator==(const OptimizerConfig &) const = default;
};
/// The optimizer kinds the optimizer pass knows, for messages.
inline constexpr const char *kOptimizerKinds = "sgd, adam, adamw";

/// What a graph is for; printed in its header and chosen by the pipeline.
enum class GraphKind : uint8_t { Forward, Train, Inference };
const char *graphKindName(GraphKind kind);

class Graph {
public:
  std::string name;
  GraphKind kind = GraphKind::Forward;
  double weightDecay = 0; ///< lambda of the L2 term (lecture 2.4)
  int64_t batch = 0;      ///< examples per step; 0: inputs have no batch dimension
  OptimizerConfig optimizer;

  Graph() = default;
  Graph(const Graph &) = delete;
  Graph &operator=(const Graph &) = delete;
  /// A deep copy with its own nodes.
  std::unique_ptr<Graph> clone() const;

  /// Creates a node at the insertion point (the end unless moved).  An empty
  /// or taken name is made unique ("h" -> "h.1").
  Node *create(OpKind kind, std::vector<Node *> operands, Type type, Attrs attrs = {},
               std::string_view name = {}, SourceLoc loc = {});
  /// Nodes created from now on go before `pos`; nullptr means at the end.
  void setInsertionPoint(Node *pos);
  /// Nodes created from now on belong to `phase`.
  void setPhase(Phase phase) { phase_ = phase; }
  Phase phase() const { return phase_; }

  const std::vector<std::unique_ptr<Node>> &nodes() const { return nodes_; }
  size_t size() const { return nodes_.size(); }
  /// Index of `node` in program order.
  size_t indexOf(const Node *node) const;
  std::vector<Node *> users(const Node *node) const;
  Node *find(std::string_view name) const;
  std::string uniqueName(std::string_view base) const;
  void rename(Node *node, std::string_view base);

  /// Every use of `from` (operands, outputs, gradOf) now names `to`.
  void replaceAllUsesWith(Node *from, Node *to);
  /// Removes `node`; it must have no users left.
  void erase(Node *node);
  /// Moves `node` to just before `pos` (program order only; the caller keeps
  /// operands before users).
  void moveBefore(Node *node, Node *pos);
  /// Moves `node` to the end of program order.
  void moveToEnd(Node *node);

  std::vector<GraphOutput> outputs;
  Node *output(std::string_view key) const;
  void setOutput(std::string_view key, Node *value);

  /// The nodes of one op kind in program order (e.g. all Params).
  std::vector<Node *> nodesOfKind(OpKind kind) const;

private:
  std::vector<std::unique_ptr<Node>> nodes_;
  /// Names to nodes, and the next suffix to try per base name: building a
  /// graph of n nodes stays O(n), even for long `repeat`s.
  std::unordered_map<std::string, Node *> byName_;
  mutable std::unordered_map<std::string, int> nextSuffix_;
  Node *insertBefore_ = nullptr;
  Phase phase_ = Phase::Forward;
};

/// The result of shape inference: a type or the reason there is none.
struct TypeResult {
  std::optional<Type> type;
  std::string error;
  int operand = -1; ///< which operand the error is about, when one is
};

/// Infers the result type of an op from its operands and attributes.  For
/// SHAPE_DECLARED ops `declared` is the written type, which is checked
/// against the operands (reshape keeps the element count, broadcast keeps
/// the kept dimensions).
TypeResult inferType(OpKind kind, std::span<const Type *const> operands, const Attrs &attrs,
                     const Type *declared);

/// Shape of NumPy broadcasting `a` with `b`, or nullopt when they do not broadcast.
std::optional<Shape> broadcastShapes(const Shape &a, const Shape &b);

} // namespace gradc::ir
