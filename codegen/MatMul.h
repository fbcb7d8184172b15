//===- codegen/MatMul.h - Lowering of matrix products -----------*- C++ -*-===//
//
// C = op(A) op(B) with constant sizes.  For now a plain loop nest ordered so
// that the innermost loop is unit-stride and LLVM vectorises it; kept apart
// from the other lowerings because the register-tiled kernel with fused
// epilogues replaces it here.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/KernelBuilder.h"

#include <cstdint>
#include <string>

namespace gradc::ir {
class Node;
}

namespace gradc::codegen {

/// Sizes and element strides of C[m, n] = sum_l A(i, l) B(l, j), where
/// A(i, l) is a[i * aRow + l * aCol] and B(l, j) is b[l * bRow + j * bCol].
struct MatMulGeometry {
  int64_t m = 1, n = 1, k = 1;
  int64_t aRow = 0, aCol = 1, bRow = 1, bCol = 0;
};

/// The geometry of a matmul node: transpose flags become strides, a rank-1
/// first operand is a row vector and a rank-1 second operand a column.
MatMulGeometry matMulGeometry(const ir::Node &node);

/// Emits C = A B for `geometry` (C row-major, m x n).
void emitMatMul(KernelBuilder &kb, const std::string &name, const MatMulGeometry &geometry,
                llvm::Value *c, llvm::Value *a, const std::string &aName, llvm::Value *b,
                const std::string &bName);

} // namespace gradc::codegen
