//===- codegen/MatMul.cpp - Lowering of matrix products -------------------===//
//
// Two loop orders, chosen by which operand is contiguous along which index:
//   - B contiguous along j (B not transposed): i-k-j.  The innermost loop
//     is an axpy over a row of C and a row of B, both unit stride;
//   - otherwise (B transposed, or a column vector): i-j-k dot products,
//     unit stride in B and, unless A is transposed too, in A; the sum
//     vectorises thanks to `reassoc`.
//
//===----------------------------------------------------------------------===//
#include "codegen/MatMul.h"
#include "ir/Graph.h"

namespace gradc::codegen {

using namespace llvm;

MatMulGeometry matMulGeometry(const ir::Node &node) {
  const ir::Shape &a = node.operands[0]->type.shape, &b = node.operands[1]->type.shape;
  MatMulGeometry g;
  if (a.size() == 1) {
    g.m = 1;
    g.k = a[0];
    g.aRow = 0;
    g.aCol = 1;
  } else if (!node.attrs.transA) {
    g.m = a[0];
    g.k = a[1];
    g.aRow = a[1];
    g.aCol = 1;
  } else { // A is stored [k, m]
    g.m = a[1];
    g.k = a[0];
    g.aRow = 1;
    g.aCol = a[1];
  }
  if (b.size() == 1) {
    g.n = 1;
    g.bRow = 1;
    g.bCol = 0;
  } else if (!node.attrs.transB) {
    g.n = b[1];
    g.bRow = b[1];
    g.bCol = 1;
  } else { // B is stored [n, k]
    g.n = b[0];
    g.bRow = 1;
    g.bCol = b[1];
  }
  return g;
}

void emitMatMul(KernelBuilder &kb, const std::string &name, const MatMulGeometry &g, Value *c,
                Value *a, const std::string &aName, Value *b, const std::string &bName) {
  IRBuilderBase &ir = kb.b;
  if (g.bCol == 1 && g.n > 1) {
    kb.zero(c, g.m * g.n * 4);
    kb.loop(g.m, name + ".i", [&](Value *i) {
      Value *aRowAt = kb.offset(kb.index(0), i, g.aRow);
      Value *cRowAt = kb.offset(kb.index(0), i, g.n);
      kb.loop(g.k, name + ".k", [&](Value *l) {
        Value *aik = kb.load(a, kb.offset(aRowAt, l, g.aCol), aName + ".v");
        Value *bRowAt = kb.offset(kb.index(0), l, g.bRow);
        kb.loop(g.n, name + ".j", [&](Value *j) {
          Value *cAt = kb.offset(cRowAt, j, 1);
          Value *bkj = kb.load(b, kb.offset(bRowAt, j, 1), bName + ".v");
          Value *old = kb.load(c, cAt, name + ".v");
          kb.store(ir.CreateFAdd(old, ir.CreateFMul(aik, bkj)), c, cAt);
        });
      });
    });
    return;
  }
  kb.loop(g.m, name + ".i", [&](Value *i) {
    Value *aRowAt = kb.offset(kb.index(0), i, g.aRow);
    kb.loop(g.n, name + ".j", [&](Value *j) {
      Value *bColAt = kb.offset(kb.index(0), j, g.bCol);
      Value *sum =
          kb.loop(g.k, name + ".k", {kb.f32Const(0.0)}, [&](Value *l, ArrayRef<Value *> acc) {
            Value *ail = kb.load(a, kb.offset(aRowAt, l, g.aCol), aName + ".v");
            Value *blj = kb.load(b, kb.offset(bColAt, l, g.bRow), bName + ".v");
            return SmallVector<Value *, 2>{
                ir.CreateFAdd(acc[0], ir.CreateFMul(ail, blj), name + ".sum")};
          })[0];
      kb.store(sum, c, kb.offset(kb.offset(kb.index(0), i, g.n), j, 1));
    });
  });
}

} // namespace gradc::codegen
