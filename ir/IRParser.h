//===- ir/IRParser.h - Reads the textual IR back ---------------*- C++ -*-===//
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace gradc {
class Diagnostics;
class SourceManager;
} // namespace gradc

namespace gradc::ir {
class Graph;

/// Parses the text that ir/Printer.h writes.  Reports every error it can
/// find (it recovers at the end of each line), then verifies the graph.
/// Returns nullptr when there was any error.
std::unique_ptr<Graph> parseGraph(std::string_view text, const std::string *fileName,
                                  Diagnostics &diags);

} // namespace gradc::ir
