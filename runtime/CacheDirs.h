//===- runtime/CacheDirs.h - Where gradc's caches live ----------*- C++ -*-===//
//
// Two caches follow the same rules: compiled kernels (tools/Driver.h,
// kernelCacheDir) and inflated data sets (runtime/InflatedCache.h).  Both
// live where an environment variable says, else under the XDG cache
// directory, and both write an entry to NAME.tmp-PID-N before renaming it
// to NAME.  `gradc cache` (tools/Cache.cpp) reads both with these rules.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

namespace gradc::rt {

/// $`variable`, else $XDG_CACHE_HOME/gradc/`leaf`, else
/// ~/.cache/gradc/`leaf`; empty (no cache) when $`variable` is "off" or no
/// home is known.
inline std::string cacheDirFromEnvironment(const char *variable, std::string_view leaf) {
  if (const char *dir = std::getenv(variable))
    return std::string_view(dir) == "off" ? "" : dir;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/gradc/" + std::string(leaf);
  if (const char *home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/gradc/" + std::string(leaf);
  return "";
}

/// Whether `text` is lower-case hex digits, at least `minSize` and at most
/// `maxSize` of them.
inline bool isLowerHex(std::string_view text, size_t minSize = 1, size_t maxSize = 64) {
  return text.size() >= minSize && text.size() <= maxSize &&
         std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

/// What a writer's temporary file has between the entry's name and the
/// writer's process ID.
inline constexpr std::string_view kTemporaryInfix = ".tmp-";

/// NAME for a writer's temporary file NAME.tmp-PID-N; `name` itself when
/// it is not of that form.
inline std::string_view withoutTemporarySuffix(std::string_view name) {
  auto digits = [](std::string_view text) {
    return !text.empty() && text.size() <= 19 &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const size_t at = name.rfind(kTemporaryInfix);
  if (at == std::string_view::npos)
    return name;
  const std::string_view numbers = name.substr(at + kTemporaryInfix.size());
  const size_t dash = numbers.find('-');
  if (dash == std::string_view::npos || !digits(numbers.substr(0, dash)) ||
      !digits(numbers.substr(dash + 1)))
    return name;
  return name.substr(0, at);
}

} // namespace gradc::rt
