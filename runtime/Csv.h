//===- runtime/Csv.h - CSV data sets ---------------------------*- C++ -*-===//
#pragma once

#include "runtime/Data.h"

#include <string>
#include <vector>

namespace gradc::rt {

/// Reads a CSV file with a header row.  The columns named in `labelColumns`
/// are the targets (one integer class label when `intLabels`, else f32
/// values in the given order); every other column is an f32 feature.
/// Errors name the file and, for a bad cell, its line and column.
bool loadCsv(const std::string &path, const std::vector<std::string> &labelColumns, bool intLabels,
             Dataset &data, std::string &error);

} // namespace gradc::rt
