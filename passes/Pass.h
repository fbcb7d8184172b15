//===- passes/Pass.h - Graph passes, their registry and the pipeline -*- C++ -*-===//
//
// A pass transforms an ir::Graph in place.  Every pass lives in its own file
// with its class private to that file and is created through the factory
// named in passes/Passes.def, which is the one list of passes: it gives
// `gradc opt --pass=dropout,l2,autodiff` and `--help` their names.
//
// The pipeline is a plain list of pass names run in order; it can print the
// graph after every pass and says "(unchanged)" when a pass did nothing.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gradc {
class Diagnostics;
namespace ir {
class Graph;
}
} // namespace gradc

namespace gradc::passes {

class Pass {
public:
  virtual ~Pass() = default;
  virtual std::string_view name() const = 0;
  /// Transforms `graph`.  Returns false after reporting an error through
  /// `diags` (at the location of the node concerned); never aborts on a
  /// user's graph.
  virtual bool run(ir::Graph &graph, Diagnostics &diags) = 0;
};

struct PassInfo {
  const char *name;
  const char *description;
  std::unique_ptr<Pass> (*create)();
};

/// Every registered pass, in passes/Passes.def order.
std::span<const PassInfo> allPasses();
const PassInfo *findPass(std::string_view name);

// The factories, one per pass file.
#define GRADC_PASS(Name, Factory, Description) std::unique_ptr<Pass> Factory();
#include "passes/Passes.def"

struct PipelineOptions {
  std::ostream *printAfterEach = nullptr; ///< print the graph after each pass
  bool printLocations = true;
  bool verifyEach = true; ///< run the verifier after every pass
};

/// Runs the named passes in order.  An unknown name is reported (with the
/// list of known ones) before anything runs.  Returns false on the first
/// pass that fails.
bool runPipeline(ir::Graph &graph, std::span<const std::string> passNames, Diagnostics &diags,
                 const PipelineOptions &options = {});

/// The standard pipelines behind `gradc show --stage=...`.
std::vector<std::string> trainPipeline();     ///< dropout, l2, autodiff, optimizer
std::vector<std::string> gradientPipeline();  ///< dropout, l2, autodiff (no update)
std::vector<std::string> optimizePipeline();  ///< simplify, recompute-masks
std::vector<std::string> inferencePipeline(); ///< dropout-infer, simplify

/// Splits "a,b,c" into names (empty pieces dropped).
std::vector<std::string> splitPassList(std::string_view list);

} // namespace gradc::passes
