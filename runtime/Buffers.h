//===- runtime/Buffers.h - Host buffers of a model's tensors ----*- C++ -*-===//
//
// A TensorStore owns every buffer the kernels of one model touch, 64-byte
// aligned so generated code may use aligned vector loads.
//
//   - Params and state persist across kernels and steps, so they are shared
//     by name: the training step and the evaluation kernel see the same W1.
//     A name reused with another shape, element type or role is an error.
//     They are initialized once, when first added, with initializeTensor and
//     tensorIndex = the order in which params and state were first added.
//   - Inputs, targets and outputs are per call, so each kernel has its own:
//     a training step with batch 128 and an evaluation kernel with batch
//     1000 may both call their input "x".
//
// Everything is allocated when a kernel is added, nothing per step.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Model.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace gradc::rt {

/// The alignment of every buffer: one cache line, and a full AVX-512 vector.
inline constexpr size_t kBufferAlignment = 64;

/// A zero-filled, kBufferAlignment-aligned heap block; move-only.
class AlignedBuffer {
public:
  AlignedBuffer() = default;
  /// At least `bytes` bytes (rounded up to the alignment, and never null,
  /// even for 0 bytes, so a kernel never sees a null buffer).  Throws
  /// std::bad_alloc when memory is exhausted.
  explicit AlignedBuffer(int64_t bytes);
  AlignedBuffer(AlignedBuffer &&other) noexcept;
  AlignedBuffer &operator=(AlignedBuffer &&other) noexcept;
  AlignedBuffer(const AlignedBuffer &) = delete;
  AlignedBuffer &operator=(const AlignedBuffer &) = delete;
  ~AlignedBuffer();

  void *data() const { return data_; }
  /// The size asked for (not the rounded-up size).
  int64_t bytes() const { return bytes_; }
  template <typename T> T *as() const { return static_cast<T *>(data_); }

private:
  void *data_ = nullptr;
  int64_t bytes_ = 0;
};

/// The scratch arena of `kernel`: kernel.arenaBytes, aligned and zeroed.
AlignedBuffer allocateArena(const KernelSpec &kernel);

/// One tensor and its storage.
struct Tensor {
  TensorSpec spec;
  AlignedBuffer storage;
  /// For params and state: the tensorIndex it was initialized with; else -1.
  int64_t initIndex = -1;
  /// The kernel that first declared it (for error messages).
  std::string declaredBy;

  void *data() const { return storage.data(); }
  float *f32() const { return storage.as<float>(); }
  int32_t *i32() const { return storage.as<int32_t>(); }
  int64_t numel() const { return spec.numel(); }
};

class TensorStore {
public:
  /// `initSeed` keys the initializers of params and state.
  explicit TensorStore(uint64_t initSeed = 1) : initSeed_(initSeed) {}
  TensorStore(const TensorStore &) = delete;
  TensorStore &operator=(const TensorStore &) = delete;

  /// Creates the buffers `kernel` needs that do not exist yet and records
  /// its bindings.  Adding the same kernel (same name, same signature) again
  /// does nothing.  On error (a clash with an earlier kernel, a bad shape or
  /// initializer, a name twice in one signature, out of memory) returns
  /// false, sets `error` and changes nothing.
  bool addKernel(const KernelSpec &kernel, std::string &error);

  /// ctx.buffers for the kernel called `kernelName`: one pointer per
  /// buffer, in signature order; empty if it was never added.  The pointers
  /// stay valid as long as the store lives.
  std::span<void *const> bindings(const std::string &kernelName) const;

  /// The param or state called `name`, or null.
  Tensor *find(const std::string &name);
  const Tensor *find(const std::string &name) const;
  /// Any buffer of a kernel's signature (inputs and outputs included), or null.
  Tensor *find(const std::string &kernelName, const std::string &name);
  const Tensor *find(const std::string &kernelName, const std::string &name) const;

  /// Params and state, in the order they were added (= their initIndex).
  const std::vector<Tensor *> &persistent() const { return persistentOrder_; }

  uint64_t initSeed() const { return initSeed_; }

private:
  struct KernelRecord {
    std::vector<TensorSpec> signature;
    std::map<std::string, std::unique_ptr<Tensor>> local; ///< inputs, targets, outputs
    std::vector<void *> pointers;
  };

  uint64_t initSeed_;
  std::map<std::string, std::unique_ptr<Tensor>> persistent_;
  std::vector<Tensor *> persistentOrder_;
  std::map<std::string, KernelRecord> kernels_;
};

} // namespace gradc::rt
