//===- passes/Health.cpp - Expose gradients and activations ---------------===//
//
// `gradc train --health=N` watches the gradient of every parameter and the
// activations of every layer while training.  Those are intermediate
// values of the training step, which the memory plan would otherwise
// overwrite; this pass makes them results of the graph, so the compiled
// step writes them to buffers the trainer can read:
//   health.grad.<param>  the gradient dJ/d<param> (before any clipping),
//   health.act.<value>   the output of each activation function (relu,
//                        sigmoid, tanh, softmax) and the prediction.
// It runs after autodiff and before the optimizer pass, which consumes the
// "grad.<param>" results.  Only the graphs `--health` asks for get it: the
// extra results cost memory and stores.
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "passes/Pass.h"

#include <fmt/format.h>

namespace gradc::passes {
namespace {

using namespace ir;

bool isActivation(const Node &node) {
  switch (node.kind) {
  case OpKind::Relu:
  case OpKind::Sigmoid:
  case OpKind::Tanh:
  case OpKind::Softmax:
    return true;
  default:
    return false;
  }
}

class HealthPass final : public Pass {
public:
  std::string_view name() const override { return "health"; }

  bool run(Graph &graph, Diagnostics &diags) override {
    std::vector<GraphOutput> added;
    for (const GraphOutput &output : graph.outputs)
      if (output.key.starts_with("grad."))
        added.push_back({"health." + output.key, output.value});
    if (added.empty()) {
      diags.error(fmt::format("graph @{} has no gradients to watch; run autodiff before health",
                              graph.name));
      return false;
    }
    for (const auto &node : graph.nodes())
      if (node->phase == Phase::Forward && isActivation(*node))
        added.push_back({"health.act." + node->name, node.get()});
    if (Node *prediction = graph.output("prediction"); prediction && !isActivation(*prediction))
      added.push_back({"health.act." + prediction->name, prediction});
    for (const GraphOutput &output : added)
      graph.setOutput(output.key, output.value);
    return true;
  }
};

} // namespace

std::unique_ptr<Pass> createHealthPass() { return std::make_unique<HealthPass>(); }

} // namespace gradc::passes
