//===- codegen/Pipeline.h - Target machine, optimisation, output -*- C++ -*-===//
//
// The steps shared by the JIT and the printers: building a kernel's module,
// choosing the target (the host CPU and its features by default, like
// -march=native), running LLVM's new-pass-manager pipeline on it, and
// printing assembly.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <memory>
#include <string>

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

/// Registers LLVM's targets; safe to call any number of times.
void initializeLLVM();

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

/// buildPerModuleDefaultPipeline(O<optLevel>) (O0: the O0 pipeline).
void optimizeModule(llvm::Module &module, llvm::TargetMachine &machine, int optLevel);

/// Target assembly of `module`.
bool emitAssemblyText(llvm::Module &module, llvm::TargetMachine &machine, std::string &out,
                      std::string &error);

} // namespace gradc::codegen
