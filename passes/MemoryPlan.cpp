//===- passes/MemoryPlan.cpp - Where every value of a step lives ----------===//
//
// Two placements, the smaller arena wins: first fit in program order, and
// greedy by size.  Both are exact about live ranges; neither is optimal
// (that is NP-hard), and on our graphs each wins on some.
//
//===----------------------------------------------------------------------===//
#include "passes/MemoryPlan.h"
#include "ir/Graph.h"

#include <algorithm>
#include <map>

namespace gradc::passes {

using namespace ir;

static int64_t alignUp(int64_t n) {
  return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

/// The bytes a value occupies in the arena (aligned, at least one slot).
static int64_t slotBytes(const BufferPlacement &p) {
  return alignUp(std::max<int64_t>(p.bytes, 1));
}

/// Two values may share bytes only if their live ranges are disjoint.  A
/// value's range starts at its definition, where its operands are still
/// live, so it never shares with its own operands (codegen reads operands
/// while writing the result).
static bool overlapInTime(const BufferPlacement &a, const BufferPlacement &b) {
  return a.firstDef <= b.lastUse && b.firstDef <= a.lastUse;
}

/// Walks program order; at each definition, frees the blocks of values
/// whose last use is before it, then places the new value first-fit.
/// Returns the arena size.
static int64_t placeFirstFit(MemoryPlan &plan) {
  int64_t arenaBytes = 0;
  std::map<int64_t, int64_t> freeBlocks; // offset -> size, kept coalesced
  std::vector<BufferPlacement *> live;
  auto release = [&](int64_t offset, int64_t size) {
    auto it = freeBlocks.emplace(offset, size).first;
    auto next = std::next(it);
    if (next != freeBlocks.end() && it->first + it->second == next->first) {
      it->second += next->second;
      freeBlocks.erase(next);
    }
    if (it != freeBlocks.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        freeBlocks.erase(it);
      }
    }
  };
  for (BufferPlacement &p : plan.buffers) {
    if (p.external)
      continue;
    int64_t size = slotBytes(p);
    for (auto it = live.begin(); it != live.end();) {
      if ((*it)->lastUse < p.firstDef) {
        release((*it)->offset, slotBytes(**it));
        it = live.erase(it);
      } else {
        ++it;
      }
    }
    auto fit = std::find_if(freeBlocks.begin(), freeBlocks.end(),
                            [&](const auto &block) { return block.second >= size; });
    if (fit != freeBlocks.end()) {
      p.offset = fit->first;
      int64_t remaining = fit->second - size;
      int64_t start = fit->first;
      freeBlocks.erase(fit);
      if (remaining > 0)
        freeBlocks.emplace(start + size, remaining);
    } else {
      // Grow the arena; a free block at its end is extended instead of wasted.
      p.offset = arenaBytes;
      if (!freeBlocks.empty()) {
        auto last = std::prev(freeBlocks.end());
        if (last->first + last->second == arenaBytes) {
          p.offset = last->first;
          freeBlocks.erase(last);
        }
      }
      arenaBytes = p.offset + size;
    }
    live.push_back(&p);
  }
  return arenaBytes;
}

/// Greedy by size (the offline strategy of TFLite's arena planner): the
/// largest values are placed first, each at the lowest offset where it
/// overlaps, in address, no placed value it overlaps in time.  It knows
/// every live range in advance, so big long-lived buffers do not fragment
/// the arena the way program order can.  Returns the arena size.
static int64_t placeBySize(MemoryPlan &plan) {
  std::vector<BufferPlacement *> order;
  for (BufferPlacement &p : plan.buffers)
    if (!p.external)
      order.push_back(&p);
  std::stable_sort(order.begin(), order.end(),
                   [](const BufferPlacement *a, const BufferPlacement *b) {
                     return slotBytes(*a) > slotBytes(*b);
                   });
  int64_t arenaBytes = 0;
  std::vector<const BufferPlacement *> placed, conflicts;
  for (BufferPlacement *p : order) {
    conflicts.clear();
    for (const BufferPlacement *q : placed)
      if (overlapInTime(*p, *q))
        conflicts.push_back(q);
    std::sort(
        conflicts.begin(), conflicts.end(),
        [](const BufferPlacement *a, const BufferPlacement *b) { return a->offset < b->offset; });
    const int64_t size = slotBytes(*p);
    int64_t offset = 0;
    for (const BufferPlacement *q : conflicts) {
      if (q->offset >= offset + size)
        break; // the gap before q holds p
      offset = std::max(offset, q->offset + slotBytes(*q));
    }
    p->offset = offset;
    arenaBytes = std::max(arenaBytes, offset + size);
    placed.push_back(p);
  }
  return arenaBytes;
}

MemoryPlan planMemory(const Graph &graph) {
  MemoryPlan plan;
  const auto &nodes = graph.nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node *node = nodes[i].get();
    if (!node->hasResult())
      continue;
    BufferPlacement placement;
    placement.value = node;
    placement.bytes = node->type.bytes();
    placement.firstDef = placement.lastUse = i;
    placement.external = node->isLeaf();
    plan.index[node] = plan.buffers.size();
    plan.buffers.push_back(placement);
  }
  for (const GraphOutput &out : graph.outputs)
    plan.buffers[plan.index.at(out.value)].external = true;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const Node *operand : nodes[i]->operands) {
      BufferPlacement &p = plan.buffers[plan.index.at(operand)];
      p.lastUse = std::max(p.lastUse, i);
    }

  int64_t firstFitBytes = placeFirstFit(plan);
  std::vector<int64_t> firstFitOffsets;
  for (const BufferPlacement &p : plan.buffers)
    firstFitOffsets.push_back(p.offset);
  int64_t bySizeBytes = placeBySize(plan);
  if (firstFitBytes <= bySizeBytes) {
    for (size_t i = 0; i < plan.buffers.size(); ++i)
      plan.buffers[i].offset = firstFitOffsets[i];
    plan.arenaBytes = firstFitBytes;
  } else {
    plan.arenaBytes = bySizeBytes;
  }
  for (const BufferPlacement &p : plan.buffers)
    if (!p.external)
      plan.noReuseBytes += slotBytes(p);
  return plan;
}

} // namespace gradc::passes
