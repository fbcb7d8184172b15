//===- passes/HoistMasks.cpp - Dropout masks drawn before their product ---===//
//
// Codegen runs the elementwise maps that follow a matrix product inside
// the product's tiles, while the tile is still in registers (the product's
// epilogue, codegen/Lowering.cpp): bias, activation and dropout in the
// forward pass, the mask and the activation's derivative in the backward
// pass.  Everything such an epilogue reads must exist when the product
// runs, but the dropout pass draws a mask where the dropout was written,
// after the product and its bias:
//
//   %dense1.matmul = matmul %x, %dense1.W {transpose_b}
//   %dense1.add = add %dense1.matmul, %dense1.b
//   %h.1.mask = dropout_mask {p=0.2, stream=0}
//   %h = relu %dense1.add
//   %h.1 = mul %h, %h.1.mask
//
// This pass moves each mask to just before the latest product that its
// first user reads through elementwise maps of its own shape, so the whole
// chain (add, relu, mul) can become the product's epilogue.  A mask has no
// operands, so it may move anywhere earlier; it changes program order
// only, never what is computed (the mask depends on its stream and the
// step, not on where it is drawn).  The mask lives a few nodes longer: the
// memory plan, made after this pass, accounts for it.
//
//===----------------------------------------------------------------------===//
#include "ir/Graph.h"
#include "passes/Pass.h"

#include <algorithm>
#include <unordered_set>

namespace gradc::passes {
namespace {

using namespace ir;

class HoistMasksPass final : public Pass {
public:
  std::string_view name() const override { return "hoist-masks"; }

  bool run(Graph &graph, Diagnostics &) override {
    for (Node *mask : graph.nodesOfKind(OpKind::DropoutMask)) {
      std::vector<Node *> users = graph.users(mask);
      if (users.empty())
        continue;
      Node *first = *std::min_element(users.begin(), users.end(), [&](Node *a, Node *b) {
        return graph.indexOf(a) < graph.indexOf(b);
      });
      Node *product = latestProductBehind(graph, *first, mask->type);
      if (product && graph.indexOf(product) < graph.indexOf(mask))
        graph.moveBefore(mask, product);
    }
    return true;
  }

private:
  /// The latest matmul that `user` reads through elementwise maps of
  /// `type` (the chain an epilogue can take in), or null.
  static Node *latestProductBehind(const Graph &graph, Node &user, const Type &type) {
    Node *latest = nullptr;
    std::vector<Node *> work = {&user};
    std::unordered_set<const Node *> seen;
    while (!work.empty()) {
      Node *node = work.back();
      work.pop_back();
      if (!seen.insert(node).second)
        continue;
      for (Node *operand : node->operands) {
        if (operand->type != type)
          continue;
        if (operand->is(OpKind::MatMul)) {
          if (!latest || graph.indexOf(operand) > graph.indexOf(latest))
            latest = operand;
        } else if (operand->isElementwise()) {
          work.push_back(operand);
        }
      }
    }
    return latest;
  }
};

} // namespace

std::unique_ptr<Pass> createHoistMasksPass() { return std::make_unique<HoistMasksPass>(); }

} // namespace gradc::passes
