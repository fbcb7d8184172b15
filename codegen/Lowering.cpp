//===- codegen/Lowering.cpp - ir::Graph to one LLVM function --------------===//
//
// The kernel's entry block loads the context fields and gives every storage
// location a named pointer (%W1.buf, %loss.out, %h.arena, %lr.hyper); then
// each node becomes a block of loops over those pointers, and the updates
// that must wait for the end of the step (KernelLayout) come last.
//
// The switch over OpKind has no default: an op added to ir/Ops.def does not
// build until it is lowered here.
//
//===----------------------------------------------------------------------===//
#include "codegen/Lowering.h"
#include "codegen/Elementwise.h"
#include "codegen/KernelBuilder.h"
#include "codegen/KernelLayout.h"
#include "codegen/MatMul.h"
#include "codegen/MathApprox.h"
#include "codegen/Reduce.h"
#include "codegen/Rows.h"
#include "ir/Graph.h"
#include "ir/Printer.h"

#include <llvm/IR/AssemblyAnnotationWriter.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/FormattedStream.h>

#include <fmt/format.h>
#include <limits>
#include <map>
#include <unordered_set>
#include <utility>

namespace gradc::codegen {

using namespace llvm;
using ir::Node;
using ir::OpKind;

namespace {

constexpr const char *kNodeMetadata = "gradc.node";

/// Elementwise maps and update copies of at least this many elements (the
/// weight-shaped values of the benchmark MLPs) run on the thread pool, by
/// blocks of rows: the split of the weight-gradient products (rows of C),
/// so a core updates the rows it computed and keeps them in its cache for
/// the next step.  Smaller ones (activations of a batch) stay on the
/// calling thread: they are memory-bound, and splitting them was measured
/// slower, their operands moving between the cores' private L2 caches ...
constexpr int64_t kParallelElements = int64_t(1) << 16;
/// ... split into this many tasks (blocks of rows): enough to balance a
/// few threads.
constexpr int64_t kElementwiseTasks = 8;
/// A product's epilogue runs on its tiles in the product's order, panel by
/// panel of columns, so it comes back to each row of its tensors once per
/// panel: they must stay in a core's cache in between.  Zen 3's L2 (512
/// KiB) holds the fashion model's [128, 256] activations three times
/// over; the epilogues of the L model's [256, 1024] ones, and of weight
/// updates (weight and velocity, 1.6 MB for the fashion model's first
/// layer), ran 2-5x slower than the row-order loops they replace (perf:
/// 1.5% against 0.3% of the L step each, 3.0% against 1.9% of the fashion
/// step).  Above this many bytes of tensors, the maps stay loops.
constexpr int64_t kEpilogueBytes = int64_t(512) << 10;
/// Nor does a product of fewer elements than this get an epilogue: the
/// fashion model's [128, 10] logits and their bias, one pass over 5 KB,
/// would save about 7 ms over 15 epochs and cost as much compile time
/// (16 M instructions of llc, bench/compile_cost.sh --per-function).
constexpr int64_t kMinEpilogueElements = int64_t(1) << 12;

class GraphLowering {
public:
  GraphLowering(const ir::Graph &graph, const KernelLayout &layout, Function *fn)
      : graph_(graph), layout_(layout), kb_(fn), b_(kb_.b) {}

  bool run(std::string &error) {
    for (const auto &owned : graph_.nodes())
      for (const Node *operand : owned->operands)
        users_[operand].push_back(owned.get());
    emitEntry();
    planEpilogues();
    planFusion();
    for (const auto &owned : graph_.nodes()) {
      const Node &node = *owned;
      if (node.type.dtype == ir::DType::I32 && !node.isLeaf() && !node.is(OpKind::Reshape) &&
          !node.is(OpKind::Dropout)) {
        error = fmt::format("%{}: i32 values can only be fed in and passed through ('{}')",
                            node.name, node.mnemonic());
        return false;
      }
      if (auto sums = sumsBefore_.find(&node); sums != sumsBefore_.end())
        for (const Node *sum : sums->second)
          lowerSumEarly(*sum);
      if (auto early = earlySums_.find(&node); early != earlySums_.end()) {
        beginNode(node, node.name, {pointerOf(&node), early->second});
        kb_.copy(pointerOf(&node), early->second, node.type.bytes());
        continue;
      }
      lowerNode(node);
    }
    emitDeferredUpdates();
    b_.CreateRetVoid();
    // The node comment goes on the first instruction of each node's block;
    // a fused loop lists every node it computes.
    unsigned kind = kb_.context.getMDKindID(kNodeMetadata);
    for (auto &[block, node] : nodeBlocks_) {
      std::string text;
      auto group = groupOf_.find(node);
      auto epilogue = epilogueOf_.find(node);
      std::vector<const Node *> members = {node};
      if (group != groupOf_.end())
        members = group->second->nodes;
      else if (epilogue != epilogueOf_.end())
        members.insert(members.end(), epilogue->second->nodes.begin(),
                       epilogue->second->nodes.end());
      for (const Node *member : members)
        text += (text.empty() ? "" : "\n  ; ") +
                ir::toString(*member, ir::PrintOptions{.locations = false});
      block->front().setMetadata(kind, MDNode::get(kb_.context, MDString::get(kb_.context, text)));
    }
    return true;
  }

private:
  // --- Storage. -----------------------------------------------------------

  void emitEntry() {
    BasicBlock *entry = BasicBlock::Create(kb_.context, "entry", kb_.function);
    b_.SetInsertPoint(entry);
    Argument *ctx = kb_.function->getArg(0);
    ctx->setName("ctx");
    // runtime/Abi.h: gradc_step_context.
    StructType *ctxType = StructType::create(
        kb_.context, {kb_.ptr, kb_.ptr, kb_.i64, kb_.i64, kb_.ptr, kb_.ptr}, "gradc_step_context");
    auto field = [&](unsigned index, Type *type, const char *name) -> Value * {
      LoadInst *load = b_.CreateLoad(
          type, b_.CreateStructGEP(ctxType, ctx, index, std::string(name) + ".addr"), name);
      if (type == kb_.ptr)
        load->setMetadata(LLVMContext::MD_nonnull, MDNode::get(kb_.context, {}));
      return load;
    };
    const rt::KernelSpec &spec = layout_.spec;
    if (!spec.buffers.empty())
      buffers_ = field(0, kb_.ptr, "buffers");
    if (spec.arenaBytes > 0)
      arena_ = field(1, kb_.ptr, "arena");
    if (!spec.hypers.empty())
      hypers_ = field(4, kb_.ptr, "hypers");

    for (size_t slot = 0; slot < spec.buffers.size(); ++slot) {
      const rt::TensorSpec &tensor = spec.buffers[slot];
      std::string name = tensor.name + (tensor.role == rt::Role::Output ? ".out" : ".buf");
      Value *address = b_.CreateConstInBoundsGEP1_64(kb_.ptr, buffers_, slot);
      LoadInst *load = b_.CreateLoad(kb_.ptr, address, name);
      load->setMetadata(LLVMContext::MD_nonnull, MDNode::get(kb_.context, {}));
      slots_.push_back(load);
    }
    for (const auto &owned : graph_.nodes()) {
      const Node &node = *owned;
      if (!node.hasResult())
        continue;
      const ValueLayout &value = layout_.of(&node);
      if (value.aliasOf) {
        pointers_[&node] = pointers_.at(value.aliasOf);
        continue;
      }
      const Storage &home = value.home;
      switch (home.kind) {
      case Storage::None:
        break;
      case Storage::Buffer:
        pointers_[&node] = slots_[home.index];
        break;
      case Storage::Hyper:
        pointers_[&node] =
            b_.CreateConstInBoundsGEP1_64(kb_.f32, hypers_, home.index, node.name + ".hyper");
        break;
      case Storage::Arena:
        if (node.is(OpKind::Const) && !constNeedsMemory(node))
          break;
        pointers_[&node] = b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), arena_, home.offset,
                                                         node.name + ".arena");
        break;
      }
    }
    for (const auto &owned : graph_.nodes()) {
      const Node *node = owned.get();
      if (!node->is(OpKind::Update))
        continue;
      const UpdateLayout &update = layout_.updates.at(node);
      if (update.kind == UpdateLayout::StagedEnd)
        staging_[node] = b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), arena_, update.stagingOffset,
                                                       node->operands[0]->name + ".staged");
    }
  }

  /// A constant is read straight from the instruction stream by
  /// elementwise users; it needs memory only when something else reads it.
  bool constNeedsMemory(const Node &node) {
    if (layout_.of(&node).home.kind != Storage::Arena)
      return true; // an output
    for (const Node *user : users_[&node])
      if (!user->isElementwise() && !user->is(OpKind::Broadcast))
        return true;
    return false;
  }

  Value *pointerOf(const Node *node) const { return pointers_.at(node); }

  // --- Blocks. ------------------------------------------------------------

  /// Starts the block of `node`; `bases` are the storage it touches.
  void beginNode(const Node &node, const std::string &blockName, ArrayRef<Value *> bases) {
    BasicBlock *block = BasicBlock::Create(kb_.context, blockName, kb_.function);
    b_.CreateBr(block);
    b_.SetInsertPoint(block);
    nodeBlocks_.emplace_back(block, &node);
    kb_.beginNode(bases, blockName);
  }

  StridedInput inputFor(const Node *operand, const ir::Shape &outShape) {
    StridedInput input;
    input.name = operand->name;
    if (operand->is(OpKind::Const)) {
      input.splat = kb_.f32Const(operand->attrs.value);
      return input;
    }
    input.base = pointerOf(operand);
    input.strides = broadcastStrides(operand->type.shape, outShape);
    return input;
  }

  std::vector<Value *> basesOf(const Node &node) {
    std::vector<Value *> bases;
    if (node.hasResult())
      bases.push_back(pointerOf(&node));
    for (const Node *operand : node.operands)
      if (auto it = pointers_.find(operand); it != pointers_.end())
        bases.push_back(it->second);
    return bases;
  }

  // --- Nodes. -------------------------------------------------------------

  /// Whether a map or copy over `type` runs on the thread pool.
  static bool runsInParallel(const ir::Type &type) {
    return type.numel() >= kParallelElements && type.rank() >= 1 && type.shape[0] >= 2;
  }

  /// The split of `rows` rows into tasks of forRowBlocks: kElementwiseTasks
  /// blocks of rowsPerTask rows, the last one maybe shorter.
  struct RowBlocks {
    int64_t tasks, rowsPerTask, lastRows;
  };
  static RowBlocks rowBlocksOf(int64_t rows) {
    int64_t tasks = std::min(rows, kElementwiseTasks);
    int64_t rowsPerTask = (rows + tasks - 1) / tasks;
    tasks = (rows + rowsPerTask - 1) / rowsPerTask;
    return {tasks, rowsPerTask, rows - (tasks - 1) * rowsPerTask};
  }

  using RowBlockBody =
      function_ref<void(ArrayRef<Value *> pointers, Value *firstRow, int64_t rows)>;
  /// Runs `body` on the thread pool over blocks of rows (along the first
  /// dimension) of `shape` (rowBlocksOf).  Every map and copy uses this
  /// same split, so a core finds the rows it wrote in its own cache.
  /// `body` gets `captures` as `pointers`.
  void forRowBlocks(const ir::Shape &shape, const std::string &name, ArrayRef<Value *> captures,
                    RowBlockBody body) {
    auto [tasks, rowsPerTask, lastRows] = rowBlocksOf(shape[0]);
    kb_.parallelFor(
        tasks, name, captures, [&](ArrayRef<Value *> pointers, Value *begin, Value *end) {
          Value *lastTask = kb_.index(tasks - 1);
          kb_.loopRange(begin, end, 1, name + ".task", [&](Value *task) {
            Value *firstRow = b_.CreateMul(task, kb_.index(rowsPerTask), name + ".row");
            if (lastRows == rowsPerTask) {
              body(pointers, firstRow, rowsPerTask);
              return;
            }
            BasicBlock *full = BasicBlock::Create(kb_.context, name + ".rows", kb_.function);
            BasicBlock *last = BasicBlock::Create(kb_.context, name + ".last", kb_.function);
            BasicBlock *join = BasicBlock::Create(kb_.context, name + ".joined", kb_.function);
            b_.CreateCondBr(b_.CreateICmpEQ(task, lastTask), last, full);
            b_.SetInsertPoint(full);
            body(pointers, firstRow, rowsPerTask);
            b_.CreateBr(join);
            b_.SetInsertPoint(last);
            body(pointers, firstRow, lastRows);
            b_.CreateBr(join);
            b_.SetInsertPoint(join);
          });
        });
  }

  /// `base` advanced by `row` rows of `stride` elements.
  Value *rowAt(Value *base, Value *row, int64_t stride) {
    return stride == 0 ? base
                       : b_.CreateInBoundsGEP(kb_.f32, base, kb_.offset(kb_.index(0), row, stride));
  }

  /// emitStridedMap over the output in row-major order; a big one runs on
  /// the thread pool by blocks of rows.  Each element is computed alone, so
  /// the split changes no result.
  void stridedMap(const Node &node, const std::vector<StridedInput> &inputs,
                  function_ref<Value *(ArrayRef<Value *>)> compute) {
    const ir::Shape &shape = node.type.shape;
    std::vector<int64_t> outStrides = rowMajorStrides(shape);
    if (!runsInParallel(node.type)) {
      emitStridedMap(kb_, node.name, shape, pointerOf(&node), outStrides, inputs, compute);
      return;
    }
    std::vector<Value *> captures = {pointerOf(&node)};
    for (const StridedInput &input : inputs)
      if (!input.splat)
        captures.push_back(input.base);
    forRowBlocks(
        shape, node.name, captures, [&](ArrayRef<Value *> pointers, Value *firstRow, int64_t rows) {
          std::vector<StridedInput> sub = inputs;
          size_t next = 1;
          for (StridedInput &input : sub)
            if (!input.splat)
              input.base = rowAt(pointers[next++], firstRow, input.strides[0]);
          ir::Shape subShape = shape;
          subShape[0] = rows;
          emitStridedMap(kb_, node.name, subShape, rowAt(pointers[0], firstRow, outStrides[0]),
                         outStrides, sub, compute);
        });
  }

  /// Copies the value of `type` from `src` to `dst` (an update), on the
  /// thread pool by blocks of rows when it is big.
  void copyValueOf(const ir::Type &type, const std::string &name, Value *dst, Value *src) {
    if (!runsInParallel(type)) {
      kb_.copy(dst, src, type.bytes());
      return;
    }
    int64_t rowElements = type.numel() / type.shape[0];
    forRowBlocks(type.shape, name, {dst, src},
                 [&](ArrayRef<Value *> pointers, Value *firstRow, int64_t rows) {
                   kb_.copy(rowAt(pointers[0], firstRow, rowElements),
                            rowAt(pointers[1], firstRow, rowElements), rows * rowElements * 4);
                 });
  }

  void copyValue(const Node &node) {
    Value *dst = pointerOf(&node), *src = pointerOf(node.operands[0]);
    if (dst != src)
      kb_.copy(dst, src, node.type.bytes());
  }

  /// A vector or a matrix as rows along its last axis.
  RowMatrix rowsOf(const Node *x) {
    int64_t classes = x->type.shape.back();
    return RowMatrix{pointerOf(x), x->type.numel() / classes, classes, x->name};
  }

  /// emitReduction, except that a reduction of a whole big tensor to one
  /// value (the sum of squares of a weight for the objective) runs on the
  /// thread pool: each row block of forRowBlocks (the split of the update
  /// that wrote the weight, so a core reads rows from its own cache) sums
  /// into a partial of its own, and the calling thread then combines the
  /// partials in block order.  The blocks depend on the shape alone, so
  /// the result does not depend on the thread count.  Serially, the sum of
  /// squares of the fashion model's first weight (200,704 elements) was a
  /// single chain of vector adds on one core while the other waited: 1.3%
  /// of a profile of its training, a quarter of the step's serial code.
  void reduce(const std::string &name, const ir::Type &type, const std::vector<int64_t> &axes,
              const std::vector<ReductionInput> &inputs, Value *out,
              function_ref<Value *(ArrayRef<Value *>)> element,
              function_ref<Value *(Value *)> finish, Combine combine = Combine::Sum) {
    if (type.rank() == 2 && axes == std::vector<int64_t>{0} && runsInParallel(type)) {
      reduceColumns(name, type, inputs, out, element, finish, combine);
      return;
    }
    if (static_cast<int64_t>(axes.size()) != type.rank() || !runsInParallel(type)) {
      emitReduction(kb_, name, type.shape, axes, inputs, out, element, finish, combine);
      return;
    }
    const int64_t rowSize = type.numel() / type.shape[0];
    const RowBlocks blocks = rowBlocksOf(type.shape[0]);
    Value *partials = partialsOf(name, blocks);
    std::vector<Value *> captures;
    for (const ReductionInput &input : inputs)
      captures.push_back(input.base);
    captures.push_back(partials);
    forRowBlocks(
        type.shape, name + ".blocks", captures,
        [&](ArrayRef<Value *> pointers, Value *firstRow, int64_t rows) {
          Value *first = kb_.offset(kb_.index(0), firstRow, rowSize);
          std::vector<ReductionInput> block;
          for (size_t i = 0; i < inputs.size(); ++i)
            block.push_back(
                {b_.CreateInBoundsGEP(kb_.f32, pointers[i], first), inputs[i].name + ".block"});
          Value *slot = b_.CreateInBoundsGEP(
              kb_.f32, pointers.back(), b_.CreateUDiv(firstRow, kb_.index(blocks.rowsPerTask)));
          emitReduction(kb_, name, {rows * rowSize}, {0}, block, slot, element, nullptr, combine);
        });
    addPartials(name, blocks, partials, out, finish, combine);
  }

  /// One partial result per row block of `blocks`, on the kernel's stack.
  Value *partialsOf(const std::string &name, const RowBlocks &blocks) {
    BasicBlock &entry = kb_.function->getEntryBlock();
    return IRBuilder<>(&entry, entry.begin())
        .CreateAlloca(ArrayType::get(kb_.f32, blocks.tasks), nullptr, name + ".partials");
  }

  /// out = finish(the partials combined in block order).
  void addPartials(const std::string &name, const RowBlocks &blocks, Value *partials, Value *out,
                   function_ref<Value *(Value *)> finish = nullptr,
                   Combine combine = Combine::Sum) {
    emitReduction(
        kb_, name + ".partials", {blocks.tasks}, {0}, {{partials, name + ".partials"}}, out,
        [](ArrayRef<Value *> in) { return in[0]; }, finish, combine);
  }

  /// emitReduction of a big matrix down its columns (a bias's gradient, the
  /// sum over a batch) on the thread pool: each task takes a block of
  /// columns, through all rows, and does for them exactly what
  /// emitReduction does serially (the output from 0 or -inf, then each row
  /// combined into it in order, then `finish`), so the split changes no
  /// bit.  Blocks are whole cache lines of the output.  Serially, the L
  /// model's two [256, 1024] bias gradients were 0.6% of its step while the
  /// other core waited.
  void reduceColumns(const std::string &name, const ir::Type &type,
                     const std::vector<ReductionInput> &inputs, Value *out,
                     function_ref<Value *(ArrayRef<Value *>)> element,
                     function_ref<Value *(Value *)> finish, Combine combine) {
    const int64_t rows = type.shape[0], columns = type.shape[1];
    constexpr int64_t kLine = 16; // floats in a cache line
    const int64_t width =
        (columns + kElementwiseTasks * kLine - 1) / (kElementwiseTasks * kLine) * kLine;
    const int64_t tasks = (columns + width - 1) / width;
    std::vector<Value *> captures;
    for (const ReductionInput &input : inputs)
      captures.push_back(input.base);
    captures.push_back(out);
    Constant *initial =
        kb_.f32Const(combine == Combine::Sum ? 0.0 : -std::numeric_limits<double>::infinity());
    auto combined = [&](Value *acc, Value *v) -> Value * {
      if (combine == Combine::Sum)
        return b_.CreateFAdd(acc, v);
      return b_.CreateBinaryIntrinsic(Intrinsic::maximum, acc, v);
    };
    kb_.parallelFor(
        tasks, name + ".columns", captures,
        [&](ArrayRef<Value *> pointers, Value *begin, Value *end) {
          Value *target = pointers.back();
          kb_.loopRange(begin, end, 1, name + ".task", [&](Value *task) {
            Value *first = b_.CreateMul(task, kb_.index(width), name + ".column");
            Value *last = b_.CreateBinaryIntrinsic(
                Intrinsic::smin, b_.CreateAdd(first, kb_.index(width)), kb_.index(columns));
            kb_.loopRange(first, last, 1, name + ".init",
                          [&](Value *c) { kb_.store(initial, target, c); });
            kb_.loop(rows, name + ".d0", [&](Value *r) {
              Value *row = kb_.offset(kb_.index(0), r, columns);
              kb_.loopRange(first, last, 1, name + ".d1", [&](Value *c) {
                std::vector<Value *> values;
                for (size_t i = 0; i < inputs.size(); ++i)
                  values.push_back(kb_.load(pointers[i], b_.CreateAdd(row, c, "", true, true),
                                            inputs[i].name + ".v"));
                Value *old = kb_.load(target, c, name + ".v");
                kb_.store(combined(old, element(values)), target, c);
              });
            });
            if (finish)
              kb_.loopRange(first, last, 1, name + ".finish", [&](Value *c) {
                kb_.store(finish(kb_.load(target, c, name + ".v")), target, c);
              });
          });
        });
  }

  std::vector<int64_t> allAxes(const ir::Type &type) {
    std::vector<int64_t> axes(type.rank());
    for (int i = 0; i < type.rank(); ++i)
      axes[i] = i;
    return axes;
  }

  // --- Elementwise fusion. -------------------------------------------------
  //
  // A run of consecutive elementwise maps of one shape, each reading the
  // one before (the optimizer's update chain, dJ_dW = dL_dW + lambda W, an
  // activation's derivative times its adjoint), becomes one loop: each
  // element of every member is computed in registers, and only the members
  // something outside the run reads are stored.  That turns k passes over
  // memory into one.  Every element is computed by the same operations in
  // the same order as unfused; the one difference is that LLVM may now
  // contract a product and the sum that reads it (both carry `contract`)
  // into a fused multiply-add: one rounding instead of two.  Results stay
  // the same for any thread count, and between the JIT and `gradc build`.
  //
  // A run also takes in the maps of its shape that follow it without
  // reading it (the velocity's decay after the gradient's weight decay), and
  // the updates of its members that may happen in place (UpdateLayout::
  // InPlace: nothing after them reads the target): the loop then writes
  // the new parameter or optimizer state straight into its buffer, after
  // reading the old element, and the whole optimizer step of a parameter
  // (gradient plus weight decay, momentum, step, update) is one pass that
  // reads the gradient, the weight and the velocity once and writes the
  // weight and the velocity once, instead of about fifteen passes.
  //
  // Conditions, so that each iteration only touches its own element and the
  // noalias scopes of the loop stay true: operands are members, constants,
  // values of the same shape, row vectors broadcast over the rows of a
  // matrix (a layer's bias: the loop then runs over rows, then columns),
  // or scalars in caller buffers (the learning rate); and the storage of
  // the loop's inputs, stored results and update targets is pairwise
  // disjoint in the memory plan (an updated target may be an input: element
  // i is read before it is written).  The memory plan keeps a run's inputs
  // live until its last stored member where that costs no arena bytes
  // (passes/MemoryPlan.cpp), so this rarely fails.
  //
  // A run also takes the sums of squares of its inputs that sink-penalty
  // put inside it (the objective's weight decay, sum ||W||^2, next to W's
  // update): the loop adds up each element's square as it reads it, by the
  // row blocks of the update, and the partial sums are added in block
  // order after the loop, as reduce() does.  (Where the update is instead
  // in the epilogue of its gradient's product, the sum is computed before
  // the product: planEpilogues, lowerSumEarly.)

  struct FusionGroup {
    std::vector<const Node *> nodes;   ///< in program order, updates included
    std::vector<const Node *> inputs;  ///< operands from outside, not constants
    std::vector<const Node *> stored;  ///< members read outside the group
    std::vector<const Node *> targets; ///< what the group's updates write
    std::vector<const Node *> sums;    ///< sums of squares of inputs (sink-penalty)
  };

  /// An elementwise op (TRAIT_ELEMENTWISE in ir/Ops.def) as a function of
  /// its operands' values at one position: the body of every map, fused or
  /// not.
  Value *mapValue(const Node &node, ArrayRef<Value *> in) {
    std::string v = node.name + ".v";
    switch (node.kind) {
    case OpKind::Neg:
      return b_.CreateFNeg(in[0], v);
    case OpKind::Exp:
      return emitExp(b_, in[0], v);
    case OpKind::Log:
      return emitLog(b_, in[0], v);
    case OpKind::Sqrt:
      return emitSqrt(b_, in[0], v);
    case OpKind::Relu:
      // x > 0 ? x : 0, exactly the interpreter's rule (NaN gives 0).
      return b_.CreateSelect(b_.CreateFCmpOGT(in[0], kb_.f32Const(0.0)), in[0], kb_.f32Const(0.0),
                             v);
    case OpKind::Sigmoid:
      return emitSigmoid(b_, in[0], v);
    case OpKind::Tanh:
      return emitTanh(b_, in[0], v);
    case OpKind::Step:
      return b_.CreateSelect(b_.CreateFCmpOGT(in[0], kb_.f32Const(0.0)), kb_.f32Const(1.0),
                             kb_.f32Const(0.0), v);
    case OpKind::Scale:
      return b_.CreateFMul(in[0], kb_.f32Const(node.attrs.value), v);
    case OpKind::Pow:
      return emitPow(b_, in[0], node.attrs.value, v);
    case OpKind::Add:
      return b_.CreateFAdd(in[0], in[1], v);
    case OpKind::Sub:
      return b_.CreateFSub(in[0], in[1], v);
    case OpKind::Mul:
      return b_.CreateFMul(in[0], in[1], v);
    case OpKind::Div:
      return b_.CreateFDiv(in[0], in[1], v);
    case OpKind::Maximum:
    case OpKind::Minimum:
      // llvm.maximum / llvm.minimum: a NaN operand gives NaN, as in the interpreter.
      return b_.CreateBinaryIntrinsic(node.is(OpKind::Maximum) ? Intrinsic::maximum
                                                               : Intrinsic::minimum,
                                      in[0], in[1], nullptr, v);
    default:
      return nullptr; // not a map
    }
  }

  /// Whether `node` is an f32 map of `shape` whose value has bytes of its
  /// own, which a fused loop or an epilogue can write element by element.
  bool mapWithStorage(const Node &node, const ir::Shape &shape) {
    if (!node.isElementwise() || node.type.dtype != ir::DType::F32 || node.type.shape != shape)
      return false;
    const ValueLayout &value = layout_.of(&node);
    return !value.aliasOf && value.copyToBuffers.empty() &&
           (value.home.kind == Storage::Arena || value.home.kind == Storage::Buffer);
  }

  /// Whether `node` can be computed in a loop over `shape` with `members`.
  bool fusable(const Node &node, const ir::Shape &shape,
               const std::unordered_set<const Node *> &members) {
    if (!mapWithStorage(node, shape))
      return false;
    for (const Node *operand : node.operands) {
      if (members.count(operand) || operand->is(OpKind::Const))
        continue;
      if (operand->type.dtype != ir::DType::F32)
        return false;
      if (operand->type.shape == shape)
        continue;
      // A bias: a row vector, broadcast over the rows of a matrix.
      if (shape.size() == 2 && operand->type.shape == ir::Shape{shape[1]})
        continue;
      if (operand->type.rank() == 0 && layout_.of(operand).home.kind != Storage::Arena)
        continue;
      return false;
    }
    return true;
  }

  /// Whether `node` is an update of a value of `members` that can write
  /// its target from inside a loop over `shape`.
  bool fusableUpdate(const Node &node, const ir::Shape &shape,
                     const std::unordered_set<const Node *> &members) {
    if (!node.is(OpKind::Update) || !members.count(node.operands[1]))
      return false;
    const Node *target = node.operands[0];
    return layout_.updates.at(&node).kind == UpdateLayout::InPlace &&
           target->type.dtype == ir::DType::F32 && target->type.shape == shape &&
           layout_.of(target).home.kind == Storage::Buffer;
  }

  /// Whether `node` is a sum of squares of an input of the run (a weight,
  /// for the objective's weight decay: passes/SinkPenalty.cpp) that the
  /// run's loop can add up while it reads the input, before any update of
  /// the run writes it.
  bool fusableSum(const Node &node, const std::vector<const Node *> &run) {
    if (!node.is(OpKind::SumSq))
      return false;
    const Node *x = node.operands[0];
    const ValueLayout &value = layout_.of(&node);
    if (x->type.dtype != ir::DType::F32 || x->type.shape != run.front()->type.shape ||
        value.aliasOf || !value.copyToBuffers.empty() || value.home.kind != Storage::Arena)
      return false;
    return std::none_of(run.begin(), run.end(), [&](const Node *member) {
      return member == x || (member->is(OpKind::Update) && member->operands[0] == x);
    });
  }

  void planFusion() {
    std::vector<const Node *> run;
    std::unordered_set<const Node *> members;
    auto finish = [&] {
      // A run starts with a map; one map and its update is a loop too (the
      // map writes the target directly, no copy).
      if (run.size() >= 2)
        makeGroup(run);
      run.clear();
      members.clear();
    };
    for (const auto &owned : graph_.nodes()) {
      const Node &node = *owned;
      // Leaves are read in place, no code: they do not end a run.
      if (readInPlace(node))
        continue;
      // Computed in a product's tiles, or before a product: no code here.
      if (epilogueMembers_.count(&node) || sumsMoved_.count(&node))
        continue;
      if (!run.empty() &&
          (fusable(node, run.front()->type.shape, members) ||
           fusableUpdate(node, run.front()->type.shape, members) || fusableSum(node, run))) {
        run.push_back(&node);
        members.insert(&node);
        continue;
      }
      finish();
      if (fusable(node, node.type.shape, members)) {
        run.push_back(&node);
        members.insert(&node);
      }
    }
    finish();
  }

  /// A leaf that is read where it lies: no code at its place.
  bool readInPlace(const Node &node) const {
    auto leaf = layout_.values.find(&node);
    return node.isLeaf() && leaf != layout_.values.end() && leaf->second.copyToBuffers.empty();
  }

  /// One node for each distinct storage that `group` touches (stored
  /// members, inputs, update targets, in that order): values in the same
  /// bytes share one pointer in the group's code.
  std::vector<const Node *> distinctStorage(const FusionGroup &group) const {
    std::vector<const Node *> first;
    for (const auto *list : {&group.stored, &group.inputs, &group.targets})
      for (const Node *node : *list)
        if (storageSlot(first, node) == first.size())
          first.push_back(node);
    return first;
  }
  /// The index in `first` (distinctStorage) of `node`'s storage.
  size_t storageSlot(const std::vector<const Node *> &first, const Node *node) const {
    const Storage &home = layout_.of(node).home;
    return size_t(std::find_if(first.begin(), first.end(),
                               [&](const Node *x) { return layout_.of(x).home == home; }) -
                  first.begin());
  }

  static void addOnce(std::vector<const Node *> &list, const Node *node) {
    if (std::find(list.begin(), list.end(), node) == list.end())
      list.push_back(node);
  }

  /// The group of `nodes` (in program order): what it reads from outside
  /// (but `computedBy`, a product whose epilogue it is), what it must
  /// store, what its updates write.
  std::unique_ptr<FusionGroup> describeGroup(const std::vector<const Node *> &nodes,
                                             const Node *computedBy = nullptr) {
    auto group = std::make_unique<FusionGroup>();
    group->nodes = nodes;
    std::unordered_set<const Node *> members(nodes.begin(), nodes.end());
    for (const Node *node : nodes) {
      if (node->is(OpKind::Update)) {
        addOnce(group->targets, node->operands[0]);
        continue;
      }
      if (node->is(OpKind::SumSq)) {
        addOnce(group->inputs, node->operands[0]);
        group->sums.push_back(node);
        continue;
      }
      for (const Node *operand : node->operands)
        if (operand != computedBy && !members.count(operand) && !operand->is(OpKind::Const))
          addOnce(group->inputs, operand);
      bool readOutside = layout_.of(node).home.kind == Storage::Buffer; // a result
      for (const Node *user : users_[node])
        readOutside = readOutside || !members.count(user);
      if (readOutside)
        group->stored.push_back(node);
    }
    return group;
  }

  static bool overlap(const Storage &a, const Storage &b) {
    if (a.kind != b.kind || a.kind == Storage::None)
      return false;
    if (a.kind == Storage::Arena)
      return a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
    return a.index == b.index;
  }

  void makeGroup(const std::vector<const Node *> &run) {
    std::unique_ptr<FusionGroup> group = describeGroup(run);
    // The loop's noalias scopes claim that inputs, stored results and
    // update targets do not overlap; the memory plan may have given a
    // result the bytes of an input that died inside the run.  Then the run
    // is lowered unfused.  (A target that is also an input is one pointer,
    // read at element i before element i is written.)
    std::vector<const Node *> touched = group->inputs;
    for (const auto *list : {&group->stored, &group->targets})
      for (const Node *node : *list)
        addOnce(touched, node);
    std::vector<Storage> storages;
    for (const Node *node : touched)
      storages.push_back(layout_.of(node).home);
    for (size_t i = 0; i < storages.size(); ++i)
      for (size_t j = i + 1; j < storages.size(); ++j)
        if (overlap(storages[i], storages[j]))
          return;
    for (const Node *node : run)
      groupOf_[node] = group.get();
    groups_.push_back(std::move(group));
  }

  /// One element of every member of `group`, in program order: `input`
  /// loads an operand from outside the group, and stored members and
  /// update targets are written at element `at` of `pointer`(node).  The
  /// squares of the group's sums are appended to `squares`, in the order
  /// of group.sums.
  void emitGroupElement(const FusionGroup &group, function_ref<Value *(const Node *)> input,
                        function_ref<Value *(const Node *)> pointer, Value *at,
                        SmallVectorImpl<Value *> *squares = nullptr) {
    std::unordered_map<const Node *, Value *> values;
    for (const Node *node : group.nodes) {
      if (node->is(OpKind::Update)) {
        kb_.store(values.at(node->operands[1]), pointer(node->operands[0]), at);
        continue;
      }
      if (node->is(OpKind::SumSq)) {
        Value *x = input(node->operands[0]);
        squares->push_back(b_.CreateFMul(x, x, node->name + ".square"));
        continue;
      }
      std::vector<Value *> in;
      for (const Node *operand : node->operands) {
        if (auto it = values.find(operand); it != values.end())
          in.push_back(it->second);
        else if (operand->is(OpKind::Const))
          in.push_back(kb_.f32Const(operand->attrs.value));
        else
          in.push_back(input(operand));
      }
      Value *value = mapValue(*node, in);
      values[node] = value;
      if (std::find(group.stored.begin(), group.stored.end(), node) != group.stored.end())
        kb_.store(value, pointer(node), at);
    }
  }

  void lowerFusedGroup(const FusionGroup &group) {
    const Node &leader = *group.nodes.front();
    const ir::Type &type = leader.type;
    const std::vector<const Node *> storage = distinctStorage(group);
    std::vector<Value *> bases;
    for (const Node *node : storage)
      bases.push_back(pointerOf(node));
    std::string name = leader.name + ".fused";
    beginNode(leader, name, bases);
    using Sums = SmallVector<Value *, 2>;
    // One element (index `at`, in column `column` of a row vector) of
    // every member, in program order; returns the group's sums of squares
    // `sums` with this element's squares added.
    auto element = [&](ArrayRef<Value *> pointers, Value *at, Value *column,
                       ArrayRef<Value *> sums) {
      auto pointer = [&](const Node *node) { return pointers[storageSlot(storage, node)]; };
      Sums squares;
      emitGroupElement(
          group,
          [&](const Node *operand) {
            Value *index = operand->type.rank() == 0           ? kb_.index(0)
                           : operand->type.shape == type.shape ? at
                                                               : column;
            return kb_.load(pointer(operand), index, operand->name + ".v");
          },
          pointer, at, &squares);
      Sums next;
      for (size_t k = 0; k < sums.size(); ++k)
        next.push_back(b_.CreateFAdd(sums[k], squares[k], group.sums[k]->name + ".sum"));
      return next;
    };
    // A group that reads a row vector (a bias) loops over rows, then over
    // the columns the vector is indexed by; others are one flat loop.
    const bool rowVectors =
        std::any_of(group.inputs.begin(), group.inputs.end(),
                    [&](const Node *input) { return input->type.rank() == 1 && type.rank() == 2; });
    const int64_t rowElements = type.rank() ? type.numel() / type.shape[0] : 1;
    const Sums zeros(group.sums.size(), kb_.f32Const(0.0));
    auto loopOverRows = [&](ArrayRef<Value *> pointers, Value *firstRow, int64_t rows,
                            const std::string &loopName) -> Sums {
      Value *first = b_.CreateMul(firstRow, kb_.index(rowElements));
      if (!rowVectors)
        return kb_.loop(rows * rowElements, loopName, zeros, [&](Value *i, ArrayRef<Value *> sums) {
          return element(pointers, b_.CreateAdd(first, i, "", true, true), nullptr, sums);
        });
      return kb_.loop(rows, loopName + ".r", zeros, [&](Value *r, ArrayRef<Value *> sums) {
        Value *rowStart = b_.CreateAdd(
            first, b_.CreateMul(r, kb_.index(rowElements), "", true, true), "", true, true);
        return kb_.loop(rowElements, loopName + ".c", sums, [&](Value *c, ArrayRef<Value *> sums) {
          return element(pointers, b_.CreateAdd(rowStart, c, "", true, true), c, sums);
        });
      });
    };
    if (!runsInParallel(type)) {
      Sums sums = rowVectors
                      ? loopOverRows(bases, kb_.index(0), type.shape[0], name)
                      : kb_.loop(type.numel(), name, zeros, [&](Value *at, ArrayRef<Value *> sums) {
                          return element(bases, at, nullptr, sums);
                        });
      for (size_t k = 0; k < sums.size(); ++k)
        kb_.store(sums[k], pointerOf(group.sums[k]), kb_.index(0));
      return;
    }
    // A sum of squares adds up each row block into a partial of its own,
    // then the partials in block order, as reduce() does on its own: the
    // result does not depend on the thread count.
    const RowBlocks blocks = rowBlocksOf(type.shape[0]);
    std::vector<Value *> captures = bases;
    for (const Node *sum : group.sums)
      captures.push_back(partialsOf(sum->name, blocks));
    forRowBlocks(type.shape, name, captures,
                 [&](ArrayRef<Value *> pointers, Value *firstRow, int64_t rows) {
                   Sums sums = loopOverRows(pointers, firstRow, rows, name + ".i");
                   Value *block = b_.CreateUDiv(firstRow, kb_.index(blocks.rowsPerTask));
                   for (size_t k = 0; k < sums.size(); ++k)
                     b_.CreateStore(
                         sums[k], b_.CreateInBoundsGEP(kb_.f32, pointers[bases.size() + k], block));
                 });
    for (size_t k = 0; k < group.sums.size(); ++k)
      addPartials(group.sums[k]->name, blocks, captures[bases.size() + k],
                  pointerOf(group.sums[k]));
  }

  // --- Epilogues of matrix products. ---------------------------------------
  //
  // The elementwise maps that read a product (bias, activation and dropout
  // after a layer's product; the mask and the activation's derivative after
  // a backward product) run inside the product's tasks, on each tile as
  // soon as its sums are complete (MatMulEpilogue): the product's result is
  // never stored, and the maps run on the core that computed the tile, in
  // parallel with the rest of the product, instead of as more passes over
  // memory, on the calling thread when they are small.  Each element goes
  // through the same operations as in a fused loop, so results do not
  // depend on the thread count (nor, here, on whether a map ran in an
  // epilogue: checkpoints are the same bytes as before epilogues existed).
  //
  // From the product on, in program order, a node joins the epilogue when
  // it is a map of the product's shape whose operands are members, the
  // product, constants, scalars in caller buffers, or values computed
  // before the product (of its shape, or [n] vectors broadcast over its
  // rows: a bias); or an in-place update of a member.  Nodes that read no
  // member are stepped over and stay where they are; the search ends at
  // the first other node that reads a member, and at any other update.
  // Since the members now run earlier than the memory plan assumed, the
  // epilogue is kept only when the storage it writes overlaps nothing that
  // the product or a stepped-over node reads or writes, nor what it reads
  // (save exactly the same bytes, read at an element before it is written).
  // It is also kept only for products of kMinEpilogueElements or more whose
  // tensors fit kEpilogueBytes: that leaves out the big activations of the
  // L model and the updates of weights, for which tile order was slower.

  /// Whether `node` can be computed in a tile of a product of `shape`.
  bool epilogueMap(const Node &node, const ir::Shape &shape,
                   const std::unordered_set<const Node *> &chain,
                   function_ref<bool(const Node *)> computedBefore) {
    if (!mapWithStorage(node, shape))
      return false;
    for (const Node *operand : node.operands) {
      if (chain.count(operand) || operand->is(OpKind::Const))
        continue;
      if (!computedBefore(operand) || operand->type.dtype != ir::DType::F32)
        return false;
      const ir::Shape &s = operand->type.shape;
      bool rowVector = s.size() == 1 && s[0] == shape[1];
      bool scalar = s.empty() && layout_.of(operand).home.kind != Storage::Arena;
      if (s != shape && !rowVector && !scalar)
        return false;
    }
    return true;
  }

  /// The storage a node reads (operands) and writes (its value and the
  /// output copies of it), for the overlap checks of an epilogue.
  std::vector<Storage> storageTouchedBy(const Node &node) {
    std::vector<Storage> touched;
    for (const Node *operand : node.operands)
      if (layout_.values.count(operand))
        touched.push_back(layout_.of(operand).home);
    if (layout_.values.count(&node)) {
      touched.push_back(layout_.of(&node).home);
      for (int64_t slot : layout_.of(&node).copyToBuffers)
        touched.push_back(Storage{Storage::Buffer, slot, 0, 0});
    }
    return touched;
  }

  void planEpilogues() {
    const auto &nodes = graph_.nodes();
    std::unordered_map<const Node *, size_t> position;
    for (size_t i = 0; i < nodes.size(); ++i)
      position[nodes[i].get()] = i;
    for (size_t p = 0; p < nodes.size(); ++p) {
      const Node &product = *nodes[p];
      if (!product.is(OpKind::MatMul) || product.type.rank() != 2 ||
          product.type.dtype != ir::DType::F32)
        continue;
      const ValueLayout &result = layout_.of(&product);
      if (result.aliasOf || !result.copyToBuffers.empty() || result.home.kind != Storage::Arena ||
          product.type.numel() < kMinEpilogueElements)
        continue;
      const ir::Shape &shape = product.type.shape;
      auto computedBefore = [&](const Node *x) { return x->isLeaf() || position.at(x) < p; };
      std::unordered_set<const Node *> chain = {&product};
      std::vector<const Node *> members, steppedOver;
      for (size_t i = p + 1; i < nodes.size(); ++i) {
        const Node &node = *nodes[i];
        if (readInPlace(node) || (node.is(OpKind::Const) && !pointers_.count(&node)))
          continue; // no code here
        if (node.is(OpKind::Update)) {
          if (!fusableUpdate(node, shape, chain))
            break;
          members.push_back(&node);
          continue;
        }
        if (epilogueMap(node, shape, chain, computedBefore)) {
          members.push_back(&node);
          chain.insert(&node);
          continue;
        }
        if (std::any_of(node.operands.begin(), node.operands.end(),
                        [&](const Node *x) { return chain.count(x) != 0; }))
          break;
        steppedOver.push_back(&node);
      }
      // A map that reads neither the product nor a member that does joins
      // only to feed one that does (the weight decay that the gradient's
      // sum reads); otherwise it stays a node of its own.
      std::unordered_set<const Node *> needed = {&product};
      for (const Node *node : members)
        if (std::any_of(node->operands.begin(), node->operands.end(),
                        [&](const Node *x) { return needed.count(x) != 0; }))
          needed.insert(node);
      for (auto it = members.rbegin(); it != members.rend(); ++it)
        if (needed.count(*it))
          for (const Node *operand : (*it)->operands)
            needed.insert(operand);
      std::vector<const Node *> joined;
      for (const Node *node : members)
        (needed.count(node) ? joined : steppedOver).push_back(node);
      members = std::move(joined);
      // The product's value must go to members only: it is never stored.
      const std::vector<const Node *> &readers = users_[&product];
      if (readers.empty() || std::any_of(readers.begin(), readers.end(), [&](const Node *user) {
            return std::find(members.begin(), members.end(), user) == members.end();
          }))
        continue;
      std::unique_ptr<FusionGroup> group = describeGroup(members, &product);
      // A sum of squares of a weight that the epilogue updates (sink-penalty
      // put it after the weight's last map, before its update) would read
      // the new weight: it is computed before the product instead.
      std::vector<const Node *> sumsBefore;
      std::erase_if(steppedOver, [&](const Node *node) {
        if (!sumCanGoBefore(*node, group->targets))
          return false;
        sumsBefore.push_back(node);
        return true;
      });
      if (!epilogueIsSafe(product, *group, steppedOver) ||
          epilogueBytes(product, *group) > kEpilogueBytes)
        continue;
      sumsBefore_[&product] = sumsBefore;
      sumsMoved_.insert(sumsBefore.begin(), sumsBefore.end());

      for (const Node *node : members)
        epilogueMembers_.insert(node);
      epilogueOf_[&product] = group.get();
      epilogues_.push_back(std::move(group));
    }
  }

  /// Whether `sum` is a sum of squares of one of `targets` (the weights an
  /// epilogue updates) that can be computed before the product instead, into
  /// a slot on the stack, and copied to its own bytes at its place (which
  /// may hold another value until then).
  bool sumCanGoBefore(const Node &sum, const std::vector<const Node *> &targets) const {
    if (!sum.is(OpKind::SumSq) ||
        std::find(targets.begin(), targets.end(), sum.operands[0]) == targets.end())
      return false;
    const ValueLayout &value = layout_.of(&sum);
    return !value.aliasOf && value.copyToBuffers.empty() && value.home.kind == Storage::Arena;
  }

  /// Lowers `sum` (of sumsBefore_) into a slot on the stack, which its own
  /// place copies to its bytes.
  void lowerSumEarly(const Node &sum) {
    BasicBlock &entry = kb_.function->getEntryBlock();
    Value *slot =
        IRBuilder<>(&entry, entry.begin()).CreateAlloca(kb_.f32, nullptr, sum.name + ".early");
    earlySums_[&sum] = slot;
    Value *home = std::exchange(pointers_[&sum], slot);
    lowerNode(sum);
    pointers_[&sum] = home;
  }

  /// The bytes of the tensors of the product's shape that an epilogue
  /// reads or writes (each storage once).
  int64_t epilogueBytes(const Node &product, const FusionGroup &group) {
    int64_t bytes = 0;
    for (const Node *node : distinctStorage(group))
      if (node->type.shape == product.type.shape)
        bytes += node->type.bytes();
    return bytes;
  }

  bool epilogueIsSafe(const Node &product, const FusionGroup &group,
                      const std::vector<const Node *> &steppedOver) {
    std::vector<Storage> written, read;
    for (const auto *list : {&group.stored, &group.targets})
      for (const Node *node : *list)
        written.push_back(layout_.of(node).home);
    for (const Node *node : group.inputs)
      read.push_back(layout_.of(node).home);
    // The product's operands are in use while tiles complete, and so is its
    // own storage (partial sums between k blocks), except that a member may
    // take exactly the product's bytes: a tile writes only its own elements,
    // after the last k block has read them.
    const Storage &sums = layout_.of(&product).home;
    std::vector<Storage> busy;
    for (const Node *operand : product.operands)
      busy.push_back(layout_.of(operand).home);
    for (const Node *node : steppedOver)
      for (const Storage &storage : storageTouchedBy(*node))
        busy.push_back(storage);
    for (size_t i = 0; i < written.size(); ++i) {
      if (overlap(written[i], sums) && !(written[i] == sums))
        return false;
      for (const Storage &other : busy)
        if (overlap(written[i], other))
          return false;
      for (size_t j = i + 1; j < written.size(); ++j)
        if (overlap(written[i], written[j]) && !(written[i] == written[j]))
          return false;
      for (size_t j = 0; j < read.size(); ++j)
        if (overlap(written[i], read[j]) &&
            !(written[i] == read[j] && group.inputs[j]->type.shape == product.type.shape))
          return false;
    }
    for (const Storage &storage : read)
      if (overlap(storage, sums))
        return false;
    return true;
  }

  /// What the code of an epilogue depends on: the row length, and each
  /// member's op, constant and operands (the product, a member, a constant,
  /// or a storage slot and its rank) and the slot it is stored to.  Two
  /// epilogues with one key are one function called with different
  /// pointers: the fashion model's two layers, forward and backward, each
  /// share one (48 M instructions of llc less).
  std::string epilogueKey(const Node &product, const FusionGroup &group,
                          const std::unordered_map<const Node *, size_t> &slot) {
    std::string key = fmt::format("n{}", product.type.shape[1]);
    std::unordered_map<const Node *, size_t> member;
    for (const Node *node : group.nodes) {
      key += fmt::format(";{}({})", node->mnemonic(), node->attrs.value);
      for (const Node *operand : node->operands) {
        if (operand == &product)
          key += " p";
        else if (auto it = member.find(operand); it != member.end())
          key += fmt::format(" m{}", it->second);
        else if (operand->is(OpKind::Const))
          key += fmt::format(" c{}", operand->attrs.value);
        else
          key += fmt::format(" s{}r{}", slot.at(operand), operand->type.rank());
      }
      if (std::find(group.stored.begin(), group.stored.end(), node) != group.stored.end())
        key += fmt::format(" ->s{}", slot.at(node));
      member[node] = member.size();
    }
    return key;
  }

  /// The function that runs `group` on a finished tile of `product`
  /// (MatMulEpilogue), and the storage pointers it gets: one per distinct
  /// storage, so that bytes an input shares with a stored member are one
  /// pointer, read at an element before it is written.  A member in the
  /// product's own bytes gets the product's pointer, which the product's
  /// code passes on as its C.
  MatMulEpilogue buildEpilogue(const Node &product, const FusionGroup &group) {
    MatMulEpilogue epilogue;
    const std::vector<const Node *> storage = distinctStorage(group);
    for (const Node *node : storage)
      epilogue.captures.push_back(layout_.of(node).home == layout_.of(&product).home
                                      ? pointerOf(&product)
                                      : pointerOf(node));
    std::unordered_map<const Node *, size_t> slot;
    for (const auto *list : {&group.stored, &group.inputs, &group.targets})
      for (const Node *node : *list)
        slot[node] = storageSlot(storage, node);
    std::string key = epilogueKey(product, group, slot);
    if (auto known = epilogueFunctions_.find(key); known != epilogueFunctions_.end()) {
      epilogue.function = known->second;
      return epilogue;
    }
    std::vector<Type *> params(epilogue.captures.size(), kb_.ptr);
    params.insert(params.end(), {kb_.ptr, kb_.i64, kb_.i64, kb_.i64, kb_.i64, kb_.i64});
    const std::string name = product.name + ".epilogue";
    Function *fn = Function::Create(FunctionType::get(b_.getVoidTy(), params, false),
                                    GlobalValue::InternalLinkage,
                                    kb_.function->getName() + "." + name, kb_.module);
    fn->addFnAttr(Attribute::NoUnwind);
    epilogue.function = fn;
    epilogueFunctions_[key] = fn;
    const size_t captures = epilogue.captures.size();
    kb_.buildFunction(fn, [&] {
      std::vector<Value *> bases;
      for (size_t i = 0; i < captures; ++i) {
        fn->getArg(i)->setName(epilogue.captures[i]->getName());
        bases.push_back(fn->getArg(i));
      }
      Value *values = fn->getArg(captures), *stride = fn->getArg(captures + 1),
            *row0 = fn->getArg(captures + 2), *rows = fn->getArg(captures + 3),
            *col = fn->getArg(captures + 4), *count = fn->getArg(captures + 5);
      values->setName("tile");
      stride->setName("stride");
      row0->setName("row");
      rows->setName("rows");
      col->setName("col");
      count->setName("count");
      bases.push_back(values);
      kb_.beginNode(bases, name);
      const int64_t n = product.type.shape[1];
      // Every access in the column loop is a pointer plus the column: the
      // tile and the storages of C's shape through pointers to the row,
      // bumped once a row, a bias through one to the tile's first column.
      // That is the form loop strength reduction would give these loops,
      // and the JIT leaves that pass off (Pipeline.cpp).
      // (Slots in their own order, never the map's: the IR, and with it the
      // kernel cache's key, must not depend on where nodes were allocated.)
      std::vector<bool> rowWise(captures, false), columnWise(captures, false);
      for (const auto &[node, s] : slot) {
        if (node->type.rank() == 2)
          rowWise[s] = true;
        else if (node->type.rank() == 1)
          columnWise[s] = true;
      }
      std::vector<Value *> columnBase(captures, nullptr);
      for (size_t s = 0; s < captures; ++s)
        if (columnWise[s]) {
          columnBase[s] = b_.CreateGEP(kb_.f32, bases[s], col, bases[s]->getName() + ".col");
          kb_.derive(columnBase[s], bases[s]);
        }
      Value *firstElement = kb_.offset(col, row0, n);
      SmallVector<Value *, 8> rowStarts;
      for (size_t s = 0; s < captures; ++s)
        if (rowWise[s])
          rowStarts.push_back(
              b_.CreateGEP(kb_.f32, bases[s], firstElement, bases[s]->getName() + ".row"));
      rowStarts.push_back(values);
      kb_.loopRange(kb_.index(0), rows, 1, name + ".r", rowStarts,
                    [&](Value *, ArrayRef<Value *> current) {
                      std::vector<Value *> rowBase(captures, nullptr);
                      size_t next = 0;
                      for (size_t s = 0; s < captures; ++s)
                        if (rowWise[s]) {
                          rowBase[s] = current[next++];
                          kb_.derive(rowBase[s], bases[s]);
                        }
                      Value *tileRow = current[next];
                      kb_.derive(tileRow, values);
                      kb_.loopRange(kb_.index(0), count, 1, name + ".t", [&](Value *t) {
                        emitGroupElement(
                            group,
                            [&](const Node *operand) {
                              if (operand == &product)
                                return kb_.load(tileRow, t, operand->name + ".v");
                              const size_t s = slot.at(operand);
                              switch (operand->type.rank()) {
                              case 0:
                                return kb_.load(bases[s], kb_.index(0), operand->name + ".v");
                              case 1:
                                return kb_.load(columnBase[s], t, operand->name + ".v");
                              default:
                                return kb_.load(rowBase[s], t, operand->name + ".v");
                              }
                            },
                            [&](const Node *node) { return rowBase[slot.at(node)]; }, t);
                      });
                      SmallVector<Value *, 2> bumped;
                      for (size_t s = 0; s < captures; ++s)
                        if (rowWise[s])
                          bumped.push_back(b_.CreateGEP(kb_.f32, rowBase[s], kb_.index(n)));
                      bumped.push_back(b_.CreateGEP(kb_.f32, tileRow, stride));
                      return bumped;
                    });
      b_.CreateRetVoid();
    });
    return epilogue;
  }

  /// A mask is drawn by the runtime (runtime/DropoutMask.h): its code does
  /// not depend on the model, so it is compiled with gradc rather than on
  /// every JIT.  The constants are the interpreter's: p compared as f32, the
  /// kept value 1/(1-p) computed in double and rounded once.
  void lowerDropoutMask(const Node &node, Value *out) {
    const ir::Attrs &attrs = node.attrs;
    FunctionCallee drawMask = kb_.module.getOrInsertFunction(
        "gradc_dropout_mask",
        FunctionType::get(b_.getVoidTy(), {kb_.ptr, kb_.i32, kb_.f32, kb_.f32, kb_.i64, kb_.ptr},
                          false));
    b_.CreateCall(drawMask,
                  {kb_.function->getArg(0), b_.getInt32(static_cast<uint32_t>(attrs.stream)),
                   kb_.f32Const(static_cast<float>(attrs.value)),
                   kb_.f32Const(static_cast<float>(1.0 / (1.0 - attrs.value))),
                   kb_.index(node.type.numel()), out});
  }

  void lowerNode(const Node &node) {
    const std::string &name = node.name;
    if (node.isLeaf()) {
      // Leaves are read in place; a leaf that is also a result is copied
      // out before any update can change it.
      const ValueLayout &value = layout_.of(&node);
      if (!value.copyToBuffers.empty()) {
        std::vector<Value *> bases = {pointerOf(&node)};
        for (int64_t slot : value.copyToBuffers)
          bases.push_back(slots_[slot]);
        beginNode(node, name, bases);
        for (int64_t slot : value.copyToBuffers)
          kb_.copy(slots_[slot], pointerOf(&node), node.type.bytes());
      }
      return;
    }
    if (auto group = groupOf_.find(&node); group != groupOf_.end()) {
      if (group->second->nodes.front() == &node)
        lowerFusedGroup(*group->second);
      return; // computed (or, an update, written) in its group's loop
    }
    if (epilogueMembers_.count(&node))
      return; // computed (or written) in its product's tiles
    if (node.is(OpKind::Update)) {
      lowerUpdate(node);
      return;
    }
    if (node.is(OpKind::Const) && !pointers_.count(&node))
      return; // folded into its users
    std::vector<Value *> bases = basesOf(node);
    for (int64_t slot : layout_.of(&node).copyToBuffers)
      bases.push_back(slots_[slot]);
    beginNode(node, name, bases);
    Value *out = pointerOf(&node);
    const ir::Shape &shape = node.type.shape;
    const ir::Attrs &attrs = node.attrs;
    std::string v = name + ".v";

    switch (node.kind) {
    case OpKind::Input:
    case OpKind::Target:
    case OpKind::Param:
    case OpKind::State:
    case OpKind::Hyper:
    case OpKind::Update:
      break; // handled above
    case OpKind::Const: {
      Constant *c = kb_.f32Const(attrs.value);
      emitStridedMap(kb_, name, shape, out, rowMajorStrides(shape), {},
                     [&](ArrayRef<Value *>) { return c; });
      break;
    }
    case OpKind::DropoutMask:
      lowerDropoutMask(node, out);
      break;
    case OpKind::Neg:
    case OpKind::Exp:
    case OpKind::Log:
    case OpKind::Sqrt:
    case OpKind::Relu:
    case OpKind::Sigmoid:
    case OpKind::Tanh:
    case OpKind::Step:
    case OpKind::Scale:
    case OpKind::Pow:
    case OpKind::Add:
    case OpKind::Sub:
    case OpKind::Mul:
    case OpKind::Div:
    case OpKind::Maximum:
    case OpKind::Minimum: {
      std::vector<StridedInput> inputs;
      for (const Node *operand : node.operands)
        inputs.push_back(inputFor(operand, shape));
      stridedMap(node, inputs, [&](ArrayRef<Value *> in) { return mapValue(node, in); });
      break;
    }
    case OpKind::Sum:
    case OpKind::Mean: {
      const Node *x = node.operands[0];
      int64_t count = x->type.numel() / node.type.numel();
      Constant *divisor = kb_.f32Const(static_cast<double>(count));
      auto mean = [&](Value *sum) { return b_.CreateFDiv(sum, divisor, v); };
      reduce(
          name, x->type, attrs.axes, {{pointerOf(x), x->name}}, out,
          [](ArrayRef<Value *> in) { return in[0]; },
          node.is(OpKind::Mean) && count != 1 ? function_ref<Value *(Value *)>(mean) : nullptr);
      break;
    }
    case OpKind::Max: {
      const Node *x = node.operands[0];
      reduce(
          name, x->type, attrs.axes, {{pointerOf(x), x->name}}, out,
          [](ArrayRef<Value *> in) { return in[0]; }, nullptr, Combine::Max);
      break;
    }
    case OpKind::SumSq: {
      const Node *x = node.operands[0];
      reduce(
          name, x->type, allAxes(x->type), {{pointerOf(x), x->name}}, out,
          [&](ArrayRef<Value *> in) { return b_.CreateFMul(in[0], in[0]); }, nullptr);
      break;
    }
    case OpKind::SquaredError: {
      const Node *o = node.operands[0], *y = node.operands[1];
      auto scale = [&](Value *sum) { return b_.CreateFMul(sum, kb_.f32Const(attrs.value), v); };
      reduce(
          name, o->type, allAxes(o->type), {{pointerOf(o), o->name}, {pointerOf(y), y->name}}, out,
          [&](ArrayRef<Value *> in) {
            Value *d = b_.CreateFSub(in[0], in[1], name + ".diff");
            return b_.CreateFMul(d, d);
          },
          scale);
      break;
    }
    case OpKind::Softmax:
    case OpKind::LogSoftmax:
      emitSoftmaxRows(kb_, name, rowsOf(node.operands[0]), out, node.is(OpKind::LogSoftmax));
      break;
    case OpKind::CrossEntropy: {
      const Node *labels = node.operands[1];
      emitCrossEntropy(kb_, name, rowsOf(node.operands[0]), pointerOf(labels), labels->name, out);
      break;
    }
    case OpKind::BceLogits: {
      // mean of max(x, 0) - x t + log(1 + exp(-|x|)).
      const Node *x = node.operands[0], *t = node.operands[1];
      Constant *zero = kb_.f32Const(0.0);
      auto mean = [&](Value *sum) {
        return b_.CreateFDiv(sum, kb_.f32Const(static_cast<double>(x->type.numel())), v);
      };
      reduce(
          name, x->type, allAxes(x->type), {{pointerOf(x), x->name}, {pointerOf(t), t->name}}, out,
          [&](ArrayRef<Value *> in) {
            Value *positive = b_.CreateSelect(b_.CreateFCmpOGT(in[0], zero), in[0], zero);
            Value *linear = b_.CreateFSub(positive, b_.CreateFMul(in[0], in[1]));
            Value *magnitude = b_.CreateUnaryIntrinsic(Intrinsic::fabs, in[0]);
            Value *e = emitExp(b_, b_.CreateFNeg(magnitude), name + ".e");
            return b_.CreateFAdd(linear, emitLog1p(b_, e, name + ".softplus"), name + ".term");
          },
          mean);
      break;
    }
    case OpKind::OneHot: {
      const Node *labels = node.operands[0];
      emitOneHot(kb_, name, pointerOf(labels), labels->name, labels->type.numel(), shape.back(),
                 out);
      break;
    }
    case OpKind::Broadcast: {
      // The operand's strides along the kept dimensions, 0 along the new ones.
      const Node *x = node.operands[0];
      StridedInput input = inputFor(x, shape);
      if (!input.splat) {
        std::vector<int64_t> inStrides = rowMajorStrides(x->type.shape);
        input.strides.assign(shape.size(), 0);
        for (int64_t d = 0, k = 0; d < node.type.rank(); ++d)
          if (std::find(attrs.axes.begin(), attrs.axes.end(), d) == attrs.axes.end())
            input.strides[d] = inStrides[k++];
      }
      emitStridedMap(kb_, name, shape, out, rowMajorStrides(shape), {input},
                     [](ArrayRef<Value *> in) { return in[0]; });
      break;
    }
    case OpKind::Reshape:
    case OpKind::Dropout:
      // Dropout only reaches codegen in graphs the dropout pass has not
      // seen; as in the interpreter it is then the identity.  Both are an
      // alias (no code) when the layout allows it, else a copy.
      copyValue(node);
      break;
    case OpKind::Transpose: {
      const Node *x = node.operands[0];
      int64_t cols = x->type.shape[1];
      emitStridedMap(kb_, name, shape, out, rowMajorStrides(shape),
                     {{pointerOf(x), {1, cols}, nullptr, x->name}},
                     [](ArrayRef<Value *> in) { return in[0]; });
      break;
    }
    case OpKind::MatMul: {
      const Node *a = node.operands[0], *bNode = node.operands[1];
      if (auto epilogue = epilogueOf_.find(&node); epilogue != epilogueOf_.end()) {
        MatMulEpilogue tiles = buildEpilogue(node, *epilogue->second);
        emitMatMul(kb_, name, matMulGeometry(node), out, pointerOf(a), pointerOf(bNode), &tiles);
      } else {
        emitMatMul(kb_, name, matMulGeometry(node), out, pointerOf(a), pointerOf(bNode));
      }
      break;
    }
    case OpKind::Outer: {
      StridedInput a = inputFor(node.operands[0], {shape[0]});
      StridedInput c = inputFor(node.operands[1], {shape[1]});
      if (!a.splat)
        a.strides = {1, 0};
      if (!c.splat)
        c.strides = {0, 1};
      emitStridedMap(kb_, name, shape, out, rowMajorStrides(shape), {a, c},
                     [&](ArrayRef<Value *> in) { return b_.CreateFMul(in[0], in[1], v); });
      break;
    }
    }
    for (int64_t slot : layout_.of(&node).copyToBuffers)
      kb_.copy(slots_[slot], out, node.type.bytes());
  }

  void lowerUpdate(const Node &node) {
    const UpdateLayout &update = layout_.updates.at(&node);
    const Node *target = node.operands[0], *value = node.operands[1];
    std::string blockName = "update." + target->name;
    switch (update.kind) {
    case UpdateLayout::Skip:
      return;
    case UpdateLayout::InPlace:
      beginNode(node, blockName, {pointerOf(target), pointerOf(value)});
      copyValueOf(target->type, blockName, pointerOf(target), pointerOf(value));
      return;
    case UpdateLayout::AtEnd:
      deferred_.push_back({&node, pointerOf(value)});
      return;
    case UpdateLayout::StagedEnd: {
      Value *staged = staging_.at(&node);
      beginNode(node, blockName + ".stage", {staged, pointerOf(value)});
      kb_.copy(staged, pointerOf(value), target->type.bytes());
      deferred_.push_back({&node, staged});
      return;
    }
    }
  }

  /// Updates that had to wait, in program order, after every other node.
  void emitDeferredUpdates() {
    for (auto &[node, source] : deferred_) {
      const Node *target = node->operands[0];
      beginNode(*node, "update." + target->name, {pointerOf(target), source});
      copyValueOf(target->type, "update." + target->name, pointerOf(target), source);
    }
  }

  const ir::Graph &graph_;
  const KernelLayout &layout_;
  KernelBuilder kb_;
  IRBuilder<> &b_;
  Value *buffers_ = nullptr, *arena_ = nullptr, *hypers_ = nullptr;
  std::vector<Value *> slots_;
  std::unordered_map<const Node *, Value *> pointers_, staging_;
  std::unordered_map<const Node *, std::vector<const Node *>> users_;
  std::vector<std::unique_ptr<FusionGroup>> groups_;
  std::unordered_map<const Node *, const FusionGroup *> groupOf_;
  /// Epilogues of products (the group's inputs leave out the product).
  std::vector<std::unique_ptr<FusionGroup>> epilogues_;
  std::unordered_map<const Node *, const FusionGroup *> epilogueOf_;
  std::unordered_set<const Node *> epilogueMembers_;
  /// Sums of squares computed just before a product instead of at their
  /// place, since the product's epilogue updates the weight they read; the
  /// stack slot each is computed into (lowerSumEarly).
  std::unordered_map<const Node *, std::vector<const Node *>> sumsBefore_;
  std::unordered_set<const Node *> sumsMoved_;
  std::unordered_map<const Node *, Value *> earlySums_;
  std::map<std::string, Function *> epilogueFunctions_; ///< by epilogueKey
  std::vector<std::pair<BasicBlock *, const Node *>> nodeBlocks_;
  std::vector<std::pair<const Node *, Value *>> deferred_;
};

/// Prints the `!gradc.node` text as a comment line above its instruction.
class NodeComments final : public AssemblyAnnotationWriter {
public:
  explicit NodeComments(unsigned kind) : kind_(kind) {}
  void emitInstructionAnnot(const Instruction *inst, formatted_raw_ostream &out) override {
    if (MDNode *md = inst->getMetadata(kind_))
      if (auto *text = dyn_cast<MDString>(md->getOperand(0)))
        out << "  ; " << text->getString() << "\n";
  }

private:
  unsigned kind_;
};

} // namespace

bool lowerKernel(const ir::Graph &graph, const KernelLayout &layout, const std::string &symbol,
                 Module &module, std::string &error) {
  LLVMContext &context = module.getContext();
  FunctionType *type =
      FunctionType::get(Type::getVoidTy(context), {PointerType::getUnqual(context)}, false);
  Function *fn = Function::Create(type, GlobalValue::ExternalLinkage, symbol, module);
  fn->addFnAttr(Attribute::NoUnwind);
  fn->addParamAttr(0, Attribute::NoAlias);
  fn->addParamAttr(0, Attribute::NoCapture);
  fn->addParamAttr(0, Attribute::ReadOnly);
  fn->addParamAttr(0, Attribute::NonNull);
  fn->addParamAttr(0, Attribute::NoUndef);
  fn->addDereferenceableParamAttr(0, sizeof(gradc_step_context));
  if (!GraphLowering(graph, layout, fn).run(error)) {
    fn->eraseFromParent();
    return false;
  }
  return true;
}

void printModule(const Module &module, raw_ostream &out) {
  NodeComments comments(module.getContext().getMDKindID(kNodeMetadata));
  module.print(out, &comments);
}

} // namespace gradc::codegen
