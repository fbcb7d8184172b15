//===- runtime/InflatedCache.cpp - Inflate a data file once ---------------===//
//
// An entry is a 64-byte header (what it was made from) and the inflated
// bytes, mapped read-only on later runs.  A mapping rather than a read:
// reading 47 MB into memory costs page faults and a copy (40-60 ms of one
// core on this VM for Fashion-MNIST's training images, uncompressed),
// mapping the page cache's copy 3-4 ms, and checking its CRC-32 with
// libdeflate's carry-less-multiply code 5 ms more.
//
//===----------------------------------------------------------------------===//
#include "runtime/InflatedCache.h"
#include "runtime/CacheDirs.h"
#include "runtime/Gzip.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <libdeflate.h>
#include <optional>
#include <signal.h>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace gradc::rt {
namespace {

/// How much of the start of a gzip file is hashed into its fingerprint.
constexpr size_t kHeadBytes = 4096;

/// What names a gzip file's entry.
struct Fingerprint {
  uint64_t compressedSize = 0;
  uint32_t crc = 0;   ///< the trailer's CRC-32 of the inflated bytes
  uint32_t isize = 0; ///< the trailer's inflated size mod 2^32
  uint64_t headHash = 0;
};

/// An entry's header, in the host's byte order (a cache is one machine's).
struct EntryHeader {
  char magic[16];
  uint64_t compressedSize;
  uint32_t crc;
  uint32_t isize;
  uint64_t headHash;
  uint64_t inflatedSize;
  uint64_t reserved;
};
static_assert(sizeof(EntryHeader) == 56);
/// The inflated bytes start here, a cache line in.
constexpr size_t kEntryDataOffset = 64;
constexpr char kMagic[16] = "gradc inflated1";

uint64_t fnv1a(const unsigned char *data, size_t size) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i)
    hash = (hash ^ data[i]) * 0x100000001b3ull;
  return hash;
}

uint32_t littleEndian32(const unsigned char *p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

/// Reads exactly `size` bytes at `offset`.
bool preadAll(int fd, void *to, size_t size, off_t offset) {
  auto *out = static_cast<char *>(to);
  while (size > 0) {
    ssize_t n = ::pread(fd, out, size, offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    out += n;
    size -= size_t(n);
    offset += n;
  }
  return true;
}

bool writeAll(int fd, const char *from, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, from, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    from += n;
    size -= size_t(n);
  }
  return true;
}

/// The fingerprint of `path` if it is a regular gzip file.
std::optional<Fingerprint> fingerprintOf(const std::string &path) {
  // Not opened unless it is a regular file: opening a named pipe would
  // block, or take the data its writer meant for readMaybeGzipped.
  struct stat before;
  if (::stat(path.c_str(), &before) != 0 || !S_ISREG(before.st_mode))
    return std::nullopt;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return std::nullopt;
  std::optional<Fingerprint> result;
  struct stat info;
  // 18 bytes: the smallest gzip member (10 of header, 8 of trailer).
  if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) && info.st_size >= 18) {
    unsigned char head[kHeadBytes], trailer[8];
    const size_t headSize = std::min(kHeadBytes, size_t(info.st_size));
    if (preadAll(fd, head, headSize, 0) && head[0] == 0x1f && head[1] == 0x8b &&
        preadAll(fd, trailer, 8, info.st_size - 8))
      result = Fingerprint{uint64_t(info.st_size), littleEndian32(trailer),
                           littleEndian32(trailer + 4), fnv1a(head, headSize)};
  }
  ::close(fd);
  return result;
}

std::string entryPath(const std::string &dir, const Fingerprint &print) {
  return fmt::format("{}/{:x}-{:08x}-{:08x}-{:016x}.inflated", dir, print.compressedSize, print.crc,
                     print.isize, print.headHash);
}

uint32_t crc32Of(const char *data, size_t size) { return libdeflate_crc32(0, data, size); }

/// Whether `bytes` are what the gzip file of `print` inflates to, as far
/// as its trailer can tell.
bool matchesTrailer(const char *bytes, size_t size, const Fingerprint &print) {
  return uint32_t(size) == print.isize && crc32Of(bytes, size) == print.crc;
}

/// The entry at `path` if it is whole and holds the inflated bytes of the
/// file of `print`.
std::optional<ByteArray> mapEntry(const std::string &path, const Fingerprint &print) {
  // Never a symbolic link or a pipe planted in the cache directory.
  // Populated up front: the pages are in the page cache after the first
  // run, and one call maps them all where the shuffled batches would
  // otherwise fault them in one at a time during the first epoch.
  std::optional<ByteArray> entry = mapReadOnly(path, kEntryDataOffset, /*followLinks=*/false);
  if (!entry)
    return std::nullopt;
  EntryHeader header;
  std::memcpy(&header, entry->data(), sizeof header);
  ByteArray data = entry->slice(kEntryDataOffset, entry->size() - kEntryDataOffset);
  const size_t size = data.size();
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0 ||
      header.compressedSize != print.compressedSize || header.crc != print.crc ||
      header.isize != print.isize || header.headHash != print.headHash ||
      header.inflatedSize != size || !matchesTrailer(data.data(), size, print))
    return std::nullopt;
  return data;
}

/// How old a temporary entry must be before it counts as left behind: a
/// writer on another machine (a cache on NFS) or in another PID namespace
/// looks gone to kill(2) while it still writes.
constexpr auto kOrphanAge = std::chrono::hours(1);

/// Removes the temporary entries of writers that are gone: a run stopped
/// (Ctrl-C) while it wrote an entry leaves tens of megabytes that nothing
/// would otherwise remove.  Only regular files named as writeEntry names
/// them, an hour old, whose process no longer exists.
void removeOrphans(const std::string &dir) {
  std::error_code error;
  const auto now = std::filesystem::file_time_type::clock::now();
  for (const auto &file : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = file.path().filename().string();
    std::error_code ignored;
    if (!isInflatedEntryName(name, /*temporary=*/true) || !file.is_regular_file(ignored) ||
        file.is_symlink(ignored) || now - file.last_write_time(ignored) < kOrphanAge)
      continue;
    const size_t at = name.find(kTemporaryInfix);
    const long pid = std::strtol(name.c_str() + at + kTemporaryInfix.size(), nullptr, 10);
    if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH)
      std::filesystem::remove(file.path(), ignored);
  }
}

/// Writes the entry for `print` holding `bytes`: to a temporary file
/// first, renamed over the entry's name once whole.
bool writeEntry(const std::string &dir, const Fingerprint &print, const std::string &bytes) {
  std::error_code ignored;
  std::filesystem::create_directories(dir, ignored);
  removeOrphans(dir);
  static std::atomic<uint64_t> counter{0};
  const std::string path = entryPath(dir, print);
  const std::string temporary =
      fmt::format("{}{}{}-{}", path, kTemporaryInfix, ::getpid(), counter.fetch_add(1));
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return false;
  EntryHeader header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.compressedSize = print.compressedSize;
  header.crc = print.crc;
  header.isize = print.isize;
  header.headHash = print.headHash;
  header.inflatedSize = bytes.size();
  char prefix[kEntryDataOffset] = {};
  std::memcpy(prefix, &header, sizeof header);
  bool written = writeAll(fd, prefix, sizeof prefix) && writeAll(fd, bytes.data(), bytes.size());
  written = ::close(fd) == 0 && written;
  if (written && ::rename(temporary.c_str(), path.c_str()) == 0)
    return true;
  ::unlink(temporary.c_str());
  return false;
}

} // namespace

bool isInflatedEntryName(std::string_view name, bool temporary) {
  if (temporary) {
    const std::string_view entry = withoutTemporarySuffix(name);
    if (entry.size() == name.size())
      return false;
    name = entry;
  }
  // SIZE-CRC-ISIZE-HEAD.inflated, as entryPath writes it.
  constexpr std::string_view kSuffix = ".inflated";
  if (!name.ends_with(kSuffix))
    return false;
  name.remove_suffix(kSuffix.size());
  std::string_view parts[4];
  for (int i = 0; i < 4; ++i) {
    const size_t dash = i < 3 ? name.find('-') : name.size();
    if (dash == std::string_view::npos)
      return false;
    parts[i] = name.substr(0, dash);
    name.remove_prefix(std::min(name.size(), dash + 1));
  }
  return isLowerHex(parts[0], 1, 16) && isLowerHex(parts[1], 8, 8) && isLowerHex(parts[2], 8, 8) &&
         isLowerHex(parts[3], 16, 16);
}

std::string defaultInflatedCacheDir() {
  return cacheDirFromEnvironment("GRADC_DATA_CACHE_DIR", "data");
}

bool readCachingInflated(const std::string &path, const std::string &cacheDir, ByteArray &bytes,
                         std::string &error, InflatedFrom *from) {
  auto report = [&](InflatedFrom how) {
    if (from)
      *from = how;
    return true;
  };
  std::optional<Fingerprint> print;
  if (!cacheDir.empty() && (print = fingerprintOf(path)))
    if (std::optional<ByteArray> cached = mapEntry(entryPath(cacheDir, *print), *print)) {
      bytes = std::move(*cached);
      return report(InflatedFrom::Cache);
    }
  std::string content;
  bool gzipped = false;
  if (!readMaybeGzipped(path, content, error, &gzipped))
    return false;
  // Only bytes the trailer vouches for are cached: if the file changed
  // since its fingerprint was taken, they are not.
  const bool cached = gzipped && print && matchesTrailer(content.data(), content.size(), *print) &&
                      writeEntry(cacheDir, *print, content);
  bytes = ByteArray(std::move(content));
  return report(!gzipped ? InflatedFrom::PlainFile
                : cached ? InflatedFrom::InflatingCached
                         : InflatedFrom::Inflating);
}

} // namespace gradc::rt
