//===- runtime/Checkpoint.cpp - safetensors checkpoints -------------------===//
#include "runtime/Checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>
#include <vector>

namespace gradc::rt {
namespace {

constexpr const char *kFormatVersion = "gradc-checkpoint-1";

/// A minimal JSON reader for safetensors headers: objects, arrays, strings
/// (without unicode escapes beyond \uXXXX ASCII), integers.
class JsonReader {
public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  struct Value {
    enum Kind { Object, Array, String, Number } kind = Number;
    std::vector<std::pair<std::string, Value>> members;
    std::vector<Value> items;
    std::string text;
    int64_t number = 0;
  };

  bool parse(Value &value, std::string &error) {
    if (!parseValue(value, 0) || (skip(), pos_ != text_.size())) {
      error = fmt::format("malformed JSON header at byte {}", pos_);
      return false;
    }
    return true;
  }

private:
  void skip() {
    while (pos_ < text_.size() && std::strchr(" \t\r\n", text_[pos_]))
      ++pos_;
  }
  bool eat(char c) {
    skip();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool parseString(std::string &out) {
    if (!eat('"'))
      return false;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c == '\\') {
        if (pos_ >= text_.size())
          return false;
        char e = text_[pos_++];
        c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
      }
      out += c;
    }
    return eat('"');
  }
  bool parseValue(Value &value, int depth) {
    if (depth > 8)
      return false;
    skip();
    if (pos_ >= text_.size())
      return false;
    char c = text_[pos_];
    if (c == '{') {
      ++pos_;
      value.kind = Value::Object;
      if (eat('}'))
        return true;
      do {
        std::string key;
        Value member;
        if (!parseString(key) || !eat(':') || !parseValue(member, depth + 1))
          return false;
        value.members.emplace_back(std::move(key), std::move(member));
      } while (eat(','));
      return eat('}');
    }
    if (c == '[') {
      ++pos_;
      value.kind = Value::Array;
      if (eat(']'))
        return true;
      do {
        Value item;
        if (!parseValue(item, depth + 1))
          return false;
        value.items.push_back(std::move(item));
      } while (eat(','));
      return eat(']');
    }
    if (c == '"') {
      value.kind = Value::String;
      return parseString(value.text);
    }
    size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '-'))
      ++pos_;
    if (start == pos_ || pos_ - start > 18)
      return false;
    value.kind = Value::Number;
    value.number = std::stoll(std::string(text_.substr(start, pos_ - start)));
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

std::string quote(const std::string &text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

} // namespace

bool saveCheckpoint(const std::string &path, const TensorStore &store, const CheckpointInfo &info,
                    std::string &error) {
  std::map<std::string, const Tensor *> tensors;
  for (const Tensor *t : store.persistent())
    tensors[t->spec.name] = t;
  std::string header = "{";
  int64_t offset = 0;
  for (const auto &[name, t] : tensors) {
    header += fmt::format("{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}},",
                          quote(name), t->spec.isInt ? "I32" : "F32", fmt::join(t->spec.dims, ","),
                          offset, offset + t->spec.bytes());
    offset += t->spec.bytes();
  }
  header += fmt::format("\"__metadata__\":{{\"format\":{},\"model\":{},\"seed\":\"{}\","
                        "\"epoch\":\"{}\",\"step\":\"{}\"}}}}",
                        quote(kFormatVersion), quote(info.model), info.seed, info.epoch, info.step);
  header.append((8 - header.size() % 8) % 8, ' ');

  std::string temporary = fmt::format("{}.tmp-{}", path, getpid());
  FILE *file = std::fopen(temporary.c_str(), "wb");
  if (!file) {
    error = fmt::format("cannot write checkpoint '{}': {}", temporary, std::strerror(errno));
    return false;
  }
  uint64_t length = header.size(); // little-endian on every target gradc supports
  bool ok = std::fwrite(&length, 8, 1, file) == 1 &&
            std::fwrite(header.data(), 1, header.size(), file) == header.size();
  for (const auto &[name, t] : tensors)
    ok = ok && std::fwrite(t->data(), 1, size_t(t->spec.bytes()), file) == size_t(t->spec.bytes());
  ok = ok && std::fflush(file) == 0 && fsync(fileno(file)) == 0;
  ok = (std::fclose(file) == 0) && ok;
  std::error_code ec;
  if (ok)
    std::filesystem::rename(temporary, path, ec);
  if (!ok || ec) {
    error = fmt::format("cannot write checkpoint '{}': {}", path,
                        ec ? ec.message() : std::string(std::strerror(errno)));
    std::remove(temporary.c_str());
    return false;
  }
  return true;
}

bool loadCheckpoint(const std::string &path, TensorStore &store, CheckpointUse use,
                    CheckpointInfo &info, std::string &error) {
  auto fail = [&](const std::string &message) {
    error = fmt::format("checkpoint '{}': {}", path, message);
    return false;
  };
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return fail(std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string raw = buffer.str();
  if (raw.size() < 8)
    return fail(fmt::format("{} bytes, too short for a safetensors header", raw.size()));
  uint64_t length = 0;
  std::memcpy(&length, raw.data(), 8);
  if (length > raw.size() - 8)
    return fail(fmt::format("the header claims {} bytes but the file has {} after it", length,
                            raw.size() - 8));
  JsonReader::Value header;
  std::string jsonError;
  if (!JsonReader(std::string_view(raw).substr(8, length)).parse(header, jsonError) ||
      header.kind != JsonReader::Value::Object)
    return fail(jsonError.empty() ? "the header is not a JSON object" : jsonError);
  const char *data = raw.data() + 8 + length;
  uint64_t dataSize = raw.size() - 8 - length;

  std::map<std::string, const JsonReader::Value *> entries;
  for (const auto &[name, value] : header.members) {
    if (name == "__metadata__") {
      for (const auto &[key, v] : value.members) {
        if (v.kind != JsonReader::Value::String)
          continue;
        try {
          if (key == "model")
            info.model = v.text;
          else if (key == "seed")
            info.seed = std::stoull(v.text);
          else if (key == "epoch")
            info.epoch = std::stoll(v.text);
          else if (key == "step")
            info.step = std::stoull(v.text);
        } catch (const std::exception &) {
          return fail(fmt::format("metadata '{}' is not a number: '{}'", key, v.text));
        }
      }
      continue;
    }
    entries[name] = &value;
  }
  std::vector<std::pair<Tensor *, const char *>> copies;
  for (Tensor *t : store.persistent()) {
    bool isState = t->spec.role == Role::State;
    if (isState && use == CheckpointUse::Init)
      continue;
    auto it = entries.find(t->spec.name);
    if (it == entries.end())
      return fail(fmt::format("it has no tensor '{}' ({} {}{}) that the model needs", t->spec.name,
                              roleName(t->spec.role), t->spec.isInt ? "i32" : "f32",
                              t->spec.shapeStr()));
    const JsonReader::Value &entry = *it->second;
    std::string dtype;
    std::vector<int64_t> shape, offsets;
    for (const auto &[key, v] : entry.members) {
      if (key == "dtype")
        dtype = v.text;
      else if (key == "shape")
        for (const auto &d : v.items)
          shape.push_back(d.number);
      else if (key == "data_offsets")
        for (const auto &d : v.items)
          offsets.push_back(d.number);
    }
    std::string want = t->spec.isInt ? "I32" : "F32";
    if (dtype != want)
      return fail(
          fmt::format("tensor '{}' has dtype {}, the model's is {}", t->spec.name, dtype, want));
    if (shape != t->spec.dims)
      return fail(fmt::format("tensor '{}' has shape [{}], the model's is {}", t->spec.name,
                              fmt::join(shape, ","), t->spec.shapeStr()));
    if (offsets.size() != 2 || offsets[0] < 0 || offsets[1] < offsets[0] ||
        uint64_t(offsets[1]) > dataSize || offsets[1] - offsets[0] != t->spec.bytes())
      return fail(fmt::format("tensor '{}' has data offsets outside the file or of the wrong "
                              "size (expected {} bytes)",
                              t->spec.name, t->spec.bytes()));
    copies.emplace_back(t, data + offsets[0]);
    entries.erase(it);
  }
  if (use == CheckpointUse::Resume && !entries.empty())
    return fail(
        fmt::format("it has a tensor '{}' that the model does not have", entries.begin()->first));
  // Only now, with everything checked, are the model's tensors overwritten.
  for (auto &[t, source] : copies)
    std::memcpy(t->data(), source, size_t(t->spec.bytes()));
  return true;
}

} // namespace gradc::rt
