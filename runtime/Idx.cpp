//===- runtime/Idx.cpp - IDX (MNIST-format) data sets ---------------------===//
#include "runtime/Idx.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <vector>
#include <zlib.h>

namespace gradc::rt {
namespace {

/// The whole content of `path`, decompressed if it is gzipped (zlib's
/// gzread reads plain files unchanged).
bool readMaybeGzipped(const std::string &path, std::vector<unsigned char> &bytes,
                      std::string &error) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) {
    error = fmt::format("cannot read '{}': {}", path, std::strerror(errno));
    return false;
  }
  bytes.clear();
  unsigned char buffer[1 << 16];
  for (;;) {
    int n = gzread(file, buffer, sizeof buffer);
    if (n < 0) {
      int code = 0;
      const char *message = gzerror(file, &code);
      error = fmt::format("cannot read '{}': corrupt gzip data ({})", path, message);
      gzclose(file);
      return false;
    }
    if (n == 0)
      break;
    bytes.insert(bytes.end(), buffer, buffer + n);
  }
  gzclose(file);
  return true;
}

uint32_t bigEndian(const unsigned char *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

/// Parses the IDX header of an unsigned-byte file with `rank` dimensions.
bool parseHeader(const std::string &path, const std::vector<unsigned char> &bytes, int rank,
                 std::vector<int64_t> &dims, std::string &error) {
  size_t headerSize = 4 + 4 * size_t(rank);
  uint32_t expected = 0x00000800u | uint32_t(rank);
  if (bytes.size() >= 4 && bigEndian(bytes.data()) != expected) {
    error = fmt::format("'{}' has IDX magic 0x{:08x}, expected 0x{:08x} (unsigned bytes, {} "
                        "dimension{})",
                        path, bigEndian(bytes.data()), expected, rank, rank == 1 ? "" : "s");
    return false;
  }
  if (bytes.size() < headerSize) {
    error = fmt::format("'{}' is not an IDX file: {} bytes, shorter than its {}-byte header", path,
                        bytes.size(), headerSize);
    return false;
  }
  dims.clear();
  int64_t elements = 1;
  for (int i = 0; i < rank; ++i) {
    dims.push_back(bigEndian(bytes.data() + 4 + 4 * i));
    elements *= dims.back();
  }
  if (int64_t(bytes.size() - headerSize) != elements) {
    error = fmt::format("'{}' is truncated or too long: its header promises {} bytes of data, the "
                        "file has {}",
                        path, elements, bytes.size() - headerSize);
    return false;
  }
  return true;
}

} // namespace

bool loadIdx(const std::string &imagesPath, const std::string &labelsPath, Dataset &data,
             std::string &error) {
  std::vector<unsigned char> images, labels;
  std::vector<int64_t> imageDims, labelDims;
  if (!readMaybeGzipped(imagesPath, images, error) ||
      !parseHeader(imagesPath, images, 3, imageDims, error) ||
      !readMaybeGzipped(labelsPath, labels, error) ||
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
  const unsigned char *pixels = images.data() + 16;
  data.features.resize(images.size() - 16);
  for (size_t i = 0; i < data.features.size(); ++i)
    data.features[i] = float(pixels[i]) / 255.0f;
  data.targetsI.assign(labels.begin() + 8, labels.end());
  data.description =
      fmt::format("{} ({} images of {}x{})", imagesPath, data.size, imageDims[1], imageDims[2]);
  return true;
}

bool loadIdxDirectory(const std::string &dir, Dataset &train, Dataset &test, std::string &error) {
  auto find = [&](const std::string &stem, std::string &path) {
    for (const char *suffix : {".gz", ""}) {
      path = dir + "/" + stem + suffix;
      if (std::filesystem::exists(path))
        return true;
    }
    error = fmt::format("'{}' has no {}[.gz]: expected an IDX data set (train-images-idx3-ubyte, "
                        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)",
                        dir, stem);
    return false;
  };
  std::string trainImages, trainLabels, testImages, testLabels;
  return find("train-images-idx3-ubyte", trainImages) &&
         find("train-labels-idx1-ubyte", trainLabels) &&
         find("t10k-images-idx3-ubyte", testImages) && find("t10k-labels-idx1-ubyte", testLabels) &&
         loadIdx(trainImages, trainLabels, train, error) &&
         loadIdx(testImages, testLabels, test, error);
}

} // namespace gradc::rt
