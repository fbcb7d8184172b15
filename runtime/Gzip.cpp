//===- runtime/Gzip.cpp - Reading files that may be gzipped ---------------===//
//
// libdeflate inflates, zlib diagnoses.  libdeflate decodes a whole member
// from memory at twice zlib's speed (bench/inflate.c: 90-100 against
// 180-204 ms for Fashion-MNIST's training images, where loading the data
// set is what training waits for), but says only "bad data" when it fails.  So a file
// it cannot decode is inflated again with zlib's inflate, which tells
// what went wrong and where.  (zlib's inflate rather than gzread: gzread
// reads a non-gzip file transparently but also reports a truncated .gz
// file as a short, clean end of file, and its errors carry no position.)
//
//===----------------------------------------------------------------------===//
#include "runtime/Gzip.h"
#include "runtime/ByteArray.h"
#include "runtime/HugePages.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <libdeflate.h>
#include <memory>
#include <string_view>
#include <sys/stat.h>
#include <zlib.h>

namespace gradc::rt {
namespace {

/// What is read from something that is not a regular file (a pipe, a
/// device) before it counts as endless: /dev/zero would otherwise be read
/// until memory runs out.  A regular file is read whatever its size.
constexpr size_t kMaxStreamBytes = size_t(256) << 20;

/// The raw bytes of `path`.
bool readFile(const std::string &path, std::string &bytes, std::string &error) {
  std::unique_ptr<FILE, int (*)(FILE *)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    error = fmt::format("cannot read '{}': {}", path, std::strerror(errno));
    return false;
  }
  // Read straight into a string of the file's size (growing it by appends
  // copies the data several times, which is most of the time spent here
  // for a 30 MB file); keep reading past it in case the file grew.
  bytes.clear();
  struct stat info;
  const bool regular = ::fstat(fileno(file.get()), &info) == 0 && S_ISREG(info.st_mode);
  if (regular && info.st_size > 0) {
    bytes.reserve(size_t(info.st_size));
    adviseHugePages(bytes.data(), bytes.capacity());
    bytes.resize(size_t(info.st_size));
  }
  size_t used = std::fread(bytes.data(), 1, bytes.size(), file.get());
  if (used == bytes.size()) {
    char buffer[1 << 16];
    for (;;) {
      size_t n = std::fread(buffer, 1, sizeof buffer, file.get());
      bytes.resize(used + n);
      std::memcpy(bytes.data() + used, buffer, n);
      used += n;
      if (n < sizeof buffer)
        break;
      if (!regular && used > kMaxStreamBytes) {
        error = fmt::format("'{}' is not a regular file and has given more than {} MiB: an "
                            "endless stream?",
                            path, kMaxStreamBytes >> 20);
        return false;
      }
    }
  }
  bytes.resize(used);
  if (std::ferror(file.get())) {
    error = fmt::format("cannot read '{}': {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

bool startsWithGzipMagic(std::string_view bytes, size_t at) {
  return bytes.size() >= at + 2 && static_cast<unsigned char>(bytes[at]) == 0x1f &&
         static_cast<unsigned char>(bytes[at + 1]) == 0x8b;
}

/// Empties `out` and sizes it for the inflated `in`.  The last four bytes
/// of a single-member file hold its size mod 2^32: a good first guess,
/// bounded so that a corrupt trailer cannot make us allocate gigabytes up
/// front.
void sizeForInflating(std::string_view in, std::string &out) {
  constexpr size_t kMaxRatioGuess = 64, kMinGuess = 1 << 16;
  size_t guess = 0;
  if (in.size() >= 4)
    for (int i = 3; i >= 0; --i)
      guess = guess << 8 | static_cast<unsigned char>(in[in.size() - 4 + i]);
  guess = std::clamp(guess, kMinGuess, std::max(kMinGuess, in.size() * kMaxRatioGuess));
  out.clear();
  out.reserve(guess);
  adviseHugePages(out.data(), out.capacity());
  out.resize(guess);
}

/// Whether `in` from `at` on is zero padding, which gzip -d accepts after
/// the last member (tapes, some download tools).
bool onlyZerosFrom(std::string_view in, size_t at) {
  return std::all_of(in.begin() + ptrdiff_t(at), in.end(), [](char c) { return c == 0; });
}

} // namespace

bool detail::gunzipWithLibdeflate(std::string_view in, std::string &out) {
  std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor *)> decompressor(
      libdeflate_alloc_decompressor(), &libdeflate_free_decompressor);
  if (!decompressor)
    return false;
  sizeForInflating(in, out);
  size_t inPos = 0, outPos = 0;
  while (inPos < in.size()) {
    size_t used = 0, produced = 0;
    libdeflate_result result =
        libdeflate_gzip_decompress_ex(decompressor.get(), in.data() + inPos, in.size() - inPos,
                                      out.data() + outPos, out.size() - outPos, &used, &produced);
    if (result == LIBDEFLATE_INSUFFICIENT_SPACE) {
      // The size guess was short (a multi-member file): more room, and the
      // member again from its start.
      out.resize(out.size() * 2);
      continue;
    }
    if (result != LIBDEFLATE_SUCCESS)
      return false;
    inPos += used;
    outPos += produced;
    if (!startsWithGzipMagic(in, inPos)) // no further member
      break;
  }
  if (inPos < in.size() && !onlyZerosFrom(in, inPos))
    return false;
  out.resize(outPos);
  return true;
}

namespace {

/// Inflates every gzip member of `in` into `out` with zlib, and on failure
/// says why and where.
bool gunzipWithZlib(const std::string &path, std::string_view in, std::string &out,
                    std::string &error) {
  sizeForInflating(in, out);
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) { // 16: expect a gzip wrapper
    error = fmt::format("cannot read '{}': zlib failed to start", path);
    return false;
  }
  std::unique_ptr<z_stream, int (*)(z_stream *)> guard(&zs, &inflateEnd);
  size_t inPos = 0, outPos = 0;
  for (;;) {
    if (outPos == out.size())
      out.resize(out.size() * 2);
    // zlib counts in uInt: feed at most 1 GiB per call.
    constexpr size_t kChunk = size_t(1) << 30;
    size_t inAvail = std::min(in.size() - inPos, kChunk);
    size_t outAvail = std::min(out.size() - outPos, kChunk);
    zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data() + inPos));
    zs.avail_in = static_cast<uInt>(inAvail);
    zs.next_out = reinterpret_cast<Bytef *>(out.data() + outPos);
    zs.avail_out = static_cast<uInt>(outAvail);
    int status = inflate(&zs, Z_NO_FLUSH);
    inPos += inAvail - zs.avail_in;
    outPos += outAvail - zs.avail_out;
    if (status == Z_STREAM_END) {
      if (inPos == in.size())
        break;
      if (startsWithGzipMagic(in, inPos)) { // another member follows
        inflateReset(&zs);
        continue;
      }
      // Anything but zero padding means a damaged or mislabelled file.
      if (onlyZerosFrom(in, inPos))
        break;
      error = fmt::format("cannot read '{}': {} bytes of trailing garbage after the gzip data "
                          "(at byte {})",
                          path, in.size() - inPos, inPos);
      return false;
    }
    if (status == Z_OK || status == Z_BUF_ERROR) {
      // Progress is still possible unless all input is consumed and zlib
      // had room to write: then the stream stops before its end.
      if (inPos == in.size() && outPos < out.size()) {
        error = fmt::format("cannot read '{}': the gzip data ends early (after {} compressed and "
                            "{} uncompressed bytes): the file is truncated",
                            path, in.size(), outPos);
        return false;
      }
      continue;
    }
    error = fmt::format("cannot read '{}': corrupt gzip data near compressed byte {} ({})", path,
                        inPos, zs.msg ? zs.msg : zError(status));
    return false;
  }
  out.resize(outPos);
  return true;
}

} // namespace

bool readMaybeGzipped(const std::string &path, std::string &bytes, std::string &error,
                      bool *wasGzipped) {
  // A regular file is mapped rather than read into memory of its own:
  // reading Fashion-MNIST's 26 MB .gz took 16-78 ms, mostly first touches
  // of fresh pages, against 2 ms mapped (bench/read_gz.c), on the thread
  // that the first training step waits for.  Pipes and devices are read.
  std::string raw;
  const std::optional<ByteArray> mapped = mapReadOnly(path, 1, /*followLinks=*/true);
  if (!mapped && !readFile(path, raw, error))
    return false;
  const std::string_view content =
      mapped ? std::string_view(mapped->data(), mapped->size()) : std::string_view(raw);
  bool gzipped = startsWithGzipMagic(content, 0);
  if (wasGzipped)
    *wasGzipped = gzipped;
  if (!gzipped) {
    if (mapped)
      bytes.assign(content);
    else
      bytes = std::move(raw);
    return true;
  }
  return detail::gunzipWithLibdeflate(content, bytes) ||
         gunzipWithZlib(path, content, bytes, error);
}

} // namespace gradc::rt
