//===- codegen/KernelLayout.cpp - Where a kernel keeps every value --------===//
//
// Decisions about storage that need the whole graph: the memory plan's
// offsets are taken as they are; on top of them this file decides which
// reshapes can read their operand in place and when each update may write.
// Both are checked against the plan's reuse of arena bytes, because the plan
// only promises that a value keeps its bytes until its own last use.
//
//===----------------------------------------------------------------------===//
#include "codegen/KernelLayout.h"
#include "ir/Graph.h"

#include <algorithm>
#include <fmt/format.h>
#include <set>

namespace gradc::codegen {

using namespace ir;

namespace {

rt::Role roleOf(OpKind kind) {
  switch (kind) {
  case OpKind::Target:
    return rt::Role::Target;
  case OpKind::Param:
    return rt::Role::Param;
  case OpKind::State:
    return rt::Role::State;
  default:
    return rt::Role::Input;
  }
}

/// Leaves with a caller buffer (hyperparameters come through ctx->hypers).
bool hasBuffer(const Node &node) {
  return node.is(OpKind::Input) || node.is(OpKind::Target) || node.is(OpKind::Param) ||
         node.is(OpKind::State);
}

bool overlaps(int64_t aBegin, int64_t aBytes, int64_t bBegin, int64_t bBytes) {
  return aBegin < bBegin + bBytes && bBegin < aBegin + aBytes;
}

class LayoutBuilder {
public:
  LayoutBuilder(const Graph &graph, KernelLayout &layout) : graph_(graph), layout_(layout) {}

  bool run(const std::string &kernelName, std::string &error) {
    describeSignature(kernelName);
    layout_.plan = passes::planMemory(graph_);
    layout_.spec.arenaBytes = layout_.plan.arenaBytes;
    collectUpdateTargets();
    placeValues();
    if (!scheduleUpdates(error))
      return false;
    return true;
  }

private:
  void describeSignature(const std::string &kernelName) {
    rt::KernelSpec &spec = layout_.spec;
    spec.name = kernelName;
    spec.batch = graph_.batch;
    for (const auto &owned : graph_.nodes()) {
      const Node &node = *owned;
      if (node.is(OpKind::Hyper)) {
        layout_.leafSlot[&node] = static_cast<int64_t>(spec.hypers.size());
        spec.hypers.push_back(node.attrs.key);
        continue;
      }
      if (!hasBuffer(node))
        continue;
      rt::TensorSpec tensor;
      tensor.name = node.name;
      tensor.role = roleOf(node.kind);
      tensor.isInt = node.type.dtype == DType::I32;
      tensor.dims = node.type.shape;
      if (node.is(OpKind::Param) || node.is(OpKind::State)) {
        tensor.init.kind = node.attrs.init.kind;
        tensor.init.args = node.attrs.init.args;
        tensor.init.fanIn = node.attrs.fanIn;
        tensor.init.fanOut = node.attrs.fanOut;
      }
      layout_.leafSlot[&node] = static_cast<int64_t>(spec.buffers.size());
      leafOfSlot_.push_back(&node);
      spec.buffers.push_back(std::move(tensor));
    }
    for (const GraphOutput &out : graph_.outputs) {
      rt::TensorSpec tensor;
      tensor.name = out.key;
      tensor.role = rt::Role::Output;
      tensor.isInt = out.value->type.dtype == DType::I32;
      tensor.dims = out.value->type.shape;
      outputSlots_[out.value].push_back(static_cast<int64_t>(spec.buffers.size()));
      spec.buffers.push_back(std::move(tensor));
    }
  }

  void collectUpdateTargets() {
    for (const auto &owned : graph_.nodes())
      if (owned->is(OpKind::Update))
        lastUpdateOf_[owned->operands[0]] = owned.get();
    for (auto &[target, update] : lastUpdateOf_)
      updatedLeaves_.insert(target);
  }

  void placeValues() {
    const auto &nodes = graph_.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) {
      const Node &node = *nodes[i];
      if (!node.hasResult())
        continue;
      ValueLayout value;
      auto outputs = outputSlots_.find(&node);
      std::vector<int64_t> slots =
          outputs == outputSlots_.end() ? std::vector<int64_t>{} : outputs->second;
      int64_t bytes = node.type.bytes();
      if (node.is(OpKind::Hyper)) {
        value.home = {Storage::Hyper, layout_.leafSlot.at(&node), 0, bytes};
        value.copyToBuffers = slots;
      } else if (hasBuffer(node)) {
        value.home = {Storage::Buffer, layout_.leafSlot.at(&node), 0, bytes};
        value.copyToBuffers = slots;
      } else if (!slots.empty()) {
        // A result is computed straight into its (first) output buffer.
        value.home = {Storage::Buffer, slots.front(), 0, bytes};
        value.copyToBuffers.assign(slots.begin() + 1, slots.end());
      } else if ((node.is(OpKind::Reshape) || node.is(OpKind::Dropout)) && canAlias(node, i)) {
        value.aliasOf = node.operands[0];
        value.home = layout_.values.at(node.operands[0]).home;
      } else {
        const passes::BufferPlacement &placement = layout_.plan.of(&node);
        value.home = {Storage::Arena, 0, placement.offset, bytes};
      }
      layout_.values[&node] = std::move(value);
    }
  }

  /// A reshape (or an identity dropout) can read its operand's elements in
  /// place when nothing overwrites them while the reshape is still used.
  bool canAlias(const Node &node, size_t index) {
    const Storage &root = layout_.values.at(node.operands[0]).home;
    switch (root.kind) {
    case Storage::None:
      return false;
    case Storage::Hyper:
      return true;
    case Storage::Buffer:
      // Output buffers are written once, by their own node; leaves change
      // only through updates.
      return root.index >= static_cast<int64_t>(leafOfSlot_.size()) ||
             !updatedLeaves_.count(leafOfSlot_[root.index]);
    case Storage::Arena:
      return !arenaWrittenBetween(root, index, layout_.plan.of(&node).lastUse);
    }
    return false;
  }

  /// Whether a value defined in (after, until] is placed over `storage`.
  bool arenaWrittenBetween(const Storage &storage, size_t after, size_t until) const {
    for (const passes::BufferPlacement &p : layout_.plan.buffers)
      if (!p.external && p.firstDef > after && p.firstDef <= until &&
          overlaps(p.offset, p.bytes, storage.offset, storage.bytes))
        return true;
    return false;
  }

  bool scheduleUpdates(std::string &error) {
    const auto &nodes = graph_.nodes();
    int64_t stagingEnd = layout_.plan.arenaBytes;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const Node &node = *nodes[i];
      if (!node.is(OpKind::Update))
        continue;
      const Node *target = node.operands[0], *value = node.operands[1];
      if (!hasBuffer(*target) || target->is(OpKind::Input) || target->is(OpKind::Target)) {
        error = fmt::format("update can only write a param or state, not %{} ('{}')", target->name,
                            target->mnemonic());
        return false;
      }
      UpdateLayout update;
      if (lastUpdateOf_.at(target) != &node ||
          layout_.values.at(value).home == layout_.values.at(target).home) {
        update.kind = UpdateLayout::Skip;
      } else if (!readAfter(target, i)) {
        update.kind = UpdateLayout::InPlace;
      } else if (survivesToEnd(value, i)) {
        update.kind = UpdateLayout::AtEnd;
      } else {
        update.kind = UpdateLayout::StagedEnd;
        stagingEnd = (stagingEnd + passes::kArenaAlignment - 1) / passes::kArenaAlignment *
                     passes::kArenaAlignment;
        update.stagingOffset = stagingEnd;
        stagingEnd += value->type.bytes();
      }
      layout_.updates[&node] = update;
    }
    layout_.spec.arenaBytes = stagingEnd;
    return true;
  }

  /// Whether a node after `index` reads `leaf` (an update's first operand
  /// is written, not read).
  bool readAfter(const Node *leaf, size_t index) const {
    const auto &nodes = graph_.nodes();
    for (size_t j = index + 1; j < nodes.size(); ++j) {
      const Node &user = *nodes[j];
      for (size_t k = user.is(OpKind::Update) ? 1 : 0; k < user.operands.size(); ++k)
        if (user.operands[k] == leaf)
          return true;
    }
    return false;
  }

  /// Whether the elements of `value` stay as they are from node `index` to
  /// the end of the kernel.
  bool survivesToEnd(const Node *value, size_t index) const {
    const Storage &home = layout_.values.at(value).home;
    switch (home.kind) {
    case Storage::None:
      return false;
    case Storage::Hyper:
      return true;
    case Storage::Buffer:
      return home.index >= static_cast<int64_t>(leafOfSlot_.size()) ||
             !updatedLeaves_.count(leafOfSlot_[home.index]);
    case Storage::Arena:
      return !arenaWrittenBetween(home, index, graph_.size());
    }
    return false;
  }

  const Graph &graph_;
  KernelLayout &layout_;
  std::vector<const Node *> leafOfSlot_;
  std::unordered_map<const Node *, std::vector<int64_t>> outputSlots_;
  std::unordered_map<const Node *, const Node *> lastUpdateOf_;
  std::set<const Node *> updatedLeaves_;
};

} // namespace

bool layoutKernel(const Graph &graph, const std::string &kernelName, KernelLayout &layout,
                  std::string &error) {
  layout = KernelLayout{};
  return LayoutBuilder(graph, layout).run(kernelName, error);
}

} // namespace gradc::codegen
