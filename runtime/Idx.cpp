//===- runtime/Idx.cpp - IDX (MNIST-format) data sets ---------------------===//
//
// An IDX file is a 4-byte big-endian magic (0, 0, element type, rank), one
// big-endian u32 per dimension, then the elements row-major.  Only unsigned
// bytes (type 0x08) occur in the data sets gradc reads.
//
//===----------------------------------------------------------------------===//
#include "runtime/Idx.h"
#include "runtime/InflatedCache.h"

#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <future>
#include <system_error>
#include <vector>

namespace gradc::rt {
namespace {

/// IDX element type of unsigned bytes.
constexpr uint32_t kUnsignedByte = 0x08;

uint32_t bigEndian(const unsigned char *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

/// Parses the IDX header of an unsigned-byte file with `rank` dimensions
/// and checks that exactly the promised data follows.
bool parseHeader(const std::string &path, const ByteArray &bytes, int rank,
                 std::vector<int64_t> &dims, std::string &error) {
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
  size_t headerSize = 4 + 4 * size_t(rank);
  uint32_t expected = kUnsignedByte << 8 | uint32_t(rank);
  if (bytes.empty()) {
    error = fmt::format("'{}' is empty: expected an IDX file with magic 0x{:08x}", path, expected);
    return false;
  }
  if (bytes.size() >= 4 && bigEndian(p) != expected) {
    error = fmt::format("'{}' has IDX magic 0x{:08x}, expected 0x{:08x} (unsigned bytes, {} "
                        "dimension{})",
                        path, bigEndian(p), expected, rank, rank == 1 ? "" : "s");
    return false;
  }
  if (bytes.size() < headerSize) {
    error = fmt::format("'{}' is not an IDX file: {} bytes, shorter than its {}-byte header", path,
                        bytes.size(), headerSize);
    return false;
  }
  dims.clear();
  // Each dimension is < 2^32, so the product of three can overflow 64 bits;
  // anything beyond the file's size is wrong anyway, so stop there.
  uint64_t elements = 1;
  bool beyondFile = false;
  for (int i = 0; i < rank; ++i) {
    dims.push_back(bigEndian(p + 4 + 4 * i));
    if (dims.back() != 0 && elements > (uint64_t(1) << 62) / uint64_t(dims.back()))
      beyondFile = true;
    else
      elements *= uint64_t(dims.back());
  }
  if (beyondFile) {
    error = fmt::format("'{}' has impossible IDX dimensions {}: more data than any file holds",
                        path, fmt::join(dims, "x"));
    return false;
  }
  if (bytes.size() - headerSize != elements) {
    error = fmt::format("'{}' is truncated or too long: its header promises {} bytes of data, the "
                        "file has {}",
                        path, elements, bytes.size() - headerSize);
    return false;
  }
  return true;
}

} // namespace

bool loadIdx(const std::string &imagesPath, const std::string &labelsPath, Dataset &data,
             std::string &error, const std::string &inflatedCacheDir) {
  ByteArray images, labels;
  std::vector<int64_t> imageDims, labelDims;
  if (!readCachingInflated(imagesPath, inflatedCacheDir, images, error) ||
      !parseHeader(imagesPath, images, 3, imageDims, error) ||
      !readCachingInflated(labelsPath, inflatedCacheDir, labels, error) ||
      !parseHeader(labelsPath, labels, 1, labelDims, error))
    return false;
  if (imageDims[0] != labelDims[0]) {
    error = fmt::format("'{}' has {} images but '{}' has {} labels", imagesPath, imageDims[0],
                        labelsPath, labelDims[0]);
    return false;
  }
  data = Dataset{};
  data.size = imageDims[0];
  data.featureDims = {imageDims[1] * imageDims[2]};
  data.targetDims = {};
  data.intTargets = true;
  // Kept as bytes; a feature is pixel / 255 (division, not multiplication
  // by 1/255: the correctly rounded value, the same as PyTorch's
  // ToTensor()).
  data.byteFeatures = true;
  // The pixels stay where gunzip (or the cache's mapping) put them.
  data.featureBytes = images.slice(16, images.size() - 16);
  data.byteDivisor = 255.0f;
  const auto *classes = reinterpret_cast<const unsigned char *>(labels.data()) + 8;
  data.targetsI.assign(classes, classes + data.size);
  data.description =
      fmt::format("{} ({} images of {}x{})", imagesPath, data.size, imageDims[1], imageDims[2]);
  return true;
}

namespace {

/// The paths of the four files of an IDX directory, in the order train
/// images, train labels, test images, test labels.
bool findIdxFiles(const std::string &dir, std::string (&paths)[4], std::string &error) {
  const char *stems[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  for (int i = 0; i < 4; ++i) {
    bool found = false;
    for (const char *suffix : {".gz", ""}) {
      paths[i] = dir + "/" + stems[i] + suffix;
      if ((found = std::filesystem::exists(paths[i])))
        break;
    }
    if (!found) {
      error =
          fmt::format("'{}' has no {}[.gz]: expected an IDX data set (train-images-idx3-ubyte, "
                      "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)",
                      dir, stems[i]);
      return false;
    }
  }
  return true;
}

} // namespace

bool loadIdxDirectory(const std::string &dir, Dataset &train, Dataset &test, std::string &error,
                      const std::string &inflatedCacheDir) {
  std::string paths[4];
  if (!findIdxFiles(dir, paths, error))
    return false;
  // The test set inflates on a thread of its own while the training set
  // does (a gzip stream is one core's work): with the kernels from the
  // cache, loading is what the first step waits for.
  std::string testError;
  std::future<bool> testLoaded;
  try {
    testLoaded = std::async(std::launch::async, [&] {
      return loadIdx(paths[2], paths[3], test, testError, inflatedCacheDir);
    });
  } catch (const std::system_error &) {
    // No thread to be had: one after the other.
    return loadIdx(paths[0], paths[1], train, error, inflatedCacheDir) &&
           loadIdx(paths[2], paths[3], test, error, inflatedCacheDir);
  }
  const bool trainOk = loadIdx(paths[0], paths[1], train, error, inflatedCacheDir);
  const bool testOk = testLoaded.get();
  if (trainOk && !testOk)
    error = testError;
  return trainOk && testOk;
}

} // namespace gradc::rt
