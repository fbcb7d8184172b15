//===- test/unit/runtime/CsvTest.cpp - CSV data sets ----------------------===//
#include "runtime/Csv.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <zlib.h>

using namespace gradc::rt;

namespace {

std::string temp(const std::string &name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / "gradc_csv_test";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::string write(const std::string &name, const std::string &text, bool gzip = false) {
  std::string path = temp(name);
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary).write(text.data(), std::streamsize(text.size()));
  }
  return path;
}

TEST(Csv, ClassLabelsAndFeatures) {
  std::string path = write("classes.csv", "a,label,b\n1.5,2,-3\n0,0,1e-3\n");
  Dataset data;
  std::string error;
  ASSERT_TRUE(loadCsv(path, {"label"}, /*intLabels=*/true, data, error)) << error;
  EXPECT_EQ(data.size, 2);
  EXPECT_EQ(data.featureDims, std::vector<int64_t>{2});
  EXPECT_TRUE(data.targetDims.empty());
  EXPECT_TRUE(data.intTargets);
  EXPECT_EQ(data.features, (std::vector<float>{1.5f, -3.0f, 0.0f, 1e-3f}));
  EXPECT_EQ(data.targetsI, (std::vector<int32_t>{2, 0}));
  EXPECT_EQ(data.description, path + " (2 rows)");
  EXPECT_TRUE(data.check().empty());
}

TEST(Csv, RegressionTargetsInTheOrderNamed) {
  std::string path = write("regression.csv", "y1,x,y2\n1,2,3\n4,5,6\n");
  Dataset data;
  std::string error;
  ASSERT_TRUE(loadCsv(path, {"y2", "y1"}, /*intLabels=*/false, data, error)) << error;
  EXPECT_EQ(data.targetDims, std::vector<int64_t>{2});
  EXPECT_EQ(data.features, (std::vector<float>{2, 5}));
  EXPECT_EQ(data.targetsF, (std::vector<float>{3, 1, 6, 4}));
}

TEST(Csv, QuotesSpacesLineEndsBlankLinesAndGzip) {
  // As R's write.csv and spreadsheets write it: quoted names and cells,
  // "\r\n", spaces after commas, a blank line, a leading '+'.
  std::string text = "\"x 1\", \"x,2\" ,\"cls\"\r\n\"1\", +2.5 ,\"0\"\r\n\r\n3,4,1\r\n";
  for (bool gzip : {false, true}) {
    std::string path = write(gzip ? "quoted.csv.gz" : "quoted.csv", text, gzip);
    Dataset data;
    std::string error;
    ASSERT_TRUE(loadCsv(path, {"cls"}, true, data, error)) << error;
    EXPECT_EQ(data.features, (std::vector<float>{1, 2.5f, 3, 4}));
    EXPECT_EQ(data.targetsI, (std::vector<int32_t>{0, 1}));
    ASSERT_FALSE(loadCsv(path, {"x"}, true, data, error));
    EXPECT_EQ(error, "'" + path + "' has no column 'x' for --label; its columns are x 1, x,2, cls");
  }
}

TEST(Csv, FloatsAreCorrectlyRounded) {
  // Parsed straight to f32, not through double: no double rounding.
  // 1 + 2^-24 + 1e-20 lies just above the midpoint of 1 and the next
  // float: through double it becomes the midpoint and rounds to even (1).
  std::string path = write("rounding.csv", "x,y\n1.000000059604644785390625,0.1\n");
  Dataset data;
  std::string error;
  ASSERT_TRUE(loadCsv(path, {"y"}, false, data, error)) << error;
  EXPECT_EQ(data.features[0], std::nextafter(1.0f, 2.0f));
  EXPECT_EQ(data.targetsF[0], 0.1f);
}

/// Expects loading `text` with label `cls` (class labels) to fail with
/// `message`, where FILE stands for the file's path.
void expectError(const std::string &text, const std::string &message,
                 std::vector<std::string> labels = {"cls"}, bool intLabels = true) {
  std::string path = write("bad.csv", text);
  Dataset data;
  std::string error;
  EXPECT_FALSE(loadCsv(path, labels, intLabels, data, error)) << text;
  std::string expected = message;
  for (size_t at; (at = expected.find("FILE")) != std::string::npos;)
    expected.replace(at, 4, path);
  EXPECT_EQ(error, expected);
}

TEST(Csv, MalformedFilesNameFileLineAndColumn) {
  expectError("", "'FILE' is empty: expected a header row naming the columns");
  expectError("\n  \n", "'FILE' is empty: expected a header row naming the columns");
  expectError("a,b,cls\n", "'FILE' has a header row but no data rows");
  expectError("a,b,c\n1,2,3\n", "'FILE' has no column 'cls' for --label; its columns are a, b, c");
  expectError("cls,a,cls\n1,2,3\n",
              "'FILE' has two columns named 'cls' (columns 1 and 3): which one is the label?");
  expectError("a,b,cls\n1,2,0\n1,2\n", "FILE:3: expected 3 columns as in the header, found 2");
  expectError("a,b,cls\n1,2,0,4\n", "FILE:2: expected 3 columns as in the header, found 4");
  expectError("a,b,cls\n1,2,0\n1,x3,1\n", "FILE:3:3: expected a number in column 'b', found 'x3'");
  expectError("a,b,cls\n1,,0\n", "FILE:2:3: expected a number in column 'b', found ''");
  expectError("a,b,cls\n1,  nan,0\n", "FILE:2:3: expected a number in column 'b', found 'nan'");
  expectError("a,b,cls\n1,inf,0\n", "FILE:2:3: expected a number in column 'b', found 'inf'");
  expectError("a,b,cls\n1,1e39,0\n", "FILE:2:3: expected a number in column 'b', found '1e39'");
  expectError("a,b,cls\n1,2,2.5\n",
              "FILE:2:5: a class label is a whole number from 0 to 2147483647, found '2.5'");
  expectError("a,b,cls\n1,2,-1\n",
              "FILE:2:5: a class label is a whole number from 0 to 2147483647, found '-1'");
  expectError("a,b,cls\n1,2,zero\n", "FILE:2:5: expected a number in column 'cls', found 'zero'");
  expectError("a,b,cls\n1,\"2,0\n", "FILE:2:3: a quoted cell has no closing quote on this line");
  expectError("a,b,cls\n1,\"2\"x,0\n", "FILE:2:6: expected ',' after a quoted cell, found 'x'");
  expectError("a,b,cls\n1,2,0\n", "a class label is one column; --label names 2", {"a", "cls"});
}

TEST(Csv, TrainAndTestFilesMustHaveTheSameColumns) {
  std::string train = write("train.csv", "a,b,cls\n1,2,0\n3,4,1\n");
  std::string test = write("test.csv", "a,b,cls\n5,6,1\n");
  std::string swapped = write("swapped.csv", "b,a,cls\n5,6,1\n");
  TrainTestSplit split;
  std::string error;
  ASSERT_TRUE(loadCsvTrainTest(train, test, {"cls"}, true, split, error)) << error;
  EXPECT_EQ(split.train.size, 2);
  EXPECT_EQ(split.test.size, 1);
  ASSERT_TRUE(loadCsvTrainTest(train, "", {"cls"}, true, split, error)) << error;
  EXPECT_TRUE(split.test.empty());
  EXPECT_FALSE(loadCsvTrainTest(train, swapped, {"cls"}, true, split, error));
  EXPECT_EQ(error, "'" + swapped + "' has the columns b, a, cls; the training file '" + train +
                       "' has a, b, cls: a test file needs the same columns in the same order");
  EXPECT_FALSE(loadCsvTrainTest(train, temp("missing.csv"), {"cls"}, true, split, error));
  EXPECT_EQ(error, "cannot read '" + temp("missing.csv") + "': No such file or directory");
}

} // namespace
