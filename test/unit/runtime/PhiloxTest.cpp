//===- test/unit/runtime/PhiloxTest.cpp - Philox known answers ------------===//
//
// Random123's published known-answer tests for philox4x32_10 (kat_vectors),
// so the runtime, the interpreter and generated code draw the same masks as
// every other Philox implementation.
//
//===----------------------------------------------------------------------===//
#include "runtime/Philox.h"

#include <gtest/gtest.h>

using namespace gradc::rt;

namespace {

struct KnownAnswer {
  std::array<uint32_t, 4> counter;
  std::array<uint32_t, 2> key;
  std::array<uint32_t, 4> expected;
};

constexpr KnownAnswer kRandom123Answers[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

TEST(Philox, MatchesRandom123KnownAnswers) {
  for (const KnownAnswer &answer : kRandom123Answers) {
    std::array<uint32_t, 4> words = philox4x32_10(answer.counter, answer.key);
    for (int lane = 0; lane < 4; ++lane)
      EXPECT_EQ(words[lane], answer.expected[lane])
          << "lane " << lane << " of counter " << std::hex << answer.counter[0];
  }
}

TEST(Philox, DropoutUniformUsesTheDocumentedLayout) {
  // counter = (i / 4, stream, step low, step high), key = seed, lane i % 4.
  const uint64_t seed = 0x0123456789abcdefull, step = 0x100000002ull;
  const uint32_t stream = 7;
  for (uint64_t index : {0ull, 1ull, 5ull, 4099ull}) {
    auto words = philox4x32_10({uint32_t(index / 4), stream, 2, 1}, {0x89abcdef, 0x01234567});
    float expected = float(words[index % 4] >> 8) / 16777216.0f;
    EXPECT_EQ(dropoutUniform(seed, step, stream, index), expected) << "index " << index;
  }
}

TEST(Philox, DropoutMaskKeepsAFractionOneMinusP) {
  const float p = 0.25f;
  const int n = 100000;
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    float value = dropoutMaskValue(1, 0, 0, i, p);
    ASSERT_TRUE(value == 0.0f || value == 1.0f / (1.0f - p));
    kept += value != 0.0f;
  }
  // Binomial standard deviation sqrt(n p (1-p)) ~ 137; allow 5 of them.
  EXPECT_NEAR(kept, n * (1 - p), 700);
}

} // namespace
