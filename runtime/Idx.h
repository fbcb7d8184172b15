//===- runtime/Idx.h - IDX (MNIST-format) data sets ------------*- C++ -*-===//
//
// Reads IDX files (the format of MNIST and Fashion-MNIST), gzipped or not:
// images of unsigned bytes scaled to [0, 1] (pixel / 255) as f32 features,
// labels of unsigned bytes as i32 class labels.
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
/// expected) on a missing, truncated or malformed file.
bool loadIdx(const std::string &imagesPath, const std::string &labelsPath, Dataset &data,
             std::string &error);

/// Loads DIR/train-images-idx3-ubyte[.gz] with its labels as `train` and
/// DIR/t10k-images-idx3-ubyte[.gz] with its labels as `test`.
bool loadIdxDirectory(const std::string &dir, Dataset &train, Dataset &test, std::string &error);

} // namespace gradc::rt
