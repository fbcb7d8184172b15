//===- frontend/Frontend.h - Model files to the forward graph --*- C++ -*-===//
//
// A model file (.grad) is parsed into an AST (frontend/AST.h), which is
// elaborated into the forward ir::Graph: blocks instantiated with
// hierarchical parameter names, `batch` resolved, shapes inferred and
// checked, each node carrying the location of the model line it comes from.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace gradc {
class Diagnostics;
namespace ir {
class Graph;
}
} // namespace gradc

namespace gradc::frontend {

namespace ast {
struct File;
}

/// Parses a model file.  Reports every syntax error it can find (it
/// recovers at the end of a statement and at '}'); returns nullptr if there
/// was any.
std::unique_ptr<ast::File> parseModelFile(std::string_view text, const std::string *fileName,
                                          Diagnostics &diags);

/// Prints the AST as canonical model source: every expression fully
/// parenthesised, one statement a line.  parseModelFile reads it back.
void printAst(const ast::File &file, std::ostream &out);

/// The model's `train { ... }` section: defaults for the driver, which
/// command-line flags override.  Unset fields were not written.
struct TrainSettings {
  std::optional<int64_t> batch, epochs;
  std::optional<uint64_t> seed;
  std::optional<double> lr;          ///< from optimizer = sgd(lr = ...) or lr = ...
  std::string schedule = "constant"; ///< constant | step | cosine
  double stepSize = 1, gamma = 0.1;  ///< step(step_size = epochs, gamma = factor)
  double lrMin = 0;                  ///< cosine(lr_min = ...)
};

struct ElaborateOptions {
  std::string model;                 ///< which model to elaborate; empty: the file's only model
  std::optional<int64_t> batch;      ///< overrides the train section's batch size
  TrainSettings *settings = nullptr; ///< receives the train section when not null
};

/// Builds the forward graph (GraphKind::Forward) of one model: inputs,
/// targets, params (with init, fan_in, fan_out from their role in matmuls),
/// the computation, the loss as the result "loss" and the model's output as
/// "prediction".  Dropout stays a `dropout` op; the dropout and l2 passes
/// lower it and add weight decay.  Reports every error found; returns
/// nullptr if there was any.
std::unique_ptr<ir::Graph> elaborate(const ast::File &file, const ElaborateOptions &options,
                                     Diagnostics &diags);

} // namespace gradc::frontend

// Needed by std::unique_ptr<ast::File>'s destructor in users.
#include "frontend/AST.h"
