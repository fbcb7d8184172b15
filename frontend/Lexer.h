//===- frontend/Lexer.h - Tokens of a model file ---------------*- C++ -*-===//
//
// Splits model source into tokens on demand, so that lexical errors are
// reported in order with the parser's.  Newlines are tokens because they end
// statements; comments (`#` to the end of the line), spaces, tabs and
// carriage returns are skipped.  Statement keywords are reserved words.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Diagnostics.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace gradc::frontend {

enum class TokenKind {
  Eof,
  Newline,
  Identifier,
  Number,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  Comma,
  Colon,
  Semicolon,
  Equal,
  Plus,
  Minus,
  Star,
  Slash,
  At,
  Caret,
  // Reserved words.
  KwModel,
  KwBlock,
  KwInput,
  KwTarget,
  KwParam,
  KwLoss,
  KwOutput,
  KwOut,
  KwWeightDecay,
  KwRepeat,
  KwTrain,
  /// A character or literal the lexer already reported; the parser stays
  /// silent about it so that one mistake gives one error.
  Invalid,
};

/// How a token kind is named in "expected ..." messages: "')'", "a name".
const char *describe(TokenKind kind);

struct Token {
  TokenKind kind = TokenKind::Eof;
  std::string_view text; ///< the characters of the token (empty for Eof)
  SourceLoc loc;
  double number = 0;      ///< value of a Number
  bool isInteger = false; ///< a Number written without '.' or exponent

  bool is(TokenKind k) const { return kind == k; }
  bool isKeyword() const { return kind >= TokenKind::KwModel && kind <= TokenKind::KwTrain; }
  unsigned length() const { return text.empty() ? 1 : static_cast<unsigned>(text.size()); }
  /// How the token is quoted in messages: "'relu'", "'='", "the end of the line".
  std::string quoted() const;
};

class Lexer {
public:
  Lexer(std::string_view text, const std::string *fileName, Diagnostics &diags);

  /// The next token; Eof forever once the text is exhausted.
  Token next();

private:
  Token make(TokenKind kind, size_t begin, SourceLoc loc);
  Token lexNumber(size_t begin, SourceLoc loc);
  Token lexInvalidCharacter(size_t begin, SourceLoc loc);
  SourceLoc here() const { return SourceLoc{fileName_, line_, col_}; }
  void advance(size_t count = 1);

  std::string_view text_;
  const std::string *fileName_;
  Diagnostics &diags_;
  size_t pos_ = 0;
  uint32_t line_ = 1, col_ = 1;
  /// Just past the last token that was not a newline: where a newline or
  /// the end of the file is reported, so that carets land after the code
  /// rather than after a trailing comment.
  SourceLoc lastTokenEnd_;
};

} // namespace gradc::frontend
