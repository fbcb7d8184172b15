//===- runtime/Model.h - What the runtime knows about a compiled model ---===//
//
// Plain data describing compiled kernels and the tensors they touch.  The
// JIT (codegen/) fills it from an ir::Graph; an ahead-of-time trainer gets
// the same data from its generated header.  Nothing here depends on the
// compiler or on LLVM.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Abi.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gradc::rt {

enum class Role : uint8_t {
  Input,  ///< data fed per step (x)
  Target, ///< regression target or class label fed per step (y)
  Param,  ///< trainable, persistent
  State,  ///< optimizer state, persistent
  Output, ///< a result written by the kernel (loss, prediction, gradient)
};
const char *roleName(Role role);

struct Initializer {
  std::string kind;         ///< "xavier_normal", "zeros", ... (ir/Verifier.cpp lists them)
  std::vector<double> args; ///< sigma, (a, b), constant
  int64_t fanIn = 0, fanOut = 0;
};

struct TensorSpec {
  std::string name; ///< hierarchical: "W1", "dense1.W"; results: "loss", "grad.W1"
  Role role = Role::Input;
  bool isInt = false; ///< i32 (class labels) instead of f32
  std::vector<int64_t> dims;
  Initializer init; ///< params and state only

  int64_t numel() const;
  int64_t bytes() const { return numel() * 4; }
  std::string shapeStr() const; ///< "[5,4]"
};

/// One compiled graph.
struct KernelSpec {
  std::string name; ///< "train_step", "grad", "eval"
  gradc_kernel_fn fn = nullptr;
  int64_t arenaBytes = 0;          ///< scratch for intermediates, from the memory plan
  int64_t batch = 0;               ///< examples per call; 0: inputs have no batch dimension
  std::vector<TensorSpec> buffers; ///< the signature: ctx.buffers[i] is buffers[i]
  std::vector<std::string> hypers; ///< ctx.hypers[i] is the hyperparameter hypers[i]

  /// Index of the buffer called `name`, or -1.
  int find(const std::string &name) const;
};

} // namespace gradc::rt
