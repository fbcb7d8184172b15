//===- runtime/Checkpoint.cpp - safetensors checkpoints -------------------===//
//
// The reader is strict in the way the reference implementation (Hugging
// Face's safetensors crate) is, so that any file gradc accepts Python
// accepts too, and it says precisely what is wrong: a checkpoint is often
// the only copy of hours of training, and "bad file" helps nobody.
//
//===----------------------------------------------------------------------===//
#include "runtime/Checkpoint.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace gradc::rt {
namespace {

// The data are written and read as the host's bytes; safetensors is
// little-endian, and so is every machine gradc generates code for.
static_assert(std::endian::native == std::endian::little,
              "checkpoints store the host's bytes, which must be little-endian");

/// The safetensors limit on the header, against files that would make a
/// reader allocate gigabytes for a corrupt length.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
/// Nesting deeper than this is not a safetensors header (it needs 3).
constexpr int kMaxJsonDepth = 32;
/// How many tensor names an error message lists before "...".
constexpr size_t kNamesInMessages = 8;

//===----------------------------------------------------------------------===//
// A minimal JSON parser: the full grammar (RFC 8259), values kept as parsed.
//===----------------------------------------------------------------------===//

struct JsonValue {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool boolean = false;
  bool isInteger = false; ///< a Number without fraction or exponent that fits int64
  int64_t integer = 0;
  std::string text; ///< a String's value; a Number's literal
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members; ///< in file order, keys unique
};

const char *kindName(JsonValue::Kind kind) {
  switch (kind) {
  case JsonValue::Null:
    return "null";
  case JsonValue::Bool:
    return "a boolean";
  case JsonValue::Number:
    return "a number";
  case JsonValue::String:
    return "a string";
  case JsonValue::Array:
    return "an array";
  case JsonValue::Object:
    return "an object";
  }
  return "?";
}

class JsonParser {
public:
  /// `base` is the file offset of text[0], for messages.
  JsonParser(std::string_view text, size_t base) : text_(text), base_(base) {}

  /// Parses the whole text as one value (whitespace around it allowed).
  bool parse(JsonValue &value, std::string &error) {
    bool ok = parseValue(value, 0);
    if (ok) {
      skipSpace();
      if (pos_ != text_.size())
        ok = fail("unexpected text after the JSON object");
    }
    if (!ok)
      error = error_;
    return ok;
  }

private:
  bool fail(const std::string &message) {
    error_ = fmt::format("malformed JSON header at byte {}: {}", base_ + pos_, message);
    return false;
  }
  /// What is at the current position, for "expected X, found Y".
  std::string found() const {
    if (pos_ >= text_.size())
      return "the end of the header";
    char c = text_[pos_];
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return fmt::format("byte 0x{:02x}", static_cast<unsigned char>(c));
    return fmt::format("'{}'", c);
  }
  void skipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  bool expect(char c, const char *context) {
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return fail(fmt::format("expected '{}' {}, found {}", c, context, found()));
  }
  bool peek(char c) {
    skipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }

  bool parseValue(JsonValue &value, int depth) {
    if (depth > kMaxJsonDepth)
      return fail("nested too deeply");
    skipSpace();
    if (pos_ >= text_.size())
      return fail("expected a JSON value, found the end of the header");
    char c = text_[pos_];
    if (c == '{')
      return parseObject(value, depth);
    if (c == '[')
      return parseArray(value, depth);
    if (c == '"') {
      value.kind = JsonValue::String;
      return parseString(value.text);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
      return parseNumber(value);
    for (auto [word, kind, boolean] :
         {std::tuple{"true", JsonValue::Bool, true}, std::tuple{"false", JsonValue::Bool, false},
          std::tuple{"null", JsonValue::Null, false}})
      if (text_.substr(pos_).starts_with(word)) {
        pos_ += std::strlen(word);
        value.kind = kind;
        value.boolean = boolean;
        return true;
      }
    return fail(fmt::format("expected a JSON value, found {}", found()));
  }

  bool parseObject(JsonValue &value, int depth) {
    ++pos_; // '{'
    value.kind = JsonValue::Object;
    if (peek('}')) {
      ++pos_;
      return true;
    }
    for (;;) {
      skipSpace();
      size_t keyPos = pos_;
      if (pos_ >= text_.size() || text_[pos_] != '"')
        return fail(fmt::format("expected a string key, found {}", found()));
      std::string key;
      if (!parseString(key))
        return false;
      for (const auto &member : value.members)
        if (member.first == key) {
          pos_ = keyPos;
          return fail(fmt::format("the key \"{}\" appears twice in one object", key));
        }
      if (!expect(':', "after a key"))
        return false;
      JsonValue member;
      if (!parseValue(member, depth + 1))
        return false;
      value.members.emplace_back(std::move(key), std::move(member));
      if (peek(',')) {
        ++pos_;
        continue;
      }
      return expect('}', "or ',' after an object member");
    }
  }

  bool parseArray(JsonValue &value, int depth) {
    ++pos_; // '['
    value.kind = JsonValue::Array;
    if (peek(']')) {
      ++pos_;
      return true;
    }
    for (;;) {
      JsonValue item;
      if (!parseValue(item, depth + 1))
        return false;
      value.items.push_back(std::move(item));
      if (peek(',')) {
        ++pos_;
        continue;
      }
      return expect(']', "or ',' after an array element");
    }
  }

  static void appendUtf8(std::string &out, uint32_t code) {
    if (code < 0x80) {
      out += char(code);
    } else if (code < 0x800) {
      out += char(0xc0 | code >> 6);
      out += char(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out += char(0xe0 | code >> 12);
      out += char(0x80 | (code >> 6 & 0x3f));
      out += char(0x80 | (code & 0x3f));
    } else {
      out += char(0xf0 | code >> 18);
      out += char(0x80 | (code >> 12 & 0x3f));
      out += char(0x80 | (code >> 6 & 0x3f));
      out += char(0x80 | (code & 0x3f));
    }
  }

  bool parseHex4(uint32_t &code) {
    if (pos_ + 4 > text_.size())
      return fail("a \\u escape needs four hex digits");
    auto [end, ec] = std::from_chars(text_.data() + pos_, text_.data() + pos_ + 4, code, 16);
    if (ec != std::errc() || end != text_.data() + pos_ + 4)
      return fail("a \\u escape needs four hex digits");
    pos_ += 4;
    return true;
  }

  bool parseString(std::string &out) {
    ++pos_; // '"'
    for (;;) {
      if (pos_ >= text_.size())
        return fail("a string has no closing quote");
      char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20)
        return fail(fmt::format("a control character (byte 0x{:02x}) inside a string",
                                static_cast<unsigned char>(c)));
      ++pos_;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size())
        return fail("a string has no closing quote");
      char e = text_[pos_++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t code = 0;
        if (!parseHex4(code))
          return false;
        if (code >= 0xd800 && code < 0xdc00) { // a high surrogate: its pair must follow
          uint32_t low = 0;
          if (!text_.substr(pos_).starts_with("\\u"))
            return fail("a \\u escape of a high surrogate without its low surrogate");
          pos_ += 2;
          if (!parseHex4(low))
            return false;
          if (low < 0xdc00 || low >= 0xe000)
            return fail("a \\u escape of a high surrogate without its low surrogate");
          code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        } else if (code >= 0xdc00 && code < 0xe000) {
          return fail("a \\u escape of a lone low surrogate");
        }
        appendUtf8(out, code);
        break;
      }
      default:
        pos_ -= 2; // at the backslash
        return fail(fmt::format("an unknown escape '\\{}' in a string", e));
      }
    }
  }

  bool parseNumber(JsonValue &value) {
    size_t start = pos_;
    auto digits = [&] {
      size_t first = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9')
        ++pos_;
      return pos_ - first;
    };
    if (text_[pos_] == '-')
      ++pos_;
    size_t intStart = pos_;
    size_t intDigits = digits();
    if (intDigits == 0)
      return fail("a number needs digits");
    if (intDigits > 1 && text_[intStart] == '0') {
      pos_ = intStart;
      return fail("a number has a leading zero");
    }
    bool integral = true;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      integral = false;
      if (digits() == 0)
        return fail("a number needs digits after its decimal point");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      integral = false;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-'))
        ++pos_;
      if (digits() == 0)
        return fail("a number needs digits in its exponent");
    }
    value.kind = JsonValue::Number;
    value.text = std::string(text_.substr(start, pos_ - start));
    if (integral) {
      auto [end, ec] =
          std::from_chars(value.text.data(), value.text.data() + value.text.size(), value.integer);
      value.isInteger = ec == std::errc();
    }
    return true;
  }

  std::string_view text_;
  size_t base_;
  size_t pos_ = 0;
  std::string error_;
};

/// The offset of the first byte of `text` that breaks UTF-8, or npos.
size_t invalidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    unsigned char c = byte(i);
    size_t length = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xe  ? 3
                    : (c >> 3) == 0x1e ? 4
                                       : 0;
    if (length == 0 || i + length > text.size())
      return i;
    for (size_t k = 1; k < length; ++k)
      if ((byte(i + k) & 0xc0) != 0x80)
        return i;
    i += length;
  }
  return std::string_view::npos;
}

/// `text` as a JSON string literal.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// "'a', 'b', 'c'" of at most kNamesInMessages names, then ", ...".
std::string nameList(const std::vector<std::string> &names) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < names.size() && i < kNamesInMessages; ++i)
    shown.push_back("'" + names[i] + "'");
  if (names.size() > kNamesInMessages)
    shown.push_back("...");
  return fmt::format("{}", fmt::join(shown, ", "));
}

/// The metadata keys gradc writes itself.
constexpr std::array<const char *, 5> kReservedMetadata = {"format", "model", "seed", "epoch",
                                                           "step"};

bool isReserved(const std::string &key) {
  return std::find_if(kReservedMetadata.begin(), kReservedMetadata.end(),
                      [&](const char *k) { return key == k; }) != kReservedMetadata.end();
}

/// Makes the directory entry of a rename durable.  Best effort: some file
/// systems do not support fsync on directories, and the data itself was
/// synced before the rename.
void syncDirectoryOf(const std::string &path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

} // namespace

int64_t safetensorsDtypeSize(std::string_view dtype) {
  static constexpr std::pair<std::string_view, int64_t> kDtypes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  for (auto [name, size] : kDtypes)
    if (name == dtype)
      return size;
  return 0;
}

const SafetensorsEntry *SafetensorsFile::find(std::string_view name) const {
  for (const SafetensorsEntry &entry : tensors)
    if (entry.name == name)
      return &entry;
  return nullptr;
}

bool replaceableByRename(const std::string &path, std::string_view what, std::string &error) {
  std::error_code ec;
  std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status) || std::filesystem::is_regular_file(status))
    return true;
  error = fmt::format("the {} '{}' would replace {}: give the path of a file", what, path,
                      std::filesystem::is_directory(status) ? "a directory"
                                                            : "something that is not a file "
                                                              "(a device, a pipe)");
  return false;
}

bool saveCheckpoint(const std::string &path, const TensorStore &store, const CheckpointInfo &info,
                    std::string &error) {
  for (const auto &[key, value] : info.extra)
    if (isReserved(key)) {
      error = fmt::format("cannot write checkpoint '{}': the metadata key '{}' is reserved for "
                          "gradc's own",
                          path, key);
      return false;
    }
  // Sorted by name: the file does not depend on the order kernels were added.
  std::map<std::string, const Tensor *> tensors;
  for (const Tensor *t : store.persistent())
    tensors[t->spec.name] = t;

  std::string header = fmt::format(
      "{{\"__metadata__\":{{\"format\":{},\"model\":{},\"seed\":\"{}\",\"epoch\":\"{}\","
      "\"step\":\"{}\"",
      quote(kCheckpointFormat), quote(info.model), info.seed, info.epoch, info.step);
  for (const auto &[key, value] : info.extra)
    header += fmt::format(",{}:{}", quote(key), quote(value));
  header += "}";
  int64_t offset = 0;
  for (const auto &[name, t] : tensors) {
    header += fmt::format(",{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                          quote(name), t->spec.isInt ? "I32" : "F32", fmt::join(t->spec.dims, ","),
                          offset, offset + t->spec.bytes());
    offset += t->spec.bytes();
  }
  header += "}";
  // Padded so that the data start 8-byte aligned, as the format recommends.
  header.append((8 - header.size() % 8) % 8, ' ');

  if (!replaceableByRename(path, "checkpoint", error))
    return false;
  std::string temporary = fmt::format("{}.tmp-{}", path, ::getpid());
  FILE *file = std::fopen(temporary.c_str(), "wb");
  if (!file) {
    error = fmt::format("cannot write checkpoint '{}': {} (the previous '{}', if any, is "
                        "unchanged)",
                        temporary, std::strerror(errno), path);
    return false;
  }
  uint64_t length = header.size();
  bool ok = std::fwrite(&length, 8, 1, file) == 1 &&
            std::fwrite(header.data(), 1, header.size(), file) == header.size();
  for (const auto &[name, t] : tensors)
    ok = ok && std::fwrite(t->data(), 1, size_t(t->spec.bytes()), file) == size_t(t->spec.bytes());
  ok = ok && std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
  int savedErrno = errno;
  ok = std::fclose(file) == 0 && ok;
  if (!ok) {
    error = fmt::format("cannot write checkpoint '{}': {} (the previous '{}', if any, is "
                        "unchanged)",
                        temporary, std::strerror(savedErrno ? savedErrno : errno), path);
    std::remove(temporary.c_str());
    return false;
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    error =
        fmt::format("cannot rename '{}' to the checkpoint '{}': {}", temporary, path, ec.message());
    std::remove(temporary.c_str());
    return false;
  }
  syncDirectoryOf(path);
  return true;
}

bool readSafetensors(const std::string &path, SafetensorsFile &file, std::string &error) {
  auto fail = [&](const std::string &message) {
    error = fmt::format("checkpoint '{}': {}", path, message);
    return false;
  };
  file = SafetensorsFile{};
  {
    std::unique_ptr<FILE, int (*)(FILE *)> in(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!in)
      return fail(std::strerror(errno));
    // Checkpoints are files gradc wrote; a device or a pipe (/dev/zero)
    // would be read without end.
    struct stat info;
    if (::fstat(fileno(in.get()), &info) != 0)
      return fail(std::strerror(errno));
    if (!S_ISREG(info.st_mode))
      return fail(S_ISDIR(info.st_mode) ? "it is a directory" : "not a regular file");
    char buffer[1 << 16];
    for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, in.get())) > 0;)
      file.bytes.append(buffer, n);
    if (std::ferror(in.get()))
      return fail(std::strerror(errno));
  }
  const std::string &raw = file.bytes;
  if (raw.size() < 8)
    return fail(fmt::format("{} bytes, too short for a safetensors header", raw.size()));
  uint64_t length = 0;
  std::memcpy(&length, raw.data(), 8);
  if (length > raw.size() - 8)
    return fail(fmt::format("the header claims {} bytes but the file has {} after it", length,
                            raw.size() - 8));
  if (length > kMaxHeaderBytes)
    return fail(fmt::format("the header claims {} bytes, more than the {} safetensors allows",
                            length, kMaxHeaderBytes));
  std::string_view headerText = std::string_view(raw).substr(8, length);
  if (size_t bad = invalidUtf8(headerText); bad != std::string_view::npos)
    return fail(fmt::format("the header is not UTF-8 (byte {})", 8 + bad));
  JsonValue header;
  std::string jsonError;
  if (!JsonParser(headerText, 8).parse(header, jsonError))
    return fail(jsonError);
  if (header.kind != JsonValue::Object)
    return fail(fmt::format("the header is {}, not a JSON object", kindName(header.kind)));
  file.dataStart = 8 + length;
  const uint64_t dataSize = raw.size() - file.dataStart;

  for (const auto &[name, value] : header.members) {
    if (name == "__metadata__") {
      if (value.kind != JsonValue::Object)
        return fail(fmt::format("\"__metadata__\" is {}, not an object", kindName(value.kind)));
      for (const auto &[key, v] : value.members) {
        if (v.kind != JsonValue::String)
          return fail(fmt::format("\"__metadata__\" maps names to strings, but '{}' is {}", key,
                                  kindName(v.kind)));
        file.metadata[key] = v.text;
      }
      continue;
    }
    if (value.kind != JsonValue::Object)
      return fail(
          fmt::format("tensor '{}' is described by {}, not an object", name, kindName(value.kind)));
    const JsonValue *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto &[key, v] : value.members) {
      if (key == "dtype")
        dtype = &v;
      else if (key == "shape")
        shape = &v;
      else if (key == "data_offsets")
        offsets = &v;
    }
    for (auto [field, member] :
         {std::pair{"dtype", dtype}, std::pair{"shape", shape}, std::pair{"data_offsets", offsets}})
      if (!member)
        return fail(fmt::format("tensor '{}' has no \"{}\"", name, field));
    SafetensorsEntry entry;
    entry.name = name;
    if (dtype->kind != JsonValue::String)
      return fail(fmt::format("tensor '{}' has a dtype that is {}, not a string", name,
                              kindName(dtype->kind)));
    entry.dtype = dtype->text;
    const int64_t elementSize = safetensorsDtypeSize(entry.dtype);
    if (elementSize == 0)
      return fail(fmt::format("tensor '{}' has an unknown dtype '{}'", name, entry.dtype));
    auto integers = [&](const JsonValue &array, std::vector<int64_t> &out) {
      if (array.kind != JsonValue::Array)
        return false;
      for (const JsonValue &item : array.items) {
        if (item.kind != JsonValue::Number || !item.isInteger || item.integer < 0)
          return false;
        out.push_back(item.integer);
      }
      return true;
    };
    if (!integers(*shape, entry.shape))
      return fail(
          fmt::format("tensor '{}' has a shape that is not an array of integers >= 0", name));
    std::vector<int64_t> range;
    if (!integers(*offsets, range) || range.size() != 2)
      return fail(fmt::format("tensor '{}' has data_offsets that are not two integers >= 0", name));
    entry.begin = uint64_t(range[0]);
    entry.end = uint64_t(range[1]);
    if (entry.begin > entry.end)
      return fail(fmt::format("tensor '{}' has data offsets [{},{}] that run backwards", name,
                              entry.begin, entry.end));
    if (entry.end > dataSize)
      return fail(fmt::format("tensor '{}' has data offsets [{},{}] beyond the {} bytes of data",
                              name, entry.begin, entry.end, dataSize));
    // The size the shape and dtype need, without overflow: it must not
    // exceed the data, which fits in memory.
    unsigned __int128 needed = uint64_t(elementSize);
    for (int64_t d : entry.shape)
      needed = std::min<unsigned __int128>(needed * uint64_t(d), dataSize + 1);
    if (needed != entry.end - entry.begin)
      return fail(fmt::format("tensor '{}' of dtype {} and shape [{}] needs {} bytes, its data "
                              "offsets [{},{}] hold {}",
                              name, entry.dtype, fmt::join(entry.shape, ","),
                              needed > dataSize ? "more than the file's"
                                                : fmt::format("{}", uint64_t(needed)),
                              entry.begin, entry.end, entry.end - entry.begin));
    file.tensors.push_back(std::move(entry));
  }

  // The data must be covered exactly once: no overlap, no gap, no tail.
  std::vector<const SafetensorsEntry *> byOffset;
  for (const SafetensorsEntry &entry : file.tensors)
    byOffset.push_back(&entry);
  std::stable_sort(byOffset.begin(), byOffset.end(), [](auto *a, auto *b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const SafetensorsEntry *previous = nullptr;
  for (const SafetensorsEntry *entry : byOffset) {
    if (entry->begin < covered)
      return fail(fmt::format("tensors '{}' [{},{}] and '{}' [{},{}] overlap", previous->name,
                              previous->begin, previous->end, entry->name, entry->begin,
                              entry->end));
    if (entry->begin > covered)
      return fail(fmt::format("no tensor holds bytes [{},{}) of the data", covered, entry->begin));
    covered = entry->end;
    previous = entry;
  }
  if (covered != dataSize)
    return fail(fmt::format("the tensors hold {} bytes of data but the file has {} after the "
                            "header",
                            covered, dataSize));
  return true;
}

bool loadCheckpoint(const std::string &path, TensorStore &store, CheckpointUse use,
                    CheckpointInfo &info, std::string &error) {
  auto fail = [&](const std::string &message) {
    error = fmt::format("checkpoint '{}': {}", path, message);
    return false;
  };
  SafetensorsFile file;
  if (!readSafetensors(path, file, error))
    return false;

  // Metadata: gradc's own keys are checked; anything else is passed on.
  CheckpointInfo read;
  auto meta = [&](const char *key) -> const std::string * {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() ? nullptr : &it->second;
  };
  if (const std::string *format = meta("format"))
    read.format = *format;
  if (const std::string *model = meta("model"))
    read.model = *model;
  const bool ours = read.format == kCheckpointFormat;
  if (use == CheckpointUse::Resume && !ours)
    return fail(read.format.empty()
                    ? "it has no gradc metadata (format, seed, epoch, step), so training cannot "
                      "resume from it; --init starts from the weights of any safetensors file"
                    : fmt::format("its format is '{}', not '{}', so training cannot resume from "
                                  "it; --init starts from its weights",
                                  read.format, kCheckpointFormat));
  if (ours) {
    for (auto [key, target] : {std::pair{"seed", &read.seed}, std::pair{"step", &read.step}}) {
      const std::string *text = meta(key);
      if (!text)
        return fail(fmt::format("its metadata has no '{}'", key));
      auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), *target);
      if (ec != std::errc() || end != text->data() + text->size())
        return fail(fmt::format("metadata '{}' is not a number: '{}'", key, *text));
    }
    const std::string *epoch = meta("epoch");
    if (!epoch)
      return fail("its metadata has no 'epoch'");
    auto [end, ec] = std::from_chars(epoch->data(), epoch->data() + epoch->size(), read.epoch);
    if (ec != std::errc() || end != epoch->data() + epoch->size() || read.epoch < 0)
      return fail(fmt::format("metadata 'epoch' is not a number: '{}'", *epoch));
  }
  for (const auto &[key, value] : file.metadata)
    if (!isReserved(key))
      read.extra[key] = value;

  // Match the model's tensors; nothing is written until all of them fit.
  std::vector<std::pair<Tensor *, const SafetensorsEntry *>> copies;
  std::vector<std::string> missing, fileNames;
  for (const SafetensorsEntry &entry : file.tensors)
    fileNames.push_back(entry.name);
  for (Tensor *t : store.persistent()) {
    if (t->spec.role == Role::State && use == CheckpointUse::Init)
      continue;
    const SafetensorsEntry *entry = file.find(t->spec.name);
    if (!entry) {
      missing.push_back(t->spec.name);
      continue;
    }
    std::string want = t->spec.isInt ? "I32" : "F32";
    if (entry->dtype != want)
      return fail(fmt::format("tensor '{}' has dtype {}, the model's is {}", t->spec.name,
                              entry->dtype, want));
    if (entry->shape != t->spec.dims)
      return fail(fmt::format("tensor '{}' has shape [{}], the model's is {}", t->spec.name,
                              fmt::join(entry->shape, ","), t->spec.shapeStr()));
    copies.emplace_back(t, entry);
  }
  if (!missing.empty()) {
    const Tensor *first = store.find(missing[0]);
    std::string more =
        missing.size() > 1
            ? fmt::format(", nor {}",
                          nameList(std::vector<std::string>(missing.begin() + 1, missing.end())))
            : "";
    return fail(fmt::format("it has no tensor '{}' ({} {}{}) that the model needs{}; the file has "
                            "{}",
                            first->spec.name, roleName(first->spec.role),
                            first->spec.isInt ? "i32" : "f32", first->spec.shapeStr(), more,
                            fileNames.empty() ? "no tensors" : nameList(fileNames)));
  }
  std::vector<std::string> unused;
  for (const SafetensorsEntry &entry : file.tensors)
    if (std::none_of(copies.begin(), copies.end(),
                     [&](const auto &copy) { return copy.second == &entry; }))
      unused.push_back(entry.name);
  if (use == CheckpointUse::Resume && !unused.empty())
    return fail(
        unused.size() == 1
            ? fmt::format("it has a tensor '{}' that the model does not have", unused[0])
            : fmt::format("it has tensors {} that the model does not have", nameList(unused)));

  for (auto &[t, entry] : copies)
    std::memcpy(t->data(), file.data(*entry), size_t(t->spec.bytes()));
  read.ignored = std::move(unused);
  info = std::move(read);
  return true;
}

} // namespace gradc::rt
