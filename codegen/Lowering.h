//===- codegen/Lowering.h - ir::Graph to one LLVM function -----*- C++ -*-===//
//
// Lowers every node of a graph, in program order, into the body of
// `void <symbol>(const gradc_step_context *ctx)` (runtime/Abi.h), following
// the storage decisions of a KernelLayout.  Each node gets a basic block
// named after it whose first instruction carries `!gradc.node` metadata
// with the node's textual form; printModule turns that into a comment, so
// the printed IR reads side by side with the graph.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <string>

namespace llvm {
class Module;
class raw_ostream;
} // namespace llvm

namespace gradc::ir {
class Graph;
}

namespace gradc::codegen {

struct KernelLayout;

/// Adds the kernel function `symbol` to `module`.  Returns false and sets
/// `error` for a graph the lowering cannot handle.
bool lowerKernel(const ir::Graph &graph, const KernelLayout &layout, const std::string &symbol,
                 llvm::Module &module, std::string &error);

/// Prints `module` as LLVM assembly with a `; %node = ...` comment line
/// before the first instruction lowered from each graph node.
void printModule(const llvm::Module &module, llvm::raw_ostream &out);

} // namespace gradc::codegen
