//===- ir/Dot.cpp - Graphviz drawings of a graph --------------------------===//
#include "ir/Dot.h"
#include "ir/Graph.h"

#include <fmt/format.h>
#include <map>
#include <ostream>
#include <set>
#include <unordered_map>

namespace gradc::ir {
namespace {

/// Everything before the last '.' of a hierarchical name ("dense1" for
/// "dense1.W"), or "".  Suffixes the compiler adds (".1", ".mask", ".next")
/// look the same, so only prefixes that own a param count as blocks.
std::string prefixOf(const std::string &name) {
  size_t dot = name.rfind('.');
  return dot == std::string::npos ? "" : name.substr(0, dot);
}

std::string escape(const std::string &text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out;
}

struct Style {
  const char *fill;
  const char *border;
};
Style styleOf(Phase phase) {
  switch (phase) {
  case Phase::Forward:
    return {"#dbe9f6", "#2b6ca3"};
  case Phase::Backward:
    return {"#fbe3cf", "#c0661d"};
  case Phase::Update:
    return {"#dcefdc", "#3b8a3b"};
  }
  return {"white", "black"};
}

} // namespace

void printDot(const Graph &graph, std::ostream &out, const DotOptions &options) {
  // Block instances are the owners of params: "dense1" owns "dense1.W".
  std::set<std::string> blocks;
  for (Node *param : graph.nodesOfKind(OpKind::Param))
    if (std::string owner = prefixOf(param->name); !owner.empty())
      blocks.insert(owner);
  auto blockOf = [&](const Node &node) -> std::string {
    for (std::string prefix = prefixOf(node.name); !prefix.empty(); prefix = prefixOf(prefix))
      if (blocks.count(prefix))
        return prefix;
    return "";
  };
  std::set<const Node *> paramGrads;
  for (const GraphOutput &result : graph.outputs)
    if (result.key.starts_with("grad."))
      paramGrads.insert(result.value);

  out << fmt::format("digraph \"{}\" {{\n", escape(graph.name));
  out << fmt::format("  label=\"{} ({})\";\n  labelloc=t;\n", escape(graph.name),
                     graphKindName(graph.kind));
  out << "  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n"
         "  edge [color=\"#555555\"];\n";

  // The id a node's value is drawn as (a block's id when collapsed), and the
  // id of its operator circle.
  std::unordered_map<const Node *, std::string> id, operatorId;
  std::map<std::string, std::vector<std::string>> clusterLines;
  std::vector<std::string> topLines;
  auto emit = [&](const std::string &block, std::string line) {
    if (block.empty())
      topLines.push_back(std::move(line));
    else
      clusterLines[block].push_back(std::move(line));
  };
  std::set<std::string> collapsedDrawn;
  int counter = 0;
  for (const auto &owned : graph.nodes()) {
    const Node &node = *owned;
    std::string block = blockOf(node);
    if (options.collapseBlocks && !block.empty()) {
      id[&node] = "block_" + block;
      if (collapsedDrawn.insert(block).second)
        topLines.push_back(fmt::format("  \"block_{0}\" [shape=box3d, style=filled, "
                                       "fillcolor=\"#eeeeee\", label=\"{0}\"];",
                                       escape(block)));
      continue;
    }
    Style style = styleOf(node.phase);
    std::string valueId = fmt::format("v{}", counter++);
    if (node.isLeaf() || node.is(OpKind::Const)) {
      // A variable without an operator: input, parameter, state, constant.
      std::string extra = node.is(OpKind::Param) ? ", penwidth=2" : "";
      emit(block, fmt::format("  {} [shape=box, style=filled, fillcolor=\"{}\", color=\"{}\"{}, "
                              "label=\"{}\\n{}\"];",
                              valueId, node.is(OpKind::Param) ? "#fff6c2" : style.fill,
                              style.border, extra, escape(node.name), node.type.str()));
      id[&node] = valueId;
      continue;
    }
    // An operator (circle) and, for ops with a result, the value it makes (box).
    std::string opId = valueId + "_op";
    emit(block, fmt::format("  {} [shape=circle, style=filled, fillcolor=\"{}\", color=\"{}\", "
                            "fixedsize=false, label=\"{}\"];",
                            opId, style.fill, style.border, escape(node.mnemonic())));
    if (node.hasResult()) {
      // Gradients with respect to parameters stand out.
      bool gradient =
          paramGrads.count(&node) > 0 || (node.gradOf && node.gradOf->is(OpKind::Param));
      emit(block, fmt::format("  {} [shape=box, style=\"filled{}\", fillcolor=\"{}\", "
                              "color=\"{}\", penwidth={}, label=\"{}\\n{}\"];",
                              valueId, gradient ? ",bold" : "", gradient ? "#f8c8c8" : style.fill,
                              gradient ? "#b22222" : style.border, gradient ? 3 : 1,
                              escape(node.name), node.type.str()));
      emit(block, fmt::format("  {} -> {} [color=\"{}\"];", opId, valueId, style.border));
    }
    id[&node] = node.hasResult() ? valueId : opId;
    operatorId[&node] = opId;
  }
  for (auto &[block, lines] : clusterLines) {
    out << fmt::format("  subgraph \"cluster_{0}\" {{\n    label=\"{0}\";\n    style=rounded;\n"
                       "    color=\"#999999\";\n",
                       escape(block));
    for (const std::string &line : lines)
      out << "  " << line << '\n';
    out << "  }\n";
  }
  for (const std::string &line : topLines)
    out << line << '\n';
  // Edges from operand values to operators (deduplicated for collapsed blocks).
  std::set<std::pair<std::string, std::string>> edges;
  for (const auto &owned : graph.nodes()) {
    const Node &node = *owned;
    if (options.collapseBlocks && !blockOf(node).empty()) {
      for (const Node *operand : node.operands)
        if (id.at(operand) != id.at(&node))
          edges.insert({id.at(operand), id.at(&node)});
      continue;
    }
    if (node.isLeaf() || node.is(OpKind::Const))
      continue;
    for (const Node *operand : node.operands)
      edges.insert({id.at(operand), operatorId.at(&node)});
  }
  for (const auto &[from, to] : edges)
    out << fmt::format("  {} -> {};\n", from, to);
  out << "}\n";
}

} // namespace gradc::ir
