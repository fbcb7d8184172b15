//===- ir/Printer.cpp - Textual form of the IR ----------------------------===//
#include "ir/Printer.h"
#include "ir/Diagnostics.h"
#include "ir/Graph.h"

#include <fmt/format.h>
#include <ostream>
#include <sstream>

namespace gradc::ir {

std::string formatNumber(double value) { return fmt::format("{}", value); }

static std::string quote(std::string_view text) {
  std::string result = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      result += '\\';
    result += c;
  }
  return result + '"';
}

/// The {...} attribute list of a node, driven by its row's attribute columns.
static std::string formatAttrs(const Node &node) {
  const OpInfo &info = node.info();
  const Attrs &a = node.attrs;
  std::vector<std::string> parts;
  if (info.valueAttr)
    parts.push_back(fmt::format("{}={}", info.valueAttr, formatNumber(a.value)));
  if (info.attrs & ATTR_AXES)
    parts.push_back(fmt::format("axes=[{}]", fmt::join(a.axes, ",")));
  if (info.attrs & ATTR_TRANS) {
    if (a.transA)
      parts.push_back("transpose_a");
    if (a.transB)
      parts.push_back("transpose_b");
  }
  if (info.attrs & ATTR_STREAM)
    parts.push_back(fmt::format("stream={}", a.stream));
  if (info.attrs & ATTR_INIT) {
    std::string init = a.init.kind;
    if (!a.init.args.empty()) {
      std::vector<std::string> args;
      for (double arg : a.init.args)
        args.push_back(formatNumber(arg));
      init += fmt::format("({})", fmt::join(args, ","));
    }
    parts.push_back("init=" + init);
    if (a.fanIn || a.fanOut) {
      parts.push_back(fmt::format("fan_in={}", a.fanIn));
      parts.push_back(fmt::format("fan_out={}", a.fanOut));
    }
    if (a.decay)
      parts.push_back(fmt::format("decay={}", formatNumber(*a.decay)));
  }
  if (info.attrs & ATTR_KEY)
    parts.push_back("key=" + quote(a.key));
  if (parts.empty())
    return {};
  return fmt::format(" {{{}}}", fmt::join(parts, ", "));
}

std::string formatOptimizer(const OptimizerConfig &config) {
  std::vector<std::string> settings;
  if (config.kind == "sgd") {
    if (config.momentum != 0)
      settings.push_back("momentum=" + formatNumber(config.momentum));
    if (config.nesterov)
      settings.push_back("nesterov");
  } else {
    settings.push_back("beta1=" + formatNumber(config.beta1));
    settings.push_back("beta2=" + formatNumber(config.beta2));
    settings.push_back("eps=" + formatNumber(config.eps));
  }
  if (config.clipGradNorm > 0)
    settings.push_back("clip_grad_norm=" + formatNumber(config.clipGradNorm));
  if (settings.empty())
    return config.kind;
  return fmt::format("{}({})", config.kind, fmt::join(settings, ", "));
}

std::string toString(const Node &node, const PrintOptions &options) {
  std::string line;
  if (node.hasResult())
    line = fmt::format("%{} = ", node.name);
  line += node.mnemonic();
  for (size_t i = 0; i < node.operands.size(); ++i)
    line += fmt::format("{}%{}", i ? ", " : " ", node.operands[i]->name);
  line += formatAttrs(node);
  if (node.hasResult())
    line += " : " + node.type.str();
  if (node.gradOf)
    line += fmt::format(" grad(%{})", node.gradOf->name);
  if (options.locations && node.loc.valid())
    line += fmt::format(" loc({}:{}:{})", quote(*node.loc.file), node.loc.line, node.loc.col);
  if (options.traceSources && node.gradOf) {
    const Node &of = *node.gradOf;
    std::string where;
    if (of.loc.valid()) {
      std::string_view text = options.traceSources->lineText(of.loc);
      while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
      std::string file = *of.loc.file;
      if (size_t slash = file.rfind('/'); slash != std::string::npos)
        file = file.substr(slash + 1);
      where = text.empty() ? fmt::format("  ({}:{})", file, of.loc.line)
                           : fmt::format("  ({}:{}  {})", file, of.loc.line, text);
    }
    line += fmt::format("  // d/d {}{}", of.name, where);
  }
  return line;
}

void print(const Graph &graph, std::ostream &out, const PrintOptions &options) {
  out << fmt::format("graph @{} ({})", graph.name, graphKindName(graph.kind));
  if (graph.weightDecay != 0)
    out << " weight_decay=" << formatNumber(graph.weightDecay);
  if (graph.batch != 0)
    out << " batch=" << graph.batch;
  out << " optimizer=" << formatOptimizer(graph.optimizer) << " {\n";
  // A section label is printed whenever the phase changes, starting with
  // the first node's, so the parser can give every node its phase back.
  bool first = true;
  Phase current = Phase::Forward;
  for (const auto &node : graph.nodes()) {
    if (first || node->phase != current) {
      out << phaseName(node->phase) << ":\n";
      current = node->phase;
      first = false;
    }
    out << "  " << toString(*node, options) << '\n';
  }
  if (!graph.outputs.empty()) {
    std::vector<std::string> results;
    for (const GraphOutput &result : graph.outputs)
      results.push_back(fmt::format("{}=%{}", result.key, result.value->name));
    out << "  return " << fmt::format("{}", fmt::join(results, ", ")) << '\n';
  }
  out << "}\n";
}

std::string toString(const Graph &graph, const PrintOptions &options) {
  std::ostringstream out;
  print(graph, out, options);
  return out.str();
}

} // namespace gradc::ir
