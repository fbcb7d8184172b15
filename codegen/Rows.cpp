//===- codegen/Rows.cpp - Row-wise lowering of the classification ops -----===//
//
// Each row is a few passes over C contiguous elements: its maximum m, then
// sum exp(x - m) (softmax stores the exponentials on the way), then the
// result.  The passes are unit-stride loops the vectoriser widens; rows are
// independent.
//
//===----------------------------------------------------------------------===//
#include "codegen/Rows.h"
#include "codegen/MathApprox.h"

#include <llvm/IR/Intrinsics.h>

#include <limits>

namespace gradc::codegen {

using namespace llvm;

namespace {

/// Element index of the first element of row `row`.
Value *rowStart(KernelBuilder &kb, Value *row, int64_t classes) {
  return kb.offset(kb.index(0), row, classes);
}

/// The maximum of the row starting at `start` (NaN if the row has one).
Value *rowMax(KernelBuilder &kb, const std::string &name, const RowMatrix &x, Value *start) {
  Constant *lowest = kb.f32Const(-std::numeric_limits<double>::infinity());
  return kb.loop(x.classes, name + ".m", {lowest}, [&](Value *c, ArrayRef<Value *> acc) {
    Value *v = kb.load(x.base, kb.offset(start, c, 1), x.name + ".v");
    return SmallVector<Value *, 2>{
        kb.b.CreateBinaryIntrinsic(Intrinsic::maximum, acc[0], v, nullptr, name + ".max")};
  })[0];
}

/// sum over the row of exp(x - m); with `store`, exp(x - m) is also
/// written to `store` at the same positions.
Value *rowSumExp(KernelBuilder &kb, const std::string &name, const RowMatrix &x, Value *start,
                 Value *m, Value *store) {
  return kb.loop(x.classes, name + ".e", {kb.f32Const(0.0)}, [&](Value *c, ArrayRef<Value *> acc) {
    Value *at = kb.offset(start, c, 1);
    Value *shifted = kb.b.CreateFSub(kb.load(x.base, at, x.name + ".v"), m, name + ".shifted");
    Value *e = emitExp(kb.b, shifted, name + ".exp");
    if (store)
      kb.store(e, store, at);
    return SmallVector<Value *, 2>{kb.b.CreateFAdd(acc[0], e, name + ".sum")};
  })[0];
}

/// A label clamped into [0, classes), as an i64 offset within its row.
Value *clampedLabel(KernelBuilder &kb, Value *labels, const std::string &labelsName, Value *row,
                    int64_t classes) {
  IRBuilder<> &b = kb.b;
  Value *label = kb.loadI32(labels, row, labelsName + ".v");
  Value *low = b.CreateBinaryIntrinsic(Intrinsic::smax, label, b.getInt32(0));
  Value *clamped =
      b.CreateBinaryIntrinsic(Intrinsic::smin, low, b.getInt32(static_cast<int32_t>(classes - 1)));
  return b.CreateZExt(clamped, kb.i64, labelsName + ".class");
}

} // namespace

void emitSoftmaxRows(KernelBuilder &kb, const std::string &name, const RowMatrix &x, Value *out,
                     bool log) {
  IRBuilder<> &b = kb.b;
  kb.loop(x.rows, name + ".row", [&](Value *row) {
    Value *start = rowStart(kb, row, x.classes);
    Value *m = rowMax(kb, name, x, start);
    Value *sum = rowSumExp(kb, name, x, start, m, log ? nullptr : out);
    if (!log) {
      // exp(x - m) / sum, over the exponentials stored above.
      kb.loop(x.classes, name + ".d", [&](Value *c) {
        Value *at = kb.offset(start, c, 1);
        kb.store(b.CreateFDiv(kb.load(out, at, name + ".v"), sum, name + ".p"), out, at);
      });
      return;
    }
    // (x - m) - log(sum): the shift is exact for the largest elements.
    Value *logSum = emitLog(b, sum, name + ".logsum");
    kb.loop(x.classes, name + ".d", [&](Value *c) {
      Value *at = kb.offset(start, c, 1);
      Value *shifted = b.CreateFSub(kb.load(x.base, at, x.name + ".v"), m);
      kb.store(b.CreateFSub(shifted, logSum, name + ".v"), out, at);
    });
  });
}

void emitCrossEntropy(KernelBuilder &kb, const std::string &name, const RowMatrix &logits,
                      Value *labels, const std::string &labelsName, Value *out) {
  IRBuilder<> &b = kb.b;
  Value *total = kb.loop(
      logits.rows, name + ".row", {kb.f32Const(0.0)}, [&](Value *row, ArrayRef<Value *> acc) {
        Value *start = rowStart(kb, row, logits.classes);
        Value *m = rowMax(kb, name, logits, start);
        Value *logSum =
            emitLog(b, rowSumExp(kb, name, logits, start, m, nullptr), name + ".logsum");
        Value *at = b.CreateAdd(start, clampedLabel(kb, labels, labelsName, row, logits.classes),
                                "", true, true);
        Value *picked = kb.load(logits.base, at, name + ".picked");
        // logsumexp - x[label] = (m - x[label]) + log(sum): both terms are
        // small when the label's logit is near the maximum.
        Value *term = b.CreateFAdd(b.CreateFSub(m, picked), logSum, name + ".nll");
        return SmallVector<Value *, 2>{b.CreateFAdd(acc[0], term, name + ".total")};
      })[0];
  Value *mean = b.CreateFDiv(total, kb.f32Const(static_cast<double>(logits.rows)), name + ".v");
  kb.store(mean, out, kb.index(0));
}

void emitOneHot(KernelBuilder &kb, const std::string &name, Value *labels,
                const std::string &labelsName, int64_t rows, int64_t classes, Value *out) {
  kb.zero(out, rows * classes * 4);
  // A scatter: widened, each lane's label is loaded, clamped and stored
  // on its own anyway (the fashion step's largest vector loop, 85 lines).
  kb.loop(
      rows, name + ".row",
      [&](Value *row) {
        Value *at =
            kb.b.CreateAdd(rowStart(kb, row, classes),
                           clampedLabel(kb, labels, labelsName, row, classes), "", true, true);
        kb.store(kb.f32Const(1.0), out, at);
      },
      /*vectorize=*/false);
}

} // namespace gradc::codegen
