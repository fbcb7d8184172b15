//===- passes/SinkPenalty.cpp - Weight decay's sums next to the updates ---===//
//
// The l2 pass computes the objective J = L + lambda/2 * sum ||W||^2 where
// the loss is, in the forward pass: one sum of squares per weight, each a
// pass over the whole weight, long before the optimizer's update reads
// that weight again.  On the L model (bench/models/l.grad) the two big
// ones were 1.4% of the step, their own parallel loops over 7.4 MB.
//
// Nothing but J reads these sums (autodiff writes the penalty's gradient
// as lambda * W directly), so they can wait: this pass moves each sum of
// squares of a weight to just after the last map of the weight's update
// chain that reads the weight (W - step), which is before the update
// writes it, so the sum still sees the weight of this step.  Codegen then
// adds it up in that chain's fused loop (codegen/Lowering.cpp, "Elementwise
// fusion"), which reads each element of the weight anyway; where the chain
// is instead the epilogue of the weight's gradient product, codegen
// computes the sum before the product.  The scalar arithmetic that
// combines the sums into J moves to the end of the step.  Program order
// only: every value is computed from the same operands as before.
//
// A sum moves when its operand is a leaf with an update later in the graph
// and the operand's last reader before that update is a map of its shape;
// the scalars move when everything that reads them moves too (or is a
// result), and no update writes what they read.  Otherwise nothing moves.
//
//===----------------------------------------------------------------------===//
#include "ir/Graph.h"
#include "passes/Pass.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace gradc::passes {
namespace {

using namespace ir;

class SinkPenaltyPass final : public Pass {
public:
  std::string_view name() const override { return "sink-penalty"; }

  bool run(Graph &graph, Diagnostics &) override {
    std::unordered_map<const Node *, std::vector<Node *>> users;
    std::unordered_set<const Node *> updated; // leaves some update writes
    for (const auto &owned : graph.nodes()) {
      for (Node *operand : owned->operands)
        users[operand].push_back(owned.get());
      if (owned->is(OpKind::Update))
        updated.insert(owned->operands[0]);
    }
    std::unordered_set<const Node *> results;
    for (const GraphOutput &out : graph.outputs)
      results.insert(out.value);

    // Where each sum of squares would go: after `after`.
    std::vector<std::pair<Node *, Node *>> sums;
    std::unordered_set<const Node *> moving;
    for (const auto &owned : graph.nodes()) {
      Node *sum = owned.get();
      if (!sum->is(OpKind::SumSq) || results.count(sum))
        continue;
      if (Node *after = lastMapBeforeUpdate(graph, *sum, users)) {
        sums.emplace_back(sum, after);
        moving.insert(sum);
      }
    }
    if (sums.empty())
      return true;

    // The scalars that combine the sums into the objective, in program
    // order: everything that reads a moving node, transitively.
    std::vector<Node *> tail;
    for (const auto &owned : graph.nodes()) {
      Node *node = owned.get();
      if (moving.count(node))
        continue;
      bool readsMoving = std::any_of(node->operands.begin(), node->operands.end(),
                                     [&](const Node *o) { return moving.count(o) != 0; });
      if (!readsMoving)
        continue;
      if (node->type.rank() != 0 || node->is(OpKind::Update) || node->isLeaf())
        return true; // something else needs a sum where it is now
      for (const Node *operand : node->operands)
        if (operand->isLeaf() && updated.count(operand))
          return true; // would read the updated value at the end
      tail.push_back(node);
      moving.insert(node);
    }

    for (auto [sum, after] : sums)
      if (graph.indexOf(sum) != graph.indexOf(after) + 1)
        graph.moveBefore(sum, graph.nodes()[graph.indexOf(after) + 1].get());
    for (Node *node : tail) // in program order: the tail keeps its own
      graph.moveToEnd(node);
    return true;
  }

private:
  /// The last reader of `sum`'s operand before the operand's update, when
  /// it is a map of the operand's shape (the update chain's `W - step`):
  /// the sum goes right after it.  Null otherwise.
  static Node *
  lastMapBeforeUpdate(const Graph &graph, const Node &sum,
                      const std::unordered_map<const Node *, std::vector<Node *>> &users) {
    const Node *weight = sum.operands[0];
    if (!weight->isLeaf() || weight->type.dtype != DType::F32)
      return nullptr;
    const size_t at = graph.indexOf(&sum);
    size_t update = 0;
    for (const Node *user : users.at(weight)) {
      if (!user->is(OpKind::Update) || user->operands[0] != weight)
        continue;
      size_t where = graph.indexOf(user);
      if (where < at)
        return nullptr; // the sum reads an updated value
      update = update ? std::min(update, where) : where;
    }
    if (!update)
      return nullptr;
    Node *last = nullptr;
    for (Node *user : users.at(weight)) {
      size_t where = graph.indexOf(user);
      if (user != &sum && where < update && (!last || where > graph.indexOf(last)))
        last = user;
    }
    return last && isMapOf(*last, *weight) ? last : nullptr;
  }

  static bool isMapOf(const Node &node, const Node &weight) {
    return node.isElementwise() && node.type.dtype == DType::F32 &&
           node.type.shape == weight.type.shape;
  }
};

} // namespace

std::unique_ptr<Pass> createSinkPenaltyPass() { return std::make_unique<SinkPenaltyPass>(); }

} // namespace gradc::passes
