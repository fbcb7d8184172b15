//===- codegen/Partition.cpp - A kernel's module cut for parallel codegen -===//
#include "codegen/Partition.h"
#include "codegen/MatMul.h"

#include <llvm/ADT/DenseMap.h>
#include <llvm/Analysis/LoopInfo.h>
#include <llvm/IR/Dominators.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/InstIterator.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string_view>
#include <vector>

namespace gradc::codegen {

using namespace llvm;

namespace {

bool inlinedIntoCallers(const Function &fn) { return fn.hasFnAttribute(Attribute::AlwaysInline); }

/// What a scalar floating-point instruction in a loop (or a store of a
/// float) weighs against any other: the loop vectoriser turns it into a
/// vector body, a scalar remainder and run-time checks, each selected and
/// allocated.  Integer arithmetic in loops (the index and address code of
/// the matrix products' tile loops, whose arithmetic is vector code
/// already) is not multiplied.  Session 6 weighed every scalar instruction
/// in a loop 4x, calibrated on the dropout mask's Philox loop; once the
/// runtime drew the masks, that weight gave the products too much and the
/// fashion step's two parts came out at 391 and 270 M instructions of llc
/// (bench/compile_cost.sh --per-part).  Weighing float scalars only, 8x,
/// 10x, 12x and 16x made the larger part of the fashion (and M) step 351,
/// 329, 331 and 352 M (the other 309, 327, 325 and 309), and L's 501, 494,
/// 506 and 567 M against 496 before; S's cut did not change.
constexpr uint64_t kScalarFloatLoopWeight = 10;

/// What any instruction of a matrix product's functions (kLoopsLaidOut)
/// weighs.  Their loops are vector code already, which the vectoriser
/// leaves alone, so their scalar floats (the loads of A's elements) are not
/// multiplied; but their vector and address code costs the code generator
/// more than the step's own function: per unit of the weights above, the
/// products took 1.1-2.2 times its llc instructions once its short loops
/// were widened without masks (session 13, fashion model).  Calibrated on
/// the cut, as kScalarFloatLoopWeight was: with products weighed as any
/// other function, the larger part of the fashion step was 236 M
/// instructions of llc against 172 for the other; weights 2, 3 and 4 made
/// it 219/189, 206/202 and 221/182.  With 3, M's 235/172 became 206/202,
/// S's 167/113 144/141 and L's 381/249 321/309 (bench/compile_cost.sh
/// --per-part).
constexpr uint64_t kLaidOutWeight = 3;

/// Instructions `fn` will have once its alwaysinline callees are inlined
/// and its loops vectorised: the measure of its compile time (instruction
/// selection and register allocation grow with it).
uint64_t compileCost(const Function &fn, DenseMap<const Function *, uint64_t> &memo) {
  if (auto known = memo.find(&fn); known != memo.end())
    return known->second;
  memo[&fn] = 0; // a recursive alwaysinline chain (none is generated) ends here
  DominatorTree dominators(const_cast<Function &>(fn));
  LoopInfo loops(dominators);
  uint64_t cost = 0;
  const bool laidOut = fn.hasFnAttribute(kLoopsLaidOut);
  for (const Instruction &instruction : instructions(fn)) {
    if (laidOut) {
      cost += kLaidOutWeight;
      continue;
    }
    bool floatScalar = instruction.getType()->isFloatingPointTy();
    if (const auto *store = dyn_cast<StoreInst>(&instruction))
      floatScalar = store->getValueOperand()->getType()->isFloatingPointTy();
    const bool vectorisable = floatScalar && loops.getLoopFor(instruction.getParent());
    cost += vectorisable ? kScalarFloatLoopWeight : 1;
    if (const auto *call = dyn_cast<CallBase>(&instruction))
      if (const Function *callee = call->getCalledFunction();
          callee && !callee->isDeclaration() && inlinedIntoCallers(*callee))
        cost += compileCost(*callee, memo);
  }
  memo[&fn] = cost;
  return cost;
}

} // namespace

bool canPartition(const Module &module) {
  return std::all_of(module.global_begin(), module.global_end(), [](const GlobalVariable &global) {
    return global.isDeclaration() || global.isConstant();
  });
}

void keepPartition(Module &module, const std::string &symbol, unsigned part, unsigned parts) {
  std::vector<Function *> roots;
  for (Function &fn : module)
    if (!fn.isDeclaration() && !inlinedIntoCallers(fn))
      roots.push_back(&fn);

  // Largest first, each to the lightest part (ties: module order, the
  // first part), so the parts come out near equal and the same every time.
  DenseMap<const Function *, uint64_t> memo;
  std::vector<uint64_t> cost;
  for (Function *fn : roots)
    cost.push_back(compileCost(*fn, memo));
  std::vector<size_t> order(roots.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return cost[a] > cost[b]; });
  std::vector<uint64_t> load(parts, 0);
  std::vector<unsigned> owner(roots.size(), 0);
  for (size_t index : order) {
    unsigned lightest = unsigned(std::min_element(load.begin(), load.end()) - load.begin());
    owner[index] = lightest;
    load[lightest] += cost[index];
  }
  // The cut, once per kernel (by part 0's job), for bench/compile_cost.sh
  // --per-part: which functions each part compiles and their estimates.
  static const bool report = [] {
    const char *value = std::getenv("GRADC_PARTITION_REPORT");
    return value && *value && std::string_view(value) != "0"; // as GRADC_REGION_PROFILE
  }();
  if (report && part == 0)
    for (size_t index : order)
      std::fprintf(stderr, "gradc partition: kernel=%s part=%u cost=%llu function=%s\n",
                   symbol.c_str(), owner[index], static_cast<unsigned long long>(cost[index]),
                   roots[index]->getName().str().c_str());

  const std::string prefix = symbol + ".";
  for (size_t i = 0; i < roots.size(); ++i) {
    Function &fn = *roots[i];
    if (fn.hasLocalLinkage()) {
      if (!fn.getName().starts_with(prefix) && fn.getName() != symbol)
        fn.setName(prefix + fn.getName().str());
      fn.setLinkage(GlobalValue::ExternalLinkage);
      fn.setVisibility(GlobalValue::HiddenVisibility);
    }
    if (owner[i] != part)
      fn.deleteBody(); // a declaration, defined by the part that owns it
  }

  // What the deleted bodies called and nothing kept calls: alwaysinline
  // bodies and constants, local to this module, dropped until none is left.
  for (bool erased = true; erased;) {
    erased = false;
    for (Function &fn : make_early_inc_range(module))
      if (fn.hasLocalLinkage() && fn.use_empty()) {
        fn.eraseFromParent();
        erased = true;
      }
    for (GlobalVariable &global : make_early_inc_range(module.globals()))
      if (global.hasLocalLinkage() && global.use_empty()) {
        global.eraseFromParent();
        erased = true;
      }
  }
}

} // namespace gradc::codegen
