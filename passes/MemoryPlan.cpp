//===- passes/MemoryPlan.cpp - Where every value of a step lives ----------===//
//
// Two placements, the smaller arena wins: first fit in program order, and
// greedy by size.  Both are exact about live ranges; neither is optimal
// (that is NP-hard), and on our graphs each wins on some.  Before placing,
// the inputs of a run of maps that codegen fuses into one loop are kept
// live through the run where that costs no arena bytes (fusionRunExtensions).
//
//===----------------------------------------------------------------------===//
#include "passes/MemoryPlan.h"
#include "ir/Graph.h"

#include <algorithm>
#include <map>
#include <unordered_set>

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

/// A later last use for some values: (index in MemoryPlan::buffers, node
/// index), which only ever lengthens a range.
using Extension = std::vector<std::pair<size_t, size_t>>;

/// Codegen fuses a run of consecutive elementwise maps of one shape into
/// one loop (codegen/Lowering.cpp, planFusion; leaves and updates do not
/// end a run), which reads every input of the run and stores the members
/// read outside it, element by element.  It cannot loop over an input and
/// a stored member that overlap, so it lowers such a run one map at a time,
/// one pass over memory each.  The first fit often gives a stored member
/// bytes of an input whose last reader was earlier in the run: the L
/// model's first layer's backward maps were three passes for that reason.
/// For each run, the extension that keeps its inputs live until its last
/// stored member is defined.  (Members read only inside the run keep their
/// ranges: the loop never stores them.)
static std::vector<Extension> fusionRunExtensions(const Graph &graph, const MemoryPlan &plan) {
  const auto &nodes = graph.nodes();
  std::unordered_map<const Node *, size_t> position; // in program order
  std::unordered_map<const Node *, std::vector<const Node *>> users;
  for (size_t i = 0; i < nodes.size(); ++i) {
    position[nodes[i].get()] = i;
    for (const Node *operand : nodes[i]->operands)
      users[operand].push_back(nodes[i].get());
  }
  std::vector<Extension> extensions;
  std::vector<const Node *> run;
  auto finish = [&] {
    std::unordered_set<const Node *> members(run.begin(), run.end());
    size_t lastStored = 0;
    for (const Node *member : run) {
      if (!member->hasResult())
        continue;
      bool stored = plan.of(member).external; // a result of the graph
      for (const Node *user : users[member])
        stored = stored || !members.count(user);
      if (stored)
        lastStored = std::max(lastStored, position.at(member));
    }
    Extension extension;
    for (const Node *member : run)
      for (const Node *operand : member->operands)
        if (!members.count(operand) && operand->hasResult()) {
          size_t index = plan.index.at(operand);
          if (!plan.buffers[index].external && plan.buffers[index].lastUse < lastStored)
            extension.emplace_back(index, lastStored);
        }
    if (!extension.empty())
      extensions.push_back(std::move(extension));
    run.clear();
  };
  for (const auto &owned : nodes) {
    const Node *node = owned.get();
    if (node->isLeaf())
      continue;
    const bool map = node->isElementwise() && node->type.dtype == DType::F32;
    if (!run.empty() &&
        (node->is(OpKind::Update) || (map && node->type.shape == run.front()->type.shape))) {
      run.push_back(node);
      continue;
    }
    finish();
    if (map)
      run.push_back(node);
  }
  finish();
  return extensions;
}

/// Places every value with the ranges of `plan`, by first fit or by size,
/// whichever gives the smaller arena.
static void place(MemoryPlan &plan) {
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

  // Fused runs get their inputs' longer ranges where that does not raise
  // the peak: all of them at once when possible (the training steps of
  // examples/ and bench/), else run by run in program order.  Where one
  // would (small models, whose maps run unfused at a cache's speed; an
  // inference step, where a layer's bias, activation and product would all
  // be live), the run keeps its ranges, and codegen lowers it fused only
  // if no stored member overlaps an input anyway.
  place(plan);
  const int64_t peak = plan.arenaBytes;
  const std::vector<Extension> extensions = fusionRunExtensions(graph, plan);
  std::vector<size_t> lastUse;
  for (const BufferPlacement &p : plan.buffers)
    lastUse.push_back(p.lastUse);
  auto extend = [&](const Extension &extension) {
    for (auto [index, until] : extension)
      plan.buffers[index].lastUse = std::max(plan.buffers[index].lastUse, until);
  };
  auto restore = [&](const std::vector<size_t> &ranges) {
    for (size_t i = 0; i < plan.buffers.size(); ++i)
      plan.buffers[i].lastUse = ranges[i];
  };
  if (!extensions.empty()) {
    for (const Extension &extension : extensions)
      extend(extension);
    place(plan);
    if (plan.arenaBytes > peak) {
      restore(lastUse);
      std::vector<size_t> accepted = lastUse;
      for (const Extension &extension : extensions) {
        extend(extension);
        place(plan);
        if (plan.arenaBytes <= peak) {
          for (size_t i = 0; i < plan.buffers.size(); ++i)
            accepted[i] = plan.buffers[i].lastUse;
        } else {
          restore(accepted);
        }
      }
      restore(accepted);
      place(plan);
    }
  }
  for (const BufferPlacement &p : plan.buffers)
    if (!p.external)
      plan.noReuseBytes += slotBytes(p);
  return plan;
}

} // namespace gradc::passes
