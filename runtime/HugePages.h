//===- runtime/HugePages.h - Huge pages for big buffers ---------*- C++ -*-===//
#pragma once

#include <cstddef>
#include <cstdint>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace gradc::rt {

/// Asks the kernel to back the 2 MiB-aligned interior of [data, data +
/// bytes) with transparent huge pages (Linux with THP in "madvise" mode, as
/// Debian ships it).  A data set of tens of megabytes is then first touched
/// in a few dozen page faults instead of ten thousand; on a virtual machine
/// those faults cost more than the bytes they map (they were a third of
/// loading Fashion-MNIST).  Call before the first write; only a hint:
/// nothing happens where it is not supported or is refused.
inline void adviseHugePages(void *data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHugePage = uintptr_t(2) << 20;
  const auto start = reinterpret_cast<uintptr_t>(data);
  const uintptr_t begin = (start + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (start + bytes) & ~(kHugePage - 1);
  if (end > begin)
    ::madvise(reinterpret_cast<void *>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

} // namespace gradc::rt
