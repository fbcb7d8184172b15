//===- test/unit/codegen/PartitionTest.cpp - A kernel module cut in parts -===//
#include "codegen/Partition.h"

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/raw_ostream.h>

#include <gtest/gtest.h>

using namespace llvm;

namespace {

/// A kernel as the lowering makes them: the entry @k hands two task
/// functions to the pool; both inline the product body @body; @big has a
/// long scalar loop (the vectoriser's work), @small a short one.
const char *const kKernel = R"(
@stream = private constant i32 7
declare void @gradc_parallel_for(ptr, i64, ptr, ptr)

define void @k(ptr %ctx) {
  call void @gradc_parallel_for(ptr %ctx, i64 4, ptr @big, ptr @stream)
  call void @gradc_parallel_for(ptr %ctx, i64 4, ptr @small, ptr null)
  ret void
}

define internal void @body(ptr %p) alwaysinline {
  store float 1.0, ptr %p
  ret void
}

define internal void @big(ptr %c, i64 %begin, i64 %end) {
entry:
  br label %loop
loop:
  %i = phi i64 [ %begin, %entry ], [ %next, %loop ]
  %a = getelementptr float, ptr %c, i64 %i
  %x = load float, ptr %a
  %y = fmul float %x, 2.0
  %z = fadd float %y, 1.0
  %w = fmul float %z, %z
  store float %w, ptr %a
  %next = add i64 %i, 1
  %more = icmp slt i64 %next, %end
  br i1 %more, label %loop, label %exit
exit:
  call void @body(ptr %c)
  ret void
}

define internal void @small(ptr %c, i64 %begin, i64 %end) {
  call void @body(ptr %c)
  ret void
}
)";

std::unique_ptr<Module> parse(LLVMContext &context, const char *text) {
  SMDiagnostic diagnostic;
  std::unique_ptr<Module> module = parseAssemblyString(text, diagnostic, context);
  EXPECT_TRUE(module) << diagnostic.getMessage().str();
  return module;
}

std::string print(const Module &module) {
  std::string text;
  raw_string_ostream os(text);
  module.print(os, nullptr);
  return text;
}

bool defines(const Module &module, StringRef name) {
  const Function *fn = module.getFunction(name);
  return fn && !fn->isDeclaration();
}

TEST(Partition, EveryFunctionIsDefinedInExactlyOnePartLinkedByItsKernelName) {
  LLVMContext context;
  std::unique_ptr<Module> parts[2] = {parse(context, kKernel), parse(context, kKernel)};
  ASSERT_TRUE(parts[0] && parts[1]);
  ASSERT_TRUE(gradc::codegen::canPartition(*parts[0]));
  for (unsigned part = 0; part < 2; ++part) {
    gradc::codegen::keepPartition(*parts[part], "k", part, 2);
    std::string problems;
    raw_string_ostream os(problems);
    EXPECT_FALSE(verifyModule(*parts[part], &os)) << problems;
  }
  // Largest first: the long loop alone in part 0, the entry and the small
  // task in part 1.
  EXPECT_TRUE(defines(*parts[0], "k.big"));
  EXPECT_FALSE(defines(*parts[0], "k"));
  EXPECT_FALSE(defines(*parts[0], "k.small"));
  EXPECT_TRUE(defines(*parts[1], "k"));
  EXPECT_TRUE(defines(*parts[1], "k.small"));
  EXPECT_FALSE(defines(*parts[1], "k.big"));
  for (const auto &module : parts) {
    // Local functions renamed under the kernel's name, visible to the
    // other part only; the kernel itself keeps its name and visibility.
    for (const char *name : {"k.big", "k.small"}) {
      const Function *fn = module->getFunction(name);
      ASSERT_TRUE(fn) << name;
      EXPECT_TRUE(fn->hasExternalLinkage()) << name;
      EXPECT_TRUE(fn->hasHiddenVisibility()) << name;
    }
    EXPECT_TRUE(module->getFunction("k")->hasDefaultVisibility());
    EXPECT_FALSE(module->getFunction("big"));
    // The inlined body stays where a kept function calls it.
    EXPECT_TRUE(defines(*module, "body"));
  }
  // The constant only the entry (part 1) uses is gone from part 0.
  EXPECT_FALSE(parts[0]->getNamedGlobal("stream"));
  EXPECT_TRUE(parts[1]->getNamedGlobal("stream"));

  // The same cut every time.
  std::unique_ptr<Module> again = parse(context, kKernel);
  gradc::codegen::keepPartition(*again, "k", 1, 2);
  EXPECT_EQ(print(*again), print(*parts[1]));
}

/// A product's function (laid out: vector code and two scalar loads of A)
/// and an elementwise loop of three scalar floats.  Weighed as any other
/// function, the product would be the lighter (13 + 2 x 10 = 33 against
/// 7 + 3 x 10 = 37); each of its 15 instructions weighs 3, so it is the
/// heavier (45) and goes first, to part 0.
const char *const kProductAndLoop = R"(
declare void @gradc_parallel_for(ptr, i64, ptr, ptr)

define void @k(ptr %ctx) {
  call void @gradc_parallel_for(ptr %ctx, i64 2, ptr @scale, ptr null)
  call void @gradc_parallel_for(ptr %ctx, i64 2, ptr @product, ptr null)
  ret void
}

define internal void @scale(ptr %out, i64 %from, i64 %to) {
start:
  br label %body
body:
  %j = phi i64 [ %to, %start ], [ %j.next, %body ]
  %p = getelementptr inbounds float, ptr %out, i64 %j
  %v = load float, ptr %p
  %half = fmul float %v, 0.5
  store float %half, ptr %p
  %j.next = sub i64 %j, 1
  %again = icmp sgt i64 %j.next, %from
  br i1 %again, label %body, label %done
done:
  ret void
}

define internal void @product(ptr %tile, i64 %first, i64 %last) "gradc-loops-laid-out" {
top:
  br label %step
step:
  %l = phi i64 [ %first, %top ], [ %l.next, %step ]
  %at = getelementptr float, ptr %tile, i64 %l
  %a0 = load float, ptr %at
  %a1 = load float, ptr %tile
  %row = load <8 x float>, ptr %at
  %one = insertelement <8 x float> poison, float %a0, i64 0
  %splat = shufflevector <8 x float> %one, <8 x float> poison, <8 x i32> zeroinitializer
  %prod = fmul <8 x float> %row, %splat
  %acc = fadd <8 x float> %prod, %row
  store <8 x float> %acc, ptr %at
  %l.next = add i64 %l, 8
  %more = icmp slt i64 %l.next, %last
  br i1 %more, label %step, label %end
end:
  ret void
}
)";

TEST(Partition, AProductsInstructionsWeighMoreThanScalarCode) {
  LLVMContext context;
  std::unique_ptr<Module> part0 = parse(context, kProductAndLoop);
  ASSERT_TRUE(part0);
  gradc::codegen::keepPartition(*part0, "k", 0, 2);
  EXPECT_TRUE(defines(*part0, "k.product"));
  EXPECT_FALSE(defines(*part0, "k.scale"));
}

TEST(Partition, ModulesWithMutableGlobalsStayWhole) {
  LLVMContext context;
  std::unique_ptr<Module> module =
      parse(context, "@counter = internal global i32 0\ndefine void @k() {\n  ret void\n}\n");
  ASSERT_TRUE(module);
  EXPECT_FALSE(gradc::codegen::canPartition(*module));
}

} // namespace
