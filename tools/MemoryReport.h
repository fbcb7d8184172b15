//===- tools/MemoryReport.h - gradc show --stage=memory --------*- C++ -*-===//
#pragma once

#include <cstdint>
#include <iosfwd>

namespace gradc::ir {
class Graph;
}

namespace gradc::tool {

struct MemorySummary {
  int64_t arenaBytes = 0;           ///< the arena codegen allocates (the plan's peak)
  int64_t lowerBoundBytes = 0;      ///< most bytes live at one point of the schedule
  int64_t noReuseBytes = 0;         ///< one buffer per value
  int64_t keptForBackwardBytes = 0; ///< forward values whose last use is in backward
};

MemorySummary summarizeMemory(const ir::Graph &graph);
/// Every arena buffer with bytes, offset and live range, then the summary.
/// `storingMasks`, when given, is the same step with its dropout masks kept
/// alive from forward to backward: the report then states the saving.
void printMemoryReport(const ir::Graph &graph, std::ostream &out,
                       const ir::Graph *storingMasks = nullptr);

} // namespace gradc::tool
