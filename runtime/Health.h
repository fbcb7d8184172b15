//===- runtime/Health.h - Numerical health of a training run ---*- C++ -*-===//
//
// gradc train --health=N (lecture 2.7: vanishing and exploding gradients).
// Every N steps it prints, per parameter, the norm of the weights, of the
// gradient and of the update the step applied, and per layer the mean and
// standard deviation of the activations.  After every step it checks each
// gradient and warns, naming the parameter, when
//   - the gradient's norm is below 1e-7 of its weight's (vanishing), or
//   - the gradient's norm grew more than 100x within 10 steps (exploding:
//     the current norm against the median of the 10 before; the median,
//     not the minimum, so one near-zero gradient does not count).
// Each warning is printed the first time it fires for a parameter; the
// periodic table marks every parameter that is in that state now.
//
// It reads the results "health.grad.<param>" and "health.act.<value>"
// that passes/Health.cpp adds to the training step.  All buffers are
// allocated when the monitor is made: watching allocates nothing per step.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Buffers.h"
#include "runtime/Trainer.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace gradc::rt {

/// Thresholds of the warnings, from the issue that asked for them.
inline constexpr double kVanishingRatio = 1e-7;
inline constexpr double kExplodingGrowth = 100;
inline constexpr int kExplodingWindow = 10;

class HealthMonitor final : public StepObserver {
public:
  /// Watches the params of `store` through the health results of `kernels`
  /// (the step and its tail; null entries are skipped), which must already
  /// be in the store.  Reports every `interval` steps (>= 1).  Returns an
  /// error through `error` (then valid() is false) when a kernel lacks
  /// health results.
  HealthMonitor(TensorStore &store, const std::vector<const KernelSpec *> &kernels,
                int64_t interval, std::string &error);

  bool valid() const { return valid_; }

  void beforeStep(int64_t epoch, uint64_t step, const KernelSpec &kernel) override;
  void afterStep(int64_t epoch, uint64_t step, const KernelSpec &kernel,
                 std::string &report) override;

  /// The warnings printed so far, for tests.
  int64_t warnings() const { return warnings_; }

private:
  struct Param {
    std::string name;
    float *value = nullptr;
    int64_t numel = 0;
    std::vector<const float *> gradOf;             ///< per kernel, its health.grad buffer
    std::vector<float> before;                     ///< the value before a report step
    std::array<double, kExplodingWindow> recent{}; ///< gradient norms of the last steps
    int64_t seen = 0;                              ///< steps recorded in `recent`
    bool warnedVanishing = false, warnedExploding = false;
    bool vanishing = false;
    double growth = 0; ///< current norm / smallest of the window; 0: unknown
  };
  struct Activation {
    std::string name;
    std::vector<const float *> valueOf; ///< per kernel; null if that kernel lacks it
    std::vector<int64_t> numelOf;
  };
  int kernelIndex(const KernelSpec &kernel) const;

  std::vector<const KernelSpec *> kernels_;
  std::vector<Param> params_;
  std::vector<Activation> activations_;
  int64_t interval_ = 1;
  int64_t warnings_ = 0;
  bool valid_ = false;
  size_t nameWidth_ = 8;
};

} // namespace gradc::rt
