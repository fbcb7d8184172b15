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
void printMemoryReport(const ir::Graph &graph, std::ostream &out);

} // namespace gradc::tool
