//===- tools/NumericGuard.h - Why did a step go NaN? ------------*- C++ -*-===//
//
// When a training step's loss turns NaN or Inf, the runtime replays the
// epoch up to that step and hands us the exact state it started from
// (rt::StepReplay).  We run the step again in the reference interpreter,
// in double, and name the first value, in schedule order, that is not
// finite or does not fit in a float: the op and the model line where the
// trouble starts, and the parameters whose gradients it reaches.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <string>

namespace gradc {
class SourceManager;
namespace ir {
class Graph;
}
namespace rt {
struct StepReplay;
}
} // namespace gradc

namespace gradc::tool {

/// The diagnosis of the step in `replay` with `trainGraph` (the training
/// graph before simplification: its names are the ones dumps show).
std::string diagnoseStep(const ir::Graph &trainGraph, const SourceManager &sources,
                         const rt::StepReplay &replay);

} // namespace gradc::tool
