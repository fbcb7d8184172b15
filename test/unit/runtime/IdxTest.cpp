//===- test/unit/runtime/IdxTest.cpp - IDX data sets ----------------------===//
#include "runtime/Idx.h"
#include "runtime/Gzip.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <sys/stat.h>
#include <thread>
#include <zlib.h>

using namespace gradc::rt;

namespace {

std::string temp(const std::string &name) {
  return (std::filesystem::temp_directory_path() / ("gradc_idx_" + name)).string();
}

std::vector<unsigned char> idx(int rank, std::vector<uint32_t> dims, size_t dataBytes,
                               unsigned char fill = 0) {
  std::vector<unsigned char> bytes = {0, 0, 0x08, static_cast<unsigned char>(rank)};
  for (uint32_t d : dims)
    for (int shift : {24, 16, 8, 0})
      bytes.push_back(static_cast<unsigned char>(d >> shift));
  for (size_t i = 0; i < dataBytes; ++i)
    bytes.push_back(static_cast<unsigned char>(fill + i));
  return bytes;
}

void write(const std::string &path, const std::vector<unsigned char> &bytes, bool gzip = false) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return;
  }
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char *>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

TEST(Idx, ReadsPlainAndGzippedFiles) {
  for (bool gzip : {false, true}) {
    std::string images = temp(gzip ? "img.gz" : "img"), labels = temp(gzip ? "lab.gz" : "lab");
    write(images, idx(3, {2, 2, 3}, 12, 250), gzip);
    write(labels, idx(1, {2}, 2, 7), gzip);
    Dataset data;
    std::string error;
    ASSERT_TRUE(loadIdx(images, labels, data, error)) << error;
    EXPECT_EQ(data.size, 2);
    EXPECT_EQ(data.featureDims, std::vector<int64_t>{6});
    EXPECT_TRUE(data.intTargets);
    EXPECT_FLOAT_EQ(data.feature(0, 0), 250.0f / 255.0f); // pixels scaled to [0, 1]
    EXPECT_FLOAT_EQ(data.feature(0, 5), 255.0f / 255.0f);
    EXPECT_FLOAT_EQ(data.feature(1, 0), 0.0f); // 256 wraps to 0
    EXPECT_EQ(data.targetsI, (std::vector<int32_t>{7, 8}));
  }
}

TEST(Idx, CopiedFeaturesAreEachByteDividedBy255ExactlyForAllBytes) {
  // Two images of 16 x 17 pixels: every byte value, in rows long enough
  // for the vector loop (whichever instruction set the loader picked) and
  // its remainder.
  std::string images = temp("all_bytes"), labels = temp("all_bytes_lab");
  write(images, idx(3, {2, 16, 17}, 2 * 16 * 17));
  write(labels, idx(1, {2}, 2));
  Dataset data;
  std::string error;
  ASSERT_TRUE(loadIdx(images, labels, data, error)) << error;
  std::vector<float> row(16 * 17);
  volatile float divisor = 255.0f; // divided at run time, as the loader does
  for (int64_t example : {0, 1}) {
    data.copyFeatures(example, row.data());
    for (int64_t j = 0; j < 16 * 17; ++j) {
      auto byte = static_cast<unsigned char>(example * 16 * 17 + j);
      float expected = static_cast<float>(byte) / divisor;
      ASSERT_EQ(std::memcmp(&row[j], &expected, 4), 0)
          << "byte " << int(byte) << ": " << row[j] << " against " << expected;
    }
  }
}

TEST(Idx, ReportsMalformedFiles) {
  std::string images = temp("bad_img"), labels = temp("bad_lab");
  Dataset data;
  std::string error;
  write(labels, idx(1, {2}, 2));
  write(images, idx(1, {2}, 2)); // a label file where images are expected
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error, "'" + images +
                       "' has IDX magic 0x00000801, expected 0x00000803 (unsigned "
                       "bytes, 3 dimensions)");
  write(images, idx(3, {2, 2, 3}, 10)); // two bytes missing
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error, "'" + images +
                       "' is truncated or too long: its header promises 12 bytes of "
                       "data, the file has 10");
  write(images, idx(3, {3, 2, 2}, 12));
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error, "'" + images + "' has 3 images but '" + labels + "' has 2 labels");
  write(images, {0, 0});
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error, "'" + images + "' is not an IDX file: 2 bytes, shorter than its 16-byte header");
  EXPECT_FALSE(loadIdx(temp("missing"), labels, data, error));
  EXPECT_NE(error.find("cannot read"), std::string::npos) << error;
  EXPECT_FALSE(loadIdxDirectory(temp("nodir"), data, data, error));
  EXPECT_NE(error.find("has no train-images-idx3-ubyte[.gz]"), std::string::npos) << error;
}

/// The gzip bytes of `bytes` (one member).
std::string gzipped(const std::vector<unsigned char> &bytes) {
  std::string path = temp("gzip_scratch.gz");
  write(path, bytes, /*gzip=*/true);
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeRaw(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

TEST(Idx, GzipIsDetectedByItsMagicNotTheName) {
  std::string images = temp("named_plain.gz"), labels = temp("named_plain_labels");
  write(images, idx(3, {2, 1, 2}, 4));          // plain, though called .gz
  writeRaw(labels, gzipped(idx(1, {2}, 2, 3))); // gzipped, without .gz
  Dataset data;
  std::string error;
  ASSERT_TRUE(loadIdx(images, labels, data, error)) << error;
  EXPECT_EQ(data.targetsI, (std::vector<int32_t>{3, 4}));
  // Several gzip members (as from `cat a.gz b.gz`) are one stream, as for gzip -d.
  std::vector<unsigned char> whole = idx(1, {4}, 4, 9);
  std::vector<unsigned char> head(whole.begin(), whole.begin() + 6),
      tail(whole.begin() + 6, whole.end());
  write(images, idx(3, {4, 1, 1}, 4));
  writeRaw(labels, gzipped(head) + gzipped(tail));
  ASSERT_TRUE(loadIdx(images, labels, data, error)) << error;
  EXPECT_EQ(data.targetsI, (std::vector<int32_t>{9, 10, 11, 12}));
  // The size in the last member's trailer (3 bytes) is far short of the
  // whole (200,016): the output grows until it all fits.
  std::vector<unsigned char> pixels = idx(3, {2000, 10, 10}, 200000, 5);
  std::vector<unsigned char> most(pixels.begin(), pixels.end() - 3),
      last(pixels.end() - 3, pixels.end());
  writeRaw(images, gzipped(most) + gzipped(last));
  write(labels, idx(1, {2000}, 2000));
  ASSERT_TRUE(loadIdx(images, labels, data, error)) << error;
  ASSERT_EQ(data.featureBytes.size(), 200000u);
  EXPECT_TRUE(
      std::equal(data.featureBytes.begin(), data.featureBytes.end(), pixels.begin() + 16,
                 [](char a, unsigned char b) { return static_cast<unsigned char>(a) == b; }));
}

TEST(Idx, ReportsCorruptGzipData) {
  std::string images = temp("gz_img"), labels = temp("gz_lab.gz");
  write(images, idx(3, {2, 2, 3}, 12));
  Dataset data;
  std::string error;
  const std::string good = gzipped(idx(1, {2}, 2));

  writeRaw(labels, good.substr(0, good.size() - 6)); // cut inside the trailer
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error, "cannot read '" + labels + "': the gzip data ends early (after " +
                       std::to_string(good.size() - 6) +
                       " compressed and 10 uncompressed bytes): the file is truncated");

  std::string flipped = good;
  flipped[good.size() - 8] ^= 0x55; // the CRC-32 of the trailer
  writeRaw(labels, flipped);
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error.rfind("cannot read '" + labels + "': corrupt gzip data near compressed byte ", 0),
            0u)
      << error;
  EXPECT_NE(error.find("(incorrect data check)"), std::string::npos) << error;

  std::string badBlock = good;
  badBlock[10] = char(0xff); // the first deflate block header: an invalid block type
  writeRaw(labels, badBlock);
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error.rfind("cannot read '" + labels + "': corrupt gzip data near compressed byte ", 0),
            0u)
      << error;

  writeRaw(labels, good + "garbage");
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error, "cannot read '" + labels +
                       "': 7 bytes of trailing garbage after the gzip data (at byte " +
                       std::to_string(good.size()) + ")");
  writeRaw(labels, good + std::string(5, '\0')); // zero padding is fine, as for gzip -d
  EXPECT_TRUE(loadIdx(images, labels, data, error)) << error;
}

// The libdeflate path on its own: what it decodes and what it leaves to
// zlib's diagnosis (the cases above pass through both).
TEST(Idx, LibdeflateInflatesWellFormedDataAndRefusesTheRest) {
  std::vector<unsigned char> bytes = idx(3, {2000, 10, 10}, 200000, 5);
  const std::string whole(bytes.begin(), bytes.end());
  std::vector<unsigned char> most(bytes.begin(), bytes.end() - 3),
      last(bytes.end() - 3, bytes.end());
  const std::string one = gzipped(bytes), two = gzipped(most) + gzipped(last);
  std::string out;
  ASSERT_TRUE(detail::gunzipWithLibdeflate(one, out));
  EXPECT_EQ(out, whole);
  ASSERT_TRUE(detail::gunzipWithLibdeflate(two, out)); // the trailer's size is 3: grows
  EXPECT_EQ(out, whole);
  ASSERT_TRUE(detail::gunzipWithLibdeflate(two + std::string(9, '\0'), out));
  EXPECT_EQ(out, whole);
  EXPECT_FALSE(detail::gunzipWithLibdeflate(two + "garbage", out));
  EXPECT_FALSE(detail::gunzipWithLibdeflate(one.substr(0, one.size() - 6), out));
  EXPECT_FALSE(detail::gunzipWithLibdeflate(two.substr(0, two.size() - 6), out));
  std::string flipped = one;
  flipped[one.size() - 8] ^= 0x55; // the CRC-32
  EXPECT_FALSE(detail::gunzipWithLibdeflate(flipped, out));
}

TEST(Idx, ReportsEmptyFilesAndImpossibleDimensions) {
  std::string images = temp("empty_img"), labels = temp("empty_lab");
  write(labels, idx(1, {2}, 2));
  write(images, {});
  Dataset data;
  std::string error;
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error, "'" + images + "' is empty: expected an IDX file with magic 0x00000803");
  write(images, idx(3, {0xffffffffu, 0xffffffffu, 0xffffffffu}, 4));
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error, "'" + images +
                       "' has impossible IDX dimensions 4294967295x4294967295x4294967295: "
                       "more data than any file holds");
  write(images, idx(3, {2, 2, 3}, 13)); // a byte too many
  EXPECT_FALSE(loadIdx(images, labels, data, error));
  EXPECT_EQ(error, "'" + images +
                       "' is truncated or too long: its header promises 12 bytes of "
                       "data, the file has 13");
}

TEST(Idx, LoadsFashionMnistWhenInstalled) {
  if (!std::filesystem::exists(kFashionMnistDir))
    GTEST_SKIP() << kFashionMnistDir << " is missing (Debian package dataset-fashion-mnist)";
  Dataset train, test;
  std::string error;
  ASSERT_TRUE(loadIdxDirectory(kFashionMnistDir, train, test, error)) << error;
  EXPECT_EQ(train.size, 60000);
  EXPECT_EQ(test.size, 10000);
  EXPECT_EQ(train.featureDims, std::vector<int64_t>{784});
  EXPECT_EQ(test.featureDims, std::vector<int64_t>{784});
  EXPECT_TRUE(train.intTargets && test.intTargets);
  EXPECT_TRUE(train.check().empty() && test.check().empty());
  for (const Dataset *set : {&train, &test}) {
    std::vector<int64_t> perClass(10);
    for (int32_t label : set->targetsI) {
      ASSERT_TRUE(label >= 0 && label < 10) << label;
      ++perClass[label];
    }
    for (int64_t count : perClass) // Fashion-MNIST is balanced
      EXPECT_EQ(count, set->size / 10);
    ASSERT_EQ(int64_t(set->featureBytes.size()), set->size * 784);
    for (uint8_t byte : set->featureBytes) {
      float pixel = float(byte) / set->byteDivisor;
      ASSERT_TRUE(pixel >= 0.0f && pixel <= 1.0f) << pixel;
    }
  }
  // The model check the CLI runs: 784 features, labels in [0, 10).
  DataShape shape{"x", 784, "y", true, 1, 10};
  std::string check;
  EXPECT_TRUE(checkDataFits(train, "fashion-mnist", shape, check)) << check;
  shape.features = 100;
  EXPECT_FALSE(checkDataFits(train, "fashion-mnist", shape, check));
  EXPECT_EQ(check, "fashion-mnist has 784 features per example, the model's input 'x' takes 100");
}

// A regular file is mapped, anything else read (mapReadOnly in runtime/ByteArray.h): both
// give the same bytes, gzipped or not, and an empty file is empty.
TEST(Idx, ReadsMappedFilesAndPipesAlike) {
  std::vector<unsigned char> bytes = idx(3, {300, 10, 10}, 30000, 9);
  const std::string whole(bytes.begin(), bytes.end()), packed = gzipped(bytes);
  const std::string file = temp("mapped.gz"), plain = temp("mapped"), empty = temp("empty");
  writeRaw(file, packed);
  writeRaw(plain, whole);
  writeRaw(empty, "");
  std::string out, error;
  bool wasGzipped = false;
  ASSERT_TRUE(readMaybeGzipped(file, out, error, &wasGzipped)) << error;
  EXPECT_TRUE(wasGzipped);
  EXPECT_EQ(out, whole);
  ASSERT_TRUE(readMaybeGzipped(plain, out, error, &wasGzipped)) << error;
  EXPECT_FALSE(wasGzipped);
  EXPECT_EQ(out, whole);
  ASSERT_TRUE(readMaybeGzipped(empty, out, error, &wasGzipped)) << error;
  EXPECT_TRUE(out.empty());
  // The same gzip data through a named pipe, written by another thread.
  const std::string fifo = temp("pipe.gz");
  std::filesystem::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { writeRaw(fifo, packed); });
  const bool read = readMaybeGzipped(fifo, out, error, &wasGzipped); // opens it: the writer ends
  writer.join();
  ASSERT_TRUE(read) << error;
  EXPECT_TRUE(wasGzipped);
  EXPECT_EQ(out, whole);
  for (const std::string &path : {file, plain, empty, fifo})
    std::filesystem::remove(path);
}

} // namespace
