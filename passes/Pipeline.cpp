//===- passes/Pipeline.cpp - The pass registry and the pipeline -----------===//
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "passes/Pass.h"

#include <fmt/format.h>
#include <ostream>

namespace gradc::passes {

static const PassInfo kPasses[] = {
#define GRADC_PASS(Name, Factory, Description) PassInfo{Name, Description, &Factory},
#include "passes/Passes.def"
};

std::span<const PassInfo> allPasses() { return kPasses; }

const PassInfo *findPass(std::string_view name) {
  for (const PassInfo &info : kPasses)
    if (name == info.name)
      return &info;
  return nullptr;
}

std::vector<std::string> splitPassList(std::string_view list) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string_view piece =
        list.substr(start, comma == std::string_view::npos ? list.size() - start : comma - start);
    while (!piece.empty() && piece.front() == ' ')
      piece.remove_prefix(1);
    while (!piece.empty() && piece.back() == ' ')
      piece.remove_suffix(1);
    if (!piece.empty())
      names.emplace_back(piece);
    if (comma == std::string_view::npos)
      break;
    start = comma + 1;
  }
  return names;
}

std::vector<std::string> trainPipeline() { return {"dropout", "l2", "autodiff", "optimizer"}; }
std::vector<std::string> gradientPipeline() { return {"dropout", "l2", "autodiff"}; }
std::vector<std::string> optimizePipeline() {
  return {"simplify", "hoist-masks", "recompute-masks", "sink-maps", "sink-penalty"};
}
std::vector<std::string> inferencePipeline() { return {"dropout-infer", "simplify"}; }

bool runPipeline(ir::Graph &graph, std::span<const std::string> passNames, Diagnostics &diags,
                 const PipelineOptions &options) {
  std::vector<const PassInfo *> passes;
  bool unknown = false;
  for (const std::string &name : passNames) {
    const PassInfo *info = findPass(name);
    if (!info) {
      std::vector<std::string> known;
      for (const PassInfo &pass : kPasses)
        known.push_back(pass.name);
      diags.error(
          fmt::format("unknown pass '{}'; the passes are: {}", name, fmt::join(known, ", ")));
      unknown = true;
    }
    passes.push_back(info);
  }
  if (unknown)
    return false;
  ir::PrintOptions printOptions;
  printOptions.locations = options.printLocations;
  for (const PassInfo *info : passes) {
    std::string before = options.printAfterEach ? ir::toString(graph, printOptions) : "";
    std::unique_ptr<Pass> pass = info->create();
    if (!pass->run(graph, diags))
      return false;
    if (options.verifyEach && !ir::verify(graph, diags)) {
      diags.error(
          fmt::format("internal error: the graph is malformed after pass '{}'", info->name));
      return false;
    }
    if (options.printAfterEach) {
      std::string after = ir::toString(graph, printOptions);
      *options.printAfterEach << fmt::format("// ----- after {}{} -----\n", info->name,
                                             after == before ? " (unchanged)" : "");
      if (after != before)
        *options.printAfterEach << after;
    }
  }
  return true;
}

} // namespace gradc::passes
