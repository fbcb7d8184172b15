//===- ir/Diagnostics.cpp - Source locations and user-facing errors -------===//
#include "ir/Diagnostics.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>

namespace gradc {

std::string SourceLoc::str() const {
  if (!valid())
    return "";
  return fmt::format("{}:{}:{}", *file, line, col);
}

const std::string *internFileName(std::string_view name) {
  static std::set<std::string, std::less<>> names;
  auto it = names.find(name);
  if (it == names.end())
    it = names.emplace(name).first;
  return &*it;
}

const std::string *SourceManager::add(std::string_view file, std::string text) {
  const std::string *name = internFileName(file);
  files_[name] = std::move(text);
  return name;
}

std::string_view SourceManager::text(const std::string *file) const {
  auto it = files_.find(file);
  return it == files_.end() ? std::string_view() : std::string_view(it->second);
}

std::string_view SourceManager::lineText(SourceLoc loc) const {
  if (!loc.valid())
    return {};
  std::string_view text = this->text(loc.file);
  size_t pos = 0;
  for (uint32_t line = 1; line < loc.line; ++line) {
    pos = text.find('\n', pos);
    if (pos == std::string_view::npos)
      return {};
    ++pos;
  }
  size_t end = text.find('\n', pos);
  std::string_view result =
      text.substr(pos, end == std::string_view::npos ? text.size() - pos : end - pos);
  if (!result.empty() && result.back() == '\r')
    result.remove_suffix(1);
  return result;
}

Diagnostics::Diagnostics(const SourceManager *sources) : sources_(sources), out_(&std::cerr) {}
Diagnostics::Diagnostics(const SourceManager *sources, std::ostream &out)
    : sources_(sources), out_(&out) {}

void Diagnostics::error(SourceLoc loc, std::string_view message, unsigned length) {
  report(Severity::Error, loc, message, length);
}
void Diagnostics::warning(SourceLoc loc, std::string_view message, unsigned length) {
  report(Severity::Warning, loc, message, length);
}
void Diagnostics::note(SourceLoc loc, std::string_view message, unsigned length) {
  report(Severity::Note, loc, message, length);
}

void Diagnostics::report(Severity severity, SourceLoc loc, std::string_view message,
                         unsigned length) {
  const char *label = severity == Severity::Error     ? "error"
                      : severity == Severity::Warning ? "warning"
                                                      : "note";
  if (severity == Severity::Error)
    ++errors_;
  std::string prefix = loc.valid() ? loc.str() : (loc.file ? *loc.file : std::string("gradc"));
  *out_ << fmt::format("{}: {}: {}\n", prefix, label, message);
  // Quote the line only for files the compiler read (an IR file may carry
  // locations in a model file that is not at hand).
  if (!loc.valid() || !sources_ || sources_->text(loc.file).empty())
    return;
  std::string_view line = sources_->lineText(loc);
  if (line.empty() && loc.col <= 1)
    return;
  // Tabs are kept so the caret lines up under the same characters.
  std::string caret;
  for (uint32_t i = 1; i < loc.col && i - 1 < line.size(); ++i)
    caret += line[i - 1] == '\t' ? '\t' : ' ';
  while (caret.size() + 1 < loc.col)
    caret += ' ';
  caret += '^';
  for (unsigned i = 1; i < length; ++i)
    caret += '~';
  *out_ << line << '\n' << caret << '\n';
}

/// True when `text` is valid UTF-8 without NUL bytes: the test for "this is
/// a text file" that catches binaries handed to the compiler by mistake.
static bool looksLikeText(std::string_view text, size_t &badOffset) {
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0) {
      badOffset = i;
      return false;
    }
    int extra = c < 0x80           ? 0
                : (c >> 5) == 0x6  ? 1
                : (c >> 4) == 0xE  ? 2
                : (c >> 3) == 0x1E ? 3
                                   : -1;
    if (extra < 0 || i + extra >= text.size()) {
      badOffset = i;
      return false;
    }
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) {
        badOffset = i;
        return false;
      }
    i += extra + 1;
  }
  return true;
}

/// Model and IR files are hand-written or printed by gradc: far below this.
/// The limit ends the read of something endless (/dev/zero, a FIFO that
/// keeps writing) with an error instead of exhausting memory.
constexpr size_t kMaxSourceBytes = size_t(64) << 20;

bool readSourceFile(const std::string &path, std::string_view what, SourceManager &sources,
                    Diagnostics &diags, const std::string **interned) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    diags.error(fmt::format("cannot read {} '{}': it is a directory", what, path));
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.error(fmt::format("cannot read {} '{}': {}", what, path, std::strerror(errno)));
    return false;
  }
  std::string text;
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxSourceBytes) {
      diags.error(fmt::format("{} '{}' is larger than {} MiB: not a {}", what, path,
                              kMaxSourceBytes >> 20,
                              what == "IR file" ? "graph gradc printed" : "model file"));
      return false;
    }
  }
  if (in.bad()) {
    diags.error(fmt::format("cannot read {} '{}': read failed", what, path));
    return false;
  }
  size_t badOffset = 0;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    diags.error(fmt::format("{} '{}' is empty: expected a {}", what, path,
                            what == "IR file" ? "graph" : "model definition"));
    return false;
  }
  if (!looksLikeText(text, badOffset)) {
    diags.error(fmt::format("{} '{}' is not a text file (binary byte at offset {})", what, path,
                            badOffset));
    return false;
  }
  *interned = sources.add(path, std::move(text));
  return true;
}

} // namespace gradc
