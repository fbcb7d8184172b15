//===- tools/MemoryReport.cpp - gradc show --stage=memory -----------------===//
//
// The memory plan of the training step and of inference, as codegen uses
// it (passes/MemoryPlan.h): every arena buffer with its bytes and live
// range, the forward values kept alive for the backward pass (lecture 2.6:
// "training requires significantly more memory than plain prediction"),
// the peak against the lower bound of the schedule, and how the peak grows
// with the batch size.
//
//===----------------------------------------------------------------------===//
#include "tools/MemoryReport.h"
#include "ir/Graph.h"
#include "passes/MemoryPlan.h"
#include "tools/Driver.h"

#include <algorithm>
#include <fmt/format.h>
#include <ostream>

namespace gradc::tool {

namespace {

std::string bytesStr(int64_t bytes) {
  if (bytes < 10 * 1024)
    return fmt::format("{} B", bytes);
  if (bytes < 10 * 1024 * 1024)
    return fmt::format("{:.1f} KiB", bytes / 1024.0);
  return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024.0));
}

} // namespace

MemorySummary summarizeMemory(const ir::Graph &graph) {
  passes::MemoryPlan plan = passes::planMemory(graph);
  MemorySummary summary;
  summary.arenaBytes = plan.arenaBytes;
  summary.noReuseBytes = plan.noReuseBytes;
  // The lower bound: the most bytes of arena values live at one point.
  const auto &nodes = graph.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    int64_t live = 0;
    for (const auto &p : plan.buffers)
      if (!p.external && p.firstDef <= i && i <= p.lastUse)
        live += p.bytes;
    summary.lowerBoundBytes = std::max(summary.lowerBoundBytes, live);
  }
  for (const auto &p : plan.buffers) {
    if (p.external)
      continue;
    const ir::Node *node = p.value;
    bool keptForBackward =
        node->phase == ir::Phase::Forward && nodes[p.lastUse]->phase != ir::Phase::Forward;
    if (keptForBackward)
      summary.keptForBackwardBytes += p.bytes;
  }
  return summary;
}

void printMemoryReport(const ir::Graph &graph, std::ostream &out, const ir::Graph *storingMasks) {
  passes::MemoryPlan plan = passes::planMemory(graph);
  const auto &nodes = graph.nodes();
  out << fmt::format("memory plan of @{} ({}): {} ops\n", graph.name, ir::graphKindName(graph.kind),
                     nodes.size());
  out << fmt::format("  {:<28} {:>12} {:>10} {:>11}  {}\n", "value", "bytes", "offset", "live", "");
  int64_t external = 0;
  for (const auto &p : plan.buffers) {
    const ir::Node *node = p.value;
    if (p.external) {
      external += p.bytes;
      continue;
    }
    bool kept = node->phase == ir::Phase::Forward && nodes[p.lastUse]->phase != ir::Phase::Forward;
    std::string note = kept ? "kept for backward" : "";
    if (node->is(ir::OpKind::DropoutMask))
      note += std::string(note.empty() ? "" : "; ") +
              (node->phase == ir::Phase::Forward ? "dropout mask"
                                                 : "dropout mask drawn again for backward");
    out << fmt::format("  {:<28} {:>12} {:>10} {:>5}-{:<5}  {}\n", "%" + node->name, p.bytes,
                       p.offset, p.firstDef, p.lastUse, note);
  }
  MemorySummary summary = summarizeMemory(graph);
  out << fmt::format("  arena peak {} ({} bytes); lower bound of this schedule {}; without "
                     "reuse {}\n",
                     bytesStr(summary.arenaBytes), summary.arenaBytes,
                     bytesStr(summary.lowerBoundBytes), bytesStr(summary.noReuseBytes));
  out << fmt::format("  forward values kept alive for the backward pass: {}\n",
                     bytesStr(summary.keptForBackwardBytes));
  const bool drawnAgain = std::any_of(nodes.begin(), nodes.end(), [](const auto &node) {
    return node->is(ir::OpKind::DropoutMask) && node->phase != ir::Phase::Forward;
  });
  if (storingMasks && !drawnAgain)
    out << "  dropout masks kept for the backward pass: drawing them again would not lower the "
           "peak (recompute-masks)\n";
  if (storingMasks && drawnAgain) {
    MemorySummary stored = summarizeMemory(*storingMasks);
    out << fmt::format("  dropout masks drawn again in the backward pass instead of kept: "
                       "forward values kept {} instead of {}; peak {} instead of {}\n",
                       bytesStr(summary.keptForBackwardBytes),
                       bytesStr(stored.keptForBackwardBytes), bytesStr(summary.arenaBytes),
                       bytesStr(stored.arenaBytes));
  }
  out << fmt::format("  caller buffers (inputs, parameters, state, results): {}\n",
                     bytesStr(external));
}

} // namespace gradc::tool
