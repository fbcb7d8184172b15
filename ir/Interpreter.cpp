//===- ir/Interpreter.cpp - Reference semantics of every op ---------------===//
#include "ir/Interpreter.h"
#include "runtime/Philox.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <fmt/format.h>
#include <unordered_set>

namespace gradc::ir {

std::vector<int64_t> stridesOf(const Shape &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

namespace {

/// Unravels a flat index of `shape` into coordinates.
std::vector<int64_t> coordinates(int64_t flat, const Shape &shape) {
  std::vector<int64_t> coord(shape.size());
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    coord[i] = flat % shape[i];
    flat /= shape[i];
  }
  return coord;
}

/// Flat index into an operand of shape `in` broadcast (NumPy rules) to the
/// output coordinates `coord`.
int64_t broadcastIndex(const std::vector<int64_t> &coord, const Shape &in) {
  size_t offset = coord.size() - in.size();
  int64_t index = 0;
  for (size_t i = 0; i < in.size(); ++i)
    index = index * in[i] + (in[i] == 1 ? 0 : coord[offset + i]);
  return index;
}

double unary(OpKind kind, double x, double attr) {
  switch (kind) {
  case OpKind::Neg:
    return -x;
  case OpKind::Exp:
    return std::exp(x);
  case OpKind::Log:
    return std::log(x);
  case OpKind::Sqrt:
    return std::sqrt(x);
  case OpKind::Relu:
    return x > 0 ? x : 0;
  case OpKind::Sigmoid:
    return 1 / (1 + std::exp(-x));
  case OpKind::Tanh:
    return std::tanh(x);
  case OpKind::Step:
    return x > 0 ? 1 : 0;
  case OpKind::Scale:
    return x * attr;
  case OpKind::Pow:
    return std::pow(x, attr);
  default:
    assert(false && "not a unary elementwise op");
    return 0;
  }
}

double binary(OpKind kind, double a, double b) {
  switch (kind) {
  case OpKind::Add:
    return a + b;
  case OpKind::Sub:
    return a - b;
  case OpKind::Mul:
    return a * b;
  case OpKind::Div:
    return a / b;
  case OpKind::Maximum: // NaN in either operand gives NaN
    return std::isnan(a) || std::isnan(b) ? std::nan("") : (a >= b ? a : b);
  case OpKind::Minimum:
    return std::isnan(a) || std::isnan(b) ? std::nan("") : (a <= b ? a : b);
  default:
    assert(false && "not a binary elementwise op");
    return 0;
  }
}

/// Element (i, j) of op(m) for a matmul operand; vectors are a row (first
/// operand) or a column (second operand).
double matElem(const Tensor &m, bool trans, bool isFirst, int64_t i, int64_t j) {
  if (m.type.rank() == 1)
    return m.data[isFirst ? j : i];
  int64_t cols = m.type.shape[1];
  return trans ? m.data[j * cols + i] : m.data[i * cols + j];
}

/// The class index `label` of row `row` for `node` (cross_entropy,
/// onehot), or an error naming the node and the label when it is not one of
/// the `classes` classes.
bool classIndex(const Node &node, double label, int64_t row, int64_t classes, int64_t &index,
                std::string *error) {
  if (label >= 0 && label < static_cast<double>(classes) && label == std::floor(label)) {
    index = static_cast<int64_t>(label);
    return true;
  }
  if (error)
    *error = fmt::format("{} %{}: label {} of row {} is not a class index in [0, {})",
                         node.mnemonic(), node.name, label, row, classes);
  return false;
}

} // namespace

void Interpreter::bind(const Node *leaf, Tensor value) {
  assert(leaf->isLeaf() && value.type == leaf->type);
  bound_[leaf] = std::move(value);
}

const Tensor *Interpreter::output(std::string_view key) const {
  const Node *node = graph_.output(key);
  return node ? &values_.at(node) : nullptr;
}

bool Interpreter::run(std::string *error, const Node *only) {
  values_.clear();
  std::unordered_set<const Node *> needed;
  if (only) {
    std::vector<const Node *> pending = {only};
    while (!pending.empty()) {
      const Node *next = pending.back();
      pending.pop_back();
      if (needed.insert(next).second)
        pending.insert(pending.end(), next->operands.begin(), next->operands.end());
    }
  }
  std::vector<std::pair<const Node *, Tensor>> updates;
  for (const auto &owned : graph_.nodes()) {
    const Node &node = *owned;
    if (only && !needed.count(&node))
      continue;
    Tensor out(node.type);
    auto in = [&](size_t i) -> const Tensor & { return values_.at(node.operands[i]); };
    const Attrs &a = node.attrs;
    switch (node.kind) {
    case OpKind::Input:
    case OpKind::Target:
    case OpKind::Param:
    case OpKind::State:
    case OpKind::Hyper: {
      auto it = bound_.find(&node);
      if (it == bound_.end()) {
        if (error)
          *error = fmt::format("no value was given for {} %{}", node.mnemonic(), node.name);
        return false;
      }
      out = it->second;
      break;
    }
    case OpKind::Const:
      std::fill(out.data.begin(), out.data.end(), a.value);
      break;
    case OpKind::DropoutMask: {
      float p = static_cast<float>(a.value);
      for (int64_t i = 0; i < node.type.numel(); ++i)
        out.data[i] = rt::dropoutUniform(seed_, step_, static_cast<uint32_t>(a.stream), i) >= p
                          ? 1.0 / (1.0 - a.value)
                          : 0.0;
      break;
    }
    case OpKind::Neg:
    case OpKind::Exp:
    case OpKind::Log:
    case OpKind::Sqrt:
    case OpKind::Relu:
    case OpKind::Sigmoid:
    case OpKind::Tanh:
    case OpKind::Step:
    case OpKind::Scale:
    case OpKind::Pow:
      for (size_t i = 0; i < out.data.size(); ++i)
        out.data[i] = unary(node.kind, in(0).data[i], a.value);
      break;
    case OpKind::Add:
    case OpKind::Sub:
    case OpKind::Mul:
    case OpKind::Div:
    case OpKind::Maximum:
    case OpKind::Minimum:
      for (int64_t i = 0; i < node.type.numel(); ++i) {
        auto coord = coordinates(i, node.type.shape);
        out.data[i] = binary(node.kind, in(0).data[broadcastIndex(coord, in(0).type.shape)],
                             in(1).data[broadcastIndex(coord, in(1).type.shape)]);
      }
      break;
    case OpKind::Sum:
    case OpKind::Mean: {
      const Tensor &x = in(0);
      auto outStrides = stridesOf(node.type.shape);
      for (int64_t i = 0; i < x.type.numel(); ++i) {
        auto coord = coordinates(i, x.type.shape);
        int64_t o = 0;
        for (int64_t d = 0, k = 0; d < x.type.rank(); ++d)
          if (std::find(a.axes.begin(), a.axes.end(), d) == a.axes.end())
            o += coord[d] * outStrides[k++];
        out.data[o] += x.data[i];
      }
      if (node.is(OpKind::Mean)) {
        int64_t count = x.type.numel() / node.type.numel();
        for (double &v : out.data)
          v /= static_cast<double>(count);
      }
      break;
    }
    case OpKind::Max: {
      const Tensor &x = in(0);
      auto outStrides = stridesOf(node.type.shape);
      std::fill(out.data.begin(), out.data.end(), -HUGE_VAL);
      for (int64_t i = 0; i < x.type.numel(); ++i) {
        auto coord = coordinates(i, x.type.shape);
        int64_t o = 0;
        for (int64_t d = 0, k = 0; d < x.type.rank(); ++d)
          if (std::find(a.axes.begin(), a.axes.end(), d) == a.axes.end())
            o += coord[d] * outStrides[k++];
        double v = x.data[i];
        if (std::isnan(v) || v > out.data[o])
          out.data[o] = v; // once NaN, it stays: NaN > v is false
      }
      break;
    }
    case OpKind::Softmax:
    case OpKind::LogSoftmax: {
      // Row by row along the last axis, shifted by the row's maximum.
      const Tensor &x = in(0);
      int64_t classes = x.type.shape.back(), rows = x.type.numel() / classes;
      for (int64_t r = 0; r < rows; ++r) {
        const double *row = x.data.data() + r * classes;
        double *result = out.data.data() + r * classes;
        double m = *std::max_element(row, row + classes);
        double sum = 0;
        for (int64_t c = 0; c < classes; ++c)
          sum += std::exp(row[c] - m);
        for (int64_t c = 0; c < classes; ++c)
          result[c] =
              node.is(OpKind::Softmax) ? std::exp(row[c] - m) / sum : row[c] - m - std::log(sum);
      }
      break;
    }
    case OpKind::CrossEntropy: {
      // mean over rows of logsumexp(row) - row[label].
      const Tensor &x = in(0), &labels = in(1);
      int64_t classes = x.type.shape.back(), rows = x.type.numel() / classes;
      double total = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const double *row = x.data.data() + r * classes;
        int64_t label = 0;
        if (!classIndex(node, labels.data[r], r, classes, label, error))
          return false;
        double m = *std::max_element(row, row + classes);
        double sum = 0;
        for (int64_t c = 0; c < classes; ++c)
          sum += std::exp(row[c] - m);
        total += m + std::log(sum) - row[label];
      }
      out.data[0] = total / static_cast<double>(rows);
      break;
    }
    case OpKind::BceLogits: {
      const Tensor &x = in(0), &t = in(1);
      double total = 0;
      for (size_t i = 0; i < x.data.size(); ++i) {
        double v = x.data[i];
        total += std::max(v, 0.0) - v * t.data[i] + std::log1p(std::exp(-std::fabs(v)));
      }
      out.data[0] = total / static_cast<double>(x.data.size());
      break;
    }
    case OpKind::OneHot: {
      const Tensor &labels = in(0);
      int64_t classes = node.type.shape.back();
      for (int64_t r = 0; r < labels.type.numel(); ++r) {
        int64_t label = 0;
        if (!classIndex(node, labels.data[r], r, classes, label, error))
          return false;
        out.data[r * classes + label] = 1;
      }
      break;
    }
    case OpKind::SumSq:
      for (double v : in(0).data)
        out.data[0] += v * v;
      break;
    case OpKind::Broadcast: {
      const Tensor &x = in(0);
      auto inStrides = stridesOf(x.type.shape);
      for (int64_t i = 0; i < node.type.numel(); ++i) {
        auto coord = coordinates(i, node.type.shape);
        int64_t src = 0;
        for (int64_t d = 0, k = 0; d < node.type.rank(); ++d)
          if (std::find(a.axes.begin(), a.axes.end(), d) == a.axes.end())
            src += coord[d] * inStrides[k++];
        out.data[i] = x.data[src];
      }
      break;
    }
    case OpKind::Reshape:
      out.data = in(0).data;
      break;
    case OpKind::Transpose: {
      int64_t rows = in(0).type.shape[0], cols = in(0).type.shape[1];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          out.data[c * rows + r] = in(0).data[r * cols + c];
      break;
    }
    case OpKind::MatMul: {
      const Tensor &x = in(0), &y = in(1);
      int64_t m = x.type.rank() == 1 ? 1 : (a.transA ? x.type.shape[1] : x.type.shape[0]);
      int64_t k =
          x.type.rank() == 1 ? x.type.shape[0] : (a.transA ? x.type.shape[0] : x.type.shape[1]);
      int64_t n = y.type.rank() == 1 ? 1 : (a.transB ? y.type.shape[0] : y.type.shape[1]);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double sum = 0;
          for (int64_t l = 0; l < k; ++l)
            sum += matElem(x, a.transA, true, i, l) * matElem(y, a.transB, false, l, j);
          out.data[i * n + j] = sum;
        }
      break;
    }
    case OpKind::Outer: {
      int64_t n = in(1).type.numel();
      for (int64_t i = 0; i < in(0).type.numel(); ++i)
        for (int64_t j = 0; j < n; ++j)
          out.data[i * n + j] = in(0).data[i] * in(1).data[j];
      break;
    }
    case OpKind::Dropout:
      // The op as written in the model; unlowered it is the identity, as in
      // the inference graph.
      out.data = in(0).data;
      break;
    case OpKind::SquaredError: {
      double sum = 0;
      for (size_t i = 0; i < in(0).data.size(); ++i) {
        double d = in(0).data[i] - in(1).data[i];
        sum += d * d;
      }
      out.data[0] = a.value * sum;
      break;
    }
    case OpKind::Update:
      updates.emplace_back(node.operands[0], in(1));
      break;
    }
    if (node.hasResult())
      values_[&node] = std::move(out);
  }
  // Updates take effect after the step, as in the generated code.
  for (auto &[leaf, value] : updates)
    bound_[leaf] = std::move(value);
  return true;
}

} // namespace gradc::ir
