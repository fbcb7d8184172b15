//===- codegen/Elementwise.h - Loop nests over strided operands -*- C++ -*-===//
//
// One loop nest serves every op whose output element depends on one element
// of each operand: unary and binary arithmetic with NumPy broadcasting,
// broadcast, transpose, outer and copies.  Each operand is described by a
// stride per output dimension (0 along broadcast dimensions), so the nest
// runs over the output in row-major order and its innermost loop is
// unit-stride for the output and every non-broadcast operand.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/KernelBuilder.h"
#include "ir/Graph.h"

#include <string>
#include <vector>

namespace gradc::codegen {

/// An operand of a strided map.
struct StridedInput {
  llvm::Value *base = nullptr;  ///< storage pointer; null when `splat` is set
  std::vector<int64_t> strides; ///< elements, one per output dimension
  llvm::Value *splat = nullptr; ///< the same value at every position (a constant)
  std::string name;             ///< names the loaded values: "<name>.v"
};

/// Row-major strides of `shape`, in elements.
std::vector<int64_t> rowMajorStrides(const ir::Shape &shape);

/// Strides that read an operand of shape `in` broadcast (NumPy rules:
/// aligned to the right, size-1 dimensions repeated) to shape `out`.
std::vector<int64_t> broadcastStrides(const ir::Shape &in, const ir::Shape &out);

/// For every position of `shape` in row-major order:
///   out[position] = compute(input values at position).
/// Dimensions of size 1 are dropped and neighbouring dimensions merged
/// where every operand is contiguous across them, so same-shape operands
/// give a single flat loop.  Loops are named `name`.d0, `name`.d1, ...
void emitStridedMap(KernelBuilder &kb, const std::string &name, const ir::Shape &shape,
                    llvm::Value *out, const std::vector<int64_t> &outStrides,
                    const std::vector<StridedInput> &inputs,
                    llvm::function_ref<llvm::Value *(llvm::ArrayRef<llvm::Value *>)> compute);

} // namespace gradc::codegen
