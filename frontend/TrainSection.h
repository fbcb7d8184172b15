//===- frontend/TrainSection.h - The model's train { } settings -*- C++ -*-===//
#pragma once

#include "frontend/Frontend.h"

namespace gradc::ir {
struct OptimizerConfig;
}

namespace gradc::frontend {

/// Interprets the `train { ... }` section of `model` (if any) into
/// `settings` and the graph's optimizer configuration.  Reports every bad
/// setting at its position; returns false if there was one.
bool readTrainSection(const ast::Model &model, Diagnostics &diags, TrainSettings &settings,
                      ir::OptimizerConfig &optimizer);

} // namespace gradc::frontend
