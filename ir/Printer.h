//===- ir/Printer.h - Textual form of the IR -------------------*- C++ -*-===//
//
//   graph @lecture (train) weight_decay=0.01 optimizer=sgd {
//   forward:
//     %W1 = param {init=xavier_normal, fan_in=4, fan_out=5} : f32[5,4] loc("lecture.grad":5:3)
//     %z = matmul %W1, %x : f32[5] loc("lecture.grad":8:3)
//   backward:
//     %dL_do = sub %o, %y : f32[2] grad(%o) loc("lecture.grad":12:3)
//   update:
//     update %W1, %W1.next
//     return loss=%L, objective=%J
//   }
//
// The IR parser (ir/IRParser.h) reads exactly this back; print(parse(t)) == t.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <iosfwd>
#include <string>

namespace gradc {
class SourceManager;
}

namespace gradc::ir {
class Graph;
class Node;
struct OptimizerConfig;

struct PrintOptions {
  bool locations = true; ///< print loc("file":line:col) after each op
  /// With sources: each gradient op gets a trailing comment naming the
  /// forward value it differentiates and the model line that value comes
  /// from, e.g. `// d/d o  (lecture.grad:19  o = W2 @ h)`.  The parser
  /// ignores comments, so the text still parses back.
  const SourceManager *traceSources = nullptr;
};

void print(const Graph &graph, std::ostream &out, const PrintOptions &options = {});
std::string toString(const Graph &graph, const PrintOptions &options = {});
/// One node on one line, without indentation or newline.
std::string toString(const Node &node, const PrintOptions &options = {});
/// "sgd", "sgd(momentum=0.9, nesterov)", "adam(beta1=0.9, beta2=0.999, eps=1e-08)".
std::string formatOptimizer(const OptimizerConfig &config);
/// A double printed so that reading it back gives the same double.
std::string formatNumber(double value);

} // namespace gradc::ir
