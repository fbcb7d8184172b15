//===- runtime/Philox.h - Counter-based random numbers ---------*- C++ -*-===//
//
// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC'11).  A pure function of (key, counter): any element of any
// dropout mask can be recomputed anywhere — in the backward pass, on another
// thread, in the reference interpreter — without storing it.  Generated
// code draws its masks through gradc_dropout_mask (runtime/DropoutMask.h),
// eight groups at a time in vectors, with these same rounds.
//
// Dropout masks use key = seed and counter = (i / 4, stream, step), lane
// i % 4, and u = (word >> 8) * 2^-24 in [0, 1).
//
//===----------------------------------------------------------------------===//
#pragma once

#include <array>
#include <cstdint>

namespace gradc::rt {

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

inline std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> ctr,
                                             std::array<uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kPhiloxW0;
      key[1] += kPhiloxW1;
    }
    uint64_t p0 = uint64_t(kPhiloxM0) * ctr[0];
    uint64_t p1 = uint64_t(kPhiloxM1) * ctr[2];
    ctr = {uint32_t(p1 >> 32) ^ ctr[1] ^ key[0], uint32_t(p1), uint32_t(p0 >> 32) ^ ctr[3] ^ key[1],
           uint32_t(p0)};
  }
  return ctr;
}

/// The four words of Philox group `group` of the dropout mask `stream` at
/// training step `step`: the words of elements 4 * group ... 4 * group + 3.
inline std::array<uint32_t, 4> dropoutGroupWords(uint64_t seed, uint64_t step, uint32_t stream,
                                                 uint64_t group) {
  return philox4x32_10({uint32_t(group), stream, uint32_t(step), uint32_t(step >> 32)},
                       {uint32_t(seed), uint32_t(seed >> 32)});
}

/// A word as a uniform number in [0, 1): its top 24 bits times 2^-24.
inline float uniformOfWord(uint32_t word) { return float(word >> 8) * (1.0f / 16777216.0f); }

/// The uniform number in [0, 1) for element `index` of the dropout mask
/// `stream` at training step `step`.
inline float dropoutUniform(uint64_t seed, uint64_t step, uint32_t stream, uint64_t index) {
  return uniformOfWord(dropoutGroupWords(seed, step, stream, index / 4)[index % 4]);
}

/// Element `index` of an inverted-dropout mask: 1/(1-p) when kept, else 0.
/// Kept means u >= p, so p = 0 keeps everything (lecture 2.5 keeps u > p;
/// the two differ on a set of probability zero).
inline float dropoutMaskValue(uint64_t seed, uint64_t step, uint32_t stream, uint64_t index,
                              double p) {
  // u is compared with p rounded to f32, and the kept value is 1/(1-p)
  // computed in double and rounded once, exactly as the interpreter and
  // gradc_dropout_mask (with the constants the lowering passes) compute
  // them.
  return dropoutUniform(seed, step, stream, index) >= float(p) ? float(1.0 / (1.0 - p)) : 0.0f;
}

} // namespace gradc::rt
