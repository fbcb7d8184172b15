//===- runtime/InflatedCache.h - Inflate a data file once -------*- C++ -*-===//
//
// Inflating Fashion-MNIST's 26 MB of gzip takes 90-100 ms of one core on
// every run, beside the JIT on the same two cores.  The inflated bytes of a
// gzipped data file are therefore kept in a cache directory (as
// torchvision unpacks a download once) and mapped from there on later
// runs: ~10 ms instead of ~100, and no core taken from the compiler.
//
// An entry is named by the gzip file's own fingerprint: its compressed
// size, its trailer (the CRC-32 and the size mod 2^32 of the inflated
// data) and a hash of its first 4 KiB (the gzip header's name and mtime
// with the first compressed blocks).  Every read checks the entry's
// header against the fingerprint and its bytes against the CRC-32, so an
// entry that is damaged or truncated is never used: the file is inflated
// again and the entry rewritten.  (Two different files would share an
// entry only if all four agreed.)  Entries are written to a
// temporary file and renamed, so a reader sees a whole entry or none.
// Nothing here is ever an error: without a usable cache, files are read
// as readMaybeGzipped reads them.  (Removing entries is safe at any time;
// a mapping keeps its file.  Truncating one in place while a run maps it
// would stop that run with SIGBUS, as for any mapped file.)
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/ByteArray.h"

#include <string>
#include <string_view>

namespace gradc::rt {

/// The cache directory: $GRADC_DATA_CACHE_DIR, else
/// $XDG_CACHE_HOME/gradc/data, else ~/.cache/gradc/data; empty (no cache)
/// when GRADC_DATA_CACHE_DIR is "off".
std::string defaultInflatedCacheDir();

/// Whether `name` is an entry's file name (SIZE-CRC-ISIZE-HEAD in hex,
/// ".inflated"), or with `temporary` a writer's temporary file for one
/// (".inflated.tmp-PID-N"): the only files the cache, or `gradc cache`,
/// ever removes.
bool isInflatedEntryName(std::string_view name, bool temporary);

/// How readCachingInflated got its bytes.
enum class InflatedFrom {
  PlainFile,       ///< not gzipped: read as it is
  Inflating,       ///< gzipped, inflated, not cached (no directory, or it could not be written)
  InflatingCached, ///< gzipped, inflated, and now in the cache
  Cache,           ///< gzipped, mapped from the cache
};

/// The content of `path` as readMaybeGzipped gives it; a gzipped file's
/// inflated bytes come from `cacheDir` (none when empty) when it has them
/// and go there when it does not.  Errors are readMaybeGzipped's.
bool readCachingInflated(const std::string &path, const std::string &cacheDir, ByteArray &bytes,
                         std::string &error, InflatedFrom *from = nullptr);

} // namespace gradc::rt
