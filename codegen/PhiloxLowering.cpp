//===- codegen/PhiloxLowering.cpp - dropout_mask as inline Philox ---------===//
#include "codegen/PhiloxLowering.h"
#include "runtime/Philox.h"

#include <array>

namespace gradc::codegen {

using namespace llvm;

namespace {

/// hi and lo words of the 64-bit product of two 32-bit words.
std::pair<Value *, Value *> mulHiLo(KernelBuilder &kb, uint32_t multiplier, Value *word) {
  IRBuilderBase &b = kb.b;
  Value *product = b.CreateMul(b.CreateZExt(word, kb.i64), kb.b.getInt64(multiplier), "", true);
  Value *hi = b.CreateTrunc(b.CreateLShr(product, 32), kb.i32);
  Value *lo = b.CreateTrunc(product, kb.i32);
  return {hi, lo};
}

/// Philox-4x32-10, exactly rt::philox4x32_10.
std::array<Value *, 4> philoxRounds(KernelBuilder &kb, std::array<Value *, 4> ctr,
                                    std::array<Value *, 2> key) {
  IRBuilderBase &b = kb.b;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] = b.CreateAdd(key[0], b.getInt32(rt::kPhiloxW0));
      key[1] = b.CreateAdd(key[1], b.getInt32(rt::kPhiloxW1));
    }
    auto [hi0, lo0] = mulHiLo(kb, rt::kPhiloxM0, ctr[0]);
    auto [hi1, lo1] = mulHiLo(kb, rt::kPhiloxM1, ctr[2]);
    ctr = {b.CreateXor(b.CreateXor(hi1, ctr[1]), key[0]), lo1,
           b.CreateXor(b.CreateXor(hi0, ctr[3]), key[1]), lo0};
  }
  return ctr;
}

} // namespace

namespace {

/// Emits the mask elements of the Philox groups [groupBegin, groupEnd) (four
/// elements each) and, when `tailLanes` > 0, the first `tailLanes` elements
/// of group `groupEnd` (the partial last group).
void emitMaskGroups(KernelBuilder &kb, const std::string &name, Value *groupBegin, Value *groupEnd,
                    int tailLanes, double p, Value *stream, Value *seed, Value *step, Value *out) {
  IRBuilderBase &b = kb.b;
  // Exactly the interpreter's constants: p compared as f32, the kept value
  // 1/(1-p) computed in double and rounded once.
  float threshold = static_cast<float>(p);
  float kept = static_cast<float>(1.0 / (1.0 - p));
  std::array<Value *, 2> key = {b.CreateTrunc(seed, kb.i32, "seed.lo"),
                                b.CreateTrunc(b.CreateLShr(seed, 32), kb.i32, "seed.hi")};
  Value *stepLo = b.CreateTrunc(step, kb.i32, "step.lo");
  Value *stepHi = b.CreateTrunc(b.CreateLShr(step, 32), kb.i32, "step.hi");

  // One Philox call gives the four elements of group g.
  auto group = [&](Value *g, int lanes) {
    Value *counter = b.CreateTrunc(g, kb.i32, name + ".ctr");
    std::array<Value *, 4> words = philoxRounds(kb, {counter, stream, stepLo, stepHi}, key);
    for (int lane = 0; lane < lanes; ++lane) {
      Value *bits24 = b.CreateLShr(words[lane], 8);
      // 24-bit integers convert exactly, so signed conversion (cheaper on
      // x86 before AVX-512) gives the same float.
      Value *u =
          b.CreateFMul(b.CreateSIToFP(bits24, kb.f32), kb.f32Const(1.0 / 16777216.0), name + ".u");
      Value *keep = b.CreateFCmpOGE(u, kb.f32Const(threshold));
      Value *value = b.CreateSelect(keep, kb.f32Const(kept), kb.f32Const(0.0), name + ".v");
      Value *at =
          b.CreateAdd(b.CreateMul(g, kb.index(4), "", true, true), kb.index(lane), "", true, true);
      kb.store(value, out, at);
    }
  };
  kb.loopRange(groupBegin, groupEnd, 1, name + ".g", [&](Value *g) { group(g, 4); });
  if (tailLanes > 0)
    group(groupEnd, tailLanes);
}

} // namespace

void emitDropoutMask(KernelBuilder &kb, const std::string &name, int64_t count, double p,
                     uint32_t stream, Value *seed, Value *step, Value *out) {
  emitMaskGroups(kb, name, kb.index(0), kb.index(count / 4), static_cast<int>(count % 4), p,
                 kb.b.getInt32(stream), seed, step, out);
}

void emitDropoutMaskRange(KernelBuilder &kb, const std::string &name, Value *groupBegin,
                          Value *groupEnd, int tailLanes, double p, Value *stream, Value *seed,
                          Value *step, Value *out) {
  emitMaskGroups(kb, name, groupBegin, groupEnd, tailLanes, p, stream, seed, step, out);
}

} // namespace gradc::codegen
