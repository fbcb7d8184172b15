//===- frontend/AstPrinter.cpp - The syntax tree as canonical source ------===//
//
// Prints what `gradc show --stage=parsed` shows: the model source in one
// canonical spelling, every compound expression in parentheses so the
// precedence the parser chose is visible, one statement a line, two spaces
// of indentation a level, comments dropped.  parseModelFile reads the output
// back to the same tree, so printing it again gives the same text.
//
//===----------------------------------------------------------------------===//
#include "frontend/Frontend.h"
#include "ir/Printer.h"

#include <fmt/format.h>
#include <ostream>

namespace gradc::frontend {

namespace {

using namespace ast;

/// A literal spelled so that it reads back with the same value and the same
/// integer-ness: integers without a point, other numbers with one or an
/// exponent ("2.0", not "2", which would read back as an integer).
std::string formatLiteral(const Number &number) {
  if (number.isInteger)
    return fmt::format("{}", static_cast<int64_t>(number.value));
  std::string text = ir::formatNumber(number.value);
  if (text.find_first_of(".e") == std::string::npos)
    text += ".0";
  return text;
}

class AstPrinter {
public:
  explicit AstPrinter(std::ostream &out) : out_(out) {}

  void print(const File &file) {
    bool first = true;
    for (const auto &definition : file.definitions) {
      if (!first)
        out_ << '\n';
      first = false;
      printDefinition(*definition);
    }
  }

private:
  void printDefinition(const Definition &definition) {
    if (const Block *block = dynCast<Block>(&definition)) {
      out_ << "block " << block->name << '(';
      for (size_t i = 0; i < block->config.size(); ++i) {
        const ConfigParam &param = block->config[i];
        out_ << (i ? ", " : "") << param.name;
        if (param.defaultValue)
          out_ << " = " << expr(*param.defaultValue);
      }
      out_ << ")(";
      for (size_t i = 0; i < block->inputs.size(); ++i)
        out_ << (i ? ", " : "") << block->inputs[i].name;
      out_ << ") {\n";
    } else {
      out_ << "model " << definition.name << " {\n";
    }
    printBody(definition.body, 1);
    out_ << "}\n";
  }

  void printBody(const Body &body, int depth) {
    for (const StmtPtr &stmt : body)
      printStatement(*stmt, depth);
  }

  void printStatement(const Stmt &stmt, int depth) {
    std::string indent(2 * depth, ' ');
    out_ << indent;
    switch (stmt.kind) {
    case StmtKind::Input:
    case StmtKind::Target:
    case StmtKind::Param: {
      const auto &decl = static_cast<const DeclStmt &>(stmt);
      const char *keyword = stmt.kind == StmtKind::Input    ? "input"
                            : stmt.kind == StmtKind::Target ? (decl.label ? "label" : "target")
                                                            : "param";
      out_ << keyword << ' ' << decl.name << " : " << type(decl.type);
      if (decl.hasInit)
        out_ << " = " << init(decl.init);
      break;
    }
    case StmtKind::Assign: {
      const auto &assign = static_cast<const AssignStmt &>(stmt);
      out_ << assign.name << " = " << expr(*assign.value);
      break;
    }
    case StmtKind::Loss:
    case StmtKind::Output:
    case StmtKind::Out: {
      const auto &exprStmt = static_cast<const ExprStmt &>(stmt);
      const char *keyword = stmt.kind == StmtKind::Loss     ? "loss"
                            : stmt.kind == StmtKind::Output ? "output"
                                                            : "out";
      out_ << keyword << ' ' << expr(*exprStmt.value);
      break;
    }
    case StmtKind::WeightDecay:
      out_ << "weight_decay " << formatLiteral(static_cast<const WeightDecayStmt &>(stmt).lambda);
      break;
    case StmtKind::Train: {
      const auto &train = static_cast<const TrainStmt &>(stmt);
      out_ << "train {\n";
      for (const auto &setting : train.settings)
        out_ << indent << "  " << setting->name << " = " << expr(*setting->value) << '\n';
      out_ << indent << '}';
      break;
    }
    case StmtKind::Repeat: {
      const auto &repeat = static_cast<const RepeatStmt &>(stmt);
      out_ << "repeat " << expr(*repeat.count) << " {\n";
      printBody(repeat.body, depth + 1);
      out_ << indent << '}';
      break;
    }
    }
    out_ << '\n';
  }

  static std::string type(const TypeExpr &type) {
    std::vector<std::string> dims;
    for (const Dim &dim : type.dims)
      dims.push_back(dim.isName() ? dim.name : fmt::format("{}", dim.value));
    return fmt::format("{}[{}]", elementTypeName(type.elementType), fmt::join(dims, ", "));
  }

  static std::string init(const InitExpr &init) {
    if (init.args.empty())
      return init.name;
    std::vector<std::string> args;
    for (const Number &arg : init.args)
      args.push_back(formatLiteral(arg));
    return fmt::format("{}({})", init.name, fmt::join(args, ", "));
  }

  static std::string arguments(const std::vector<Argument> &args) {
    std::vector<std::string> parts;
    for (const Argument &arg : args)
      parts.push_back(arg.keyword.empty() ? expr(*arg.value)
                                          : arg.keyword + " = " + expr(*arg.value));
    return fmt::format("({})", fmt::join(parts, ", "));
  }

  static std::string expr(const Expr &e) {
    switch (e.kind) {
    case ExprKind::Number:
      return formatLiteral(static_cast<const NumberExpr &>(e).number);
    case ExprKind::Name:
      return static_cast<const NameExpr &>(e).name;
    case ExprKind::Negate:
      return "(-" + expr(*static_cast<const NegateExpr &>(e).operand) + ")";
    case ExprKind::Binary: {
      const auto &binary = static_cast<const BinaryExpr &>(e);
      return fmt::format("({} {} {})", expr(*binary.lhs), binaryOpSpelling(binary.op),
                         expr(*binary.rhs));
    }
    case ExprKind::Power: {
      const auto &power = static_cast<const PowerExpr &>(e);
      return fmt::format("({} ^ {})", expr(*power.base), formatLiteral(power.exponent));
    }
    case ExprKind::Transpose:
      return "(" + expr(*static_cast<const TransposeExpr &>(e).operand) + "^T)";
    case ExprKind::Call: {
      const auto &call = static_cast<const CallExpr &>(e);
      std::string text = call.callee + arguments(call.args);
      if (call.hasInputs)
        text += arguments(call.inputs);
      return text;
    }
    }
    return "?";
  }

  std::ostream &out_;
};

} // namespace

void printAst(const ast::File &file, std::ostream &out) { AstPrinter(out).print(file); }

} // namespace gradc::frontend
