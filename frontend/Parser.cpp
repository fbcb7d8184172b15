//===- frontend/Parser.cpp - Model files to the syntax tree ---------------===//
//
// A recursive-descent parser over the grammar below (`{x}` repeats, `[x]` is
// optional).  Statements end at a newline, a ';' or the '}' that closes
// their body; inside an argument, parameter or dimension list a newline may
// follow '(' / '[' / ',' or precede the closing bracket, so long calls can
// be split over lines; a trailing ',' is allowed.
//
//   file       := { definition }
//   definition := model | block
//   model      := 'model' NAME '{' body '}'
//   block      := 'block' NAME '(' [config {',' config}] ')'
//                             '(' [NAME {',' NAME}] ')' '{' body '}'
//   config     := NAME ['=' expr]
//   body       := { statement (NEWLINE | ';') }
//   statement  := ('input' | 'target' | 'label') NAME ':' type
//               | 'param' NAME ':' type ['=' init]
//               | NAME '=' expr
//               | 'loss' expr | 'output' expr | 'out' expr
//               | 'weight_decay' number
//               | 'repeat' expr '{' body '}'
//   type       := ('f32' | 'i32') '[' [dim {',' dim}] ']'
//   dim        := INTEGER | NAME
//   init       := NAME ['(' [number {',' number}] ')']
//   number     := ['-'] NUMBER
//   expr       := term {('+' | '-') term}
//   term       := unary {('*' | '/' | '@') unary}
//   unary      := '-' unary | postfix
//   postfix    := primary {'^' 'T' | '^' number}
//   primary    := NUMBER | NAME | call | '(' expr ')'
//   call       := NAME '(' [arg {',' arg}] ')' ['(' [arg {',' arg}] ')']
//   arg        := [NAME '='] expr
//
// Which statements a body may hold (no `loss` in a block, no `out` in a
// model, only assignments and nested loops in a `repeat`) is checked here,
// where the context is known.  Errors are reported as found; the parser
// then skips to the end of the statement (or the closing '}') and goes on,
// so every syntax error of the file is reported.
//
// Adding a section such as `train { ... }` means one case in
// parseStatement and one node in AST.h.
//
//===----------------------------------------------------------------------===//
#include "frontend/Frontend.h"
#include "frontend/Lexer.h"

#include <deque>
#include <fmt/format.h>
#include <unordered_map>

namespace gradc::frontend {

namespace {

using namespace ast;

/// Deeper nesting than this is reported instead of recursed into, so that
/// garbage input cannot overflow the stack.
constexpr int kMaxNesting = 256;

/// Where a body is: which statements it may hold and how errors name it.
struct BodyContext {
  DefinitionKind definition; ///< model or block the body belongs to
  std::string what;          ///< "model 'm'", "block 'dense'", "'repeat'"
  std::string blockName;     ///< the enclosing block's name, in a block
  bool inRepeat = false;
  SourceLoc openBrace;
};

class Parser {
public:
  Parser(std::string_view text, const std::string *fileName, Diagnostics &diags)
      : lexer_(text, fileName, diags), fileName_(fileName), diags_(diags) {}

  std::unique_ptr<File> parseFile();

private:
  // --- Tokens. ------------------------------------------------------------
  const Token &peek(size_t ahead = 0) {
    while (lookahead_.size() <= ahead)
      lookahead_.push_back(lexer_.next());
    return lookahead_[ahead];
  }
  bool at(TokenKind kind) { return peek().is(kind); }
  Token consume() {
    peek();
    previous_ = lookahead_.front();
    lookahead_.pop_front();
    return previous_;
  }
  bool accept(TokenKind kind) {
    if (!at(kind))
      return false;
    consume();
    return true;
  }
  void skipNewlines() {
    while (at(TokenKind::Newline))
      consume();
  }
  /// Consumes the newlines in front of a `kind` token, when one follows them:
  /// a closing bracket may sit on a line of its own.
  bool acceptAfterNewlines(TokenKind kind) {
    size_t ahead = 0;
    while (peek(ahead).is(TokenKind::Newline))
      ++ahead;
    if (!peek(ahead).is(kind))
      return false;
    while (ahead-- > 0)
      consume();
    consume();
    return true;
  }

  // --- Errors. ------------------------------------------------------------
  /// Reports at `token`, unless the lexer already reported it; returns
  /// whether it did, so that a note only follows a printed error.
  bool error(const Token &token, const std::string &message) {
    failed_ = true;
    if (token.is(TokenKind::Invalid))
      return false;
    diags_.error(token.loc, message, token.is(TokenKind::Newline) ? 1 : token.length());
    return true;
  }
  void errorAt(SourceLoc loc, const std::string &message, unsigned length = 1) {
    failed_ = true;
    diags_.error(loc, message, length);
  }
  /// "expected an expression after '='" at the current token.
  void expectedAfterPrevious(std::string_view what) {
    error(peek(), fmt::format("expected {} after {}", what, previous_.quoted()));
  }
  /// Skips the rest of a statement: up to the newline or ';' that ends it,
  /// or the '}' that closes its body (not consumed).  Braced groups inside
  /// (a broken `repeat`) are skipped whole.
  void skipStatement();
  /// Skips to the next `model` or `block` at the top level.
  void skipToNextDefinition();

  // --- Grammar. -----------------------------------------------------------
  std::unique_ptr<Model> parseModel();
  std::unique_ptr<Block> parseBlock();
  bool parseBlockHeader(Block &block);
  /// Parses statements up to the closing '}' (the '{' is consumed).  Returns
  /// false when the body is not closed before the end of the file.
  bool parseBody(Body &body, const BodyContext &context);
  StmtPtr parseStatement(const BodyContext &context);
  /// Reports a statement that its body may not hold; it is parsed anyway.
  void checkAllowed(const Token &keyword, StmtKind kind, const BodyContext &context);
  StmtPtr parseDeclaration(StmtKind kind);
  bool parseType(TypeExpr &type, const std::string &owner);
  bool parseInit(InitExpr &init);
  bool parseSignedNumber(Number &number, std::string_view what);
  StmtPtr parseRepeat(const BodyContext &context);
  StmtPtr parseTrain();
  void checkBlockBody(const Block &block);

  ExprPtr parseExpr();
  ExprPtr parseTerm();
  ExprPtr parseUnary();
  ExprPtr parsePostfix();
  ExprPtr parsePrimary();
  ExprPtr parseCall(const Token &callee);
  bool parseArguments(std::vector<Argument> &args, const std::string &closingWhat);

  Lexer lexer_;
  const std::string *fileName_;
  Diagnostics &diags_;
  std::deque<Token> lookahead_;
  Token previous_;
  bool failed_ = false;
  /// Set when a body ran into the end of the file: the enclosing bodies
  /// stop without repeating the error.
  bool unwinding_ = false;
  int nesting_ = 0;
};

/// Counts one level of nesting for the lifetime of a parse function.
class NestingGuard {
public:
  explicit NestingGuard(int &nesting) : nesting_(nesting) { ++nesting_; }
  ~NestingGuard() { --nesting_; }
  bool tooDeep() const { return nesting_ > kMaxNesting; }

private:
  int &nesting_;
};

Number numberFromToken(const Token &token) {
  return Number{token.number, token.isInteger, token.loc, token.length()};
}

void Parser::skipStatement() {
  int depth = 0;
  while (!at(TokenKind::Eof)) {
    TokenKind kind = peek().kind;
    if (depth == 0 && (kind == TokenKind::Newline || kind == TokenKind::Semicolon)) {
      consume();
      return;
    }
    if (depth == 0 && kind == TokenKind::RBrace)
      return;
    if (kind == TokenKind::LBrace)
      ++depth;
    else if (kind == TokenKind::RBrace)
      --depth;
    consume();
  }
}

void Parser::skipToNextDefinition() {
  int depth = 0;
  while (!at(TokenKind::Eof)) {
    TokenKind kind = peek().kind;
    if (depth == 0 && (kind == TokenKind::KwModel || kind == TokenKind::KwBlock))
      return;
    if (kind == TokenKind::LBrace)
      ++depth;
    else if (kind == TokenKind::RBrace && depth > 0)
      --depth;
    consume();
  }
}

std::unique_ptr<File> Parser::parseFile() {
  auto file = std::make_unique<File>();
  file->fileName = fileName_;
  for (;;) {
    while (at(TokenKind::Newline) || at(TokenKind::Semicolon))
      consume();
    unwinding_ = false;
    if (at(TokenKind::Eof))
      break;
    if (at(TokenKind::KwModel)) {
      if (auto model = parseModel())
        file->definitions.push_back(std::move(model));
    } else if (at(TokenKind::KwBlock)) {
      if (auto block = parseBlock())
        file->definitions.push_back(std::move(block));
    } else {
      error(peek(), fmt::format("expected 'model' or 'block' at the top level of the file, got {}",
                                peek().quoted()));
      consume();
      skipToNextDefinition();
    }
  }
  if (failed_)
    return nullptr;
  return file;
}

std::unique_ptr<Model> Parser::parseModel() {
  auto model = std::make_unique<Model>();
  model->loc = consume().loc;
  if (!at(TokenKind::Identifier)) {
    expectedAfterPrevious("a model name");
    skipToNextDefinition();
    return nullptr;
  }
  Token name = consume();
  model->name = std::string(name.text);
  model->nameLoc = name.loc;
  if (!at(TokenKind::LBrace)) {
    error(peek(), fmt::format("expected '{{' after the model name '{}'", model->name));
    skipToNextDefinition();
    return nullptr;
  }
  model->openBrace = consume().loc;
  BodyContext context{DefinitionKind::Model, fmt::format("model '{}'", model->name), "", false,
                      model->openBrace};
  parseBody(model->body, context);
  return model;
}

std::unique_ptr<Block> Parser::parseBlock() {
  auto block = std::make_unique<Block>();
  block->loc = consume().loc;
  if (!at(TokenKind::Identifier)) {
    expectedAfterPrevious("a block name");
    skipToNextDefinition();
    return nullptr;
  }
  Token name = consume();
  block->name = std::string(name.text);
  block->nameLoc = name.loc;
  if (!parseBlockHeader(*block)) {
    skipToNextDefinition();
    return nullptr;
  }
  if (!at(TokenKind::LBrace)) {
    error(peek(), fmt::format("expected '{{' after the inputs of block '{}'", block->name));
    skipToNextDefinition();
    return nullptr;
  }
  block->openBrace = consume().loc;
  BodyContext context{DefinitionKind::Block, fmt::format("block '{}'", block->name), block->name,
                      false, block->openBrace};
  unsigned errorsBefore = diags_.errorCount();
  bool closed = parseBody(block->body, context);
  // The structure of a body that already had errors is not worth a second one.
  if (closed && diags_.errorCount() == errorsBefore)
    checkBlockBody(*block);
  return block;
}

bool Parser::parseBlockHeader(Block &block) {
  // Config parameters and inputs share one namespace in the block's body.
  std::unordered_map<std::string, SourceLoc> seen;
  auto declare = [&](const Token &name) {
    auto [it, fresh] = seen.emplace(std::string(name.text), name.loc);
    if (!fresh) {
      if (error(name, fmt::format("redefinition of '{}'", name.text)))
        diags_.note(it->second, fmt::format("'{}' was declared here", name.text), name.length());
    }
  };

  if (!at(TokenKind::LParen)) {
    error(peek(), fmt::format("expected '(' and the config parameters after the block name '{}'",
                              block.name));
    return false;
  }
  Token open = consume();
  skipNewlines();
  if (!acceptAfterNewlines(TokenKind::RParen)) {
    for (;;) {
      if (!at(TokenKind::Identifier)) {
        expectedAfterPrevious(fmt::format("a config parameter name of block '{}'", block.name));
        return false;
      }
      Token name = consume();
      declare(name);
      ConfigParam param{std::string(name.text), name.loc, nullptr};
      if (accept(TokenKind::Equal)) {
        param.defaultValue = parseExpr();
        if (!param.defaultValue)
          return false;
      }
      block.config.push_back(std::move(param));
      if (accept(TokenKind::Comma)) {
        skipNewlines();
        if (accept(TokenKind::RParen)) // a trailing comma
          break;
        continue;
      }
      if (acceptAfterNewlines(TokenKind::RParen))
        break;
      if (error(peek(),
                fmt::format("expected ')' after the config parameters of block '{}'", block.name)))
        diags_.note(open.loc, "to match this '('");
      return false;
    }
  }

  if (!at(TokenKind::LParen)) {
    error(peek(), fmt::format("expected '(' and the inputs of block '{}' after its config "
                              "parameters, as in block {}(n)(x)",
                              block.name, block.name));
    return false;
  }
  open = consume();
  skipNewlines();
  if (acceptAfterNewlines(TokenKind::RParen))
    return true;
  for (;;) {
    if (!at(TokenKind::Identifier)) {
      expectedAfterPrevious(fmt::format("an input name of block '{}'", block.name));
      return false;
    }
    Token name = consume();
    declare(name);
    block.inputs.push_back(BlockInput{std::string(name.text), name.loc});
    if (accept(TokenKind::Comma)) {
      skipNewlines();
      if (accept(TokenKind::RParen)) // a trailing comma
        return true;
      continue;
    }
    if (acceptAfterNewlines(TokenKind::RParen))
      return true;
    if (error(peek(), fmt::format("expected ')' after the inputs of block '{}'", block.name)))
      diags_.note(open.loc, "to match this '('");
    return false;
  }
}

bool Parser::parseBody(Body &body, const BodyContext &context) {
  NestingGuard guard(nesting_);
  if (guard.tooDeep()) {
    error(peek(), "the statements are nested too deeply");
    unwinding_ = true;
    return false;
  }
  for (;;) {
    while (at(TokenKind::Newline) || at(TokenKind::Semicolon))
      consume();
    if (unwinding_)
      return false;
    if (accept(TokenKind::RBrace))
      return true;
    // A new definition means this body's '}' is missing.
    if (at(TokenKind::Eof) || at(TokenKind::KwModel) || at(TokenKind::KwBlock)) {
      if (error(peek(), fmt::format("expected '}}' to close {}", context.what)))
        diags_.note(context.openBrace, "to match this '{'");
      unwinding_ = true;
      return false;
    }
    StmtPtr stmt = parseStatement(context);
    if (!stmt) {
      skipStatement();
      continue;
    }
    body.push_back(std::move(stmt));
    if (unwinding_)
      return false;
    if (accept(TokenKind::Newline) || accept(TokenKind::Semicolon) || at(TokenKind::RBrace) ||
        at(TokenKind::Eof))
      continue;
    error(peek(),
          fmt::format("expected a new line or ';' after the statement, got {}", peek().quoted()));
    skipStatement();
  }
}

void Parser::checkAllowed(const Token &keyword, StmtKind kind, const BodyContext &context) {
  std::string word(keyword.text);
  std::string message;
  if (context.inRepeat && kind != StmtKind::Assign && kind != StmtKind::Repeat) {
    message = kind == StmtKind::Param
                  ? "'param' is not allowed inside 'repeat': every round would declare the same "
                    "parameter; declare it in a block and instantiate the block in the loop"
                  : fmt::format("'{}' is not allowed inside 'repeat'", word);
  } else if (context.definition == DefinitionKind::Block) {
    if (kind == StmtKind::Input || kind == StmtKind::Target)
      message = fmt::format("'{}' is not allowed in a block: the inputs of block '{}' are listed "
                            "after its config parameters",
                            word, context.blockName);
    else if (kind == StmtKind::Loss || kind == StmtKind::Output || kind == StmtKind::WeightDecay)
      message = fmt::format("'{}' is only allowed in a model, not in block '{}'", word,
                            context.blockName);
  } else if (kind == StmtKind::Out) {
    message = "'out' is only allowed in a block; use 'output' to name the model's prediction";
  }
  if (message.empty() && kind == StmtKind::Train && context.definition == DefinitionKind::Block)
    message =
        fmt::format("'train' is only allowed in a model, not in block '{}'", context.blockName);
  if (!message.empty())
    error(keyword, message);
}

StmtPtr Parser::parseStatement(const BodyContext &context) {
  const Token &first = peek();
  if (first.isKeyword() && peek(1).is(TokenKind::Equal)) {
    error(first, fmt::format("'{}' is a reserved word and cannot name a value", first.text));
    return nullptr;
  }
  StmtKind kind;
  switch (first.kind) {
  case TokenKind::KwInput:
    kind = StmtKind::Input;
    break;
  case TokenKind::KwTarget:
    kind = StmtKind::Target;
    break;
  case TokenKind::KwParam:
    kind = StmtKind::Param;
    break;
  case TokenKind::KwLoss:
    kind = StmtKind::Loss;
    break;
  case TokenKind::KwOutput:
    kind = StmtKind::Output;
    break;
  case TokenKind::KwOut:
    kind = StmtKind::Out;
    break;
  case TokenKind::KwWeightDecay:
    kind = StmtKind::WeightDecay;
    break;
  case TokenKind::KwRepeat:
    kind = StmtKind::Repeat;
    break;
  case TokenKind::KwTrain:
    kind = StmtKind::Train;
    break;
  case TokenKind::Identifier: {
    if (!peek(1).is(TokenKind::Equal)) {
      error(peek(1), fmt::format("expected '=' after '{}' to assign it a value", first.text));
      return nullptr;
    }
    Token name = consume();
    consume(); // '='
    ExprPtr value = parseExpr();
    if (!value)
      return nullptr;
    return std::make_unique<AssignStmt>(std::string(name.text), name.loc, std::move(value));
  }
  default:
    error(first, fmt::format("expected a statement ({}), got {}",
                             context.definition == DefinitionKind::Model
                                 ? "input, target, param, NAME = ..., loss, output, "
                                   "weight_decay or repeat"
                                 : "param, NAME = ..., out or repeat",
                             first.quoted()));
    return nullptr;
  }

  Token keyword = peek();
  checkAllowed(keyword, kind, context);
  switch (kind) {
  case StmtKind::Input:
  case StmtKind::Target:
  case StmtKind::Param:
    return parseDeclaration(kind);
  case StmtKind::Loss:
  case StmtKind::Output:
  case StmtKind::Out: {
    consume();
    ExprPtr value = parseExpr();
    if (!value)
      return nullptr;
    return std::make_unique<ExprStmt>(kind, keyword.loc, std::move(value));
  }
  case StmtKind::WeightDecay: {
    consume();
    Number lambda;
    if (!parseSignedNumber(lambda, "a number"))
      return nullptr;
    return std::make_unique<WeightDecayStmt>(keyword.loc, lambda);
  }
  case StmtKind::Repeat:
    return parseRepeat(context);
  case StmtKind::Train:
    return parseTrain();
  case StmtKind::Assign:
    break;
  }
  return nullptr;
}

StmtPtr Parser::parseDeclaration(StmtKind kind) {
  Token keyword = consume();
  auto decl = std::make_unique<DeclStmt>(kind, keyword.loc);
  decl->label = keyword.text == "label";
  if (!at(TokenKind::Identifier)) {
    expectedAfterPrevious("a name");
    return nullptr;
  }
  Token name = consume();
  decl->name = std::string(name.text);
  decl->nameLoc = name.loc;
  if (!accept(TokenKind::Colon)) {
    error(peek(), fmt::format("expected ':' and a type after '{}'", decl->name));
    return nullptr;
  }
  if (!parseType(decl->type, decl->name))
    return nullptr;
  if (kind == StmtKind::Param && accept(TokenKind::Equal)) {
    decl->hasInit = true;
    if (!parseInit(decl->init))
      return nullptr;
  }
  return decl;
}

bool Parser::parseType(TypeExpr &type, const std::string &owner) {
  if (!at(TokenKind::Identifier)) {
    expectedAfterPrevious("a type such as f32[4]");
    return false;
  }
  Token element = consume();
  type.loc = element.loc;
  if (element.text == "f32") {
    type.elementType = ElementType::F32;
  } else if (element.text == "i32") {
    type.elementType = ElementType::I32;
  } else {
    error(element, fmt::format("unknown element type '{}'; expected f32 or i32", element.text));
    return false;
  }
  if (!at(TokenKind::LBracket)) {
    error(peek(), fmt::format("expected '[' and the dimensions after '{}', as in {}[4]",
                              element.text, element.text));
    return false;
  }
  Token open = consume();
  skipNewlines();
  if (acceptAfterNewlines(TokenKind::RBracket))
    return true;
  for (;;) {
    const Token &token = peek();
    if (token.is(TokenKind::Number) && token.isInteger) {
      type.dims.push_back(Dim{static_cast<int64_t>(token.number), "", token.loc, token.length()});
    } else if (token.is(TokenKind::Identifier)) {
      type.dims.push_back(Dim{0, std::string(token.text), token.loc, token.length()});
    } else if (token.is(TokenKind::Number)) {
      error(token, fmt::format("a dimension must be an integer, got {}", token.text));
      return false;
    } else {
      error(token,
            fmt::format("expected a dimension (an integer or a name) in the type of '{}'", owner));
      return false;
    }
    consume();
    if (accept(TokenKind::Comma)) {
      skipNewlines();
      if (accept(TokenKind::RBracket)) // a trailing comma
        return true;
      continue;
    }
    if (acceptAfterNewlines(TokenKind::RBracket))
      return true;
    if (error(peek(), fmt::format("expected ']' after the dimensions of '{}'", owner)))
      diags_.note(open.loc, "to match this '['");
    return false;
  }
}

bool Parser::parseInit(InitExpr &init) {
  if (!at(TokenKind::Identifier)) {
    expectedAfterPrevious("an initializer such as xavier_normal or normal(0.01)");
    return false;
  }
  Token name = consume();
  init.name = std::string(name.text);
  init.loc = name.loc;
  if (!at(TokenKind::LParen))
    return true;
  Token open = consume();
  skipNewlines();
  if (acceptAfterNewlines(TokenKind::RParen))
    return true;
  for (;;) {
    Number arg;
    if (!parseSignedNumber(arg, fmt::format("a number as an argument of '{}'", init.name)))
      return false;
    init.args.push_back(arg);
    if (accept(TokenKind::Comma)) {
      skipNewlines();
      if (accept(TokenKind::RParen)) // a trailing comma
        return true;
      continue;
    }
    if (acceptAfterNewlines(TokenKind::RParen))
      return true;
    if (error(peek(), fmt::format("expected ')' after the arguments of '{}'", init.name)))
      diags_.note(open.loc, "to match this '('");
    return false;
  }
}

bool Parser::parseSignedNumber(Number &number, std::string_view what) {
  SourceLoc minus;
  bool negative = false;
  if (at(TokenKind::Minus)) {
    minus = consume().loc;
    negative = true;
  }
  if (!at(TokenKind::Number)) {
    expectedAfterPrevious(what);
    return false;
  }
  number = numberFromToken(consume());
  if (negative) {
    number.value = -number.value;
    // The caret covers the sign too.
    number.length += number.loc.col - minus.col;
    number.loc = minus;
  }
  return true;
}

StmtPtr Parser::parseRepeat(const BodyContext &context) {
  Token keyword = consume();
  if (at(TokenKind::LBrace)) {
    expectedAfterPrevious("a count");
    return nullptr;
  }
  ExprPtr count = parseExpr();
  if (!count)
    return nullptr;
  if (!at(TokenKind::LBrace)) {
    error(peek(), "expected '{' after the repeat count");
    return nullptr;
  }
  auto repeat = std::make_unique<RepeatStmt>(keyword.loc, std::move(count));
  BodyContext inner = context;
  inner.what = "'repeat'";
  inner.inRepeat = true;
  inner.openBrace = consume().loc;
  parseBody(repeat->body, inner);
  return repeat;
}

/// `train { name = value ... }`: only settings, one per line or ';'.
StmtPtr Parser::parseTrain() {
  Token keyword = consume();
  if (!at(TokenKind::LBrace)) {
    error(peek(), fmt::format("expected '{{' after 'train', got {}", peek().quoted()));
    return nullptr;
  }
  Token open = consume();
  auto train = std::make_unique<TrainStmt>(keyword.loc);
  for (;;) {
    while (at(TokenKind::Newline) || at(TokenKind::Semicolon))
      consume();
    if (accept(TokenKind::RBrace))
      return train;
    if (at(TokenKind::Eof) || at(TokenKind::KwModel) || at(TokenKind::KwBlock)) {
      if (error(peek(), "expected '}' to close the 'train' section"))
        diags_.note(open.loc, "to match this '{'");
      unwinding_ = true;
      return train;
    }
    if (!at(TokenKind::Identifier) || !peek(1).is(TokenKind::Equal)) {
      error(peek(), fmt::format("expected a setting 'name = value' in the 'train' section, got {}",
                                peek().quoted()));
      skipStatement();
      continue;
    }
    Token name = consume();
    consume(); // '='
    ExprPtr value = parseExpr();
    if (!value) {
      skipStatement();
      continue;
    }
    train->settings.push_back(
        std::make_unique<AssignStmt>(std::string(name.text), name.loc, std::move(value)));
    if (accept(TokenKind::Newline) || accept(TokenKind::Semicolon) || at(TokenKind::RBrace))
      continue;
    error(peek(),
          fmt::format("expected a new line or ';' after the setting, got {}", peek().quoted()));
    skipStatement();
  }
}

void Parser::checkBlockBody(const Block &block) {
  const Stmt *out = nullptr;
  for (const StmtPtr &stmt : block.body) {
    if (out) {
      errorAt(out->loc, fmt::format("'out' must be the last statement of block '{}'", block.name),
              3);
      return;
    }
    if (stmt->kind == StmtKind::Out)
      out = stmt.get();
  }
  if (!out)
    errorAt(block.nameLoc,
            fmt::format("block '{}' has no 'out' statement; end it with 'out EXPR'", block.name),
            static_cast<unsigned>(block.name.size()));
}

// --- Expressions. -----------------------------------------------------------

ExprPtr Parser::parseExpr() {
  ExprPtr lhs = parseTerm();
  while (lhs && (at(TokenKind::Plus) || at(TokenKind::Minus))) {
    Token op = consume();
    ExprPtr rhs = parseTerm();
    if (!rhs)
      return nullptr;
    lhs = std::make_unique<BinaryExpr>(op.is(TokenKind::Plus) ? BinaryOp::Add : BinaryOp::Sub,
                                       std::move(lhs), std::move(rhs), op.loc);
  }
  return lhs;
}

ExprPtr Parser::parseTerm() {
  ExprPtr lhs = parseUnary();
  while (lhs && (at(TokenKind::Star) || at(TokenKind::Slash) || at(TokenKind::At))) {
    Token op = consume();
    ExprPtr rhs = parseUnary();
    if (!rhs)
      return nullptr;
    BinaryOp kind = op.is(TokenKind::Star)    ? BinaryOp::Mul
                    : op.is(TokenKind::Slash) ? BinaryOp::Div
                                              : BinaryOp::MatMul;
    lhs = std::make_unique<BinaryExpr>(kind, std::move(lhs), std::move(rhs), op.loc);
  }
  return lhs;
}

ExprPtr Parser::parseUnary() {
  NestingGuard guard(nesting_);
  if (guard.tooDeep()) {
    error(peek(), "the expression is nested too deeply");
    return nullptr;
  }
  if (at(TokenKind::Minus)) {
    Token minus = consume();
    ExprPtr operand = parseUnary();
    if (!operand)
      return nullptr;
    return std::make_unique<NegateExpr>(std::move(operand), minus.loc);
  }
  return parsePostfix();
}

ExprPtr Parser::parsePostfix() {
  ExprPtr base = parsePrimary();
  while (base && at(TokenKind::Caret)) {
    Token caret = consume();
    if (at(TokenKind::Identifier) && peek().text == "T") {
      consume();
      base = std::make_unique<TransposeExpr>(std::move(base), caret.loc);
      continue;
    }
    if (!at(TokenKind::Number) && !(at(TokenKind::Minus) && peek(1).is(TokenKind::Number))) {
      error(peek(), "expected 'T' (transpose) or a number (the exponent) after '^'");
      return nullptr;
    }
    Number exponent;
    if (!parseSignedNumber(exponent, "a number"))
      return nullptr;
    base = std::make_unique<PowerExpr>(std::move(base), exponent, caret.loc);
  }
  return base;
}

ExprPtr Parser::parsePrimary() {
  const Token &token = peek();
  switch (token.kind) {
  case TokenKind::Number:
    return std::make_unique<NumberExpr>(numberFromToken(consume()));
  case TokenKind::Identifier: {
    Token name = consume();
    if (at(TokenKind::LParen))
      return parseCall(name);
    return std::make_unique<NameExpr>(std::string(name.text), name.loc);
  }
  case TokenKind::LParen: {
    Token open = consume();
    skipNewlines();
    ExprPtr inner = parseExpr();
    if (!inner)
      return nullptr;
    if (acceptAfterNewlines(TokenKind::RParen))
      return inner;
    if (error(peek(), fmt::format("expected ')' after the expression, got {}", peek().quoted())))
      diags_.note(open.loc, "to match this '('");
    return nullptr;
  }
  default:
    if (token.isKeyword())
      error(token, fmt::format("expected an expression after {}, got the reserved word {}",
                               previous_.quoted(), token.quoted()));
    else
      expectedAfterPrevious("an expression");
    return nullptr;
  }
}

ExprPtr Parser::parseCall(const Token &callee) {
  auto call = std::make_unique<CallExpr>(std::string(callee.text), callee.loc);
  if (!parseArguments(call->args, fmt::format("the arguments of '{}'", call->callee)))
    return nullptr;
  if (at(TokenKind::LParen)) {
    call->hasInputs = true;
    call->inputsLoc = peek().loc;
    if (!parseArguments(call->inputs, fmt::format("the inputs of '{}'", call->callee)))
      return nullptr;
  }
  return call;
}

bool Parser::parseArguments(std::vector<Argument> &args, const std::string &closingWhat) {
  Token open = consume(); // '('
  skipNewlines();
  if (acceptAfterNewlines(TokenKind::RParen))
    return true;
  for (;;) {
    Argument arg;
    if (at(TokenKind::Identifier) && peek(1).is(TokenKind::Equal)) {
      Token keyword = consume();
      consume(); // '='
      arg.keyword = std::string(keyword.text);
      arg.keywordLoc = keyword.loc;
    }
    arg.value = parseExpr();
    if (!arg.value)
      return false;
    args.push_back(std::move(arg));
    if (accept(TokenKind::Comma)) {
      skipNewlines();
      if (accept(TokenKind::RParen)) // a trailing comma
        return true;
      continue;
    }
    if (acceptAfterNewlines(TokenKind::RParen))
      return true;
    if (error(peek(), fmt::format("expected ')' after {}", closingWhat)))
      diags_.note(open.loc, "to match this '('");
    return false;
  }
}

} // namespace

std::unique_ptr<ast::File> parseModelFile(std::string_view text, const std::string *fileName,
                                          Diagnostics &diags) {
  return Parser(text, fileName, diags).parseFile();
}

} // namespace gradc::frontend
