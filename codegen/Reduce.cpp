//===- codegen/Reduce.cpp - Sums over axes as loop nests ------------------===//
#include "codegen/Reduce.h"
#include "codegen/Elementwise.h"

#include <llvm/IR/Intrinsics.h>

#include <algorithm>
#include <functional>
#include <limits>

namespace gradc::codegen {

using namespace llvm;

void emitReduction(KernelBuilder &kb, const std::string &name, const ir::Shape &shape,
                   const std::vector<int64_t> &axes, const std::vector<ReductionInput> &inputs,
                   Value *out, function_ref<Value *(ArrayRef<Value *>)> element,
                   function_ref<Value *(Value *)> finish, Combine combine) {
  // Drop size-1 dimensions and merge neighbours that are both reduced or
  // both kept: the nest alternates kept and reduced blocks.
  std::vector<int64_t> dims;
  std::vector<bool> reduced;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1)
      continue;
    bool r = std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end();
    if (!dims.empty() && reduced.back() == r)
      dims.back() *= shape[d];
    else {
      dims.push_back(shape[d]);
      reduced.push_back(r);
    }
  }
  std::vector<int64_t> inStrides = rowMajorStrides(dims), outStrides(dims.size(), 0);
  int64_t outCount = 1;
  for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d)
    if (!reduced[d]) {
      outStrides[d] = outCount;
      outCount *= dims[d];
    }
  size_t reducedBlocks = std::count(reduced.begin(), reduced.end(), true);

  auto loadInputs = [&](Value *at) {
    std::vector<Value *> values;
    for (const ReductionInput &input : inputs)
      values.push_back(kb.load(input.base, at, input.name + ".v"));
    return element(values);
  };
  Constant *initial =
      kb.f32Const(combine == Combine::Sum ? 0.0 : -std::numeric_limits<double>::infinity());
  auto combined = [&](Value *acc, Value *v, const std::string &what) -> Value * {
    if (combine == Combine::Sum)
      return kb.b.CreateFAdd(acc, v, what);
    return kb.b.CreateBinaryIntrinsic(Intrinsic::maximum, acc, v, nullptr, what);
  };

  if (reducedBlocks == 0) {
    // Nothing to sum (all reduced dimensions have size 1): a map.
    std::vector<StridedInput> mapped;
    for (const ReductionInput &input : inputs)
      mapped.push_back({input.base, {1}, nullptr, input.name});
    emitStridedMap(kb, name, {outCount}, out, {1}, mapped, [&](ArrayRef<Value *> values) {
      Value *v = element(values);
      return finish ? finish(v) : v;
    });
    return;
  }

  // The innermost reduced block, when it is the last dimension, sums into a
  // register; with only that one reduced block each output element is
  // written once and no initialisation is needed.
  bool innerReduced = reduced.back();
  bool direct = innerReduced && reducedBlocks == 1;
  if (!direct && combine == Combine::Sum)
    kb.zero(out, outCount * 4);
  else if (!direct)
    emitStridedMap(kb, name + ".init", {outCount}, out, {1}, {},
                   [&](ArrayRef<Value *>) { return initial; });
  std::function<void(size_t, Value *, Value *)> level = [&](size_t depth, Value *inAt,
                                                            Value *outAt) {
    if (innerReduced && depth + 1 == dims.size()) {
      Value *sum =
          kb.loop(dims[depth], name + ".r", {initial}, [&](Value *iv, ArrayRef<Value *> acc) {
            Value *v = loadInputs(kb.offset(inAt, iv, 1));
            return SmallVector<Value *, 2>{
                combined(acc[0], v, name + (combine == Combine::Sum ? ".sum" : ".max"))};
          })[0];
      if (direct) {
        kb.store(finish ? finish(sum) : sum, out, outAt);
      } else {
        Value *old = kb.load(out, outAt, name + ".v");
        kb.store(combined(old, sum, ""), out, outAt);
      }
      return;
    }
    if (depth == dims.size()) {
      Value *old = kb.load(out, outAt, name + ".v");
      kb.store(combined(old, loadInputs(inAt), ""), out, outAt);
      return;
    }
    kb.loop(dims[depth], name + ".d" + std::to_string(depth), [&](Value *iv) {
      level(depth + 1, kb.offset(inAt, iv, inStrides[depth]),
            kb.offset(outAt, iv, outStrides[depth]));
    });
  };
  level(0, kb.index(0), kb.index(0));

  if (!direct && finish)
    emitStridedMap(kb, name + ".finish", {outCount}, out, {1}, {{out, {1}, nullptr, name}},
                   [&](ArrayRef<Value *> values) { return finish(values[0]); });
}

} // namespace gradc::codegen
