//===- test/unit/frontend/FuzzTest.cpp - Garbled models never crash -------===//
//
// Feeds every truncation and a few thousand seeded random mutations of valid
// models through the frontend and checks, for each, what must hold whatever
// the input: no crash or hang; a result is missing exactly when an error
// was reported (no silent failure, no error with a result); a parsed file
// prints back to text that parses to the same print; an elaborated graph
// passes the verifier.
//
//===----------------------------------------------------------------------===//
#include "FrontendTestUtil.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"

#include <gtest/gtest.h>
#include <iostream>
#include <random>

using namespace gradc;
using namespace gradc::test;

namespace {

const char *kCorpus[] = {
    R"(# The lecture's network (2.6).
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
)",
    R"(block dense(n_in, n_out, act = relu)(x) {
  param W : f32[n_out, n_in] = uniform(-0.1, 0.1)
  param b : f32[n_out] = zeros
  out act(x @ W^T + b)
}
block mlp(n, width)(x) {
  h = dense(n, width)(x)
  repeat 2 { h = dense(width, width, act = tanh)(h) }
  out dense(width, 3, act = none)(h)
}
model m {
  input x : f32[batch, 8]; target y : f32[batch, 3]
  o = mlp(8, 16)(x)
  output sigmoid(o)
  loss squared_error(o, y) + 0.5 * sum((o - y) ^ 2) / 2
  weight_decay 1e-4
}
)",
    R"(model literals {
  input x : f32[3]
  param V : f32[3, 3] = normal(0.01)
  a = -x ^ 2 + 3 * x @ V^T - x / 2.0
  b = mean(V, 0) * sum(V, -1)
  loss mean(exp(a) + log(sqrt(b * b + 1)))
}
)",
};

/// How far the inputs got, to show the mutations reach every stage.
struct Outcomes {
  int syntaxErrors = 0, semanticErrors = 0, graphs = 0;
};

/// Checks the invariants for one input.
void checkInvariants(const std::string &source, std::optional<int64_t> batch, Outcomes &outcomes) {
  frontend::ElaborateOptions options;
  options.batch = batch;
  Compiled c = compileModel(source, options, "fuzz.grad");
  SCOPED_TRACE("input:\n" + source + "\ndiagnostics:\n" + c.diagnostics);
  if (!c.ast) {
    ++outcomes.syntaxErrors;
    ASSERT_GT(c.errors, 0u) << "parse failed without an error";
    return;
  }
  // The canonical form is stable.
  std::string once = printed(*c.ast);
  Compiled reparsed = parseModel(once, "fuzz.printed.grad");
  ASSERT_NE(reparsed.ast, nullptr) << "printed form does not parse:\n"
                                   << once << reparsed.diagnostics;
  ASSERT_EQ(printed(*reparsed.ast), once);

  if (!c.graph) {
    ++outcomes.semanticErrors;
    ASSERT_GT(c.errors, 0u) << "elaboration failed without an error";
    return;
  }
  ++outcomes.graphs;
  ASSERT_EQ(c.errors, 0u) << "an error was reported but a graph returned";
  std::ostringstream out;
  Diagnostics diags(&testSources(), out);
  ASSERT_TRUE(ir::verify(*c.graph, diags)) << out.str() << ir::toString(*c.graph);
  ASSERT_NE(c.graph->output("loss"), nullptr);
  ASSERT_NE(c.graph->output("prediction"), nullptr);
}

TEST(Fuzz, CorpusIsValid) {
  frontend::ElaborateOptions options;
  options.batch = 4;
  for (const char *source : kCorpus) {
    Compiled c = compileModel(source, options);
    EXPECT_NE(c.graph, nullptr) << source << c.diagnostics;
  }
}

TEST(Fuzz, EveryTruncation) {
  Outcomes outcomes;
  for (const char *source : kCorpus) {
    std::string text = source;
    for (size_t length = 0; length <= text.size(); ++length) {
      checkInvariants(text.substr(0, length), 4, outcomes);
      if (testing::Test::HasFatalFailure())
        return;
    }
  }
  // Cut after its last '}', a model is whole again.
  EXPECT_GT(outcomes.graphs, 0);
  EXPECT_GT(outcomes.syntaxErrors, 500);
}

TEST(Fuzz, RandomMutations) {
  const char *fragments[] = {
      "(",      ")",     "{",        "}",      "[",          "]",
      ",",      ";",     "=",        "@",      "^T",         "^",
      "-",      "*",     "/",        "+",      "\n",         "#",
      "relu",   "batch", "none",     "x",      "W",          "h",
      "0",      "1.5",   "-1",       "1e400",  "repeat 2 {", "block b()(x) {",
      "model",  "block", "out",      "loss",   "param",      "input",
      "target", ":",     "f32[",     "i32[2]", "dense(",     ")(",
      "$",      "\t",    "\xce\xbb", "\x01",   "\xff"};
  Outcomes outcomes;
  std::mt19937 random(20240611);
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random); };
  for (int round = 0; round < 3000; ++round) {
    std::string text = kCorpus[pick(std::size(kCorpus))];
    int edits = 1 + static_cast<int>(pick(3));
    for (int e = 0; e < edits && !text.empty(); ++e) {
      size_t at = pick(text.size());
      switch (pick(6)) {
      case 0: // delete a run
        text.erase(at, 1 + pick(8));
        break;
      case 1: // insert a fragment
        text.insert(at, fragments[pick(std::size(fragments))]);
        break;
      case 2: // replace a character
        text[at] = static_cast<char>(pick(256));
        break;
      case 3: { // duplicate a run
        std::string run = text.substr(at, 1 + pick(20));
        text.insert(pick(text.size()), run);
        break;
      }
      case 4: { // swap two lines
        std::vector<std::string> lines;
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);)
          lines.push_back(line);
        std::swap(lines[pick(lines.size())], lines[pick(lines.size())]);
        text.clear();
        for (const std::string &line : lines)
          text += line + "\n";
        break;
      }
      case 5: { // change a digit: shapes and probabilities stop fitting
        size_t digit = text.find_first_of("0123456789", at);
        if (digit != std::string::npos)
          text[digit] = static_cast<char>('0' + pick(10));
        break;
      }
      }
    }
    checkInvariants(text, round % 2 ? std::optional<int64_t>(4) : std::nullopt, outcomes);
    if (testing::Test::HasFatalFailure())
      return;
  }
  EXPECT_GT(outcomes.syntaxErrors, 300);
  EXPECT_GT(outcomes.semanticErrors, 200);
  EXPECT_GT(outcomes.graphs, 100);
  std::cout << "mutations: " << outcomes.syntaxErrors << " syntax errors, "
            << outcomes.semanticErrors << " semantic errors, " << outcomes.graphs << " graphs\n";
}

} // namespace
