//===- test/unit/codegen/EmitTest.cpp - Printed LLVM IR and assembly ------===//
#include "KernelRunner.h"
#include "codegen/Codegen.h"

#include <gtest/gtest.h>

using namespace gradc;
using namespace gradc::ir;

namespace {

/// z = a + b on 256 x 256 matrices, plus a broadcast row.
std::unique_ptr<Graph> elementwise() {
  auto g = std::make_unique<Graph>();
  g->name = "ew";
  Node *a = g->create(OpKind::Input, {}, Type::f32({256, 256}), {}, "a");
  Node *b = g->create(OpKind::Input, {}, Type::f32({256, 256}), {}, "b");
  Node *row = g->create(OpKind::Input, {}, Type::f32({256}), {}, "row");
  Node *z = g->create(OpKind::Add, {a, b}, a->type, {}, "z");
  Node *w = g->create(OpKind::Mul, {z, row}, a->type, {}, "w");
  g->setOutput("w", w);
  return g;
}

bool contains(const std::string &text, const std::string &what) {
  return text.find(what) != std::string::npos;
}

TEST(Emit, UnoptimizedIRNamesTheGraph) {
  auto g = elementwise();
  std::string ir, error;
  ASSERT_TRUE(codegen::emitLLVMIR(*g, "eval", {}, /*optimized=*/false, ir, error)) << error;
  EXPECT_TRUE(contains(ir, "define void @gradc_ew_eval(ptr")) << ir;
  // The two maps are one fused loop: a block named after the first, a
  // comment per node, loops and values named after them.
  EXPECT_TRUE(contains(ir, "\nz.fused:")) << ir;
  EXPECT_TRUE(contains(ir, "; %z = add %a, %b : f32[256,256]")) << ir;
  EXPECT_TRUE(contains(ir, "; %w = mul %z, %row : f32[256,256]")) << ir;
  EXPECT_TRUE(contains(ir, "%z.v = fadd reassoc contract float")) << ir;
  EXPECT_TRUE(contains(ir, "%w.v = fmul reassoc contract float %z.v, %row.v")) << ir;
  EXPECT_TRUE(contains(ir, "%row.buf = load ptr")) << ir;
  EXPECT_TRUE(contains(ir, "%w.out = load ptr")) << ir;
  // The broadcast row is indexed by the column: a loop over the rows (of
  // each task's block), then one over the columns.
  EXPECT_TRUE(contains(ir, "z.fused.i.r.loop:")) << ir;
  EXPECT_TRUE(contains(ir, "z.fused.i.c.loop:")) << ir;
  EXPECT_FALSE(contains(ir, "nnan")) << ir;
}

TEST(Emit, OptimizedIRAndAssemblyAreVectorized) {
  auto g = elementwise();
  std::string ir, assembly, error;
  ASSERT_TRUE(codegen::emitLLVMIR(*g, "eval", {}, /*optimized=*/true, ir, error)) << error;
  EXPECT_TRUE(contains(ir, "define void @gradc_ew_eval(")) << ir;
  EXPECT_TRUE(contains(ir, "x float>")) << "no vector type in\n" << ir;
  EXPECT_FALSE(contains(ir, "call float")) << "a per-element call in\n" << ir;

  ASSERT_TRUE(codegen::emitAssembly(*g, "eval", {}, assembly, error)) << error;
  EXPECT_TRUE(contains(assembly, "gradc_ew_eval:")) << assembly;
  // This host has AVX-512 (ymm registers with EVEX encoding count too).
  bool wide = contains(assembly, "%zmm") || contains(assembly, "%ymm");
  EXPECT_TRUE(wide) << assembly;
  EXPECT_TRUE(contains(assembly, "vaddps")) << assembly;
  EXPECT_TRUE(contains(assembly, "vmulps")) << assembly;
}

TEST(Emit, TranscendentalsNeedNoCalls) {
  auto g = std::make_unique<Graph>();
  g->name = "tx";
  Node *x = g->create(OpKind::Input, {}, Type::f32({1024}), {}, "x");
  Node *e = g->create(OpKind::Exp, {x}, x->type, {}, "e");
  Node *l = g->create(OpKind::Log, {e}, x->type, {}, "l");
  Node *t = g->create(OpKind::Tanh, {l}, x->type, {}, "t");
  Node *s = g->create(OpKind::Sigmoid, {t}, x->type, {}, "s");
  Attrs p;
  p.value = 2.7;
  Node *q = g->create(OpKind::Pow, {s}, x->type, p, "q");
  g->setOutput("q", q);
  std::string assembly, error;
  ASSERT_TRUE(codegen::emitAssembly(*g, "k", {}, assembly, error)) << error;
  EXPECT_FALSE(contains(assembly, "call")) << assembly;
}

TEST(Emit, ExplicitCpuAndBadOptions) {
  auto g = elementwise();
  std::string assembly, error;
  codegen::CodegenOptions generic;
  generic.cpu = "x86-64-v3";
  ASSERT_TRUE(codegen::emitAssembly(*g, "eval", generic, assembly, error)) << error;
  EXPECT_TRUE(contains(assembly, "%ymm")) << assembly;
  EXPECT_FALSE(contains(assembly, "%zmm")) << "AVX-512 on an AVX2 CPU\n" << assembly;

  codegen::CodegenOptions bogus;
  bogus.cpu = "no-such-cpu";
  EXPECT_FALSE(codegen::emitAssembly(*g, "eval", bogus, assembly, error));
  EXPECT_TRUE(contains(error, "unknown CPU 'no-such-cpu'")) << error;

  codegen::CodegenOptions level;
  level.optLevel = 7;
  EXPECT_FALSE(codegen::emitLLVMIR(*g, "eval", level, true, assembly, error));
  EXPECT_TRUE(contains(error, "optimization level")) << error;

  EXPECT_EQ(codegen::Jit::create(bogus, error), nullptr);
  EXPECT_TRUE(contains(error, "unknown CPU")) << error;
}

TEST(Emit, SameKernelTwiceInOneJit) {
  auto g = elementwise();
  std::string error;
  rt::KernelSpec first, second;
  ASSERT_TRUE(test::sharedJit().addKernel(*g, "eval", first, error)) << error;
  ASSERT_TRUE(test::sharedJit().addKernel(*g, "eval", second, error)) << error;
  EXPECT_NE(first.fn, nullptr);
  EXPECT_NE(second.fn, nullptr);
}

TEST(Emit, EveryOptimizationLevelAndPipelineRuns) {
  for (int run = 0; run < 8; ++run) {
    const int level = run % 4;
    auto g = elementwise();
    codegen::CodegenOptions options;
    options.optLevel = level;
    options.pipeline = run < 4 ? codegen::Pipeline::Kernel : codegen::Pipeline::LLVMDefault;
    std::string error;
    auto jit = codegen::Jit::create(options, error);
    ASSERT_NE(jit, nullptr) << error;
    rt::KernelSpec spec;
    ASSERT_TRUE(jit->addKernel(*g, "eval", spec, error)) << error;
    test::KernelRunner runner(*g, spec);
    Tensor a(Type::f32({256, 256})), row(Type::f32({256}));
    for (size_t i = 0; i < a.data.size(); ++i)
      a.data[i] = static_cast<double>(i % 7);
    for (size_t i = 0; i < row.data.size(); ++i)
      row.data[i] = static_cast<double>(i % 3);
    runner.bind(g->find("a"), a);
    runner.bind(g->find("b"), a);
    runner.bind(g->find("row"), row);
    runner.run();
    std::vector<float> w = runner.output("w");
    for (size_t i = 0; i < w.size(); ++i)
      ASSERT_EQ(w[i], static_cast<float>(2 * (i % 7) * ((i % 256) % 3)))
          << "O" << level << " pipeline " << run / 4 << " " << i;
  }
}

} // namespace
