//===- ir/Dot.h - Graphviz drawings of a graph -----------------*- C++ -*-===//
//
// Draws a graph the way lecture Figure 13 does: values are boxes labelled
// with name and shape, operators are circles between them, data flows left
// to right.  Forward, backward and update ops have their own colours,
// parameter gradients are highlighted, and values of a block instance
// (hierarchical names such as dense1.W) are drawn inside one cluster.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <iosfwd>

namespace gradc::ir {
class Graph;

struct DotOptions {
  bool collapseBlocks = false; ///< draw each block instance as one node
};

void printDot(const Graph &graph, std::ostream &out, const DotOptions &options = {});

} // namespace gradc::ir
