//===- passes/SinkMaps.cpp - Elementwise maps moved next to their user ----===//
//
// Codegen fuses runs of consecutive elementwise maps of one shape into one
// loop (codegen/Lowering.cpp).  Autodiff and the optimizer pass leave some
// maps far from the map that reads them: the weight decay of a gradient,
//
//   %ds_dW2 = scale %W2                 (backward, right after dL_dW2)
//   %dJ_dW2 = add %dL_dW2, %ds_dW2
//   ... the backward pass of the layers below ...
//   %W2.velocity.next = add %W2.velocity.decayed, %dJ_dW2   (update)
//
// so the gradient with its weight decay is one loop and the optimizer step
// another, and dJ_dW2 makes a round trip through memory.  This pass moves
// such a map, with the maps that only it reads, to just before its user:
// then gradient, weight decay, momentum and update are one pass over the
// weight.  It changes program order only, never what is computed.
//
// A map (with its tree) moves when
//   - it is an f32 elementwise op of its user's shape, its user is one too,
//     and it has no other user and is not a result of the graph;
//   - no update between its old place and its user writes a value it reads
//     (it would read the new one);
//   - the temporaries whose last reader it is, which now live on to the
//     user, take no more bytes than it, which no longer lives from its old
//     place to the user.  (The maps' own values still get slots where they
//     now are, since the memory plan is made before fusion keeps them in
//     registers: the arena can grow; README, "Kernel ABI".)
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

bool isMap(const Node &node) { return node.isElementwise() && node.type.dtype == DType::F32; }

class SinkMapsPass final : public Pass {
public:
  std::string_view name() const override { return "sink-maps"; }

  bool run(Graph &graph, Diagnostics &) override {
    users_.clear();
    results_.clear();
    for (const auto &owned : graph.nodes())
      for (const Node *operand : distinctOperands(*owned))
        users_[operand].push_back(owned.get());
    for (const GraphOutput &out : graph.outputs)
      results_.insert(out.value);

    std::vector<Node *> order;
    for (const auto &owned : graph.nodes())
      order.push_back(owned.get());
    for (Node *user : order) {
      if (!isMap(*user))
        continue;
      for (Node *operand : distinctOperands(*user)) {
        std::vector<Node *> tree;
        if (!collect(operand, *user, tree))
          continue;
        std::sort(tree.begin(), tree.end(), [&](const Node *a, const Node *b) {
          return graph.indexOf(a) < graph.indexOf(b);
        });
        if (alreadyNext(graph, tree, *user) || !safeToSink(graph, tree, *user) ||
            !memoryNeutral(graph, tree, *operand, *user))
          continue;
        for (Node *node : tree) // in program order, so the tree keeps its own
          graph.moveBefore(node, user);
      }
    }
    return true;
  }

private:
  static std::vector<Node *> distinctOperands(const Node &node) {
    std::vector<Node *> result;
    for (Node *operand : node.operands)
      if (std::find(result.begin(), result.end(), operand) == result.end())
        result.push_back(operand);
    return result;
  }

  bool onlyReadBy(const Node &node, const Node &reader) const {
    auto it = users_.find(&node);
    return it != users_.end() && it->second.size() == 1 && it->second.front() == &reader &&
           !results_.count(&node);
  }

  /// `node` and, recursively, the maps of its shape that only it reads:
  /// what moves with it.  False when `node` itself cannot move.
  bool collect(Node *node, const Node &reader, std::vector<Node *> &tree) const {
    if (!isMap(*node) || node->type != reader.type || !onlyReadBy(*node, reader))
      return false;
    tree.push_back(node);
    for (Node *operand : distinctOperands(*node))
      collect(operand, *node, tree);
    return true;
  }

  /// Whether the tree already sits right before its user.
  static bool alreadyNext(const Graph &graph, const std::vector<Node *> &tree, const Node &user) {
    size_t at = graph.indexOf(&user);
    for (auto it = tree.rbegin(); it != tree.rend(); ++it)
      if (graph.indexOf(*it) != --at)
        return false;
    return true;
  }

  /// No update between the tree's first node and its user writes a value
  /// the tree reads.
  bool safeToSink(const Graph &graph, const std::vector<Node *> &tree, const Node &user) const {
    std::unordered_set<const Node *> read;
    for (const Node *node : tree)
      for (const Node *operand : node->operands)
        read.insert(operand);
    for (size_t i = graph.indexOf(tree.front()) + 1, end = graph.indexOf(&user); i < end; ++i) {
      const Node &node = *graph.nodes()[i];
      if (node.is(OpKind::Update) && read.count(node.operands[0]))
        return false;
    }
    return true;
  }

  /// The temporaries (not leaves, which live in their own buffers) that a
  /// tree member reads last live on to the user: together no more bytes
  /// than the root, which no longer lives from its old place to the user.
  bool memoryNeutral(const Graph &graph, const std::vector<Node *> &tree, const Node &root,
                     const Node &user) const {
    std::unordered_set<const Node *> members(tree.begin(), tree.end());
    const size_t userAt = graph.indexOf(&user);
    int64_t extended = 0;
    std::unordered_set<const Node *> seen;
    for (const Node *node : tree)
      for (const Node *operand : node->operands) {
        if (members.count(operand) || operand->isLeaf() || !seen.insert(operand).second)
          continue;
        bool readAfterUser = results_.count(operand) != 0;
        for (const Node *reader : users_.at(operand))
          readAfterUser =
              readAfterUser || (!members.count(reader) && graph.indexOf(reader) > userAt);
        if (!readAfterUser)
          extended += operand->type.bytes();
      }
    return extended <= root.type.bytes();
  }

  std::unordered_map<const Node *, std::vector<Node *>> users_;
  std::unordered_set<const Node *> results_;
};

} // namespace

std::unique_ptr<Pass> createSinkMapsPass() { return std::make_unique<SinkMapsPass>(); }

} // namespace gradc::passes
