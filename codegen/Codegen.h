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
#include <vector>

namespace gradc::ir {
class Graph;
}

namespace gradc::codegen {

/// Which LLVM passes optimise a kernel (Pipeline.cpp, kernelPipeline).
enum class Pipeline {
  Kernel,      ///< the few passes gradc's lowering needs: fast to compile
  LLVMDefault, ///< LLVM's default O1/O2/O3 pipeline, for comparison
};

struct CodegenOptions {
  std::string cpu = "host"; ///< "host" or an LLVM CPU name ("x86-64-v3")
  std::string triple;       ///< empty: the host's
  int optLevel = 3;         ///< 0..3: the code generator's level, and the pipeline's
  Pipeline pipeline = Pipeline::Kernel;
  /// The Jit keeps compiled objects here, keyed by a hash of the kernel's
  /// graph, the build of gradc and LLVM, target and options; empty: no cache.
  std::string cacheDir;
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

/// Where one kernel's compile time went (CPU time of its job).
struct KernelCompileTime {
  std::string name;
  double lowerMs = 0;       ///< ir::Graph to LLVM IR
  double optimizeMs = 0;    ///< LLVM's optimisation pipeline
  double machineCodeMs = 0; ///< instruction selection to an object
  bool cached = false;      ///< the object came from the kernel cache
};

/// Where compile time goes, summed over the kernels a Jit compiled.
struct CompileTimes {
  double lowerMs = 0;       ///< ir::Graph to LLVM IR
  double optimizeMs = 0;    ///< LLVM's optimisation pipeline
  double machineCodeMs = 0; ///< instruction selection to executable code, and linking
  int kernels = 0;
  int cached = 0;                           ///< kernels whose object came from the cache
  std::vector<KernelCompileTime> perKernel; ///< in the order they were added
};

/// One kernel to compile: `graph` as `name`, its signature into `*spec`.
struct KernelRequest {
  const ir::Graph *graph = nullptr;
  std::string name;
  rt::KernelSpec *spec = nullptr;
  /// Compiled for compile speed, not run speed (markRarelyRun): the tail
  /// kernels, called once per epoch.
  bool rarelyRun = false;
};

/// An in-process compiler: each added graph becomes a callable kernel that
/// stays valid as long as the Jit lives.
class Jit {
public:
  static std::unique_ptr<Jit> create(const CodegenOptions &options, std::string &error);
  ~Jit();

  /// Compiles `graph` as `kernelName`; fills `spec` (with fn set).
  bool addKernel(const ir::Graph &graph, const std::string &kernelName, rt::KernelSpec &spec,
                 std::string &error);

  /// Compiles several kernels at once, in parallel on `threads` threads
  /// (0: all cores).  Their symbols (kernelSymbol) must differ.  Calls may
  /// come from several threads, one at a time: a background compilation
  /// must end before the next starts.
  bool addKernels(const std::vector<KernelRequest> &requests, std::string &error,
                  unsigned threads = 0);

  /// Compile time so far.  With parallel compilation the phases are summed
  /// over threads (CPU time), so they may add up to more than the wall time.
  /// Not to be read while addKernels runs.
  const CompileTimes &times() const;

private:
  Jit();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace gradc::codegen
