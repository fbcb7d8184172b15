//===- runtime/Checkpoint.h - safetensors checkpoints ----------*- C++ -*-===//
//
// A checkpoint is a safetensors file, readable by Hugging Face's
// `safetensors` and by twenty lines of Python:
//
//   8 bytes      N, the header length, unsigned little-endian
//   N bytes      a JSON object, padded with spaces to a multiple of 8:
//                  {"__metadata__": {"format": "gradc-checkpoint-1", "model": ...,
//                                    "seed": "1", "epoch": "3", "step": "1407", ...},
//                   "dense1.W": {"dtype": "F32", "shape": [256, 784],
//                                "data_offsets": [0, 802816]}, ...}
//   the rest     the tensors' raw little-endian bytes, back to back, sorted by name
//
// It holds every param and optimizer-state tensor of a TensorStore under
// its hierarchical name, and in "__metadata__" (string -> string, as the
// format demands) the format version, the model's name, the seed, the
// epochs completed and the global step, which is all a resumed run needs
// to continue exactly where the saved one stopped (runtime/Trainer.h).
//
// Writing goes to PATH.tmp-<pid> in the same directory, is fsync'ed, and
// is renamed over PATH (atomic on POSIX file systems), and then the
// directory is fsync'ed: a crash or a full disk leaves the previous
// checkpoint or the new one, never a broken file.
//
// Reading parses the header with a small JSON parser of our own (no new
// dependency) and checks everything before it touches the model: sizes,
// JSON syntax (with the byte offset of the error), dtypes, shapes, that
// data offsets lie within the file, do not overlap and match
// shape x dtype size, and then names, dtypes and shapes against the model.
// Every error names the file.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Buffers.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace gradc::rt {

/// The "format" metadata gradc writes and requires to resume.
inline constexpr const char *kCheckpointFormat = "gradc-checkpoint-1";

/// The metadata of a checkpoint.
struct CheckpointInfo {
  std::string model;
  uint64_t seed = 0;
  int64_t epoch = 0; ///< epochs completed
  uint64_t step = 0; ///< steps completed (the next step's dropout key)
  /// More "__metadata__" entries (say "optimizer" or "lr"), written as they
  /// are and read back; the keys format, model, seed, epoch and step are
  /// reserved.
  std::map<std::string, std::string> extra;
  /// Filled by loadCheckpoint: the file's "format" ("" when it has none),
  /// and the tensors of the file the model did not take (CheckpointUse::Init
  /// only, e.g. optimizer state when initializing from a training run).
  std::string format;
  std::vector<std::string> ignored;
};

/// Whether a file written next to `path` may be renamed over it: `path`
/// does not exist or is a regular file.  Otherwise (a directory, a device
/// such as /dev/null, a pipe) sets `error`, naming `what` is written: a
/// rename would replace the node itself, and as root even /dev/null.
bool replaceableByRename(const std::string &path, std::string_view what, std::string &error);

/// Writes the params and state of `store` with `info` to `path`,
/// atomically (see the file comment).  On failure returns false, sets
/// `error` (naming the file) and leaves an existing `path` unchanged.
bool saveCheckpoint(const std::string &path, const TensorStore &store, const CheckpointInfo &info,
                    std::string &error);

enum class CheckpointUse {
  Resume, ///< every param and state tensor must be there, and nothing else
  Init,   ///< every param must be there; state and other tensors are ignored
};

/// Reads `path` into the params (and for Resume the state) of `store`,
/// checking the file and then names, dtypes and shapes against the store;
/// fills `info` from the metadata.  Resume also requires gradc's metadata
/// (format, seed, epoch, step).  On failure returns false, sets `error` and
/// leaves `store` unchanged.
bool loadCheckpoint(const std::string &path, TensorStore &store, CheckpointUse use,
                    CheckpointInfo &info, std::string &error);

/// One tensor of a safetensors header.
struct SafetensorsEntry {
  std::string name;
  std::string dtype; ///< "F32", "I32", or any other safetensors dtype ("F16", "BF16", ...)
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0; ///< data_offsets, relative to the start of the data
};

/// A safetensors file, read and checked, in memory.
struct SafetensorsFile {
  std::vector<SafetensorsEntry> tensors; ///< in header order
  std::map<std::string, std::string> metadata;
  std::string bytes;      ///< the whole file
  uint64_t dataStart = 0; ///< 8 + the header length

  /// The entry called `name`, or null.
  const SafetensorsEntry *find(std::string_view name) const;
  /// The first byte of `entry`'s data.
  const char *data(const SafetensorsEntry &entry) const {
    return bytes.data() + dataStart + entry.begin;
  }
};

/// Reads and validates `path` as a safetensors file (the checks of the file
/// comment, up to but not including the model).  Like the reference
/// implementation it requires the tensors' data to cover the data section
/// exactly, without gaps.
bool readSafetensors(const std::string &path, SafetensorsFile &file, std::string &error);

/// Bytes per element of a safetensors dtype, or 0 if `dtype` is not one.
int64_t safetensorsDtypeSize(std::string_view dtype);

} // namespace gradc::rt
