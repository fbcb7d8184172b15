//===- codegen/Reduce.h - Sums over axes as loop nests ---------*- C++ -*-===//
//
// sum, mean, sumsq, squared_error and bce_logits are all "sum over some
// axes of a function of same-shaped operands, then maybe a final scaling";
// max is the same nest with the maximum in place of the sum.  The loop
// nest walks the operands in memory order (unit stride innermost); a
// reduction along the innermost dimension keeps its accumulator in a
// register, one along an outer dimension accumulates into the output row,
// which vectorises over the kept inner dimension.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/KernelBuilder.h"
#include "ir/Graph.h"

#include <string>
#include <vector>

namespace gradc::codegen {

/// How a reduction combines the elements: a sum (from 0), or the maximum
/// (from -inf, through llvm.maximum, so a NaN propagates).
enum class Combine { Sum, Max };

struct ReductionInput {
  llvm::Value *base; ///< row-major storage of the reduction's input shape
  std::string name;
};

/// out[kept] = finish(sum over `axes` of element(inputs[...])), or the
/// maximum instead of the sum.  `finish` may be null (plain sum or
/// maximum).  Loops are named `name`.d0, ... and `name`.r.
void emitReduction(KernelBuilder &kb, const std::string &name, const ir::Shape &shape,
                   const std::vector<int64_t> &axes, const std::vector<ReductionInput> &inputs,
                   llvm::Value *out,
                   llvm::function_ref<llvm::Value *(llvm::ArrayRef<llvm::Value *>)> element,
                   llvm::function_ref<llvm::Value *(llvm::Value *)> finish,
                   Combine combine = Combine::Sum);

} // namespace gradc::codegen
