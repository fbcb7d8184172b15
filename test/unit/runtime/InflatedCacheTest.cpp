//===- test/unit/runtime/InflatedCacheTest.cpp - Inflate a file once ------===//
#include "runtime/InflatedCache.h"
#include "runtime/Gzip.h"
#include "runtime/Idx.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

using namespace gradc::rt;
namespace fs = std::filesystem;

namespace {

/// A fresh directory of its own for each test.
class InflatedCache : public ::testing::Test {
protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("gradc_inflated_" +
           std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    cache = (dir / "cache").string();
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string path(const std::string &name) const { return (dir / name).string(); }

  /// The entries in the cache directory (and anything else there).
  std::vector<std::string> cacheFiles() const {
    std::vector<std::string> names;
    if (fs::exists(cache))
      for (const auto &entry : fs::directory_iterator(cache))
        names.push_back(entry.path().filename().string());
    return names;
  }

  /// Writes `original` gzipped to `gz` and reads it once through the
  /// cache; `entry` is the path of the one entry that wrote.
  void cacheOnce(const std::string &original, const std::string &gz, std::string &entry);

  fs::path dir;
  std::string cache;
};

/// `count` bytes that compress, but not to nothing.
std::string content(size_t count, unsigned seed) {
  std::string bytes(count, '\0');
  for (size_t i = 0; i < count; ++i)
    bytes[i] = char((i * 7 + seed) % 251 + (i / 1000) % 3);
  return bytes;
}

/// Writes `bytes` gzipped, as one member.
void writeGzip(const std::string &path, const std::string &bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

std::string readWhole(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeWhole(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string asString(const ByteArray &bytes) { return std::string(bytes.begin(), bytes.end()); }

void InflatedCache::cacheOnce(const std::string &original, const std::string &gz,
                              std::string &entry) {
  writeGzip(gz, original);
  ByteArray bytes;
  std::string error;
  InflatedFrom from{};
  ASSERT_TRUE(readCachingInflated(gz, cache, bytes, error, &from)) << error;
  ASSERT_EQ(from, InflatedFrom::InflatingCached);
  ASSERT_EQ(cacheFiles().size(), 1u);
  entry = cache + "/" + cacheFiles()[0];
}

TEST_F(InflatedCache, TheFirstReadInflatesAndCachesLaterReadsMapTheEntry) {
  const std::string original = content(300000, 1), gz = path("data.gz");
  writeGzip(gz, original);
  ByteArray bytes;
  std::string error;
  InflatedFrom from{};
  ASSERT_TRUE(readCachingInflated(gz, cache, bytes, error, &from)) << error;
  EXPECT_EQ(from, InflatedFrom::InflatingCached);
  EXPECT_EQ(asString(bytes), original);
  // One entry, no temporary file left behind.
  ASSERT_EQ(cacheFiles().size(), 1u);
  EXPECT_TRUE(cacheFiles()[0].ends_with(".inflated")) << cacheFiles()[0];
  for (int again = 0; again < 2; ++again) {
    ByteArray cached;
    ASSERT_TRUE(readCachingInflated(gz, cache, cached, error, &from)) << error;
    EXPECT_EQ(from, InflatedFrom::Cache);
    EXPECT_EQ(asString(cached), original);
  }
  // The same file elsewhere (a copy) has the same fingerprint: one entry.
  fs::copy_file(gz, path("copy.gz"));
  ASSERT_TRUE(readCachingInflated(path("copy.gz"), cache, bytes, error, &from)) << error;
  EXPECT_EQ(from, InflatedFrom::Cache);
  EXPECT_EQ(cacheFiles().size(), 1u);
}

// An entry is mapped only if it is a regular file in its own right
// (mapReadOnly, without following links): a symbolic link to a good entry
// and a named pipe planted at the entry's name are never read; the data is
// inflated, and the entry written over them.
TEST_F(InflatedCache, ALinkOrAPipeInPlaceOfAnEntryIsNeverUsed) {
  const std::string original = content(200000, 3), gz = path("data.gz"), good = path("good");
  std::string entry;
  ASSERT_NO_FATAL_FAILURE(cacheOnce(original, gz, entry));
  ByteArray bytes;
  std::string error;
  InflatedFrom from{};
  fs::rename(entry, good);
  fs::create_symlink(good, entry);
  ASSERT_TRUE(readCachingInflated(gz, cache, bytes, error, &from)) << error;
  EXPECT_EQ(from, InflatedFrom::InflatingCached);
  EXPECT_EQ(asString(bytes), original);
  EXPECT_FALSE(fs::is_symlink(entry));
  fs::remove(entry);
  ASSERT_EQ(::mkfifo(entry.c_str(), 0600), 0);
  ASSERT_TRUE(readCachingInflated(gz, cache, bytes, error, &from)) << error;
  EXPECT_EQ(from, InflatedFrom::InflatingCached);
  EXPECT_EQ(asString(bytes), original);
  EXPECT_TRUE(fs::is_regular_file(entry));
  ASSERT_TRUE(readCachingInflated(gz, cache, bytes, error, &from)) << error;
  EXPECT_EQ(from, InflatedFrom::Cache);
}

TEST_F(InflatedCache, WritingAnEntryRemovesTheTemporaryFilesOfStoppedRuns) {
  fs::create_directories(cache);
  // Process IDs end below 2^22 on Linux: 999999999 is no process.
  const std::string entry = "0-00000000-00000000-0000000000000000.inflated";
  const std::string orphan = entry + ".tmp-999999999-0";
  const std::string young = entry + ".tmp-999999998-0"; // its writer may be on another host
  const std::string live = entry + ".tmp-" + std::to_string(::getpid()) + "-7";
  // The user's own files, which only look alike.
  const std::string others[] = {"notes.tmp-999999999", "backup.tmp-20240101-1",
                                "0-0-0-0.inflated.tmp-999999999-0", entry + ".tmp-x-1"};
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(2);
  for (const std::string &name : {orphan, live, young}) {
    writeWhole(cache + "/" + name, "part of an entry");
    if (name != young)
      fs::last_write_time(cache + "/" + name, old);
  }
  for (const std::string &name : others) {
    writeWhole(cache + "/" + name, "mine");
    fs::last_write_time(cache + "/" + name, old);
  }
  writeGzip(path("data.gz"), content(1000, 9));
  ByteArray bytes;
  std::string error;
  ASSERT_TRUE(readCachingInflated(path("data.gz"), cache, bytes, error)) << error;
  std::vector<std::string> files = cacheFiles();
  EXPECT_EQ(files.size(), 7u);
  EXPECT_EQ(std::count(files.begin(), files.end(), orphan), 0);
  for (const std::string &kept : {live, young})
    EXPECT_EQ(std::count(files.begin(), files.end(), kept), 1) << kept;
  for (const std::string &kept : others)
    EXPECT_EQ(std::count(files.begin(), files.end(), kept), 1) << kept;
}

TEST(InflatedEntryName, IsExactlyWhatTheCacheWrites) {
  EXPECT_TRUE(isInflatedEntryName("1932a60-b4f29f28-02cdc610-0d07932fbd6ef713.inflated", false));
  EXPECT_FALSE(isInflatedEntryName("1932a60-b4f29f28-02cdc610-0d07932fbd6ef713.inflated", true));
  EXPECT_TRUE(
      isInflatedEntryName("1932a60-b4f29f28-02cdc610-0d07932fbd6ef713.inflated.tmp-12-0", true));
  for (const char *name : {"notes.inflated", "1-2-3-4.inflated", "backup.tmp-20240101",
                           "1932a60-B4F29F28-02cdc610-0d07932fbd6ef713.inflated",
                           "1932a60-b4f29f28-02cdc610-0d07932fbd6ef713-5.inflated",
                           "1932a60-b4f29f28-02cdc610-0d07932fbd6ef713.inflated.tmp-12",
                           "1932a60-b4f29f28-02cdc610-0d07932fbd6ef713.inflated.tmp-a-0"})
    for (bool temporary : {false, true})
      EXPECT_FALSE(isInflatedEntryName(name, temporary)) << name << " " << temporary;
}

TEST_F(InflatedCache, ADamagedEntryIsNeverUsedAndIsWrittenAgain) {
  const std::string original = content(100000, 2), gz = path("data.gz");
  std::string entry;
  ASSERT_NO_FATAL_FAILURE(cacheOnce(original, gz, entry));
  ByteArray bytes;
  std::string error;
  InflatedFrom from{};
  const std::string good = readWhole(entry);
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10; // a bit of the data
  std::string badMagic = good;
  badMagic[0] = 'G';
  const std::string damaged[] = {flipped,    badMagic,           good.substr(0, good.size() - 1),
                                 good + "x", good.substr(0, 40), ""};
  for (const std::string &bad : damaged) {
    writeWhole(entry, bad);
    ASSERT_TRUE(readCachingInflated(gz, cache, bytes, error, &from)) << error;
    EXPECT_EQ(from, InflatedFrom::InflatingCached) << bad.size();
    EXPECT_EQ(asString(bytes), original);
    EXPECT_EQ(readWhole(entry), good); // rewritten whole
  }
}

TEST_F(InflatedCache, AChangedFileIsInflatedAgain) {
  const std::string gz = path("data.gz");
  writeGzip(gz, content(50000, 3));
  ByteArray bytes;
  std::string error;
  InflatedFrom from{};
  ASSERT_TRUE(readCachingInflated(gz, cache, bytes, error, &from)) << error;
  const std::string changed = content(50000, 4);
  writeGzip(gz, changed);
  ASSERT_TRUE(readCachingInflated(gz, cache, bytes, error, &from)) << error;
  EXPECT_EQ(from, InflatedFrom::InflatingCached);
  EXPECT_EQ(asString(bytes), changed);
  EXPECT_EQ(cacheFiles().size(), 2u);
}

TEST_F(InflatedCache, OtherFilesAreReadAsTheyAre) {
  std::string error;
  ByteArray bytes;
  InflatedFrom from{};
  // Not gzipped: read, not cached.
  const std::string plain = content(1000, 5);
  writeWhole(path("plain"), plain);
  ASSERT_TRUE(readCachingInflated(path("plain"), cache, bytes, error, &from)) << error;
  EXPECT_EQ(from, InflatedFrom::PlainFile);
  EXPECT_EQ(asString(bytes), plain);
  // Two gzip members: the trailer vouches only for the last; not cached.
  const std::string head = content(2000, 6), tail = content(3000, 7);
  writeGzip(path("a.gz"), head);
  writeGzip(path("b.gz"), tail);
  writeWhole(path("two.gz"), readWhole(path("a.gz")) + readWhole(path("b.gz")));
  ASSERT_TRUE(readCachingInflated(path("two.gz"), cache, bytes, error, &from)) << error;
  EXPECT_EQ(from, InflatedFrom::Inflating);
  EXPECT_EQ(asString(bytes), head + tail);
  EXPECT_TRUE(cacheFiles().empty());
  // No cache, or one that cannot be written (its directory is a file).
  writeWhole(path("not-a-directory"), "");
  for (const std::string &where : {std::string(), path("not-a-directory")}) {
    ASSERT_TRUE(readCachingInflated(path("a.gz"), where, bytes, error, &from)) << error;
    EXPECT_EQ(from, InflatedFrom::Inflating);
    EXPECT_EQ(asString(bytes), head);
  }
}

TEST_F(InflatedCache, ErrorsAreTheGzipReadersOwn) {
  const std::string gz = path("data.gz");
  writeGzip(gz, content(20000, 8));
  const std::string whole = readWhole(gz);
  writeWhole(gz, whole.substr(0, whole.size() / 2)); // truncated
  ByteArray bytes;
  std::string error, expected, ignored;
  EXPECT_FALSE(readMaybeGzipped(gz, ignored, expected));
  EXPECT_FALSE(readCachingInflated(gz, cache, bytes, error));
  EXPECT_EQ(error, expected);
  EXPECT_NE(error.find(gz), std::string::npos) << error;
  EXPECT_TRUE(cacheFiles().empty());
  EXPECT_FALSE(readCachingInflated(path("missing.gz"), cache, bytes, error));
  EXPECT_EQ(error.rfind("cannot read '" + path("missing.gz") + "': ", 0), 0u) << error;
}

TEST_F(InflatedCache, IdxDataSetsFromTheCacheAreTheSame) {
  // Two images of 3x2 and their labels, gzipped.
  std::string images = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2};
  for (int i = 0; i < 12; ++i)
    images.push_back(char(20 * i));
  writeGzip(path("images.gz"), images);
  writeGzip(path("labels.gz"), std::string{0, 0, 8, 1, 0, 0, 0, 2, 4, 9});
  Dataset inflated, cached;
  std::string error;
  ASSERT_TRUE(loadIdx(path("images.gz"), path("labels.gz"), inflated, error, cache)) << error;
  ASSERT_EQ(cacheFiles().size(), 2u);
  ASSERT_TRUE(loadIdx(path("images.gz"), path("labels.gz"), cached, error, cache)) << error;
  EXPECT_EQ(asString(cached.featureBytes), images.substr(16));
  EXPECT_EQ(asString(inflated.featureBytes), images.substr(16));
  EXPECT_EQ(cached.targetsI, (std::vector<int32_t>{4, 9}));
  EXPECT_EQ(cached.featureDims, std::vector<int64_t>{6});
  float feature[6];
  cached.copyFeatures(1, feature);
  EXPECT_EQ(feature[5], float(220) / 255.0f);
}

TEST(InflatedCacheDir, ComesFromTheEnvironment) {
  const char *saved[3] = {std::getenv("GRADC_DATA_CACHE_DIR"), std::getenv("XDG_CACHE_HOME"),
                          std::getenv("HOME")};
  const std::string keep[3] = {saved[0] ? saved[0] : "", saved[1] ? saved[1] : "",
                               saved[2] ? saved[2] : ""};
  ::setenv("GRADC_DATA_CACHE_DIR", "/somewhere", 1);
  EXPECT_EQ(defaultInflatedCacheDir(), "/somewhere");
  ::setenv("GRADC_DATA_CACHE_DIR", "off", 1);
  EXPECT_EQ(defaultInflatedCacheDir(), "");
  ::unsetenv("GRADC_DATA_CACHE_DIR");
  ::setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(defaultInflatedCacheDir(), "/xdg/gradc/data");
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(defaultInflatedCacheDir(), "/home/someone/.cache/gradc/data");
  const char *names[3] = {"GRADC_DATA_CACHE_DIR", "XDG_CACHE_HOME", "HOME"};
  for (int i = 0; i < 3; ++i)
    if (saved[i])
      ::setenv(names[i], keep[i].c_str(), 1);
    else
      ::unsetenv(names[i]);
}

} // namespace
