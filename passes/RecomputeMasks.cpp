//===- passes/RecomputeMasks.cpp - Dropout masks recomputed in backward ----===//
//
// A dropout mask is a pure function of (seed, step, stream): it has no
// operands.  Keeping the forward pass's mask alive until the backward pass
// reads it costs one activation-sized buffer per dropout for most of the
// step; drawing it again right where the backward pass needs it costs a
// few Philox rounds per element, far less than the matmuls around it.
// This pass gives each mask that backward ops read a second copy in the
// backward phase, placed just before its first backward user, so the
// memory plan can free the forward copy as soon as the forward product
// has used it.  Run it after simplify, whose common-subexpression
// elimination would merge the two copies back into one.
//
//===----------------------------------------------------------------------===//
#include "ir/Graph.h"
#include "passes/Pass.h"

namespace gradc::passes {
namespace {

using namespace ir;

class RecomputeMasksPass final : public Pass {
public:
  std::string_view name() const override { return "recompute-masks"; }

  bool run(Graph &graph, Diagnostics &) override {
    for (Node *mask : graph.nodesOfKind(OpKind::DropoutMask)) {
      if (mask->phase != Phase::Forward)
        continue;
      std::vector<Node *> later;
      for (Node *user : graph.users(mask))
        if (user->phase != Phase::Forward)
          later.push_back(user);
      if (later.empty())
        continue;
      Node *first = later.front();
      for (Node *user : later)
        if (graph.indexOf(user) < graph.indexOf(first))
          first = user;
      graph.setInsertionPoint(first);
      graph.setPhase(first->phase);
      Node *again = graph.create(OpKind::DropoutMask, {}, mask->type, mask->attrs,
                                 mask->name + ".again", mask->loc);
      graph.setInsertionPoint(nullptr);
      graph.setPhase(Phase::Forward);
      for (Node *user : later)
        for (Node *&operand : user->operands)
          if (operand == mask)
            operand = again;
    }
    return true;
  }
};

} // namespace

std::unique_ptr<Pass> createRecomputeMasksPass() { return std::make_unique<RecomputeMasksPass>(); }

} // namespace gradc::passes
