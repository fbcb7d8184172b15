//===- test/unit/frontend/ParserTest.cpp - Syntax, AST and its printer ----===//
#include "FrontendTestUtil.h"

#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <gtest/gtest.h>

using namespace gradc;
using namespace gradc::frontend;
using namespace gradc::test;

namespace {

const char *kLecture = R"(# comments start with '#'
model lecture {
  input  x : f32[4]
  target y : f32[2]
  param  W1 : f32[5, 4] = xavier_normal
  param  W2 : f32[2, 5] = xavier_normal
  z = W1 @ x
  h = dropout(relu(z), 0.5)
  o = W2 @ h
  loss squared_error(o, y)
  weight_decay 0.01
}
)";

TEST(Parser, LectureModelStructure) {
  Compiled c = parseModel(kLecture, "lecture.grad");
  ASSERT_NE(c.ast, nullptr) << c.diagnostics;
  EXPECT_TRUE(c.diagnostics.empty());
  auto models = c.ast->models();
  ASSERT_EQ(models.size(), 1u);
  const ast::Model &model = *models[0];
  EXPECT_EQ(model.name, "lecture");
  EXPECT_EQ(model.nameLoc.line, 2u);
  EXPECT_EQ(model.nameLoc.col, 7u);
  ASSERT_EQ(model.body.size(), 9u);

  const auto *w1 = ast::dynCast<ast::DeclStmt>(model.body[2].get());
  ASSERT_NE(w1, nullptr);
  EXPECT_EQ(w1->kind, ast::StmtKind::Param);
  EXPECT_EQ(w1->name, "W1");
  EXPECT_EQ(w1->nameLoc.line, 5u);
  EXPECT_EQ(w1->nameLoc.col, 10u);
  ASSERT_EQ(w1->type.dims.size(), 2u);
  EXPECT_EQ(w1->type.dims[0].value, 5);
  EXPECT_EQ(w1->type.dims[1].value, 4);
  EXPECT_TRUE(w1->hasInit);
  EXPECT_EQ(w1->init.name, "xavier_normal");

  const auto *z = ast::dynCast<ast::AssignStmt>(model.body[4].get());
  ASSERT_NE(z, nullptr);
  const auto *matmul = ast::dynCast<ast::BinaryExpr>(z->value.get());
  ASSERT_NE(matmul, nullptr);
  EXPECT_EQ(matmul->op, ast::BinaryOp::MatMul);
  EXPECT_EQ(matmul->loc.line, 7u);
  EXPECT_EQ(matmul->loc.col, 10u);

  const auto *h = ast::dynCast<ast::AssignStmt>(model.body[5].get());
  const auto *dropout = ast::dynCast<ast::CallExpr>(h->value.get());
  ASSERT_NE(dropout, nullptr);
  EXPECT_EQ(dropout->callee, "dropout");
  EXPECT_FALSE(dropout->hasInputs);
  ASSERT_EQ(dropout->args.size(), 2u);
  EXPECT_NE(ast::dynCast<ast::CallExpr>(dropout->args[0].value.get()), nullptr);

  const auto *decay = ast::dynCast<ast::WeightDecayStmt>(model.body[8].get());
  ASSERT_NE(decay, nullptr);
  EXPECT_EQ(decay->lambda.value, 0.01);
}

// `label` declares class labels: a Target that remembers its spelling, so
// the printed model reads as written.
TEST(Parser, LabelIsASynonymOfTarget) {
  const char *source = "model m {\n  label y : i32[4]\n  target t : f32[4]\n  loss sum(t)\n}\n";
  Compiled c = parseModel(source);
  ASSERT_NE(c.ast, nullptr) << c.diagnostics;
  const ast::Model &model = *c.ast->models()[0];
  const auto *y = ast::dynCast<ast::DeclStmt>(model.body[0].get());
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(y->kind, ast::StmtKind::Target);
  EXPECT_TRUE(y->label);
  EXPECT_EQ(y->name, "y");
  const auto *t = ast::dynCast<ast::DeclStmt>(model.body[1].get());
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(t->label);
  EXPECT_EQ(printed(*c.ast), source);

  Compiled inBlock = parseModel("block b()(x) {\n  label y : i32[4]\n  out x\n}\n");
  EXPECT_EQ(firstDiagnostic(inBlock),
            "test.grad:2:3: error: 'label' is not allowed in a block: the inputs of block 'b' are "
            "listed after its config parameters");
}

TEST(Parser, BlockStructure) {
  Compiled c = parseModel(R"(
block dense(n_in, n_out, act = relu)(x) {
  param W : f32[n_out, n_in] = xavier_uniform
  out act(x @ W^T)
}
model m { input x : f32[4]; loss sum(dense(4, 2, act = none)(x)) }
)");
  ASSERT_NE(c.ast, nullptr) << c.diagnostics;
  const ast::Block *block = c.ast->findBlock("dense");
  ASSERT_NE(block, nullptr);
  ASSERT_EQ(block->config.size(), 3u);
  EXPECT_EQ(block->config[0].defaultValue, nullptr);
  ASSERT_NE(block->config[2].defaultValue, nullptr);
  ASSERT_EQ(block->inputs.size(), 1u);
  EXPECT_EQ(block->inputs[0].name, "x");
  const auto *param = ast::dynCast<ast::DeclStmt>(block->body[0].get());
  ASSERT_NE(param, nullptr);
  EXPECT_TRUE(param->type.dims[0].isName());
  EXPECT_EQ(param->type.dims[0].name, "n_out");

  const auto *loss = ast::dynCast<ast::ExprStmt>(c.ast->models()[0]->body[1].get());
  const auto *sum = ast::dynCast<ast::CallExpr>(loss->value.get());
  const auto *instance = ast::dynCast<ast::CallExpr>(sum->args[0].value.get());
  ASSERT_NE(instance, nullptr);
  EXPECT_TRUE(instance->hasInputs);
  EXPECT_EQ(instance->args[2].keyword, "act");
  EXPECT_EQ(instance->inputs.size(), 1u);
}

/// The canonical form of one expression, as `a = EXPR` in a model.
std::string canonical(const std::string &expr) {
  Compiled c = parseModel("model m {\n  a = " + expr + "\n}\n");
  if (!c.ast)
    return "error: " + c.diagnostics;
  std::string text = printed(*c.ast);
  size_t begin = text.find("a = ") + 4;
  return text.substr(begin, text.find('\n', begin) - begin);
}

TEST(Parser, Precedence) {
  EXPECT_EQ(canonical("a + b * c"), "(a + (b * c))");
  EXPECT_EQ(canonical("a - b - c"), "((a - b) - c)");
  EXPECT_EQ(canonical("a * b @ c / d"), "(((a * b) @ c) / d)");
  EXPECT_EQ(canonical("-a ^ 2"), "(-(a ^ 2))");
  EXPECT_EQ(canonical("-a * b"), "((-a) * b)");
  EXPECT_EQ(canonical("x @ W^T + b"), "((x @ (W^T)) + b)");
  EXPECT_EQ(canonical("a ^ 2 ^ 3"), "((a ^ 2) ^ 3)");
  EXPECT_EQ(canonical("a ^ -1"), "(a ^ -1)");
  EXPECT_EQ(canonical("(a + b) * c"), "((a + b) * c)");
  EXPECT_EQ(canonical("- - a"), "(-(-a))");
  EXPECT_EQ(canonical("W^T^T"), "((W^T)^T)");
  EXPECT_EQ(canonical("f(a + b, k = 2)(x)"), "f((a + b), k = 2)(x)");
}

TEST(Parser, LiteralsKeepTheirKind) {
  EXPECT_EQ(canonical("2.0 * x"), "(2.0 * x)");
  EXPECT_EQ(canonical("2 * x"), "(2 * x)");
  EXPECT_EQ(canonical("1e-4 + 1E3 + .5"), "((0.0001 + 1000.0) + 0.5)");
  EXPECT_EQ(canonical("x ^ 2.50"), "(x ^ 2.5)");
}

TEST(Parser, StatementSeparatorsAndContinuations) {
  // ';' separates statements; '}' may end the last one on its line; a list
  // may be split after '(' or ',' and before ')'.
  Compiled c = parseModel(R"(model m { input x : f32[4]; h = relu(x); loss sum(h) }
model n {
  input x : f32[
    4,
  ]
  loss squared_error(
    x,
    x
  )
}
)");
  ASSERT_NE(c.ast, nullptr) << c.diagnostics;
  EXPECT_EQ(printed(*c.ast), "model m {\n"
                             "  input x : f32[4]\n"
                             "  h = relu(x)\n"
                             "  loss sum(h)\n"
                             "}\n"
                             "\n"
                             "model n {\n"
                             "  input x : f32[4]\n"
                             "  loss squared_error(x, x)\n"
                             "}\n");
}

void expectRoundTrip(const std::string &source, const std::string &label) {
  Compiled first = parseModel(source, label);
  if (!first.ast)
    return; // only valid files have a canonical form
  std::string once = printed(*first.ast);
  Compiled second = parseModel(once, label + ".printed");
  ASSERT_NE(second.ast, nullptr) << label << ": the printed form does not parse\n"
                                 << once << second.diagnostics;
  EXPECT_EQ(printed(*second.ast), once) << label;
}

TEST(Parser, RoundTripLecture) {
  expectRoundTrip(kLecture, "lecture");
  Compiled c = parseModel(kLecture);
  EXPECT_EQ(printed(*c.ast), "model lecture {\n"
                             "  input x : f32[4]\n"
                             "  target y : f32[2]\n"
                             "  param W1 : f32[5, 4] = xavier_normal\n"
                             "  param W2 : f32[2, 5] = xavier_normal\n"
                             "  z = (W1 @ x)\n"
                             "  h = dropout(relu(z), 0.5)\n"
                             "  o = (W2 @ h)\n"
                             "  loss squared_error(o, y)\n"
                             "  weight_decay 0.01\n"
                             "}\n");
}

std::string readFile(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every model file in the repository that parses prints back to a form that
// parses to the same print: the examples and the lit tests.
TEST(Parser, RoundTripRepositoryFiles) {
  namespace fs = std::filesystem;
  int checked = 0;
  for (const char *dir : {"examples", "test/lit/frontend"}) {
    fs::path root = fs::path(GRADC_SOURCE_DIR) / dir;
    if (!fs::exists(root))
      continue;
    for (const auto &entry : fs::directory_iterator(root)) {
      if (entry.path().extension() != ".grad")
        continue;
      expectRoundTrip(readFile(entry.path()), entry.path().filename().string());
      ++checked;
    }
  }
  EXPECT_GE(checked, 2);
}

TEST(Parser, RoundTripTricky) {
  expectRoundTrip(R"(
block b(n = 2 * 3, f = none)() {
  param W : f32[] = constant(-1.5)
  out f(W * n)
}
model m {
  param V : f32[2] = uniform(-1, 1E-3)
  repeat 2 { repeat 1 { a = b()() } }
  output -V ^ -2
  loss sum(V / -2.0 - -V^T)
  weight_decay 0
}
)",
                  "tricky");
}

struct SyntaxCase {
  const char *source;
  const char *firstError;
};

// One syntax error each, with the exact message and position.
TEST(Parser, SyntaxErrors) {
  const SyntaxCase cases[] = {
      {"model m {\n  h = relu(x\n}\n",
       "test.grad:2:13: error: expected ')' after the arguments of 'relu'"},
      {"model m {\n  h =\n}\n", "test.grad:2:6: error: expected an expression after '='"},
      {"model m {\n  input x f32[4]\n}\n",
       "test.grad:2:11: error: expected ':' and a type after 'x'"},
      {"model m {\n  input x : f32[4\n}\n",
       "test.grad:2:18: error: expected ']' after the dimensions of 'x'"},
      {"model m {\n  param W : f32[4] = \n}\n",
       "test.grad:2:21: error: expected an initializer such as xavier_normal or normal(0.01) after "
       "'='"},
      {"model m {\n  param W : f32[4] = normal(0.1\n}\n",
       "test.grad:2:32: error: expected ')' after the arguments of 'normal'"},
      {"model m {\n  input x : f32[4]\n", "test.grad:2:19: error: expected '}' to close model 'm'"},
      {"model m\n  input x : f32[4]\n}\n",
       "test.grad:1:8: error: expected '{' after the model name 'm'"},
      {"model {\n}\n", "test.grad:1:7: error: expected a model name after 'model'"},
      {"input x : f32[4]\n",
       "test.grad:1:1: error: expected 'model' or 'block' at the top level of the file, got "
       "'input'"},
      {"block b(n) {\n  out n\n}\n",
       "test.grad:1:12: error: expected '(' and the inputs of block 'b' after its config "
       "parameters, as in block b(n)(x)"},
      {"block b(n, n)(x) {\n  out x\n}\n", "test.grad:1:12: error: redefinition of 'n'"},
      {"block b()(x) {\n  param W : f32[2]\n}\n",
       "test.grad:1:7: error: block 'b' has no 'out' statement; end it with 'out EXPR'"},
      {"model m {\n  a = x ^ y\n}\n",
       "test.grad:2:11: error: expected 'T' (transpose) or a number (the exponent) after '^'"},
      {"model m {\n  a = (x + y\n}\n",
       "test.grad:2:13: error: expected ')' after the expression, got the end of the line"},
      {"model m {\n  a = x +* y\n}\n", "test.grad:2:10: error: expected an expression after '+'"},
      {"model m {\n  a = loss\n}\n",
       "test.grad:2:7: error: expected an expression after '=', got the reserved word 'loss'"},
      {"model m {\n  repeat { a = x }\n}\n",
       "test.grad:2:10: error: expected a count after 'repeat'"},
      {"model m {\n  repeat 2 a = x\n}\n",
       "test.grad:2:12: error: expected '{' after the repeat count"},
      {"model m {\n  weight_decay\n}\n",
       "test.grad:2:15: error: expected a number after 'weight_decay'"},
      {"model m {\n  input x : f32[4] = zeros\n}\n",
       "test.grad:2:20: error: expected a new line or ';' after the statement, got '='"},
      {"model m {\n  x\n}\n", "test.grad:2:4: error: expected '=' after 'x' to assign it a value"},
      {"model m {\n  out x\n}\n",
       "test.grad:2:3: error: 'out' is only allowed in a block; use 'output' to name the model's "
       "prediction"},
      {"block b()(x) {\n  weight_decay 1\n  out x\n}\n",
       "test.grad:2:3: error: 'weight_decay' is only allowed in a model, not in block 'b'"},
      {"model m {\n  repeat 2 { output x }\n}\n",
       "test.grad:2:14: error: 'output' is not allowed inside 'repeat'"},
      {"model m {\n  train { epochs }\n}\n",
       "test.grad:2:11: error: expected a setting 'name = value' in the 'train' section, got "
       "'epochs'"},
      {"model m {\n  a = 1.2.3\n}\n", "test.grad:2:7: error: invalid number '1.2.3'"},
  };
  for (const SyntaxCase &test : cases) {
    Compiled c = parseModel(test.source);
    EXPECT_EQ(c.ast, nullptr) << test.source;
    EXPECT_EQ(firstDiagnostic(c), test.firstError) << test.source << "\n" << c.diagnostics;
  }
}

TEST(Parser, UnterminatedModelNotesTheOpeningBrace) {
  Compiled c = parseModel("model lecture {\n  input x : f32[4]\n  loss sum(x)\n# end\n");
  EXPECT_EQ(c.ast, nullptr);
  EXPECT_EQ(c.diagnostics, "test.grad:3:14: error: expected '}' to close model 'lecture'\n"
                           "  loss sum(x)\n"
                           "             ^\n"
                           "test.grad:1:15: note: to match this '{'\n"
                           "model lecture {\n"
                           "              ^\n");
}

TEST(Parser, ReportsEveryError) {
  Compiled c = parseModel(R"(model m {
  input x : f32[4]
  a = relu(x
  b = x +
  c = (x
  d = x $ 2
  param W : f32[2 2]
  loss sum(x
}
block b(n)(x) {
  out x +
}
)");
  EXPECT_EQ(c.ast, nullptr);
  EXPECT_EQ(c.errors, 7u) << c.diagnostics;
  for (int line : {3, 4, 5, 6, 7, 8, 11})
    EXPECT_NE(c.diagnostics.find(fmt::format("test.grad:{}:", line)), std::string::npos)
        << "no error on line " << line << "\n"
        << c.diagnostics;
}

TEST(Parser, DeepNestingIsAnErrorNotACrash) {
  std::string deep = "model m {\n  a = " + std::string(100000, '(') + "x\n}\n";
  Compiled c = parseModel(deep);
  EXPECT_EQ(c.ast, nullptr);
  EXPECT_NE(c.diagnostics.find("error: the expression is nested too deeply"), std::string::npos);
  EXPECT_EQ(c.errors, 1u);

  std::string loops = "model m {\n";
  for (int i = 0; i < 1000; ++i)
    loops += "repeat 1 {\n";
  Compiled d = parseModel(loops);
  EXPECT_EQ(d.ast, nullptr);
  EXPECT_NE(d.diagnostics.find("nested too deeply"), std::string::npos) << d.diagnostics;
}

} // namespace
