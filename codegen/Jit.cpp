//===- codegen/Jit.cpp - Kernels compiled in process with ORC LLJIT -------===//
//
// A thin wrapper in the manner of LLVM's BuildingAJIT chapter 1: an LLJIT
// for the host, the process's symbols (libc's memcpy, the runtime's
// gradc_parallel_for) visible to generated code, and one JITDylib per added
// kernel so the same graph may be compiled twice under its own symbol.
// Modules are optimised with the same pipeline as the printed IR before
// they are handed to the JIT, which then only selects instructions.
//
//===----------------------------------------------------------------------===//
#include "codegen/Codegen.h"
#include "codegen/KernelLayout.h"
#include "codegen/Pipeline.h"
#include "ir/Graph.h"
#include "runtime/Abi.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/SubtargetFeature.h>

#include <fmt/format.h>

namespace gradc::codegen {

using namespace llvm;

struct Jit::Impl {
  CodegenOptions options;
  std::unique_ptr<orc::LLJIT> jit;
  std::unique_ptr<TargetMachine> machine; ///< for the optimisation pipeline
  int kernels = 0;
};

Jit::Jit() : impl_(std::make_unique<Impl>()) {}
Jit::~Jit() = default;

/// The JITDylib through which generated code finds symbols of this process.
static Expected<orc::JITDylibSP> setUpProcessSymbols(orc::LLJIT &jit) {
  orc::JITDylib &dylib = jit.getExecutionSession().createBareJITDylib("<process symbols>");
  auto generator = orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      jit.getDataLayout().getGlobalPrefix());
  if (!generator)
    return generator.takeError();
  dylib.addGenerator(std::move(*generator));
  // The runtime's C ABI by address too: an executable that links the
  // runtime statically does not export it for dlsym to find.
  orc::SymbolMap runtime;
  runtime[jit.mangleAndIntern("gradc_parallel_for")] = {
      orc::ExecutorAddr::fromPtr(&gradc_parallel_for),
      JITSymbolFlags::Exported | JITSymbolFlags::Callable};
  if (Error error = dylib.define(orc::absoluteSymbols(std::move(runtime))))
    return error;
  return orc::JITDylibSP(&dylib);
}

std::unique_ptr<Jit> Jit::create(const CodegenOptions &options, std::string &error) {
  initializeLLVM();
  TargetChoice choice;
  if (!chooseTarget(options, choice, error))
    return nullptr;
  if (Triple(choice.triple).getArch() != Triple(sys::getProcessTriple()).getArch()) {
    error = "the JIT runs code on this machine, not on " + choice.triple;
    return nullptr;
  }
  orc::JITTargetMachineBuilder targetBuilder{Triple(choice.triple)};
  targetBuilder.setCPU(choice.cpu);
  SubtargetFeatures features(choice.features);
  targetBuilder.addFeatures(features.getFeatures());
  std::string machineError;
  auto machine = createTargetMachine(options, machineError);
  if (!machine) {
    error = machineError;
    return nullptr;
  }
  switch (options.optLevel) {
  case 0:
    targetBuilder.setCodeGenOptLevel(CodeGenOptLevel::None);
    break;
  case 1:
    targetBuilder.setCodeGenOptLevel(CodeGenOptLevel::Less);
    break;
  case 2:
    targetBuilder.setCodeGenOptLevel(CodeGenOptLevel::Default);
    break;
  default:
    targetBuilder.setCodeGenOptLevel(CodeGenOptLevel::Aggressive);
    break;
  }

  auto jit = orc::LLJITBuilder()
                 .setJITTargetMachineBuilder(std::move(targetBuilder))
                 .setProcessSymbolsJITDylibSetup(setUpProcessSymbols)
                 .create();
  if (!jit) {
    error = "cannot create the JIT: " + toString(jit.takeError());
    return nullptr;
  }
  std::unique_ptr<Jit> result(new Jit());
  result->impl_->options = options;
  result->impl_->jit = std::move(*jit);
  result->impl_->machine = std::move(machine);
  return result;
}

bool Jit::addKernel(const ir::Graph &graph, const std::string &kernelName, rt::KernelSpec &spec,
                    std::string &error) {
  auto context = std::make_unique<LLVMContext>();
  KernelLayout layout;
  std::unique_ptr<Module> module = buildKernelModule(graph, kernelName, *context, layout, error);
  if (!module)
    return false;
  configureModule(*module, *impl_->machine);
  optimizeModule(*module, *impl_->machine, impl_->options.optLevel);

  std::string symbol = kernelSymbol(graph, kernelName);
  auto dylib = impl_->jit->createJITDylib(fmt::format("{}#{}", symbol, impl_->kernels++));
  if (!dylib) {
    error = toString(dylib.takeError());
    return false;
  }
  if (Error e = impl_->jit->addIRModule(
          *dylib, orc::ThreadSafeModule(std::move(module), std::move(context)))) {
    error = "cannot add kernel " + symbol + " to the JIT: " + toString(std::move(e));
    return false;
  }
  auto address = impl_->jit->lookup(*dylib, symbol);
  if (!address) {
    error = "cannot compile kernel " + symbol + ": " + toString(address.takeError());
    return false;
  }
  spec = layout.spec;
  spec.fn = address->toPtr<gradc_kernel_fn>();
  return true;
}

} // namespace gradc::codegen
