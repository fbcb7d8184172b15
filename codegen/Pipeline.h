//===- codegen/Pipeline.h - Target machine, optimisation, output -*- C++ -*-===//
//
// The steps shared by the JIT and the printers: building a kernel's module,
// choosing the target (the host CPU and its features by default, like
// -march=native), running LLVM's new-pass-manager pipeline on it, emitting
// object code or assembly, and compiling several kernels at once.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace llvm {
class LLVMContext;
class Module;
class TargetMachine;
} // namespace llvm

namespace gradc::ir {
class Graph;
}

namespace gradc::codegen {

struct CodegenOptions;
struct KernelLayout;

/// Registers LLVM's targets and reads LLVM options from GRADC_LLVM_OPTIONS;
/// safe to call any number of times.  False, with `error` set, when that
/// variable holds an option LLVM does not know.
bool initializeLLVM(std::string &error);

/// The LLVM options gradc sets before GRADC_LLVM_OPTIONS (which may
/// override them), as a command line: part of the kernel cache's key.
const char *codegenDefaults();

/// The target CPU's name and feature string for `options` ("host": the
/// running machine's, with every feature it reports).
struct TargetChoice {
  std::string triple, cpu, features;
};
bool chooseTarget(const CodegenOptions &options, TargetChoice &choice, std::string &error);

/// A TargetMachine for `options` (position-independent code, so an object
/// file can go into any executable).
std::unique_ptr<llvm::TargetMachine> createTargetMachine(const CodegenOptions &options,
                                                         std::string &error);

/// Lays out and lowers kernel `kernelName` of `graph` into a new verified
/// module.  Returns null and sets `error` on failure.
std::unique_ptr<llvm::Module> buildKernelModule(const ir::Graph &graph,
                                                const std::string &kernelName,
                                                llvm::LLVMContext &context, KernelLayout &layout,
                                                std::string &error);

/// Gives `module` the machine's triple and data layout, and every function
/// its target-cpu / target-features attributes.
void configureModule(llvm::Module &module, llvm::TargetMachine &machine);

/// Marks a kernel that runs once per epoch (a tail kernel) to be compiled
/// for compile speed: every function optnone (the pipeline leaves it alone
/// but for inlining the matmul bodies; instruction selection takes LLVM's
/// -O0 paths).  A fifth of the compile time of an optimised kernel.
void markRarelyRun(llvm::Module &module);

/// The options to optimise a kernel with: `options`, at level 0 for a
/// kernel markRarelyRun marked.
CodegenOptions kernelOptions(const CodegenOptions &options, bool rarelyRun);

/// Runs the optimisation pipeline of `options`: at level 0 LLVM's O0
/// pipeline; above, gradc's kernel pipeline (Pipeline::Kernel) or LLVM's
/// default O<optLevel> pipeline (Pipeline::LLVMDefault).
void optimizeModule(llvm::Module &module, llvm::TargetMachine &machine,
                    const CodegenOptions &options);

/// Target assembly of `module`.
bool emitAssemblyText(llvm::Module &module, llvm::TargetMachine &machine, std::string &out,
                      std::string &error);

/// The object file of `module` for `machine`, appended to `out`.  Returns
/// false and sets `error` when the target cannot emit one.
bool emitObjectCode(llvm::Module &module, llvm::TargetMachine &machine, std::vector<char> &out,
                    std::string &error);

/// Calls job(0), ..., job(count - 1) once each, on as many threads as there
/// are cores (at most `count`); the calling thread takes part.  Each job
/// must be independent of the others (its own LLVMContext and
/// TargetMachine), so the results do not depend on the thread count.
/// `maxThreads` (0: no limit) caps the threads.
void forEachInParallel(size_t count, const std::function<void(size_t)> &job,
                       unsigned maxThreads = 0);

} // namespace gradc::codegen
