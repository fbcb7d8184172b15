//===- codegen/Codegen.h - From ir::Graph to native code -------*- C++ -*-===//
//
// Lowers a graph to one LLVM function per kernel, optimises the module with
// LLVM's new pass manager for the target CPU, and either JIT-compiles it
// with ORC LLJIT (Jit) or prints it (LLVM IR, assembly).  This header keeps
// LLVM out of its users' includes.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Model.h"

#include <memory>
#include <string>

namespace gradc::ir {
class Graph;
}

namespace gradc::codegen {

struct CodegenOptions {
  std::string cpu = "host"; ///< "host" or an LLVM CPU name ("x86-64-v3")
  std::string triple;       ///< empty: the host's
  int optLevel = 3;         ///< 0..3, LLVM's -O level
};

/// The C symbol of a kernel: "gradc_<graph name>_<kernel name>".
std::string kernelSymbol(const ir::Graph &graph, const std::string &kernelName);

/// The kernel's signature and arena size, without compiling anything
/// (fn stays null).
rt::KernelSpec describeKernel(const ir::Graph &graph, const std::string &kernelName);

/// Textual LLVM IR of the kernel, before (`optimized` false) or after the
/// LLVM optimisation pipeline.  Returns false and sets `error` on failure.
bool emitLLVMIR(const ir::Graph &graph, const std::string &kernelName,
                const CodegenOptions &options, bool optimized, std::string &out,
                std::string &error);

/// Target assembly of the optimised kernel.
bool emitAssembly(const ir::Graph &graph, const std::string &kernelName,
                  const CodegenOptions &options, std::string &out, std::string &error);

/// An in-process compiler: each added graph becomes a callable kernel that
/// stays valid as long as the Jit lives.
class Jit {
public:
  static std::unique_ptr<Jit> create(const CodegenOptions &options, std::string &error);
  ~Jit();

  /// Compiles `graph` as `kernelName`; fills `spec` (with fn set).
  bool addKernel(const ir::Graph &graph, const std::string &kernelName, rt::KernelSpec &spec,
                 std::string &error);

private:
  Jit();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace gradc::codegen
