//===- passes/Verify.cpp - The verifier as a pass -------------------------===//
//
// So `gradc opt --pass=...,verify` can check a graph at any point.
//
//===----------------------------------------------------------------------===//
#include "ir/Verifier.h"
#include "passes/Pass.h"

namespace gradc::passes {
namespace {
class VerifyPass final : public Pass {
public:
  std::string_view name() const override { return "verify"; }
  bool run(ir::Graph &graph, Diagnostics &diags) override { return ir::verify(graph, diags); }
};
} // namespace

std::unique_ptr<Pass> createVerifyPass() { return std::make_unique<VerifyPass>(); }

} // namespace gradc::passes
