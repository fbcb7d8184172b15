//===- codegen/KernelBuilder.cpp - IRBuilder with loops and alias scopes --===//
#include "codegen/KernelBuilder.h"

#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>

namespace gradc::codegen {

using namespace llvm;

KernelBuilder::KernelBuilder(Function *fn)
    : context(fn->getContext()), module(*fn->getParent()), function(fn), b(fn->getContext()),
      f32(Type::getFloatTy(context)), i32(Type::getInt32Ty(context)),
      i64(Type::getInt64Ty(context)), ptr(PointerType::getUnqual(context)) {
  // Reassociation lets reductions vectorise and contraction forms FMAs.  No
  // nnan/ninf: the NaN guard of the training driver relies on NaN reaching
  // the loss.
  FastMathFlags flags;
  flags.setAllowReassoc();
  flags.setAllowContract();
  b.setFastMathFlags(flags);
}

Constant *KernelBuilder::f32Const(double value, Type *like) {
  return ConstantFP::get(like ? like : f32, static_cast<float>(value));
}

void KernelBuilder::beginNode(ArrayRef<Value *> bases, StringRef name) {
  tags_.clear();
  SmallVector<Value *, 4> distinct;
  for (Value *base : bases)
    if (base && std::find(distinct.begin(), distinct.end(), base) == distinct.end())
      distinct.push_back(base);
  if (distinct.size() < 2)
    return; // nothing to tell apart
  MDBuilder mdb(context);
  MDNode *domain = mdb.createAnonymousAliasScopeDomain(name);
  SmallVector<Metadata *, 4> scopes;
  for (Value *base : distinct)
    scopes.push_back(mdb.createAnonymousAliasScope(domain, base->getName()));
  for (size_t i = 0; i < distinct.size(); ++i) {
    SmallVector<Metadata *, 4> others;
    for (size_t j = 0; j < distinct.size(); ++j)
      if (j != i)
        others.push_back(scopes[j]);
    tags_[distinct[i]] = {MDNode::get(context, scopes[i]), MDNode::get(context, others)};
  }
}

void KernelBuilder::derive(Value *derived, Value *base) {
  if (auto it = tags_.find(base); it != tags_.end()) {
    AccessTags tags = it->second; // a copy: inserting may move the map's entries
    tags_[derived] = tags;
  }
}

void KernelBuilder::tag(Instruction *inst, Value *base) {
  auto it = tags_.find(base);
  if (it == tags_.end())
    return;
  inst->setMetadata(LLVMContext::MD_alias_scope, it->second.scope);
  inst->setMetadata(LLVMContext::MD_noalias, it->second.noalias);
}

Value *KernelBuilder::load(Value *base, Value *idx, const Twine &name) {
  Value *address = b.CreateInBoundsGEP(f32, base, idx);
  LoadInst *load = b.CreateAlignedLoad(f32, address, Align(4), name);
  tag(load, base);
  return load;
}

Value *KernelBuilder::loadI32(Value *base, Value *idx, const Twine &name) {
  Value *address = b.CreateInBoundsGEP(i32, base, idx);
  LoadInst *load = b.CreateAlignedLoad(i32, address, Align(4), name);
  tag(load, base);
  return load;
}

void KernelBuilder::store(Value *value, Value *base, Value *idx) {
  Value *address = b.CreateInBoundsGEP(f32, base, idx);
  StoreInst *store = b.CreateAlignedStore(value, address, Align(4));
  tag(store, base);
}

void KernelBuilder::copy(Value *dst, Value *src, int64_t bytes) {
  auto dstTags = tags_.lookup(dst), srcTags = tags_.lookup(src);
  // A memcpy both reads and writes: its scopes are those of both sides.
  MDNode *scope =
      dstTags.scope && srcTags.scope ? MDNode::concatenate(dstTags.scope, srcTags.scope) : nullptr;
  b.CreateMemCpy(dst, Align(4), src, Align(4), bytes, /*isVolatile=*/false, /*TBAATag=*/nullptr,
                 /*TBAAStructTag=*/nullptr, scope, nullptr);
}

void KernelBuilder::zero(Value *dst, int64_t bytes) {
  auto tags = tags_.lookup(dst);
  b.CreateMemSet(dst, b.getInt8(0), bytes, Align(4), /*isVolatile=*/false, /*TBAATag=*/nullptr,
                 tags.scope, tags.noalias);
}

Value *KernelBuilder::offset(Value *base, Value *iv, int64_t stride) {
  if (auto *c = dyn_cast<ConstantInt>(iv); stride == 0 || (c && c->isZero()))
    return base;
  Value *scaled = stride == 1 ? iv : b.CreateMul(iv, index(stride), "", true, true);
  if (auto *c = dyn_cast<ConstantInt>(base); c && c->isZero())
    return scaled;
  return b.CreateAdd(base, scaled, "", true, true);
}

namespace {

/// The phis of a loop's carried values, at the builder's insertion point
/// in its header: one per value in `init`, entering from `pre`.
SmallVector<PHINode *, 2> carriedPhis(IRBuilder<> &b, BasicBlock *pre, const std::string &name,
                                      ArrayRef<Value *> init) {
  SmallVector<PHINode *, 2> phis;
  for (Value *value : init) {
    phis.push_back(b.CreatePHI(value->getType(), 2, name + ".acc"));
    phis.back()->addIncoming(value, pre);
  }
  return phis;
}

/// The back edge from `latch`: the carried values' phis take `next`.
void closeLoop(BasicBlock *latch, ArrayRef<PHINode *> phis, ArrayRef<Value *> next) {
  for (size_t i = 0; i < phis.size(); ++i)
    phis[i]->addIncoming(next[i], latch);
}

/// The vector width for a loop of `tripCount` iterations that LLVM's
/// vectoriser would otherwise widen by masking (0: leave it to LLVM).
/// Below 16 iterations (its TinyTripCountVectorThreshold) it does not
/// leave the last iterations to a scalar loop: it widens to 8 lanes and
/// masks the loads and stores of the lanes past the end, with a compare
/// of eight 64-bit indices for every vector.  The fashion model has eight
/// such loops along its 10 classes (softmax, loss, the last bias), and
/// they were a third of the code generator's work on the step's own
/// function (151 -> 100 M instructions of llc with width 2,
/// bench/compile_cost.sh --per-function).  The widest
/// power of two that divides the trip count needs no mask; the steps ran
/// 0.05% more instructions (callgrind, two epochs of 1,000 images).  An
/// odd trip count keeps LLVM's masked loop: a scalar one would be slower.
int64_t tinyLoopWidth(int64_t tripCount) {
  constexpr int64_t kTinyTripCount = 16;
  if (tripCount >= kTinyTripCount || tripCount % 2 != 0 || tripCount % 8 == 0)
    return 0;
  return tripCount & -tripCount; // its lowest set bit
}

/// Whether a width hint can take on this loop: an innermost loop of one
/// block of scalar code without calls, as the elementwise lowering emits.
/// (Vector code, the products' own, cannot be widened again, and a hint the
/// vectoriser cannot follow is reported as a failure.)
bool wideningHelps(BasicBlock *header, BasicBlock *latch) {
  if (header != latch)
    return false;
  for (Instruction &inst : *header) {
    if (inst.getType()->isVectorTy())
      return false;
    if (auto *call = dyn_cast<CallInst>(&inst); call && !isa<IntrinsicInst>(call))
      return false;
  }
  return true;
}

} // namespace

SmallVector<Value *, 2> KernelBuilder::loop(int64_t tripCount, const std::string &name,
                                            ArrayRef<Value *> init, CarriedBody body,
                                            bool vectorize) {
  if (tripCount == 1)
    return body(index(0), init);
  // Shapes have positive dimensions, so the body runs at least once: a
  // bottom-tested loop, the form LLVM's loop passes turn every loop into.
  BasicBlock *pre = b.GetInsertBlock();
  BasicBlock *header = BasicBlock::Create(context, name + ".loop", function);
  b.CreateBr(header);
  b.SetInsertPoint(header);
  PHINode *iv = b.CreatePHI(i64, 2, name);
  iv->addIncoming(index(0), pre);
  SmallVector<PHINode *, 2> phis = carriedPhis(b, pre, name, init);
  SmallVector<Value *, 2> next = body(iv, SmallVector<Value *, 2>(phis.begin(), phis.end()));
  Value *ivNext = b.CreateAdd(iv, index(1), name + ".next", true, true);
  Value *more = b.CreateICmpULT(ivNext, index(tripCount), name + ".more");
  BasicBlock *exit = BasicBlock::Create(context, name + ".end", function);
  iv->addIncoming(ivNext, b.GetInsertBlock());
  closeLoop(b.GetInsertBlock(), phis, next);
  BranchInst *latch = b.CreateCondBr(more, header, exit);
  // A loop ID (distinct, naming itself) with one of the vectoriser's hints.
  auto hint = [&](const char *key, Constant *value) {
    Metadata *hintOperands[] = {MDString::get(context, key), ConstantAsMetadata::get(value)};
    Metadata *operands[] = {nullptr, MDNode::get(context, hintOperands)};
    MDNode *id = MDNode::getDistinct(context, operands);
    id->replaceOperandWith(0, id);
    latch->setMetadata(LLVMContext::MD_loop, id);
  };
  if (!vectorize)
    hint("llvm.loop.vectorize.enable", b.getFalse());
  else if (int64_t width = tinyLoopWidth(tripCount);
           width > 0 && wideningHelps(header, latch->getParent()))
    hint("llvm.loop.vectorize.width", b.getInt32(static_cast<uint32_t>(width)));
  b.SetInsertPoint(exit);
  return next;
}

void KernelBuilder::loop(int64_t tripCount, const std::string &name,
                         function_ref<void(Value *iv)> body, bool vectorize) {
  loop(
      tripCount, name, {},
      [&](Value *iv, ArrayRef<Value *>) {
        body(iv);
        return SmallVector<Value *, 2>{};
      },
      vectorize);
}

void KernelBuilder::parallelFor(int64_t tasks, const std::string &name, ArrayRef<Value *> captures,
                                TaskBody body, const std::string &shareKey) {
  SmallVector<Value *, 8> distinct;
  for (Value *value : captures)
    if (std::find(distinct.begin(), distinct.end(), value) == distinct.end())
      distinct.push_back(value);
  Function *kernel = function;
  ArrayType *closureType = ArrayType::get(ptr, std::max<size_t>(distinct.size(), 1));
  if (auto known = sharedTasks_.find(shareKey); !shareKey.empty() && known != sharedTasks_.end()) {
    callOnPool(tasks, name, known->second, closureType, distinct);
    return;
  }
  Function *outlined = Function::Create(
      FunctionType::get(b.getVoidTy(), {ptr, i64, i64}, false), GlobalValue::InternalLinkage,
      kernel->getName() + "." + (shareKey.empty() ? name : shareKey), module);
  outlined->addFnAttr(Attribute::NoUnwind);
  outlined->getArg(0)->setName("closure");
  outlined->getArg(1)->setName("begin");
  outlined->getArg(2)->setName("end");
  if (!shareKey.empty())
    sharedTasks_[shareKey] = outlined;

  // The body, built by this same builder pointed at the new function.
  buildFunction(outlined, [&] {
    SmallVector<Value *, 8> loaded;
    for (size_t i = 0; i < distinct.size(); ++i) {
      LoadInst *pointer =
          b.CreateLoad(ptr, b.CreateConstInBoundsGEP2_64(closureType, outlined->getArg(0), 0, i),
                       distinct[i]->getName());
      pointer->setMetadata(LLVMContext::MD_nonnull, MDNode::get(context, {}));
      loaded.push_back(pointer);
    }
    beginNode(loaded, outlined->getName());
    SmallVector<Value *, 8> captured;
    for (Value *value : captures)
      captured.push_back(
          loaded[std::find(distinct.begin(), distinct.end(), value) - distinct.begin()]);
    body(captured, outlined->getArg(1), outlined->getArg(2));
    b.CreateRetVoid();
  });
  callOnPool(tasks, name, outlined, closureType, distinct);
}

void KernelBuilder::buildFunction(Function *other, function_ref<void()> body) {
  IRBuilderBase::InsertPoint outerPoint = b.saveIP();
  DenseMap<Value *, AccessTags> outerTags = std::move(tags_);
  tags_.clear();
  Function *outer = function;
  function = other;
  b.SetInsertPoint(BasicBlock::Create(context, "entry", other));
  body();
  function = outer;
  tags_ = std::move(outerTags);
  b.restoreIP(outerPoint);
}

void KernelBuilder::callOnPool(int64_t tasks, const std::string &name, Function *outlined,
                               ArrayType *closureType, ArrayRef<Value *> distinct) {
  // The closure lives in the kernel's frame.
  Function *kernel = function;
  IRBuilder<> entry(&kernel->getEntryBlock(), kernel->getEntryBlock().begin());
  Value *closure = entry.CreateAlloca(closureType, nullptr, name + ".closure");
  for (size_t i = 0; i < distinct.size(); ++i)
    b.CreateStore(distinct[i], b.CreateConstInBoundsGEP2_64(closureType, closure, 0, i));
  // runtime/Abi.h: gradc_step_context.pool is field 5.
  StructType *ctxType = StructType::get(context, {ptr, ptr, i64, i64, ptr, ptr});
  Value *pool = b.CreateLoad(ptr, b.CreateStructGEP(ctxType, kernel->getArg(0), 5), "pool");
  FunctionCallee parallelFor = module.getOrInsertFunction(
      "gradc_parallel_for", FunctionType::get(b.getVoidTy(), {ptr, i64, ptr, ptr}, false));
  b.CreateCall(parallelFor, {pool, index(tasks), outlined, closure});
}

void KernelBuilder::loopRange(Value *begin, Value *end, int64_t step, const std::string &name,
                              function_ref<void(Value *iv)> body) {
  loopRange(begin, end, step, name, {}, [&](Value *iv, ArrayRef<Value *>) {
    body(iv);
    return SmallVector<Value *, 2>{};
  });
}

SmallVector<Value *, 2> KernelBuilder::loopRange(Value *begin, Value *end, int64_t step,
                                                 const std::string &name, ArrayRef<Value *> init,
                                                 CarriedBody body) {
  BasicBlock *pre = b.GetInsertBlock();
  BasicBlock *header = BasicBlock::Create(context, name + ".cond", function);
  BasicBlock *bodyBlock = BasicBlock::Create(context, name + ".loop", function);
  BasicBlock *exit = BasicBlock::Create(context, name + ".end", function);
  b.CreateBr(header);
  b.SetInsertPoint(header);
  PHINode *iv = b.CreatePHI(i64, 2, name);
  iv->addIncoming(begin, pre);
  SmallVector<PHINode *, 2> phis = carriedPhis(b, pre, name, init);
  SmallVector<Value *, 2> current(phis.begin(), phis.end());
  b.CreateCondBr(b.CreateICmpSLT(iv, end, name + ".more"), bodyBlock, exit);
  b.SetInsertPoint(bodyBlock);
  SmallVector<Value *, 2> next = body(iv, current);
  Value *ivNext = b.CreateAdd(iv, index(step), name + ".next", true, true);
  iv->addIncoming(ivNext, b.GetInsertBlock());
  closeLoop(b.GetInsertBlock(), phis, next);
  b.CreateBr(header);
  b.SetInsertPoint(exit);
  return current;
}

SmallVector<Value *, 2> KernelBuilder::loopWhile(const std::string &name, ArrayRef<Value *> init,
                                                 CarriedBody body,
                                                 function_ref<Value *(ArrayRef<Value *>)> more) {
  BasicBlock *pre = b.GetInsertBlock();
  BasicBlock *header = BasicBlock::Create(context, name + ".loop", function);
  b.CreateBr(header);
  b.SetInsertPoint(header);
  SmallVector<PHINode *, 2> phis = carriedPhis(b, pre, name, init);
  SmallVector<Value *, 2> next = body(nullptr, SmallVector<Value *, 2>(phis.begin(), phis.end()));
  Value *again = more(next);
  BasicBlock *exit = BasicBlock::Create(context, name + ".end", function);
  closeLoop(b.GetInsertBlock(), phis, next);
  b.CreateCondBr(again, header, exit);
  b.SetInsertPoint(exit);
  return next;
}

void KernelBuilder::ifThen(Value *condition, const std::string &name, function_ref<void()> then) {
  BasicBlock *thenBlock = BasicBlock::Create(context, name + ".then", function);
  BasicBlock *join = BasicBlock::Create(context, name + ".join", function);
  b.CreateCondBr(condition, thenBlock, join);
  b.SetInsertPoint(thenBlock);
  then();
  b.CreateBr(join);
  b.SetInsertPoint(join);
}

} // namespace gradc::codegen
