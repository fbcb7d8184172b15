//===- ir/IRParser.cpp - Reads the textual IR back ------------------------===//
//
// A line-oriented recursive-descent parser.  Each statement sits on one
// line, so after an error the parser skips to the next line and goes on:
// one run reports every broken line.
//
//===----------------------------------------------------------------------===//
#include "ir/IRParser.h"
#include "ir/Graph.h"
#include "ir/Verifier.h"

#include <cctype>
#include <cmath>
#include <fmt/format.h>
#include <map>

namespace gradc::ir {
namespace {

enum class Tok { Value, Global, Ident, Number, String, Punct, Newline, End, Error };

struct Token {
  Tok kind;
  std::string_view text;
  SourceLoc loc;
};

class Lexer {
public:
  Lexer(std::string_view text, const std::string *file) : text_(text), file_(file) {}

  Token next() {
    // Skip blanks and comments ("//" or "#" to the end of the line).
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\r') {
        advance();
      } else if (c == '#' || (c == '/' && peek(1) == '/')) {
        while (pos_ < text_.size() && text_[pos_] != '\n')
          advance();
      } else {
        break;
      }
    }
    SourceLoc loc{file_, line_, col_};
    size_t start = pos_;
    if (pos_ >= text_.size())
      return {Tok::End, {}, loc};
    char c = text_[pos_];
    if (c == '\n') {
      advance();
      return {Tok::Newline, text_.substr(start, 1), loc};
    }
    if (c == '%' || c == '@') {
      advance();
      size_t nameStart = pos_;
      while (pos_ < text_.size() && isNameChar(text_[pos_]))
        advance();
      if (pos_ == nameStart)
        return {Tok::Error, text_.substr(start, 1), loc};
      return {c == '%' ? Tok::Value : Tok::Global, text_.substr(nameStart, pos_ - nameStart), loc};
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < text_.size() && isNameChar(text_[pos_]))
        advance();
      return {Tok::Ident, text_.substr(start, pos_ - start), loc};
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        ((c == '-' || c == '+') && std::isdigit(static_cast<unsigned char>(peek(1))))) {
      advance();
      while (pos_ < text_.size()) {
        char d = text_[pos_];
        bool exponentSign =
            (d == '-' || d == '+') && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E');
        if (!std::isdigit(static_cast<unsigned char>(d)) && d != '.' && d != 'e' && d != 'E' &&
            !exponentSign)
          break;
        advance();
      }
      return {Tok::Number, text_.substr(start, pos_ - start), loc};
    }
    if (c == '"') {
      advance();
      while (pos_ < text_.size() && text_[pos_] != '"' && text_[pos_] != '\n') {
        if (text_[pos_] == '\\')
          advance();
        advance();
      }
      if (pos_ >= text_.size() || text_[pos_] != '"')
        return {Tok::Error, text_.substr(start, pos_ - start), loc};
      advance();
      return {Tok::String, text_.substr(start, pos_ - start), loc};
    }
    advance();
    return {Tok::Punct, text_.substr(start, 1), loc};
  }

private:
  static bool isNameChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  }
  char peek(size_t ahead) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++pos_;
  }

  std::string_view text_;
  const std::string *file_;
  size_t pos_ = 0;
  uint32_t line_ = 1, col_ = 1;
};

/// Thrown inside one statement to abandon it; caught at the line level.
struct LineError {};

class Parser {
public:
  Parser(std::string_view text, const std::string *file, Diagnostics &diags)
      : lexer_(text, file), diags_(diags) {
    tok_ = lexer_.next();
  }

  std::unique_ptr<Graph> parse();

private:
  void bump() { tok_ = lexer_.next(); }
  bool isPunct(char c) const { return tok_.kind == Tok::Punct && tok_.text[0] == c; }
  bool isIdent(std::string_view word) const { return tok_.kind == Tok::Ident && tok_.text == word; }

  [[noreturn]] void fail(const std::string &message) {
    fail(tok_.loc, message, std::max<size_t>(1, tok_.text.size()));
  }
  [[noreturn]] void fail(SourceLoc loc, const std::string &message, size_t length = 1) {
    diags_.error(loc, message, static_cast<unsigned>(length));
    throw LineError{};
  }
  std::string describe() const {
    switch (tok_.kind) {
    case Tok::Newline:
      return "end of line";
    case Tok::End:
      return "end of file";
    case Tok::Value:
      return fmt::format("'%{}'", tok_.text);
    case Tok::Global:
      return fmt::format("'@{}'", tok_.text);
    default:
      return fmt::format("'{}'", tok_.text);
    }
  }
  void expectPunct(char c, std::string_view after) {
    if (!isPunct(c))
      fail(fmt::format("expected '{}' {}, found {}", c, after, describe()));
    bump();
  }
  std::string_view expectIdent(std::string_view what) {
    if (tok_.kind != Tok::Ident)
      fail(fmt::format("expected {}, found {}", what, describe()));
    std::string_view text = tok_.text;
    bump();
    return text;
  }
  double expectNumber(std::string_view what) {
    if (tok_.kind != Tok::Number)
      fail(fmt::format("expected {}, found {}", what, describe()));
    std::string text(tok_.text);
    char *end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size())
      fail(fmt::format("'{}' is not a number", text));
    bump();
    return value;
  }
  int64_t expectInteger(std::string_view what) {
    SourceLoc loc = tok_.loc;
    double value = expectNumber(what);
    if (value != std::floor(value) || std::fabs(value) > 9.0e15)
      fail(loc, fmt::format("expected {}, found {}", what, value));
    return static_cast<int64_t>(value);
  }
  std::string expectString(std::string_view what) {
    if (tok_.kind != Tok::String)
      fail(fmt::format("expected {}, found {}", what, describe()));
    std::string result;
    for (size_t i = 1; i + 1 < tok_.text.size(); ++i) {
      if (tok_.text[i] == '\\')
        ++i;
      result += tok_.text[i];
    }
    bump();
    return result;
  }
  void skipLine() {
    while (tok_.kind != Tok::Newline && tok_.kind != Tok::End)
      bump();
  }
  void expectEndOfLine() {
    if (tok_.kind != Tok::Newline && tok_.kind != Tok::End)
      fail(fmt::format("expected end of line, found {}", describe()));
  }

  void parseHeader();
  void parseOptimizer();
  void parseStatement();
  void parseOp(SourceLoc start, const std::string &name, std::string_view mnemonic,
               SourceLoc opLoc);
  Node *lookup(SourceLoc loc, std::string_view name);
  Type parseType();
  void parseAttrs(OpKind kind, Attrs &attrs);
  SourceLoc parseLoc();

  Lexer lexer_;
  Token tok_;
  Diagnostics &diags_;
  std::unique_ptr<Graph> graph_ = std::make_unique<Graph>();
  std::map<std::string, Node *, std::less<>> values_;
  /// grad(%v) may name a value defined later; resolved at the end.
  std::vector<std::tuple<Node *, std::string, SourceLoc>> pendingGrads_;
  bool sawReturn_ = false;
};

Node *Parser::lookup(SourceLoc loc, std::string_view name) {
  auto it = values_.find(name);
  if (it == values_.end())
    fail(loc, fmt::format("use of undefined value '%{}'", name), name.size() + 1);
  return it->second;
}

Type Parser::parseType() {
  SourceLoc loc = tok_.loc;
  std::string_view dtype = expectIdent("a type such as f32[4]");
  Type type;
  if (dtype == "f32")
    type.dtype = DType::F32;
  else if (dtype == "i32")
    type.dtype = DType::I32;
  else
    fail(loc, fmt::format("unknown element type '{}', expected f32 or i32", dtype), dtype.size());
  expectPunct('[', "after the element type");
  while (!isPunct(']')) {
    SourceLoc dimLoc = tok_.loc;
    int64_t dim = expectInteger("a dimension");
    if (dim <= 0)
      fail(dimLoc, fmt::format("dimensions must be positive, got {}", dim));
    type.shape.push_back(dim);
    if (!isPunct(']'))
      expectPunct(',', "between dimensions");
  }
  bump();
  return type;
}

void Parser::parseAttrs(OpKind kind, Attrs &attrs) {
  const OpInfo &info = opInfo(kind);
  bump(); // '{'
  while (true) {
    SourceLoc loc = tok_.loc;
    std::string_view key = expectIdent("an attribute name");
    auto needs = [&](uint32_t flag) {
      if (!(info.attrs & flag))
        fail(loc, fmt::format("'{}' has no attribute '{}'", info.mnemonic, key), key.size());
    };
    if (info.valueAttr && key == info.valueAttr) {
      expectPunct('=', "after the attribute name");
      attrs.value = expectNumber("a number");
    } else if (key == "axes") {
      needs(ATTR_AXES);
      expectPunct('=', "after 'axes'");
      expectPunct('[', "to start the axis list");
      while (!isPunct(']')) {
        attrs.axes.push_back(expectInteger("an axis"));
        if (!isPunct(']'))
          expectPunct(',', "between axes");
      }
      bump();
    } else if (key == "transpose_a" || key == "transpose_b") {
      needs(ATTR_TRANS);
      (key == "transpose_a" ? attrs.transA : attrs.transB) = true;
    } else if (key == "stream") {
      needs(ATTR_STREAM);
      expectPunct('=', "after 'stream'");
      attrs.stream = expectInteger("a stream number");
    } else if (key == "init") {
      needs(ATTR_INIT);
      expectPunct('=', "after 'init'");
      attrs.init.kind = expectIdent("an initializer name");
      if (isPunct('(')) {
        bump();
        while (!isPunct(')')) {
          attrs.init.args.push_back(expectNumber("an initializer argument"));
          if (!isPunct(')'))
            expectPunct(',', "between initializer arguments");
        }
        bump();
      }
    } else if (key == "fan_in" || key == "fan_out") {
      needs(ATTR_INIT);
      expectPunct('=', "after the attribute name");
      (key == "fan_in" ? attrs.fanIn : attrs.fanOut) = expectInteger("a fan size");
    } else if (key == "decay") {
      needs(ATTR_INIT);
      expectPunct('=', "after 'decay'");
      attrs.decay = expectNumber("a weight decay");
    } else if (key == "key") {
      needs(ATTR_KEY);
      expectPunct('=', "after 'key'");
      attrs.key = expectString("a quoted key");
    } else {
      fail(loc, fmt::format("'{}' has no attribute '{}'", info.mnemonic, key), key.size());
    }
    if (isPunct('}'))
      break;
    expectPunct(',', "between attributes");
  }
  bump();
}

SourceLoc Parser::parseLoc() {
  bump(); // 'loc'
  expectPunct('(', "after 'loc'");
  std::string file = expectString("a quoted file name");
  expectPunct(':', "after the file name");
  int64_t line = expectInteger("a line number");
  expectPunct(':', "after the line number");
  int64_t col = expectInteger("a column number");
  expectPunct(')', "to close loc(...)");
  return SourceLoc{internFileName(file), static_cast<uint32_t>(line), static_cast<uint32_t>(col)};
}

void Parser::parseOptimizer() {
  OptimizerConfig &config = graph_->optimizer;
  SourceLoc kindLoc = tok_.loc;
  config.kind = expectIdent("an optimizer name");
  if (config.kind != "sgd" && config.kind != "adam" && config.kind != "adamw")
    fail(kindLoc,
         fmt::format("unknown optimizer '{}', expected one of {}", config.kind, kOptimizerKinds),
         config.kind.size());
  if (!isPunct('('))
    return;
  bump();
  while (!isPunct(')')) {
    SourceLoc loc = tok_.loc;
    std::string_view key = expectIdent("an optimizer setting");
    bool sgd = config.kind == "sgd";
    if (key == "nesterov" && sgd) {
      config.nesterov = true;
    } else {
      expectPunct('=', "after the optimizer setting");
      double value = expectNumber("a number");
      if (key == "momentum" && sgd)
        config.momentum = value;
      else if (key == "beta1" && !sgd)
        config.beta1 = value;
      else if (key == "beta2" && !sgd)
        config.beta2 = value;
      else if (key == "eps" && !sgd)
        config.eps = value;
      else if (key == "clip_grad_norm")
        config.clipGradNorm = value;
      else
        fail(loc, fmt::format("'{}' has no setting '{}'", config.kind, key), key.size());
    }
    if (!isPunct(')'))
      expectPunct(',', "between optimizer settings");
  }
  bump();
}

void Parser::parseHeader() {
  while (tok_.kind == Tok::Newline)
    bump();
  if (!isIdent("graph"))
    fail(fmt::format("expected 'graph' at the start of an IR file, found {}", describe()));
  bump();
  if (tok_.kind != Tok::Global)
    fail(fmt::format("expected the graph name '@name' after 'graph', found {}", describe()));
  graph_->name = tok_.text;
  bump();
  expectPunct('(', "before the graph kind");
  SourceLoc kindLoc = tok_.loc;
  std::string_view kind = expectIdent("the graph kind");
  if (kind == "forward")
    graph_->kind = GraphKind::Forward;
  else if (kind == "train")
    graph_->kind = GraphKind::Train;
  else if (kind == "inference")
    graph_->kind = GraphKind::Inference;
  else
    fail(kindLoc,
         fmt::format("unknown graph kind '{}', expected forward, train or inference", kind),
         kind.size());
  expectPunct(')', "after the graph kind");
  while (!isPunct('{')) {
    SourceLoc loc = tok_.loc;
    std::string_view key = expectIdent("a graph attribute or '{'");
    expectPunct('=', "after the graph attribute name");
    if (key == "weight_decay")
      graph_->weightDecay = expectNumber("a weight decay");
    else if (key == "batch")
      graph_->batch = expectInteger("a batch size");
    else if (key == "optimizer")
      parseOptimizer();
    else
      fail(loc,
           fmt::format("unknown graph attribute '{}', expected weight_decay, batch or optimizer",
                       key),
           key.size());
  }
  bump();
  expectEndOfLine();
}

void Parser::parseStatement() {
  // Section labels: "forward:", "backward:", "update:".
  if (tok_.kind == Tok::Ident &&
      (tok_.text == "forward" || tok_.text == "backward" || tok_.text == "update")) {
    Token word = tok_;
    bump();
    if (isPunct(':')) {
      bump();
      graph_->setPhase(word.text == "forward"    ? Phase::Forward
                       : word.text == "backward" ? Phase::Backward
                                                 : Phase::Update);
      expectEndOfLine();
      return;
    }
    if (word.text != "update")
      fail(word.loc, fmt::format("expected ':' after the section label '{}'", word.text));
    // Not a label: "update %W, %new" is the op without a result.
    parseOp(word.loc, {}, word.text, word.loc);
    return;
  }
  if (isIdent("return")) {
    bump();
    if (sawReturn_)
      fail("the graph already has a 'return'");
    sawReturn_ = true;
    while (tok_.kind != Tok::Newline && tok_.kind != Tok::End) {
      std::string_view key = expectIdent("a result name");
      expectPunct('=', "after the result name");
      if (tok_.kind != Tok::Value)
        fail(fmt::format("expected a value '%name', found {}", describe()));
      Node *value = lookup(tok_.loc, tok_.text);
      bump();
      if (graph_->output(key))
        fail(fmt::format("result '{}' is returned twice", key));
      graph_->outputs.push_back({std::string(key), value});
      if (tok_.kind != Tok::Newline && tok_.kind != Tok::End)
        expectPunct(',', "between results");
    }
    return;
  }
  if (sawReturn_)
    fail("expected '}' after 'return'");

  SourceLoc start = tok_.loc;
  std::string name;
  if (tok_.kind == Tok::Value) {
    name = tok_.text;
    bump();
    expectPunct('=', fmt::format("after '%{}'", name));
  }
  SourceLoc opLoc = tok_.loc;
  std::string_view mnemonic = expectIdent("an op name");
  parseOp(start, name, mnemonic, opLoc);
}

void Parser::parseOp(SourceLoc start, const std::string &name, std::string_view mnemonic,
                     SourceLoc opLoc) {
  std::optional<OpKind> kind = opKindFromMnemonic(mnemonic);
  if (!kind)
    fail(opLoc, fmt::format("unknown op '{}'", mnemonic), mnemonic.size());
  const OpInfo &info = opInfo(*kind);
  if (info.shapeRule == SHAPE_NONE && !name.empty())
    fail(start, fmt::format("'{}' has no result to name", mnemonic), name.size() + 1);
  if (info.shapeRule != SHAPE_NONE && name.empty())
    fail(opLoc, fmt::format("expected '%name = ' before '{}'", mnemonic), mnemonic.size());

  std::vector<Node *> operands;
  while (tok_.kind == Tok::Value) {
    operands.push_back(lookup(tok_.loc, tok_.text));
    bump();
    if (!isPunct(','))
      break;
    bump();
    if (tok_.kind != Tok::Value)
      fail(fmt::format("expected an operand '%name' after ',', found {}", describe()));
  }
  if (static_cast<int>(operands.size()) != info.arity)
    fail(opLoc,
         fmt::format("'{}' takes {} operand{}, got {}", mnemonic, info.arity,
                     info.arity == 1 ? "" : "s", operands.size()),
         mnemonic.size());
  Attrs attrs;
  if (isPunct('{'))
    parseAttrs(*kind, attrs);
  Type type;
  if (info.shapeRule != SHAPE_NONE) {
    expectPunct(':', "before the result type");
    type = parseType();
  }
  std::string gradOf;
  SourceLoc gradLoc;
  if (isIdent("grad")) {
    bump();
    expectPunct('(', "after 'grad'");
    if (tok_.kind != Tok::Value)
      fail(fmt::format("expected the differentiated value '%name', found {}", describe()));
    gradOf = tok_.text;
    gradLoc = tok_.loc;
    bump();
    expectPunct(')', "to close grad(...)");
  }
  SourceLoc loc;
  if (isIdent("loc"))
    loc = parseLoc();
  expectEndOfLine();

  if (!name.empty() && values_.count(name))
    fail(start, fmt::format("'%{}' is defined twice", name), name.size() + 1);
  // Shape inference here gives the error at this line; the verifier checks
  // the whole graph again afterwards.
  std::vector<const Type *> types;
  for (Node *operand : operands)
    types.push_back(&operand->type);
  TypeResult inferred = inferType(*kind, types, attrs, &type);
  if (!inferred.type)
    fail(opLoc, inferred.error, mnemonic.size());
  if (info.shapeRule != SHAPE_NONE && *inferred.type != type)
    fail(opLoc,
         fmt::format("result type {} does not match {} inferred for '{}'", type.str(),
                     inferred.type->str(), mnemonic),
         mnemonic.size());
  Node *node = graph_->create(*kind, std::move(operands), type, std::move(attrs), name, loc);
  if (!name.empty())
    values_[name] = node;
  if (!gradOf.empty())
    pendingGrads_.emplace_back(node, gradOf, gradLoc);
}

std::unique_ptr<Graph> Parser::parse() {
  unsigned before = diags_.errorCount();
  try {
    parseHeader();
  } catch (LineError) {
    return nullptr;
  }
  bool closed = false;
  while (tok_.kind != Tok::End) {
    if (tok_.kind == Tok::Newline) {
      bump();
      continue;
    }
    if (isPunct('}')) {
      bump();
      closed = true;
      break;
    }
    try {
      parseStatement();
    } catch (LineError) {
      skipLine();
    }
  }
  if (!closed) {
    diags_.error(tok_.loc, "expected '}' to close the graph before the end of the file");
    return nullptr;
  }
  while (tok_.kind == Tok::Newline)
    bump();
  if (tok_.kind != Tok::End)
    diags_.error(tok_.loc,
                 fmt::format("expected the end of the file after the graph, found {}", describe()));
  for (auto &[node, name, loc] : pendingGrads_) {
    auto it = values_.find(name);
    if (it == values_.end())
      diags_.error(loc, fmt::format("use of undefined value '%{}'", name), name.size() + 1);
    else
      node->gradOf = it->second;
  }
  if (diags_.errorCount() != before)
    return nullptr;
  if (!verify(*graph_, diags_))
    return nullptr;
  return std::move(graph_);
}

} // namespace

std::unique_ptr<Graph> parseGraph(std::string_view text, const std::string *fileName,
                                  Diagnostics &diags) {
  return Parser(text, fileName, diags).parse();
}

} // namespace gradc::ir
