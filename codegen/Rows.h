//===- codegen/Rows.h - Row-wise lowering of the classification ops -*- C++ -*-===//
//
// softmax, log_softmax, cross_entropy and onehot work on a matrix row by
// row along its last (contiguous) axis: a vector of C elements is one row,
// a [B, C] matrix B rows.  Every row is shifted by its maximum before exp,
// so no exp overflows and logits of +-1e4 give finite results.
//
// Class labels are i32.  Generated code must not read out of bounds, so a
// label outside [0, C) is clamped into it (the reference interpreter
// reports such a label as an error; the data loaders reject it before
// training).  cross_entropy and onehot clamp the same way, so the loss and
// its gradient softmax - onehot stay consistent.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "codegen/KernelBuilder.h"

#include <cstdint>
#include <string>

namespace gradc::codegen {

/// A row-major [rows, classes] f32 matrix (or one vector) in storage.
struct RowMatrix {
  llvm::Value *base;
  int64_t rows, classes;
  std::string name;
};

/// out = softmax(x) row by row, or log_softmax(x) with `log`.
void emitSoftmaxRows(KernelBuilder &kb, const std::string &name, const RowMatrix &x,
                     llvm::Value *out, bool log);

/// out[0] = mean over the rows of logsumexp(row) - row[label], labels one
/// i32 per row.
void emitCrossEntropy(KernelBuilder &kb, const std::string &name, const RowMatrix &logits,
                      llvm::Value *labels, const std::string &labelsName, llvm::Value *out);

/// out = onehot(labels) as a [rows, classes] matrix.
void emitOneHot(KernelBuilder &kb, const std::string &name, llvm::Value *labels,
                const std::string &labelsName, int64_t rows, int64_t classes, llvm::Value *out);

} // namespace gradc::codegen
