//===- test/support/OpSamples.h - A small instance of every op -*- C++ -*-===//
//
// For each row of ir/Ops.def, the operand shapes, value ranges and
// attributes of a few small instances of the op.  The finite-difference
// gradient test and the JIT-vs-interpreter test both walk the op table and
// take their cases from here, so an op added to the table without samples
// fails both.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "ir/Graph.h"
#include "ir/Interpreter.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace gradc::test {

struct OperandSample {
  ir::Type type;
  double lo = -2, hi = 2; ///< values are drawn uniformly from [lo, hi]
  /// Values are integers drawn uniformly from {lo, ..., hi} instead (class
  /// labels of type i32, or f32 values with ties).
  bool integers = false;
};

struct OpSample {
  std::string label; ///< e.g. "matmul [4,3]^T @ [4]"
  std::vector<OperandSample> operands;
  ir::Attrs attrs;
  std::optional<ir::Type> declared; ///< result type of SHAPE_DECLARED ops
};

/// Samples of `kind`.  Empty only for ops with no value to compute (leaves
/// and update); GRAD ops always have at least one.
std::vector<OpSample> samplesFor(ir::OpKind kind);

/// A graph checking one sample:
///   params %a, %b, ... (the operands; "param" so autodiff differentiates
///                       them; an operand in a class-label slot is a
///                       `target` instead, which no test perturbs)
///   %out = <op> %a, ...
///   %r = input : (type of out)               random weights for the loss
///   %L = sum (mul %out, %r) over all axes    a scalar that mixes every output
///   return loss=%L, value=%out
/// For ops without operands the graph is just %out, %r, %L.
std::unique_ptr<ir::Graph> buildSampleGraph(ir::OpKind kind, const OpSample &sample);

/// Random values for every leaf of `graph`: the operands %a, %b, ... within
/// their sample's range and kind, %r in [-1, 1].  The same `seed` gives the
/// same values.
std::vector<std::pair<const ir::Node *, ir::Tensor>>
randomLeafValues(const ir::Graph &graph, const OpSample &sample, uint32_t seed);

} // namespace gradc::test
