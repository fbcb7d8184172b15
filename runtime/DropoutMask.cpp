//===- runtime/DropoutMask.cpp - Dropout masks drawn by the runtime -------===//
//
// The AVX2 path runs eight Philox groups in the lanes of four vectors (one
// per counter word); a 32x32->64-bit multiply of the even lanes is one
// vpmuludq, so a round's two mulhi/mullo pairs take four.  The words are
// turned into mask values lane by lane, then transposed so that group g's
// four values land at out[4g ... 4g+3].  Which path runs depends only on
// the CPU, and both give the same bits (tested).
//
//===----------------------------------------------------------------------===//
#include "runtime/DropoutMask.h"
#include "runtime/Abi.h"
#include "runtime/Philox.h"

#include <array>

#if defined(__x86_64__)
#include <immintrin.h>
#define GRADC_MASK_AVX2 1
#endif

namespace gradc::rt {

namespace {

/// Elements 4 * g ... 4 * g + lanes - 1: the first `lanes` of Philox group
/// g, each as rt::dropoutMaskValue computes it.  Inline: called out of line
/// from the scalar loop, with `lanes` not a constant there, it took 14 ns
/// a group instead of 8.5 (DISABLED_Throughput in DropoutMaskTest.cpp).
inline void writeGroup(const DropoutMaskKey &key, int64_t g, int lanes, float *out) {
  std::array<uint32_t, 4> words = dropoutGroupWords(key.seed, key.step, key.stream, uint64_t(g));
  for (int lane = 0; lane < lanes; ++lane)
    out[4 * g + lane] = uniformOfWord(words[lane]) >= key.threshold ? key.kept : 0.0f;
}

void maskGroupsScalar(const DropoutMaskKey &key, int64_t begin, int64_t end, float *out) {
  for (int64_t g = begin; g < end; ++g)
    writeGroup(key, g, 4, out);
}

#if GRADC_MASK_AVX2

/// hi and lo words of the eight 64-bit products x[i] * m.
__attribute__((target("avx2"))) inline void mulHiLo(__m256i x, __m256i m, __m256i &hi,
                                                    __m256i &lo) {
  __m256i even = _mm256_mul_epu32(x, m);                       // lanes 0, 2, 4, 6
  __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m); // lanes 1, 3, 5, 7
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

__attribute__((target("avx2"))) inline __m256 maskValues(__m256i words, __m256 threshold,
                                                         __m256 kept) {
  __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(words, 8)),
                           _mm256_set1_ps(1.0f / 16777216.0f));
  return _mm256_and_ps(_mm256_cmp_ps(u, threshold, _CMP_GE_OQ), kept);
}

/// Transposes and stores the mask values of eight groups: wK holds word K
/// of groups g ... g+7, and group g+j's four values go to at[4j ...].
__attribute__((target("avx2"))) inline void storeGroups(float *at, __m256 w0, __m256 w1, __m256 w2,
                                                        __m256 w3) {
  __m256 t0 = _mm256_unpacklo_ps(w0, w1); // g0: w0 w1, g1: w0 w1 | g4, g5
  __m256 t1 = _mm256_unpackhi_ps(w0, w1); // g2, g3 | g6, g7
  __m256 t2 = _mm256_unpacklo_ps(w2, w3);
  __m256 t3 = _mm256_unpackhi_ps(w2, w3);
  __m256d d0 = _mm256_castps_pd(t0), d1 = _mm256_castps_pd(t1);
  __m256d d2 = _mm256_castps_pd(t2), d3 = _mm256_castps_pd(t3);
  __m256 u0 = _mm256_castpd_ps(_mm256_unpacklo_pd(d0, d2)); // g0 | g4
  __m256 u1 = _mm256_castpd_ps(_mm256_unpackhi_pd(d0, d2)); // g1 | g5
  __m256 u2 = _mm256_castpd_ps(_mm256_unpacklo_pd(d1, d3)); // g2 | g6
  __m256 u3 = _mm256_castpd_ps(_mm256_unpackhi_pd(d1, d3)); // g3 | g7
  _mm256_storeu_ps(at, _mm256_permute2f128_ps(u0, u1, 0x20));
  _mm256_storeu_ps(at + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
  _mm256_storeu_ps(at + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
  _mm256_storeu_ps(at + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
}

__attribute__((target("avx2"))) void maskGroupsAvx2(const DropoutMaskKey &key, int64_t begin,
                                                    int64_t end, float *out) {
  // The round keys are the same for every group.
  __m256i key0[10], key1[10];
  uint32_t k0 = uint32_t(key.seed), k1 = uint32_t(key.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    key0[round] = _mm256_set1_epi32(int(k0));
    key1[round] = _mm256_set1_epi32(int(k1));
  }
  const __m256i m0 = _mm256_set1_epi32(int(kPhiloxM0)), m1 = _mm256_set1_epi32(int(kPhiloxM1));
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i stream = _mm256_set1_epi32(int(key.stream));
  const __m256i stepLo = _mm256_set1_epi32(int(uint32_t(key.step)));
  const __m256i stepHi = _mm256_set1_epi32(int(uint32_t(key.step >> 32)));
  const __m256 threshold = _mm256_set1_ps(key.threshold), kept = _mm256_set1_ps(key.kept);
  // Four blocks of eight groups per iteration: a round is a chain of a
  // multiply, a blend and two xors, and the other blocks' chains hide its
  // latency (one block 3.7 ns a group, two 2.6, three 2.35, four 2.25 on
  // this Zen 3, one core, 8192 groups from a one-off timing loop).
  constexpr int kBlocks = 4;
  int64_t g = begin;
  for (; g + 8 * kBlocks <= end; g += 8 * kBlocks) {
    __m256i x0[kBlocks], x1[kBlocks], x2[kBlocks], x3[kBlocks];
    for (int k = 0; k < kBlocks; ++k) {
      // Counter (g, stream, step lo, step hi), g truncated to 32 bits as
      // in rt::dropoutUniform.
      x0[k] = _mm256_add_epi32(_mm256_set1_epi32(int(uint32_t(g + 8 * k))), lanes);
      x1[k] = stream;
      x2[k] = stepLo;
      x3[k] = stepHi;
    }
#pragma GCC unroll 10
    for (int round = 0; round < 10; ++round) {
      for (int k = 0; k < kBlocks; ++k) {
        __m256i hi0, lo0, hi1, lo1;
        mulHiLo(x0[k], m0, hi0, lo0);
        mulHiLo(x2[k], m1, hi1, lo1);
        x0[k] = _mm256_xor_si256(_mm256_xor_si256(hi1, x1[k]), key0[round]);
        x1[k] = lo1;
        x2[k] = _mm256_xor_si256(_mm256_xor_si256(hi0, x3[k]), key1[round]);
        x3[k] = lo0;
      }
    }
    for (int k = 0; k < kBlocks; ++k)
      storeGroups(out + 4 * (g + 8 * k), maskValues(x0[k], threshold, kept),
                  maskValues(x1[k], threshold, kept), maskValues(x2[k], threshold, kept),
                  maskValues(x3[k], threshold, kept));
  }
  maskGroupsScalar(key, g, end, out);
}

#endif

struct MaskClosure {
  const DropoutMaskKey *key;
  float *out;
  MaskIsa isa;
};

/// gradc_loop_body over Philox groups.
void drawMaskGroups(void *closure, int64_t begin, int64_t end) {
  const auto &task = *static_cast<const MaskClosure *>(closure);
  writeDropoutMaskGroups(*task.key, begin, end, task.out, task.isa);
}

} // namespace

MaskIsa hostMaskIsa() {
#if GRADC_MASK_AVX2
  static const MaskIsa isa = __builtin_cpu_supports("avx2") ? MaskIsa::Avx2 : MaskIsa::Scalar;
  return isa;
#else
  return MaskIsa::Scalar;
#endif
}

void writeDropoutMaskGroups(const DropoutMaskKey &key, int64_t groupBegin, int64_t groupEnd,
                            float *out, MaskIsa isa) {
#if GRADC_MASK_AVX2
  if (isa == MaskIsa::Avx2) {
    maskGroupsAvx2(key, groupBegin, groupEnd, out);
    return;
  }
#endif
  (void)isa;
  maskGroupsScalar(key, groupBegin, groupEnd, out);
}

void writeDropoutMask(const DropoutMaskKey &key, int64_t count, float *out, void *pool) {
  // Below this many elements the pool's hand-off costs more than it saves.
  constexpr int64_t kParallelMaskElements = int64_t(1) << 14;
  MaskClosure closure{&key, out, hostMaskIsa()};
  const int64_t groups = count / 4;
  if (count >= kParallelMaskElements)
    gradc_parallel_for(pool, groups, drawMaskGroups, &closure);
  else
    drawMaskGroups(&closure, 0, groups);
  if (count % 4 != 0) // the partial last group
    writeGroup(key, groups, static_cast<int>(count % 4), out);
}

} // namespace gradc::rt

extern "C" void gradc_dropout_mask(const gradc_step_context *ctx, uint32_t stream, float threshold,
                                   float kept, int64_t count, float *out) {
  gradc::rt::DropoutMaskKey key{ctx->seed, ctx->step, stream, threshold, kept};
  gradc::rt::writeDropoutMask(key, count, out, ctx->pool);
}
