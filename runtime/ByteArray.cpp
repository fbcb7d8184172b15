//===- runtime/ByteArray.cpp - Read-only bytes, owned or mapped -----------===//
#include "runtime/ByteArray.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gradc::rt {

std::optional<ByteArray> mapReadOnly(const std::string &path, size_t minSize, bool followLinks) {
  // Checked before opening: opening a named pipe's read end could release
  // its writer into a closed pipe.
  struct stat info;
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode))
    return std::nullopt;
  const int fd =
      ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (followLinks ? 0 : O_NOFOLLOW));
  if (fd < 0)
    return std::nullopt;
  void *base = MAP_FAILED;
  size_t length = 0;
  // (Again on what was opened: the path may have changed in between.)
  if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) && info.st_size > 0 &&
      size_t(info.st_size) >= minSize) {
    length = size_t(info.st_size);
    base = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  }
  ::close(fd);
  if (base == MAP_FAILED)
    return std::nullopt;
  std::shared_ptr<const void> mapping(
      base, [length](const void *at) { ::munmap(const_cast<void *>(at), length); });
  return ByteArray(std::move(mapping), static_cast<const char *>(base), length);
}

} // namespace gradc::rt
