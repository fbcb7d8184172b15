//===- codegen/KernelBuilder.h - IRBuilder with loops and alias scopes -*- C++ -*-===//
//
// What every lowering of an op needs besides an IRBuilder:
//   - counted loops with constant trip counts (shapes are static), named
//     after the node so the printed IR maps back to the graph;
//   - the facts that make those loops vectorise without runtime checks: the
//     memory plan gives every value live at one node its own bytes, so the
//     loads and stores of one node get scoped-noalias metadata saying that
//     its operands and its result do not overlap.
//
// Private to codegen/, like every header here but Codegen.h, which keeps
// LLVM out of its users' includes.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <llvm/ADT/DenseMap.h>
#include <llvm/ADT/SmallVector.h>
#include <llvm/ADT/StringMap.h>
#include <llvm/IR/IRBuilder.h>

#include <string>

namespace gradc::codegen {

class KernelBuilder {
public:
  /// Builds into `function`, which must already exist.
  explicit KernelBuilder(llvm::Function *function);

  llvm::LLVMContext &context;
  llvm::Module &module;
  llvm::Function *function;
  llvm::IRBuilder<> b;
  llvm::Type *f32, *i32, *i64, *ptr;

  llvm::ConstantInt *index(int64_t value) { return b.getInt64(value); }
  /// An f32 constant (a splat when `like` is a vector type).
  llvm::Constant *f32Const(double value, llvm::Type *like = nullptr);

  // --- Memory of the node being lowered. ---------------------------------

  /// Starts the accesses of one node.  `bases` are the storage pointers the
  /// node reads and writes; distinct pointers are distinct, non-overlapping
  /// values (the memory plan's guarantee), and accesses through them get
  /// alias-scope metadata that says so.
  void beginNode(llvm::ArrayRef<llvm::Value *> bases, llvm::StringRef name);
  /// Loads f32 element `index` of the storage at `base`.
  llvm::Value *load(llvm::Value *base, llvm::Value *index, const llvm::Twine &name = "");
  void store(llvm::Value *value, llvm::Value *base, llvm::Value *index);
  /// Loads i32 element `index` (a class label) of the storage at `base`.
  llvm::Value *loadI32(llvm::Value *base, llvm::Value *index, const llvm::Twine &name = "");
  /// Copies `bytes` bytes (memcpy; never overlapping).
  void copy(llvm::Value *dst, llvm::Value *src, int64_t bytes);
  /// Sets `bytes` bytes to zero (which is 0.0f).
  void zero(llvm::Value *dst, int64_t bytes);

  // --- Loops. -------------------------------------------------------------

  using CarriedBody = llvm::function_ref<llvm::SmallVector<llvm::Value *, 2>(
      llvm::Value *iv, llvm::ArrayRef<llvm::Value *> carried)>;
  /// for (iv = 0; iv < tripCount; ++iv) with loop-carried values (e.g. a
  /// reduction's accumulator): `body` gets their current values and returns
  /// the next ones; the result is their values after the loop.  The
  /// induction variable is named `name`, the loop's blocks `name`.loop and
  /// `name`.end.  A trip count of 1 emits the body once, without a loop.
  /// With `vectorize` false, the loop vectoriser leaves the loop alone
  /// (for a scatter, which it would widen into scalar stores and more).
  llvm::SmallVector<llvm::Value *, 2> loop(int64_t tripCount, const std::string &name,
                                           llvm::ArrayRef<llvm::Value *> init, CarriedBody body,
                                           bool vectorize = true);
  void loop(int64_t tripCount, const std::string &name,
            llvm::function_ref<void(llvm::Value *iv)> body, bool vectorize = true);

  /// A loop with carried values and no counter (its body gets a null iv):
  /// it runs again while `more`(the next values) is true, and at least
  /// once.  For a loop whose end is best tested on a pointer it bumps.
  llvm::SmallVector<llvm::Value *, 2>
  loopWhile(const std::string &name, llvm::ArrayRef<llvm::Value *> init, CarriedBody body,
            llvm::function_ref<llvm::Value *(llvm::ArrayRef<llvm::Value *> next)> more);

  /// for (iv = begin; iv < end; iv += step) with bounds known only at run
  /// time (a range of a parallel loop): top-tested, so it may run 0 times.
  void loopRange(llvm::Value *begin, llvm::Value *end, int64_t step, const std::string &name,
                 llvm::function_ref<void(llvm::Value *iv)> body);
  /// The same with loop-carried values, as loop() has; the result is their
  /// values when the loop ends (`init` when it runs 0 times).
  llvm::SmallVector<llvm::Value *, 2> loopRange(llvm::Value *begin, llvm::Value *end, int64_t step,
                                                const std::string &name,
                                                llvm::ArrayRef<llvm::Value *> init,
                                                CarriedBody body);

  /// Emits `then` under `condition`, with nothing on the other side.
  void ifThen(llvm::Value *condition, const std::string &name, llvm::function_ref<void()> then);

  /// base + iv * stride, as an i64 element index; stride 0 gives base.
  llvm::Value *offset(llvm::Value *base, llvm::Value *iv, int64_t stride);

  // --- Parallel loops. ----------------------------------------------------

  using TaskBody = llvm::function_ref<void(llvm::ArrayRef<llvm::Value *> captured,
                                           llvm::Value *begin, llvm::Value *end)>;
  /// Runs tasks [0, tasks) on the step's thread pool: `body` is emitted
  /// through this builder into a new function `name`(closure, begin, end),
  /// which sees `captures` (pointers of the kernel) as `captured`, and the
  /// kernel calls gradc_parallel_for(ctx->pool, ...).  Must be called while
  /// building the kernel itself (its first argument is the step context).
  /// Calls with the same non-empty `shareKey` share one function (the
  /// first call's body), named after the key: for tasks whose body depends
  /// on nothing but the key and the captures, like the dropout masks of
  /// one size and p.
  void parallelFor(int64_t tasks, const std::string &name, llvm::ArrayRef<llvm::Value *> captures,
                   TaskBody body, const std::string &shareKey = "");

  /// Builds the body of `other`, a new function of the kernel's module,
  /// through this builder: `body` starts at its (new) entry block, with no
  /// node begun; afterwards the builder is back where it was.
  void buildFunction(llvm::Function *other, llvm::function_ref<void()> body);

  /// Gives `inst`, an access through `base`, the alias scopes of the
  /// current node (for accesses built without load() and store()).
  void tagAccess(llvm::Instruction *inst, llvm::Value *base) { tag(inst, base); }

  /// `derived` (a GEP from `base`, or a loop-carried pointer that starts
  /// there) points into the same storage: accesses through it get `base`'s
  /// alias scopes, until the next beginNode.
  void derive(llvm::Value *derived, llvm::Value *base);

private:
  struct AccessTags {
    llvm::MDNode *scope = nullptr, *noalias = nullptr;
  };
  void tag(llvm::Instruction *inst, llvm::Value *base);
  /// The kernel's call of gradc_parallel_for(ctx->pool, tasks, outlined,
  /// closure of `distinct`).
  void callOnPool(int64_t tasks, const std::string &name, llvm::Function *outlined,
                  llvm::ArrayType *closureType, llvm::ArrayRef<llvm::Value *> distinct);

  llvm::DenseMap<llvm::Value *, AccessTags> tags_;
  llvm::StringMap<llvm::Function *> sharedTasks_; ///< parallelFor's shareKey -> body
};

} // namespace gradc::codegen
