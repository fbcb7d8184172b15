//===- runtime/Csv.h - CSV data sets ---------------------------*- C++ -*-===//
//
// A CSV data set is a header row naming the columns, then one example per
// row.  The label columns are the targets; every other column is an f32
// feature, in file order.  Cells are numbers; a cell may be quoted
// ("1.5", as spreadsheets and R write them) and padded with spaces.  Blank
// lines are skipped; "\r\n" line ends are fine; a file starting with the
// gzip magic is decompressed first.
//
// Every error names the file, and a bad cell its line and column
// (1-based, in characters, where the cell starts), in the form
// "FILE:LINE:COL: expected a number in column 'c', found 'x3'".
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Data.h"

#include <string>
#include <vector>

namespace gradc::rt {

/// Reads `path`.  The columns named in `labelColumns` are the targets: with
/// `intLabels`, exactly one column of whole numbers >= 0 (class labels,
/// i32); otherwise f32 values in the order given (targetDims = {count}).
/// Returns false and sets `error` on an unreadable or empty file, a file
/// with a header but no rows, a label column the header lacks (listing the
/// header), a label name that occurs twice in the header, a row with
/// another number of cells than the header, a cell that is not a finite
/// number (quoted in the message), or a class label that is not a whole
/// number >= 0.
bool loadCsv(const std::string &path, const std::vector<std::string> &labelColumns, bool intLabels,
             Dataset &data, std::string &error);

/// Loads `trainPath` into split.train and, when `testPath` is not empty,
/// `testPath` into split.test (else split.test is left empty).  The test
/// file must have the same header as the training file, column for column:
/// features are matched by position, so a reordered file would silently
/// feed the wrong columns.
bool loadCsvTrainTest(const std::string &trainPath, const std::string &testPath,
                      const std::vector<std::string> &labelColumns, bool intLabels,
                      TrainTestSplit &split, std::string &error);

} // namespace gradc::rt
