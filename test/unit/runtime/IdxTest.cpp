//===- test/unit/runtime/IdxTest.cpp - IDX data sets ----------------------===//
#include "runtime/Idx.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
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
    EXPECT_FLOAT_EQ(data.features[0], 250.0f / 255.0f); // pixels scaled to [0, 1]
    EXPECT_FLOAT_EQ(data.features[5], 255.0f / 255.0f);
    EXPECT_FLOAT_EQ(data.features[6], 0.0f); // 256 wraps to 0
    EXPECT_EQ(data.targetsI, (std::vector<int32_t>{7, 8}));
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

TEST(Idx, LoadsFashionMnistWhenInstalled) {
  if (!std::filesystem::exists(kFashionMnistDir))
    GTEST_SKIP() << kFashionMnistDir << " is missing (Debian package dataset-fashion-mnist)";
  Dataset train, test;
  std::string error;
  ASSERT_TRUE(loadIdxDirectory(kFashionMnistDir, train, test, error)) << error;
  EXPECT_EQ(train.size, 60000);
  EXPECT_EQ(test.size, 10000);
  EXPECT_EQ(train.featureDims, std::vector<int64_t>{784});
  for (int32_t label : train.targetsI)
    ASSERT_TRUE(label >= 0 && label < 10);
}

} // namespace
