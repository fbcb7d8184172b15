//===- codegen/MathApprox.cpp - Inline f32 elementary functions -----------===//
//
// The polynomials are Cephes' single-precision ones (S. L. Moshier, Cephes
// Math Library: expf.c, logf.c, tanhf.c), evaluated branch-free.  Inside
// these functions only `contract` is allowed: reassociation would undo the
// Cody-Waite range reductions (x - n*C1 - n*C2) and the rounding trick of
// exp, whereas fusing into FMAs only makes them more accurate.
//
//===----------------------------------------------------------------------===//
#include "codegen/MathApprox.h"

#include <llvm/IR/Intrinsics.h>

#include <cmath>
#include <limits>
#include <numbers>

namespace gradc::codegen {

using namespace llvm;

namespace {

/// Sets contract-only fast-math flags for the lifetime of the object.
class ContractOnly {
public:
  explicit ContractOnly(IRBuilderBase &b) : guard_(b) {
    FastMathFlags flags;
    flags.setAllowContract();
    b.setFastMathFlags(flags);
  }

private:
  IRBuilderBase::FastMathFlagGuard guard_;
};

Constant *fconst(Value *like, double v) {
  return ConstantFP::get(like->getType(), static_cast<float>(v));
}
Type *intTypeLike(Value *like) {
  return like->getType()->getWithNewType(Type::getInt32Ty(like->getContext()));
}
Constant *iconst(Value *like, int64_t v) {
  return ConstantInt::get(intTypeLike(like), static_cast<uint64_t>(v), /*IsSigned=*/true);
}

/// Horner's rule: ((c[0] x + c[1]) x + ...) x + c[n-1].
Value *horner(IRBuilderBase &b, Value *x, std::initializer_list<double> coeffs) {
  auto it = coeffs.begin();
  Value *acc = fconst(x, *it++);
  for (; it != coeffs.end(); ++it)
    acc = b.CreateFAdd(b.CreateFMul(acc, x), fconst(x, *it));
  return acc;
}

Value *isNaN(IRBuilderBase &b, Value *x) { return b.CreateFCmpUNO(x, x); }

/// 2^n for an i32 n in [-252, 254], as the product of two normal powers of
/// two so that results in the subnormal range and 2^128 need no special case.
Value *scaleByPow2(IRBuilderBase &b, Value *y, Value *n) {
  Value *n1 = b.CreateAShr(n, iconst(n, 1));
  Value *n2 = b.CreateSub(n, n1);
  Type *floatType = y->getType();
  auto pow2 = [&](Value *k) {
    return b.CreateBitCast(b.CreateShl(b.CreateAdd(k, iconst(k, 127)), iconst(k, 23)), floatType);
  };
  return b.CreateFMul(b.CreateFMul(y, pow2(n1)), pow2(n2));
}

/// x^n for a non-negative integer n by repeated squaring.
Value *integerPower(IRBuilderBase &b, Value *x, uint64_t n) {
  Value *result = nullptr, *square = x;
  while (n) {
    if (n & 1)
      result = result ? b.CreateFMul(result, square) : square;
    n >>= 1;
    if (n)
      square = b.CreateFMul(square, square);
  }
  return result ? result : fconst(x, 1.0);
}

} // namespace

namespace {

/// Cephes' expf polynomial: exp(r) for |r| <= ln(2)/2.
Value *expOfReduced(IRBuilderBase &b, Value *r) {
  Value *z = b.CreateFMul(r, r);
  Value *p = horner(b, r,
                    {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3, 4.1665795894E-2,
                     1.6666665459E-1, 5.0000001201E-1});
  return b.CreateFAdd(b.CreateFAdd(b.CreateFMul(p, z), r), fconst(r, 1.0));
}

/// log(x) = e ln 2 + log1p(m) for positive x (subnormals included), with
/// m in [sqrt(1/2) - 1, sqrt(2) - 1) and log1p(m) ~ m + poly - z/2:
/// Cephes' logf without its last additions, which the callers order.
struct LogParts {
  Value *e;    ///< the exponent, as an exact f32
  Value *m;    ///< the reduced argument
  Value *poly; ///< m^3 P(m)
  Value *z;    ///< m^2
};

LogParts logParts(IRBuilderBase &b, Value *x) {
  Type *intType = intTypeLike(x);
  // Subnormals are scaled into the normal range first.
  Value *tiny = b.CreateFCmpOLT(x, fconst(x, std::numeric_limits<float>::min()));
  Value *xs = b.CreateSelect(tiny, b.CreateFMul(x, fconst(x, 8388608.0)), x);
  Value *bits = b.CreateBitCast(xs, intType);
  // x = f * 2^e with f in [0.5, 1).
  Value *e = b.CreateSub(b.CreateLShr(bits, iconst(x, 23)), iconst(x, 126));
  e = b.CreateAdd(e, b.CreateSelect(tiny, iconst(x, -23), iconst(x, 0)));
  Value *fbits = b.CreateOr(b.CreateAnd(bits, iconst(x, 0x007fffff)), iconst(x, 0x3f000000));
  Value *f = b.CreateBitCast(fbits, x->getType());
  // Keep the reduced argument in [sqrt(1/2) - 1, sqrt(2) - 1).
  Value *small = b.CreateFCmpOLT(f, fconst(x, 0.707106781186547524));
  e = b.CreateSub(e, b.CreateZExt(small, intType));
  Value *m = b.CreateFSub(b.CreateSelect(small, b.CreateFAdd(f, f), f), fconst(x, 1.0), "log.m");
  Value *fe = b.CreateSIToFP(e, x->getType(), "log.e");
  Value *z = b.CreateFMul(m, m);
  Value *p =
      horner(b, m,
             {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
              -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1});
  return {fe, m, b.CreateFMul(b.CreateFMul(p, m), z), z};
}

/// The value C's logf gives for x = 0, x < 0, +inf and NaN, selected over
/// `r` (the result for every other x).
Value *logSpecialValues(IRBuilderBase &b, Value *x, Value *r, const Twine &name) {
  const double inf = std::numeric_limits<double>::infinity();
  Value *like = r;
  r = b.CreateSelect(b.CreateFCmpOEQ(x, fconst(x, inf)), fconst(like, inf), r);
  r = b.CreateSelect(b.CreateFCmpOEQ(x, fconst(x, 0.0)), fconst(like, -inf), r);
  r = b.CreateSelect(b.CreateFCmpOLT(x, fconst(x, 0.0)),
                     fconst(like, std::numeric_limits<double>::quiet_NaN()), r);
  return b.CreateSelect(isNaN(b, x), fconst(like, std::numeric_limits<double>::quiet_NaN()), r,
                        name);
}

} // namespace

Value *emitExp(IRBuilderBase &b, Value *x, const Twine &name) {
  ContractOnly flags(b);
  // exp(x) overflows above ln(FLT_MAX) and rounds to 0 below ln(2^-150).
  const double hi = 88.72283935546875, lo = -104.0;
  Value *xc = b.CreateSelect(b.CreateFCmpOGT(x, fconst(x, hi)), fconst(x, hi), x);
  xc = b.CreateSelect(b.CreateFCmpOLT(xc, fconst(x, lo)), fconst(x, lo), xc);
  // n = round(x / ln 2): adding 1.5 * 2^23 leaves the rounded integer in the
  // low mantissa bits (no float-to-int conversion, which is poison on NaN).
  const double magic = 12582912.0;
  Value *t = b.CreateFAdd(b.CreateFMul(xc, fconst(x, 1.44269504088896341)), fconst(x, magic));
  Value *n = b.CreateFSub(t, fconst(x, magic), "exp.n");
  Value *ni = b.CreateSub(b.CreateBitCast(t, intTypeLike(x)), iconst(x, 0x4B400000));
  // r = x - n ln 2 in two steps (Cody-Waite): C1 has few bits, so n*C1 is exact.
  Value *r = b.CreateFSub(xc, b.CreateFMul(n, fconst(x, 0.693359375)));
  r = b.CreateFSub(r, b.CreateFMul(n, fconst(x, -2.12194440e-4)), "exp.r");
  Value *result = scaleByPow2(b, expOfReduced(b, r), ni);
  return b.CreateSelect(isNaN(b, x), x, result, name);
}

Value *emitLog(IRBuilderBase &b, Value *x, const Twine &name) {
  ContractOnly flags(b);
  LogParts parts = logParts(b, x);
  // e ln 2 in two parts (C1 has few bits, so e*C1 is exact), the small
  // terms first.
  Value *y = b.CreateFAdd(parts.poly, b.CreateFMul(parts.e, fconst(x, -2.12194440e-4)));
  y = b.CreateFSub(y, b.CreateFMul(parts.z, fconst(x, 0.5)));
  Value *r = b.CreateFAdd(parts.m, y);
  r = b.CreateFAdd(r, b.CreateFMul(parts.e, fconst(x, 0.693359375)));
  return logSpecialValues(b, x, r, name);
}

Value *emitTanh(IRBuilderBase &b, Value *x, const Twine &name) {
  Value *large, *small, *ax;
  {
    ContractOnly flags(b);
    ax = b.CreateUnaryIntrinsic(Intrinsic::fabs, x);
    // |x| < 0.625: odd minimax polynomial, x + x^3 P(x^2).
    Value *z = b.CreateFMul(x, x);
    Value *p = horner(b, z,
                      {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2, 1.33314422036E-1,
                       -3.33332819422E-1});
    small = b.CreateFAdd(b.CreateFMul(b.CreateFMul(p, z), x), x);
  }
  // Elsewhere 1 - 2 / (exp(2|x|) + 1), which tends to 1 (exp overflows to
  // +inf) without a NaN; the sign comes back with copysign.
  Value *e = emitExp(b, b.CreateFAdd(ax, ax));
  ContractOnly flags(b);
  large =
      b.CreateFSub(fconst(x, 1.0), b.CreateFDiv(fconst(x, 2.0), b.CreateFAdd(e, fconst(x, 1.0))));
  large = b.CreateBinaryIntrinsic(Intrinsic::copysign, large, x);
  // A NaN compares false and takes the polynomial, which keeps it a NaN.
  return b.CreateSelect(b.CreateFCmpOGE(ax, fconst(x, 0.625)), large, small, name);
}

Value *emitSigmoid(IRBuilderBase &b, Value *x, const Twine &name) {
  // With e = exp(-|x|) <= 1: sigmoid(x) = 1 / (1 + e) for x >= 0 and
  // e / (1 + e) for x < 0.  Neither overflows, and one division rounds.
  Value *ax = b.CreateUnaryIntrinsic(Intrinsic::fabs, x);
  Value *e = emitExp(b, b.CreateFNeg(ax), "sigmoid.e");
  ContractOnly flags(b);
  Value *numerator = b.CreateSelect(b.CreateFCmpOLT(x, fconst(x, 0.0)), e, fconst(x, 1.0));
  return b.CreateFDiv(numerator, b.CreateFAdd(e, fconst(x, 1.0)), name);
}

Value *emitLog1p(IRBuilderBase &b, Value *x, const Twine &name) {
  // Goldberg's trick: with w = fl(1 + x), log(w) * x / (w - 1) corrects the
  // rounding of 1 + x; when w is 1, x is below half an ulp of 1 and
  // log(1 + x) = x to f32 precision.  Only `contract` is allowed, so
  // (1 + x) - 1 is not simplified back to x.
  Value *w, *general;
  {
    ContractOnly flags(b);
    w = b.CreateFAdd(fconst(x, 1.0), x, "log1p.w");
  }
  Value *logW = emitLog(b, w);
  ContractOnly flags(b);
  general = b.CreateFMul(logW, b.CreateFDiv(x, b.CreateFSub(w, fconst(x, 1.0))));
  return b.CreateSelect(b.CreateFCmpOEQ(w, fconst(x, 1.0)), x, general, name);
}

Value *emitSqrt(IRBuilderBase &b, Value *x, const Twine &name) {
  return b.CreateUnaryIntrinsic(Intrinsic::sqrt, x, nullptr, name);
}

/// x^e = exp(e log x) with e log x carried in double: in f32 its rounding
/// error (half an ulp of e log x, e.g. 2^-21 for 12.4) would become the
/// result's relative error, 16 ulp and more.  Only the log1p and exp
/// polynomials are evaluated in f32.
static Value *generalPow(IRBuilderBase &b, Value *x, double exponent, const Twine &name) {
  Type *doubleType = x->getType()->getWithNewType(b.getDoubleTy());
  auto dconst = [&](double v) { return ConstantFP::get(doubleType, v); };
  LogParts parts = logParts(b, x);
  Value *log1pm =
      b.CreateFAdd(parts.m, b.CreateFSub(parts.poly, b.CreateFMul(parts.z, fconst(x, 0.5))));
  Value *logX =
      b.CreateFAdd(b.CreateFMul(b.CreateFPExt(parts.e, doubleType), dconst(std::numbers::ln2)),
                   b.CreateFPExt(log1pm, doubleType));
  // x = 0, x < 0, +inf and NaN take C's log value, so y is +-inf or NaN.
  logX = logSpecialValues(b, x, logX, "pow.log");
  Value *y = b.CreateFMul(logX, dconst(exponent), "pow.y");
  // exp(y): as emitExp, with the reduction y - n ln 2 in double.
  Value *yc =
      b.CreateSelect(b.CreateFCmpOGT(y, dconst(88.72283935546875)), dconst(88.72283935546875), y);
  yc = b.CreateSelect(b.CreateFCmpOLT(yc, dconst(-104.0)), dconst(-104.0), yc);
  yc = b.CreateSelect(isNaN(b, y), dconst(0.0), yc);
  const double magic = 6755399441055744.0; // 1.5 * 2^52
  Value *t = b.CreateFAdd(b.CreateFMul(yc, dconst(1.4426950408889634)), dconst(magic));
  Value *n = b.CreateFSub(t, dconst(magic));
  Value *ni = b.CreateFPToSI(n, intTypeLike(x)); // |n| <= 150: exact
  Value *r =
      b.CreateFPTrunc(b.CreateFSub(yc, b.CreateFMul(n, dconst(std::numbers::ln2))), x->getType());
  Value *result = scaleByPow2(b, expOfReduced(b, r), ni);
  return b.CreateSelect(isNaN(b, y), fconst(x, std::numeric_limits<double>::quiet_NaN()), result,
                        name);
}

Value *emitPow(IRBuilderBase &b, Value *x, double exponent, const Twine &name) {
  ContractOnly flags(b);
  // One correctly rounded f32 operation.
  if (exponent == 0)
    return fconst(x, 1.0);
  if (exponent == 1)
    return x;
  if (exponent == 2)
    return b.CreateFMul(x, x, name);
  if (exponent == 0.5)
    return emitSqrt(b, x, name);
  if (exponent == -1)
    return b.CreateFDiv(fconst(x, 1.0), x, name);
  double magnitude = std::fabs(exponent);
  double twice = 2 * magnitude;
  if (magnitude <= 64 && twice == std::floor(twice)) {
    // |exponent| = n or n + 1/2: x^n (times sqrt(x)), inverted if negative,
    // in double and rounded once, so the result is within about half an
    // ulp: x^3 in f32 would round twice, x^5 three times.
    Type *doubleType = x->getType()->getWithNewType(b.getDoubleTy());
    Value *xd = b.CreateFPExt(x, doubleType);
    uint64_t n = static_cast<uint64_t>(std::floor(magnitude));
    bool half = twice != 2 * std::floor(magnitude);
    Value *power = integerPower(b, xd, n);
    if (half)
      power = n == 0 ? emitSqrt(b, xd) : b.CreateFMul(power, emitSqrt(b, xd));
    if (exponent < 0)
      power = b.CreateFDiv(ConstantFP::get(doubleType, 1.0), power);
    return b.CreateFPTrunc(power, x->getType(), name);
  }
  return generalPow(b, x, exponent, name);
}

} // namespace gradc::codegen
