//===- frontend/AST.h - Syntax tree of a model file ------------*- C++ -*-===//
//
// The parser's output and the elaborator's input.  The tree is what the
// user wrote, nothing resolved: names are strings, dimensions may be names
// (`batch`, a block's config parameter), calls are not yet told apart into
// built-in functions and block instantiations.  Every node keeps the
// location (and the length, for the caret) of the token it comes from so
// that elaboration errors point at the right characters.
//
// Expressions and statements are small class hierarchies tagged with a kind
// enum, in the LLVM style: code switches over `kind` and uses ast::dynCast.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Diagnostics.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gradc::frontend::ast {

/// A numeric literal.  `isInteger` when it was written without '.' or an
/// exponent, which is what dimensions, repeat counts and axes require.
struct Number {
  double value = 0;
  bool isInteger = false;
  SourceLoc loc;
  unsigned length = 1;
};

// --- Expressions. ---------------------------------------------------------

enum class ExprKind { Number, Name, Negate, Binary, Power, Transpose, Call };

/// `+ - * / @`; each is one IR op except where a literal operand turns it
/// into `scale` (see the elaborator).
enum class BinaryOp { Add, Sub, Mul, Div, MatMul };
/// "+", "-", "*", "/", "@".
const char *binaryOpSpelling(BinaryOp op);

/// Base of all expressions.  `loc` is the token the expression is reported
/// at: the operator of a unary, binary or postfix expression, the name of a
/// call, the first character of a literal or name.
struct Expr {
  const ExprKind kind;
  SourceLoc loc;
  unsigned length = 1;

  virtual ~Expr() = default;

protected:
  Expr(ExprKind kind, SourceLoc loc, unsigned length) : kind(kind), loc(loc), length(length) {}
};
using ExprPtr = std::unique_ptr<Expr>;

/// `3`, `0.5`, `1e-4`.  Always non-negative: `-3` is a NegateExpr.
struct NumberExpr final : Expr {
  Number number;
  explicit NumberExpr(Number number)
      : Expr(ExprKind::Number, number.loc, number.length), number(number) {}
  static bool classof(const Expr *e) { return e->kind == ExprKind::Number; }
};

/// A value, a config parameter, or a function name passed as a config value.
struct NameExpr final : Expr {
  std::string name;
  NameExpr(std::string name, SourceLoc loc)
      : Expr(ExprKind::Name, loc, static_cast<unsigned>(name.size())), name(std::move(name)) {}
  static bool classof(const Expr *e) { return e->kind == ExprKind::Name; }
};

/// `-x`; `loc` is the minus sign.
struct NegateExpr final : Expr {
  ExprPtr operand;
  NegateExpr(ExprPtr operand, SourceLoc loc)
      : Expr(ExprKind::Negate, loc, 1), operand(std::move(operand)) {}
  static bool classof(const Expr *e) { return e->kind == ExprKind::Negate; }
};

/// `lhs op rhs`; `loc` is the operator.
struct BinaryExpr final : Expr {
  BinaryOp op;
  ExprPtr lhs, rhs;
  BinaryExpr(BinaryOp op, ExprPtr lhs, ExprPtr rhs, SourceLoc loc)
      : Expr(ExprKind::Binary, loc, 1), op(op), lhs(std::move(lhs)), rhs(std::move(rhs)) {}
  static bool classof(const Expr *e) { return e->kind == ExprKind::Binary; }
};

/// `base ^ exponent` with a literal (possibly negative) exponent; `loc` is '^'.
struct PowerExpr final : Expr {
  ExprPtr base;
  Number exponent;
  PowerExpr(ExprPtr base, Number exponent, SourceLoc loc)
      : Expr(ExprKind::Power, loc, 1), base(std::move(base)), exponent(exponent) {}
  static bool classof(const Expr *e) { return e->kind == ExprKind::Power; }
};

/// `operand^T`; `loc` is '^'.  As a matmul operand it becomes the matmul's
/// transpose_a / transpose_b attribute instead of an op of its own.
struct TransposeExpr final : Expr {
  ExprPtr operand;
  TransposeExpr(ExprPtr operand, SourceLoc loc)
      : Expr(ExprKind::Transpose, loc, 2), operand(std::move(operand)) {}
  static bool classof(const Expr *e) { return e->kind == ExprKind::Transpose; }
};

/// One argument of a call: positional (`keyword` empty) or `keyword = value`.
struct Argument {
  std::string keyword;
  SourceLoc keywordLoc;
  ExprPtr value;
};

/// `f(args)` calls a built-in function or a function-valued config
/// parameter; `b(config)(inputs)` instantiates block `b`.  Which one it is
/// the elaborator decides; the parser only records whether there was a
/// second argument list.
struct CallExpr final : Expr {
  std::string callee;
  std::vector<Argument> args;
  bool hasInputs = false;
  std::vector<Argument> inputs; ///< the second list, when hasInputs
  SourceLoc inputsLoc;          ///< its '('
  CallExpr(std::string callee, SourceLoc loc)
      : Expr(ExprKind::Call, loc, static_cast<unsigned>(callee.size())), callee(std::move(callee)) {
  }
  static bool classof(const Expr *e) { return e->kind == ExprKind::Call; }
};

/// `dynCast<BinaryExpr>(expr)`: the expression as a T, or nullptr.
template <typename T, typename Base> const T *dynCast(const Base *node) {
  return node && T::classof(node) ? static_cast<const T *>(node) : nullptr;
}

// --- Types and initialisers. ----------------------------------------------

enum class ElementType { F32, I32 };
/// "f32" or "i32".
const char *elementTypeName(ElementType type);

/// One dimension of a written type: an integer, or a name resolved by the
/// elaborator (`batch` or a block's config parameter).
struct Dim {
  int64_t value = 0;
  std::string name; ///< non-empty for a named dimension
  SourceLoc loc;
  unsigned length = 1;
  bool isName() const { return !name.empty(); }
};

/// `f32[5, 4]`; `f32[]` is a scalar.
struct TypeExpr {
  ElementType elementType = ElementType::F32;
  std::vector<Dim> dims;
  SourceLoc loc; ///< the element type's name
};

/// `xavier_normal`, `normal(0.01)`, `uniform(-0.1, 0.1)`: validated against
/// ir::initializerArity by the elaborator.
struct InitExpr {
  std::string name;
  std::vector<Number> args;
  SourceLoc loc;
};

// --- Statements. ----------------------------------------------------------

enum class StmtKind { Input, Target, Param, Assign, Loss, Output, Out, WeightDecay, Repeat, Train };

/// Base of all statements; `loc` is the leading keyword, or the assigned
/// name of an assignment.
struct Stmt {
  const StmtKind kind;
  SourceLoc loc;

  virtual ~Stmt() = default;

protected:
  Stmt(StmtKind kind, SourceLoc loc) : kind(kind), loc(loc) {}
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

/// `input x : f32[4]`, `target y : i32[batch]`, `param W : f32[5, 4] = zeros`.
/// `label y : i32[batch]` is a Target written with its synonym `label`.
struct DeclStmt final : Stmt {
  std::string name;
  SourceLoc nameLoc;
  TypeExpr type;
  bool label = false;   ///< a Target spelled `label`, printed back that way
  bool hasInit = false; ///< params only
  InitExpr init;
  DeclStmt(StmtKind kind, SourceLoc loc) : Stmt(kind, loc) {}
  static bool classof(const Stmt *s) {
    return s->kind == StmtKind::Input || s->kind == StmtKind::Target || s->kind == StmtKind::Param;
  }
};

/// `name = value`.
struct AssignStmt final : Stmt {
  std::string name;
  ExprPtr value;
  AssignStmt(std::string name, SourceLoc loc, ExprPtr value)
      : Stmt(StmtKind::Assign, loc), name(std::move(name)), value(std::move(value)) {}
  static bool classof(const Stmt *s) { return s->kind == StmtKind::Assign; }
};

/// `loss EXPR`, `output EXPR` (models) and `out EXPR` (blocks).
struct ExprStmt final : Stmt {
  ExprPtr value;
  ExprStmt(StmtKind kind, SourceLoc loc, ExprPtr value)
      : Stmt(kind, loc), value(std::move(value)) {}
  static bool classof(const Stmt *s) {
    return s->kind == StmtKind::Loss || s->kind == StmtKind::Output || s->kind == StmtKind::Out;
  }
};

/// `weight_decay 0.01`: lambda of the L2 term (lecture 2.4).
struct WeightDecayStmt final : Stmt {
  Number lambda;
  WeightDecayStmt(SourceLoc loc, Number lambda)
      : Stmt(StmtKind::WeightDecay, loc), lambda(lambda) {}
  static bool classof(const Stmt *s) { return s->kind == StmtKind::WeightDecay; }
};

/// `repeat N { ... }`: the body, N times.  N is an integer literal or a
/// block's config parameter.
struct RepeatStmt final : Stmt {
  ExprPtr count;
  Body body;
  RepeatStmt(SourceLoc loc, ExprPtr count) : Stmt(StmtKind::Repeat, loc), count(std::move(count)) {}
  static bool classof(const Stmt *s) { return s->kind == StmtKind::Repeat; }
};

/// `train { optimizer = sgd(lr = 0.05, momentum = 0.9); batch = 128; ... }`:
/// the model's training defaults, each a `name = value` setting.  The
/// elaborator interprets them (frontend/TrainSection.cpp); command-line
/// flags override them.
struct TrainStmt final : Stmt {
  std::vector<std::unique_ptr<AssignStmt>> settings;
  explicit TrainStmt(SourceLoc loc) : Stmt(StmtKind::Train, loc) {}
  static bool classof(const Stmt *s) { return s->kind == StmtKind::Train; }
};

// --- Top-level definitions. -----------------------------------------------

enum class DefinitionKind { Model, Block };

/// What models and blocks have in common: a name and a braced body.
struct Definition {
  const DefinitionKind kind;
  std::string name;
  SourceLoc loc; ///< the `model` / `block` keyword
  SourceLoc nameLoc;
  SourceLoc openBrace; ///< for "to match this '{'" notes
  Body body;

  virtual ~Definition() = default;

protected:
  explicit Definition(DefinitionKind kind) : kind(kind) {}
};

/// `model NAME { ... }`: the network that is elaborated to a graph.
struct Model final : Definition {
  Model() : Definition(DefinitionKind::Model) {}
  static bool classof(const Definition *d) { return d->kind == DefinitionKind::Model; }
};

/// A config parameter of a block: `n_in`, or `act = relu` with a default.
struct ConfigParam {
  std::string name;
  SourceLoc loc;
  ExprPtr defaultValue; ///< nullptr when the caller must give it
};

/// A tensor input of a block.
struct BlockInput {
  std::string name;
  SourceLoc loc;
};

/// `block NAME(config)(inputs) { ... out EXPR }` (lecture 2.8): a reusable
/// piece of network, instantiated as NAME(config)(inputs).
struct Block final : Definition {
  std::vector<ConfigParam> config;
  std::vector<BlockInput> inputs;
  Block() : Definition(DefinitionKind::Block) {}
  static bool classof(const Definition *d) { return d->kind == DefinitionKind::Block; }
};

/// A parsed model file: its models and blocks in source order.
struct File {
  const std::string *fileName = nullptr;
  std::vector<std::unique_ptr<Definition>> definitions;

  /// The first block named `name`, or nullptr.
  const Block *findBlock(std::string_view name) const;
  /// The models, in source order.
  std::vector<const Model *> models() const;
};

} // namespace gradc::frontend::ast
