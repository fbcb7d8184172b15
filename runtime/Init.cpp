//===- runtime/Init.cpp - Parameter initializers --------------------------===//
//
// Every random initializer reduces to "scale a standard normal" or "map a
// uniform in [0, 1) onto [low, high)"; the arithmetic is done in double and
// rounded once to float, so the result is the same bits everywhere.
//
//===----------------------------------------------------------------------===//
#include "runtime/Init.h"
#include "runtime/Random.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <stdexcept>

namespace gradc::rt {

namespace {

/// One row of the initializer table.
struct InitializerInfo {
  const char *name;
  int arity;
  bool random;
};

// Must list the same names as ir/Verifier.cpp's kInitializers.
constexpr InitializerInfo kInitializers[] = {
    {"xavier_normal", 0, true}, {"xavier_uniform", 0, true}, {"he_normal", 0, true},
    {"he_uniform", 0, true},    {"normal", 1, true},         {"uniform", 2, true},
    {"zeros", 0, false},        {"ones", 0, false},          {"constant", 1, false},
};

const InitializerInfo *lookup(const std::string &kind) {
  for (const InitializerInfo &info : kInitializers)
    if (kind == info.name)
      return &info;
  return nullptr;
}

std::string knownNames() {
  std::string names;
  for (const InitializerInfo &info : kInitializers)
    names += (names.empty() ? "" : ", ") + std::string(info.name);
  return names;
}

/// The kind, with "" read as zeros.
std::string effectiveKind(const TensorSpec &spec) {
  return spec.init.kind.empty() ? "zeros" : spec.init.kind;
}

/// How a random initializer samples: a normal (mean 0) or a uniform.
struct Distribution {
  bool normal = false;
  double stddev = 0;        ///< normal
  double low = 0, high = 0; ///< uniform
};

Distribution distributionOf(const TensorSpec &spec, const std::string &kind) {
  Fans fans = initializerFans(spec);
  double in = static_cast<double>(fans.in), out = static_cast<double>(fans.out);
  const std::vector<double> &args = spec.init.args;
  Distribution d;
  if (kind == "xavier_normal") {
    d.normal = true;
    d.stddev = std::sqrt(2.0 / (in + out));
  } else if (kind == "he_normal") {
    d.normal = true;
    d.stddev = std::sqrt(2.0 / in);
  } else if (kind == "normal") {
    d.normal = true;
    d.stddev = args[0];
  } else if (kind == "xavier_uniform") {
    d.high = std::sqrt(6.0 / (in + out));
    d.low = -d.high;
  } else if (kind == "he_uniform") {
    d.high = std::sqrt(6.0 / in);
    d.low = -d.high;
  } else { // uniform(a, b)
    d.low = args[0];
    d.high = args[1];
  }
  return d;
}

void throwIfInvalid(const TensorSpec &spec) {
  std::string error = checkInitializer(spec);
  if (!error.empty())
    throw std::invalid_argument(error);
}

} // namespace

Fans initializerFans(const TensorSpec &spec) {
  Fans fans;
  if (spec.dims.size() == 1) {
    fans.in = fans.out = spec.dims[0];
  } else if (spec.dims.size() >= 2) {
    int64_t receptive = 1;
    for (size_t i = 2; i < spec.dims.size(); ++i)
      receptive *= spec.dims[i];
    fans.out = spec.dims[0] * receptive;
    fans.in = spec.dims[1] * receptive;
  }
  if (spec.init.fanIn > 0)
    fans.in = spec.init.fanIn;
  if (spec.init.fanOut > 0)
    fans.out = spec.init.fanOut;
  return fans;
}

std::string checkInitializer(const TensorSpec &spec) {
  std::string kind = effectiveKind(spec);
  const InitializerInfo *info = lookup(kind);
  if (!info)
    return fmt::format("tensor '{}': unknown initializer '{}' (known: {})", spec.name, kind,
                       knownNames());
  const std::vector<double> &args = spec.init.args;
  if (static_cast<int>(args.size()) != info->arity)
    return fmt::format("tensor '{}': initializer '{}' takes {} argument{}, got {}", spec.name, kind,
                       info->arity, info->arity == 1 ? "" : "s", args.size());
  for (double arg : args)
    if (!std::isfinite(arg))
      return fmt::format("tensor '{}': initializer '{}' has a non-finite argument {}", spec.name,
                         kind, arg);
  if (spec.isInt) {
    if (info->random)
      return fmt::format("tensor '{}' is i32; the random initializer '{}' is for f32 tensors "
                         "(use zeros, ones or constant)",
                         spec.name, kind);
    if (kind == "constant" && (args[0] != std::trunc(args[0]) ||
                               std::fabs(args[0]) > std::numeric_limits<int32_t>::max()))
      return fmt::format("tensor '{}' is i32; constant({}) is not a 32-bit integer", spec.name,
                         args[0]);
  }
  if (kind == "normal" && args[0] < 0)
    return fmt::format("tensor '{}': normal(sigma) needs sigma >= 0, got {}", spec.name, args[0]);
  if (kind == "uniform" && args[0] > args[1])
    return fmt::format("tensor '{}': uniform(a, b) needs a <= b, got a = {}, b = {}", spec.name,
                       args[0], args[1]);
  return "";
}

void initializeTensor(const TensorSpec &spec, float *data, uint64_t seed, uint32_t tensorIndex) {
  throwIfInvalid(spec);
  std::string kind = effectiveKind(spec);
  int64_t n = spec.numel();
  if (kind == "zeros" || kind == "ones" || kind == "constant") {
    float value = kind == "zeros" ? 0.0f : kind == "ones" ? 1.0f : float(spec.init.args[0]);
    std::fill(data, data + n, value);
    return;
  }
  Distribution d = distributionOf(spec, kind);
  if (d.normal) {
    forEachStandardNormal(n, seed, tensorIndex, kInitDomain,
                          [&](int64_t i, double z) { data[i] = float(d.stddev * z); });
  } else {
    double width = d.high - d.low;
    forEachUniform(n, seed, tensorIndex, kInitDomain,
                   [&](int64_t i, double u) { data[i] = float(d.low + width * u); });
  }
}

void initializeTensor(const TensorSpec &spec, int32_t *data, uint64_t seed, uint32_t tensorIndex) {
  throwIfInvalid(spec);
  std::string kind = effectiveKind(spec);
  // checkInitializer admits only the constant kinds for i32.
  int32_t value = kind == "zeros" ? 0 : kind == "ones" ? 1 : int32_t(spec.init.args[0]);
  std::fill(data, data + spec.numel(), value);
}

} // namespace gradc::rt
