//===- passes/Simplify.cpp - Clean-up of derived graphs -------------------===//
//
// Autodiff writes what the chain rule says, op by op; this pass removes the
// redundancy that leaves, so codegen sees a lean graph:
//   - transposes folded into matmul's transpose_a / transpose_b, and
//     transpose(transpose(x)) = x;
//   - algebraic identities with constants: scale by 1, scale of scale,
//     x * 1, x + 0, and arithmetic on constants folded;
//   - common subexpressions merged (the first one, and its name, is kept);
//   - dead values removed (leaves stay: they are the step's signature).
// It runs to a fixed point.
//
//===----------------------------------------------------------------------===//
#include "ir/Graph.h"
#include "ir/Printer.h"
#include "passes/Pass.h"

#include <fmt/format.h>
#include <unordered_map>
#include <unordered_set>

namespace gradc::passes {
namespace {

using namespace ir;

bool isConst(const Node *node) { return node->is(OpKind::Const); }

class SimplifyPass final : public Pass {
public:
  std::string_view name() const override { return "simplify"; }

  bool run(Graph &graph, Diagnostics &) override {
    bool changed = true;
    while (changed) {
      changed = foldTransposes(graph);
      changed |= foldConstants(graph);
      changed |= mergeCommonSubexpressions(graph);
      changed |= removeDeadValues(graph);
    }
    return true;
  }

private:
  /// Replaces `node` by `with` everywhere; `with` inherits the name of a
  /// gradient so dumps keep "dJ_dW1" when the op computing it is folded.
  static void replace(Graph &graph, Node *node, Node *with) {
    graph.replaceAllUsesWith(node, with);
  }

  static bool foldTransposes(Graph &graph) {
    bool changed = false;
    for (const auto &owned : graph.nodes()) {
      Node *node = owned.get();
      if (node->is(OpKind::MatMul)) {
        for (int i = 0; i < 2; ++i) {
          Node *operand = node->operands[i];
          if (!operand->is(OpKind::Transpose))
            continue;
          node->operands[i] = operand->operands[0];
          bool &flag = i == 0 ? node->attrs.transA : node->attrs.transB;
          flag = !flag;
          changed = true;
        }
      } else if (node->is(OpKind::Transpose) && node->operands[0]->is(OpKind::Transpose)) {
        replace(graph, node, node->operands[0]->operands[0]);
        changed = true;
      }
    }
    return changed;
  }

  static bool foldConstants(Graph &graph) {
    bool changed = false;
    // A snapshot: folding inserts constants, and each op is looked at once.
    std::vector<Node *> snapshot;
    for (const auto &owned : graph.nodes())
      snapshot.push_back(owned.get());
    for (Node *node : snapshot) {
      auto fold = [&](double value) {
        Attrs attrs;
        attrs.value = value;
        graph.setInsertionPoint(node);
        graph.setPhase(node->phase);
        Node *c = graph.create(OpKind::Const, {}, node->type, attrs, "const", node->loc);
        graph.setInsertionPoint(nullptr);
        replace(graph, node, c);
        changed = true;
      };
      const auto &ops = node->operands;
      switch (node->kind) {
      case OpKind::Scale:
        if (node->attrs.value == 1 && ops[0]->type == node->type) {
          replace(graph, node, ops[0]);
          changed = true;
        } else if (isConst(ops[0])) {
          fold(ops[0]->attrs.value * node->attrs.value);
        } else if (ops[0]->is(OpKind::Scale) && graph.users(ops[0]).size() == 1) {
          node->attrs.value *= ops[0]->attrs.value;
          node->operands[0] = ops[0]->operands[0];
          changed = true;
        }
        break;
      case OpKind::Neg:
        if (isConst(ops[0]))
          fold(-ops[0]->attrs.value);
        break;
      case OpKind::Add:
      case OpKind::Sub:
      case OpKind::Mul:
      case OpKind::Div: {
        if (isConst(ops[0]) && isConst(ops[1])) {
          double a = ops[0]->attrs.value, b = ops[1]->attrs.value;
          fold(node->is(OpKind::Add)   ? a + b
               : node->is(OpKind::Sub) ? a - b
               : node->is(OpKind::Mul) ? a * b
                                       : a / b);
          break;
        }
        // x * 1, 1 * x, x + 0, 0 + x, x - 0, x / 1: the other operand, when
        // it already has the result's shape.
        double identity = node->is(OpKind::Add) || node->is(OpKind::Sub) ? 0 : 1;
        bool commutes = node->is(OpKind::Add) || node->is(OpKind::Mul);
        for (int k = 0; k < 2; ++k) {
          Node *c = ops[k], *other = ops[1 - k];
          if (k == 0 && !commutes)
            continue;
          if (isConst(c) && c->attrs.value == identity && other->type == node->type) {
            replace(graph, node, other);
            changed = true;
            break;
          }
        }
        break;
      }
      default:
        break;
      }
    }
    return changed;
  }

  static bool mergeCommonSubexpressions(Graph &graph) {
    bool changed = false;
    std::unordered_map<std::string, Node *> seen;
    for (const auto &owned : graph.nodes()) {
      Node *node = owned.get();
      if (node->isLeaf() || !node->hasResult())
        continue;
      // The printed form without the name identifies an op by kind,
      // operands, attributes and type.
      Node copy = *node;
      copy.name.clear();
      copy.gradOf = nullptr;
      copy.loc = {};
      std::string key = toString(copy, PrintOptions{false});
      auto [it, inserted] = seen.emplace(std::move(key), node);
      if (!inserted) {
        replace(graph, node, it->second);
        changed = true;
      }
    }
    return changed;
  }

  static bool removeDeadValues(Graph &graph) {
    std::unordered_set<const Node *> live;
    for (const GraphOutput &out : graph.outputs)
      live.insert(out.value);
    for (auto it = graph.nodes().rbegin(); it != graph.nodes().rend(); ++it) {
      const Node *node = it->get();
      if (node->isLeaf() || (node->info().traits & TRAIT_EFFECT))
        live.insert(node);
      if (live.count(node))
        for (const Node *operand : node->operands)
          live.insert(operand);
    }
    std::vector<Node *> dead;
    for (const auto &node : graph.nodes())
      if (!live.count(node.get()))
        dead.push_back(node.get());
    for (auto it = dead.rbegin(); it != dead.rend(); ++it)
      graph.erase(*it);
    return !dead.empty();
  }
};

} // namespace

std::unique_ptr<Pass> createSimplifyPass() { return std::make_unique<SimplifyPass>(); }

} // namespace gradc::passes
