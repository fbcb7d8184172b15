//===- test/unit/frontend/FrontendTestUtil.h - Compiling model text -------===//
//
// Runs the frontend on model source held in a string and keeps what a test
// looks at: the diagnostics as printed, the AST and the forward graph.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "frontend/Frontend.h"
#include "ir/Diagnostics.h"
#include "ir/Graph.h"

#include <memory>
#include <optional>
#include <sstream>
#include <string>

namespace gradc::test {

struct Compiled {
  std::unique_ptr<frontend::ast::File> ast;
  std::unique_ptr<ir::Graph> graph;
  std::string diagnostics; ///< everything printed, errors and notes
  unsigned errors = 0;
};

/// The source manager every test file is registered with; it lives as long
/// as the test binary, so locations in ASTs and graphs stay printable.
inline SourceManager &testSources() {
  static SourceManager sources;
  return sources;
}

/// Parses `source` as file `fileName` and, when that succeeded and
/// `elaborateToo`, elaborates it with `options`.
inline Compiled compileModel(const std::string &source, frontend::ElaborateOptions options = {},
                             const std::string &fileName = "test.grad", bool elaborateToo = true) {
  Compiled result;
  const std::string *file = testSources().add(fileName, source);
  std::ostringstream out;
  Diagnostics diags(&testSources(), out);
  result.ast = frontend::parseModelFile(testSources().text(file), file, diags);
  if (result.ast && elaborateToo)
    result.graph = frontend::elaborate(*result.ast, options, diags);
  result.diagnostics = out.str();
  result.errors = diags.errorCount();
  return result;
}

/// Only the parser.
inline Compiled parseModel(const std::string &source, const std::string &fileName = "test.grad") {
  return compileModel(source, {}, fileName, false);
}

/// The first line of the diagnostics: "file:line:col: error: message".
inline std::string firstDiagnostic(const Compiled &compiled) {
  return compiled.diagnostics.substr(0, compiled.diagnostics.find('\n'));
}

/// The canonical source of an AST.
inline std::string printed(const frontend::ast::File &file) {
  std::ostringstream out;
  frontend::printAst(file, out);
  return out.str();
}

} // namespace gradc::test
