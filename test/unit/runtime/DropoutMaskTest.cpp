//===- test/unit/runtime/DropoutMaskTest.cpp - The runtime's masks --------===//
//
// gradc_dropout_mask must give, on either instruction set and any split,
// exactly the elements rt::dropoutMaskValue gives (which the interpreter
// uses); test/unit/codegen/JitVsInterpreterTest.cpp checks the same through
// generated code.
//
//===----------------------------------------------------------------------===//
#include "runtime/DropoutMask.h"
#include "runtime/Abi.h"
#include "runtime/Philox.h"
#include "runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

using namespace gradc::rt;

namespace {

/// The mask as the interpreter draws it, element by element.
std::vector<float> expectedMask(const DropoutMaskKey &key, double p, int64_t count) {
  std::vector<float> mask(count);
  for (int64_t i = 0; i < count; ++i)
    mask[i] = dropoutMaskValue(key.seed, key.step, key.stream, i, p);
  return mask;
}

DropoutMaskKey keyFor(uint64_t seed, uint64_t step, uint32_t stream, double p) {
  return {seed, step, stream, static_cast<float>(p), static_cast<float>(1.0 / (1.0 - p))};
}

/// Bitwise equality, so that +0 and -0 or two NaNs are told apart.
void expectSameBits(const std::vector<float> &got, const std::vector<float> &expected,
                    int64_t begin, int64_t end, const std::string &what) {
  for (int64_t i = begin; i < end; ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &expected[i], 4);
    ASSERT_EQ(a, b) << what << ": element " << i;
  }
}

} // namespace

TEST(RuntimeDropoutMask, BothInstructionSetsGiveTheInterpretersElementsForAnyRange) {
  std::vector<MaskIsa> isas = {MaskIsa::Scalar};
  if (hostMaskIsa() == MaskIsa::Avx2)
    isas.push_back(MaskIsa::Avx2);
  const int64_t groups = 70;
  for (double p : {0.0, 0.2, 0.5, 0.9}) {
    DropoutMaskKey key = keyFor(0xfedcba9876543210ull, 0x123456789ull, 3, p);
    std::vector<float> expected = expectedMask(key, p, 4 * groups);
    for (MaskIsa isa : isas) {
      // Ranges that start and end inside and at the edges of eight-group
      // vector blocks, and empty ones.
      for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, groups},
                                {0, 8},
                                {3, 3},
                                {5, 6},
                                {1, 17},
                                {13, 70},
                                {8, 64}}) {
        std::vector<float> got(4 * groups, -1.0f);
        writeDropoutMaskGroups(key, begin, end, got.data(), isa);
        std::string what = "p " + std::to_string(p) + " isa " +
                           (isa == MaskIsa::Avx2 ? "avx2" : "scalar") + " groups [" +
                           std::to_string(begin) + ", " + std::to_string(end) + ")";
        expectSameBits(got, expected, 4 * begin, 4 * end, what);
        // Nothing outside the range is written.
        for (int64_t i = 0; i < 4 * groups; ++i) {
          if (i < 4 * begin || i >= 4 * end) {
            ASSERT_EQ(got[i], -1.0f) << what << ": wrote element " << i;
          }
        }
      }
    }
  }
}

TEST(RuntimeDropoutMask, AWholeMaskIsTheSameOnAnyPoolWithAPartialLastGroup) {
  // 16387 elements: big enough for the pool, and three in the last group.
  for (int64_t count : {int64_t(1), int64_t(7), int64_t(1000), int64_t(16387)}) {
    DropoutMaskKey key = keyFor(7, 123456789012ull, 2, 0.3);
    std::vector<float> expected = expectedMask(key, 0.3, count);
    ThreadPool one(1), two(2), three(3);
    for (ThreadPool *pool : {static_cast<ThreadPool *>(nullptr), &one, &two, &three}) {
      std::vector<float> got(count + 1, -1.0f);
      gradc_step_context ctx{nullptr, nullptr, key.seed, key.step, nullptr, pool};
      gradc_dropout_mask(&ctx, key.stream, key.threshold, key.kept, count, got.data());
      std::string what = "count " + std::to_string(count) + " threads " +
                         std::to_string(pool ? pool->threads() : 0);
      expectSameBits(got, expected, 0, count, what);
      EXPECT_EQ(got[count], -1.0f) << what << ": wrote past the end";
    }
  }
}

// Prints the time a group takes on one core, scalar and (where the CPU has
// it) AVX2, best of 200 runs over 8,192 groups (a [128, 256] mask), the
// figures README gives for runtime/DropoutMask.cpp:
//   gradc_runtime_tests --gtest_filter='*DropoutMask*Throughput' --gtest_also_run_disabled_tests
TEST(RuntimeDropoutMask, DISABLED_Throughput) {
  const DropoutMaskKey key = keyFor(1, 2, 3, 0.2);
  std::vector<float> out(4 * 8192);
  std::vector<MaskIsa> isas = {MaskIsa::Scalar};
  if (hostMaskIsa() == MaskIsa::Avx2)
    isas.push_back(MaskIsa::Avx2);
  for (MaskIsa isa : isas) {
    double best = 1e30;
    for (int run = 0; run < 200; ++run) {
      auto start = std::chrono::steady_clock::now();
      writeDropoutMaskGroups(key, 0, 8192, out.data(), isa);
      best = std::min(
          best, std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
                    .count());
    }
    std::printf("%-6s %6.2f ns a group, %6.1f us for 8,192 groups\n",
                isa == MaskIsa::Avx2 ? "avx2" : "scalar", best / 8192, best / 1000);
  }
}
