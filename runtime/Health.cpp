//===- runtime/Health.cpp - Numerical health of a training run ------------===//
//
// Norms are summed in double so that a large tensor's norm does not lose
// its small terms; the cost is one pass over every gradient per step, a few
// percent of a step that computes those gradients.
//
//===----------------------------------------------------------------------===//
#include "runtime/Health.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace gradc::rt {

namespace {

constexpr const char *kGradPrefix = "health.grad.";
constexpr const char *kActPrefix = "health.act.";

double norm(const float *data, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    sum += double(data[i]) * double(data[i]);
  return std::sqrt(sum);
}

double distance(const float *a, const float *b, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = double(a[i]) - double(b[i]);
    sum += d * d;
  }
  return std::sqrt(sum);
}

} // namespace

HealthMonitor::HealthMonitor(TensorStore &store, const std::vector<const KernelSpec *> &kernels,
                             int64_t interval, std::string &error)
    : interval_(std::max<int64_t>(interval, 1)) {
  for (const KernelSpec *kernel : kernels)
    if (kernel)
      kernels_.push_back(kernel);
  if (kernels_.empty()) {
    error = "--health: no training kernel to watch";
    return;
  }
  const KernelSpec &main = *kernels_.front();
  for (const TensorSpec &spec : main.buffers) {
    if (spec.role == Role::Param) {
      Param param;
      param.name = spec.name;
      Tensor *tensor = store.find(spec.name);
      if (!tensor) {
        error = fmt::format("--health: param '{}' is not in the tensor store", spec.name);
        return;
      }
      param.value = tensor->f32();
      param.numel = tensor->numel();
      param.before.assign(size_t(param.numel), 0.0f);
      params_.push_back(std::move(param));
    } else if (spec.role == Role::Output && spec.name.starts_with(kActPrefix)) {
      activations_.push_back({spec.name.substr(std::string_view(kActPrefix).size()), {}, {}});
    }
  }
  for (const KernelSpec *kernel : kernels_) {
    for (Param &param : params_) {
      const Tensor *grad = store.find(kernel->name, kGradPrefix + param.name);
      if (!grad || grad->numel() != param.numel) {
        error = fmt::format("--health: kernel '{}' has no result '{}{}' (compile it with the "
                            "health pass)",
                            kernel->name, kGradPrefix, param.name);
        return;
      }
      param.gradOf.push_back(grad->f32());
    }
    for (Activation &act : activations_) {
      const Tensor *value = store.find(kernel->name, kActPrefix + act.name);
      act.valueOf.push_back(value ? value->f32() : nullptr);
      act.numelOf.push_back(value ? value->numel() : 0);
    }
  }
  for (const Param &param : params_)
    nameWidth_ = std::max(nameWidth_, param.name.size());
  for (const Activation &act : activations_)
    nameWidth_ = std::max(nameWidth_, act.name.size());
  valid_ = true;
}

int HealthMonitor::kernelIndex(const KernelSpec &kernel) const {
  for (size_t i = 0; i < kernels_.size(); ++i)
    if (kernels_[i] == &kernel)
      return int(i);
  return -1;
}

void HealthMonitor::beforeStep(int64_t, uint64_t step, const KernelSpec &) {
  if ((step + 1) % uint64_t(interval_) != 0)
    return;
  for (Param &param : params_)
    std::copy(param.value, param.value + param.numel, param.before.begin());
}

void HealthMonitor::afterStep(int64_t epoch, uint64_t step, const KernelSpec &kernel,
                              std::string &report) {
  int k = kernelIndex(kernel);
  if (k < 0)
    return;
  const bool reporting = (step + 1) % uint64_t(interval_) == 0;
  std::string table;
  if (reporting) {
    table +=
        fmt::format("health at step {} (epoch {})\n  {:<{}}  {:>11}  {:>11}  {:>11}  {:>11}\n",
                    step + 1, epoch, "param", nameWidth_, "|W|", "|grad|", "|update|", "update/W");
  }
  for (Param &param : params_) {
    const double grad = norm(param.gradOf[size_t(k)], param.numel);
    const double weight = norm(param.value, param.numel);
    // Exploding: against the median norm of the previous window, not its
    // smallest, so that one step with an almost-zero gradient (a batch
    // whose units are all dropped, say) does not make the next look like an
    // explosion.
    double typical = 0;
    if (param.seen >= kExplodingWindow) {
      std::array<double, kExplodingWindow> sorted = param.recent;
      std::sort(sorted.begin(), sorted.end());
      typical = sorted[kExplodingWindow / 2];
    }
    param.growth = typical > 0 ? grad / typical : 0;
    param.recent[size_t(param.seen % kExplodingWindow)] = grad;
    ++param.seen;
    param.vanishing = weight > 0 && grad < kVanishingRatio * weight;
    if (param.vanishing && !param.warnedVanishing) {
      report += fmt::format("warning: step {}: the gradient of {} is vanishing: |grad| {:.3g} < "
                            "{:g} x |W| (|W| = {:.3g})\n",
                            step + 1, param.name, grad, kVanishingRatio, weight);
      param.warnedVanishing = true;
      ++warnings_;
    }
    const bool exploding = param.growth > kExplodingGrowth;
    if (exploding && !param.warnedExploding) {
      report +=
          fmt::format("warning: step {}: the gradient of {} is exploding: |grad| grew {:.0f}x "
                      "over the median of the last {} steps ({:.3g} -> {:.3g})\n",
                      step + 1, param.name, param.growth, kExplodingWindow, typical, grad);
      param.warnedExploding = true;
      ++warnings_;
    }
    if (reporting) {
      const double update = distance(param.value, param.before.data(), param.numel);
      std::string flags = param.vanishing ? "  vanishing" : "";
      if (exploding)
        flags += fmt::format("  exploding ({:.0f}x)", param.growth);
      table +=
          fmt::format("  {:<{}}  {:>11.4e}  {:>11.4e}  {:>11.4e}  {:>11.4e}{}\n", param.name,
                      nameWidth_, weight, grad, update, weight > 0 ? update / weight : 0.0, flags);
    }
  }
  if (!reporting)
    return;
  if (!activations_.empty())
    table += fmt::format("  {:<{}}  {:>11}  {:>11}  {:>11}\n", "activation", nameWidth_, "mean",
                         "std", "zero");
  for (const Activation &act : activations_) {
    const float *value = act.valueOf[size_t(k)];
    const int64_t n = act.numelOf[size_t(k)];
    if (!value || n == 0)
      continue;
    double sum = 0, squares = 0;
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum += value[i];
      squares += double(value[i]) * double(value[i]);
      zeros += value[i] == 0.0f;
    }
    const double mean = sum / double(n);
    const double variance = std::max(0.0, squares / double(n) - mean * mean);
    table += fmt::format("  {:<{}}  {:>11.4e}  {:>11.4e}  {:>10.1f}%\n", act.name, nameWidth_, mean,
                         std::sqrt(variance), 100.0 * double(zeros) / double(n));
  }
  report += table;
}

} // namespace gradc::rt
