//===- codegen/Object.h - Ahead-of-time object files ------------*- C++ -*-===//
//
// `gradc build`: several kernels of one model compiled into ONE relocatable
// object, together with the constant descriptor of runtime/AotModel.h that
// lets the runtime call them without LLVM.  Each kernel goes through
// exactly the steps the JIT takes (lowering, configureModule, the -O3
// pipeline, instruction selection for the same CPU and features), each in
// its own module, and the optimised modules are linked only afterwards, so
// the machine code and hence the results are those of `gradc train` on the
// same CPU.  This header keeps LLVM out of its users' includes.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/Codegen.h"
#include "runtime/Model.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gradc::ir {
class Graph;
}

namespace gradc::codegen {

/// One kernel of an object file.
struct ObjectKernel {
  const ir::Graph *graph = nullptr;
  /// The descriptor's kernel name (runtime/AotModel.h): "train_step",
  /// "eval", "predict", "train_step_tail", "eval_tail".
  std::string role;
  /// The name in its C symbol, kernelSymbol(graph, symbolName); unique in
  /// the object ("train_step_tail_96").
  std::string symbolName;
  /// Compiled for compile speed, as KernelRequest::rarelyRun.
  bool rarelyRun = false;
};

/// What the descriptor says about the model besides its kernels.
struct ObjectModelInfo {
  std::string name, source, optimizer;
  std::string schedule = "constant";
  double lr = 0.01, stepSize = 1, gamma = 0.1, lrMin = 0;
  int64_t epochs = 10;
  uint64_t seed = 1;
};

/// The descriptor's C symbol: "gradc_model_<model name>".
std::string modelSymbol(const std::string &modelName);

/// What emitModelObject produced.
struct ModelObject {
  std::string bytes;                 ///< the relocatable object file
  std::string triple, cpu;           ///< what it was compiled for
  std::vector<rt::KernelSpec> specs; ///< per kernel, in order (fn null); name = role
};

/// Compiles `kernels` for `options` (CPU, triple, -O level) into one
/// object with the descriptor of `info`.  Returns false and sets `error`
/// on failure.
bool emitModelObject(const std::vector<ObjectKernel> &kernels, const ObjectModelInfo &info,
                     const CodegenOptions &options, ModelObject &object, std::string &error);

/// Whether code for `triple` runs on this machine (the same architecture).
bool runsOnHost(const std::string &triple);

/// Writes a static library (GNU ar format with a symbol table) at `path`
/// holding `object` as member `memberName`.
bool writeStaticLibrary(const std::string &path, const std::string &memberName,
                        const std::string &object, std::string &error);

} // namespace gradc::codegen
