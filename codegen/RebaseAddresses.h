//===- codegen/RebaseAddresses.h - Loop-invariant parts of addresses -*- C++ -*-===//
//
// An LLVM function pass of the kernel pipeline (Pipeline.cpp): an access
// `gep base, (invariant + varying)` in a loop becomes `gep rebased,
// varying` with `rebased = gep base, invariant` in the loop's preheader.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <llvm/IR/PassManager.h>

namespace gradc::codegen {

/// The lowering writes an element's index as one sum: a fused loop's
/// element is the task's first element plus the loop's counter, an
/// epilogue's is its row's first element plus the column.  In x86's
/// addressing (base + index * scale) such an access needs its sum computed
/// in every iteration, unless LLVM's loop strength reduction rewrites it,
/// and the JIT leaves that pass off (it cost a sixth of the code
/// generator's time, Pipeline.cpp).  Rebased on a pointer computed once
/// before the loop, the access is one instruction.
struct RebaseAddressesPass : llvm::PassInfoMixin<RebaseAddressesPass> {
  llvm::PreservedAnalyses run(llvm::Function &fn, llvm::FunctionAnalysisManager &analyses);
};

} // namespace gradc::codegen
