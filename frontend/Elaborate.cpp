//===- frontend/Elaborate.cpp - The syntax tree to the forward graph ------===//
//
// Walks one model's statements in order and creates the IR nodes as it
// goes, so the graph is in program order and every node carries the
// location of the model text it comes from.
//
//  - Names live in scopes.  The model is one scope; every block instance is
//    a fresh scope that sees only its config parameters, its inputs and its
//    own values.  The k-th instance of block `dense` in a scope gets the
//    prefix `dense<k>.`, so its parameters are `dense1.W`, `mlp1.dense2.b`.
//  - Reassigning an ordinary value rebinds the name (SSA: `h`, `h.1`);
//    reassigning a declared input, target, param or config parameter is an
//    error.
//  - Literals are folded and turned into the cheapest op: `2 * x` is
//    `scale`, `x / 4` is `scale` by 0.25, `x + 1` adds a rank-0 `const`
//    broadcast over x, and `W^T` inside a matmul operand becomes the
//    matmul's transpose_a / transpose_b attribute.
//  - Types come from ir::inferType; its message is reported at the
//    operator.  After an error the value is poison: every op that uses it is
//    poison too, silently, so one mistake gives one error, and elaboration
//    goes on to report the others.
//  - At the end, each parameter's fan_in / fan_out (lecture 2.7, for Xavier
//    and He initialisation) is read from its role in the first matmul that
//    uses it.
//
//===----------------------------------------------------------------------===//
#include "frontend/Frontend.h"
#include "frontend/TrainSection.h"
#include "ir/Graph.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace gradc::frontend {

namespace {

using namespace ast;
using ir::Node;
using ir::OpKind;

/// Limits that keep a hostile or mistaken model (`repeat 1000000000`,
/// blocks that instantiate each other exponentially or nest thousands deep)
/// from hanging or crashing the compiler; real networks are far below them.
constexpr size_t kMaxNodes = 10000;
/// Statements elaborated and repeat rounds run, counting every instance.
constexpr int64_t kMaxWork = 1000000;
constexpr size_t kMaxBlockNesting = 100;
constexpr int64_t kMaxDimension = int64_t(1) << 31;
constexpr int64_t kMaxElements = int64_t(1) << 40;
/// Carets under a type underline its element type, "f32" or "i32".
constexpr unsigned kElementTypeLength = 3;

/// What an expression evaluates to.
struct Value {
  enum class Kind {
    Poison,   ///< an error was reported; uses stay silent
    Tensor,   ///< an IR value
    Number,   ///< a literal, folded; becomes a node only where one is needed
    Function, ///< a built-in function name, passed as a config value
  };
  Kind kind = Kind::Poison;
  Node *node = nullptr;
  double number = 0;
  std::string function;
  SourceLoc loc; ///< of a Number: where it was written

  static Value poison() { return {}; }
  static Value tensor(Node *node) {
    Value v;
    v.kind = node ? Kind::Tensor : Kind::Poison;
    v.node = node;
    return v;
  }
  static Value literal(double number, SourceLoc loc) {
    Value v;
    v.kind = Kind::Number;
    v.number = number;
    v.loc = loc;
    return v;
  }
  static Value functionNamed(std::string name) {
    Value v;
    v.kind = Kind::Function;
    v.function = std::move(name);
    return v;
  }
  bool isPoison() const { return kind == Kind::Poison; }
  bool isTensor() const { return kind == Kind::Tensor; }
  bool isNumber() const { return kind == Kind::Number; }
  bool isFunction() const { return kind == Kind::Function; }
};

/// How a name came to be in a scope; decides whether it may be reassigned.
enum class Role { Input, Target, Param, Value, Config, BlockInput };

struct Binding {
  Role role;
  Value value;
  SourceLoc loc; ///< of the declaration or assignment
};

/// A built-in function of the language.
struct Builtin {
  enum class Kind {
    Unary,
    Binary,
    Identity,
    Dropout,
    Reduce,
    SquaredError,
    Loss,
    Flatten,
    Reshape
  };
  std::string_view name;
  Kind kind;
  std::optional<OpKind> op; ///< none for the identity
  std::vector<std::string_view> params;
  size_t required;
};

const std::vector<Builtin> &builtins() {
  using K = Builtin::Kind;
  static const std::vector<Builtin> table = {
      {"relu", K::Unary, OpKind::Relu, {"x"}, 1},
      {"sigmoid", K::Unary, OpKind::Sigmoid, {"x"}, 1},
      {"tanh", K::Unary, OpKind::Tanh, {"x"}, 1},
      {"exp", K::Unary, OpKind::Exp, {"x"}, 1},
      {"log", K::Unary, OpKind::Log, {"x"}, 1},
      {"sqrt", K::Unary, OpKind::Sqrt, {"x"}, 1},
      {"dropout", K::Dropout, OpKind::Dropout, {"x", "p"}, 2},
      {"softmax", K::Unary, OpKind::Softmax, {"x"}, 1},
      {"log_softmax", K::Unary, OpKind::LogSoftmax, {"x"}, 1},
      {"maximum", K::Binary, OpKind::Maximum, {"a", "b"}, 2},
      {"minimum", K::Binary, OpKind::Minimum, {"a", "b"}, 2},
      {"sum", K::Reduce, OpKind::Sum, {"x", "axis"}, 1},
      {"mean", K::Reduce, OpKind::Mean, {"x", "axis"}, 1},
      {"max", K::Reduce, OpKind::Max, {"x", "axis"}, 1},
      // Everything but the batch dimension into one: [B, 28, 28] -> [B, 784].
      {"flatten", K::Flatten, OpKind::Reshape, {"x"}, 1},
      // reshape(x, 4, -1): up to four dimensions, one of them -1 (inferred).
      {"reshape", K::Reshape, OpKind::Reshape, {"x", "d0", "d1", "d2", "d3"}, 2},
      {"squared_error", K::SquaredError, OpKind::SquaredError, {"prediction", "target"}, 2},
      // Mean over the batch of -log softmax(logits)[label]; labels are i32.
      {"cross_entropy", K::Loss, OpKind::CrossEntropy, {"logits", "labels"}, 2},
      // Mean binary cross-entropy of logits against targets in [0, 1].
      {"bce_logits", K::Loss, OpKind::BceLogits, {"logits", "targets"}, 2},
      // The identity, so that `act = none` switches a block's activation off.
      {"none", K::Identity, std::nullopt, {"x"}, 1},
  };
  return table;
}

const Builtin *findBuiltin(std::string_view name) {
  for (const Builtin &builtin : builtins())
    if (builtin.name == name)
      return &builtin;
  return nullptr;
}

std::string builtinNames() {
  std::string names;
  for (const Builtin &builtin : builtins())
    names += (names.empty() ? "" : ", ") + std::string(builtin.name);
  return names;
}

/// "1 argument", "1 or 2 arguments", "2 to 4 config arguments".
std::string countPhrase(size_t min, size_t max, std::string_view noun) {
  if (min == max)
    return fmt::format("{} {}{}", min, noun, min == 1 ? "" : "s");
  if (max == min + 1)
    return fmt::format("{} or {} {}s", min, max, noun);
  return fmt::format("{} to {} {}s", min, max, noun);
}

/// Where an expression begins, for errors about it as a whole (an
/// operator's own location is in the middle of it).
SourceLoc startOf(const Expr &expr) {
  switch (expr.kind) {
  case ExprKind::Binary:
    return startOf(*static_cast<const BinaryExpr &>(expr).lhs);
  case ExprKind::Power:
    return startOf(*static_cast<const PowerExpr &>(expr).base);
  case ExprKind::Transpose:
    return startOf(*static_cast<const TransposeExpr &>(expr).operand);
  case ExprKind::Number:
  case ExprKind::Name:
  case ExprKind::Negate:
  case ExprKind::Call:
    break;
  }
  return expr.loc;
}

/// A block instance, or the model itself (block == nullptr).
struct Scope {
  const Block *block = nullptr;
  std::string prefix; ///< "" for the model, "dense1." / "mlp1.dense2." in blocks
  std::unordered_map<std::string, Binding> names;
  std::unordered_map<std::string, int> instances; ///< per block name, so far
  SourceLoc callLoc;                              ///< where the instance was requested
  unsigned callLength = 1;
  std::string outName; ///< the IR name the block's `out` value gets
  Value out;
  bool hasOut = false;
};

/// Makes `scope` the innermost scope until the end of the C++ block.
class EnterScope {
public:
  EnterScope(std::vector<Scope *> &stack, Scope &scope) : stack_(stack) {
    stack_.push_back(&scope);
  }
  ~EnterScope() { stack_.pop_back(); }
  EnterScope(const EnterScope &) = delete;
  EnterScope &operator=(const EnterScope &) = delete;

private:
  std::vector<Scope *> &stack_;
};

/// A note that follows an error.
struct Note {
  SourceLoc loc;
  std::string message;
  unsigned length = 1;
};

class Elaborator {
public:
  Elaborator(const File &file, const ElaborateOptions &options, Diagnostics &diags)
      : file_(file), options_(options), diags_(diags) {}

  std::unique_ptr<ir::Graph> run();

private:
  // --- Diagnostics. -------------------------------------------------------
  void error(SourceLoc loc, const std::string &message, unsigned length = 1,
             const std::vector<Note> &notes = {});
  static unsigned lengthOf(const std::string &name) {
    return static_cast<unsigned>(std::max<size_t>(1, name.size()));
  }
  Note previousNote(const std::string &name, const Binding &binding) const;

  // --- Definitions and statements. ----------------------------------------
  bool checkDefinitions();
  const Model *selectModel();
  void elaborateBody(const Body &body);
  void elaborateStatement(const Stmt &stmt);
  void declare(const DeclStmt &decl);
  void assign(const AssignStmt &assign);
  void setLoss(const ExprStmt &stmt);
  void setOutput(const ExprStmt &stmt);
  void setOut(const ExprStmt &stmt);
  void setWeightDecay(const WeightDecayStmt &stmt);
  void repeat(const RepeatStmt &stmt);

  // --- Types. -------------------------------------------------------------
  std::optional<ir::Type> resolveType(const DeclStmt &decl, bool &usesBatch);
  std::optional<int64_t> resolveDim(const Dim &dim, const DeclStmt &decl, bool &usesBatch);

  // --- Expressions. -------------------------------------------------------
  /// Elaborates `expr`; the node it creates last is named `name` (a full IR
  /// name) when given, else after its op.
  Value elaborate(const Expr &expr, std::string_view name = {});
  Value lookup(const NameExpr &expr);
  Value binary(const BinaryExpr &expr, std::string_view name);
  Value matmul(const BinaryExpr &expr, std::string_view name);
  Value call(const CallExpr &call, std::string_view name);
  Value callBuiltin(const Builtin &builtin, const CallExpr &call, std::string_view name);
  Value instantiate(const Block &block, const CallExpr &call, std::string_view name);
  /// Matches positional and `key = value` arguments to parameter names;
  /// nullopt (after an error) when they do not fit.
  std::optional<std::vector<const Expr *>>
  bindArguments(const std::vector<Argument> &args, const std::vector<std::string_view> &params,
                const std::vector<bool> &optional, const std::string &what, std::string_view noun,
                SourceLoc loc, unsigned length);
  /// A tensor or number operand; reports a function used as a value.
  Value requireData(Value value, const Expr &expr);
  /// A literal number argument (dropout p, an axis); nullopt after an error.
  std::optional<double> requireNumber(const Expr &expr, std::string_view what);

  // --- Nodes. -------------------------------------------------------------
  Value createOp(OpKind kind, const std::vector<Value> &operands, ir::Attrs attrs, SourceLoc loc,
                 unsigned length, std::string_view name);
  Node *createNode(OpKind kind, std::vector<Node *> operands, ir::Type type, ir::Attrs attrs,
                   std::string_view name, SourceLoc loc);
  /// Counts one statement or repeat round against kMaxWork; false (after
  /// reporting once) when the model is too large to elaborate.
  bool spendWork(SourceLoc loc);
  /// The node of a tensor value; a number becomes a rank-0 `const`.
  Node *materialize(const Value &value, std::string_view name = {});
  std::string uniqueName(std::string_view base);
  Scope &scope() { return *scopes_.back(); }

  // --- Finishing. ---------------------------------------------------------
  void assignFans();
  void scaleSquaredErrors();
  /// The "prediction" result: `output`, else the first argument of the loss
  /// function, else the last value assigned in the model.
  Node *prediction(Node *loss);

  const File &file_;
  const ElaborateOptions &options_;
  Diagnostics &diags_;
  std::unique_ptr<ir::Graph> graph_;
  std::vector<Scope *> scopes_;
  bool failed_ = false;
  bool tooLarge_ = false;
  int64_t work_ = 0;
  bool batchReported_ = false;
  std::optional<int64_t> batch_ = options_.batch; ///< the flag's, else the train section's
  /// Errors already printed: a block instantiated in a loop reports its
  /// mistake once, not once per instance.
  std::set<std::tuple<const std::string *, uint32_t, uint32_t, std::string>> reported_;
  std::unordered_set<std::string> usedNames_;
  std::unordered_map<std::string, int> nextSuffix_;

  // Model-level results.
  const Stmt *lossStmt_ = nullptr, *outputStmt_ = nullptr, *weightDecayStmt_ = nullptr;
  Value loss_, output_, lastAssigned_;
};

// --- Diagnostics. -----------------------------------------------------------

void Elaborator::error(SourceLoc loc, const std::string &message, unsigned length,
                       const std::vector<Note> &notes) {
  failed_ = true;
  if (!reported_.emplace(loc.file, loc.line, loc.col, message).second)
    return;
  diags_.error(loc, message, length);
  for (const Note &note : notes)
    diags_.note(note.loc, note.message, note.length);
  // Innermost instantiation first, as clang prints template instantiations.
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
    if ((*it)->block)
      diags_.note((*it)->callLoc,
                  fmt::format("in block '{}' instantiated here", (*it)->block->name),
                  (*it)->callLength);
}

Note Elaborator::previousNote(const std::string &name, const Binding &binding) const {
  switch (binding.role) {
  case Role::Config:
    return {binding.loc,
            fmt::format("'{}' is a config parameter of block '{}'", name,
                        scopes_.back()->block ? scopes_.back()->block->name : ""),
            lengthOf(name)};
  case Role::BlockInput:
    return {binding.loc,
            fmt::format("'{}' is an input of block '{}'", name,
                        scopes_.back()->block ? scopes_.back()->block->name : ""),
            lengthOf(name)};
  case Role::Value:
    return {binding.loc, fmt::format("'{}' was assigned here", name), lengthOf(name)};
  case Role::Input:
  case Role::Target:
  case Role::Param:
    break;
  }
  return {binding.loc, fmt::format("'{}' was declared here", name), lengthOf(name)};
}

// --- Definitions. -----------------------------------------------------------

bool Elaborator::checkDefinitions() {
  std::unordered_map<std::string, const Definition *> blocks, models;
  for (const auto &definition : file_.definitions) {
    bool isBlock = definition->kind == DefinitionKind::Block;
    auto &seen = isBlock ? blocks : models;
    auto [it, fresh] = seen.emplace(definition->name, definition.get());
    const char *what = isBlock ? "block" : "model";
    if (!fresh)
      error(definition->nameLoc, fmt::format("redefinition of {} '{}'", what, definition->name),
            lengthOf(definition->name),
            {{it->second->nameLoc, fmt::format("{} '{}' was defined here", what, definition->name),
              lengthOf(definition->name)}});
    if (isBlock && findBuiltin(definition->name))
      error(definition->nameLoc,
            fmt::format("block '{}' has the name of a built-in function", definition->name),
            lengthOf(definition->name));
  }
  return !failed_;
}

const Model *Elaborator::selectModel() {
  std::vector<const Model *> models = file_.models();
  SourceLoc fileLoc{file_.fileName, 0, 0};
  std::vector<std::string> names;
  for (const Model *model : models)
    names.push_back(model->name);
  if (!options_.model.empty()) {
    for (const Model *model : models)
      if (model->name == options_.model)
        return model;
    error(fileLoc, models.empty() ? fmt::format("no model named '{}': the file defines no model",
                                                options_.model)
                                  : fmt::format("no model named '{}'; the file defines {}",
                                                options_.model, fmt::join(names, ", ")));
    return nullptr;
  }
  if (models.size() == 1)
    return models.front();
  if (models.empty())
    error(fileLoc, "the file defines no model; expected 'model NAME { ... }'");
  else
    error(fileLoc, fmt::format("the file defines {} models ({}); choose one with --model=NAME",
                               models.size(), fmt::join(names, ", ")));
  return nullptr;
}

std::unique_ptr<ir::Graph> Elaborator::run() {
  if (!checkDefinitions())
    return nullptr;
  const Model *model = selectModel();
  if (!model)
    return nullptr;
  graph_ = std::make_unique<ir::Graph>();
  graph_->name = model->name;
  graph_->kind = ir::GraphKind::Forward;
  // The train section first: its batch size gives 'batch' its value.
  TrainSettings settings;
  // A broken section stops here: its batch size may be what the body needs.
  if (!readTrainSection(*model, diags_, settings, graph_->optimizer))
    return nullptr;
  if (!batch_ && settings.batch)
    batch_ = settings.batch;
  if (options_.settings)
    *options_.settings = settings;

  Scope modelScope;
  EnterScope enter(scopes_, modelScope);
  elaborateBody(model->body);

  // A model cut short by the size limit has not reached its loss yet.
  if (!lossStmt_ && !tooLarge_)
    error(model->nameLoc,
          fmt::format("model '{}' has no loss; add a 'loss EXPR' statement", model->name),
          lengthOf(model->name));
  if (failed_)
    return nullptr;
  Node *loss = materialize(loss_, "L");
  Node *predicted = loss ? prediction(loss) : nullptr;
  if (!loss || !predicted || failed_)
    return nullptr;
  assignFans();
  scaleSquaredErrors();
  graph_->setOutput("loss", loss);
  graph_->setOutput("prediction", predicted);
  return std::move(graph_);
}

// --- Statements. ------------------------------------------------------------

void Elaborator::elaborateBody(const Body &body) {
  for (const StmtPtr &stmt : body) {
    if (!spendWork(stmt->loc))
      return;
    elaborateStatement(*stmt);
  }
}

void Elaborator::elaborateStatement(const Stmt &stmt) {
  switch (stmt.kind) {
  case StmtKind::Input:
  case StmtKind::Target:
  case StmtKind::Param:
    return declare(static_cast<const DeclStmt &>(stmt));
  case StmtKind::Assign:
    return assign(static_cast<const AssignStmt &>(stmt));
  case StmtKind::Loss:
    return setLoss(static_cast<const ExprStmt &>(stmt));
  case StmtKind::Output:
    return setOutput(static_cast<const ExprStmt &>(stmt));
  case StmtKind::Out:
    return setOut(static_cast<const ExprStmt &>(stmt));
  case StmtKind::WeightDecay:
    return setWeightDecay(static_cast<const WeightDecayStmt &>(stmt));
  case StmtKind::Repeat:
    return repeat(static_cast<const RepeatStmt &>(stmt));
  case StmtKind::Train:
    return; // read before the body (frontend/TrainSection.cpp): it sets the batch size
  }
}

void Elaborator::declare(const DeclStmt &decl) {
  Scope &current = scope();
  if (auto it = current.names.find(decl.name); it != current.names.end()) {
    error(decl.nameLoc, fmt::format("redefinition of '{}'", decl.name), lengthOf(decl.name),
          {previousNote(decl.name, it->second)});
    return;
  }
  Role role = decl.kind == StmtKind::Input    ? Role::Input
              : decl.kind == StmtKind::Target ? Role::Target
                                              : Role::Param;
  bool usesBatch = false;
  std::optional<ir::Type> type = resolveType(decl, usesBatch);
  if (type && role == Role::Param) {
    if (type->dtype != ir::DType::F32) {
      error(decl.type.loc, fmt::format("param '{}' must be f32, got {}", decl.name, type->str()),
            kElementTypeLength);
      type.reset();
    } else if (usesBatch) {
      error(decl.type.loc,
            fmt::format("the shape of param '{}' cannot use 'batch': parameters are shared by "
                        "all the examples of a batch",
                        decl.name),
            kElementTypeLength);
      type.reset();
    }
  }
  if (!type) {
    current.names[decl.name] = Binding{role, Value::poison(), decl.nameLoc};
    return;
  }

  ir::Attrs attrs;
  OpKind kind = OpKind::Input;
  if (role == Role::Target) {
    kind = OpKind::Target;
  } else if (role == Role::Param) {
    kind = OpKind::Param;
    // Weights get Xavier (lecture 2.7); biases and scalars start at zero.
    attrs.init.kind = type->rank() >= 2 ? "xavier_normal" : "zeros";
    if (decl.hasInit) {
      const InitExpr &init = decl.init;
      int arity = ir::initializerArity(init.name);
      if (arity < 0) {
        error(init.loc,
              fmt::format("unknown initializer '{}'; expected one of {}", init.name,
                          ir::initializerNames()),
              lengthOf(init.name));
      } else if (arity != static_cast<int>(init.args.size())) {
        error(init.loc,
              fmt::format("initializer '{}' takes {}, got {}", init.name,
                          countPhrase(arity, arity, "argument"), init.args.size()),
              lengthOf(init.name));
      } else if (init.name == "uniform" && !(init.args[0].value <= init.args[1].value)) {
        error(init.args[0].loc,
              fmt::format("the bounds of uniform(a, b) must satisfy a <= b, got {} and {}",
                          ir::formatNumber(init.args[0].value),
                          ir::formatNumber(init.args[1].value)),
              init.args[0].length);
      } else {
        attrs.init.kind = init.name;
        for (const Number &arg : init.args)
          attrs.init.args.push_back(arg.value);
      }
    }
  }
  if (usesBatch)
    graph_->batch = *batch_;
  Node *node = createNode(kind, {}, *type, attrs, current.prefix + decl.name, decl.nameLoc);
  current.names[decl.name] = Binding{role, Value::tensor(node), decl.nameLoc};
}

void Elaborator::assign(const AssignStmt &assign) {
  Scope &current = scope();
  auto it = current.names.find(assign.name);
  bool declared = it != current.names.end() && it->second.role != Role::Value &&
                  it->second.role != Role::BlockInput;
  if (declared) {
    error(assign.loc, fmt::format("redefinition of '{}'", assign.name), lengthOf(assign.name),
          {previousNote(assign.name, it->second)});
    // The right-hand side may hold mistakes of its own.
    elaborate(*assign.value);
    return;
  }
  Value value = requireData(elaborate(*assign.value, current.prefix + assign.name), *assign.value);
  current.names[assign.name] = Binding{Role::Value, value, assign.loc};
  if (!current.block)
    lastAssigned_ = value;
}

void Elaborator::setLoss(const ExprStmt &stmt) {
  if (scope().block) {
    error(stmt.loc, "'loss' is only allowed in a model", 4);
    return;
  }
  if (lossStmt_) {
    error(stmt.loc, "the model already has a loss", 4,
          {{lossStmt_->loc, "the first loss is here", 4}});
    return;
  }
  lossStmt_ = &stmt;
  Value value = requireData(elaborate(*stmt.value, "L"), *stmt.value);
  if (value.isTensor() && value.node->type.rank() != 0) {
    error(startOf(*stmt.value),
          fmt::format("the loss must be a scalar, got {}; reduce it with sum(...) or mean(...)",
                      value.node->type.str()));
    value = Value::poison();
  }
  loss_ = value;
}

void Elaborator::setOutput(const ExprStmt &stmt) {
  if (scope().block) {
    error(stmt.loc, "'output' is only allowed in a model", 6);
    return;
  }
  if (outputStmt_) {
    error(stmt.loc, "the model already has an output", 6,
          {{outputStmt_->loc, "the first output is here", 6}});
    return;
  }
  outputStmt_ = &stmt;
  output_ = requireData(elaborate(*stmt.value, "prediction"), *stmt.value);
}

void Elaborator::setOut(const ExprStmt &stmt) {
  Scope &current = scope();
  if (!current.block) {
    error(stmt.loc, "'out' is only allowed in a block; use 'output' to name the model's prediction",
          3);
    return;
  }
  current.out = requireData(elaborate(*stmt.value, current.outName), *stmt.value);
  current.hasOut = true;
}

void Elaborator::setWeightDecay(const WeightDecayStmt &stmt) {
  if (scope().block) {
    error(stmt.loc, "'weight_decay' is only allowed in a model", 12);
    return;
  }
  if (weightDecayStmt_) {
    error(stmt.loc, "the weight decay is already set", 12,
          {{weightDecayStmt_->loc, "it was set here", 12}});
    return;
  }
  weightDecayStmt_ = &stmt;
  double lambda = stmt.lambda.value;
  if (!(lambda >= 0)) {
    error(stmt.lambda.loc,
          fmt::format("weight decay must be >= 0, got {}", ir::formatNumber(lambda)),
          stmt.lambda.length);
    return;
  }
  graph_->weightDecay = lambda;
}

void Elaborator::repeat(const RepeatStmt &stmt) {
  Value count = elaborate(*stmt.count);
  if (count.isPoison())
    return;
  if (!count.isNumber() || count.number < 0 || std::floor(count.number) != count.number) {
    std::string got = count.isNumber()   ? ir::formatNumber(count.number)
                      : count.isTensor() ? "a tensor of type " + count.node->type.str()
                                         : "the function '" + count.function + "'";
    error(startOf(*stmt.count),
          fmt::format("the repeat count must be a non-negative integer, got {}", got),
          dynCast<NameExpr>(stmt.count.get()) || dynCast<NumberExpr>(stmt.count.get())
              ? stmt.count->length
              : 1);
    return;
  }
  for (double round = 0; round < count.number && spendWork(stmt.loc); ++round)
    elaborateBody(stmt.body);
}

// --- Types. -----------------------------------------------------------------

std::optional<ir::Type> Elaborator::resolveType(const DeclStmt &decl, bool &usesBatch) {
  ir::Type type;
  type.dtype = decl.type.elementType == ElementType::F32 ? ir::DType::F32 : ir::DType::I32;
  bool ok = true;
  for (const Dim &dim : decl.type.dims) {
    std::optional<int64_t> size = resolveDim(dim, decl, usesBatch);
    ok &= size.has_value();
    type.shape.push_back(size.value_or(1));
  }
  if (!ok)
    return std::nullopt;
  // Element counts are int64 everywhere downstream; keep them far from overflow.
  double elements = 1;
  for (int64_t size : type.shape)
    elements *= static_cast<double>(size);
  if (elements > static_cast<double>(kMaxElements)) {
    error(decl.type.loc,
          fmt::format("'{}' is too large: {} has more than {} elements", decl.name, type.str(),
                      kMaxElements),
          kElementTypeLength);
    return std::nullopt;
  }
  return type;
}

std::optional<int64_t> Elaborator::resolveDim(const Dim &dim, const DeclStmt &decl,
                                              bool &usesBatch) {
  double size = static_cast<double>(dim.value);
  if (dim.isName()) {
    const Scope &current = *scopes_.back();
    auto it = current.names.find(dim.name);
    if (it != current.names.end() && it->second.role == Role::Config) {
      const Value &value = it->second.value;
      if (value.isPoison())
        return std::nullopt;
      if (!value.isNumber()) {
        error(dim.loc,
              fmt::format("config parameter '{}' is the function '{}', not a dimension", dim.name,
                          value.function),
              dim.length);
        return std::nullopt;
      }
      size = value.number;
    } else if (dim.name == "batch") {
      if (!batch_) {
        if (!batchReported_)
          error(dim.loc, "the batch size is not set; pass --batch=N", dim.length);
        batchReported_ = true;
        failed_ = true;
        return std::nullopt;
      }
      if (*batch_ <= 0) {
        error(dim.loc, fmt::format("the batch size must be positive, got {}", *batch_), dim.length);
        return std::nullopt;
      }
      usesBatch = true;
      size = static_cast<double>(*batch_);
    } else {
      std::string what = it != current.names.end()
                             ? fmt::format("'{}' is a value, not a dimension", dim.name)
                             : fmt::format("unknown dimension '{}'", dim.name);
      error(dim.loc,
            fmt::format("{}; a dimension is an integer, a config parameter or 'batch'", what),
            dim.length);
      return std::nullopt;
    }
  }
  if (!(size >= 1) || std::floor(size) != size || size > static_cast<double>(kMaxDimension)) {
    error(dim.loc,
          fmt::format("the dimensions of '{}' must be positive integers up to {}, got {}",
                      decl.name, kMaxDimension, ir::formatNumber(size)),
          dim.length);
    return std::nullopt;
  }
  return static_cast<int64_t>(size);
}

// --- Expressions. -----------------------------------------------------------

Value Elaborator::elaborate(const Expr &expr, std::string_view name) {
  if (tooLarge_)
    return Value::poison();
  switch (expr.kind) {
  case ExprKind::Number:
    return Value::literal(static_cast<const NumberExpr &>(expr).number.value, expr.loc);
  case ExprKind::Name:
    return lookup(static_cast<const NameExpr &>(expr));
  case ExprKind::Negate: {
    const Expr &operand = *static_cast<const NegateExpr &>(expr).operand;
    Value value = requireData(elaborate(operand), operand);
    if (value.isNumber())
      return Value::literal(-value.number, expr.loc);
    return createOp(OpKind::Neg, {value}, {}, expr.loc, 1, name);
  }
  case ExprKind::Binary: {
    const auto &binary = static_cast<const BinaryExpr &>(expr);
    return binary.op == BinaryOp::MatMul ? matmul(binary, name) : this->binary(binary, name);
  }
  case ExprKind::Power: {
    const auto &power = static_cast<const PowerExpr &>(expr);
    Value base = requireData(elaborate(*power.base), *power.base);
    double exponent = power.exponent.value;
    if (base.isNumber()) {
      double folded = std::pow(base.number, exponent);
      if (!std::isfinite(folded)) {
        error(expr.loc, fmt::format("{} ^ {} is not a finite number", ir::formatNumber(base.number),
                                    ir::formatNumber(exponent)));
        return Value::poison();
      }
      return Value::literal(folded, expr.loc);
    }
    ir::Attrs attrs;
    attrs.value = exponent;
    return createOp(OpKind::Pow, {base}, attrs, expr.loc, 1, name);
  }
  case ExprKind::Transpose: {
    const Expr &operand = *static_cast<const TransposeExpr &>(expr).operand;
    Value value = requireData(elaborate(operand), operand);
    return createOp(OpKind::Transpose, {value}, {}, expr.loc, 2, name);
  }
  case ExprKind::Call:
    return call(static_cast<const CallExpr &>(expr), name);
  }
  return Value::poison();
}

Value Elaborator::lookup(const NameExpr &expr) {
  const Scope &current = scope();
  if (auto it = current.names.find(expr.name); it != current.names.end())
    return it->second.value;
  if (findBuiltin(expr.name))
    return Value::functionNamed(expr.name);
  if (file_.findBlock(expr.name)) {
    error(expr.loc,
          fmt::format("'{}' is a block; instantiate it with its config and its inputs, as in "
                      "{}(...)(x)",
                      expr.name, expr.name),
          expr.length);
    return Value::poison();
  }
  // A name of an enclosing scope: say why it is not visible here.
  for (const Scope *outer : scopes_)
    if (outer != &current && outer->names.count(expr.name)) {
      error(expr.loc,
            fmt::format("unknown name '{}' in block '{}': a block sees only its config "
                        "parameters, its inputs and its own values",
                        expr.name, current.block->name),
            expr.length);
      return Value::poison();
    }
  error(expr.loc, fmt::format("unknown name '{}'", expr.name), expr.length);
  return Value::poison();
}

Value Elaborator::requireData(Value value, const Expr &expr) {
  if (!value.isFunction())
    return value;
  error(expr.loc,
        fmt::format("'{}' is a function, not a value; call it as {}(...)", value.function,
                    value.function),
        expr.length);
  return Value::poison();
}

Value Elaborator::binary(const BinaryExpr &expr, std::string_view name) {
  Value lhs = requireData(elaborate(*expr.lhs), *expr.lhs);
  Value rhs = requireData(elaborate(*expr.rhs), *expr.rhs);
  if (lhs.isPoison() || rhs.isPoison())
    return Value::poison();
  if (lhs.isNumber() && rhs.isNumber()) {
    double a = lhs.number, b = rhs.number, folded = 0;
    switch (expr.op) {
    case BinaryOp::Add:
      folded = a + b;
      break;
    case BinaryOp::Sub:
      folded = a - b;
      break;
    case BinaryOp::Mul:
      folded = a * b;
      break;
    case BinaryOp::Div:
      if (b == 0) {
        error(expr.loc, "division by zero");
        return Value::poison();
      }
      folded = a / b;
      break;
    case BinaryOp::MatMul:
      break;
    }
    return Value::literal(folded, expr.lhs->loc);
  }
  ir::Attrs attrs;
  if (expr.op == BinaryOp::Mul && (lhs.isNumber() || rhs.isNumber())) {
    // A literal factor is a scale, not a broadcast multiply.
    attrs.value = lhs.isNumber() ? lhs.number : rhs.number;
    return createOp(OpKind::Scale, {lhs.isNumber() ? rhs : lhs}, attrs, expr.loc, 1, name);
  }
  if (expr.op == BinaryOp::Div && rhs.isNumber()) {
    if (rhs.number == 0) {
      error(expr.loc, "division by zero");
      return Value::poison();
    }
    attrs.value = 1 / rhs.number;
    return createOp(OpKind::Scale, {lhs}, attrs, expr.loc, 1, name);
  }
  OpKind kind = expr.op == BinaryOp::Add   ? OpKind::Add
                : expr.op == BinaryOp::Sub ? OpKind::Sub
                : expr.op == BinaryOp::Mul ? OpKind::Mul
                                           : OpKind::Div;
  return createOp(kind, {lhs, rhs}, attrs, expr.loc, 1, name);
}

Value Elaborator::matmul(const BinaryExpr &expr, std::string_view name) {
  // `a @ W^T`: the transpose is the matmul's attribute, not an op.
  ir::Attrs attrs;
  const Expr *lhs = expr.lhs.get(), *rhs = expr.rhs.get();
  if (const auto *transposed = dynCast<TransposeExpr>(lhs)) {
    attrs.transA = true;
    lhs = transposed->operand.get();
  }
  if (const auto *transposed = dynCast<TransposeExpr>(rhs)) {
    attrs.transB = true;
    rhs = transposed->operand.get();
  }
  Value a = requireData(elaborate(*lhs), *lhs);
  Value b = requireData(elaborate(*rhs), *rhs);
  return createOp(OpKind::MatMul, {a, b}, attrs, expr.loc, 1, name);
}

Value Elaborator::call(const CallExpr &call, std::string_view name) {
  const Scope &current = scope();
  auto bound = current.names.find(call.callee);
  if (call.hasInputs) {
    if (const Block *block = file_.findBlock(call.callee))
      return instantiate(*block, call, name);
    if (findBuiltin(call.callee))
      error(call.loc,
            fmt::format("'{}' is a function, not a block; call it with one argument list",
                        call.callee),
            call.length);
    else
      error(call.loc, fmt::format("unknown block '{}'", call.callee), call.length);
    return Value::poison();
  }
  const Builtin *builtin = nullptr;
  if (bound != current.names.end() && bound->second.role == Role::Config) {
    // A function-valued config parameter, such as a block's `act`.
    const Value &value = bound->second.value;
    if (value.isPoison())
      return Value::poison();
    if (!value.isFunction()) {
      error(call.loc,
            fmt::format("config parameter '{}' is the number {}, not a function", call.callee,
                        ir::formatNumber(value.number)),
            call.length);
      return Value::poison();
    }
    builtin = findBuiltin(value.function);
  } else {
    builtin = findBuiltin(call.callee);
  }
  if (builtin)
    return callBuiltin(*builtin, call, name);
  if (file_.findBlock(call.callee)) {
    error(call.loc,
          fmt::format("expected the inputs of block '{}' in a second argument list, as in "
                      "{}(...)(x)",
                      call.callee, call.callee),
          call.length);
  } else if (bound != current.names.end()) {
    error(call.loc, fmt::format("'{}' is a value, not a function", call.callee), call.length);
  } else {
    error(call.loc,
          fmt::format("unknown function '{}'; expected one of {}", call.callee, builtinNames()),
          call.length);
  }
  return Value::poison();
}

std::optional<std::vector<const Expr *>>
Elaborator::bindArguments(const std::vector<Argument> &args,
                          const std::vector<std::string_view> &params,
                          const std::vector<bool> &optional, const std::string &what,
                          std::string_view noun, SourceLoc loc, unsigned length) {
  size_t required = 0;
  for (bool isOptional : optional)
    required += isOptional ? 0 : 1;
  bool anyKeyword = false;
  for (const Argument &arg : args)
    anyKeyword |= !arg.keyword.empty();
  if (!anyKeyword && (args.size() < required || args.size() > params.size())) {
    error(loc,
          fmt::format("{} takes {}, got {}", what, countPhrase(required, params.size(), noun),
                      args.size()),
          length);
    return std::nullopt;
  }
  std::vector<const Expr *> result(params.size(), nullptr);
  size_t positional = 0;
  bool seenKeyword = false;
  for (const Argument &arg : args) {
    if (arg.keyword.empty()) {
      if (seenKeyword) {
        error(arg.value->loc, fmt::format("a positional {} cannot follow a named one", noun),
              arg.value->length);
        return std::nullopt;
      }
      if (positional >= params.size()) {
        error(loc,
              fmt::format("{} takes {}, got {}", what, countPhrase(required, params.size(), noun),
                          args.size()),
              length);
        return std::nullopt;
      }
      result[positional++] = arg.value.get();
      continue;
    }
    seenKeyword = true;
    size_t index = 0;
    while (index < params.size() && params[index] != arg.keyword)
      ++index;
    if (index == params.size()) {
      error(arg.keywordLoc,
            fmt::format("{} has no {} named '{}'; its {}s are {}", what, noun, arg.keyword, noun,
                        fmt::join(params, ", ")),
            lengthOf(arg.keyword));
      return std::nullopt;
    }
    if (result[index]) {
      error(arg.keywordLoc, fmt::format("{} '{}' of {} is given twice", noun, arg.keyword, what),
            lengthOf(arg.keyword));
      return std::nullopt;
    }
    result[index] = arg.value.get();
  }
  for (size_t i = 0; i < params.size(); ++i)
    if (!result[i] && !optional[i]) {
      error(loc, fmt::format("missing {} '{}' of {}", noun, params[i], what), length);
      return std::nullopt;
    }
  return result;
}

std::optional<double> Elaborator::requireNumber(const Expr &expr, std::string_view what) {
  Value value = elaborate(expr);
  if (value.isPoison())
    return std::nullopt;
  if (!value.isNumber()) {
    error(expr.loc, fmt::format("{} must be a number", what), expr.length);
    return std::nullopt;
  }
  return value.number;
}

Value Elaborator::callBuiltin(const Builtin &builtin, const CallExpr &call, std::string_view name) {
  std::vector<bool> optional(builtin.params.size(), false);
  for (size_t i = builtin.required; i < optional.size(); ++i)
    optional[i] = true;
  auto args = bindArguments(call.args, builtin.params, optional, fmt::format("'{}'", builtin.name),
                            "argument", call.loc, call.length);
  if (!args)
    return Value::poison();
  const Expr &first = *(*args)[0];
  ir::Attrs attrs;
  switch (builtin.kind) {
  case Builtin::Kind::Identity:
    // `none(e)` is `e` itself, so the value keeps the name it would have had.
    return requireData(elaborate(first, name), first);
  case Builtin::Kind::Unary:
    return createOp(*builtin.op, {requireData(elaborate(first), first)}, attrs, call.loc,
                    call.length, name);
  case Builtin::Kind::Binary:
  case Builtin::Kind::Loss: {
    // maximum(a, b), minimum(a, b) (a number is a rank-0 const, broadcast);
    // cross_entropy(logits, labels), bce_logits(logits, targets), whose
    // shape rules check the second operand against the first.
    const Expr &second = *(*args)[1];
    Value a = requireData(elaborate(first), first);
    Value b = requireData(elaborate(second), second);
    return createOp(*builtin.op, {a, b}, attrs, call.loc, call.length, name);
  }
  case Builtin::Kind::Dropout: {
    Value x = requireData(elaborate(first), first);
    const Expr &pExpr = *(*args)[1];
    std::optional<double> p = requireNumber(pExpr, "the dropout probability");
    if (!p)
      return Value::poison();
    if (!(*p >= 0 && *p < 1)) {
      error(pExpr.loc,
            fmt::format("dropout probability must be in [0, 1), got {}", ir::formatNumber(*p)),
            pExpr.length);
      return Value::poison();
    }
    attrs.value = *p;
    return createOp(OpKind::Dropout, {x}, attrs, call.loc, call.length, name);
  }
  case Builtin::Kind::Reduce: {
    Value x = requireData(elaborate(first), first);
    if (x.isPoison())
      return x;
    int64_t rank = x.isTensor() ? x.node->type.rank() : 0;
    if (const Expr *axisExpr = (*args)[1]) {
      std::optional<double> axis =
          requireNumber(*axisExpr, fmt::format("the axis of '{}'", builtin.name));
      if (!axis)
        return Value::poison();
      if (std::floor(*axis) != *axis || *axis < -rank || *axis >= rank) {
        error(axisExpr->loc,
              fmt::format("the axis of '{}' must be an integer in [{}, {}) for a value of rank {}, "
                          "got {}",
                          builtin.name, -rank, rank, rank, ir::formatNumber(*axis)),
              axisExpr->length);
        return Value::poison();
      }
      // -1 is the last axis, as in NumPy.
      attrs.axes = {static_cast<int64_t>(*axis < 0 ? *axis + rank : *axis)};
    } else {
      for (int64_t axis = 0; axis < rank; ++axis)
        attrs.axes.push_back(axis);
    }
    return createOp(*builtin.op, {x}, attrs, call.loc, call.length, name);
  }
  case Builtin::Kind::Flatten:
  case Builtin::Kind::Reshape: {
    Value x = requireData(elaborate(first), first);
    if (x.isPoison())
      return x;
    Node *node = materialize(x);
    if (!node)
      return Value::poison();
    const ir::Shape &from = node->type.shape;
    ir::Shape to;
    if (builtin.kind == Builtin::Kind::Flatten) {
      // Keep a leading batch dimension; a value without one flattens whole.
      bool batched = batch_ && !from.empty() && from[0] == *batch_ && from.size() >= 2;
      int64_t rest = 1;
      for (size_t i = batched ? 1 : 0; i < from.size(); ++i)
        rest *= from[i];
      if (batched)
        to.push_back(from[0]);
      to.push_back(rest);
    } else {
      int64_t known = 1, inferred = -1;
      for (size_t i = 1; i < args->size() && (*args)[i]; ++i) {
        const Expr &dimExpr = *(*args)[i];
        std::optional<double> dim = requireNumber(dimExpr, "a dimension of 'reshape'");
        if (!dim)
          return Value::poison();
        bool infer = *dim == -1;
        if (!infer && (std::floor(*dim) != *dim || *dim < 1)) {
          error(dimExpr.loc,
                fmt::format("a dimension of 'reshape' must be a positive integer or -1 (inferred), "
                            "got {}",
                            ir::formatNumber(*dim)),
                dimExpr.length);
          return Value::poison();
        }
        if (infer && inferred >= 0) {
          error(dimExpr.loc, "'reshape' can infer only one dimension (-1)", dimExpr.length);
          return Value::poison();
        }
        if (infer)
          inferred = static_cast<int64_t>(to.size());
        else
          known *= static_cast<int64_t>(*dim);
        to.push_back(infer ? 1 : static_cast<int64_t>(*dim));
      }
      int64_t count = node->type.numel();
      if (inferred >= 0) {
        if (count % known != 0) {
          error(call.loc,
                fmt::format("'reshape' cannot infer a dimension: {} elements of {} are not a "
                            "multiple of {}",
                            count, node->type.str(), known),
                call.length);
          return Value::poison();
        }
        to[static_cast<size_t>(inferred)] = count / known;
      }
    }
    ir::Type declared = node->type;
    declared.shape = to;
    const ir::Type *operandTypes[] = {&node->type};
    ir::TypeResult result = ir::inferType(OpKind::Reshape, operandTypes, attrs, &declared);
    if (!result.type) {
      error(call.loc, result.error, call.length);
      return Value::poison();
    }
    if (to == from) // nothing to do: keep the value (and its name)
      return x;
    std::string nodeName = name.empty() ? scope().prefix + "reshape" : std::string(name);
    return Value::tensor(
        createNode(OpKind::Reshape, {node}, std::move(*result.type), attrs, nodeName, call.loc));
  }
  case Builtin::Kind::SquaredError: {
    const Expr &target = *(*args)[1];
    Value o = requireData(elaborate(first), first);
    Value y = requireData(elaborate(target), target);
    // The scale is set once the batch size is known (scaleSquaredErrors).
    attrs.value = 0.5;
    return createOp(OpKind::SquaredError, {o, y}, attrs, call.loc, call.length, name);
  }
  }
  return Value::poison();
}

Value Elaborator::instantiate(const Block &block, const CallExpr &call, std::string_view name) {
  for (const Scope *outer : scopes_)
    if (outer->block == &block) {
      error(call.loc,
            fmt::format("block '{}' instantiates itself; blocks cannot be recursive", block.name),
            call.length);
      return Value::poison();
    }
  if (scopes_.size() > kMaxBlockNesting) {
    error(call.loc,
          fmt::format("blocks are nested too deeply (more than {} levels)", kMaxBlockNesting),
          call.length);
    return Value::poison();
  }
  Scope &caller = scope();
  std::string instance =
      fmt::format("{}{}{}", caller.prefix, block.name, ++caller.instances[block.name]);

  // Config arguments and inputs are evaluated in the caller's scope.
  std::vector<std::string_view> configNames, inputNames;
  std::vector<bool> configOptional;
  for (const ConfigParam &param : block.config) {
    configNames.push_back(param.name);
    configOptional.push_back(param.defaultValue != nullptr);
  }
  for (const BlockInput &input : block.inputs)
    inputNames.push_back(input.name);
  std::string what = fmt::format("block '{}'", block.name);
  auto config = bindArguments(call.args, configNames, configOptional, what, "config argument",
                              call.loc, call.length);
  if (!config)
    return Value::poison();
  auto inputs = bindArguments(call.inputs, inputNames, std::vector<bool>(inputNames.size(), false),
                              what, "input", call.loc, call.length);
  if (!inputs)
    return Value::poison();

  std::vector<Value> configValues(block.config.size());
  bool ok = true;
  for (size_t i = 0; i < block.config.size(); ++i) {
    const Expr *arg = (*config)[i];
    if (!arg)
      continue;
    Value value = elaborate(*arg);
    if (value.isTensor()) {
      error(arg->loc,
            fmt::format("config argument '{}' of block '{}' must be a number or a function name, "
                        "not a tensor",
                        block.config[i].name, block.name),
            arg->length);
      value = Value::poison();
    }
    ok &= !value.isPoison();
    configValues[i] = value;
  }
  std::vector<Value> inputValues;
  for (const Expr *arg : *inputs) {
    inputValues.push_back(requireData(elaborate(*arg), *arg));
    ok &= !inputValues.back().isPoison();
  }
  if (!ok)
    return Value::poison();

  Scope callee;
  callee.block = &block;
  callee.prefix = instance + ".";
  callee.callLoc = call.loc;
  callee.callLength = call.length;
  callee.outName = name.empty() ? instance : std::string(name);
  EnterScope enter(scopes_, callee);
  // Defaults are evaluated in the block, so they may use earlier config parameters.
  for (size_t i = 0; i < block.config.size(); ++i) {
    const ConfigParam &param = block.config[i];
    Value value = configValues[i];
    if (!(*config)[i]) {
      value = elaborate(*param.defaultValue);
      if (value.isTensor()) {
        error(param.defaultValue->loc,
              fmt::format("the default of config parameter '{}' must be a number or a function "
                          "name",
                          param.name),
              param.defaultValue->length);
        value = Value::poison();
      }
    }
    callee.names[param.name] = Binding{Role::Config, value, param.loc};
  }
  for (size_t i = 0; i < block.inputs.size(); ++i)
    callee.names[block.inputs[i].name] =
        Binding{Role::BlockInput, inputValues[i], block.inputs[i].loc};
  elaborateBody(block.body);
  if (!callee.hasOut)
    return Value::poison(); // the parser reported the missing `out`
  return callee.out;
}

// --- Nodes. -----------------------------------------------------------------

std::string Elaborator::uniqueName(std::string_view base) {
  // Graph::create would do this too, by a search through the graph per
  // candidate; a set keeps long repeated models linear.
  std::string name(base);
  if (usedNames_.insert(name).second)
    return name;
  int &next = nextSuffix_[name];
  for (;;) {
    std::string candidate = fmt::format("{}.{}", base, ++next);
    if (usedNames_.insert(candidate).second)
      return candidate;
  }
}

bool Elaborator::spendWork(SourceLoc loc) {
  if (!tooLarge_ && ++work_ > kMaxWork) {
    error(loc, fmt::format("the model is too large: more than {} statements to elaborate; check "
                           "the repeat counts",
                           kMaxWork));
    tooLarge_ = true;
  }
  return !tooLarge_;
}

Node *Elaborator::createNode(OpKind kind, std::vector<Node *> operands, ir::Type type,
                             ir::Attrs attrs, std::string_view name, SourceLoc loc) {
  if (graph_->size() >= kMaxNodes) {
    if (!tooLarge_)
      error(loc, fmt::format("the model is too large: more than {} operations", kMaxNodes));
    tooLarge_ = true;
    failed_ = true;
    return nullptr;
  }
  return graph_->create(kind, std::move(operands), std::move(type), std::move(attrs),
                        uniqueName(name), loc);
}

Node *Elaborator::materialize(const Value &value, std::string_view name) {
  if (value.isTensor())
    return value.node;
  if (!value.isNumber())
    return nullptr;
  ir::Attrs attrs;
  attrs.value = value.number;
  return createNode(OpKind::Const, {}, ir::Type::scalar(), attrs,
                    name.empty() ? scope().prefix + "const" : std::string(name), value.loc);
}

Value Elaborator::createOp(OpKind kind, const std::vector<Value> &operands, ir::Attrs attrs,
                           SourceLoc loc, unsigned length, std::string_view name) {
  for (const Value &operand : operands)
    if (operand.isPoison() || operand.isFunction())
      return Value::poison();
  std::vector<Node *> nodes;
  std::vector<const ir::Type *> types;
  for (const Value &operand : operands) {
    Node *node = materialize(operand);
    if (!node)
      return Value::poison();
    nodes.push_back(node);
    types.push_back(&node->type);
  }
  ir::TypeResult result = ir::inferType(kind, types, attrs, nullptr);
  if (!result.type) {
    error(loc, result.error, length);
    return Value::poison();
  }
  std::string nodeName =
      name.empty() ? scope().prefix + ir::opInfo(kind).mnemonic : std::string(name);
  return Value::tensor(
      createNode(kind, std::move(nodes), std::move(*result.type), std::move(attrs), nodeName, loc));
}

// --- Finishing. -------------------------------------------------------------

void Elaborator::assignFans() {
  // Lecture 2.7: n_in and n_out are the inputs and outputs of the layer the
  // weight belongs to, which its position in a matmul tells: `W @ x` and
  // `x @ W^T` hold W as [out, in], `x @ W` and `W^T @ x` as [in, out].
  std::unordered_set<Node *> assigned;
  for (const auto &node : graph_->nodes()) {
    if (!node->is(OpKind::MatMul))
      continue;
    for (int side = 0; side < 2; ++side) {
      Node *operand = node->operands[side];
      bool transposed = side == 0 ? node->attrs.transA : node->attrs.transB;
      if (operand->is(OpKind::Transpose) && operand->operands[0]->is(OpKind::Param)) {
        operand = operand->operands[0];
        transposed = !transposed;
      }
      if (!operand->is(OpKind::Param) || !assigned.insert(operand).second)
        continue;
      const ir::Shape &shape = operand->type.shape;
      if (shape.size() == 1) {
        operand->attrs.fanIn = shape[0];
        operand->attrs.fanOut = 1;
        continue;
      }
      bool outFirst = (side == 0) != transposed;
      operand->attrs.fanIn = outFirst ? shape[1] : shape[0];
      operand->attrs.fanOut = outFirst ? shape[0] : shape[1];
    }
  }
  for (Node *param : graph_->nodesOfKind(OpKind::Param)) {
    if (assigned.count(param))
      continue;
    const ir::Shape &shape = param->type.shape;
    if (shape.empty()) {
      param->attrs.fanIn = param->attrs.fanOut = 1;
    } else if (shape.size() == 1) {
      param->attrs.fanIn = param->attrs.fanOut = shape[0];
    } else {
      int64_t fanIn = 1;
      for (size_t i = 1; i < shape.size(); ++i)
        fanIn *= shape[i];
      param->attrs.fanIn = fanIn;
      param->attrs.fanOut = shape[0];
    }
  }
}

void Elaborator::scaleSquaredErrors() {
  // Lecture 2.4 / 2.6: 1/2 ||o - y||^2 per example, averaged over the batch.
  double scale = graph_->batch > 0 ? 0.5 / static_cast<double>(graph_->batch) : 0.5;
  for (Node *node : graph_->nodesOfKind(OpKind::SquaredError))
    node->attrs.value = scale;
}

Node *Elaborator::prediction(Node *loss) {
  if (outputStmt_)
    return materialize(output_, "prediction");
  // The first argument of a loss function (squared_error, cross_entropy,
  // bce_logits) is what the model predicts.
  if (loss->info().traits & ir::TRAIT_LOSS)
    return loss->operands[0];
  if (!lastAssigned_.isPoison())
    return materialize(lastAssigned_, "prediction");
  return loss;
}

} // namespace

std::unique_ptr<ir::Graph> elaborate(const ast::File &file, const ElaborateOptions &options,
                                     Diagnostics &diags) {
  return Elaborator(file, options, diags).run();
}

} // namespace gradc::frontend
