//===- codegen/Pipeline.cpp - Target machine, optimisation, output --------===//
#include "codegen/Pipeline.h"
#include "codegen/Codegen.h"
#include "codegen/KernelLayout.h"
#include "codegen/Lowering.h"
#include "codegen/MatMul.h"
#include "codegen/RebaseAddresses.h"
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "ir/Verifier.h"

#include <llvm/Analysis/CGSCCPassManager.h>
#include <llvm/Analysis/LoopAnalysisManager.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/SubtargetFeature.h>
#include <llvm/TargetParser/Triple.h>
#include <llvm/Transforms/IPO/AlwaysInliner.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/EarlyCSE.h>
#include <llvm/Transforms/Scalar/LICM.h>
#include <llvm/Transforms/Scalar/LoopPassManager.h>
#include <llvm/Transforms/Scalar/SROA.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>
#include <llvm/Transforms/Vectorize/LoopVectorize.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <sstream>
#include <thread>

namespace gradc::codegen {

using namespace llvm;

namespace {

/// Two of the code generator's passes are off, through the options of
/// TargetPassConfig that turn them off (LLVM has no per-module switch).
/// Both are set before GRADC_LLVM_OPTIONS is parsed, so that it can turn
/// them back on (e.g. -disable-lsr=false).
///
/// Loop strength reduction was a sixth of `llc`'s time on the fashion step
/// (and IVUsers, its analysis, another 6%), most of it in loops where it
/// found nothing to gain.  Where it paid, the lowering now emits its result
/// itself: the products' inner loop bumps its own pointers (MatMul.cpp), an
/// epilogue carries row pointers (Lowering.cpp), and RebaseAddressesPass
/// takes the loop-invariant part out of a fused loop's addresses.
///
/// The post-RA list scheduler, which LLVM runs at -O3 for this host's CPU
/// (AMD Zen 3) and not at -O1, was 7% of `llc` on the fashion step: that
/// is all the difference between -O1 and -O3 in the x86 code generator
/// (the assembly is otherwise the same, to 8 lines of 3,900).  An
/// out-of-order core reorders the instructions itself; the products ran
/// at the same rate without it (README, "Choices beyond the brief").  It
/// is off for `gradc build --cpu=` an in-order core too, where it may
/// matter: GRADC_LLVM_OPTIONS=-disable-post-ra=false for such a target.
constexpr const char *kDisabledPasses[] = {"disable-lsr", "disable-post-ra"};

void setCodegenDefaults() {
  for (const char *name : kDisabledPasses)
    if (cl::Option *option = cl::getRegisteredOptions().lookup(name))
      static_cast<cl::opt<bool> *>(option)->setValue(true);
}

} // namespace

const char *codegenDefaults() {
  static const std::string line = [] {
    std::string options;
    for (const char *name : kDisabledPasses)
      options += std::string(options.empty() ? "-" : " -") + name;
    return options;
  }();
  return line.c_str();
}

bool initializeLLVM(std::string &error) {
  static std::once_flag once;
  static std::string optionsError; // the same answer for every call
  std::call_once(once, [] {
    // All targets, not only the native one: `gradc build` may write an
    // object for another CPU family.
    InitializeAllTargetInfos();
    InitializeAllTargets();
    InitializeAllTargetMCs();
    InitializeAllAsmPrinters();
    InitializeAllAsmParsers();
    setCodegenDefaults();
    // LLVM's own options, for experiments (as clang's -mllvm), e.g.
    // GRADC_LLVM_OPTIONS="-time-passes"; part of the kernel cache's key.
    // A stream for LLVM's complaints, so that an unknown option is gradc's
    // error rather than LLVM's exit(1) with advice about `gradc --help`.
    const char *argv[] = {"gradc"};
    std::string complaints;
    raw_string_ostream os(complaints);
    if (!cl::ParseCommandLineOptions(1, argv, "", &os, "GRADC_LLVM_OPTIONS")) {
      os.flush();
      StringRef first = StringRef(complaints).split('\n').first.split("  Try:").first;
      first.consume_front("gradc: ");
      optionsError = "GRADC_LLVM_OPTIONS: " + first.trim().rtrim('.').str() +
                     " (LLVM's own options, as llc takes them)";
    }
  });
  error = optionsError;
  return optionsError.empty();
}

static CodeGenOptLevel codeGenLevel(int optLevel) {
  switch (optLevel) {
  case 0:
    return CodeGenOptLevel::None;
  case 1:
    return CodeGenOptLevel::Less;
  case 2:
    return CodeGenOptLevel::Default;
  default:
    return CodeGenOptLevel::Aggressive;
  }
}

bool chooseTarget(const CodegenOptions &options, TargetChoice &choice, std::string &error) {
  if (options.optLevel < 0 || options.optLevel > 3) {
    error = "optimization level must be 0, 1, 2 or 3, got " + std::to_string(options.optLevel);
    return false;
  }
  choice.triple =
      Triple::normalize(options.triple.empty() ? sys::getProcessTriple() : options.triple);
  if (options.cpu.empty() || options.cpu == "host") {
    if (!options.triple.empty() &&
        Triple(choice.triple).getArch() != Triple(sys::getProcessTriple()).getArch()) {
      error = "cpu 'host' needs the host's triple, not " + choice.triple;
      return false;
    }
    choice.cpu = sys::getHostCPUName().str();
    SubtargetFeatures features;
    for (const auto &feature : sys::getHostCPUFeatures())
      features.AddFeature(feature.getKey(), feature.getValue());
    choice.features = features.getString();
  } else {
    choice.cpu = options.cpu;
    choice.features.clear();
  }
  return true;
}

std::unique_ptr<TargetMachine> createTargetMachine(const CodegenOptions &options,
                                                   std::string &error) {
  if (!initializeLLVM(error))
    return nullptr;
  TargetChoice choice;
  if (!chooseTarget(options, choice, error))
    return nullptr;
  std::string lookupError;
  const Target *target = TargetRegistry::lookupTarget(choice.triple, lookupError);
  if (!target) {
    error = "unknown target '" + choice.triple + "': " + lookupError;
    return nullptr;
  }
  // Asked for the generic CPU, which does not print a warning about an
  // unknown one.
  std::unique_ptr<MCSubtargetInfo> subtarget(target->createMCSubtargetInfo(choice.triple, "", ""));
  if (!subtarget || !subtarget->isCPUStringValid(choice.cpu)) {
    error = "unknown CPU '" + choice.cpu + "' for target " + choice.triple;
    return nullptr;
  }
  TargetOptions targetOptions;
  std::unique_ptr<TargetMachine> machine(
      target->createTargetMachine(choice.triple, choice.cpu, choice.features, targetOptions,
                                  Reloc::PIC_, std::nullopt, codeGenLevel(options.optLevel)));
  if (!machine)
    error = "cannot create a target machine for " + choice.triple;
  return machine;
}

std::unique_ptr<Module> buildKernelModule(const ir::Graph &graph, const std::string &kernelName,
                                          LLVMContext &context, KernelLayout &layout,
                                          std::string &error) {
  // The lowering trusts shapes and operand order; a graph that breaks them
  // is reported here rather than crashing it.
  std::ostringstream problems;
  Diagnostics diags(nullptr, problems);
  if (!ir::verify(graph, diags)) {
    error = "cannot compile graph @" + graph.name + ":\n" + problems.str();
    return nullptr;
  }
  if (!layoutKernel(graph, kernelName, layout, error))
    return nullptr;
  std::string symbol = kernelSymbol(graph, kernelName);
  auto module = std::make_unique<Module>(symbol, context);
  if (!lowerKernel(graph, layout, symbol, *module, error))
    return nullptr;
  std::string invalid;
  raw_string_ostream os(invalid);
  if (verifyModule(*module, &os)) {
    // A bug of the lowering, not of the user's graph; still reported, not
    // aborted on, so the tools can show what went wrong.
    error = "internal error: invalid LLVM IR for kernel " + symbol + ":\n" + os.str();
    return nullptr;
  }
  return module;
}

void configureModule(Module &module, TargetMachine &machine) {
  module.setTargetTriple(machine.getTargetTriple().str());
  module.setDataLayout(machine.createDataLayout());
  // Matrix products are sized for the target's vector registers, which
  // the graph lowering does not know.
  defineMatMuls(module, machine);
  for (Function &fn : module)
    if (!fn.isDeclaration()) {
      fn.addFnAttr("target-cpu", machine.getTargetCPU());
      if (!machine.getTargetFeatureString().empty())
        fn.addFnAttr("target-features", machine.getTargetFeatureString());
    }
}

void markRarelyRun(Module &module) {
  for (Function &fn : module)
    if (!fn.isDeclaration() && !fn.hasFnAttribute(Attribute::AlwaysInline)) {
      fn.addFnAttr(Attribute::OptimizeNone);
      fn.addFnAttr(Attribute::NoInline);
    }
}

CodegenOptions kernelOptions(const CodegenOptions &options, bool rarelyRun) {
  CodegenOptions result = options;
  if (rarelyRun)
    result.optLevel = 0;
  return result;
}

namespace {

/// LICM, except in the functions that hold the products' code
/// (kLoopsLaidOut): their loops come with the invariants where they
/// belong, and LICM found nothing there but index arithmetic of outer loops
/// to keep in registers.  It was a quarter of the kernel pipeline on the
/// fashion step (its alias queries against the epilogue calls in the tile
/// loops); without it there, the step's compile is 5% cheaper, and the
/// trainer executes 0.06% fewer instructions, with the same inner loops.
struct LicmUnlessLaidOut : PassInfoMixin<LicmUnlessLaidOut> {
  FunctionToLoopPassAdaptor licm =
      createFunctionToLoopPassAdaptor(LICMPass(LICMOptions()), /*UseMemorySSA=*/true);
  PreservedAnalyses run(Function &fn, FunctionAnalysisManager &analyses) {
    if (fn.hasFnAttribute(kLoopsLaidOut))
      return PreservedAnalyses::all();
    return licm.run(fn, analyses);
  }
};

/// The passes a kernel needs, and only those.  The lowering already emits
/// what -O3 would work hard to find: matrix products as explicit
/// register-tiled vector code, fused elementwise loops with noalias scopes,
/// no calls but to the thread pool and its own functions.  What is left to
/// do is to inline the product wrappers (alwaysinline), clean up address
/// arithmetic, hoist loop invariants out of the elementwise loops and
/// vectorise them.  Measured against LLVM's -O3 on the fashion model: the
/// same step time, 2.5x less compile time (README, "Compile time").
/// Interleaving (unrolling vector loops) is left off: it doubled the code
/// of every small loop for no measurable gain.  InstCombine runs once,
/// after the vectoriser (which needs the cleanup most): a first run before
/// it cost 3% of the fashion step's compile and changed neither the step's
/// bits nor its instruction count.
ModulePassManager kernelPipeline() {
  FunctionPassManager function;
  function.addPass(SROAPass(SROAOptions::ModifyCFG));
  function.addPass(EarlyCSEPass(/*UseMemorySSA=*/true));
  function.addPass(SimplifyCFGPass());
  function.addPass(LicmUnlessLaidOut());
  function.addPass(LoopVectorizePass(
      LoopVectorizeOptions(/*InterleaveOnlyWhenForced=*/true, /*VectorizeOnlyWhenForced=*/false)));
  function.addPass(InstCombinePass());
  function.addPass(SimplifyCFGPass());
  function.addPass(RebaseAddressesPass());
  ModulePassManager module;
  module.addPass(AlwaysInlinerPass());
  module.addPass(createModuleToFunctionPassAdaptor(std::move(function)));
  return module;
}

} // namespace

void optimizeModule(Module &module, TargetMachine &machine, const CodegenOptions &options) {
  const int optLevel = options.optLevel;
  LoopAnalysisManager lam;
  FunctionAnalysisManager fam;
  CGSCCAnalysisManager cgam;
  ModuleAnalysisManager mam;
  PipelineTuningOptions tuning;
  tuning.LoopVectorization = optLevel >= 2;
  tuning.SLPVectorization = optLevel >= 2;
  tuning.LoopUnrolling = optLevel >= 1;
  tuning.LoopInterleaving = optLevel >= 2;
  PassBuilder builder(&machine, tuning);
  builder.registerModuleAnalyses(mam);
  builder.registerCGSCCAnalyses(cgam);
  builder.registerFunctionAnalyses(fam);
  builder.registerLoopAnalyses(lam);
  builder.crossRegisterProxies(lam, fam, cgam, mam);
  // LLVM's own pipelines end with the same address rewrite as the kernel
  // pipeline: the code generator runs without loop strength reduction for
  // both (setCodegenDefaults).
  builder.registerOptimizerLastEPCallback([](ModulePassManager &passes, OptimizationLevel) {
    passes.addPass(createModuleToFunctionPassAdaptor(RebaseAddressesPass()));
  });
  ModulePassManager passes;
  if (optLevel == 0)
    passes = builder.buildO0DefaultPipeline(OptimizationLevel::O0);
  else if (options.pipeline == Pipeline::Kernel)
    passes = kernelPipeline();
  else if (optLevel == 1)
    passes = builder.buildPerModuleDefaultPipeline(OptimizationLevel::O1);
  else if (optLevel == 2)
    passes = builder.buildPerModuleDefaultPipeline(OptimizationLevel::O2);
  else
    passes = builder.buildPerModuleDefaultPipeline(OptimizationLevel::O3);
  passes.run(module, mam);
}

namespace {

bool emitFile(Module &module, TargetMachine &machine, CodeGenFileType type,
              SmallVectorImpl<char> &buffer) {
  raw_svector_ostream os(buffer);
  legacy::PassManager codegen;
  if (machine.addPassesToEmitFile(codegen, os, nullptr, type))
    return false;
  codegen.run(module);
  return true;
}

} // namespace

bool emitAssemblyText(Module &module, TargetMachine &machine, std::string &out,
                      std::string &error) {
  SmallString<0> buffer;
  if (!emitFile(module, machine, CodeGenFileType::AssemblyFile, buffer)) {
    error = "the target cannot emit assembly";
    return false;
  }
  out.assign(buffer.begin(), buffer.end());
  return true;
}

bool emitObjectCode(Module &module, TargetMachine &machine, std::vector<char> &out,
                    std::string &error) {
  SmallString<0> buffer;
  if (!emitFile(module, machine, CodeGenFileType::ObjectFile, buffer)) {
    error = "the target " + machine.getTargetTriple().str() + " cannot emit object files";
    return false;
  }
  out.insert(out.end(), buffer.begin(), buffer.end());
  return true;
}

void forEachInParallel(size_t count, const std::function<void(size_t)> &job, unsigned maxThreads) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < count; i = next++)
      job(i);
  };
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  size_t threads = std::min<size_t>(count, maxThreads > 0 ? std::min(maxThreads, cores) : cores);
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t)
    helpers.emplace_back(work);
  work();
  for (std::thread &helper : helpers)
    helper.join();
}

} // namespace gradc::codegen
