//===- test/unit/runtime/CheckpointTest.cpp - safetensors checkpoints -----===//
//
// Round trips, the exact bytes of the header, an independent Python reader,
// every corruption the reader must name, and a failing write that must
// leave the previous checkpoint intact.
//
//===----------------------------------------------------------------------===//
#include "runtime/Checkpoint.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <unistd.h>

using namespace gradc::rt;

namespace {

TensorSpec spec(const std::string &name, Role role, std::vector<int64_t> dims,
                const std::string &init, bool isInt = false) {
  TensorSpec s;
  s.name = name;
  s.role = role;
  s.dims = std::move(dims);
  s.isInt = isInt;
  s.init.kind = init;
  s.init.fanIn = 3;
  s.init.fanOut = 2;
  return s;
}

/// A model with two params, an f32 state and an i32 state.
KernelSpec model(std::vector<int64_t> wShape = {2, 3}) {
  KernelSpec k;
  k.name = "train_step";
  k.buffers = {spec("x", Role::Input, {3}, ""),
               spec("W", Role::Param, wShape, "xavier_normal"),
               spec("b", Role::Param, {3}, "xavier_uniform"),
               spec("W.m", Role::State, wShape, "ones"),
               spec("count", Role::State, {1}, "ones", /*isInt=*/true),
               spec("loss", Role::Output, {}, "")};
  return k;
}

std::unique_ptr<TensorStore> storeOf(const KernelSpec &kernel, uint64_t seed) {
  auto store = std::make_unique<TensorStore>(seed);
  std::string error;
  EXPECT_TRUE(store->addKernel(kernel, error)) << error;
  return store;
}

/// The bytes of every param and state, by name.
std::map<std::string, std::string> tensorBytes(const TensorStore &store) {
  std::map<std::string, std::string> out;
  for (const Tensor *t : store.persistent())
    out[t->spec.name] = std::string(static_cast<const char *>(t->data()), size_t(t->spec.bytes()));
  return out;
}

std::string tempDir() {
  auto dir = std::filesystem::path(::testing::TempDir()) / "gradc_checkpoint_test";
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void writeAll(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
}

/// A safetensors file from a header text and data bytes.
std::string safetensors(const std::string &header, const std::string &data) {
  uint64_t length = header.size();
  std::string bytes(reinterpret_cast<const char *>(&length), 8);
  return bytes + header + data;
}

CheckpointInfo sampleInfo() {
  CheckpointInfo info;
  info.model = "fashion";
  info.seed = 42;
  info.epoch = 3;
  info.step = 1407;
  info.extra = {{"optimizer", "sgd(momentum=0.9)"}, {"note", "a \"quoted\"\\ line\nbreak"}};
  return info;
}

TEST(Checkpoint, RoundTripsParamsStateAndMetadata) {
  std::string path = tempDir() + "/roundtrip.safetensors";
  auto saved = storeOf(model(), 1);
  std::string error;
  ASSERT_TRUE(saveCheckpoint(path, *saved, sampleInfo(), error)) << error;

  auto loaded = storeOf(model(), 2); // other initial values, all overwritten
  EXPECT_NE(tensorBytes(*saved), tensorBytes(*loaded));
  CheckpointInfo info;
  ASSERT_TRUE(loadCheckpoint(path, *loaded, CheckpointUse::Resume, info, error)) << error;
  EXPECT_EQ(tensorBytes(*saved), tensorBytes(*loaded));
  EXPECT_EQ(info.model, "fashion");
  EXPECT_EQ(info.seed, 42u);
  EXPECT_EQ(info.epoch, 3);
  EXPECT_EQ(info.step, 1407u);
  EXPECT_EQ(info.extra, sampleInfo().extra);
  EXPECT_EQ(info.format, kCheckpointFormat);
  EXPECT_TRUE(info.ignored.empty());
  // Nothing but the checkpoint is left in the directory.
  for (const auto &entry : std::filesystem::directory_iterator(tempDir()))
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path();
}

TEST(Checkpoint, TheFileIsSafetensors) {
  std::string path = tempDir() + "/layout.safetensors";
  auto store = storeOf(model(), 1);
  std::string error;
  CheckpointInfo info = sampleInfo();
  info.extra.clear();
  ASSERT_TRUE(saveCheckpoint(path, *store, info, error)) << error;
  std::string bytes = readAll(path);
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  EXPECT_EQ(length % 8, 0u); // the data start 8-byte aligned
  std::string header = bytes.substr(8, length);
  // Sorted by name (bytewise: upper case first); i32 state as I32.
  std::string expected =
      R"({"__metadata__":{"format":"gradc-checkpoint-1","model":"fashion","seed":"42",)"
      R"("epoch":"3","step":"1407"},)"
      R"("W":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("W.m":{"dtype":"F32","shape":[2,3],"data_offsets":[24,48]},)"
      R"("b":{"dtype":"F32","shape":[3],"data_offsets":[48,60]},)"
      R"("count":{"dtype":"I32","shape":[1],"data_offsets":[60,64]}})";
  EXPECT_EQ(header.substr(0, expected.size()), expected);
  EXPECT_EQ(header.find_first_not_of(' ', expected.size()), std::string::npos); // padding
  ASSERT_EQ(bytes.size(), 8 + length + 64);
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + length, store->find("W")->data(), 24), 0);
  EXPECT_EQ(std::memcmp(bytes.data() + 8 + length + 60, store->find("count")->data(), 4), 0);

  SafetensorsFile file;
  ASSERT_TRUE(readSafetensors(path, file, error)) << error;
  ASSERT_EQ(file.tensors.size(), 4u);
  EXPECT_EQ(file.tensors[3].name, "count");
  EXPECT_EQ(file.tensors[3].dtype, "I32");
  EXPECT_EQ(*reinterpret_cast<const int32_t *>(file.data(file.tensors[3])), 1);
  EXPECT_EQ(file.metadata.at("model"), "fashion");
}

/// An independent reader, following the reference implementation's checks,
/// that prints every tensor's values and the metadata.
constexpr const char *kPythonReader = R"PY(
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n, = struct.unpack("<Q", raw[:8])
assert 0 < n <= len(raw) - 8, "header length"
text = raw[8:8 + n].decode("utf-8")
assert text.startswith("{"), "header starts with {"
header = json.loads(text)
meta = header.pop("__metadata__", {})
assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), "metadata"
sizes = {"F32": 4, "I32": 4}
data = raw[8 + n:]
end = 0
for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
    begin, stop = info["data_offsets"]
    assert begin == end, "contiguous"
    count = 1
    for d in info["shape"]:
        count *= d
    assert stop - begin == count * sizes[info["dtype"]], "size of " + name
    end = stop
assert end == len(data), "covers the data"
for name in sorted(header):
    info = header[name]
    begin, stop = info["data_offsets"]
    code = "f" if info["dtype"] == "F32" else "i"
    values = struct.unpack("<%d%s" % ((stop - begin) // 4, code), data[begin:stop])
    print(name, info["dtype"], ",".join(map(str, info["shape"])), " ".join(map(repr, values)))
for key in sorted(meta):
    print("meta", key, json.dumps(meta[key]))
)PY";

TEST(Checkpoint, AnIndependentPythonReaderAcceptsIt) {
  if (std::system("python3 -c pass > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 is not installed";
  std::string dir = tempDir();
  std::string path = dir + "/python.safetensors", script = dir + "/reader.py",
              out = dir + "/reader.out";
  auto store = storeOf(model(), 3);
  std::string error;
  ASSERT_TRUE(saveCheckpoint(path, *store, sampleInfo(), error)) << error;
  writeAll(script, kPythonReader);
  ASSERT_EQ(std::system(fmt::format("python3 '{}' '{}' > '{}' 2>&1", script, path, out).c_str()), 0)
      << readAll(out);

  std::istringstream lines(readAll(out));
  std::map<std::string, std::string> seen;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string name, dtype, shape;
    fields >> name >> dtype;
    if (name == "meta") {
      std::string value;
      std::getline(fields, value);
      seen["meta " + dtype] = value.substr(1);
      continue;
    }
    fields >> shape;
    const Tensor *t = store->find(name);
    ASSERT_NE(t, nullptr) << line;
    EXPECT_EQ(dtype, t->spec.isInt ? "I32" : "F32");
    EXPECT_EQ("[" + shape + "]", t->spec.shapeStr());
    for (int64_t i = 0; i < t->numel(); ++i) {
      std::string value;
      fields >> value;
      if (t->spec.isInt)
        EXPECT_EQ(std::stoll(value), t->i32()[i]) << name << " " << i;
      else
        EXPECT_EQ(float(std::stod(value)), t->f32()[i]) << name << " " << i; // repr is exact
    }
    seen[name] = dtype;
  }
  EXPECT_EQ(seen.size(), 4u + 7u) << readAll(out); // 4 tensors, 5 + 2 metadata entries
  EXPECT_EQ(seen["meta step"], "\"1407\"");
  EXPECT_EQ(seen["meta note"], R"("a \"quoted\"\\ line\nbreak")");
}

/// Expects loading `bytes` (written to a file) for `use` to fail with
/// exactly "checkpoint 'FILE': " + `message`, leaving the store unchanged.
void expectLoadError(const std::string &bytes, const std::string &message,
                     CheckpointUse use = CheckpointUse::Resume,
                     const KernelSpec &kernel = model()) {
  std::string path = tempDir() + "/corrupt.safetensors";
  writeAll(path, bytes);
  auto store = storeOf(kernel, 1);
  auto before = tensorBytes(*store);
  CheckpointInfo info;
  std::string error;
  EXPECT_FALSE(loadCheckpoint(path, *store, use, info, error)) << message;
  EXPECT_EQ(error, "checkpoint '" + path + "': " + message);
  EXPECT_EQ(tensorBytes(*store), before) << message;
}

/// A valid header of model() with its tensors in the given order, from
/// which the corruption tests change one thing.
const std::string kMeta =
    R"("__metadata__":{"format":"gradc-checkpoint-1","model":"m","seed":"1","epoch":"1","step":"5"})";
const std::string kW = R"("W":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})";
const std::string kWm = R"("W.m":{"dtype":"F32","shape":[2,3],"data_offsets":[24,48]})";
const std::string kB = R"("b":{"dtype":"F32","shape":[3],"data_offsets":[48,60]})";
const std::string kCount = R"("count":{"dtype":"I32","shape":[1],"data_offsets":[60,64]})";
const std::string kData(64, '\0');

std::string header(std::initializer_list<std::string> members) {
  std::string out = "{";
  for (const std::string &m : members)
    out += (out.size() > 1 ? "," : "") + m;
  return out + "}";
}

TEST(Checkpoint, TheHandWrittenValidFileLoads) {
  // The fixtures below are right but for the one thing each test breaks.
  std::string path = tempDir() + "/valid.safetensors";
  writeAll(path, safetensors(header({kMeta, kW, kWm, kB, kCount}), kData));
  auto store = storeOf(model(), 1);
  CheckpointInfo info;
  std::string error;
  ASSERT_TRUE(loadCheckpoint(path, *store, CheckpointUse::Resume, info, error)) << error;
  EXPECT_EQ(info.step, 5u);
  EXPECT_EQ(store->find("W")->f32()[0], 0.0f);
}

TEST(Checkpoint, FileLevelCorruptions) {
  expectLoadError("", "0 bytes, too short for a safetensors header");
  expectLoadError(std::string(5, 'x'), "5 bytes, too short for a safetensors header");
  expectLoadError(safetensors("{}", "").substr(0, 9),
                  "the header claims 2 bytes but the file has 1 after it");
  std::string huge(8, '\xff');
  expectLoadError(huge + "{}", "the header claims 18446744073709551615 bytes but the file has 2 "
                               "after it");
  expectLoadError(safetensors("{\"a\":\"\xff\"}", ""), "the header is not UTF-8 (byte 14)");
  expectLoadError(safetensors("[1,2]", ""), "the header is an array, not a JSON object");
}

TEST(Checkpoint, JsonErrorsGiveTheFileOffset) {
  // Offsets count from the start of the file: the header starts at byte 8.
  expectLoadError(safetensors(R"({"a":})", ""),
                  "malformed JSON header at byte 13: expected a JSON value, found '}'");
  expectLoadError(safetensors(R"({"a" 1})", ""),
                  "malformed JSON header at byte 13: expected ':' after a key, found '1'");
  expectLoadError(safetensors(R"({"a":1 "b":2})", ""),
                  "malformed JSON header at byte 15: expected '}' or ',' after an object member, "
                  "found '\"'");
  expectLoadError(safetensors(R"({"a":"x)", ""),
                  "malformed JSON header at byte 15: a string has no closing quote");
  expectLoadError(safetensors(R"({"a":01})", ""),
                  "malformed JSON header at byte 13: a number has a leading zero");
  expectLoadError(safetensors(R"({"a":1,"a":2})", ""),
                  "malformed JSON header at byte 15: the key \"a\" appears twice in one object");
  expectLoadError(safetensors(R"({"a":"\q"})", ""),
                  "malformed JSON header at byte 14: an unknown escape '\\q' in a string");
  expectLoadError(safetensors("{} x", ""),
                  "malformed JSON header at byte 11: unexpected text after the JSON object");
  expectLoadError(safetensors("", ""),
                  "malformed JSON header at byte 8: expected a JSON value, found the end of the "
                  "header");
  expectLoadError(safetensors(std::string(40, '[') + std::string(40, ']'), ""),
                  "malformed JSON header at byte 41: nested too deeply");
}

TEST(Checkpoint, TensorEntryCorruptions) {
  auto with = [](const std::string &w) {
    return safetensors(header({kMeta, w, kWm, kB, kCount}), kData);
  };
  expectLoadError(with(R"("W":{"dtype":"F33","shape":[2,3],"data_offsets":[0,24]})"),
                  "tensor 'W' has an unknown dtype 'F33'");
  expectLoadError(with(R"("W":{"shape":[2,3],"data_offsets":[0,24]})"),
                  "tensor 'W' has no \"dtype\"");
  expectLoadError(with(R"("W":[1])"), "tensor 'W' is described by an array, not an object");
  expectLoadError(with(R"("W":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]})"),
                  "tensor 'W' has a shape that is not an array of integers >= 0");
  expectLoadError(with(R"("W":{"dtype":"F32","shape":[2,3],"data_offsets":[0]})"),
                  "tensor 'W' has data_offsets that are not two integers >= 0");
  expectLoadError(with(R"("W":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]})"),
                  "tensor 'W' has data offsets [24,0] that run backwards");
  expectLoadError(with(R"("W":{"dtype":"F32","shape":[2,3],"data_offsets":[0,100]})"),
                  "tensor 'W' has data offsets [0,100] beyond the 64 bytes of data");
  expectLoadError(with(R"("W":{"dtype":"F32","shape":[2,2],"data_offsets":[0,24]})"),
                  "tensor 'W' of dtype F32 and shape [2,2] needs 16 bytes, its data offsets [0,24] "
                  "hold 24");
  expectLoadError(
      with(R"("W":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]})"),
      "tensor 'W' of dtype F32 and shape [4294967296,4294967296] needs more than the file's bytes, "
      "its data offsets [0,24] hold 24");
  expectLoadError(
      safetensors(header({kMeta, kW, kB, kCount,
                          R"("W.m":{"dtype":"F32","shape":[2,3],"data_offsets":[16,40]})"}),
                  kData),
      "tensors 'W' [0,24] and 'W.m' [16,40] overlap");
  expectLoadError(safetensors(header({kMeta, kW, kWm, kB}), kData.substr(0, 64)),
                  "the tensors hold 60 bytes of data but the file has 64 after the header");
  expectLoadError(
      safetensors(header({kMeta, kW, kB, kCount,
                          R"("W.m":{"dtype":"F32","shape":[2,3],"data_offsets":[28,52]})"}),
                  kData),
      "no tensor holds bytes [24,28) of the data");
  expectLoadError(
      safetensors(header({R"("__metadata__":{"epoch":1})", kW, kWm, kB, kCount}), kData),
      "\"__metadata__\" maps names to strings, but 'epoch' is a number");
}

TEST(Checkpoint, MismatchesWithTheModel) {
  std::string path = tempDir() + "/mismatch.safetensors";
  std::string error;
  ASSERT_TRUE(saveCheckpoint(path, *storeOf(model(), 1), sampleInfo(), error)) << error;
  auto load = [&](const KernelSpec &kernel, CheckpointUse use, CheckpointInfo &info) {
    auto store = storeOf(kernel, 1);
    bool ok = loadCheckpoint(path, *store, use, info, error);
    return ok;
  };
  CheckpointInfo info;
  // The brief's example, in this model's terms.
  EXPECT_FALSE(load(model({3, 3}), CheckpointUse::Resume, info));
  EXPECT_EQ(error, "checkpoint '" + path + "': tensor 'W' has shape [2,3], the model's is [3,3]");

  KernelSpec bigger = model();
  bigger.buffers.push_back(spec("dense2.W", Role::Param, {4, 2}, "zeros"));
  bigger.buffers.push_back(spec("dense2.b", Role::Param, {4}, "zeros"));
  EXPECT_FALSE(load(bigger, CheckpointUse::Init, info));
  EXPECT_EQ(error, "checkpoint '" + path +
                       "': it has no tensor 'dense2.W' (param f32[4,2]) that the model needs, nor "
                       "'dense2.b'; the file has 'W', 'W.m', 'b', 'count'");

  KernelSpec smaller = model();
  smaller.buffers.erase(smaller.buffers.begin() + 3); // no W.m
  EXPECT_FALSE(load(smaller, CheckpointUse::Resume, info));
  EXPECT_EQ(error, "checkpoint '" + path + "': it has a tensor 'W.m' that the model does not have");
  // --init takes params only: other tensors are reported, not refused.
  ASSERT_TRUE(load(smaller, CheckpointUse::Init, info)) << error;
  EXPECT_EQ(info.ignored, (std::vector<std::string>{"W.m", "count"}));

  KernelSpec intParam = model();
  intParam.buffers[2].isInt = true; // b
  intParam.buffers[2].init.kind = "zeros";
  EXPECT_FALSE(load(intParam, CheckpointUse::Init, info));
  EXPECT_EQ(error, "checkpoint '" + path + "': tensor 'b' has dtype F32, the model's is I32");
}

TEST(Checkpoint, ResumeNeedsGradcMetadata) {
  std::string tensors = header({kW, kWm, kB, kCount});
  expectLoadError(safetensors(tensors, kData),
                  "it has no gradc metadata (format, seed, epoch, step), so training cannot resume "
                  "from it; --init starts from the weights of any safetensors file");
  // A file from elsewhere (say Hugging Face, format "pt") initializes fine.
  std::string path = tempDir() + "/foreign.safetensors";
  writeAll(path, safetensors(header({R"("__metadata__":{"format":"pt"})", kW,
                                     R"("b":{"dtype":"F32","shape":[3],"data_offsets":[24,36]})"}),
                             kData.substr(0, 36)));
  auto store = storeOf(model(), 1);
  CheckpointInfo info;
  std::string error;
  ASSERT_TRUE(loadCheckpoint(path, *store, CheckpointUse::Init, info, error)) << error;
  EXPECT_EQ(info.format, "pt");
  EXPECT_FALSE(loadCheckpoint(path, *store, CheckpointUse::Resume, info, error));
  EXPECT_EQ(error, "checkpoint '" + path +
                       "': its format is 'pt', not 'gradc-checkpoint-1', so training cannot resume "
                       "from it; --init starts from its weights");
  std::string badStep =
      R"("__metadata__":{"format":"gradc-checkpoint-1","seed":"1","epoch":"1","step":"5x"})";
  expectLoadError(safetensors(header({badStep, kW, kWm, kB, kCount}), kData),
                  "metadata 'step' is not a number: '5x'");
}

TEST(Checkpoint, TruncatedAnywhereIsAnError) {
  std::string path = tempDir() + "/whole.safetensors";
  std::string error;
  ASSERT_TRUE(saveCheckpoint(path, *storeOf(model(), 1), sampleInfo(), error)) << error;
  std::string whole = readAll(path);
  uint64_t length = 0;
  std::memcpy(&length, whole.data(), 8);
  const size_t dataStart = 8 + length;
  for (size_t size : {size_t(0), size_t(1), size_t(7), size_t(8), size_t(9), size_t(100),
                      dataStart - 1, dataStart, dataStart + 1, dataStart + 30, whole.size() - 1}) {
    std::string cut = tempDir() + "/cut.safetensors";
    writeAll(cut, whole.substr(0, size));
    auto store = storeOf(model(), 1);
    auto before = tensorBytes(*store);
    CheckpointInfo info;
    EXPECT_FALSE(loadCheckpoint(cut, *store, CheckpointUse::Resume, info, error)) << size;
    EXPECT_EQ(tensorBytes(*store), before);
    std::string expected = size < 8           ? fmt::format("{} bytes, too short", size)
                           : size < dataStart ? "the header claims"
                                              : "beyond the";
    EXPECT_EQ(error.rfind("checkpoint '" + cut + "': ", 0), 0u) << error;
    EXPECT_NE(error.find(expected), std::string::npos) << size << ": " << error;
  }
}

TEST(Checkpoint, FlippedHeaderBytesNeverLoadWrongData) {
  std::string path = tempDir() + "/flip_source.safetensors";
  std::string error;
  auto source = storeOf(model(), 1);
  ASSERT_TRUE(saveCheckpoint(path, *source, sampleInfo(), error)) << error;
  const std::string whole = readAll(path);
  const auto expected = tensorBytes(*source);
  uint64_t length = 0;
  std::memcpy(&length, whole.data(), 8);
  std::string flipped = tempDir() + "/flipped.safetensors";
  int failures = 0, loads = 0;
  for (size_t i = 0; i < 8 + length; ++i)
    for (char value : {'\0', '"', '}', ',', '0', '9', 'Z', '\xff'}) {
      if (whole[i] == value)
        continue;
      std::string bytes = whole;
      bytes[i] = value;
      writeAll(flipped, bytes);
      auto store = storeOf(model(), 2);
      CheckpointInfo info;
      if (loadCheckpoint(flipped, *store, CheckpointUse::Resume, info, error)) {
        // Only metadata text or padding can change without an error.
        EXPECT_EQ(tensorBytes(*store), expected) << "byte " << i << " = " << int(value);
        ++loads;
      } else {
        EXPECT_EQ(error.rfind("checkpoint '" + flipped + "': ", 0), 0u) << error;
        ++failures;
      }
    }
  EXPECT_GT(failures, 500);
  EXPECT_GT(loads, 0); // e.g. a letter of the model name
}

TEST(Checkpoint, AFailedWriteLeavesThePreviousCheckpoint) {
  std::string dir = tempDir();
  std::string path = dir + "/kept.safetensors";
  std::string error;
  ASSERT_TRUE(saveCheckpoint(path, *storeOf(model(), 1), sampleInfo(), error)) << error;
  const std::string before = readAll(path);

  // The temporary file cannot be created: a directory is in its way (this
  // works as root too, unlike a read-only directory).
  std::string temporary = fmt::format("{}.tmp-{}", path, ::getpid());
  std::filesystem::create_directories(temporary + "/occupied");
  EXPECT_FALSE(saveCheckpoint(path, *storeOf(model(), 2), sampleInfo(), error));
  EXPECT_EQ(error, "cannot write checkpoint '" + temporary + "': Is a directory (the previous '" +
                       path + "', if any, is unchanged)");
  EXPECT_EQ(readAll(path), before);
  std::filesystem::remove_all(temporary);

  // The target is a directory: refused before anything is written (a
  // rename would fail on a full directory, and replace an empty one).
  std::string blocked = dir + "/blocked.safetensors";
  std::filesystem::create_directories(blocked + "/occupied");
  EXPECT_FALSE(saveCheckpoint(blocked, *storeOf(model(), 2), sampleInfo(), error));
  EXPECT_EQ(error,
            "the checkpoint '" + blocked + "' would replace a directory: give the path of a file");
  EXPECT_TRUE(std::filesystem::exists(blocked + "/occupied"));
  EXPECT_FALSE(std::filesystem::exists(fmt::format("{}.tmp-{}", blocked, ::getpid())));
  std::filesystem::remove_all(blocked);

  // A directory that does not exist.
  std::string nowhere = dir + "/no/such/dir/x.safetensors";
  EXPECT_FALSE(saveCheckpoint(nowhere, *storeOf(model(), 2), sampleInfo(), error));
  EXPECT_EQ(error, fmt::format("cannot write checkpoint '{}.tmp-{}': No such file or directory "
                               "(the previous '{}', if any, is unchanged)",
                               nowhere, ::getpid(), nowhere));

  // A read-only directory (meaningless as root, who may write anyway).
  if (::geteuid() != 0) {
    std::string locked = dir + "/locked";
    std::filesystem::create_directories(locked);
    std::string inside = locked + "/x.safetensors";
    ASSERT_TRUE(saveCheckpoint(inside, *storeOf(model(), 1), sampleInfo(), error)) << error;
    std::string old = readAll(inside);
    std::filesystem::permissions(locked, std::filesystem::perms::owner_read |
                                             std::filesystem::perms::owner_exec);
    EXPECT_FALSE(saveCheckpoint(inside, *storeOf(model(), 2), sampleInfo(), error));
    EXPECT_NE(error.find("Permission denied"), std::string::npos) << error;
    EXPECT_EQ(readAll(inside), old);
    std::filesystem::permissions(locked, std::filesystem::perms::owner_all);
  }
}

TEST(Checkpoint, ReservedMetadataKeysAreRefused) {
  std::string path = tempDir() + "/reserved.safetensors";
  CheckpointInfo info = sampleInfo();
  info.extra["step"] = "7";
  std::string error;
  EXPECT_FALSE(saveCheckpoint(path, *storeOf(model(), 1), info, error));
  EXPECT_EQ(error, "cannot write checkpoint '" + path +
                       "': the metadata key 'step' is reserved for gradc's own");
}

TEST(Checkpoint, MissingFile) {
  auto store = storeOf(model(), 1);
  CheckpointInfo info;
  std::string error;
  EXPECT_FALSE(
      loadCheckpoint(tempDir() + "/none.safetensors", *store, CheckpointUse::Init, info, error));
  EXPECT_EQ(error, "checkpoint '" + tempDir() + "/none.safetensors': No such file or directory");
}

} // namespace
