//===- runtime/Buffers.cpp - Host buffers of a model's tensors ------------===//
//
// addKernel checks everything first and allocates second, into staging
// storage that is committed only when all allocations succeeded, so a
// failed call leaves the store as it was.
//
//===----------------------------------------------------------------------===//
#include "runtime/Buffers.h"
#include "runtime/Init.h"

#include <cstring>
#include <fmt/format.h>
#include <new>
#include <set>
#include <utility>

namespace gradc::rt {

namespace {

bool isPersistent(Role role) { return role == Role::Param || role == Role::State; }

/// "f32[5,4] param", for messages.
std::string describe(const TensorSpec &spec) {
  return fmt::format("{}{} {}", spec.isInt ? "i32" : "f32", spec.shapeStr(), roleName(spec.role));
}

bool sameSignature(const std::vector<TensorSpec> &a, const std::vector<TensorSpec> &b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].role != b[i].role || a[i].isInt != b[i].isInt ||
        a[i].dims != b[i].dims)
      return false;
  return true;
}

} // namespace

//===----------------------------------------------------------------------===//
// AlignedBuffer
//===----------------------------------------------------------------------===//

AlignedBuffer::AlignedBuffer(int64_t bytes) : bytes_(bytes) {
  size_t rounded = (static_cast<size_t>(bytes > 0 ? bytes : 0) + kBufferAlignment - 1) /
                   kBufferAlignment * kBufferAlignment;
  if (rounded == 0)
    rounded = kBufferAlignment;
  data_ = ::operator new (rounded, std::align_val_t{kBufferAlignment});
  std::memset(data_, 0, rounded);
}

AlignedBuffer::AlignedBuffer(AlignedBuffer &&other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

AlignedBuffer &AlignedBuffer::operator=(AlignedBuffer &&other) noexcept {
  if (this != &other) {
    if (data_)
      ::operator delete (data_, std::align_val_t{kBufferAlignment});
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

AlignedBuffer::~AlignedBuffer() {
  if (data_)
    ::operator delete (data_, std::align_val_t{kBufferAlignment});
}

AlignedBuffer allocateArena(const KernelSpec &kernel) { return AlignedBuffer(kernel.arenaBytes); }

//===----------------------------------------------------------------------===//
// TensorStore
//===----------------------------------------------------------------------===//

bool TensorStore::addKernel(const KernelSpec &kernel, std::string &error) {
  if (auto it = kernels_.find(kernel.name); it != kernels_.end()) {
    if (sameSignature(it->second.signature, kernel.buffers))
      return true;
    error = fmt::format("kernel '{}' was added before with a different signature", kernel.name);
    return false;
  }

  // Check the whole signature before touching anything.
  std::set<std::string> seen;
  for (const TensorSpec &spec : kernel.buffers) {
    auto fail = [&](const std::string &message) {
      error = fmt::format("kernel '{}', tensor '{}': {}", kernel.name, spec.name, message);
      return false;
    };
    if (!seen.insert(spec.name).second)
      return fail("the name appears twice in the signature");
    for (int64_t dim : spec.dims)
      if (dim < 0)
        return fail(fmt::format("negative dimension in shape {}", spec.shapeStr()));
    if (const Tensor *existing = find(spec.name)) {
      const TensorSpec &old = existing->spec;
      if (old.role != spec.role || old.isInt != spec.isInt || old.dims != spec.dims)
        return fail(fmt::format("declared as {} here but as {} by kernel '{}'", describe(spec),
                                describe(old), existing->declaredBy));
      continue;
    }
    // (A per-step name that is another kernel's param or state was caught
    // above; per-step names of different kernels are independent.)
    if (!isPersistent(spec.role))
      continue;
    // A new param or state must not be another kernel's input or output.
    for (const auto &[otherName, record] : kernels_)
      for (const TensorSpec &other : record.signature)
        if (other.name == spec.name)
          return fail(fmt::format("declared as {} here but as {} by kernel '{}'", describe(spec),
                                  describe(other), otherName));
    if (std::string message = checkInitializer(spec); !message.empty()) {
      error = fmt::format("kernel '{}': {}", kernel.name, message);
      return false;
    }
  }

  // Allocate into staging storage.
  KernelRecord record;
  record.signature = kernel.buffers;
  std::vector<std::unique_ptr<Tensor>> created;
  uint32_t nextIndex = static_cast<uint32_t>(persistentOrder_.size());
  try {
    for (const TensorSpec &spec : kernel.buffers) {
      if (isPersistent(spec.role) && find(spec.name))
        continue;
      auto tensor = std::make_unique<Tensor>();
      tensor->spec = spec;
      tensor->declaredBy = kernel.name;
      tensor->storage = AlignedBuffer(spec.bytes());
      if (isPersistent(spec.role)) {
        tensor->initIndex = nextIndex;
        if (spec.isInt)
          initializeTensor(spec, tensor->i32(), initSeed_, nextIndex);
        else
          initializeTensor(spec, tensor->f32(), initSeed_, nextIndex);
        ++nextIndex;
        created.push_back(std::move(tensor));
      } else {
        record.local.emplace(spec.name, std::move(tensor));
      }
    }
  } catch (const std::bad_alloc &) {
    error = fmt::format("kernel '{}': out of memory while allocating its buffers", kernel.name);
    return false;
  }

  // Commit.
  for (std::unique_ptr<Tensor> &tensor : created) {
    persistentOrder_.push_back(tensor.get());
    std::string name = tensor->spec.name;
    persistent_.emplace(std::move(name), std::move(tensor));
  }
  for (const TensorSpec &spec : kernel.buffers)
    record.pointers.push_back(isPersistent(spec.role) ? find(spec.name)->data()
                                                      : record.local.at(spec.name)->data());
  kernels_.emplace(kernel.name, std::move(record));
  return true;
}

std::span<void *const> TensorStore::bindings(const std::string &kernelName) const {
  auto it = kernels_.find(kernelName);
  if (it == kernels_.end())
    return {};
  return {it->second.pointers.data(), it->second.pointers.size()};
}

Tensor *TensorStore::find(const std::string &name) {
  auto it = persistent_.find(name);
  return it == persistent_.end() ? nullptr : it->second.get();
}

const Tensor *TensorStore::find(const std::string &name) const {
  return const_cast<TensorStore *>(this)->find(name);
}

Tensor *TensorStore::find(const std::string &kernelName, const std::string &name) {
  auto kernel = kernels_.find(kernelName);
  if (kernel == kernels_.end())
    return nullptr;
  if (auto local = kernel->second.local.find(name); local != kernel->second.local.end())
    return local->second.get();
  for (const TensorSpec &spec : kernel->second.signature)
    if (spec.name == name)
      return find(name);
  return nullptr;
}

const Tensor *TensorStore::find(const std::string &kernelName, const std::string &name) const {
  return const_cast<TensorStore *>(this)->find(kernelName, name);
}

} // namespace gradc::rt
