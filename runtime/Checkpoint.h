//===- runtime/Checkpoint.h - safetensors checkpoints ----------*- C++ -*-===//
//
// A checkpoint is a safetensors file (8-byte little-endian header length, a
// JSON header, raw little-endian data) holding every param and optimizer
// state tensor under its hierarchical name, plus "__metadata__" with the
// format version, model, seed, epoch and step, so training can resume
// exactly.  It is written to a temporary file in the same directory and
// renamed over the target: a crash never leaves a broken checkpoint.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Buffers.h"

#include <cstdint>
#include <map>
#include <string>

namespace gradc::rt {

struct CheckpointInfo {
  std::string model;
  uint64_t seed = 0;
  int64_t epoch = 0; ///< epochs completed
  uint64_t step = 0; ///< steps completed (the next step's dropout key)
};

/// Writes the params and state of `store` with `info`.
bool saveCheckpoint(const std::string &path, const TensorStore &store, const CheckpointInfo &info,
                    std::string &error);

enum class CheckpointUse {
  Resume, ///< every param and state tensor must be there, nothing else
  Init,   ///< every param must be there; state and unknown tensors are ignored
};

/// Reads `path` into the params (and for Resume the state) of `store`,
/// checking names, dtypes and shapes; fills `info` from the metadata.
bool loadCheckpoint(const std::string &path, TensorStore &store, CheckpointUse use,
                    CheckpointInfo &info, std::string &error);

} // namespace gradc::rt
