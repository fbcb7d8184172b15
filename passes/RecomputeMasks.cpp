//===- passes/RecomputeMasks.cpp - Dropout masks recomputed in backward ----===//
//
// A dropout mask is a pure function of (seed, step, stream): it has no
// operands.  Keeping the forward pass's mask alive until the backward pass
// reads it costs one activation-sized buffer per dropout for the middle of
// the step; drawing it again right where the backward pass needs it costs
// a pass of Philox rounds and a buffer write.  Which is better depends on
// where the step's memory peaks: when the peak is where the forward pass
// hands over to the backward pass (all its kept values alive), a kept mask
// raises it; when the peak is elsewhere (in the MLPs of bench/, the update
// of the first layer, after the masks are dead), recomputing saves no
// memory and only costs time (two of the four Philox passes of the fashion
// model's step, ~1.7% of its profile).  So each mask that backward ops read
// gets a second copy, placed just before its first backward user, only if
// the memory plan's arena is then smaller; masks are tried one at a time,
// in program order, each against the plan with the choices made so far.
// Run it after simplify, whose common-subexpression elimination would merge
// the two copies back into one.
//
//===----------------------------------------------------------------------===//
#include "ir/Graph.h"
#include "passes/MemoryPlan.h"
#include "passes/Pass.h"

namespace gradc::passes {
namespace {

using namespace ir;

/// The ops outside the forward pass that read `mask`.
std::vector<Node *> backwardUsers(const Graph &graph, Node *mask) {
  std::vector<Node *> later;
  for (Node *user : graph.users(mask))
    if (user->phase != Phase::Forward)
      later.push_back(user);
  return later;
}

/// Gives the backward users of forward mask `mask` a copy drawn just
/// before the first of them.
void drawAgain(Graph &graph, Node *mask) {
  std::vector<Node *> later = backwardUsers(graph, mask);
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

class RecomputeMasksPass final : public Pass {
public:
  std::string_view name() const override { return "recompute-masks"; }

  bool run(Graph &graph, Diagnostics &) override {
    std::vector<Node *> candidates;
    for (Node *mask : graph.nodesOfKind(OpKind::DropoutMask))
      if (mask->phase == Phase::Forward && !backwardUsers(graph, mask).empty())
        candidates.push_back(mask);
    if (candidates.empty())
      return true;
    int64_t peak = planMemory(graph).arenaBytes;
    for (Node *mask : candidates) {
      std::unique_ptr<Graph> trial = graph.clone();
      drawAgain(*trial, trial->nodes()[graph.indexOf(mask)].get());
      int64_t trialPeak = planMemory(*trial).arenaBytes;
      if (trialPeak < peak) {
        drawAgain(graph, mask);
        peak = trialPeak;
      }
    }
    return true;
  }
};

} // namespace

std::unique_ptr<Pass> createRecomputeMasksPass() { return std::make_unique<RecomputeMasksPass>(); }

} // namespace gradc::passes
