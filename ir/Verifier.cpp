//===- ir/Verifier.cpp - Structural and type checks of a graph ------------===//
#include "ir/Verifier.h"
#include "ir/Graph.h"

#include <cmath>
#include <fmt/format.h>
#include <unordered_map>
#include <unordered_set>

namespace gradc::ir {

namespace {
struct InitializerInfo {
  const char *name;
  int arity;
};
// The names here are the ones runtime/Init.cpp knows how to sample.
constexpr InitializerInfo kInitializers[] = {
    {"xavier_normal", 0}, {"xavier_uniform", 0}, {"he_normal", 0}, {"he_uniform", 0}, {"normal", 1},
    {"uniform", 2},       {"zeros", 0},          {"ones", 0},      {"constant", 1},
};
} // namespace

int initializerArity(std::string_view name) {
  for (const InitializerInfo &init : kInitializers)
    if (name == init.name)
      return init.arity;
  return -1;
}

std::string initializerNames() {
  std::string names;
  for (const InitializerInfo &init : kInitializers)
    names += (names.empty() ? "" : ", ") + std::string(init.name);
  return names;
}

bool verify(const Graph &graph, Diagnostics &diags) {
  unsigned before = diags.errorCount();
  std::unordered_map<const Node *, size_t> position;
  std::unordered_set<std::string_view> names;
  if (graph.weightDecay < 0 || !std::isfinite(graph.weightDecay))
    diags.error(fmt::format("graph @{}: weight decay must be a finite number >= 0, got {}",
                            graph.name, graph.weightDecay));
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const Node &node = *graph.nodes()[i];
    const OpInfo &info = node.info();
    auto error = [&](const std::string &message) {
      diags.error(node.loc, node.hasResult()
                                ? fmt::format("'{}' %{}: {}", info.mnemonic, node.name, message)
                                : fmt::format("'{}': {}", info.mnemonic, message));
    };
    if (node.hasResult() && !names.insert(node.name).second)
      error("the name is defined twice");
    bool operandsOk = static_cast<int>(node.operands.size()) == info.arity;
    if (!operandsOk)
      error(fmt::format("takes {} operands, has {}", info.arity, node.operands.size()));
    for (const Node *operand : node.operands)
      if (!position.count(operand)) {
        error(fmt::format("operand %{} is not defined before its use", operand->name));
        operandsOk = false;
      }
    if (operandsOk) {
      std::vector<const Type *> types;
      for (const Node *operand : node.operands)
        types.push_back(&operand->type);
      TypeResult inferred = inferType(node.kind, types, node.attrs, &node.type);
      if (!inferred.type)
        error(inferred.error);
      else if (node.hasResult() && *inferred.type != node.type)
        error(fmt::format("has type {} but its operands give {}", node.type.str(),
                          inferred.type->str()));
    }
    if ((node.is(OpKind::Dropout) || node.is(OpKind::DropoutMask)) &&
        !(node.attrs.value >= 0 && node.attrs.value < 1))
      error(fmt::format("dropout probability must be in [0, 1), got {}", node.attrs.value));
    if (node.is(OpKind::Pow) && !std::isfinite(node.attrs.value))
      error("the exponent must be finite");
    if (info.attrs & ATTR_INIT) {
      int arity = initializerArity(node.attrs.init.kind);
      if (arity < 0)
        error(fmt::format("unknown initializer '{}'; expected one of {}", node.attrs.init.kind,
                          initializerNames()));
      else if (arity != static_cast<int>(node.attrs.init.args.size()))
        error(fmt::format("initializer '{}' takes {} argument{}, got {}", node.attrs.init.kind,
                          arity, arity == 1 ? "" : "s", node.attrs.init.args.size()));
      if (node.attrs.decay && !(*node.attrs.decay >= 0))
        error(fmt::format("weight decay must be >= 0, got {}", *node.attrs.decay));
    }
    if (node.is(OpKind::Update) && operandsOk && !node.operands[0]->is(OpKind::Param) &&
        !node.operands[0]->is(OpKind::State))
      error(fmt::format("can only write a param or state, not %{} ('{}')", node.operands[0]->name,
                        node.operands[0]->mnemonic()));
    if (node.gradOf && !position.count(node.gradOf) && node.gradOf != &node) {
      // A gradient may name a value defined later only if it is in the graph.
      bool found = false;
      for (const auto &other : graph.nodes())
        found |= other.get() == node.gradOf;
      if (!found)
        error("grad(...) names a value that is not in the graph");
    }
    position[&node] = i;
  }
  for (const GraphOutput &out : graph.outputs)
    if (!position.count(out.value))
      diags.error(
          fmt::format("graph @{}: result '{}' is not a value of the graph", graph.name, out.key));
  return diags.errorCount() == before;
}

} // namespace gradc::ir
