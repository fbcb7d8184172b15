//===- codegen/Elementwise.cpp - Loop nests over strided operands ---------===//
#include "codegen/Elementwise.h"

#include <cassert>
#include <functional>

namespace gradc::codegen {

using namespace llvm;

std::vector<int64_t> rowMajorStrides(const ir::Shape &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

std::vector<int64_t> broadcastStrides(const ir::Shape &in, const ir::Shape &out) {
  assert(in.size() <= out.size() && "broadcast cannot drop dimensions");
  std::vector<int64_t> inStrides = rowMajorStrides(in);
  std::vector<int64_t> strides(out.size(), 0);
  size_t lead = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    strides[lead + i] = in[i] == 1 ? 0 : inStrides[i];
  return strides;
}

namespace {

/// The loop nest after simplification: dims[d] iterations, and for each
/// array (output first, then the inputs) its stride along d.
struct Nest {
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> strides; // [array][dim]
};

Nest simplify(const ir::Shape &shape, const std::vector<std::vector<int64_t>> &strides) {
  Nest nest;
  nest.strides.resize(strides.size());
  // Walk from the innermost dimension outwards, merging a dimension into the
  // one inside it when every array steps over the inner block contiguously.
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1)
      continue;
    bool merge = !nest.dims.empty();
    for (size_t a = 0; merge && a < strides.size(); ++a)
      merge = strides[a][d] == nest.strides[a].front() * nest.dims.front();
    if (merge) {
      nest.dims.front() *= shape[d];
      continue;
    }
    nest.dims.insert(nest.dims.begin(), shape[d]);
    for (size_t a = 0; a < strides.size(); ++a)
      nest.strides[a].insert(nest.strides[a].begin(), strides[a][d]);
  }
  return nest;
}

} // namespace

void emitStridedMap(KernelBuilder &kb, const std::string &name, const ir::Shape &shape, Value *out,
                    const std::vector<int64_t> &outStrides, const std::vector<StridedInput> &inputs,
                    function_ref<Value *(ArrayRef<Value *>)> compute) {
  // Arrays in memory: the output, then every input that is not a splat.
  std::vector<std::vector<int64_t>> strides = {outStrides};
  std::vector<size_t> arrayOf(inputs.size(), 0);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].splat) {
      arrayOf[i] = strides.size();
      strides.push_back(inputs[i].strides);
    }
  Nest nest = simplify(shape, strides);

  // Recursive emission keeps one running element index per array.
  std::function<void(size_t, std::vector<Value *>)> level = [&](size_t depth,
                                                                std::vector<Value *> at) {
    if (depth == nest.dims.size()) {
      std::vector<Value *> values;
      for (size_t i = 0; i < inputs.size(); ++i)
        values.push_back(inputs[i].splat
                             ? inputs[i].splat
                             : kb.load(inputs[i].base, at[arrayOf[i]], inputs[i].name + ".v"));
      kb.store(compute(values), out, at[0]);
      return;
    }
    kb.loop(nest.dims[depth], name + ".d" + std::to_string(depth), [&](Value *iv) {
      std::vector<Value *> inner(at.size());
      for (size_t a = 0; a < at.size(); ++a)
        inner[a] = kb.offset(at[a], iv, nest.strides[a][depth]);
      level(depth + 1, inner);
    });
  };
  level(0, std::vector<Value *>(strides.size(), kb.index(0)));
}

} // namespace gradc::codegen
