//===- runtime/Idx.h - IDX (MNIST-format) data sets ------------*- C++ -*-===//
//
// Reads IDX files (the format of MNIST and Fashion-MNIST), gzipped or not
// (decided by the gzip magic, not the name): images of unsigned bytes become
// f32 features scaled to [0, 1] by pixel / 255 (the ToTensor() convention,
// so models and learning rates carry over from PyTorch), one example per
// image, flattened row-major (784 features for 28x28); labels of unsigned
// bytes become i32 class labels.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Data.h"

#include <string>

namespace gradc::rt {

/// Where Debian's dataset-fashion-mnist package installs the data set.
inline constexpr const char *kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Loads images (idx3, u8) and labels (idx1, u8) into one classification
/// set.  Returns false and sets `error` (naming the file and what was
/// expected) on a missing, empty, truncated or malformed file, corrupt
/// gzip data, or image and label counts that differ.  Gzipped files are
/// inflated once into `inflatedCacheDir` (runtime/InflatedCache.h; no
/// cache when empty).
bool loadIdx(const std::string &imagesPath, const std::string &labelsPath, Dataset &data,
             std::string &error, const std::string &inflatedCacheDir = "");

/// Loads DIR/train-images-idx3-ubyte[.gz] with its labels as `train` and
/// DIR/t10k-images-idx3-ubyte[.gz] with its labels as `test` (a plain file
/// is preferred over a .gz of the same name only when the .gz is missing).
bool loadIdxDirectory(const std::string &dir, Dataset &train, Dataset &test, std::string &error,
                      const std::string &inflatedCacheDir = "");

} // namespace gradc::rt
