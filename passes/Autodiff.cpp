//===- passes/Autodiff.cpp - Reverse-mode differentiation -----------------===//
//
// Derives dJ/dW for every param W of the graph's objective J, writing
// ordinary ops into the same graph (lecture 2.6):
//
//  1. Only the values on a path from a param to J get adjoints ("active").
//     Every active op must have a gradient rule; all ops that lack one are
//     reported together.
//  2. Ops are visited in reverse program order.  Each op's rule (passes/
//     GradientRules.cpp) turns the adjoint of its result into contributions
//     to its operands' adjoints.  A value used twice gets two contributions;
//     as soon as the last one arrives they are summed (one add-or-set place)
//     — for a parameter that is right after its last use, which is why
//     dJ_dW2 = dL_dW2 + ds_dW2 is formed before dL_dh, as in the lecture.
//  3. Names say what a value differentiates: "d<N>_d<v>" where v is the
//     value and N the term of the objective the gradient flows from.  The
//     terms are J and, if J is a sum, its summands (J = L + s gives L and s); a sum of
//     contributions from different terms is "dJ_d<v>".  So the lecture's
//     dL_do, dL_dW2, ds_dW2, dJ_dW2, dL_dh, dL_dz, dL_dW1 appear literally.
//  4. Finally every backward op is moved to just before its first user, so
//     ds_dW2 = lambda W2 sits next to the sum that needs it and values live
//     no longer than necessary.
//
// The gradients become the results "grad.<param>".
//
//===----------------------------------------------------------------------===//
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "passes/GradientRules.h"
#include "passes/Pass.h"

#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace gradc::passes {
namespace {

using namespace ir;

struct Contribution {
  Grad grad;
  std::string term; ///< the objective term it flows from ("L", "s", ...)
  size_t use = 0;   ///< program index of the op that uses the value
};

struct AdjointState {
  std::vector<Contribution> parts;
  int expected = 0;          ///< contributions still to come + received
  std::optional<Grad> total; ///< set once every contribution has arrived
  std::string term;          ///< term of the total
};

class AutodiffPass final : public Pass {
public:
  std::string_view name() const override { return "autodiff"; }
  bool run(Graph &graph, Diagnostics &diags) override;

private:
  void addContribution(Graph &graph, Node *value, Contribution part);
  void finalize(Graph &graph, Node *value);
  std::string gradName(const std::string &term, const Node &value) const {
    return fmt::format("d{}_d{}", term, value.name);
  }

  std::unordered_map<Node *, AdjointState> adjoints_;
  std::unordered_set<const Node *> terms_;
  std::string rootName_;
  std::unordered_set<const Node *> backwardNodes_;
};

void AutodiffPass::finalize(Graph &graph, Node *value) {
  AdjointState &state = adjoints_[value];
  std::set<std::string> termSet;
  for (const Contribution &part : state.parts)
    termSet.insert(part.term);
  state.term = termSet.size() == 1 ? *termSet.begin() : rootName_;
  if (state.parts.size() == 1) {
    state.total = state.parts[0].grad;
    return;
  }
  // Several uses: the adjoint is the sum of the contributions, constants
  // folded, nodes added left to right in the order of the uses.
  // Terms are summed in the order of the uses (dJ_dW2 = dL_dW2 + ds_dW2),
  // right after the last contribution is computed.
  std::stable_sort(state.parts.begin(), state.parts.end(),
                   [](const Contribution &a, const Contribution &b) { return a.use < b.use; });
  double constant = 0;
  Node *sum = nullptr;
  std::vector<Node *> nodes;
  Node *last = nullptr;
  for (const Contribution &part : state.parts) {
    // Only backward nodes count: a contribution may be a forward value
    // itself (d(t*t)/dt with adjoint 1 is t), and sums belong after the
    // forward part.
    if (part.grad.node && backwardNodes_.count(part.grad.node) &&
        (!last || graph.indexOf(part.grad.node) > graph.indexOf(last)))
      last = part.grad.node;
    if (part.grad.isConstant())
      constant += part.grad.constant;
    else
      nodes.push_back(part.grad.node);
  }
  graph.setPhase(Phase::Backward);
  size_t after = last ? graph.indexOf(last) + 1 : graph.size();
  graph.setInsertionPoint(after < graph.size() ? graph.nodes()[after].get() : nullptr);
  for (Node *node : nodes) {
    if (!sum) {
      sum = node;
      continue;
    }
    sum = graph.create(OpKind::Add, {sum, node}, value->type, {}, "add", value->loc);
    backwardNodes_.insert(sum);
  }
  if (!sum) {
    graph.setInsertionPoint(nullptr);
    state.total = Grad::constantOf(constant, value->type);
    return;
  }
  if (constant != 0) {
    Attrs attrs;
    attrs.value = constant;
    Node *c = graph.create(OpKind::Const, {}, value->type, attrs, "const", value->loc);
    sum = graph.create(OpKind::Add, {sum, c}, value->type, {}, "add", value->loc);
    backwardNodes_.insert(c);
    backwardNodes_.insert(sum);
  }
  graph.setInsertionPoint(nullptr);
  graph.rename(sum, gradName(state.term, *value));
  sum->gradOf = value;
  state.total = Grad::of(sum);
}

void AutodiffPass::addContribution(Graph &graph, Node *value, Contribution part) {
  AdjointState &state = adjoints_[value];
  state.parts.push_back(std::move(part));
  if (static_cast<int>(state.parts.size()) == state.expected)
    finalize(graph, value);
}

bool AutodiffPass::run(Graph &graph, Diagnostics &diags) {
  Node *root = graph.output("objective");
  if (!root)
    root = graph.output("loss");
  if (!root) {
    diags.error(
        fmt::format("graph @{} has no result 'objective' or 'loss' to differentiate", graph.name));
    return false;
  }
  if (root->type.rank() != 0) {
    diags.error(root->loc, fmt::format("the objective %{} must be a scalar, it is {}", root->name,
                                       root->type.str()));
    return false;
  }
  for (const GraphOutput &out : graph.outputs)
    if (out.key.starts_with("grad.")) {
      diags.error(fmt::format("graph @{} already has gradients; run autodiff once", graph.name));
      return false;
    }
  rootName_ = root->name;

  // Values J depends on, and values that depend on a param.
  std::unordered_set<const Node *> reachesRoot{root};
  for (auto it = graph.nodes().rbegin(); it != graph.nodes().rend(); ++it)
    if (reachesRoot.count(it->get()))
      for (Node *operand : (*it)->operands)
        reachesRoot.insert(operand);
  std::unordered_set<const Node *> dependsOnParam;
  for (const auto &node : graph.nodes()) {
    bool depends = node->is(OpKind::Param);
    for (Node *operand : node->operands)
      depends |= dependsOnParam.count(operand) > 0;
    if (depends)
      dependsOnParam.insert(node.get());
  }
  auto active = [&](const Node *node) {
    return reachesRoot.count(node) && dependsOnParam.count(node);
  };

  // Every active op needs a rule: report all that lack one at once.
  bool missing = false;
  for (const auto &node : graph.nodes())
    if (active(node.get()) && !node->isLeaf() && !(node->info().traits & GRAD)) {
      diags.error(node->loc, fmt::format("cannot differentiate '{}' (%{}): the op has no gradient "
                                         "rule{}",
                                         node->mnemonic(), node->name,
                                         node->is(OpKind::Dropout)
                                             ? "; run the 'dropout' pass before 'autodiff'"
                                             : ""));
      missing = true;
    }
  if (missing)
    return false;

  // How many contributions each active value will receive.
  for (const auto &node : graph.nodes()) {
    if (!active(node.get()) || node->isLeaf())
      continue;
    for (size_t i = 0; i < node->operands.size(); ++i)
      if (active(node->operands[i]) && isDifferentiableOperand(node->kind, static_cast<int>(i)))
        ++adjoints_[node->operands[i]].expected;
  }

  // The terms of the objective: J and, when J is a sum (J = L + s), its
  // summands.  Deeper sums are not split: s stays one term.
  terms_.insert(root);
  if (root->is(OpKind::Add))
    for (const Node *operand : root->operands)
      terms_.insert(operand);

  graph.setInsertionPoint(nullptr);
  adjoints_[root].total = Grad::constantOf(1, root->type);
  adjoints_[root].term = rootName_;
  std::vector<Node *> order;
  for (const auto &node : graph.nodes())
    if (active(node.get()) && !node->isLeaf())
      order.push_back(node.get());
  size_t forwardSize = graph.size();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node *op = *it;
    AdjointState &state = adjoints_[op];
    // Every active value receives all its contributions before its op is
    // visited (reverse program order), so its total is known here.
    std::string term = terms_.count(op) ? op->name : state.term;
    GradBuilder builder(graph, *op, *state.total);
    std::vector<bool> wanted;
    for (size_t i = 0; i < op->operands.size(); ++i)
      wanted.push_back(active(op->operands[i]) &&
                       isDifferentiableOperand(op->kind, static_cast<int>(i)));
    std::vector<std::optional<Grad>> parts;
    applyGradientRule(builder, wanted, parts);
    for (Node *created : builder.created)
      backwardNodes_.insert(created);
    for (size_t i = 0; i < op->operands.size(); ++i) {
      if (!wanted[i])
        continue;
      Node *operand = op->operands[i];
      Grad grad = *parts[i];
      // A node this rule made is named after what it differentiates; a value
      // passed through unchanged (the adjoint itself, or a forward value)
      // keeps its name.
      bool fresh = grad.node && std::find(builder.created.begin(), builder.created.end(),
                                          grad.node) != builder.created.end();
      if (fresh) {
        graph.rename(grad.node, gradName(term, *operand));
        grad.node->gradOf = operand;
      }
      addContribution(graph, operand, Contribution{grad, term, graph.indexOf(op)});
    }
  }

  // Results: one gradient per param.
  graph.setPhase(Phase::Backward);
  for (Node *param : graph.nodesOfKind(OpKind::Param)) {
    AdjointState &state = adjoints_[param];
    Grad total = state.total ? *state.total : Grad::constantOf(0, param->type);
    Node *node = total.node;
    if (!node) {
      // J does not depend on this param (or only linearly): a constant gradient.
      Attrs attrs;
      attrs.value = total.constant;
      node =
          graph.create(OpKind::Const, {}, param->type, attrs,
                       gradName(state.parts.empty() ? rootName_ : state.term, *param), param->loc);
      node->gradOf = param;
      backwardNodes_.insert(node);
      if (!state.total)
        diags.warning(param->loc, fmt::format("the objective does not depend on param %{}; its "
                                              "gradient is zero",
                                              param->name));
    }
    graph.setOutput("grad." + param->name, node);
  }

  // Backward ops that read only forward values (ds_dW2 = lambda W2,
  // drelu_dz = step z) move to just before their first user, last ones
  // first so chains move together; the rest keep the order of the chain rule.
  std::vector<Node *> backward;
  for (size_t i = forwardSize; i < graph.size(); ++i)
    backward.push_back(graph.nodes()[i].get());
  for (auto it = backward.rbegin(); it != backward.rend(); ++it) {
    bool readsBackward = false;
    for (Node *operand : (*it)->operands)
      readsBackward |= backwardNodes_.count(operand) > 0;
    if (readsBackward)
      continue;
    std::vector<Node *> users = graph.users(*it);
    if (users.empty())
      continue;
    Node *first = *std::min_element(users.begin(), users.end(), [&](Node *x, Node *y) {
      return graph.indexOf(x) < graph.indexOf(y);
    });
    if (graph.indexOf(first) > graph.indexOf(*it) + 1)
      graph.moveBefore(*it, first);
  }
  graph.setPhase(Phase::Forward);
  graph.kind = GraphKind::Train;
  return true;
}

} // namespace

std::unique_ptr<Pass> createAutodiffPass() { return std::make_unique<AutodiffPass>(); }

} // namespace gradc::passes
