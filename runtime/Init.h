//===- runtime/Init.h - Parameter initializers ------------------*- C++ -*-===//
//
// Fills parameters and optimizer state from their TensorSpec::init,
// bit-reproducibly across machines and library versions: element i of the
// tensor with index `tensorIndex` draws its uniforms from Philox with key =
// seed and counter = (i / 4, tensorIndex, kInitDomain, 0) (runtime/Random.h),
// and normals from our own Box-Muller.
//
// Initializers (the names ir/Verifier.cpp accepts):
//   xavier_normal   N(0, 2 / (fan_in + fan_out))            lecture 2.7
//   xavier_uniform  U(-a, a), a = sqrt(6 / (fan_in + fan_out))  lecture 2.7
//   he_normal       N(0, 2 / fan_in)
//   he_uniform      U(-a, a), a = sqrt(6 / fan_in)
//   normal(sigma)   N(0, sigma^2)
//   uniform(a, b)   U(a, b)
//   zeros, ones, constant(c)
// An empty kind means zeros (optimizer state usually has none).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Model.h"

#include <cstdint>
#include <string>

namespace gradc::rt {

/// Fan-in and fan-out of a weight, as the Xavier and He formulas use them.
struct Fans {
  int64_t in = 1, out = 1;
};
/// The fans the initializer of `spec` uses: spec.init.fanIn / fanOut when
/// the compiler set them (> 0); otherwise derived from the shape the way
/// PyTorch does for a [out, in, ...] weight: fan_out = dims[0] *
/// receptive field, fan_in = dims[1] * receptive field (rank 1: both
/// dims[0]; a scalar: both 1).
Fans initializerFans(const TensorSpec &spec);

/// An empty string when spec.init is a known initializer with the right
/// number of finite arguments that fits the element type (i32 tensors take
/// only zeros, ones and an integral constant); otherwise the full error
/// message, naming the tensor.
std::string checkInitializer(const TensorSpec &spec);

/// Fills data[0, spec.numel()) as spec.init says.  Deterministic: the bits
/// depend only on (spec, seed, tensorIndex).  Throws std::invalid_argument
/// with checkInitializer's message when the initializer is invalid.
void initializeTensor(const TensorSpec &spec, float *data, uint64_t seed, uint32_t tensorIndex);

/// The same for an i32 tensor (constant initializers only).
void initializeTensor(const TensorSpec &spec, int32_t *data, uint64_t seed, uint32_t tensorIndex);

} // namespace gradc::rt
