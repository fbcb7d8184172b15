//===- passes/Dropout.cpp - Training and inference forms of dropout -------===//
//
// Training (lecture 2.5):  h' = h * mask, where mask = dropout_mask(p) holds
// 1/(1-p) for kept elements and 0 for dropped ones, drawn from Philox keyed
// by (seed, step, stream).  Each dropout gets its own stream, numbered in
// program order, so masks are independent and reproducible.  The mask has
// no operands: the backward pass reads the same mask, and the memory plan
// may recompute it instead of keeping it alive.
//
// Inference: dropout is the identity ("dropout is disabled at test time").
//
//===----------------------------------------------------------------------===//
#include "ir/Graph.h"
#include "passes/Pass.h"

namespace gradc::passes {
namespace {

using namespace ir;

class DropoutPass final : public Pass {
public:
  explicit DropoutPass(bool training) : training_(training) {}
  std::string_view name() const override { return training_ ? "dropout" : "dropout-infer"; }

  bool run(Graph &graph, Diagnostics &) override {
    // Streams continue after any masks already in the graph.
    int64_t stream = 0;
    for (Node *mask : graph.nodesOfKind(OpKind::DropoutMask))
      stream = std::max(stream, mask->attrs.stream + 1);
    for (Node *drop : graph.nodesOfKind(OpKind::Dropout)) {
      Node *input = drop->operands[0];
      if (!training_ || drop->attrs.value == 0) {
        graph.replaceAllUsesWith(drop, input);
        graph.erase(drop);
        continue;
      }
      std::string name = drop->name;
      graph.setInsertionPoint(drop);
      graph.setPhase(drop->phase);
      Attrs maskAttrs;
      maskAttrs.value = drop->attrs.value;
      maskAttrs.stream = stream++;
      Node *mask =
          graph.create(OpKind::DropoutMask, {}, drop->type, maskAttrs, name + ".mask", drop->loc);
      Node *kept =
          graph.create(OpKind::Mul, {input, mask}, drop->type, {}, name + ".kept", drop->loc);
      graph.replaceAllUsesWith(drop, kept);
      graph.erase(drop);
      // The product takes over the name the model gave the dropout's result.
      graph.rename(kept, name);
      graph.setInsertionPoint(nullptr);
    }
    graph.setPhase(Phase::Forward);
    if (!training_)
      graph.kind = GraphKind::Inference;
    return true;
  }

private:
  bool training_;
};

} // namespace

std::unique_ptr<Pass> createDropoutPass() { return std::make_unique<DropoutPass>(true); }
std::unique_ptr<Pass> createDropoutInferencePass() { return std::make_unique<DropoutPass>(false); }

} // namespace gradc::passes
