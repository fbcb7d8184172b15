//===- test/unit/codegen/PipelineTest.cpp - The kernel pass pipeline ------===//
#include "codegen/Pipeline.h"
#include "ParseIR.h"
#include "codegen/Codegen.h"
#include "codegen/MatMul.h"

#include <llvm/IR/Instructions.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include <gtest/gtest.h>

#include <string>

using namespace llvm;

namespace {

/// One function @`name` with `attributes`: a loop with an invariant %inv
/// computed in its body; the call keeps the loop vectoriser away.
std::string loopFunction(const std::string &name, const std::string &attributes) {
  return "define void @" + name + "(i64 %n, i64 %m) " + attributes + R"( {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %inv = xor i64 %n, %m
  call void @use(i64 %inv)
  %i.next = add nuw nsw i64 %i, 1
  %more = icmp ult i64 %i.next, 64
  br i1 %more, label %loop, label %done
done:
  ret void
}
)";
}

/// The same loop twice: @laid_out carries the attribute of the products'
/// functions, @plain nothing.
std::string loops() {
  return "declare void @use(i64)\n" + loopFunction("plain", "") +
         loopFunction("laid_out", "\"gradc-loops-laid-out\"");
}

/// The block that computes `fn`'s %inv, and the one that calls @use.
std::pair<BasicBlock *, BasicBlock *> blocksOf(Function &fn) {
  BasicBlock *inv = nullptr, *call = nullptr;
  for (BasicBlock &block : fn)
    for (Instruction &inst : block) {
      if (isa<BinaryOperator>(inst) && inst.getOpcode() == Instruction::Xor)
        inv = &block;
      if (isa<CallInst>(inst))
        call = &block;
    }
  return {inv, call};
}

// The kernel pipeline hoists invariants out of loops, except in the
// functions that hold the products' code, whose loops the lowering lays
// out itself (codegen/Pipeline.cpp, LicmUnlessLaidOut).
TEST(KernelPipeline, HoistsInvariantsExceptInProductFunctions) {
  ASSERT_STREQ(gradc::codegen::kLoopsLaidOut, "gradc-loops-laid-out");
  LLVMContext context;
  const std::string text = loops();
  std::unique_ptr<Module> module = gradc::test::parseIR(text.c_str(), "loops()", context);
  ASSERT_TRUE(module);
  gradc::codegen::CodegenOptions options;
  std::string error;
  std::unique_ptr<TargetMachine> machine = gradc::codegen::createTargetMachine(options, error);
  ASSERT_TRUE(machine) << error;
  module->setDataLayout(machine->createDataLayout());
  gradc::codegen::optimizeModule(*module, *machine, options);

  auto [plainInv, plainCall] = blocksOf(*module->getFunction("plain"));
  ASSERT_TRUE(plainInv && plainCall);
  EXPECT_NE(plainInv, plainCall) << "hoisted out of the loop";
  auto [laidOutInv, laidOutCall] = blocksOf(*module->getFunction("laid_out"));
  ASSERT_TRUE(laidOutInv && laidOutCall);
  EXPECT_EQ(laidOutInv, laidOutCall) << "left in the loop";
}

} // namespace
