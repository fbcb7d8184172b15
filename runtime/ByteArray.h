//===- runtime/ByteArray.h - Read-only bytes, owned or mapped ---*- C++ -*-===//
//
// A data set's pixels are tens of megabytes that nothing writes after
// loading.  They come from a string that gunzip filled or from a file
// mapped from the inflated-data cache (runtime/InflatedCache.h), and a
// slice of them (a train/test split, the pixels after an IDX header) is
// a view that keeps the whole alive rather than a copy.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace gradc::rt {

class ByteArray {
public:
  ByteArray() = default;
  /// Takes the string over (no copy of its bytes).
  explicit ByteArray(std::string owned) {
    auto held = std::make_shared<const std::string>(std::move(owned));
    begin_ = held->data();
    size_ = held->size();
    owner_ = std::move(held);
  }
  /// `size` bytes at `data`, valid as long as `owner` lives.
  ByteArray(std::shared_ptr<const void> owner, const char *data, size_t size)
      : owner_(std::move(owner)), begin_(data), size_(size) {}

  const char *data() const { return begin_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const char *begin() const { return begin_; }
  const char *end() const { return begin_ + size_; }
  char operator[](size_t i) const { return begin_[i]; }

  /// Bytes [offset, offset + count) of these, sharing their owner;
  /// clamped to what there is.
  ByteArray slice(size_t offset, size_t count) const {
    offset = offset < size_ ? offset : size_;
    count = count < size_ - offset ? count : size_ - offset;
    return ByteArray(owner_, begin_ + offset, count);
  }

private:
  std::shared_ptr<const void> owner_;
  const char *begin_ = nullptr;
  size_t size_ = 0;
};

/// The bytes of the regular file at `path`, mapped read-only with their
/// pages populated at once (from the page cache: no fresh memory to touch,
/// which is dear on a VM); the mapping lives as long as the ByteArray and
/// its slices.  Nothing when `path` is not a regular file of at least
/// `minSize` bytes (at least 1) or cannot be mapped: a named pipe is never
/// opened, so its writer is not released into a closed pipe, and with
/// `followLinks` false neither is a symbolic link.  Like any mapped file,
/// one truncated by another program while it is read stops the reader
/// with SIGBUS.
std::optional<ByteArray> mapReadOnly(const std::string &path, size_t minSize, bool followLinks);

} // namespace gradc::rt
