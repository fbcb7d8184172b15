//===- codegen/PhiloxLowering.h - dropout_mask as inline Philox -*- C++ -*-===//
//
// The inverted-dropout mask computed in the kernel, bit for bit as
// runtime/Philox.h and the reference interpreter compute it: element i is
// 1/(1-p) (rounded once to f32) when u_i >= (float)p, else 0, with u_i the
// word i % 4 of Philox-4x32-10(counter = (i/4, stream, step), key = seed),
// shifted to 24 bits and scaled by 2^-24.  The ten rounds are emitted inline
// in a loop over groups of four elements, which the loop vectoriser widens
// (32x32->64-bit multiplies are vector instructions on x86).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/KernelBuilder.h"

#include <cstdint>
#include <string>

namespace gradc::codegen {

/// Writes `count` mask elements to `out`.  `seed` and `step` are the i64
/// values of ctx->seed and ctx->step.
void emitDropoutMask(KernelBuilder &kb, const std::string &name, int64_t count, double p,
                     uint32_t stream, llvm::Value *seed, llvm::Value *step, llvm::Value *out);

/// Writes the mask elements of Philox groups [groupBegin, groupEnd), four
/// elements each (elements 4 * groupBegin ... 4 * groupEnd - 1), then the
/// first `tailLanes` elements of group groupEnd: a part of the mask, for a
/// task of a parallel loop.  Element i depends only on (seed, step,
/// stream, i), so any split gives the same mask.  `stream` is an i32 value
/// (one task function then serves every mask of its size and p).
void emitDropoutMaskRange(KernelBuilder &kb, const std::string &name, llvm::Value *groupBegin,
                          llvm::Value *groupEnd, int tailLanes, double p, llvm::Value *stream,
                          llvm::Value *seed, llvm::Value *step, llvm::Value *out);

} // namespace gradc::codegen
