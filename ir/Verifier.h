//===- ir/Verifier.h - Structural and type checks of a graph ---*- C++ -*-===//
#pragma once

#include <string>
#include <string_view>

namespace gradc {
class Diagnostics;
}

namespace gradc::ir {
class Graph;

/// Checks that `graph` is well formed: unique names, operands defined before
/// use, every result type equal to what shape inference gives, attributes
/// in range (dropout p in [0, 1), weight decay >= 0, known initialisers),
/// updates writing parameters or state.  Reports every problem at the
/// node's location; returns true when there were none.
bool verify(const Graph &graph, Diagnostics &diags);

/// Initialisers a param or state may name, with the number of arguments
/// each takes.  Returns -1 for an unknown name.
int initializerArity(std::string_view name);
/// "xavier_normal, xavier_uniform, ..." for "expected one of" messages.
std::string initializerNames();

} // namespace gradc::ir
