//===- tools/NumericGuard.cpp - Why did a step go NaN? --------------------===//
//
// The interpreter computes in double, where an f32 overflow (exp of 100, a
// product of 1e20 and 1e20) is still a finite number; a value counts as
// bad when it is not finite or does not fit in a float, which is where the
// compiled step got its first Inf.
//
//===----------------------------------------------------------------------===//
#include "tools/NumericGuard.h"
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "ir/Interpreter.h"
#include "runtime/Trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <limits>
#include <unordered_map>

namespace gradc::tool {

namespace {

constexpr double kFloatMax = std::numeric_limits<float>::max();

bool isBad(double v) { return !std::isfinite(v) || std::fabs(v) > kFloatMax; }

/// "max |v| 3.2e+41" or "NaN" / "Inf" for the worst element of a tensor.
std::string summarize(const ir::Tensor &tensor) {
  double largest = 0;
  for (double v : tensor.data) {
    if (std::isnan(v))
      return "NaN";
    if (std::isinf(v))
      return "Inf";
    largest = std::max(largest, std::fabs(v));
  }
  return fmt::format("max |v| {:.3g}", largest);
}

/// "(fashion_mlp.grad:12  z = x @ W1)" for the model line of `node`.
std::string modelLine(const ir::Node &node, const SourceManager &sources) {
  if (!node.loc.valid())
    return "";
  std::string_view text = sources.lineText(node.loc);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  std::string file = *node.loc.file;
  if (size_t slash = file.rfind('/'); slash != std::string::npos)
    file = file.substr(slash + 1);
  return text.empty() ? fmt::format("{}:{}", file, node.loc.line)
                      : fmt::format("{}:{}  {}", file, node.loc.line, text);
}

} // namespace

std::string diagnoseStep(const ir::Graph &graph, const SourceManager &sources,
                         const rt::StepReplay &replay) {
  const rt::KernelSpec &kernel = *replay.kernel;
  ir::Interpreter interp(graph);
  std::unordered_map<const ir::Node *, ir::Tensor> before; // leaves as the step found them
  interp.setRandomKey(replay.ctx->seed, replay.ctx->step);
  for (const auto &owned : graph.nodes()) {
    const ir::Node &node = *owned;
    if (!node.isLeaf() || !node.hasResult() || node.is(ir::OpKind::Const) ||
        node.is(ir::OpKind::DropoutMask))
      continue;
    ir::Tensor value(node.type);
    if (node.is(ir::OpKind::Hyper)) { // "lr", the one the trainer sets
      value.data.assign(value.data.size(), replay.lr);
    } else if (int index = kernel.find(node.name); index >= 0) {
      const rt::TensorSpec &spec = kernel.buffers[index];
      if (spec.numel() != node.type.numel())
        return fmt::format("(no diagnosis: the kernel's '{}' has {} elements, the graph's {})",
                           node.name, spec.numel(), node.type.numel());
      const void *data = replay.ctx->buffers[index];
      for (int64_t i = 0; i < spec.numel(); ++i)
        value.data[i] = spec.isInt ? static_cast<const int32_t *>(data)[i]
                                   : static_cast<const float *>(data)[i];
    }
    before[&node] = value;
    interp.bind(&node, std::move(value));
  }
  std::string error;
  if (!interp.run(&error))
    return fmt::format("(no diagnosis: the reference interpreter stopped: {})", error);

  const ir::Node *first = nullptr;
  for (const auto &owned : graph.nodes()) {
    const ir::Node &node = *owned;
    if (!node.hasResult() || node.isLeaf())
      continue;
    const ir::Tensor &value = interp.value(&node);
    if (std::any_of(value.data.begin(), value.data.end(), isBad)) {
      first = &node;
      break;
    }
  }
  std::string out;
  if (!first) {
    // Every value fits a float in double precision: the compiled step lost
    // it to f32 rounding alone (e.g. a sum of large terms cancelling).
    return "the reference interpreter (double precision) finds every value of this step "
           "finite and within float range: the step overflows only in f32 rounding; hint: "
           "lower the learning rate (--lr) or clip the gradient norm (--clip-grad-norm)";
  }
  out += fmt::format("first value to go bad (reference interpreter, in double; beyond float "
                     "range counts as bad):\n  %{} = {} ({}), {}: {}",
                     first->name, first->mnemonic(), ir::phaseName(first->phase), first->type.str(),
                     summarize(interp.value(first)));
  if (first->gradOf)
    out += fmt::format("\n  the gradient with respect to %{}", first->gradOf->name);
  const ir::Node &source = first->gradOf ? *first->gradOf : *first;
  if (std::string line = modelLine(source, sources); !line.empty())
    out += fmt::format("\n  from {}", line);
  for (const ir::Node *operand : first->operands)
    if (operand->hasResult())
      out += fmt::format("\n  operand %{}: {}", operand->name,
                         summarize(operand->isLeaf() && before.count(operand)
                                       ? before.at(operand)
                                       : interp.value(operand)));
  // The parameters the bad value reaches: those with a gradient term
  // (a value whose gradOf is the parameter) that goes bad.
  std::vector<std::string> params;
  for (const auto &owned : graph.nodes()) {
    const ir::Node &node = *owned;
    if (!node.gradOf || !node.gradOf->is(ir::OpKind::Param) || !node.hasResult() ||
        std::find(params.begin(), params.end(), node.gradOf->name) != params.end())
      continue;
    const ir::Tensor &value = interp.value(&node);
    if (std::any_of(value.data.begin(), value.data.end(), isBad))
      params.push_back(node.gradOf->name);
  }
  if (!params.empty())
    out += fmt::format("\nparameters whose gradient goes bad: {}", fmt::join(params, ", "));
  out += "\nhint: lower the learning rate (--lr), clip the gradient norm (--clip-grad-norm=1), "
         "check that the inputs are scaled, or use a numerically stable op (log_softmax, "
         "cross_entropy and bce_logits take logits)";
  return out;
}

} // namespace gradc::tool
