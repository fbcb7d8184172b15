//===- runtime/Data.h - In-memory data sets ---------------------*- C++ -*-===//
//
// A Dataset is a block of examples in memory, example-major: example i's
// features are features[i * featureSize(), (i + 1) * featureSize()).  The
// trainer copies examples from here into a kernel's input buffers.
//
// makeSyntheticRegression gives a data set that needs no download and is the
// same bits everywhere (Philox + our Box-Muller + our tanh, runtime/Random.h):
// the smoke test of every training path.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/ByteArray.h"
#include "runtime/Model.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace gradc::rt {

struct Dataset {
  int64_t size = 0;                 ///< number of examples
  std::vector<int64_t> featureDims; ///< shape of one example's features
  std::vector<int64_t> targetDims;  ///< shape of one target; {} for a scalar or a class label
  bool intTargets = false;          ///< class labels (targetsI) instead of values (targetsF)
  std::vector<float> features;      ///< size * featureSize(), unless byteFeatures
  /// Features kept as bytes (IDX pixels), a quarter of the memory of
  /// floats: feature j of example i is float(featureBytes[i *
  /// featureSize() + j]) / byteDivisor, and `features` is empty.  Filling
  /// 188 MB of floats for Fashion-MNIST costs most of a second in page
  /// faults alone.
  bool byteFeatures = false;
  /// Unsigned bytes, read-only: where loadIdx inflated or mapped the
  /// file, without a copy of its tens of megabytes.
  ByteArray featureBytes;
  /// A division, correctly rounded (as PyTorch's ToTensor() divides by
  /// 255), and a vector loop in copyFeatures: a 256-entry table lookup per
  /// byte, as before, was 5% of a Fashion-MNIST training step.
  float byteDivisor = 1.0f;
  std::vector<float> targetsF;   ///< size * targetSize() when !intTargets
  std::vector<int32_t> targetsI; ///< size * targetSize() when intTargets
  std::string description;       ///< one line for logs: where the data came from

  /// Elements per example: the product of featureDims (1 for {}).
  int64_t featureSize() const;
  /// Elements per target: the product of targetDims (1 for {}).
  int64_t targetSize() const;
  bool empty() const { return size == 0; }
  /// Copies the featureSize() features of `example` to `to`.
  void copyFeatures(int64_t example, float *to) const;
  /// Asks the CPU to bring the features of `example` into the cache: the
  /// shuffled order reads rows from anywhere in tens of megabytes, and a
  /// row asked for two examples ahead is there when its turn comes.
  void prefetchFeatures(int64_t example) const;
  /// Feature j of `example`.
  float feature(int64_t example, int64_t j) const;
  /// An empty string when the vectors have the sizes the dims promise;
  /// otherwise what is wrong.
  std::string check() const;
};

/// Default noise of makeSyntheticRegression, relative to targets of about
/// unit scale.
inline constexpr double kDefaultRegressionNoise = 0.05;
/// Hidden width of the teacher network of makeSyntheticRegression.
inline constexpr int64_t kTeacherHidden = 16;

/// `size` examples of x ~ N(0, I) with shape featureDims and
/// y = W2 tanh(W1 x + b1) + noise * N(0, I) with shape targetDims, from a
/// teacher network drawn from `seed`: W1 [16, d_in] ~ N(0, 1/d_in),
/// b1 [16] ~ N(0, 1/4), W2 [d_out, 16] ~ N(0, 1/16).  Bit-reproducible.
/// Throws std::invalid_argument for a negative size, a non-positive
/// dimension or a negative / non-finite noise.
Dataset makeSyntheticRegression(int64_t size, std::vector<int64_t> featureDims,
                                std::vector<int64_t> targetDims, uint64_t seed,
                                double noise = kDefaultRegressionNoise);

/// Examples [begin, end) of `data` (clamped to [0, size]).
Dataset sliceDataset(const Dataset &data, int64_t begin, int64_t end);

struct TrainTestSplit {
  Dataset train, test;
};
/// The first round((1 - testFraction) * size) examples for training, the
/// rest for testing, in order (shuffle an ordered data set first).  Returns
/// false and sets `error` when testFraction is not in [0, 1].
bool splitTrainTest(const Dataset &data, double testFraction, TrainTestSplit &out,
                    std::string &error);

/// What a model takes per example, to check a data set against before any
/// training: a mismatch found here is a message naming both sides, not a
/// kernel reading past a buffer or a label the generated code clamps.
struct DataShape {
  std::string inputName;   ///< the model's input, e.g. "x"
  int64_t features = 0;    ///< elements of one example's input
  std::string targetName;  ///< the model's target or label, e.g. "y"
  bool intTargets = false; ///< the target is an i32 class label
  int64_t targetSize = 1;  ///< elements of one example's target
  int64_t classes = 0;     ///< class labels must be in [0, classes); 0: not checked
};

/// The DataShape of `kernel`'s single input and target (without the batch
/// dimension when kernel.batch > 0).  The class count is the last
/// dimension of the "prediction" output of `classifier` (may be null: then
/// of `kernel`), when that is one row of scores per example ([batch, C], or
/// [C] for batch 0); else 0.  Returns false and sets `error` when the
/// kernel lacks an input or a target.
bool dataShapeOf(const KernelSpec &kernel, const KernelSpec *classifier, DataShape &shape,
                 std::string &error);

/// Checks that `data` (called `name` in messages, e.g. "fashion-mnist" or a
/// file name; data.description when empty) fits `shape`: the features per
/// example, the kind and size of the targets, and every class label in
/// [0, classes).  Example numbers in messages count from 0.
bool checkDataFits(const Dataset &data, const std::string &name, const DataShape &shape,
                   std::string &error);

} // namespace gradc::rt
