//===- codegen/KernelLayout.h - Where a kernel keeps every value -*- C++ -*-===//
//
// The compile-time facts a kernel is generated from, decided before any
// LLVM IR exists (and so without LLVM): its signature, where every value
// lives (a caller buffer, a hyperparameter slot or an arena offset from the
// memory plan), which reshapes may alias their operand instead of copying,
// and when each `update` may write its parameter.  describeKernel reads the
// signature from here and the lowering everything, so the two cannot
// disagree.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "passes/MemoryPlan.h"
#include "runtime/Model.h"

#include <string>
#include <unordered_map>
#include <vector>

namespace gradc::ir {
class Graph;
class Node;
} // namespace gradc::ir

namespace gradc::codegen {

/// Where a value's elements are.
struct Storage {
  enum Kind : uint8_t {
    None,   ///< no value (update ops)
    Buffer, ///< ctx->buffers[index]
    Hyper,  ///< ctx->hypers[index]
    Arena,  ///< ctx->arena + offset
  };
  Kind kind = None;
  int64_t index = 0;  ///< buffer or hyper slot
  int64_t offset = 0; ///< arena byte offset
  int64_t bytes = 0;

  bool operator==(const Storage &) const = default;
};

struct ValueLayout {
  /// Where the value is read from (for an alias: its root's storage).
  Storage home;
  /// Set when the value is not computed but reuses this node's elements
  /// (a reshape or dropout of a value that stays intact while it is used).
  const ir::Node *aliasOf = nullptr;
  /// Output buffers that receive a copy of the value once it is computed:
  /// results that are leaves, aliases, or named by several output keys.
  std::vector<int64_t> copyToBuffers;
};

/// When an `update %p, %v` writes p.  The interpreter applies every update
/// after the step, so an update may only happen in place when nothing after
/// it still reads p; otherwise it waits for the end of the kernel, and when
/// v itself would not survive that long it is first saved to staging bytes
/// appended after the memory plan's arena.
struct UpdateLayout {
  enum Kind : uint8_t {
    Skip,      ///< a later update writes the same tensor; this one is dead
    InPlace,   ///< copy v into p at the update's position
    AtEnd,     ///< copy v into p after the last node
    StagedEnd, ///< copy v to staging now, staging into p at the end
  };
  Kind kind = InPlace;
  int64_t stagingOffset = 0; ///< arena byte offset, for StagedEnd
};

struct KernelLayout {
  rt::KernelSpec spec; ///< signature, hypers, batch, arena size (fn null)
  passes::MemoryPlan plan;
  std::unordered_map<const ir::Node *, ValueLayout> values;
  std::unordered_map<const ir::Node *, UpdateLayout> updates;
  /// Signature slot of each leaf (Input/Target/Param/State) and hyper slot
  /// of each Hyper node.
  std::unordered_map<const ir::Node *, int64_t> leafSlot;

  const ValueLayout &of(const ir::Node *node) const { return values.at(node); }
};

/// Plans the kernel `kernelName` of `graph`.  Returns false and sets
/// `error` when the graph cannot be compiled (e.g. an update of a tensor
/// that is not a parameter or state); `layout.spec` is filled either way.
bool layoutKernel(const ir::Graph &graph, const std::string &kernelName, KernelLayout &layout,
                  std::string &error);

} // namespace gradc::codegen
