//===- codegen/Partition.h - A kernel's module cut for parallel codegen -*- C++ -*-===//
//
// Instruction selection and register allocation of a training step's
// module take most of the JIT's time, one function after another on one
// thread, while the other core idles.  The functions of a kernel module
// compile independently (its entry, the products' task and range
// functions, the epilogues and fused loops; only the products' small
// wrappers are alwaysinline and go into each caller), so the module can
// be cut: every part is lowered
// from the same graph in its own LLVMContext, keeps the definitions of its
// share of the functions and declares the others, and compiles on its own
// thread to an object that ORC links with the others.
//
// The cut depends on the module alone, never on the thread count or the
// process, and each function is compiled with the same passes whichever
// part holds it: kernels compute the same bits either way, and the kernel
// cache may link a part compiled now with one an earlier process stored.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <string>

namespace llvm {
class Module;
} // namespace llvm

namespace gradc::codegen {

/// Whether `module` can be cut: it defines no mutable global (each part
/// would get its own copy).
bool canPartition(const llvm::Module &module);

/// Keeps in `module` part `part` of `parts`: the functions that compile on
/// their own (defined, not alwaysinline) are shared out by their estimated
/// compile cost, largest first, each to the part with the least so far.
/// Those of other parts become declarations; all of them get external
/// linkage under a name prefixed with `symbol` (the kernel's), hidden, so
/// the parts link to each other and not to another kernel's.  The
/// alwaysinline functions no kept function uses are deleted.
void keepPartition(llvm::Module &module, const std::string &symbol, unsigned part, unsigned parts);

} // namespace gradc::codegen
