//===- runtime/DropoutMask.h - Dropout masks drawn by the runtime -*- C++ -*-===//
//
// Generated code draws a dropout mask by calling gradc_dropout_mask
// (runtime/Abi.h) rather than carrying its own copy of the Philox rounds.
// A mask has nothing for static shapes to specialise: its code is the same
// for every model, so it is compiled once, with gradc, instead of on every
// JIT, where it was a fifth of LLVM's work on the Fashion-MNIST step (its
// 64-bit vector multiplies are slow to select for AVX2).  Element i is the
// one rt::dropoutMaskValue gives: `kept` when u_i >= `threshold`, else 0,
// with u_i from Philox-4x32-10 (runtime/Philox.h).
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>

namespace gradc::rt {

/// Which mask, and the two floats it is made of.
struct DropoutMaskKey {
  uint64_t seed = 0, step = 0;
  uint32_t stream = 0;
  float threshold = 0.0f; ///< p, rounded to f32: u >= threshold keeps
  float kept = 1.0f;      ///< 1/(1-p), computed in double and rounded once
};

/// The instruction set that writeDropoutMaskGroups uses; the results are
/// the same bits for both (only integer arithmetic and exact conversions).
enum class MaskIsa { Scalar, Avx2 };

/// Avx2 when this CPU has it, else Scalar.
MaskIsa hostMaskIsa();

/// Writes elements [4 * groupBegin, 4 * groupEnd) of the mask, the four
/// elements of each Philox group g, to out[4 * g ...]: `out` is the mask's
/// first element.  Element i depends only on the key and i, so any split
/// into ranges of groups gives the same mask.
void writeDropoutMaskGroups(const DropoutMaskKey &key, int64_t groupBegin, int64_t groupEnd,
                            float *out, MaskIsa isa);

/// Writes all `count` elements of the mask to out[0 ... count), on `pool`
/// (a gradc thread pool, or null) when the mask is big enough to pay for
/// the hand-off.
void writeDropoutMask(const DropoutMaskKey &key, int64_t count, float *out, void *pool);

} // namespace gradc::rt
