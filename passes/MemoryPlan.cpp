//===- passes/MemoryPlan.cpp - Where every value of a step lives ----------===//
#include "passes/MemoryPlan.h"
#include "ir/Graph.h"

#include <algorithm>
#include <map>

namespace gradc::passes {

using namespace ir;

static int64_t alignUp(int64_t n) {
  return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
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

  // Walk program order; at each definition, free the blocks of values whose
  // last use is before it, then place the new value first-fit.
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
    int64_t size = alignUp(std::max<int64_t>(p.bytes, 1));
    plan.noReuseBytes += size;
    // A value must not share bytes with its own operands: codegen reads
    // operands while writing the result.
    for (auto it = live.begin(); it != live.end();) {
      if ((*it)->lastUse < p.firstDef) {
        release((*it)->offset, alignUp(std::max<int64_t>((*it)->bytes, 1)));
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
      p.offset = plan.arenaBytes;
      if (!freeBlocks.empty()) {
        auto last = std::prev(freeBlocks.end());
        if (last->first + last->second == plan.arenaBytes) {
          p.offset = last->first;
          freeBlocks.erase(last);
        }
      }
      plan.arenaBytes = p.offset + size;
    }
    live.push_back(&p);
  }
  return plan;
}

} // namespace gradc::passes
