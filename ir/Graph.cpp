//===- ir/Graph.cpp - Nodes, graphs and the op table ----------------------===//
#include "ir/Graph.h"

#include <algorithm>
#include <cassert>
#include <fmt/format.h>
#include <unordered_map>

namespace gradc::ir {

const char *dtypeName(DType type) { return type == DType::F32 ? "f32" : "i32"; }

int64_t Type::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string Type::str() const {
  return fmt::format("{}[{}]", dtypeName(dtype), fmt::join(shape, ","));
}

// The `operands` column: all f32, or one OperandType per slot.
#define F32_OPERANDS (OperandTypes{})
#define OPERANDS(...) (OperandTypes{__VA_ARGS__})
static const OpInfo kOpTable[] = {
#define GRADC_OP(Name, Mnemonic, Arity, Operands, ValueAttr, Attributes, Rule, Traits)             \
  OpInfo{OpKind::Name, Mnemonic, Arity, Operands, ValueAttr, Attributes, Rule, Traits},
#include "ir/Ops.def"
};
#undef F32_OPERANDS
#undef OPERANDS

const OpInfo &opInfo(OpKind kind) { return kOpTable[static_cast<size_t>(kind)]; }
std::span<const OpInfo> allOps() { return kOpTable; }

std::optional<OpKind> opKindFromMnemonic(std::string_view mnemonic) {
  for (const OpInfo &info : kOpTable)
    if (mnemonic == info.mnemonic)
      return info.kind;
  return std::nullopt;
}

const char *graphKindName(GraphKind kind) {
  switch (kind) {
  case GraphKind::Forward:
    return "forward";
  case GraphKind::Train:
    return "train";
  case GraphKind::Inference:
    return "inference";
  }
  return "?";
}

const char *phaseName(Phase phase) {
  switch (phase) {
  case Phase::Forward:
    return "forward";
  case Phase::Backward:
    return "backward";
  case Phase::Update:
    return "update";
  }
  return "?";
}

std::unique_ptr<Graph> Graph::clone() const {
  auto copy = std::make_unique<Graph>();
  copy->name = name;
  copy->kind = kind;
  copy->weightDecay = weightDecay;
  copy->batch = batch;
  copy->optimizer = optimizer;
  copy->nextSuffix_ = nextSuffix_;
  std::unordered_map<const Node *, Node *> map;
  for (const auto &node : nodes_) {
    auto fresh = std::make_unique<Node>(*node);
    for (Node *&operand : fresh->operands)
      operand = map.at(operand);
    map[node.get()] = fresh.get();
    if (fresh->hasResult())
      copy->byName_[fresh->name] = fresh.get();
    copy->nodes_.push_back(std::move(fresh));
  }
  for (const auto &node : copy->nodes_)
    if (node->gradOf)
      node->gradOf = map.at(node->gradOf);
  for (const GraphOutput &out : outputs)
    copy->outputs.push_back({out.key, map.at(out.value)});
  return copy;
}

Node *Graph::create(OpKind kind, std::vector<Node *> operands, Type type, Attrs attrs,
                    std::string_view name, SourceLoc loc) {
  auto node = std::make_unique<Node>();
  node->kind = kind;
  node->operands = std::move(operands);
  node->type = std::move(type);
  node->attrs = std::move(attrs);
  node->loc = loc;
  node->phase = phase_;
  Node *raw = node.get();
  if (node->hasResult()) {
    node->name = uniqueName(name.empty() ? std::string_view(opInfo(kind).mnemonic) : name);
    byName_[node->name] = raw;
  }
  if (insertBefore_)
    nodes_.insert(nodes_.begin() + indexOf(insertBefore_), std::move(node));
  else
    nodes_.push_back(std::move(node));
  return raw;
}

void Graph::setInsertionPoint(Node *pos) { insertBefore_ = pos; }

size_t Graph::indexOf(const Node *node) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].get() == node)
      return i;
  assert(false && "node is not in this graph");
  return nodes_.size();
}

std::vector<Node *> Graph::users(const Node *node) const {
  std::vector<Node *> result;
  for (const auto &user : nodes_)
    if (std::find(user->operands.begin(), user->operands.end(), node) != user->operands.end())
      result.push_back(user.get());
  return result;
}

Node *Graph::find(std::string_view name) const {
  auto it = byName_.find(std::string(name));
  return it == byName_.end() ? nullptr : it->second;
}

std::string Graph::uniqueName(std::string_view base) const {
  if (!find(base))
    return std::string(base);
  int &next = nextSuffix_[std::string(base)];
  for (next = std::max(next, 1);; ++next) {
    std::string candidate = fmt::format("{}.{}", base, next);
    if (!find(candidate))
      return candidate;
  }
}

void Graph::rename(Node *node, std::string_view base) {
  if (node->name == base)
    return;
  byName_.erase(node->name);
  node->name = uniqueName(base);
  byName_[node->name] = node;
}

void Graph::replaceAllUsesWith(Node *from, Node *to) {
  for (const auto &node : nodes_) {
    for (Node *&operand : node->operands)
      if (operand == from)
        operand = to;
    if (node->gradOf == from)
      node->gradOf = to;
  }
  for (GraphOutput &out : outputs)
    if (out.value == from)
      out.value = to;
}

void Graph::erase(Node *node) {
  assert(users(node).empty() && "erasing a node that is still used");
  if (insertBefore_ == node)
    insertBefore_ = nullptr;
  for (const auto &other : nodes_)
    if (other->gradOf == node)
      other->gradOf = nullptr;
  auto named = byName_.find(node->name);
  if (named != byName_.end() && named->second == node)
    byName_.erase(named);
  nodes_.erase(nodes_.begin() + indexOf(node));
}

void Graph::moveBefore(Node *node, Node *pos) {
  size_t from = indexOf(node);
  std::unique_ptr<Node> owned = std::move(nodes_[from]);
  nodes_.erase(nodes_.begin() + from);
  nodes_.insert(nodes_.begin() + indexOf(pos), std::move(owned));
}

void Graph::moveToEnd(Node *node) {
  size_t from = indexOf(node);
  std::unique_ptr<Node> owned = std::move(nodes_[from]);
  nodes_.erase(nodes_.begin() + from);
  nodes_.push_back(std::move(owned));
}

Node *Graph::output(std::string_view key) const {
  for (const GraphOutput &out : outputs)
    if (out.key == key)
      return out.value;
  return nullptr;
}

void Graph::setOutput(std::string_view key, Node *value) {
  for (GraphOutput &out : outputs)
    if (out.key == key) {
      out.value = value;
      return;
    }
  outputs.push_back({std::string(key), value});
}

std::vector<Node *> Graph::nodesOfKind(OpKind kind) const {
  std::vector<Node *> result;
  for (const auto &node : nodes_)
    if (node->kind == kind)
      result.push_back(node.get());
  return result;
}

} // namespace gradc::ir
