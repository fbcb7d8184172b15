//===- runtime/Random.cpp - Reproducible random streams -------------------===//
//
// Elementary functions from +, -, *, / and sqrt only (see Random.h for why).
// Each reduces the argument exactly (frexp / ldexp / multiplying a dyadic
// number by a power of two), then sums a short series whose truncation error
// is far below one ulp.  The series coefficients are computed at compile
// time by exact-divisor divisions, which every IEEE-754 compiler folds the
// same way.
//
//===----------------------------------------------------------------------===//
#include "runtime/Random.h"
#include "runtime/Philox.h"

#include <cmath>
#include <limits>
#include <utility>

namespace gradc::rt {

namespace {

// ln 2 split so that k * kLn2Hi is exact for |k| < 2^11 (fdlibm's split).
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kInvLn2 = 1.44269504088896338700e+00;
constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kHalfPi = 1.57079632679489661923;

// log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 3 - 2 sqrt 2 for m in
// [sqrt 1/2, sqrt 2): the terms after s^23 are below 1e-19 relative.
constexpr int kLogTerms = 12;
// e^r for |r| <= ln 2 / 2: r^15 / 15! < 1e-18.
constexpr int kExpTerms = 15;
// sin, cos of x in [0, pi/4]: x^19 / 19! < 1e-19.
constexpr int kSinTerms = 9, kCosTerms = 10;

/// 1 / (2k + 1), the atanh series.
constexpr std::array<double, kLogTerms> kAtanhCoefficients = [] {
  std::array<double, kLogTerms> c{};
  for (int k = 0; k < kLogTerms; ++k)
    c[k] = 1.0 / (2 * k + 1);
  return c;
}();

/// 1 / k!, the exponential series.
constexpr std::array<double, kExpTerms> kExpCoefficients = [] {
  std::array<double, kExpTerms> c{};
  c[0] = 1.0;
  for (int k = 1; k < kExpTerms; ++k)
    c[k] = c[k - 1] / k;
  return c;
}();

/// (-1)^k / (2k + 1)!, the sine series in x^2 (times x).
constexpr std::array<double, kSinTerms> kSinCoefficients = [] {
  std::array<double, kSinTerms> c{};
  c[0] = 1.0;
  for (int k = 1; k < kSinTerms; ++k)
    c[k] = -c[k - 1] / ((2 * k) * (2 * k + 1));
  return c;
}();

/// (-1)^k / (2k)!, the cosine series in x^2.
constexpr std::array<double, kCosTerms> kCosCoefficients = [] {
  std::array<double, kCosTerms> c{};
  c[0] = 1.0;
  for (int k = 1; k < kCosTerms; ++k)
    c[k] = -c[k - 1] / ((2 * k - 1) * (2 * k));
  return c;
}();

template <size_t N> double horner(const std::array<double, N> &c, double x) {
  double sum = c[N - 1];
  for (size_t k = N - 1; k-- > 0;)
    sum = sum * x + c[k];
  return sum;
}

} // namespace

double reproducibleLog(double x) {
  if (std::isnan(x) || x < 0)
    return std::numeric_limits<double>::quiet_NaN();
  if (x == 0)
    return -std::numeric_limits<double>::infinity();
  if (std::isinf(x))
    return x;
  int exponent = 0;
  double m = std::frexp(x, &exponent); // exact: x = m 2^exponent, m in [1/2, 1)
  if (m < kSqrtHalf) {
    m *= 2;
    --exponent;
  }
  double s = (m - 1) / (m + 1);
  double logM = 2 * s * horner(kAtanhCoefficients, s * s);
  return exponent * kLn2Hi + (logM + exponent * kLn2Lo);
}

double reproducibleExp(double x) {
  // Beyond these e^x overflows to inf or underflows to 0 in double.
  constexpr double kOverflow = 709.782712893383973096;
  constexpr double kUnderflow = -745.133219101941108420;
  if (std::isnan(x))
    return x;
  if (x > kOverflow)
    return std::numeric_limits<double>::infinity();
  if (x < kUnderflow)
    return 0.0;
  double k = std::floor(x * kInvLn2 + 0.5);
  double r = (x - k * kLn2Hi) - k * kLn2Lo;
  return std::ldexp(horner(kExpCoefficients, r), static_cast<int>(k));
}

double reproducibleTanh(double x) {
  // Below this |x|, tanh x = x - x^3/3 + 2x^5/15 to well below an ulp, and
  // the exp form would lose digits to cancellation.
  constexpr double kSeriesLimit = 1.0 / 64;
  // Beyond this |x|, tanh x rounds to +-1 in double.
  constexpr double kSaturation = 20.0;
  if (std::isnan(x))
    return x;
  double a = std::fabs(x);
  double result;
  if (a < kSeriesLimit) {
    double a2 = a * a;
    result = a * (1 - a2 * (1.0 / 3 - a2 * (2.0 / 15 - a2 * (17.0 / 315))));
  } else if (a > kSaturation) {
    result = 1.0;
  } else {
    double t = reproducibleExp(-2 * a);
    result = (1 - t) / (1 + t);
  }
  return x < 0 ? -result : result;
}

void reproducibleSinCos2Pi(double u, double &sinOut, double &cosOut) {
  u -= std::floor(u); // into [0, 1); exact
  // Quadrant q and the position r in it: both exact, since 4u only shifts
  // the exponent.
  double t = 4 * u;
  double quadrant = std::floor(t);
  double r = t - quadrant;
  // Reflect to [0, 1/2] (exact by Sterbenz) so the series argument is <= pi/4.
  bool reflect = r > 0.5;
  if (reflect)
    r = 1 - r;
  double x = r * kHalfPi, x2 = x * x;
  double s = x * horner(kSinCoefficients, x2);
  double c = horner(kCosCoefficients, x2);
  if (reflect)
    std::swap(s, c);
  switch (static_cast<int>(quadrant) & 3) {
  case 0:
    sinOut = s, cosOut = c;
    break;
  case 1:
    sinOut = c, cosOut = -s;
    break;
  case 2:
    sinOut = -s, cosOut = -c;
    break;
  default:
    sinOut = -c, cosOut = s;
    break;
  }
}

std::array<uint32_t, 4> philoxBlock(uint64_t seed, uint64_t block, uint32_t stream,
                                    uint32_t domain) {
  return philox4x32_10({uint32_t(block), stream, domain, uint32_t(block >> 32)},
                       {uint32_t(seed), uint32_t(seed >> 32)});
}

std::array<double, 2> boxMuller(uint32_t w0, uint32_t w1) {
  // u1 in (0, 1], never 0, so the logarithm is finite.
  double u1 = (uint64_t(w0) + 1) * 0x1p-32;
  double radius = std::sqrt(-2 * reproducibleLog(u1));
  double s, c;
  reproducibleSinCos2Pi(uniformFromWord(w1), s, c);
  return {radius * c, radius * s};
}

} // namespace gradc::rt
