//===- test/unit/codegen/RebaseAddressesTest.cpp - Invariant address parts -===//
#include "codegen/RebaseAddresses.h"
#include "ParseIR.h"
#include "codegen/Pipeline.h"

#include <llvm/Analysis/LoopAnalysisManager.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/raw_ostream.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

using namespace llvm;

namespace {

/// A fused loop as the lowering makes them: task `t` covers elements
/// [t * 64, t * 64 + 64) of %x and %y, each addressed as first + i; %w is
/// addressed by i alone and by i + 5 (a constant part, which x86 adds in
/// the address), %z by an index that varies in the outer loop only.
const char *const kLoops = R"(
define void @f(ptr %x, ptr %y, ptr %w, ptr %z, i64 %tasks) {
entry:
  br label %task
task:
  %t = phi i64 [ 0, %entry ], [ %t.next, %task.end ]
  %first = mul i64 %t, 64
  br label %loop
loop:
  %i = phi i64 [ 0, %task ], [ %i.next, %loop ]
  %at = add nuw nsw i64 %first, %i
  %xp = getelementptr inbounds float, ptr %x, i64 %at
  %xv = load float, ptr %xp
  %wp = getelementptr inbounds float, ptr %w, i64 %i
  %wv = load float, ptr %wp
  %zp = getelementptr inbounds float, ptr %z, i64 %first
  %zv = load float, ptr %zp
  %at3 = add nuw nsw i64 %i, 5
  %cp = getelementptr inbounds float, ptr %w, i64 %at3
  %cv = load float, ptr %cp
  %s = fadd float %xv, %wv
  %s1 = fadd float %s, %cv
  %s2 = fadd float %s1, %zv
  %at2 = add nuw nsw i64 %i, %first
  %yp = getelementptr inbounds float, ptr %y, i64 %at2
  store float %s2, ptr %yp
  %i.next = add nuw nsw i64 %i, 1
  %more = icmp ult i64 %i.next, 64
  br i1 %more, label %loop, label %task.end
task.end:
  %t.next = add nuw nsw i64 %t, 1
  %again = icmp ult i64 %t.next, %tasks
  br i1 %again, label %task, label %done
done:
  ret void
}
)";

std::unique_ptr<Module> parse(LLVMContext &context) {
  return gradc::test::parseIR(kLoops, "kLoops", context);
}

void rebase(Module &module) {
  LoopAnalysisManager lam;
  FunctionAnalysisManager fam;
  CGSCCAnalysisManager cgam;
  ModuleAnalysisManager mam;
  PassBuilder builder;
  builder.registerModuleAnalyses(mam);
  builder.registerCGSCCAnalyses(cgam);
  builder.registerFunctionAnalyses(fam);
  builder.registerLoopAnalyses(lam);
  builder.crossRegisterProxies(lam, fam, cgam, mam);
  FunctionPassManager passes;
  passes.addPass(gradc::codegen::RebaseAddressesPass());
  for (Function &fn : module)
    if (!fn.isDeclaration())
      passes.run(fn, fam);
}

/// The address named `name` in `fn`.
GetElementPtrInst *access(Function &fn, StringRef name) {
  for (BasicBlock &block : fn)
    for (Instruction &inst : block)
      if (inst.getName() == name)
        return dyn_cast<GetElementPtrInst>(&inst);
  return nullptr;
}

TEST(RebaseAddresses, SplitsTheInvariantPartIntoThePreheader) {
  LLVMContext context;
  std::unique_ptr<Module> module = parse(context);
  ASSERT_TRUE(module);
  rebase(*module);
  ASSERT_FALSE(verifyModule(*module, &errs()));
  Function &fn = *module->getFunction("f");
  // %x and %y: the inner access is `gep rebased, %i`, with `rebased = gep
  // base, %first` in the loop's preheader (the block %task).
  for (StringRef name : {"xp", "yp"}) {
    GetElementPtrInst *gep = access(fn, name);
    ASSERT_TRUE(gep) << name.str();
    EXPECT_EQ(gep->getOperand(1)->getName(), "i") << name.str();
    auto *base = dyn_cast<GetElementPtrInst>(gep->getPointerOperand());
    ASSERT_TRUE(base) << name.str();
    EXPECT_EQ(base->getParent()->getName(), "task") << name.str();
    EXPECT_EQ(base->getOperand(1)->getName(), "first") << name.str();
  }
  EXPECT_NE(access(fn, "xp")->getPointerOperand(), access(fn, "yp")->getPointerOperand());
  // %w (index varying only, or plus a constant) and %z (index invariant)
  // are left as they were.
  EXPECT_EQ(access(fn, "wp")->getPointerOperand(), fn.getArg(2));
  EXPECT_EQ(access(fn, "cp")->getPointerOperand(), fn.getArg(2));
  EXPECT_EQ(access(fn, "zp")->getPointerOperand(), fn.getArg(3));
  EXPECT_EQ(access(fn, "zp")->getOperand(1)->getName(), "first");
}

TEST(RebaseAddresses, SharesOneRebasedPointerPerBaseAndOffset) {
  LLVMContext context;
  std::unique_ptr<Module> module = parse(context);
  ASSERT_TRUE(module);
  Function &fn = *module->getFunction("f");
  // A second access to %x at the same element, as a fused group's load and
  // store of one array are.
  GetElementPtrInst *xp = access(fn, "xp");
  auto *again = GetElementPtrInst::CreateInBounds(Type::getFloatTy(context), fn.getArg(0),
                                                  {xp->getOperand(1)}, "xp2", xp->getNextNode());
  new StoreInst(ConstantFP::get(Type::getFloatTy(context), 1.0), again, again->getNextNode());
  rebase(*module);
  ASSERT_FALSE(verifyModule(*module, &errs()));
  ASSERT_TRUE(isa<GetElementPtrInst>(access(fn, "xp")->getPointerOperand())); // rebased
  EXPECT_EQ(access(fn, "xp")->getPointerOperand(), access(fn, "xp2")->getPointerOperand());
}

/// The pass stands in for loop strength reduction, which gradc turns off
/// in LLVM's code generator (Pipeline.cpp) unless GRADC_LLVM_OPTIONS says
/// otherwise; so is the post-RA scheduler.
TEST(RebaseAddresses, CodeGeneratorRunsWithoutLoopStrengthReduction) {
  std::string error;
  ASSERT_TRUE(gradc::codegen::initializeLLVM(error)) << error;
  for (const char *name : {"disable-lsr", "disable-post-ra"}) {
    cl::Option *option = cl::getRegisteredOptions().lookup(name);
    ASSERT_TRUE(option) << name;
    if (std::getenv("GRADC_LLVM_OPTIONS") == nullptr)
      EXPECT_TRUE(static_cast<cl::opt<bool> *>(option)->getValue()) << name;
  }
  EXPECT_STREQ(gradc::codegen::codegenDefaults(), "-disable-lsr -disable-post-ra");
}

} // namespace
