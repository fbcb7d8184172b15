//===- ir/Diagnostics.h - Source locations and user-facing errors ---------===//
//
// Every token, AST node and IR node carries a SourceLoc.  User errors are
// reported through Diagnostics in the clang style
//
//   lecture.grad:8:7: error: unknown name 'W3'
//     o = W3 @ h
//         ^~
//
// Internal bugs are asserts; they never go through this class.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <string_view>

namespace gradc {

/// A position in a source file.  `file` is an interned name (see
/// internFileName) so locations are cheap to copy and compare.
struct SourceLoc {
  const std::string *file = nullptr;
  uint32_t line = 0; ///< 1-based; 0 means "no position".
  uint32_t col = 0;  ///< 1-based.

  bool valid() const { return file && line > 0; }
  /// "file:line:col", or "" when there is no position.
  std::string str() const;
};

/// Returns a stable pointer for a file name; equal names give equal pointers.
const std::string *internFileName(std::string_view name);

/// Holds the text of every file read so diagnostics can quote the line.
class SourceManager {
public:
  /// Registers `text` as the contents of `file`; returns the interned name.
  const std::string *add(std::string_view file, std::string text);
  std::string_view text(const std::string *file) const;
  /// The text of the line that `loc` points into, without its newline.
  std::string_view lineText(SourceLoc loc) const;

private:
  std::map<const std::string *, std::string> files_;
};

enum class Severity { Error, Warning, Note };

/// Collects and prints diagnostics.  Printing happens immediately so that
/// the order on the terminal is the order in which they were found.
class Diagnostics {
public:
  explicit Diagnostics(const SourceManager *sources = nullptr);
  /// Diagnostics go to `out` instead of stderr (used by tests).
  Diagnostics(const SourceManager *sources, std::ostream &out);

  void error(SourceLoc loc, std::string_view message, unsigned length = 1);
  void warning(SourceLoc loc, std::string_view message, unsigned length = 1);
  void note(SourceLoc loc, std::string_view message, unsigned length = 1);
  /// An error that has no position ("gradc: error: ...").
  void error(std::string_view message) { error(SourceLoc{}, message); }

  unsigned errorCount() const { return errors_; }
  bool hadError() const { return errors_ != 0; }
  const SourceManager *sources() const { return sources_; }

private:
  void report(Severity severity, SourceLoc loc, std::string_view message, unsigned length);

  const SourceManager *sources_;
  std::ostream *out_;
  unsigned errors_ = 0;
};

/// Reads a whole file for the compiler.  On failure reports
/// "gradc: error: cannot read 'F': reason" and returns false.  A file that is
/// empty or not text (contains a NUL byte or invalid UTF-8) is an error too,
/// with `what` naming the expected contents ("model file", "IR file").
bool readSourceFile(const std::string &path, std::string_view what, SourceManager &sources,
                    Diagnostics &diags, const std::string **interned);

} // namespace gradc
