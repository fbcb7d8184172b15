//===- runtime/Csv.cpp - CSV data sets ------------------------------------===//
//
// A CSV copy of Fashion-MNIST has 47 million cells, so the parser splits
// each line in place (quoted cells are unescaped where they stand) and
// converts with std::from_chars: no allocation per cell.
//
//===----------------------------------------------------------------------===//
#include "runtime/Csv.h"
#include "runtime/Gzip.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <string_view>

namespace gradc::rt {
namespace {

/// One cell of a split line: text [begin, end) of the line buffer (after
/// unquoting), and the 1-based column where it starts in the file.
struct Cell {
  size_t begin = 0, end = 0;
  size_t column = 0;
};

bool isBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

/// Splits `line` (without its line end) into `cells` at commas outside
/// quotes, trimming spaces and unquoting "..." cells ("" is one quote) in
/// place.  Returns an empty string or what is wrong and `badColumn`.
std::string splitCells(std::string &line, std::vector<Cell> &cells, size_t &badColumn) {
  cells.clear();
  size_t pos = 0;
  for (;;) {
    Cell cell;
    cell.column = pos + 1;
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t'))
      ++pos;
    if (pos < line.size() && line[pos] == '"') {
      size_t quote = pos++;
      size_t out = pos;
      cell.begin = out;
      for (;;) {
        if (pos >= line.size()) {
          badColumn = quote + 1;
          return "a quoted cell has no closing quote on this line";
        }
        if (line[pos] == '"') {
          if (pos + 1 < line.size() && line[pos + 1] == '"') {
            line[out++] = '"';
            pos += 2;
            continue;
          }
          ++pos;
          break;
        }
        line[out++] = line[pos++];
      }
      cell.end = out;
      while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t'))
        ++pos;
      if (pos < line.size() && line[pos] != ',') {
        badColumn = pos + 1;
        return fmt::format("expected ',' after a quoted cell, found '{}'", line[pos]);
      }
    } else {
      cell.begin = pos;
      pos = std::min(line.find(',', pos), line.size());
      cell.end = pos;
      while (cell.end > cell.begin && (line[cell.end - 1] == ' ' || line[cell.end - 1] == '\t'))
        --cell.end;
    }
    cells.push_back(cell);
    if (pos >= line.size())
      return "";
    ++pos; // the comma
  }
}

std::string_view text(const std::string &line, const Cell &cell) {
  return std::string_view(line).substr(cell.begin, cell.end - cell.begin);
}

/// A finite number in all of `s` (a leading '+' allowed, which from_chars
/// rejects but every CSV writer may produce).
template <typename T> bool parseNumber(std::string_view s, T &value) {
  if (!s.empty() && s[0] == '+')
    s.remove_prefix(1);
  if (s.empty())
    return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(value);
}

bool loadCsvWithHeader(const std::string &path, const std::vector<std::string> &labelColumns,
                       bool intLabels, Dataset &data, std::vector<std::string> &header,
                       std::string &error) {
  std::string content;
  if (!readMaybeGzipped(path, content, error))
    return false;
  std::string_view rest = content;
  auto nextLine = [&](std::string_view &line) {
    if (rest.empty())
      return false;
    size_t newline = rest.find('\n');
    line = rest.substr(0, newline);
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    return true;
  };

  std::string_view view;
  int64_t lineNo = 1;
  if (!nextLine(view) || isBlank(view)) {
    error = fmt::format("'{}' is empty: expected a header row naming the columns", path);
    return false;
  }
  std::string line(view);
  std::vector<Cell> cells;
  size_t badColumn = 0;
  if (std::string problem = splitCells(line, cells, badColumn); !problem.empty()) {
    error = fmt::format("{}:{}:{}: {}", path, lineNo, badColumn, problem);
    return false;
  }
  header.clear();
  for (const Cell &cell : cells)
    header.emplace_back(text(line, cell));

  std::vector<size_t> labelIndex;
  for (const std::string &name : labelColumns) {
    auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) {
      error = fmt::format("'{}' has no column '{}' for --label; its columns are {}", path, name,
                          fmt::join(header, ", "));
      return false;
    }
    if (auto again = std::find(it + 1, header.end(), name); again != header.end()) {
      error = fmt::format("'{}' has two columns named '{}' (columns {} and {}): which one is the "
                          "label?",
                          path, name, it - header.begin() + 1, again - header.begin() + 1);
      return false;
    }
    labelIndex.push_back(size_t(it - header.begin()));
  }
  if (intLabels && labelIndex.size() != 1) {
    error = fmt::format("a class label is one column; --label names {}", labelIndex.size());
    return false;
  }
  // isLabel[i]: the position of column i among the labels, or -1.
  std::vector<int> isLabel(header.size(), -1);
  for (size_t k = 0; k < labelIndex.size(); ++k)
    isLabel[labelIndex[k]] = int(k);

  data = Dataset{};
  const size_t features = header.size() - labelIndex.size();
  data.featureDims = {int64_t(features)};
  data.targetDims =
      intLabels ? std::vector<int64_t>{} : std::vector<int64_t>{int64_t(labelIndex.size())};
  data.intTargets = intLabels;
  std::vector<float> targets(labelIndex.size());
  while (nextLine(view)) {
    ++lineNo;
    if (isBlank(view))
      continue;
    line.assign(view);
    if (std::string problem = splitCells(line, cells, badColumn); !problem.empty()) {
      error = fmt::format("{}:{}:{}: {}", path, lineNo, badColumn, problem);
      return false;
    }
    if (cells.size() != header.size()) {
      error = fmt::format("{}:{}: expected {} columns as in the header, found {}", path, lineNo,
                          header.size(), cells.size());
      return false;
    }
    auto badCell = [&](size_t index, const char *expected) {
      error = fmt::format("{}:{}:{}: expected {} in column '{}', found '{}'", path, lineNo,
                          cells[index].column, expected, header[index], text(line, cells[index]));
      return false;
    };
    for (size_t index = 0; index < cells.size(); ++index) {
      std::string_view cell = text(line, cells[index]);
      if (isLabel[index] >= 0 && intLabels) {
        double value = 0;
        if (!parseNumber(cell, value))
          return badCell(index, "a number");
        if (value != std::floor(value) || value < 0 || value > 2147483647.0) {
          error = fmt::format(
              "{}:{}:{}: a class label is a whole number from 0 to 2147483647, found '{}'", path,
              lineNo, cells[index].column, cell);
          return false;
        }
        data.targetsI.push_back(int32_t(value));
        continue;
      }
      float value = 0;
      if (!parseNumber(cell, value))
        return badCell(index, "a number");
      if (isLabel[index] >= 0)
        targets[size_t(isLabel[index])] = value;
      else
        data.features.push_back(value);
    }
    // Targets in the order --label names them, not in file order.
    if (!intLabels)
      data.targetsF.insert(data.targetsF.end(), targets.begin(), targets.end());
    ++data.size;
  }
  if (data.size == 0) {
    error = fmt::format("'{}' has a header row but no data rows", path);
    return false;
  }
  data.description = fmt::format("{} ({} rows)", path, data.size);
  return true;
}

} // namespace

bool loadCsv(const std::string &path, const std::vector<std::string> &labelColumns, bool intLabels,
             Dataset &data, std::string &error) {
  std::vector<std::string> header;
  return loadCsvWithHeader(path, labelColumns, intLabels, data, header, error);
}

bool loadCsvTrainTest(const std::string &trainPath, const std::string &testPath,
                      const std::vector<std::string> &labelColumns, bool intLabels,
                      TrainTestSplit &split, std::string &error) {
  std::vector<std::string> trainHeader, testHeader;
  split.test = Dataset{};
  if (!loadCsvWithHeader(trainPath, labelColumns, intLabels, split.train, trainHeader, error))
    return false;
  if (testPath.empty())
    return true;
  if (!loadCsvWithHeader(testPath, labelColumns, intLabels, split.test, testHeader, error))
    return false;
  if (testHeader != trainHeader) {
    error =
        fmt::format("'{}' has the columns {}; the training file '{}' has {}: a test file needs "
                    "the same columns in the same order",
                    testPath, fmt::join(testHeader, ", "), trainPath, fmt::join(trainHeader, ", "));
    return false;
  }
  return true;
}

} // namespace gradc::rt
