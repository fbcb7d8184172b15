//===- test/unit/passes/MemoryPlanTest.cpp - Arena plans on random graphs ===//
//
// The arena plan must never give two values that are live at the same time
// overlapping bytes, whichever placement wins; it must stay between the
// schedule's lower bound (the most bytes live at once) and no reuse at all.
// Random graphs with values of many sizes and long and short live ranges
// exercise both placements.
//
//===----------------------------------------------------------------------===//
#include "passes/MemoryPlan.h"
#include "ir/Graph.h"

#include <algorithm>
#include <gtest/gtest.h>
#include <random>

using namespace gradc;
using namespace gradc::ir;

namespace {

/// Chains of `add`s of several widths; each op adds the previous value of
/// its chain and a random earlier one, so live ranges vary.
std::unique_ptr<Graph> randomGraph(unsigned seed, int ops) {
  std::mt19937 rng(seed);
  auto graph = std::make_unique<Graph>();
  graph->name = "random";
  const int64_t widths[] = {1, 3, 16, 100, 1000, 4096};
  std::vector<std::vector<Node *>> chains;
  for (int64_t width : widths)
    chains.push_back(
        {graph->create(OpKind::Input, {}, Type::f32({width}), {}, "x" + std::to_string(width))});
  for (int i = 0; i < ops; ++i) {
    auto &chain = chains[rng() % chains.size()];
    Node *other = chain[rng() % chain.size()];
    chain.push_back(graph->create(OpKind::Add, {chain.back(), other}, chain.back()->type, {}, "v"));
  }
  Node *loss = nullptr;
  for (auto &chain : chains) {
    Node *sum = graph->create(OpKind::SumSq, {chain.back()}, Type::f32({}), {}, "s");
    loss = loss ? graph->create(OpKind::Add, {loss, sum}, Type::f32({}), {}, "l") : sum;
  }
  graph->setOutput("loss", loss);
  return graph;
}

TEST(MemoryPlan, NoLiveValuesShareBytesOnRandomGraphs) {
  for (unsigned seed = 1; seed <= 40; ++seed) {
    auto graph = randomGraph(seed, 20 + int(seed) * 5);
    passes::MemoryPlan plan = passes::planMemory(*graph);
    int64_t lowerBound = 0;
    for (size_t i = 0; i < graph->size(); ++i) {
      int64_t live = 0;
      for (const auto &p : plan.buffers)
        if (!p.external && p.firstDef <= i && i <= p.lastUse)
          live += p.bytes;
      lowerBound = std::max(lowerBound, live);
    }
    for (const auto &p : plan.buffers) {
      if (p.external)
        continue;
      EXPECT_EQ(p.offset % passes::kArenaAlignment, 0);
      EXPECT_LE(p.offset + p.bytes, plan.arenaBytes);
      for (const auto &q : plan.buffers) {
        if (&p == &q || q.external)
          continue;
        bool overlapInTime = p.firstDef <= q.lastUse && q.firstDef <= p.lastUse;
        bool overlapInBytes = p.offset < q.offset + q.bytes && q.offset < p.offset + p.bytes;
        ASSERT_FALSE(overlapInTime && overlapInBytes)
            << "seed " << seed << ": " << p.value->name << " and " << q.value->name;
      }
    }
    EXPECT_GE(plan.arenaBytes, lowerBound) << "seed " << seed;
    EXPECT_LE(plan.arenaBytes, plan.noReuseBytes) << "seed " << seed;
  }
}

} // namespace
