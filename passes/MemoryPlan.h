//===- passes/MemoryPlan.h - Where every value of a step lives -*- C++ -*-===//
//
// Leaves (inputs, targets, params, state) and the graph's results live in
// buffers the caller owns.  Every other value gets an offset in one arena,
// planned once at compile time from live ranges, so the generated step
// allocates nothing; buffers whose live ranges do not overlap share bytes.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace gradc::ir {
class Graph;
class Node;
} // namespace gradc::ir

namespace gradc::passes {

struct BufferPlacement {
  const ir::Node *value = nullptr;
  bool external = false; ///< a leaf or a result: lives in a caller buffer
  int64_t offset = 0;    ///< arena offset in bytes (when not external)
  int64_t bytes = 0;
  size_t firstDef = 0, lastUse = 0; ///< live range, as node indices
};

struct MemoryPlan {
  std::vector<BufferPlacement> buffers; ///< one per value, in program order
  std::unordered_map<const ir::Node *, size_t> index;
  int64_t arenaBytes = 0;   ///< the peak: size of the arena to allocate
  int64_t noReuseBytes = 0; ///< what the arena would be without sharing

  const BufferPlacement &of(const ir::Node *value) const { return buffers[index.at(value)]; }
};

/// Every arena offset is a multiple of this (a cache line, and enough for
/// AVX-512 loads).
inline constexpr int64_t kArenaAlignment = 64;

/// Plans the arena for `graph`: first fit in program order or greedy by
/// size, whichever needs the smaller arena.
MemoryPlan planMemory(const ir::Graph &graph);

} // namespace gradc::passes
