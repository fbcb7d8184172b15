//===- runtime/Gzip.h - Reading files that may be gzipped -------*- C++ -*-===//
//
// Data sets come as .gz as often as not (MNIST, Fashion-MNIST, CSV dumps).
// A file is gzipped when it starts with the gzip magic 1f 8b; then it is
// inflated with libdeflate, or zlib where that fails, to say why (every
// member of a multi-member file, as gzip -d does), else it is returned as
// it is.  The file name does not matter.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <string>
#include <string_view>

namespace gradc::rt {

/// The content of `path`, decompressed when it starts with the gzip magic.
/// Returns false and sets `error` (naming the file) when it cannot be read
/// or its gzip data is corrupt or truncated.  `wasGzipped` (may be null)
/// says whether it was.
bool readMaybeGzipped(const std::string &path, std::string &bytes, std::string &error,
                      bool *wasGzipped = nullptr);

namespace detail {
/// The fast path of readMaybeGzipped on its own, for tests: inflates every
/// member of the gzip data `in` into `out` with libdeflate; false on
/// anything else than well-formed gzip data (optionally zero-padded).
bool gunzipWithLibdeflate(std::string_view in, std::string &out);
} // namespace detail

} // namespace gradc::rt
