//===- runtime/Data.cpp - In-memory data sets -----------------------------===//
//
// The synthetic teacher is evaluated in double, in a fixed order, with our
// own tanh, and rounded once to float: the same bits on every machine.
//
//===----------------------------------------------------------------------===//
#include "runtime/Data.h"

#include "runtime/Random.h"
#include <cstring>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <stdexcept>

namespace gradc::rt {

namespace {

/// Philox streams (counter word 1) of the synthetic data set, one per
/// quantity, all in kDataDomain.
enum SyntheticStream : uint32_t {
  kStreamW1 = 1,
  kStreamB1 = 2,
  kStreamW2 = 3,
  kStreamFeatures = 4,
  kStreamNoise = 5,
};

/// Standard deviation of the teacher's hidden biases: enough to move the
/// tanh units off centre so the target is not an odd function of x.
constexpr double kTeacherBiasStddev = 0.5;

int64_t product(const std::vector<int64_t> &dims) {
  int64_t count = 1;
  for (int64_t dim : dims)
    count *= dim;
  return count;
}

/// Pixels to features, pixel / divisor.  The division, not a multiply by
/// 1/divisor, keeps the floats those of the interpreter and of PyTorch's
/// ToTensor() (126 of the 256 bytes would differ for 255).  Divisions are
/// most of a batch copy's arithmetic: an AVX2 clone, picked once by the
/// loader (ifunc), divides eight at a time where the x86-64 baseline
/// divides four.  64 rows of 784 pixels took 7.0 instead of 11.7 us from
/// the cache (a one-off timing loop on this Zen 3); the Fashion-MNIST
/// trainer's batch copy 42-53 instead of 49-60 us (its region profile,
/// three alternating runs).  Exact division gives the same floats either
/// way.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
void bytesToFeatures(const uint8_t *from, float *to, int64_t n, float divisor) {
  for (int64_t j = 0; j < n; ++j)
    to[j] = float(from[j]) / divisor;
}

std::vector<double> normals(int64_t n, double stddev, uint64_t seed, SyntheticStream stream) {
  std::vector<double> out(static_cast<size_t>(n));
  forEachStandardNormal(n, seed, stream, kDataDomain,
                        [&](int64_t i, double z) { out[i] = stddev * z; });
  return out;
}

} // namespace

int64_t Dataset::featureSize() const { return product(featureDims); }
int64_t Dataset::targetSize() const { return product(targetDims); }

void Dataset::copyFeatures(int64_t example, float *to) const {
  const int64_t n = featureSize();
  if (!byteFeatures) {
    std::memcpy(to, &features[size_t(example * n)], size_t(n) * sizeof(float));
    return;
  }
  bytesToFeatures(reinterpret_cast<const uint8_t *>(featureBytes.data()) + example * n, to, n,
                  byteDivisor);
}

void Dataset::prefetchFeatures(int64_t example) const {
  const int64_t n = featureSize();
  const char *from = byteFeatures ? featureBytes.data() + example * n
                                  : reinterpret_cast<const char *>(&features[size_t(example * n)]);
  const int64_t bytes = byteFeatures ? n : n * int64_t(sizeof(float));
  constexpr int64_t kCacheLine = 64;
  for (int64_t at = 0; at < bytes; at += kCacheLine)
    __builtin_prefetch(from + at);
}

float Dataset::feature(int64_t example, int64_t j) const {
  const size_t at = size_t(example * featureSize() + j);
  return byteFeatures ? float(static_cast<uint8_t>(featureBytes[at])) / byteDivisor : features[at];
}

std::string Dataset::check() const {
  if (size < 0)
    return fmt::format("the data set has a negative size {}", size);
  auto expect = [&](const char *what, size_t actual, int64_t perExample) -> std::string {
    if (static_cast<int64_t>(actual) == size * perExample)
      return "";
    return fmt::format("the data set has {} examples of {} {} each but {} {} in all", size,
                       perExample, what, actual, what);
  };
  if (std::string e = byteFeatures ? expect("byte features", featureBytes.size(), featureSize())
                                   : expect("features", features.size(), featureSize());
      !e.empty())
    return e;
  if (intTargets)
    return expect("int targets", targetsI.size(), targetSize());
  return expect("targets", targetsF.size(), targetSize());
}

Dataset makeSyntheticRegression(int64_t size, std::vector<int64_t> featureDims,
                                std::vector<int64_t> targetDims, uint64_t seed, double noise) {
  if (size < 0)
    throw std::invalid_argument(
        fmt::format("synthetic regression: the size must be >= 0, got {}", size));
  for (const std::vector<int64_t> *dims : {&featureDims, &targetDims})
    for (int64_t dim : *dims)
      if (dim <= 0)
        throw std::invalid_argument(fmt::format(
            "synthetic regression: dimensions must be positive, got [{}]", fmt::join(*dims, ",")));
  if (!std::isfinite(noise) || noise < 0)
    throw std::invalid_argument(
        fmt::format("synthetic regression: the noise must be finite and >= 0, got {}", noise));

  Dataset data;
  data.size = size;
  data.featureDims = std::move(featureDims);
  data.targetDims = std::move(targetDims);
  const int64_t in = data.featureSize(), out = data.targetSize(), hidden = kTeacherHidden;
  data.description = fmt::format(
      "synthetic regression: {} examples, x ~ N(0, 1)^[{}], y{} = W2 tanh(W1 x + b1) + "
      "{} N(0, 1), teacher hidden {}, seed {}",
      size, fmt::join(data.featureDims, ","),
      data.targetDims.empty() ? "" : fmt::format("[{}]", fmt::join(data.targetDims, ",")), noise,
      hidden, seed);

  std::vector<double> w1 = normals(hidden * in, 1 / std::sqrt(double(in)), seed, kStreamW1);
  std::vector<double> b1 = normals(hidden, kTeacherBiasStddev, seed, kStreamB1);
  std::vector<double> w2 = normals(out * hidden, 1 / std::sqrt(double(hidden)), seed, kStreamW2);

  data.features.resize(static_cast<size_t>(size * in));
  forEachStandardNormal(size * in, seed, kStreamFeatures, kDataDomain,
                        [&](int64_t i, double z) { data.features[i] = float(z); });
  data.targetsF.resize(static_cast<size_t>(size * out));
  forEachStandardNormal(size * out, seed, kStreamNoise, kDataDomain,
                        [&](int64_t i, double z) { data.targetsF[i] = float(noise * z); });

  // The teacher sees the stored (float) features, so y is a function of
  // exactly what the model sees.
  std::vector<double> h(static_cast<size_t>(hidden));
  for (int64_t example = 0; example < size; ++example) {
    const float *x = &data.features[example * in];
    for (int64_t k = 0; k < hidden; ++k) {
      double pre = b1[k];
      for (int64_t j = 0; j < in; ++j)
        pre += w1[k * in + j] * double(x[j]);
      h[k] = reproducibleTanh(pre);
    }
    float *y = &data.targetsF[example * out];
    for (int64_t o = 0; o < out; ++o) {
      double value = 0;
      for (int64_t k = 0; k < hidden; ++k)
        value += w2[o * hidden + k] * h[k];
      y[o] = float(value + double(y[o]));
    }
  }
  return data;
}

Dataset sliceDataset(const Dataset &data, int64_t begin, int64_t end) {
  begin = std::clamp<int64_t>(begin, 0, data.size);
  end = std::clamp<int64_t>(end, begin, data.size);
  Dataset slice;
  slice.size = end - begin;
  slice.featureDims = data.featureDims;
  slice.targetDims = data.targetDims;
  slice.intTargets = data.intTargets;
  slice.byteFeatures = data.byteFeatures;
  slice.byteDivisor = data.byteDivisor;
  slice.description = fmt::format("{} [examples {}..{})", data.description, begin, end);
  int64_t fs = data.featureSize(), ts = data.targetSize();
  if (data.byteFeatures)
    slice.featureBytes = data.featureBytes.slice(size_t(begin * fs), size_t((end - begin) * fs));
  else
    slice.features.assign(data.features.begin() + begin * fs, data.features.begin() + end * fs);
  if (data.intTargets)
    slice.targetsI.assign(data.targetsI.begin() + begin * ts, data.targetsI.begin() + end * ts);
  else
    slice.targetsF.assign(data.targetsF.begin() + begin * ts, data.targetsF.begin() + end * ts);
  return slice;
}

bool splitTrainTest(const Dataset &data, double testFraction, TrainTestSplit &out,
                    std::string &error) {
  if (!(testFraction >= 0 && testFraction <= 1)) {
    error = fmt::format("the test fraction must be in [0, 1], got {}", testFraction);
    return false;
  }
  int64_t trainSize = std::llround((1 - testFraction) * double(data.size));
  out.train = sliceDataset(data, 0, trainSize);
  out.test = sliceDataset(data, trainSize, data.size);
  return true;
}

} // namespace gradc::rt

namespace gradc::rt {

bool dataShapeOf(const KernelSpec &kernel, const KernelSpec *classifier, DataShape &shape,
                 std::string &error) {
  shape = DataShape{};
  const TensorSpec *input = nullptr, *target = nullptr;
  for (const TensorSpec &spec : kernel.buffers) {
    if (spec.role == Role::Input && !input)
      input = &spec;
    if (spec.role == Role::Target && !target)
      target = &spec;
  }
  if (!input || !target) {
    error = fmt::format("kernel '{}' has no {}: the model needs an input and a target to train or "
                        "evaluate on data",
                        kernel.name, input ? "target" : "input");
    return false;
  }
  // One example's elements: everything but the leading batch dimension.
  auto perExample = [&](const TensorSpec &spec) {
    return kernel.batch > 0 && !spec.dims.empty()
               ? spec.numel() / std::max<int64_t>(spec.dims[0], 1)
               : spec.numel();
  };
  shape.inputName = input->name;
  shape.features = perExample(*input);
  shape.targetName = target->name;
  shape.intTargets = target->isInt;
  shape.targetSize = perExample(*target);
  const KernelSpec &scorer = classifier ? *classifier : kernel;
  if (int index = scorer.find("prediction"); index >= 0 && target->isInt) {
    const TensorSpec &prediction = scorer.buffers[index];
    size_t rowRank = scorer.batch > 0 ? 2 : 1;
    if (prediction.role == Role::Output && !prediction.isInt && prediction.dims.size() == rowRank)
      shape.classes = prediction.dims.back();
  }
  return true;
}

bool checkDataFits(const Dataset &data, const std::string &name, const DataShape &shape,
                   std::string &error) {
  const std::string &what = name.empty() ? data.description : name;
  if (data.featureSize() != shape.features) {
    error = fmt::format("{} has {} features per example, the model's input '{}' takes {}", what,
                        data.featureSize(), shape.inputName, shape.features);
    return false;
  }
  if (data.intTargets && !shape.intTargets) {
    error = fmt::format("{} has class labels; the model's target '{}' is f32 (declare it 'label "
                        "{} : i32[...]')",
                        what, shape.targetName, shape.targetName);
    return false;
  }
  if (!data.intTargets && shape.intTargets) {
    error = fmt::format("{} has real-valued targets; the model's '{}' is an i32 class label", what,
                        shape.targetName);
    return false;
  }
  if (data.targetSize() != shape.targetSize) {
    error = fmt::format("{} has {} target value{} per example, the model's target '{}' takes {}",
                        what, data.targetSize(), data.targetSize() == 1 ? "" : "s",
                        shape.targetName, shape.targetSize);
    return false;
  }
  if (std::string problem = data.check(); !problem.empty()) {
    error = fmt::format("{}: {}", what, problem);
    return false;
  }
  if (data.intTargets && shape.classes > 0) {
    const int64_t perExample = data.targetSize();
    for (size_t i = 0; i < data.targetsI.size(); ++i)
      if (data.targetsI[i] < 0 || data.targetsI[i] >= shape.classes) {
        error = fmt::format("label {} of example {} of {} is out of range for the model's {} "
                            "classes",
                            data.targetsI[i], int64_t(i) / perExample, what, shape.classes);
        return false;
      }
  }
  return true;
}

} // namespace gradc::rt
