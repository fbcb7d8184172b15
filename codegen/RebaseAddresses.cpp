//===- codegen/RebaseAddresses.cpp - Loop-invariant parts of addresses ----===//
#include "codegen/RebaseAddresses.h"

#include <llvm/ADT/DenseMap.h>
#include <llvm/ADT/STLExtras.h>
#include <llvm/Analysis/LoopInfo.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/PatternMatch.h>

#include <tuple>

namespace gradc::codegen {

using namespace llvm;
using namespace llvm::PatternMatch;

PreservedAnalyses RebaseAddressesPass::run(Function &fn, FunctionAnalysisManager &analyses) {
  if (fn.hasOptNone())
    return PreservedAnalyses::all(); // the tails' -O0 paths (Pipeline.cpp)
  LoopInfo &loops = analyses.getResult<LoopAnalysis>(fn);
  // One rebased pointer per (base, invariant part, element type, loop):
  // the accesses of a fused loop to one array share it.
  DenseMap<std::tuple<Value *, Value *, Type *, Loop *>, Value *> rebased;
  bool changed = false;
  for (BasicBlock &block : fn) {
    Loop *loop = loops.getLoopFor(&block);
    BasicBlock *preheader = loop ? loop->getLoopPreheader() : nullptr;
    if (!preheader)
      continue;
    for (Instruction &inst : make_early_inc_range(block)) {
      auto *gep = dyn_cast<GetElementPtrInst>(&inst);
      if (!gep || gep->getNumIndices() != 1 || gep->getType()->isVectorTy() ||
          !loop->isLoopInvariant(gep->getPointerOperand()))
        continue;
      Value *invariant, *varying;
      if (!match(gep->getOperand(1), m_Add(m_Value(invariant), m_Value(varying))))
        continue;
      if (!loop->isLoopInvariant(invariant))
        std::swap(invariant, varying);
      // A constant part stays: x86 adds it in the address (base + index *
      // scale + displacement) for nothing, where a rebased pointer takes a
      // register.
      if (!loop->isLoopInvariant(invariant) || loop->isLoopInvariant(varying) ||
          isa<Constant>(invariant))
        continue;
      // Defined outside the loop, `invariant` dominates the header, so the
      // preheader (its only way in) too.  The split halves are not marked
      // inbounds: that the sum is in bounds says nothing of either part.
      Type *element = gep->getSourceElementType();
      Value *&base = rebased[{gep->getPointerOperand(), invariant, element, loop}];
      if (!base)
        base = IRBuilder<>(preheader->getTerminator())
                   .CreateGEP(element, gep->getPointerOperand(), invariant,
                              gep->getPointerOperand()->getName() + ".rebased");
      Value *access = IRBuilder<>(gep).CreateGEP(element, base, varying);
      access->takeName(gep);
      gep->replaceAllUsesWith(access);
      gep->eraseFromParent();
      changed = true;
    }
  }
  if (!changed)
    return PreservedAnalyses::all();
  PreservedAnalyses kept;
  kept.preserveSet<CFGAnalyses>();
  return kept;
}

} // namespace gradc::codegen
