//===- passes/Optimizer.cpp - Parameter updates as graph ops --------------===//
//
// Turns the gradients "grad.<param>" into the update of each parameter,
// written as ordinary ops on `state` tensors in the `update:` section, so
// the printed training step shows exactly what the optimizer does.  The
// formulations are PyTorch's (torch.optim), so results can be compared:
//
//   sgd:            W <- W - lr g
//   sgd, momentum:  v <- mu v + g;        W <- W - lr v
//   sgd, nesterov:  v <- mu v + g;        W <- W - lr (g + mu v)
//   adam:           m <- b1 m + (1-b1) g;  u <- b2 u + (1-b2) g^2
//                   W <- W - lr (m / (1-b1^t)) / (sqrt(u / (1-b2^t)) + eps)
//   adamw:          W <- W - lr lambda W first (decoupled weight decay), then adam
//
// g is dJ/dW, which for sgd and adam includes the coupled L2 gradient
// lambda W of the l2 pass (lecture 2.4); for adamw the l2 pass adds no term
// and the decay is the decoupled one above.  The powers b1^t and b2^t are
// scalar state tensors multiplied by b1 and b2 every step, so no step
// counter is needed and a checkpoint carries them.  The learning rate is a
// `hyper` the driver sets every step (schedules need no recompilation).
//
// With clip_grad_norm = c, every gradient is first scaled by
// c / max(||g||, c), ||g|| the norm of all gradients together
// (torch.nn.utils.clip_grad_norm_).
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "passes/Pass.h"

#include <fmt/format.h>

namespace gradc::passes {
namespace {

using namespace ir;

/// Creates update-phase nodes at the end of the graph.
class UpdateBuilder {
public:
  explicit UpdateBuilder(Graph &graph) : graph_(graph) {}

  Node *op(OpKind kind, std::vector<Node *> operands, const Type &type, std::string_view name,
           SourceLoc loc = {}, Attrs attrs = {}) {
    return graph_.create(kind, std::move(operands), type, std::move(attrs), name, loc);
  }
  Node *scale(Node *x, double factor, std::string_view name, SourceLoc loc = {}) {
    Attrs attrs;
    attrs.value = factor;
    return op(OpKind::Scale, {x}, x->type, name, loc, attrs);
  }
  Node *constant(double value, std::string_view name) {
    Attrs attrs;
    attrs.value = value;
    return op(OpKind::Const, {}, Type::scalar(), name, {}, attrs);
  }
  /// A persistent state tensor initialised by `init` ("zeros", "ones").
  Node *state(const Type &type, std::string_view init, std::string_view name, SourceLoc loc) {
    Attrs attrs;
    attrs.init.kind = init;
    return op(OpKind::State, {}, type, name, loc, attrs);
  }
  void update(Node *target, Node *value, SourceLoc loc) {
    graph_.create(OpKind::Update, {target, value}, Type{}, {}, {}, loc);
  }

private:
  Graph &graph_;
};

class OptimizerPass final : public Pass {
public:
  std::string_view name() const override { return "optimizer"; }

  bool run(Graph &graph, Diagnostics &diags) override {
    const OptimizerConfig &config = graph.optimizer;
    if (config.kind != "sgd" && config.kind != "adam" && config.kind != "adamw") {
      diags.error(fmt::format("graph @{}: unknown optimizer '{}', expected one of {}", graph.name,
                              config.kind, kOptimizerKinds));
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
    UpdateBuilder b(graph);
    Attrs lrKey;
    lrKey.key = "lr";
    Node *lr = b.op(OpKind::Hyper, {}, Type::scalar(), "lr", {}, lrKey);

    if (config.clipGradNorm > 0)
      clipGradients(b, paramGrads, config.clipGradNorm);

    // Adam's bias corrections 1 - b^t, from powers kept as state.
    Node *correction1 = nullptr, *correction2 = nullptr;
    if (config.kind != "sgd") {
      Node *one = b.constant(1, "one");
      auto correction = [&](double beta, const std::string &name) {
        Node *power = b.state(Type::scalar(), "ones", name, {});
        Node *next = b.scale(power, beta, name + ".next");
        b.update(power, next, {});
        return b.op(OpKind::Sub, {one, next}, Type::scalar(), name + ".correction");
      };
      correction1 = correction(config.beta1, "adam.beta1_power");
      correction2 = correction(config.beta2, "adam.beta2_power");
    }

    for (auto [param, grad] : paramGrads) {
      const std::string &p = param->name;
      SourceLoc loc = param->loc;
      const Type &type = param->type;
      Node *direction = grad;
      Node *weights = param;
      if (config.kind == "sgd" && config.momentum != 0) {
        Node *velocity = b.state(type, "zeros", p + ".velocity", loc);
        Node *next = b.op(OpKind::Add,
                          {b.scale(velocity, config.momentum, p + ".velocity.decayed", loc), grad},
                          type, p + ".velocity.next", loc);
        b.update(velocity, next, loc);
        direction =
            config.nesterov
                ? b.op(OpKind::Add, {grad, b.scale(next, config.momentum, p + ".lookahead", loc)},
                       type, p + ".nesterov", loc)
                : next;
      } else if (config.kind != "sgd") {
        if (config.kind == "adamw") {
          // Decoupled decay: W <- W - lr lambda W, before the Adam step.
          double lambda = param->attrs.decay.value_or(type.rank() >= 2 ? graph.weightDecay : 0);
          if (lambda > 0) {
            Node *decay = b.op(OpKind::Mul, {lr, b.scale(param, lambda, p + ".decay", loc)}, type,
                               p + ".decay.step", loc);
            weights = b.op(OpKind::Sub, {param, decay}, type, p + ".decayed", loc);
          }
        }
        Node *m = b.state(type, "zeros", p + ".adam_m", loc);
        Node *u = b.state(type, "zeros", p + ".adam_v", loc);
        Node *mNext = b.op(OpKind::Add,
                           {b.scale(m, config.beta1, p + ".adam_m.decayed", loc),
                            b.scale(grad, 1 - config.beta1, p + ".adam_m.new", loc)},
                           type, p + ".adam_m.next", loc);
        Attrs square;
        square.value = 2;
        Node *g2 = b.op(OpKind::Pow, {grad}, type, p + ".grad_squared", loc, square);
        Node *uNext = b.op(OpKind::Add,
                           {b.scale(u, config.beta2, p + ".adam_v.decayed", loc),
                            b.scale(g2, 1 - config.beta2, p + ".adam_v.new", loc)},
                           type, p + ".adam_v.next", loc);
        b.update(m, mNext, loc);
        b.update(u, uNext, loc);
        Node *mHat = b.op(OpKind::Div, {mNext, correction1}, type, p + ".adam_m.unbiased", loc);
        Node *uHat = b.op(OpKind::Div, {uNext, correction2}, type, p + ".adam_v.unbiased", loc);
        Node *root = b.op(OpKind::Sqrt, {uHat}, type, p + ".adam_v.sqrt", loc);
        Node *denominator = b.op(OpKind::Add, {root, b.constant(config.eps, "adam.eps")}, type,
                                 p + ".adam_denominator", loc);
        direction = b.op(OpKind::Div, {mHat, denominator}, type, p + ".adam_direction", loc);
      }
      Node *step = b.op(OpKind::Mul, {lr, direction}, type, p + ".step", loc);
      Node *next = b.op(OpKind::Sub, {weights, step}, type, p + ".next", loc);
      b.update(param, next, loc);
    }
    std::erase_if(graph.outputs,
                  [](const GraphOutput &out) { return out.key.starts_with("grad."); });
    graph.setPhase(Phase::Forward);
    graph.kind = GraphKind::Train;
    return true;
  }

private:
  /// g <- g * c / max(||g||, c) for every gradient, ||g|| over all of them.
  static void clipGradients(UpdateBuilder &b, std::vector<std::pair<Node *, Node *>> &paramGrads,
                            double maxNorm) {
    Node *total = nullptr;
    for (auto &[param, grad] : paramGrads) {
      Node *sq = b.op(OpKind::SumSq, {grad}, Type::scalar(), "clip.sqnorm_" + param->name);
      total = total ? b.op(OpKind::Add, {total, sq}, Type::scalar(), "clip.sqnorm") : sq;
    }
    if (!total)
      return;
    Node *norm = b.op(OpKind::Sqrt, {total}, Type::scalar(), "grad_norm");
    Node *limit = b.constant(maxNorm, "clip.max_norm");
    Node *larger = b.op(OpKind::Maximum, {norm, limit}, Type::scalar(), "clip.max");
    Node *factor = b.op(OpKind::Div, {limit, larger}, Type::scalar(), "clip.factor");
    for (auto &[param, grad] : paramGrads)
      grad = b.op(OpKind::Mul, {grad, factor}, grad->type, grad->name + ".clipped", param->loc);
  }
};

} // namespace

std::unique_ptr<Pass> createOptimizerPass() { return std::make_unique<OptimizerPass>(); }

} // namespace gradc::passes
