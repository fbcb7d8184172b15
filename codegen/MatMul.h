//===- codegen/MatMul.h - Lowering of matrix products -----------*- C++ -*-===//
//
// C = op(A) op(B) with constant sizes, in two steps:
//   - the graph lowering (emitMatMul) emits a call to a declared function
//     @gradc.matmul.<node>(ctx, C, A, B) whose geometry rides along as
//     metadata: the lowering knows shapes but not the target;
//   - configureModule, which knows the TargetMachine, defines each of them
//     (defineMatMuls) with a register-tiled kernel sized for the target's
//     vector registers, run on the step's thread pool when it is big enough.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/KernelBuilder.h"

#include <cstdint>
#include <string>
#include <vector>

namespace llvm {
class Function;
class TargetMachine;
class Value;
} // namespace llvm

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

/// What runs on each tile of C once its sums are complete, instead of
/// storing them: `function`(captures..., values, stride, row, rows, col,
/// count) gets C(row + r, col + t) as values[r * stride + t] for r < rows,
/// t < count, and stores whatever follows the product (Lowering.cpp builds
/// it from the elementwise maps that read C).  `captures` are the storage
/// pointers it reads and writes: none overlaps A or B, and one that is C
/// itself (a member given C's bytes) is passed on as the product's C.
struct MatMulEpilogue {
  llvm::Function *function = nullptr;
  std::vector<llvm::Value *> captures;
};

/// Emits C = A B for `geometry` (C row-major, m x n) in the kernel being
/// built (whose first argument is the step context): a call that
/// defineMatMuls turns into code.  With an `epilogue`, C holds only partial
/// sums (when k is split into blocks), and the epilogue takes the result.
void emitMatMul(KernelBuilder &kb, const std::string &name, const MatMulGeometry &geometry,
                llvm::Value *c, llvm::Value *a, llvm::Value *b,
                const MatMulEpilogue *epilogue = nullptr);

/// The attribute of the functions that hold a product's code (its tasks or
/// its range): their loops are laid out as they should run, with their
/// invariants where they belong, so the kernel pipeline does not run LICM
/// on them (Pipeline.cpp), and the partition weighs their instructions as
/// vector code (Partition.cpp, kLaidOutWeight).
inline constexpr const char *kLoopsLaidOut = "gradc-loops-laid-out";

/// Defines every function emitMatMul declared in `module`, for `machine`.
void defineMatMuls(llvm::Module &module, llvm::TargetMachine &machine);

} // namespace gradc::codegen
