//===- runtime/Random.h - Reproducible random streams -----------*- C++ -*-===//
//
// Initial weights, synthetic data and the shuffle order must be the same
// bits on every machine and with every C++ library, or "same seed, same
// result" breaks the day a user moves a run.  So:
//   - all randomness is Philox (runtime/Philox.h), a pure function of
//     (key, counter), keyed by the seed, with a separate counter domain per
//     purpose so the streams never overlap;
//   - normals come from our own Box-Muller, never std::normal_distribution
//     (its algorithm differs between libstdc++, libc++ and MSVC);
//   - log, exp, sin/cos and tanh are our own, built only from +, -, *, /
//     and sqrt, which IEEE 754 rounds exactly (libm's may differ in the last
//     bit between versions); the runtime is compiled with -ffp-contract=off
//     so no FMA changes the rounding either.
//
// Philox counter layout: (block low word, stream, domain, block high word),
// block = element / 4, lane = element % 4.  Dropout masks put the step in
// words 2 and 3, so the domains below (large constants in word 2) only meet
// them after billions of steps, and then only by chance.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <array>
#include <cstdint>

namespace gradc::rt {

/// Counter word 2 of parameter initialization (ASCII "INIT").
inline constexpr uint32_t kInitDomain = 0x494E4954u;
/// Counter word 2 of synthetic data sets (ASCII "DATA").
inline constexpr uint32_t kDataDomain = 0x44415441u;
/// Counter word 2 of the per-epoch shuffle (ASCII "SHUF").
inline constexpr uint32_t kShuffleDomain = 0x53485546u;

/// Natural logarithm of a finite x > 0 (x <= 0 gives -inf / NaN), accurate
/// to about 1 ulp, bit-identical on every IEEE-754 machine.
double reproducibleLog(double x);
/// e^x, accurate to about 1 ulp, bit-identical on every IEEE-754 machine.
double reproducibleExp(double x);
/// tanh(x), accurate to a few ulp, bit-identical on every IEEE-754 machine.
double reproducibleTanh(double x);
/// sin and cos of 2*pi*u for u in [0, 1), bit-identical everywhere.
void reproducibleSinCos2Pi(double u, double &sinOut, double &cosOut);

/// The four Philox-4x32-10 words of `block` in (seed, stream, domain).
std::array<uint32_t, 4> philoxBlock(uint64_t seed, uint64_t block, uint32_t stream,
                                    uint32_t domain);

/// A 32-bit word as a uniform number in [0, 1): word * 2^-32 (exact).
inline double uniformFromWord(uint32_t word) { return word * 0x1p-32; }

/// Two independent standard normals from two uniform words (Box-Muller):
/// r = sqrt(-2 ln u1), u1 = (w0 + 1) 2^-32 in (0, 1]; {r cos 2 pi u2,
/// r sin 2 pi u2}, u2 = w1 2^-32.  |z| <= sqrt(64 ln 2) ~ 6.66.
std::array<double, 2> boxMuller(uint32_t w0, uint32_t w1);

/// Calls sink(i, z) for i in [0, n) in order, z the i-th standard normal of
/// the stream: lanes 0, 1 of a block come from words 0, 1; lanes 2, 3 from
/// words 2, 3.  Element i depends only on (seed, stream, domain, i).
template <typename Sink>
void forEachStandardNormal(int64_t n, uint64_t seed, uint32_t stream, uint32_t domain,
                           Sink &&sink) {
  for (int64_t first = 0; first < n; first += 4) {
    std::array<uint32_t, 4> words = philoxBlock(seed, uint64_t(first) / 4, stream, domain);
    std::array<double, 2> low = boxMuller(words[0], words[1]);
    std::array<double, 2> high = boxMuller(words[2], words[3]);
    const double z[4] = {low[0], low[1], high[0], high[1]};
    for (int lane = 0; lane < 4 && first + lane < n; ++lane)
      sink(first + lane, z[lane]);
  }
}

/// Calls sink(i, u) for i in [0, n) in order, u in [0, 1) the i-th uniform
/// of the stream (word i % 4 of block i / 4).
template <typename Sink>
void forEachUniform(int64_t n, uint64_t seed, uint32_t stream, uint32_t domain, Sink &&sink) {
  for (int64_t first = 0; first < n; first += 4) {
    std::array<uint32_t, 4> words = philoxBlock(seed, uint64_t(first) / 4, stream, domain);
    for (int lane = 0; lane < 4 && first + lane < n; ++lane)
      sink(first + lane, uniformFromWord(words[lane]));
  }
}

} // namespace gradc::rt
