//===- codegen/MathApprox.h - Inline f32 elementary functions --*- C++ -*-===//
//
// exp, log, tanh, sigmoid and pow as straight-line IR (polynomials, range
// reduction by bit manipulation, selects for the special cases): no calls
// and no branches, so the loop vectoriser can widen them like any other
// arithmetic.  Each function accepts an f32 scalar or an f32 vector value.
//
// Maximum errors measured against double-precision libm on 2^24 f32
// inputs evenly spaced by bit pattern over each range (znver5 host, FMA
// contraction on; test/unit/codegen/MathApproxTest.cpp asserts the bounds):
//   exp      [-104, 88.7] (subnormal results included)   1.005 ulp
//   log      (0, FLT_MAX] (subnormal inputs included)    0.793 ulp
//   tanh     [-10, 10]                                   1.297 ulp
//   sigmoid  [-104, 40]                                  2.323 ulp
//   pow      integer and half-integer exponents          0.500 ulp
//            x^2.7 on [0.01, 100], x^-0.37 on [1e-30, 1e30]  1.58, 1.05 ulp
// Special values follow C: exp(-inf) = 0, exp(+inf) = +inf, log(0) = -inf,
// log(x < 0) = NaN, tanh(+-inf) = +-1; NaN in gives NaN out.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <llvm/IR/IRBuilder.h>

namespace gradc::codegen {

llvm::Value *emitExp(llvm::IRBuilderBase &b, llvm::Value *x, const llvm::Twine &name = "");
llvm::Value *emitLog(llvm::IRBuilderBase &b, llvm::Value *x, const llvm::Twine &name = "");
llvm::Value *emitTanh(llvm::IRBuilderBase &b, llvm::Value *x, const llvm::Twine &name = "");
/// 1 / (1 + exp(-x)), evaluated without overflow for large |x|.
llvm::Value *emitSigmoid(llvm::IRBuilderBase &b, llvm::Value *x, const llvm::Twine &name = "");
/// log(1 + x), accurate for tiny x too (Goldberg's correction of 1 + x),
/// for finite x > -1; used for log(1 + exp(-|x|)) in bce_logits.
llvm::Value *emitLog1p(llvm::IRBuilderBase &b, llvm::Value *x, const llvm::Twine &name = "");
/// The llvm.sqrt intrinsic: one instruction, correctly rounded.
llvm::Value *emitSqrt(llvm::IRBuilderBase &b, llvm::Value *x, const llvm::Twine &name = "");
/// x ^ exponent.  0, 1, 2, 0.5 and -1 are one f32 operation; other integer
/// and half-integer exponents up to 64 in magnitude (3, -1.5, ...) are
/// products of x and sqrt(x) in double, rounded once (so defined for
/// negative x when the exponent is an integer); any other exponent is
/// exp(exponent * log(x)) with the product carried in double.
llvm::Value *emitPow(llvm::IRBuilderBase &b, llvm::Value *x, double exponent,
                     const llvm::Twine &name = "");

} // namespace gradc::codegen
