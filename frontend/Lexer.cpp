//===- frontend/Lexer.cpp - Tokens of a model file ------------------------===//
#include "frontend/Lexer.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

namespace gradc::frontend {

namespace {
struct Keyword {
  std::string_view spelling;
  TokenKind kind;
};
constexpr Keyword kKeywords[] = {
    {"model", TokenKind::KwModel},
    {"block", TokenKind::KwBlock},
    {"input", TokenKind::KwInput},
    {"target", TokenKind::KwTarget},
    // `label y : i32[batch]` declares class labels; a synonym of `target`.
    {"label", TokenKind::KwTarget},
    {"param", TokenKind::KwParam},
    {"loss", TokenKind::KwLoss},
    {"output", TokenKind::KwOutput},
    {"out", TokenKind::KwOut},
    {"weight_decay", TokenKind::KwWeightDecay},
    {"repeat", TokenKind::KwRepeat},
    {"train", TokenKind::KwTrain},
};

bool isIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isIdentChar(char c) { return isIdentStart(c) || isDigit(c); }
} // namespace

const char *describe(TokenKind kind) {
  switch (kind) {
  case TokenKind::Eof:
    return "the end of the file";
  case TokenKind::Newline:
    return "the end of the line";
  case TokenKind::Identifier:
    return "a name";
  case TokenKind::Number:
    return "a number";
  case TokenKind::LParen:
    return "'('";
  case TokenKind::RParen:
    return "')'";
  case TokenKind::LBracket:
    return "'['";
  case TokenKind::RBracket:
    return "']'";
  case TokenKind::LBrace:
    return "'{'";
  case TokenKind::RBrace:
    return "'}'";
  case TokenKind::Comma:
    return "','";
  case TokenKind::Colon:
    return "':'";
  case TokenKind::Semicolon:
    return "';'";
  case TokenKind::Equal:
    return "'='";
  case TokenKind::Plus:
    return "'+'";
  case TokenKind::Minus:
    return "'-'";
  case TokenKind::Star:
    return "'*'";
  case TokenKind::Slash:
    return "'/'";
  case TokenKind::At:
    return "'@'";
  case TokenKind::Caret:
    return "'^'";
  case TokenKind::KwModel:
    return "'model'";
  case TokenKind::KwBlock:
    return "'block'";
  case TokenKind::KwInput:
    return "'input'";
  case TokenKind::KwTarget:
    return "'target'";
  case TokenKind::KwParam:
    return "'param'";
  case TokenKind::KwLoss:
    return "'loss'";
  case TokenKind::KwOutput:
    return "'output'";
  case TokenKind::KwOut:
    return "'out'";
  case TokenKind::KwWeightDecay:
    return "'weight_decay'";
  case TokenKind::KwRepeat:
    return "'repeat'";
  case TokenKind::KwTrain:
    return "'train'";
  case TokenKind::Invalid:
    return "an invalid character";
  }
  return "a token";
}

std::string Token::quoted() const {
  if (kind == TokenKind::Identifier || kind == TokenKind::Number || kind == TokenKind::Invalid)
    return fmt::format("'{}'", text);
  return describe(kind);
}

Lexer::Lexer(std::string_view text, const std::string *fileName, Diagnostics &diags)
    : text_(text), fileName_(fileName), diags_(diags), lastTokenEnd_{fileName, 1, 1} {}

void Lexer::advance(size_t count) {
  for (size_t i = 0; i < count && pos_ < text_.size(); ++i, ++pos_) {
    if (text_[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
  }
}

Token Lexer::make(TokenKind kind, size_t begin, SourceLoc loc) {
  Token token;
  token.kind = kind;
  token.text = text_.substr(begin, pos_ - begin);
  token.loc = loc;
  if (kind != TokenKind::Newline && kind != TokenKind::Eof)
    lastTokenEnd_ = here();
  return token;
}

Token Lexer::next() {
  // Skip blanks and comments; a newline is a token.
  while (pos_ < text_.size()) {
    char c = text_[pos_];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      advance();
    } else if (c == '#') {
      while (pos_ < text_.size() && text_[pos_] != '\n')
        advance();
    } else {
      break;
    }
  }
  if (pos_ >= text_.size())
    return make(TokenKind::Eof, pos_, lastTokenEnd_);

  size_t begin = pos_;
  SourceLoc loc = here();
  char c = text_[pos_];
  if (c == '\n') {
    // Reported just after the code on this line, not after its comment.
    SourceLoc at = lastTokenEnd_.line == line_ ? lastTokenEnd_ : loc;
    advance();
    return make(TokenKind::Newline, begin, at);
  }
  if (isIdentStart(c)) {
    while (pos_ < text_.size() && isIdentChar(text_[pos_]))
      advance();
    Token token = make(TokenKind::Identifier, begin, loc);
    for (const Keyword &keyword : kKeywords)
      if (token.text == keyword.spelling)
        token.kind = keyword.kind;
    return token;
  }
  if (isDigit(c) || (c == '.' && pos_ + 1 < text_.size() && isDigit(text_[pos_ + 1])))
    return lexNumber(begin, loc);

  TokenKind kind;
  switch (c) {
  case '(':
    kind = TokenKind::LParen;
    break;
  case ')':
    kind = TokenKind::RParen;
    break;
  case '[':
    kind = TokenKind::LBracket;
    break;
  case ']':
    kind = TokenKind::RBracket;
    break;
  case '{':
    kind = TokenKind::LBrace;
    break;
  case '}':
    kind = TokenKind::RBrace;
    break;
  case ',':
    kind = TokenKind::Comma;
    break;
  case ':':
    kind = TokenKind::Colon;
    break;
  case ';':
    kind = TokenKind::Semicolon;
    break;
  case '=':
    kind = TokenKind::Equal;
    break;
  case '+':
    kind = TokenKind::Plus;
    break;
  case '-':
    kind = TokenKind::Minus;
    break;
  case '*':
    kind = TokenKind::Star;
    break;
  case '/':
    kind = TokenKind::Slash;
    break;
  case '@':
    kind = TokenKind::At;
    break;
  case '^':
    kind = TokenKind::Caret;
    break;
  default:
    return lexInvalidCharacter(begin, loc);
  }
  advance();
  return make(kind, begin, loc);
}

Token Lexer::lexNumber(size_t begin, SourceLoc loc) {
  auto skipDigits = [&] {
    while (pos_ < text_.size() && isDigit(text_[pos_]))
      advance();
  };
  bool isInteger = true;
  skipDigits();
  if (pos_ < text_.size() && text_[pos_] == '.') {
    isInteger = false;
    advance();
    skipDigits();
  }
  if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    size_t digits = pos_ + 1;
    if (digits < text_.size() && (text_[digits] == '+' || text_[digits] == '-'))
      ++digits;
    if (digits < text_.size() && isDigit(text_[digits])) {
      isInteger = false;
      advance(digits - pos_);
      skipDigits();
    }
  }
  // "4x", "1e", "2.5.3": one malformed literal, reported once.
  bool malformed = false;
  while (pos_ < text_.size() && (isIdentChar(text_[pos_]) || text_[pos_] == '.')) {
    malformed = true;
    advance();
  }
  Token token = make(TokenKind::Number, begin, loc);
  token.isInteger = isInteger;
  if (malformed) {
    diags_.error(loc, fmt::format("invalid number '{}'", token.text), token.length());
    token.kind = TokenKind::Invalid;
    return token;
  }
  const char *first = token.text.data(), *last = first + token.text.size();
  if (isInteger) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(first, last, value);
    if (ec != std::errc() || end != last) {
      diags_.error(loc, fmt::format("integer '{}' is too large", token.text), token.length());
      token.kind = TokenKind::Invalid;
      return token;
    }
    token.number = static_cast<double>(value);
    return token;
  }
  // strtod tells overflow (HUGE_VAL) from underflow (a tiny value, kept:
  // as close to the written number as a double gets).
  std::string spelling(token.text);
  char *end = nullptr;
  double value = std::strtod(spelling.c_str(), &end);
  if (end != spelling.c_str() + spelling.size() || !std::isfinite(value)) {
    diags_.error(loc, fmt::format("number '{}' is out of range", token.text), token.length());
    token.kind = TokenKind::Invalid;
    return token;
  }
  token.number = value;
  return token;
}

Token Lexer::lexInvalidCharacter(size_t begin, SourceLoc loc) {
  // Take a whole UTF-8 sequence so the message shows the character.
  unsigned char lead = static_cast<unsigned char>(text_[pos_]);
  size_t expected = (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
  size_t size = 1;
  while (size < expected && pos_ + size < text_.size() &&
         (static_cast<unsigned char>(text_[pos_ + size]) >> 6) == 0x2)
    ++size;
  if (size != expected)
    size = 1;
  advance(size);
  Token token = make(TokenKind::Invalid, begin, loc);
  std::string shown;
  if (lead < 0x20 || lead == 0x7F || (lead >= 0x80 && size == 1))
    shown = fmt::format("\\x{:02X}", lead);
  else
    shown = std::string(token.text);
  diags_.error(loc, fmt::format("unexpected character '{}'", shown));
  return token;
}

} // namespace gradc::frontend
