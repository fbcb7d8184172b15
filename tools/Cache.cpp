//===- tools/Cache.cpp - gradc cache: what gradc keeps between runs -------===//
//
// Two caches grow without bound: compiled kernels, one directory per build
// of gradc (tools/Driver.h, kernelCacheDir), and inflated data sets
// (runtime/InflatedCache.h).  `gradc cache` says where they are and what
// they hold; --clear-stale removes the kernels of other builds, which this
// one can never use, and --clear everything both hold.
//
// Only files named as gradc names them are counted or removed: the
// directories come from environment variables, and GRADC_CACHE_DIR=$HOME
// must not cost anyone their home.
//
//===----------------------------------------------------------------------===//
#include "tools/Commands.h"
#include "tools/Driver.h"

#include "runtime/CacheDirs.h"
#include "runtime/InflatedCache.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <filesystem>
#include <fmt/format.h>
#include <iostream>

namespace gradc::tool {
namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

/// Splits `text` at every `separator`.
std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (size_t at; (at = text.find(separator)) != std::string_view::npos; text.remove_prefix(at + 1))
    parts.push_back(text.substr(0, at));
  parts.push_back(text);
  return parts;
}

/// A build's directory of the kernel cache, as kernelCacheDir names it:
/// the executable's size and its mtime in nanoseconds, in hex (16 digits
/// from 2001 to 2554).
bool isBuildDirectoryName(std::string_view name) {
  std::vector<std::string_view> parts = split(name, '-');
  return parts.size() == 2 && rt::isLowerHex(parts[0], 1, 16) && rt::isLowerHex(parts[1], 16, 16);
}

/// A kernel object: the key's SHA-256 in hex, ".o".
bool isKernelFileName(std::string_view name) {
  name = rt::withoutTemporarySuffix(name);
  return name.size() == 64 + 2 && name.ends_with(".o") && rt::isLowerHex(name.substr(0, 64), 64);
}

/// An inflated data file, or a writer's temporary file for one.
bool isInflatedFileName(std::string_view name) {
  return rt::isInflatedEntryName(name, /*temporary=*/false) ||
         rt::isInflatedEntryName(name, /*temporary=*/true);
}

/// Files counted or removed, and their bytes.
struct Tally {
  int64_t files = 0, bytes = 0;
  void add(const Tally &other) {
    files += other.files;
    bytes += other.bytes;
  }
};

std::string mebibytes(int64_t bytes) {
  return fmt::format("{:.1f} MiB", double(bytes) / (1 << 20));
}

/// The files of `dir` that `ours` accepts, removed when `remove` is set;
/// then `dir` itself if `removeDir` and nothing else is left in it.
Tally sweep(const fs::path &dir, bool (*ours)(std::string_view), bool remove,
            bool removeDir = false) {
  Tally tally;
  std::error_code error;
  for (const fs::directory_entry &entry : fs::directory_iterator(dir, error)) {
    std::error_code ignored;
    // Never through a symbolic link: its target is not the cache's.
    if (entry.is_symlink(ignored) || !entry.is_regular_file(ignored) ||
        !ours(entry.path().filename().string()))
      continue;
    const int64_t size = int64_t(entry.file_size(ignored));
    if (remove && !fs::remove(entry.path(), ignored))
      continue;
    ++tally.files;
    tally.bytes += size;
  }
  if (removeDir && !fs::is_symlink(dir, error))
    fs::remove(dir, error); // only succeeds when empty
  return tally;
}

/// The build directories under the kernel cache's root other than `own`.
std::vector<fs::path> otherBuilds(const fs::path &root, const fs::path &own) {
  std::vector<fs::path> builds;
  std::error_code error;
  for (const fs::directory_entry &entry : fs::directory_iterator(root, error)) {
    std::error_code ignored;
    if (!entry.is_symlink(ignored) && entry.is_directory(ignored) &&
        isBuildDirectoryName(entry.path().filename().string()) &&
        entry.path().filename() != own.filename())
      builds.push_back(entry.path());
  }
  std::sort(builds.begin(), builds.end());
  return builds;
}

} // namespace

int runCache(const std::vector<std::string> &args) {
  po::options_description options("cache options");
  options.add_options()("help,h", "this help")(
      "clear-stale", po::bool_switch(),
      "remove the kernels compiled by other builds of gradc (this one cannot use them)")(
      "clear", po::bool_switch(),
      "remove every compiled kernel and every inflated data file gradc keeps");
  po::variables_map values;
  try {
    po::positional_options_description none; // so that a stray argument is an error
    po::store(po::command_line_parser(args).options(options).positional(none).run(), values);
    po::notify(values);
  } catch (const po::error &e) {
    return fail(fmt::format("{} (see 'gradc cache --help')", e.what()));
  }
  if (values.count("help")) {
    std::cout << "usage: gradc cache [--clear-stale | --clear]\n\n"
              << "Where gradc keeps compiled kernels ($GRADC_CACHE_DIR, else "
                 "~/.cache/gradc/kernels)\nand inflated data sets ($GRADC_DATA_CACHE_DIR, else "
                 "~/.cache/gradc/data),\nand how much each holds.  Only files named as gradc names "
                 "them are counted or removed.\n\n"
              << options;
    return 0;
  }
  const bool clearAll = values["clear"].as<bool>();
  const bool clearStale = clearAll || values["clear-stale"].as<bool>();

  const std::string kernels = kernelCacheDir();
  if (kernels.empty()) {
    std::cout << "kernel cache: off (GRADC_CACHE_DIR=off, or no home directory)\n";
  } else {
    const fs::path own(kernels), root = own.parent_path();
    std::cout << fmt::format("kernel cache: {}\n", root.string());
    std::error_code error;
    const Tally mine = fs::is_symlink(own, error)
                           ? Tally{}
                           : sweep(own, isKernelFileName, clearAll, /*removeDir=*/clearAll);
    std::cout << fmt::format("  this build ({}): {} object{}, {}{}\n", own.filename().string(),
                             mine.files, mine.files == 1 ? "" : "s", mebibytes(mine.bytes),
                             clearAll ? ", removed" : "");
    Tally stale;
    const std::vector<fs::path> builds = otherBuilds(root, own);
    for (const fs::path &build : builds)
      stale.add(sweep(build, isKernelFileName, clearStale, /*removeDir=*/clearStale));
    std::cout << fmt::format("  other builds: {} director{}, {} object{}, {}{}\n", builds.size(),
                             builds.size() == 1 ? "y" : "ies", stale.files,
                             stale.files == 1 ? "" : "s", mebibytes(stale.bytes),
                             clearStale       ? ", removed"
                             : builds.empty() ? ""
                                              : " (gradc cache --clear-stale removes them)");
  }

  const std::string data = rt::defaultInflatedCacheDir();
  if (data.empty()) {
    std::cout << "data cache: off (GRADC_DATA_CACHE_DIR=off, or no home directory)\n";
  } else {
    std::cout << fmt::format("data cache: {}\n", data);
    const Tally inflated = sweep(data, isInflatedFileName, clearAll);
    std::cout << fmt::format("  {} inflated file{}, {}{}\n", inflated.files,
                             inflated.files == 1 ? "" : "s", mebibytes(inflated.bytes),
                             clearAll ? ", removed" : "");
  }
  return 0;
}

} // namespace gradc::tool
