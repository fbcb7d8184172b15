//===- test/unit/frontend/LexerTest.cpp - Tokens of model files -----------===//
#include "frontend/Lexer.h"

#include <gtest/gtest.h>
#include <sstream>
#include <vector>

using namespace gradc;
using namespace gradc::frontend;

namespace {

struct Lexed {
  std::vector<Token> tokens; ///< up to and including Eof
  std::string diagnostics;
};

Lexed lex(std::string_view text) {
  static const std::string *file = internFileName("lex.grad");
  std::ostringstream out;
  Diagnostics diags(nullptr, out);
  Lexer lexer(text, file, diags);
  Lexed result;
  for (;;) {
    result.tokens.push_back(lexer.next());
    if (result.tokens.back().is(TokenKind::Eof))
      break;
  }
  result.diagnostics = out.str();
  return result;
}

std::vector<TokenKind> kinds(const Lexed &lexed) {
  std::vector<TokenKind> result;
  for (const Token &token : lexed.tokens)
    result.push_back(token.kind);
  return result;
}

TEST(Lexer, StatementTokens) {
  Lexed lexed = lex("param W1 : f32[5, 4] = xavier_normal\n");
  using K = TokenKind;
  EXPECT_EQ(kinds(lexed), (std::vector<K>{K::KwParam, K::Identifier, K::Colon, K::Identifier,
                                          K::LBracket, K::Number, K::Comma, K::Number, K::RBracket,
                                          K::Equal, K::Identifier, K::Newline, K::Eof}));
  EXPECT_EQ(lexed.tokens[1].text, "W1");
  EXPECT_EQ(lexed.tokens[1].loc.line, 1u);
  EXPECT_EQ(lexed.tokens[1].loc.col, 7u);
  EXPECT_TRUE(lexed.diagnostics.empty());
}

TEST(Lexer, OperatorsAndKeywords) {
  Lexed lexed = lex("+ - * / @ ^ ( ) { } ; model block input target param loss output out "
                    "weight_decay repeat train batch");
  using K = TokenKind;
  EXPECT_EQ(kinds(lexed),
            (std::vector<K>{K::Plus,      K::Minus,   K::Star,       K::Slash,   K::At,
                            K::Caret,     K::LParen,  K::RParen,     K::LBrace,  K::RBrace,
                            K::Semicolon, K::KwModel, K::KwBlock,    K::KwInput, K::KwTarget,
                            K::KwParam,   K::KwLoss,  K::KwOutput,   K::KwOut,   K::KwWeightDecay,
                            K::KwRepeat,  K::KwTrain, K::Identifier, K::Eof}));
}

TEST(Lexer, Numbers) {
  Lexed lexed = lex("4 0.5 1e-4 2.5E+3 .25 7.");
  ASSERT_EQ(lexed.tokens.size(), 7u);
  EXPECT_TRUE(lexed.tokens[0].isInteger);
  EXPECT_EQ(lexed.tokens[0].number, 4);
  EXPECT_FALSE(lexed.tokens[1].isInteger);
  EXPECT_EQ(lexed.tokens[1].number, 0.5);
  EXPECT_EQ(lexed.tokens[2].number, 1e-4);
  EXPECT_EQ(lexed.tokens[3].number, 2500);
  EXPECT_EQ(lexed.tokens[4].number, 0.25);
  EXPECT_EQ(lexed.tokens[5].number, 7);
  EXPECT_FALSE(lexed.tokens[5].isInteger);
  EXPECT_TRUE(lexed.diagnostics.empty());
}

TEST(Lexer, MalformedNumbersAreOneError) {
  Lexed lexed = lex("4x 1e 99999999999999999999 1e999");
  EXPECT_EQ(lexed.diagnostics, "lex.grad:1:1: error: invalid number '4x'\n"
                               "lex.grad:1:4: error: invalid number '1e'\n"
                               "lex.grad:1:7: error: integer '99999999999999999999' is too large\n"
                               "lex.grad:1:28: error: number '1e999' is out of range\n");
  for (size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(lexed.tokens[i].is(TokenKind::Invalid));
}

TEST(Lexer, CommentsAndNewlines) {
  // A newline is reported right after the code of its line, not after the
  // comment, so a caret there lands where something is missing.
  Lexed lexed = lex("a = b # comment\n\n  # only a comment\nc");
  using K = TokenKind;
  EXPECT_EQ(kinds(lexed), (std::vector<K>{K::Identifier, K::Equal, K::Identifier, K::Newline,
                                          K::Newline, K::Newline, K::Identifier, K::Eof}));
  EXPECT_EQ(lexed.tokens[3].loc.line, 1u);
  EXPECT_EQ(lexed.tokens[3].loc.col, 6u);
  EXPECT_EQ(lexed.tokens[4].loc.line, 2u);
  EXPECT_EQ(lexed.tokens[4].loc.col, 1u);
}

TEST(Lexer, EndOfFileIsAfterTheLastToken) {
  Lexed lexed = lex("model m {\n  loss x\n# trailing comment\n\n\n");
  const Token &eof = lexed.tokens.back();
  ASSERT_TRUE(eof.is(TokenKind::Eof));
  EXPECT_EQ(eof.loc.line, 2u);
  EXPECT_EQ(eof.loc.col, 9u);
}

TEST(Lexer, InvalidCharacters) {
  Lexed lexed = lex("a $ \xce\xbb \x01 b\r\n");
  EXPECT_EQ(lexed.diagnostics, "lex.grad:1:3: error: unexpected character '$'\n"
                               "lex.grad:1:5: error: unexpected character '\xce\xbb'\n"
                               "lex.grad:1:8: error: unexpected character '\\x01'\n");
  using K = TokenKind;
  EXPECT_EQ(kinds(lexed), (std::vector<K>{K::Identifier, K::Invalid, K::Invalid, K::Invalid,
                                          K::Identifier, K::Newline, K::Eof}));
}

TEST(Lexer, EofRepeats) {
  std::ostringstream out;
  Diagnostics diags(nullptr, out);
  Lexer lexer("x", internFileName("lex.grad"), diags);
  EXPECT_TRUE(lexer.next().is(TokenKind::Identifier));
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(lexer.next().is(TokenKind::Eof));
}

} // namespace
