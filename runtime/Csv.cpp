//===- runtime/Csv.cpp - CSV data sets ------------------------------------===//
#include "runtime/Csv.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <fstream>

namespace gradc::rt {
namespace {

std::vector<std::string> splitRow(const std::string &line) {
  std::vector<std::string> cells;
  size_t start = 0;
  for (;;) {
    size_t comma = line.find(',', start);
    std::string cell =
        line.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!cell.empty() && (cell.back() == ' ' || cell.back() == '\r'))
      cell.pop_back();
    size_t first = cell.find_first_not_of(' ');
    cells.push_back(first == std::string::npos ? "" : cell.substr(first));
    if (comma == std::string::npos)
      return cells;
    start = comma + 1;
  }
}

/// The 1-based column (in characters) where cell `index` of `line` starts.
size_t columnOf(const std::string &line, size_t index) {
  size_t pos = 0;
  for (size_t i = 0; i < index; ++i)
    pos = line.find(',', pos) + 1;
  return pos + 1;
}

} // namespace

bool loadCsv(const std::string &path, const std::vector<std::string> &labelColumns, bool intLabels,
             Dataset &data, std::string &error) {
  std::ifstream in(path);
  if (!in) {
    error = fmt::format("cannot read '{}': {}", path, std::strerror(errno));
    return false;
  }
  std::string line;
  if (!std::getline(in, line) || line.find_first_not_of(" \r") == std::string::npos) {
    error = fmt::format("'{}' is empty: expected a header row naming the columns", path);
    return false;
  }
  std::vector<std::string> header = splitRow(line);
  std::vector<size_t> labelIndex;
  for (const std::string &name : labelColumns) {
    auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) {
      error = fmt::format("'{}' has no column '{}' for --label; its columns are {}", path, name,
                          fmt::join(header, ", "));
      return false;
    }
    labelIndex.push_back(size_t(it - header.begin()));
  }
  if (intLabels && labelIndex.size() != 1) {
    error = fmt::format("a class label is one column; --label names {}", labelIndex.size());
    return false;
  }
  std::vector<size_t> featureIndex;
  for (size_t i = 0; i < header.size(); ++i)
    if (std::find(labelIndex.begin(), labelIndex.end(), i) == labelIndex.end())
      featureIndex.push_back(i);

  data = Dataset{};
  data.featureDims = {int64_t(featureIndex.size())};
  data.targetDims =
      intLabels ? std::vector<int64_t>{} : std::vector<int64_t>{int64_t(labelIndex.size())};
  data.intTargets = intLabels;
  for (int64_t lineNo = 2; std::getline(in, line); ++lineNo) {
    if (line.find_first_not_of(" \r") == std::string::npos)
      continue;
    std::vector<std::string> cells = splitRow(line);
    if (cells.size() != header.size()) {
      error = fmt::format("{}:{}: expected {} columns as in the header, found {}", path, lineNo,
                          header.size(), cells.size());
      return false;
    }
    auto number = [&](size_t index, double &value) {
      const std::string &cell = cells[index];
      auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
      if (ec != std::errc() || end != cell.data() + cell.size() || cell.empty() ||
          !std::isfinite(value)) {
        error = fmt::format("{}:{}:{}: expected a number in column '{}', found '{}'", path, lineNo,
                            columnOf(line, index), header[index], cell);
        return false;
      }
      return true;
    };
    double value = 0;
    for (size_t index : featureIndex) {
      if (!number(index, value))
        return false;
      data.features.push_back(float(value));
    }
    for (size_t index : labelIndex) {
      if (!number(index, value))
        return false;
      if (intLabels) {
        if (value != std::floor(value) || value < 0 || value > 2147483647.0) {
          error = fmt::format("{}:{}:{}: a class label is a whole number >= 0, found '{}'", path,
                              lineNo, columnOf(line, index), cells[index]);
          return false;
        }
        data.targetsI.push_back(int32_t(value));
      } else {
        data.targetsF.push_back(float(value));
      }
    }
    ++data.size;
  }
  data.description = fmt::format("{} ({} rows)", path, data.size);
  return true;
}

} // namespace gradc::rt
