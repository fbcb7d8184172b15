//===- test/unit/codegen/MatMulTest.cpp - The tiled matmul kernel ---------===//
//
// The register-tiled product (codegen/MatMul.cpp) against the interpreter
// over awkward shapes (edges of every tile, panel and k block), all four
// transposes, k = 1 and vectors; and bit for bit the same with no pool, a
// 1-thread pool and a 2-thread pool, since work is split over output
// elements only; the same for elementwise maps that run on the pool.
//
// DISABLED_Throughput prints GFLOP/s of the products of the benchmark MLPs:
//   gradc_codegen_tests --gtest_filter='MatMul*Throughput' --gtest_also_run_disabled_tests
//
//===----------------------------------------------------------------------===//
#include "KernelRunner.h"
#include "codegen/Codegen.h"
#include "ir/Diagnostics.h"
#include "ir/IRParser.h"
#include "ir/Interpreter.h"
#include "runtime/ThreadPool.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <regex>
#include <sstream>

using namespace gradc;
using namespace gradc::ir;

namespace {

struct Product {
  int64_t m, n, k;
  bool transA, transB;
  std::string label() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
           (transA ? " A^T" : "") + (transB ? " B^T" : "");
  }
};

/// For each product i: %ci = matmul %ai, %bi with ai, bi inputs stored as
/// the transposes say, returned as "vi".  Many products share one graph so
/// that the test compiles once.
std::unique_ptr<Graph> productGraph(const std::vector<Product> &products) {
  auto g = std::make_unique<Graph>();
  g->name = "mm";
  for (size_t i = 0; i < products.size(); ++i) {
    const Product &p = products[i];
    std::string suffix = std::to_string(i);
    Shape aShape = p.transA ? Shape{p.k, p.m} : Shape{p.m, p.k};
    Shape bShape = p.transB ? Shape{p.n, p.k} : Shape{p.k, p.n};
    Node *a = g->create(OpKind::Input, {}, Type::f32(aShape), {}, "a" + suffix);
    Node *b = g->create(OpKind::Input, {}, Type::f32(bShape), {}, "b" + suffix);
    Attrs attrs;
    attrs.transA = p.transA;
    attrs.transB = p.transB;
    Node *c = g->create(OpKind::MatMul, {a, b}, Type::f32({p.m, p.n}), attrs, "c" + suffix);
    g->setOutput("v" + suffix, c);
  }
  return g;
}

Tensor randomTensor(const Type &type, std::mt19937 &rng) {
  std::uniform_real_distribution<double> uniform(-1, 1);
  Tensor t(type);
  for (double &x : t.data)
    x = static_cast<float>(uniform(rng)); // exactly representable in f32
  return t;
}

struct Compiled {
  std::vector<Product> products;
  std::unique_ptr<Graph> graph;
  rt::KernelSpec spec;
  std::vector<std::pair<const Node *, Tensor>> leaves;
};

Compiled compile(const std::vector<Product> &products, uint32_t seed,
                 codegen::Jit &jit = test::sharedJit()) {
  Compiled c;
  c.products = products;
  c.graph = productGraph(products);
  std::string error;
  if (!jit.addKernel(*c.graph, "eval", c.spec, error))
    throw std::runtime_error(error);
  std::mt19937 rng(seed);
  for (const Node *leaf : c.graph->nodesOfKind(OpKind::Input))
    c.leaves.emplace_back(leaf, randomTensor(leaf->type, rng));
  return c;
}

void checkAgainstInterpreter(const std::vector<Product> &products,
                             codegen::Jit &jit = test::sharedJit()) {
  Compiled c = compile(products, 17, jit);
  Interpreter interp(*c.graph);
  test::KernelRunner runner(*c.graph, c.spec);
  for (auto &[leaf, value] : c.leaves) {
    interp.bind(leaf, value);
    runner.bind(leaf, value);
  }
  std::string error;
  ASSERT_TRUE(interp.run(&error)) << error;
  runner.run();
  for (size_t i = 0; i < products.size(); ++i) {
    const Product &p = products[i];
    SCOPED_TRACE(p.label());
    const std::vector<double> &reference = interp.output("v" + std::to_string(i))->data;
    std::vector<float> jit = runner.output("v" + std::to_string(i));
    ASSERT_EQ(reference.size(), jit.size());
    // f32 sums of k products of values in [-1, 1]: within k ulps of the
    // magnitude sum, bounded by k.
    double tolerance = 1e-6 * (1 + static_cast<double>(p.k));
    for (size_t e = 0; e < reference.size(); ++e)
      ASSERT_NEAR(jit[e], reference[e], tolerance)
          << "element (" << e / p.n << ", " << e % p.n << ")";
  }
}

TEST(MatMul, AwkwardShapesAllTransposes) {
  const int64_t sizes[] = {1, 3, 17, 33, 129};
  std::vector<Product> products;
  for (bool transA : {false, true})
    for (bool transB : {false, true})
      for (int64_t m : sizes)
        for (int64_t n : sizes)
          for (int64_t k : {int64_t(1), int64_t(33)})
            products.push_back({m, n, k, transA, transB});
  checkAgainstInterpreter(products);
}

#if defined(__x86_64__)
TEST(MatMul, NarrowerVectorsAndFewerRegisters) {
  // The tile follows the target: 8 lanes and 16 registers (AVX2), 4 lanes
  // (SSE2), both of which this x86-64 host runs.
  std::vector<Product> products;
  for (bool transA : {false, true})
    for (bool transB : {false, true})
      for (int64_t m : {3, 17, 129})
        for (int64_t n : {5, 33, 100})
          products.push_back({m, n, m == 129 ? int64_t(300) : int64_t(7), transA, transB});
  products.push_back({1030, 40, 300, false, false}); // tall, 4 x 3 tiles
  products.push_back({1030, 40, 300, true, true});
  for (const char *cpu : {"x86-64-v3", "x86-64"}) {
    SCOPED_TRACE(cpu);
    std::string error;
    codegen::CodegenOptions options;
    options.cpu = cpu;
    std::unique_ptr<codegen::Jit> jit = codegen::Jit::create(options, error);
    ASSERT_NE(jit, nullptr) << error;
    checkAgainstInterpreter(products, *jit);
  }
}
#endif

TEST(MatMul, DeepAndWideProducts) {
  // Several k blocks with a remainder; panels with masked last vectors;
  // big enough to run as parallel tasks split by columns or by rows; a
  // tall one (1030 rows: many row tasks, the last with a remainder tile).
  std::vector<Product> products;
  for (bool transA : {false, true})
    for (bool transB : {false, true})
      for (Product p : {Product{129, 33, 1000}, Product{67, 300, 130}, Product{200, 10, 256},
                        Product{10, 784, 128}, Product{1030, 40, 300}}) {
        p.transA = transA;
        p.transB = transB;
        products.push_back(p);
      }
  // A transposed A big enough to be packed per task (MatMul.cpp,
  // Plan::packA): m a multiple of the tile's rows, and not.
  products.push_back(Product{1024, 100, 256, true, false});
  products.push_back(Product{250, 64, 300, true, false});
  checkAgainstInterpreter(products);
}

std::vector<std::vector<uint32_t>> runBits(const Compiled &c, void *pool) {
  test::KernelRunner runner(*c.graph, c.spec);
  for (auto &[leaf, value] : c.leaves)
    runner.bind(leaf, value);
  runner.run(0, 0, pool);
  std::vector<std::vector<uint32_t>> bits;
  for (size_t i = 0; i < c.products.size(); ++i)
    bits.push_back(runner.bits("v" + std::to_string(i)));
  return bits;
}

/// The task count that product `name`'s call of gradc_parallel_for passes
/// in `ir`, or -1.
int64_t parallelTasks(const std::string &ir, const std::string &name) {
  std::regex call(
      "@gradc_parallel_for\\(ptr [^,]*, i64 ([0-9]+), ptr( nonnull)? @gradc\\.matmul\\." + name +
      "\\.tasks");
  std::smatch match;
  return std::regex_search(ir, match, call) ? std::stoll(match[1]) : -1;
}

TEST(MatMul, BigUntransposedBIsSplitByColumns) {
  // Split by rows, every thread would pack all of a 2.4 MB B (MatMul.cpp,
  // kMaxRowSplitBBytes): the product is split by columns, as one with B
  // transposed always is, and unlike one with a small B.
  std::vector<Product> products = {Product{64, 600, 1000, false, false},
                                   Product{64, 600, 1000, false, true},
                                   Product{64, 600, 100, false, false}};
  std::unique_ptr<Graph> graph = productGraph(products);
  std::string ir, error;
  ASSERT_TRUE(codegen::emitLLVMIR(*graph, "eval", {}, /*optimized=*/false, ir, error)) << error;
  const int64_t bigB = parallelTasks(ir, "c0"), transposedB = parallelTasks(ir, "c1"),
                smallB = parallelTasks(ir, "c2");
  ASSERT_GT(bigB, 0) << ir;
  EXPECT_EQ(bigB, transposedB) << ir;
  EXPECT_NE(bigB, smallB) << ir;
  checkAgainstInterpreter(products);
  rt::ThreadPool two(2), three(3);
  Compiled c = compile(products, 9);
  auto serial = runBits(c, nullptr);
  EXPECT_EQ(runBits(c, &two), serial);
  EXPECT_EQ(runBits(c, &three), serial);
}

TEST(MatMul, BitIdenticalForAnyThreadCount) {
  rt::ThreadPool one(1), two(2), three(3);
  Compiled c = compile({Product{128, 256, 784, false, true}, Product{256, 784, 128, true, false},
                        Product{128, 256, 256, false, false}, Product{200, 10, 256, false, true},
                        Product{129, 33, 1000, true, true}, Product{1030, 40, 300, true, false},
                        Product{1030, 40, 300, false, true}, Product{250, 64, 300, true, false}},
                       5);
  auto serial = runBits(c, nullptr);
  EXPECT_EQ(runBits(c, &one), serial);
  EXPECT_EQ(runBits(c, &two), serial);
  EXPECT_EQ(runBits(c, &three), serial);
}

/// Elementwise maps big enough to run on the pool (split by rows, with a
/// shorter last block), a broadcast operand, a hyper and a product; and
/// whole-tensor reductions big enough to be summed by row blocks on the
/// pool (their terms are not negative, so a relative tolerance holds).
const char *kParallelGraph = R"(graph @par (forward) {
forward:
  %x = input : f32[300,700]
  %w = input : f32[300,700]
  %r = input : f32[700]
  %s = hyper {key="s"} : f32[]
  %a = mul %x, %w : f32[300,700]
  %b = add %a, %r : f32[300,700]
  %c = relu %b : f32[300,700]
  %d = mul %s, %c : f32[300,700]
  %e = matmul %d, %w {transpose_b} : f32[300,300]
  %f = exp %e : f32[300,300]
  %total = sum %c {axes=[0,1]} : f32[]
  %average = mean %c {axes=[0,1]} : f32[]
  %peak = max %b {axes=[0,1]} : f32[]
  %squares = sumsq %d : f32[]
  %error = squared_error %x, %w {scale=0.25} : f32[]
  %columns = sum %c {axes=[0]} : f32[700]
  return value=%d, product=%e, exp=%f, total=%total, average=%average, peak=%peak, squares=%squares, error=%error, columns=%columns
}
)";

TEST(Parallel, ElementwiseAndProductsMatchTheInterpreterForAnyThreadCount) {
  static SourceManager sources;
  const std::string *file = sources.add("parallel.gir", kParallelGraph);
  std::ostringstream errors;
  Diagnostics diags(&sources, errors);
  std::unique_ptr<Graph> graph = parseGraph(sources.text(file), file, diags);
  ASSERT_NE(graph, nullptr) << errors.str();
  std::string error;
  rt::KernelSpec spec;
  ASSERT_TRUE(test::sharedJit().addKernel(*graph, "par", spec, error)) << error;
  std::mt19937 rng(3);
  Interpreter interp(*graph);
  test::KernelRunner runner(*graph, spec);
  for (const char *name : {"x", "w", "r"}) {
    Tensor value = randomTensor(graph->find(name)->type, rng);
    for (double &v : value.data)
      v = static_cast<float>(v * 0.1); // keeps exp of the product in range
    interp.bind(graph->find(name), value);
    runner.bind(graph->find(name), value);
  }
  Tensor scale(Type::f32({}), {0.5});
  interp.bind(graph->find("s"), scale);
  runner.bind(graph->find("s"), scale);
  ASSERT_TRUE(interp.run(&error)) << error;
  runner.run();
  const char *keys[] = {"value", "product", "exp",   "total",  "average",
                        "peak",  "squares", "error", "columns"};
  for (const char *key : keys) {
    const std::vector<double> &reference = interp.output(key)->data;
    std::vector<float> jit = runner.output(key);
    ASSERT_EQ(reference.size(), jit.size());
    for (size_t i = 0; i < jit.size(); ++i)
      ASSERT_NEAR(jit[i], reference[i], 1e-5 + 1e-5 * std::fabs(reference[i])) << key << i;
  }
  std::vector<std::vector<float>> serial;
  for (const char *key : keys)
    serial.push_back(runner.output(key));
  rt::ThreadPool one(1), two(2), three(3);
  for (rt::ThreadPool *pool : {&one, &two, &three}) {
    runner.run(0, 0, pool);
    int i = 0;
    for (const char *key : keys) {
      std::vector<float> got = runner.output(key);
      EXPECT_EQ(std::memcmp(got.data(), serial[i].data(), got.size() * 4), 0)
          << key << " differs with " << pool->threads() << " threads";
      ++i;
    }
  }
}

TEST(MatMul, DISABLED_Throughput) {
  // The products of a training step of the S, M and L benchmark MLPs.
  const Product products[] = {{32, 128, 784, false, true},     {32, 10, 128, false, true},
                              {32, 128, 10, false, false},     {10, 128, 32, true, false},
                              {128, 784, 32, true, false},     {128, 256, 784, false, true},
                              {128, 256, 256, false, true},    {128, 10, 256, false, true},
                              {128, 256, 10, false, false},    {10, 256, 128, true, false},
                              {128, 256, 256, false, false},   {256, 256, 128, true, false},
                              {256, 784, 128, true, false},    {256, 1024, 784, false, true},
                              {256, 1024, 1024, false, true},  {256, 1024, 1024, false, false},
                              {1024, 1024, 256, true, false},  {1024, 784, 256, true, false},
                              {2048, 2048, 2048, false, false}};
  rt::ThreadPool one(1), two(2);
  for (const Product &p : products) {
    Compiled c = compile({p}, 1);
    test::KernelRunner runner(*c.graph, c.spec);
    for (auto &[leaf, value] : c.leaves)
      runner.bind(leaf, value);
    double flops = 2.0 * p.m * p.n * p.k, rates[2];
    int t = 0;
    for (rt::ThreadPool *pool : {&one, &two}) {
      // The best of several rounds: the machine may be shared.
      int reps = std::max<int>(2, static_cast<int>(4e8 / flops));
      runner.run(0, 0, pool);
      double best = 1e30;
      for (int round = 0; round < 7; ++round) {
        auto start = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r)
          runner.run(0, 0, pool);
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      rates[t++] = flops * reps / best / 1e9;
    }
    std::printf("%-28s %8.1f GFLOP/s (1 thread) %8.1f GFLOP/s (2 threads)\n", p.label().c_str(),
                rates[0], rates[1]);
  }
}

} // namespace
