//===- ir/Interpreter.h - Reference semantics of every op ------*- C++ -*-===//
//
// Runs a graph node by node in double precision.  It is the definition the
// JIT is checked against and the engine of the finite-difference gradient
// check, so it favours obviousness over speed.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Graph.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace gradc::ir {

struct Tensor {
  Type type;
  std::vector<double> data; ///< row-major; i32 values are stored exactly
  Tensor() = default;
  explicit Tensor(Type t) : type(std::move(t)), data(type.numel(), 0.0) {}
  Tensor(Type t, std::vector<double> values) : type(std::move(t)), data(std::move(values)) {}
};

class Interpreter {
public:
  explicit Interpreter(const Graph &graph) : graph_(graph) {}

  /// Gives a leaf (input, target, param, state, hyper) its value.
  void bind(const Node *leaf, Tensor value);
  /// The key of the dropout masks' random numbers.
  void setRandomKey(uint64_t seed, uint64_t step) {
    seed_ = seed;
    step_ = step;
  }
  /// Runs every node.  Afterwards `value` gives each node's result and the
  /// bound params and state hold what the graph's update ops wrote.
  /// Returns false and sets `error` when a leaf was not bound or a class
  /// label (cross_entropy, onehot) is not in [0, classes); the message names
  /// the node, the label and its row.  With `only`, runs just the nodes
  /// `only` depends on (gradcheck's perturbed objectives skip the backward
  /// graph, two thirds of the work); the others keep no value.
  bool run(std::string *error, const Node *only = nullptr);

  const Tensor &value(const Node *node) const { return values_.at(node); }
  const Tensor *output(std::string_view key) const;
  /// Current value of a bound leaf (after run: the updated one).
  const Tensor &leafValue(const Node *leaf) const { return bound_.at(leaf); }

private:
  const Graph &graph_;
  std::unordered_map<const Node *, Tensor> bound_;
  std::unordered_map<const Node *, Tensor> values_;
  uint64_t seed_ = 0, step_ = 0;
};

/// Row-major strides of a shape.
std::vector<int64_t> stridesOf(const Shape &shape);

} // namespace gradc::ir
