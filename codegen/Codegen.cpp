//===- codegen/Codegen.cpp - Kernel symbols, signatures and printers ------===//
#include "codegen/Codegen.h"
#include "codegen/KernelLayout.h"
#include "codegen/Lowering.h"
#include "codegen/Pipeline.h"
#include "ir/Graph.h"

#include <cctype>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

namespace gradc::codegen {

static std::string identifier(const std::string &text) {
  std::string out = text;
  for (char &c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      c = '_';
  return out;
}

std::string kernelSymbol(const ir::Graph &graph, const std::string &kernelName) {
  return "gradc_" + identifier(graph.name) + "_" + identifier(kernelName);
}

rt::KernelSpec describeKernel(const ir::Graph &graph, const std::string &kernelName) {
  KernelLayout layout;
  std::string error;
  // A graph that cannot be compiled still has a signature; the error is
  // reported when it is compiled.
  layoutKernel(graph, kernelName, layout, error);
  return layout.spec;
}

/// The kernel's module for `options`, optimised or not; null on error.
static std::unique_ptr<llvm::Module> prepare(const ir::Graph &graph, const std::string &kernelName,
                                             const CodegenOptions &options, bool optimized,
                                             llvm::LLVMContext &context,
                                             std::unique_ptr<llvm::TargetMachine> &machine,
                                             std::string &error) {
  machine = createTargetMachine(options, error);
  if (!machine)
    return nullptr;
  KernelLayout layout;
  std::unique_ptr<llvm::Module> module =
      buildKernelModule(graph, kernelName, context, layout, error);
  if (!module)
    return nullptr;
  configureModule(*module, *machine);
  if (optimized)
    optimizeModule(*module, *machine, options);
  return module;
}

bool emitLLVMIR(const ir::Graph &graph, const std::string &kernelName,
                const CodegenOptions &options, bool optimized, std::string &out,
                std::string &error) {
  llvm::LLVMContext context;
  std::unique_ptr<llvm::TargetMachine> machine;
  auto module = prepare(graph, kernelName, options, optimized, context, machine, error);
  if (!module)
    return false;
  out.clear();
  llvm::raw_string_ostream os(out);
  printModule(*module, os);
  os.flush();
  return true;
}

bool emitAssembly(const ir::Graph &graph, const std::string &kernelName,
                  const CodegenOptions &options, std::string &out, std::string &error) {
  llvm::LLVMContext context;
  std::unique_ptr<llvm::TargetMachine> machine;
  auto module = prepare(graph, kernelName, options, /*optimized=*/true, context, machine, error);
  if (!module)
    return false;
  return emitAssemblyText(*module, *machine, out, error);
}

} // namespace gradc::codegen
