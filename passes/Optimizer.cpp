//===- passes/Optimizer.cpp - Parameter updates as graph ops --------------===//
//
// Turns the gradients "grad.<param>" into the update of each parameter,
// written as ordinary ops in the `update:` section so the printed training
// step shows exactly what the optimizer does:
//
//   sgd:   W <- W - lr * dJ_dW        (lecture 2.4: minibatch SGD on J)
//
// The learning rate is a `hyper` the driver sets every step, so schedules
// need no recompilation.  The gradients stop being results: inside the
// training step they are consumed by the updates.
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "passes/Pass.h"

#include <fmt/format.h>

namespace gradc::passes {
namespace {

using namespace ir;

class OptimizerPass final : public Pass {
public:
  std::string_view name() const override { return "optimizer"; }

  bool run(Graph &graph, Diagnostics &diags) override {
    if (graph.optimizer != "sgd") {
      diags.error(fmt::format("graph @{}: unknown optimizer '{}', expected sgd", graph.name,
                              graph.optimizer));
      return false;
    }
    std::vector<std::pair<Node *, Node *>> paramGrads;
    for (Node *param : graph.nodesOfKind(OpKind::Param)) {
      Node *grad = graph.output("grad." + param->name);
      if (!grad) {
        diags.error(fmt::format("graph @{}: no gradient for param %{}; run 'autodiff' before "
                                "'optimizer'",
                                graph.name, param->name));
        return false;
      }
      paramGrads.emplace_back(param, grad);
    }
    graph.setInsertionPoint(nullptr);
    graph.setPhase(Phase::Update);
    Attrs lrKey;
    lrKey.key = "lr";
    Node *lr = graph.create(OpKind::Hyper, {}, Type::scalar(), lrKey, "lr");
    for (auto [param, grad] : paramGrads) {
      Node *step =
          graph.create(OpKind::Mul, {lr, grad}, param->type, {}, param->name + ".step", param->loc);
      Node *next = graph.create(OpKind::Sub, {param, step}, param->type, {}, param->name + ".next",
                                param->loc);
      graph.create(OpKind::Update, {param, next}, Type{}, {}, {}, param->loc);
    }
    std::erase_if(graph.outputs,
                  [](const GraphOutput &out) { return out.key.starts_with("grad."); });
    graph.setPhase(Phase::Forward);
    graph.kind = GraphKind::Train;
    return true;
  }
};

} // namespace

std::unique_ptr<Pass> createOptimizerPass() { return std::make_unique<OptimizerPass>(); }

} // namespace gradc::passes
