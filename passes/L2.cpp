//===- passes/L2.cpp - Weight decay as a term of the objective ------------===//
//
// Lecture 2.4 / 2.6:  s = lambda/2 * (||W1||_F^2 + ||W2||_F^2),  J = L + s.
// The pass writes these as ordinary ops after the loss; autodiff then
// derives ds/dW = lambda * W like any other gradient, and the printed
// training graph shows the lecture's steps.
//
// Which parameters decay: a param's own {decay=...} if it has one, else the
// model's weight_decay for parameters of rank >= 2 (weights), and none for
// vectors (biases), the usual choice (decaying biases only restricts the
// model's offsets).  This is L2 regularisation coupled to the gradient, as in
// the lecture.  With optimizer adamw the pass adds nothing: the optimizer
// pass applies AdamW's decoupled decay with the same coefficients instead.
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "passes/Pass.h"

#include <fmt/format.h>
#include <map>

namespace gradc::passes {
namespace {

using namespace ir;

class L2Pass final : public Pass {
public:
  std::string_view name() const override { return "l2"; }

  bool run(Graph &graph, Diagnostics &diags) override {
    Node *loss = graph.output("loss");
    if (!loss) {
      diags.error(fmt::format("graph @{} has no result 'loss' to add weight decay to", graph.name));
      return false;
    }
    if (graph.output("objective")) {
      diags.error(fmt::format("graph @{} already has an objective; run l2 once", graph.name));
      return false;
    }
    // AdamW decays weights in its update (decoupled), not through the objective.
    if (graph.optimizer.kind == "adamw") {
      graph.setOutput("objective", loss);
      return true;
    }
    // Parameters by decay coefficient, in program order within each.
    std::map<double, std::vector<Node *>> byLambda;
    std::vector<double> order;
    for (Node *param : graph.nodesOfKind(OpKind::Param)) {
      double lambda = param->attrs.decay.value_or(param->type.rank() >= 2 ? graph.weightDecay : 0);
      if (lambda <= 0)
        continue;
      if (!byLambda.count(lambda))
        order.push_back(lambda);
      byLambda[lambda].push_back(param);
    }
    if (order.empty()) {
      // No decay: the objective is the loss itself.
      graph.setOutput("objective", loss);
      return true;
    }
    graph.setInsertionPoint(nullptr);
    graph.setPhase(Phase::Forward);
    SourceLoc loc = loss->loc;
    Node *s = nullptr;
    for (double lambda : order) {
      // lambda/2 * (||W_a||^2 + ||W_b||^2 + ...) for one coefficient.
      Node *sum = nullptr;
      for (Node *param : byLambda[lambda]) {
        Node *norm = graph.create(OpKind::SumSq, {param}, Type::scalar(), {},
                                  "sqnorm_" + param->name, param->loc);
        sum =
            sum ? graph.create(OpKind::Add, {sum, norm}, Type::scalar(), {}, "sqnorm", loc) : norm;
      }
      Attrs half;
      half.value = lambda / 2;
      Node *term = graph.create(OpKind::Scale, {sum}, Type::scalar(), half,
                                order.size() == 1 ? "s" : fmt::format("s_{}", lambda), loc);
      s = s ? graph.create(OpKind::Add, {s, term}, Type::scalar(), {}, "s", loc) : term;
    }
    Node *objective = graph.create(OpKind::Add, {loss, s}, Type::scalar(), {}, "J", loc);
    graph.setOutput("objective", objective);
    return true;
  }
};

} // namespace

std::unique_ptr<Pass> createL2Pass() { return std::make_unique<L2Pass>(); }

} // namespace gradc::passes
