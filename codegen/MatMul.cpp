//===- codegen/MatMul.cpp - Lowering of matrix products -------------------===//
//
// A register-tiled product in the manner of BLIS, specialised to static
// shapes and emitted as generic <lanes x float> IR that LLVM legalises for
// the target (lanes and register count come from the TargetMachine):
//
//   for each panel of nr = vectors * lanes columns of C   (parallel tasks are
//                                                           panels or tiles of rows)
//     for each block of kc values of l
//       pack B(l0 .. l0+kc, j0 .. j0+nr) into a [kc][nr] panel  (L1-sized, on the stack)
//       for each tile of mr rows
//         acc[mr][vectors] (+)= A(i, l) broadcast * panel row l, for l in order
//
// Packing makes the inner loop the same for every transpose: B transposed
// is packed with in-register lanes x lanes transposes.  A is read in place
// (one broadcast per row and l), whatever its strides, except a big
// transposed A split by rows, which each task first copies into tiles of
// its rows (Plan::packA).
//
// Every element of C is the chain acc = fmuladd(A(i, l), B(l, j), acc) over
// l = 0, 1, ..., k-1 from acc = 0, whatever tile, panel or task computes
// it (a k block stores acc to C and reloads it exactly).  So the result
// does not depend on the tiling, nor on how tasks are split between
// threads: work is partitioned over OUTPUT elements only and a reduction
// is never split, so a kernel gives bit-identical results for ANY thread
// count (and any pool: NULL runs the same tasks serially).
//
// Remainders are static: a last tile of m % mr rows, a last k block of
// k % kc, and a last panel narrower than nr, whose last vector is masked.
//
// A product with an epilogue (MatMulEpilogue) hands each finished tile to
// it through a small buffer on the stack, in L1, instead of storing it to
// C: what follows the product (bias, activation, dropout, the optimizer's
// update of a weight from its gradient) runs on the core that computed
// the tile, in the product's own tasks, and C itself is written only as
// partial sums between k blocks.
//
//===----------------------------------------------------------------------===//
#include "codegen/MatMul.h"
#include "ir/Graph.h"

#include <llvm/Analysis/TargetTransformInfo.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include <algorithm>
#include <cstring>

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

namespace {

constexpr const char *kPrefix = "gradc.matmul.";
constexpr const char *kGeometryKind = "gradc.matmul";

/// Products of at least this many multiply-adds run on the thread pool;
/// below, the pool's hand-off (a few microseconds) would cost more than
/// the second core saves.
constexpr int64_t kParallelMacs = int64_t(1) << 17;
/// ... and a depth k of at least this, unless the product has an epilogue:
/// a shallow product is mostly the store of C, which a second core does not
/// make faster.  An epilogue is mostly its reads of tensors from the forward
/// pass, gone from L2 by then, which two cores do fetch faster, and a split
/// by rows walks them row by row where the serial order went down each
/// panel of columns.  The fashion model's [128, 10] x [10, 256] product,
/// whose epilogue takes three maps: 35-66 us a step with the serial code
/// around it, against 47-85 serial (bench/regions.sh, six alternating runs
/// each; epoch times had not told the two apart).
constexpr int64_t kMinParallelDepth = 16;
/// Rows are split between threads when there are at least this many tiles
/// of rows (enough to balance a few threads); otherwise columns are.
constexpr int64_t kMinRowTasks = 8;
/// ... and B has at most this many bytes.  Split by rows, every thread packs
/// all of B, reading each row of a panel from another page; split by
/// columns, each packs its own panels, and reads all of A, which it would
/// read anyway, once per panel.  The L model's [256, 1024] x [1024, 1024]
/// dL_dh.1 (B a 4 MB weight): 19.6-20.5% of the step by columns against
/// 20.7-21.9% by rows (perf annotate: the copy of B was 15% of it), three
/// alternating bench/regions.sh runs each.  Its weight gradients (B 0.8
/// and 1 MB, A transposed, which only a split by rows packs) took 15-23%
/// longer by columns.
constexpr int64_t kMaxRowSplitBBytes = int64_t(2) << 20;
/// Bytes of a packed panel of B: it stays in L1 while rows of A stream by.
constexpr int64_t kPanelBytes = 32 * 1024;
/// ... with 16-lane vectors, twice that: a 6 x 64 tile then runs 256 steps
/// of l (6,144 multiply-adds) per k block instead of 128, and loads and
/// stores its 24 vectors of C, and starts its loop, half as often; the
/// panel's loads come partly from L2, which a step of 24 multiply-adds has
/// time for.  On Zen 4 (AVX-512, 32 KB L1) the L model's products took
/// 11.47-11.58 ms a step against 11.72-11.94 (three alternating
/// bench/regions.sh runs each; all five big products 1-6% faster, the
/// weight gradients, k = 256, now in one block), M's 1% less; 16 and 24
/// KB were slower, 128 KB no better.
constexpr int64_t kWidePanelBytes = 64 * 1024;

/// A transposed A of at least this many bytes is packed per task (see
/// Plan::packA) ...
constexpr int64_t kMinPackedABytes = 256 * 1024;
/// ... and of at most this many: the packed copy is on the stack.
constexpr int64_t kMaxPackedABytes = 1024 * 1024;
/// The copy goes through this many rows of the stored A (values of l) at a
/// time, tile by tile, so that each tile's block of the copy gets 16 x mr
/// floats in a row where a row at a time gave it mr floats, 16 bytes on a
/// page of its own (the blocks are k mr floats apart: 4 KB in the L
/// model).  The copy was 6% of the samples of L's second weight gradient
/// and is 2.7% with blocks of 16 (perf annotate); the two weight gradients'
/// share of the step went from 29.7% to 28.8% (one profile each).
constexpr int64_t kPackABlockDepth = 16;

struct Plan {
  MatMulGeometry g;
  unsigned lanes = 4;
  int64_t mr = 1, nv = 1, nr = 4, kc = 1;
  bool columnTasks = true, parallel = false;
  int64_t tasks = 1;
  /// A(i, l) for the task's rows, copied once into tiles of [k][mr]
  /// floats, which every panel then reads in order.  Read in place, a
  /// transposed A (A(i, l) at a[l * m + i]: a weight's gradient dL_dz^T h)
  /// gives a tile's broadcasts one cache line and one page per step of l,
  /// k pages per tile and panel: the L model's two weight gradients ran at
  /// 67-77 GFLOP/s on one thread where the same products with A untransposed
  /// ran at 77-93.
  bool packA = false;
};

int64_t ceilDiv(int64_t x, int64_t y) { return (x + y - 1) / y; }

Plan makePlan(const MatMulGeometry &g, unsigned lanes, unsigned registers, bool hasEpilogue) {
  Plan p;
  p.g = g;
  p.lanes = lanes;
  int64_t vectorColumns = ceilDiv(g.n, lanes);
  // Accumulators (mr x nv), the nv vectors of a panel row and a broadcast
  // must fit in the vector registers.  Panels are the tasks of a column
  // split: the widest panel that still splits C evenly between two threads.
  // With 16 registers (AVX2) that is 4 x 3: 12 multiply-adds for 7 loads
  // (6 x 2 needs 8) and four rows of A in flight instead of six; on Zen 3
  // the L model's step ran 5% faster on two threads than with 6 x 2
  // (six interleaved runs each), M and S unchanged.
  int64_t maxVectors = std::min<int64_t>(registers >= 32 ? 4 : 3, vectorColumns);
  p.nv = maxVectors;
  for (int64_t nv = maxVectors; nv >= 1; --nv) {
    int64_t panels = ceilDiv(vectorColumns, nv);
    p.nv = nv;
    if (panels < 2 || ceilDiv(panels, 2) * nv * 2 <= vectorColumns * 11 / 10)
      break;
  }
  p.mr = std::clamp<int64_t>((registers - 1 - p.nv) / p.nv, 1, registers >= 32 ? 12 : 6);
  if (p.nv >= 3)
    p.mr = std::min<int64_t>(p.mr, 6);
  p.mr = std::min(p.mr, g.m);
  p.nr = p.nv * lanes;
  // k blocks of equal depth (so there is rarely a remainder block), each
  // panel within kPanelBytes (kWidePanelBytes).
  const int64_t panelBytes = lanes >= 16 ? kWidePanelBytes : kPanelBytes;
  int64_t maxDepth = std::max<int64_t>(lanes, panelBytes / (p.nr * 4));
  p.kc = ceilDiv(g.k, ceilDiv(g.k, maxDepth));
  p.parallel = g.m * g.n * g.k >= kParallelMacs && (g.k >= kMinParallelDepth || hasEpilogue);
  // Each task packs the panels of B it needs.  Rows are split when there
  // are enough of them and B is packed by plain copies: weight-shaped
  // gradients are then split the same way as the elementwise ops of the
  // update (by rows), so each core finds its part in its own cache.  A
  // transposed B is costlier to pack, and a big one costs too much to pack
  // on every core, so C is split by columns, and each core packs only its
  // own panels.
  int64_t panels = ceilDiv(g.n, p.nr);
  bool splitRows =
      ceilDiv(g.m, p.mr) >= kMinRowTasks && g.bCol == 1 && g.k * g.n * 4 <= kMaxRowSplitBBytes;
  p.columnTasks = panels >= 2 && !splitRows;
  p.tasks = p.columnTasks ? panels : ceilDiv(g.m, p.mr);
  // Only where the copy is read by several panels (a split by rows, whose
  // tasks run over every panel) and A is too big to stay in L2 while they
  // do.
  const int64_t packedBytes = ceilDiv(g.m, p.mr) * p.mr * g.k * 4;
  p.packA = !p.columnTasks && panels >= 2 && g.aRow == 1 && g.aCol != 1 &&
            packedBytes >= kMinPackedABytes && packedBytes <= kMaxPackedABytes;
  return p;
}

/// Emits the body of one product over a range of tasks.
class TileEmitter {
public:
  TileEmitter(const Plan &plan, Function *fn, const std::string &name, Function *epilogue,
              ArrayRef<unsigned> capturesC)
      : p_(plan), g_(plan.g), kb_(fn), b_(kb_.b), name_(name), epilogue_(epilogue),
        capturesC_(capturesC.begin(), capturesC.end()) {
    // The chain of fmuladds is the order of the sum: nothing may reassociate it.
    b_.setFastMathFlags(FastMathFlags());
    vec_ = FixedVectorType::get(kb_.f32, p_.lanes);
  }

  /// Starts the function's entry block, where the caller computes emit()'s
  /// operands.
  IRBuilder<> &entry() {
    b_.SetInsertPoint(BasicBlock::Create(kb_.context, "entry", kb_.function));
    return b_;
  }

  /// Emits, after entry(), the product over the tasks [begin, end): C, A
  /// and B, and the epilogue's captures.
  void emit(Value *c, Value *a, Value *b, Value *begin, Value *end, ArrayRef<Value *> captures) {
    c_ = c;
    a_ = a;
    bm_ = b;
    c_->setName("c");
    a_->setName("a");
    bm_->setName("b");
    begin->setName("begin");
    end->setName("end");
    AllocaInst *buffer =
        b_.CreateAlloca(ArrayType::get(kb_.f32, p_.kc * p_.nr), nullptr, name_ + ".panel");
    buffer->setAlignment(Align(64));
    panel_ = buffer;
    std::vector<Value *> bases = {c_, a_, bm_, panel_};
    if (p_.packA) {
      AllocaInst *packed = b_.CreateAlloca(
          ArrayType::get(kb_.f32, ceilDiv(g_.m, p_.mr) * p_.mr * g_.k), nullptr, name_ + ".a");
      packed->setAlignment(Align(64));
      packedA_ = packed;
      bases.push_back(packedA_);
      // A megabyte of stack at once: probe it page by page, so that it
      // can never step over a guard page.
      kb_.function->addFnAttr("probe-stack", "inline-asm");
    }
    if (epilogue_) {
      AllocaInst *tile =
          b_.CreateAlloca(ArrayType::get(kb_.f32, p_.mr * p_.nr), nullptr, name_ + ".tile");
      tile->setAlignment(Align(64));
      tile_ = tile;
      bases.push_back(tile_);
      // A capture that is C goes to the epilogue as c, so that every access
      // to C's bytes is based on one pointer.
      for (unsigned i = 0; i < captures.size(); ++i)
        captures_.push_back(is_contained(capturesC_, i) ? c_ : captures[i]);
    }
    kb_.beginNode(bases, name_);

    Value *mr = kb_.index(p_.mr), *nr = kb_.index(p_.nr);
    if (p_.columnTasks) {
      rowBegin_ = kb_.index(0);
      rowEnd_ = kb_.index(g_.m);
      colBegin_ = b_.CreateMul(begin, nr, "col.begin");
      colEnd_ = minimum(b_.CreateMul(end, nr), kb_.index(g_.n), "col.end");
    } else {
      rowBegin_ = b_.CreateMul(begin, mr, "row.begin");
      rowEnd_ = minimum(b_.CreateMul(end, mr), kb_.index(g_.m), "row.end");
      colBegin_ = kb_.index(0);
      colEnd_ = kb_.index(g_.n);
    }
    if (p_.packA)
      packA();
    // Full panels, then the last one when n is not a multiple of nr.
    // (No loop when n < nr: it would never run, and until LLVM removed it,
    // it was half of such a product's code, which the partition weighs.)
    int64_t fullPanels = g_.n / p_.nr, edge = g_.n % p_.nr;
    if (fullPanels > 0) {
      Value *fullEnd = minimum(colEnd_, kb_.index(fullPanels * p_.nr), "col.full");
      kb_.loopRange(colBegin_, fullEnd, p_.nr, name_ + ".j",
                    [&](Value *j0) { panel(p_.nv, j0, nullptr); });
    }
    if (edge) {
      Value *j0 = kb_.index(fullPanels * p_.nr);
      kb_.ifThen(b_.CreateICmpSLT(j0, colEnd_), name_ + ".edge", [&] {
        int64_t q = ceilDiv(edge, p_.lanes), inLast = edge - (q - 1) * p_.lanes;
        panel(q, j0, inLast == p_.lanes ? nullptr : laneMask(kb_.index(inLast)), edge);
      });
    }
    b_.CreateRetVoid();
  }

private:
  BasicBlock *block(const std::string &suffix) {
    return BasicBlock::Create(kb_.context, name_ + "." + suffix, kb_.function);
  }

  Value *minimum(Value *x, Value *y, const Twine &name = "") {
    return b_.CreateSelect(b_.CreateICmpSLT(x, y), x, y, name);
  }

  /// <lanes x i1>: lane t is on when t < count.
  Value *laneMask(Value *count) {
    SmallVector<Constant *, 16> ids;
    for (unsigned t = 0; t < p_.lanes; ++t)
      ids.push_back(b_.getInt64(t));
    Value *splat = b_.CreateVectorSplat(p_.lanes, count);
    return b_.CreateICmpULT(ConstantVector::get(ids), splat, name_ + ".mask");
  }

  Value *gep(Value *base, Value *index) { return b_.CreateInBoundsGEP(kb_.f32, base, index); }

  Value *loadVector(Value *base, Value *index, Value *mask, Align align = Align(4)) {
    Instruction *load;
    if (mask)
      load = b_.CreateMaskedLoad(vec_, gep(base, index), align, mask, kb_.f32Const(0.0, vec_));
    else
      load = b_.CreateAlignedLoad(vec_, gep(base, index), align);
    kb_.tagAccess(load, base);
    return load;
  }

  void storeVector(Value *value, Value *base, Value *index, Value *mask, Align align = Align(4)) {
    Instruction *store;
    if (mask)
      store = b_.CreateMaskedStore(value, gep(base, index), align, mask);
    else
      store = b_.CreateAlignedStore(value, gep(base, index), align);
    kb_.tagAccess(store, base);
  }

  /// Columns [j0, j0 + width) of C, width <= q lanes (all of them when
  /// 0), for the task's rows; `lastMask` (null: all lanes) says which lanes
  /// of the last vector are real.
  void panel(int64_t q, Value *j0, Value *lastMask, int64_t width = 0) {
    if (width == 0)
      width = q * p_.lanes;
    int64_t blocks = ceilDiv(g_.k, p_.kc), last = g_.k - (blocks - 1) * p_.kc;
    int64_t fullBlocks = last == p_.kc ? blocks : blocks - 1;
    if (fullBlocks == 1) {
      kBlock(q, j0, width, lastMask, kb_.index(0), p_.kc, b_.getTrue(), b_.getInt1(last == p_.kc));
    } else if (fullBlocks > 1) {
      kb_.loop(fullBlocks, name_ + ".kb", [&](Value *blockIndex) {
        Value *first = b_.CreateICmpEQ(blockIndex, kb_.index(0));
        Value *final =
            last == p_.kc ? b_.CreateICmpEQ(blockIndex, kb_.index(fullBlocks - 1)) : b_.getFalse();
        kBlock(q, j0, width, lastMask, b_.CreateMul(blockIndex, kb_.index(p_.kc)), p_.kc, first,
               final);
      });
    }
    if (last != p_.kc)
      kBlock(q, j0, width, lastMask, kb_.index(fullBlocks * p_.kc), last,
             fullBlocks == 0 ? b_.getTrue() : b_.getFalse(), b_.getTrue());
  }

  /// `first` and `final` say whether this k block is the first one (the
  /// sums start from zero) and the last one (they are complete).
  void kBlock(int64_t q, Value *j0, int64_t width, Value *lastMask, Value *l0, int64_t depth,
              Value *first, Value *final) {
    pack(q, j0, width, lastMask, l0, depth);
    Value *rows = b_.CreateSub(rowEnd_, rowBegin_);
    Value *tiles = b_.CreateUDiv(rows, kb_.index(p_.mr), name_ + ".tiles");
    kb_.loopRange(kb_.index(0), tiles, 1, name_ + ".i", [&](Value *tile) {
      tileProduct(p_.mr, q, width, kb_.offset(rowBegin_, tile, p_.mr), j0, lastMask, l0, depth,
                  first, final);
    });
    if (int64_t rest = g_.m % p_.mr) {
      // Only the task that ends at row m has this remainder.
      Value *i0 = kb_.offset(rowBegin_, tiles, p_.mr);
      kb_.ifThen(b_.CreateICmpSLT(i0, rowEnd_), name_ + ".rest",
                 [&] { tileProduct(rest, q, width, i0, j0, lastMask, l0, depth, first, final); });
    }
  }

  /// Copies A(i, l) for the task's rows i into packedA_, tile t (rows
  /// rowBegin + t mr ..) at t k mr, element (l, r) at l mr + r.  Rows of
  /// the stored matrix (A(i, l) at a[i + l * aCol]) are read in blocks of
  /// kPackABlockDepth, tile by tile; a last tile of m % mr rows leaves its
  /// other lanes unset, and unread.
  void packA() {
    const int64_t mr = p_.mr;
    Value *rows = b_.CreateSub(rowEnd_, rowBegin_);
    Value *tiles = b_.CreateUDiv(rows, kb_.index(mr), name_ + ".a.tiles");
    auto *tileType = FixedVectorType::get(kb_.f32, unsigned(mr));
    // Tile `tile`'s rows at depth l.
    auto copyTile = [&](Value *l, Value *tile) {
      Value *from = kb_.offset(rowBegin_, l, g_.aCol);
      auto *x = b_.CreateAlignedLoad(tileType, gep(a_, kb_.offset(from, tile, mr)), Align(4));
      kb_.tagAccess(x, a_);
      Value *to = kb_.offset(kb_.offset(kb_.index(0), tile, g_.k * mr), l, mr);
      kb_.tagAccess(b_.CreateAlignedStore(x, gep(packedA_, to), Align(4)), packedA_);
    };
    // The rows of the last tile of m % mr rows at depth l.
    const int64_t rest = g_.m % mr;
    auto copyRest = [&](Value *l) {
      // Only the task that ends at row m has this remainder.
      Value *from = kb_.offset(rowBegin_, l, g_.aCol);
      Value *i0 = kb_.offset(rowBegin_, tiles, mr);
      kb_.ifThen(b_.CreateICmpSLT(i0, rowEnd_), name_ + ".a.rest", [&] {
        Value *to = kb_.offset(kb_.offset(kb_.index(0), tiles, g_.k * mr), l, mr);
        for (int64_t r = 0; r < rest; ++r) {
          auto *x = b_.CreateAlignedLoad(
              kb_.f32, gep(a_, kb_.offset(kb_.offset(from, tiles, mr), kb_.index(r), 1)), Align(4));
          kb_.tagAccess(x, a_);
          kb_.tagAccess(
              b_.CreateAlignedStore(x, gep(packedA_, kb_.offset(to, kb_.index(r), 1)), Align(4)),
              packedA_);
        }
      });
    };
    // Depths l0 .. l0 + depth, tile by tile.
    auto copyBlock = [&](Value *l0, int64_t depth) {
      kb_.loopRange(kb_.index(0), tiles, 1, name_ + ".a.t", [&](Value *tile) {
        kb_.loop(depth, name_ + ".a.l", [&](Value *l) { copyTile(b_.CreateAdd(l0, l), tile); });
      });
      if (rest != 0)
        kb_.loop(depth, name_ + ".a.rl", [&](Value *l) { copyRest(b_.CreateAdd(l0, l)); });
    };
    const int64_t blocks = g_.k / kPackABlockDepth, last = g_.k % kPackABlockDepth;
    if (blocks > 0)
      kb_.loop(blocks, name_ + ".a.lb", [&](Value *lb) {
        copyBlock(kb_.offset(kb_.index(0), lb, kPackABlockDepth), kPackABlockDepth);
      });
    if (last > 0)
      copyBlock(kb_.index(blocks * kPackABlockDepth), last);
  }

  /// Copies B(l0 .. l0+depth, j0 .. j0 + q lanes) into the panel, row l at
  /// l * nr; lanes past the edge of C get zeros.
  void pack(int64_t q, Value *j0, int64_t width, Value *lastMask, Value *l0, int64_t depth) {
    const int64_t nr = p_.nr, lanes = p_.lanes;
    Align panelAlign(std::min<uint64_t>(64, lanes * 4));
    if (g_.bCol == 1) {
      // Rows of B are contiguous along j: vector copies.
      kb_.loop(depth, name_ + ".pack.l", [&](Value *l) {
        Value *from = kb_.offset(kb_.offset(j0, l0, g_.bRow), l, g_.bRow);
        Value *to = kb_.offset(kb_.index(0), l, nr);
        for (int64_t v = 0; v < q; ++v) {
          Value *mask = v == q - 1 ? lastMask : nullptr;
          Value *row = loadVector(bm_, kb_.offset(from, kb_.index(v), lanes), mask);
          storeVector(row, panel_, kb_.offset(to, kb_.index(v), lanes), nullptr, panelAlign);
        }
      });
      return;
    }
    int64_t transposed = 0; // rows l of the panel filled by transposes
    if (g_.bRow == 1 && !lastMask && lanes % 4 == 0) {
      // B transposed (contiguous along l): lanes x lanes blocks go through
      // registers, a vector along l in, a vector along j out (transpose
      // works in blocks of four lanes; a target gives 4, 8 or 16).
      transposed = depth / lanes * lanes;
      if (transposed > 0)
        kb_.loop(q, name_ + ".pack.jb", [&](Value *jb) {
          Value *jBase = kb_.offset(j0, jb, lanes);
          kb_.loop(depth / lanes, name_ + ".pack.lb", [&](Value *lb) {
            Value *lBase = kb_.offset(l0, lb, lanes);
            SmallVector<Value *, 16> rows;
            for (int64_t t = 0; t < lanes; ++t) {
              Value *j = b_.CreateAdd(jBase, kb_.index(t));
              rows.push_back(loadVector(bm_, kb_.offset(lBase, j, g_.bCol), nullptr));
            }
            transpose(rows);
            Value *at = kb_.offset(kb_.offset(kb_.index(0), jb, lanes), lb, lanes * nr);
            for (int64_t s = 0; s < lanes; ++s)
              storeVector(rows[s], panel_, kb_.offset(at, kb_.index(s), nr), nullptr, panelAlign);
          });
        });
    }
    if (transposed == depth)
      return;
    // Anything else, element by element; lanes past the edge read a valid
    // element (clamped index) and store zero.
    kb_.loop(q * lanes, name_ + ".pack.j", [&](Value *jj) {
      Value *inside = b_.CreateICmpULT(jj, kb_.index(width));
      Value *jClamped = minimum(jj, kb_.index(width - 1));
      Value *column = kb_.offset(kb_.index(0), b_.CreateAdd(j0, jClamped), g_.bCol);
      kb_.loop(depth - transposed, name_ + ".pack.l", [&](Value *lr) {
        Value *l = b_.CreateAdd(lr, kb_.index(transposed));
        Value *x = kb_.load(bm_, kb_.offset(column, b_.CreateAdd(l0, l), g_.bRow), "b.v");
        x = b_.CreateSelect(inside, x, kb_.f32Const(0.0));
        kb_.store(x, panel_, b_.CreateAdd(kb_.offset(kb_.index(0), l, nr), jj));
      });
    });
  }

  /// In-register transpose of lanes vectors of lanes elements (lanes a
  /// multiple of 4), as x86 programmers write it by hand, in blocks of four
  /// lanes (128 bits): each group of four rows becomes, in every block k,
  /// the 4 x 4 transpose of its columns 4k .. 4k+3 (interleaves of floats,
  /// then of pairs: unpcklps/unpckhps, unpcklpd/unpckhpd), and then whole
  /// blocks move between the groups (vinsertf128, vshuff32x4): every
  /// shuffle one instruction.  The log2(lanes) halving rounds used until
  /// session 18 (swapping the off-diagonal h x h blocks of every 2h x 2h
  /// block) ended in masks such as (x0, y0, x2, y2) that are not (AVX2: 91
  /// shuffles in the fashion step's code, now 75).
  ///
  /// Between the two stages an arithmetic fence (no instruction: it only
  /// keeps fast-math reassociation from crossing it) cuts the network in
  /// two for the code generator's DAG combiner, whose demanded-elements
  /// walks otherwise go down every path of it, each value having two
  /// users: one 16-lane transpose alone cost llc 80 M instructions, 27 M
  /// with the fences, for the same 64 shuffles.  The fashion step compiled
  /// for Zen 4 went from 747 to 636 M instructions (llc 691 -> 581 M, its
  /// parts 402 and 274 -> 292 and 274 M; bench/compile_cost.sh --per-part);
  /// for Zen 3, llc 420 -> 404 M.  In the JIT (eight alternating runs of
  /// `gradc train --time-report`): the step's machine code 117 -> 104 ms
  /// of CPU, its wall time before training 65.6 -> 62.6 ms, the kernels
  /// compiled in the background 133 -> 105 ms.  The step ran as fast.
  void transpose(SmallVectorImpl<Value *> &rows) {
    const int lanes = static_cast<int>(p_.lanes), blocks = lanes / 4;
    // mask(pick) for lane t: pick(block k, position p in it) -> lane of x
    // (< lanes) or of y.
    auto shuffle = [&](Value *x, Value *y, auto pick) {
      SmallVector<int, 16> mask;
      for (int t = 0; t < lanes; ++t)
        mask.push_back(pick(t / 4, t % 4));
      return b_.CreateShuffleVector(x, y, mask);
    };
    // columns[g][c]: block k holds rows 4g .. 4g+3 of column 4k + c.
    SmallVector<SmallVector<Value *, 4>, 4> columns(blocks);
    for (int g = 0; g < blocks; ++g) {
      Value *r0 = rows[4 * g], *r1 = rows[4 * g + 1], *r2 = rows[4 * g + 2], *r3 = rows[4 * g + 3];
      // (x[4k + 2h], y[4k + 2h], x[4k + 2h + 1], y[4k + 2h + 1]) in block k.
      auto floats = [&](Value *x, Value *y, int h) {
        return shuffle(x, y, [&](int k, int p) { return (p % 2) * lanes + 4 * k + 2 * h + p / 2; });
      };
      // (x[4k + 2h], x[4k + 2h + 1], y[4k + 2h], y[4k + 2h + 1]) in block k.
      auto pairs = [&](Value *x, Value *y, int h) {
        return shuffle(x, y, [&](int k, int p) { return (p / 2) * lanes + 4 * k + 2 * h + p % 2; });
      };
      Value *t0 = floats(r0, r1, 0), *t1 = floats(r0, r1, 1);
      Value *t2 = floats(r2, r3, 0), *t3 = floats(r2, r3, 1);
      columns[g] = {pairs(t0, t2, 0), pairs(t0, t2, 1), pairs(t1, t3, 0), pairs(t1, t3, 1)};
      for (Value *&column : columns[g])
        column = b_.CreateArithmeticFence(column, vec_);
    }
    // Then, for each c, block k of output row 4k + c is block k of
    // columns[g][c] for every g: a transpose of blocks between the groups.
    for (int c = 0; c < 4; ++c) {
      SmallVector<Value *, 4> groups;
      for (int g = 0; g < blocks; ++g)
        groups.push_back(columns[g][c]);
      SmallVector<Value *, 4> out = transposeBlocks(groups, shuffle);
      for (int k = 0; k < blocks; ++k)
        rows[4 * k + c] = out[k];
    }
  }

  /// vs[g] has blocks of four lanes; returns out with block g of out[k]
  /// equal to block k of vs[g].  Each round takes every other block: (even
  /// blocks of x, even blocks of y) and (odd of x, odd of y).
  template <typename Shuffle>
  SmallVector<Value *, 4> transposeBlocks(ArrayRef<Value *> vs, Shuffle &shuffle) {
    const int n = static_cast<int>(vs.size()), lanes = static_cast<int>(p_.lanes),
              blocks = lanes / 4;
    if (n == 1)
      return {vs[0]};
    SmallVector<Value *, 4> evens, odds;
    for (int i = 0; i < n; i += 2)
      for (int parity = 0; parity < 2; ++parity) {
        Value *picked = shuffle(vs[i], vs[i + 1], [&](int k, int p) {
          // The first half of the blocks from x, the second from y.
          int half = blocks / 2, from = k < half ? 0 : 1;
          return from * lanes + 4 * (2 * (k - from * half) + parity) + p;
        });
        (parity == 0 ? evens : odds).push_back(picked);
      }
    SmallVector<Value *, 4> e = transposeBlocks(evens, shuffle), o = transposeBlocks(odds, shuffle);
    SmallVector<Value *, 4> out;
    for (int k = 0; k < n; ++k)
      out.push_back(k % 2 == 0 ? e[k / 2] : o[k / 2]);
    return out;
  }

  /// C(i0 .. i0+rows, j0 .. j0 + q lanes) (+)= A(.., l0 .. l0+depth) panel,
  /// of which the first `width` columns are C's.
  void tileProduct(int64_t rows, int64_t q, int64_t width, Value *i0, Value *j0, Value *lastMask,
                   Value *l0, int64_t depth, Value *first, Value *final) {
    const int64_t lanes = p_.lanes, nr = p_.nr;
    Align panelAlign(std::min<uint64_t>(64, lanes * 4));
    // Where A(i0 + r, l0 + u) is: r * aRowStep + u * aColStep from aAt.
    Value *aData = p_.packA ? packedA_ : a_;
    const int64_t aRowStep = p_.packA ? 1 : g_.aRow, aColStep = p_.packA ? p_.mr : g_.aCol;
    auto cAt = [&](int64_t r, int64_t v) {
      Value *row = b_.CreateAdd(i0, kb_.index(r));
      return kb_.offset(kb_.offset(j0, row, g_.n), kb_.index(v), lanes);
    };
    auto maskOf = [&](int64_t v) { return v == q - 1 ? lastMask : nullptr; };
    Constant *zero = kb_.f32Const(0.0, vec_);
    SmallVector<Value *, 32> init;
    auto *constFirst = dyn_cast<ConstantInt>(first);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t v = 0; v < q; ++v) {
        if (constFirst && constFirst->isOne()) {
          init.push_back(zero);
          continue;
        }
        Value *old = loadVector(c_, cAt(r, v), maskOf(v));
        init.push_back(constFirst ? old : b_.CreateSelect(first, zero, old));
      }
    // One step of l: acc[r][v] = fmuladd(A(i0 + r, l0 + l), panel row l,
    // acc), its loads at constant offsets from `aAt` (A(i0, l0 + l - u))
    // and `panelAt` (panel row l - u).  The loop below bumps those two
    // pointers itself, the form LLVM's loop strength reduction would give
    // it: then every address is a register plus a constant, whether or not
    // that pass runs (the JIT leaves it off, Pipeline.cpp).
    auto step = [&](Value *aAt, Value *panelAt, int64_t u, SmallVectorImpl<Value *> &acc) {
      SmallVector<Value *, 4> panelRow;
      for (int64_t v = 0; v < q; ++v) {
        auto *row =
            b_.CreateAlignedLoad(vec_, gep(panelAt, kb_.index(u * nr + v * lanes)), panelAlign);
        kb_.tagAccess(row, panel_);
        panelRow.push_back(row);
      }
      for (int64_t r = 0; r < rows; ++r) {
        auto *x = b_.CreateAlignedLoad(kb_.f32, gep(aAt, kb_.index(u * aColStep + r * aRowStep)),
                                       Align(4), "a.v");
        kb_.tagAccess(x, aData);
        Value *splat = b_.CreateVectorSplat(lanes, x);
        for (int64_t v = 0; v < q; ++v)
          acc[r * q + v] =
              b_.CreateIntrinsic(Intrinsic::fmuladd, {vec_}, {splat, panelRow[v], acc[r * q + v]});
      }
    };
    // Two steps per iteration halve the loop's own instructions (counter,
    // compare, branch, pointer bumps) against the multiply-adds; the
    // chain of each element is the same.  On Zen 3 (AVX2, 6 x 2 tiles):
    // L +8% on one thread, +6-16% on two; four steps were no better.
    constexpr int64_t unroll = 2;
    Value *aAt = p_.packA ? gep(packedA_, kb_.offset(kb_.offset(kb_.index(0), l0, p_.mr),
                                                     b_.CreateSub(i0, rowBegin_), g_.k))
                          : gep(a_, kb_.offset(kb_.offset(kb_.index(0), l0, g_.aCol), i0, g_.aRow));
    Value *panelAt = panel_;
    SmallVector<Value *, 2> result(init.begin(), init.end());
    const int64_t trips = depth / unroll;
    auto stepPair = [&](SmallVectorImpl<Value *> &acc) {
      for (int64_t u = 0; u < unroll; ++u)
        step(aAt, panelAt, u, acc);
      aAt = gep(aAt, kb_.index(unroll * aColStep));
      panelAt = gep(panelAt, kb_.index(unroll * nr));
    };
    if (trips == 1) {
      stepPair(result);
    } else if (trips > 1) {
      // The panel pointer is the loop's only counter: the loop ends when it
      // reaches the row after the last pair of steps.
      Value *panelEnd = gep(panel_, kb_.index(trips * unroll * nr));
      SmallVector<Value *, 2> carried(result.begin(), result.end());
      carried.append({aAt, panelAt});
      carried = kb_.loopWhile(
          name_ + ".l", carried,
          [&](Value *, ArrayRef<Value *> current) {
            SmallVector<Value *, 2> next(current.drop_back(2));
            aAt = current[current.size() - 2];
            panelAt = current.back();
            stepPair(next);
            next.append({aAt, panelAt});
            return next;
          },
          [&](ArrayRef<Value *> next) { return b_.CreateICmpNE(next.back(), panelEnd); });
      panelAt = carried.pop_back_val();
      aAt = carried.pop_back_val();
      result = carried;
    }
    for (int64_t u = 0; u < depth % unroll; ++u)
      step(aAt, panelAt, u, result);
    auto storeToC = [&] {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t v = 0; v < q; ++v)
          storeVector(result[r * q + v], c_, cAt(r, v), maskOf(v));
    };
    auto complete = [&] {
      Align tileAlign(std::min<uint64_t>(64, lanes * 4));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t v = 0; v < q; ++v)
          storeVector(result[r * q + v], tile_, kb_.index(r * nr + v * lanes), nullptr, tileAlign);
      SmallVector<Value *, 12> args(captures_.begin(), captures_.end());
      for (Value *x :
           {tile_, static_cast<Value *>(kb_.index(nr)), i0, static_cast<Value *>(kb_.index(rows)),
            j0, static_cast<Value *>(kb_.index(width))})
        args.push_back(x);
      b_.CreateCall(epilogue_, args);
    };
    auto *constFinal = dyn_cast<ConstantInt>(final);
    if (!epilogue_ || (constFinal && constFinal->isZero())) {
      storeToC();
    } else if (constFinal) {
      complete();
    } else {
      kb_.ifThen(final, name_ + ".complete", complete);
      kb_.ifThen(b_.CreateNot(final), name_ + ".partial", storeToC);
    }
  }

  const Plan &p_;
  const MatMulGeometry &g_;
  KernelBuilder kb_;
  IRBuilder<> &b_;
  std::string name_;
  Function *epilogue_;
  SmallVector<unsigned, 2> capturesC_;
  Type *vec_;
  Value *c_ = nullptr, *a_ = nullptr, *bm_ = nullptr, *panel_ = nullptr, *tile_ = nullptr;
  Value *packedA_ = nullptr; ///< with Plan::packA
  SmallVector<Value *, 8> captures_;
  Value *rowBegin_ = nullptr, *rowEnd_ = nullptr, *colBegin_ = nullptr, *colEnd_ = nullptr;
};

/// Vector lanes (f32) and vector registers of the target.
std::pair<unsigned, unsigned> targetVectors(Function &fn, TargetMachine &machine) {
  TargetTransformInfo tti = machine.getTargetTransformInfo(fn);
  unsigned bits = static_cast<unsigned>(
      tti.getRegisterBitWidth(TargetTransformInfo::RGK_FixedWidthVector).getFixedValue());
  unsigned registers = tti.getNumberOfRegisters(tti.getRegisterClassForType(true));
  unsigned lanes = std::clamp(bits / 32, 1u, 16u);
  return {lanes, std::max(registers, 8u)};
}

void defineMatMul(Function &decl, const MatMulGeometry &g, Function *epilogue,
                  ArrayRef<unsigned> capturesC, TargetMachine &machine) {
  Module &module = *decl.getParent();
  LLVMContext &context = module.getContext();
  auto [lanes, registers] = targetVectors(decl, machine);
  Plan plan = makePlan(g, lanes, registers, epilogue != nullptr);
  std::string name = decl.getName().drop_front(std::strlen(kPrefix)).str();
  Type *ptr = PointerType::getUnqual(context), *i64 = Type::getInt64Ty(context),
       *voidTy = Type::getVoidTy(context);

  const unsigned captures = decl.arg_size() - 4; // the epilogue's storage
  decl.setLinkage(GlobalValue::InternalLinkage);
  decl.addFnAttr(Attribute::AlwaysInline);
  decl.addFnAttr(Attribute::NoUnwind);
  IRBuilder<> b(BasicBlock::Create(context, "entry", &decl));
  Value *ctx = decl.getArg(0);
  SmallVector<Value *, 12> pointers; // c, a, b, captures...
  for (unsigned i = 1; i < decl.arg_size(); ++i)
    pointers.push_back(decl.getArg(i));
  if (!plan.parallel) {
    // range(c, a, b, begin, end, captures...): all tasks, in a function
    // of its own that decl (inlined into the kernel) calls once.  Inlined
    // too, it made the kernel's entry function the largest piece of the
    // step for the two compile threads (codegen/Partition.h) to share: the
    // fashion step's larger part was 262 M instructions of llc against
    // 232, and became 251 against 249 with this one apart (bench/
    // compile_cost.sh --per-part, session 12).  The captures are disjoint
    // from C, A and B.
    SmallVector<Type *, 12> rangeParams = {ptr, ptr, ptr, i64, i64};
    rangeParams.append(captures, ptr);
    Function *range =
        Function::Create(FunctionType::get(voidTy, rangeParams, false),
                         GlobalValue::InternalLinkage, decl.getName() + ".range", module);
    range->addFnAttr(Attribute::NoInline);
    range->addFnAttr(Attribute::NoUnwind);
    range->addFnAttr(kLoopsLaidOut);
    for (unsigned i = 0; i < 3; ++i)
      range->addParamAttr(i, Attribute::NoAlias);
    TileEmitter emitter(plan, range, name, epilogue, capturesC);
    emitter.entry();
    SmallVector<Value *, 8> rangeCaptures;
    for (unsigned i = 5; i < range->arg_size(); ++i)
      rangeCaptures.push_back(range->getArg(i));
    emitter.emit(range->getArg(0), range->getArg(1), range->getArg(2), range->getArg(3),
                 range->getArg(4), rangeCaptures);
    SmallVector<Value *, 12> args = {pointers[0], pointers[1], pointers[2], b.getInt64(0),
                                     b.getInt64(plan.tasks)};
    args.append(pointers.begin() + 3, pointers.end());
    b.CreateCall(range, args);
    b.CreateRetVoid();
    return;
  }
  // tasks(closure, begin, end), called by the pool's threads, with the
  // product's code in its own body: emitted there rather than inlined,
  // which would copy it (the always-inliner was a fifth of the kernel
  // pipeline's time).  Its accesses carry the alias scopes KernelBuilder
  // gives C, A, B, the panel, the tile and the captures.
  StructType *closureType = StructType::get(context, SmallVector<Type *, 12>(pointers.size(), ptr));
  Function *tasks =
      Function::Create(FunctionType::get(voidTy, {ptr, i64, i64}, false),
                       GlobalValue::InternalLinkage, decl.getName() + ".tasks", module);
  tasks->addFnAttr(Attribute::NoUnwind);
  tasks->addFnAttr(kLoopsLaidOut);
  {
    TileEmitter emitter(plan, tasks, name, epilogue, capturesC);
    IRBuilder<> &tb = emitter.entry();
    Value *closure = tasks->getArg(0);
    SmallVector<Value *, 12> loaded;
    for (unsigned i = 0; i < pointers.size(); ++i) {
      auto *pointer = tb.CreateLoad(ptr, tb.CreateStructGEP(closureType, closure, i));
      pointer->setMetadata(LLVMContext::MD_nonnull, MDNode::get(context, {}));
      loaded.push_back(pointer);
    }
    emitter.emit(loaded[0], loaded[1], loaded[2], tasks->getArg(1), tasks->getArg(2),
                 ArrayRef<Value *>(loaded).drop_front(3));
  }
  Value *closure = b.CreateAlloca(closureType, nullptr, name + ".closure");
  for (unsigned i = 0; i < pointers.size(); ++i)
    b.CreateStore(pointers[i], b.CreateStructGEP(closureType, closure, i));
  // runtime/Abi.h: gradc_step_context.pool is field 5.
  StructType *ctxType = StructType::get(context, {ptr, ptr, i64, i64, ptr, ptr});
  Value *pool = b.CreateLoad(ptr, b.CreateStructGEP(ctxType, ctx, 5), "pool");
  FunctionCallee parallelFor = module.getOrInsertFunction(
      "gradc_parallel_for", FunctionType::get(voidTy, {ptr, i64, ptr, ptr}, false));
  b.CreateCall(parallelFor, {pool, b.getInt64(plan.tasks), tasks, closure});
  b.CreateRetVoid();
}

} // namespace

void emitMatMul(KernelBuilder &kb, const std::string &name, const MatMulGeometry &g, Value *c,
                Value *a, Value *b, const MatMulEpilogue *epilogue) {
  Type *ptr = kb.ptr;
  SmallVector<Value *, 12> args = {kb.function->getArg(0), c, a, b};
  if (epilogue)
    args.append(epilogue->captures.begin(), epilogue->captures.end());
  Function *decl =
      Function::Create(FunctionType::get(Type::getVoidTy(kb.context),
                                         SmallVector<Type *, 12>(args.size(), ptr), false),
                       GlobalValue::ExternalLinkage, kPrefix + name, kb.module);
  MDBuilder md(kb.context);
  SmallVector<Metadata *, 8> fields;
  for (int64_t x : {g.m, g.n, g.k, g.aRow, g.aCol, g.bRow, g.bCol})
    fields.push_back(md.createConstant(kb.index(x)));
  if (epilogue) {
    // The function, then the captures that are C itself (a member that
    // took C's bytes), which the tiles pass on as their own C pointer.
    fields.push_back(ValueAsMetadata::get(epilogue->function));
    for (size_t i = 0; i < epilogue->captures.size(); ++i)
      if (epilogue->captures[i] == c)
        fields.push_back(md.createConstant(kb.index(static_cast<int64_t>(i))));
  }
  decl->setMetadata(kGeometryKind, MDNode::get(kb.context, fields));
  kb.b.CreateCall(decl, args);
}

void defineMatMuls(Module &module, TargetMachine &machine) {
  struct Pending {
    Function *decl;
    MatMulGeometry geometry;
    Function *epilogue;
    SmallVector<unsigned, 2> capturesC;
  };
  SmallVector<Pending, 8> pending;
  for (Function &fn : module) {
    MDNode *md = fn.getMetadata(kGeometryKind);
    if (!md || !fn.isDeclaration())
      continue;
    int64_t x[7];
    for (unsigned i = 0; i < 7; ++i)
      x[i] = mdconst::extract<ConstantInt>(md->getOperand(i))->getSExtValue();
    Function *epilogue =
        md->getNumOperands() > 7 ? mdconst::extract<Function>(md->getOperand(7)) : nullptr;
    SmallVector<unsigned, 2> capturesC;
    for (unsigned i = 8; i < md->getNumOperands(); ++i)
      capturesC.push_back(
          unsigned(mdconst::extract<ConstantInt>(md->getOperand(i))->getZExtValue()));
    pending.push_back(
        {&fn, MatMulGeometry{x[0], x[1], x[2], x[3], x[4], x[5], x[6]}, epilogue, capturesC});
  }
  for (Pending &p : pending) {
    p.decl->setMetadata(kGeometryKind, nullptr);
    defineMatMul(*p.decl, p.geometry, p.epilogue, p.capturesC, machine);
  }
}

} // namespace gradc::codegen
