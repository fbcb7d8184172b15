//===- trainer/TrainerCommand.h - The trainer's command line ----*- C++ -*-===//
//
// `gradc train` (JIT) and the standalone trainer that `gradc build` writes
// (ahead of time) take the same flags and run the same code from here on:
// the data set, epochs, learning rate, seed, metrics, checkpoints, threads,
// progress.  Only how the kernels came to be differs.  Nothing here
// depends on LLVM or on the compiler.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Data.h"
#include "runtime/Trainer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace boost::program_options {
class options_description;
class variables_map;
} // namespace boost::program_options

namespace gradc::trainer {

namespace po = boost::program_options;

/// What the model's `train { }` section says; flags override it.
struct TrainDefaults {
  int64_t epochs = 10;
  uint64_t seed = 1;
  double lr = 0.01;
  std::string schedule = "constant";
  double stepSize = 1, gamma = 0.1, lrMin = 0;
};

/// Where the examples come from: --data, --label, --examples.
struct DataSource {
  std::string spec = "synthetic";  ///< synthetic | fashion-mnist | idx:DIR | csv:TRAIN[,TEST]
  std::vector<std::string> labels; ///< --label columns, for csv
  int64_t examples = 2000;         ///< size of the synthetic set
  uint64_t seed = 1;               ///< of the synthetic set
  /// Where gzipped IDX files are inflated once (runtime/InflatedCache.h);
  /// empty: inflated on every load.
  std::string inflatedCacheDir;
};

/// Adds --data, --label and --examples.
void addDataOptions(po::options_description &options);
/// Adds the data options and --epochs, --seed, --lr, --metrics, --threads,
/// --save, --resume, --init, --progress.
void addTrainOptions(po::options_description &options);

/// The data source of parsed flags (--seed, when given, also keys the
/// synthetic set; else `seed`).
bool dataSourceFrom(const po::variables_map &values, uint64_t seed, DataSource &source,
                    std::string &error);

/// TrainOptions from parsed flags over `defaults`.  Returns false and sets
/// `error` for a value out of range.
bool trainOptionsFrom(const po::variables_map &values, const TrainDefaults &defaults,
                      rt::TrainOptions &options, std::string &error);

/// Loads the data set `source` names and checks it against `shape`: the
/// features per example, the target's kind and size, every class label.
/// The synthetic set is split 80/20; IDX directories and csv:TRAIN,TEST
/// have their own test split; csv:TRAIN alone has none.
bool loadDataSource(const DataSource &source, const rt::DataShape &shape, rt::TrainTestSplit &split,
                    std::string &error);

/// The first line of a run: what is trained on what, and how.
std::string describeRun(const std::string &modelName, const std::string &modelPath,
                        const rt::KernelSpec &step, const std::string &optimizer,
                        const rt::TrainTestSplit &split, const rt::TrainOptions &options);

/// The batch a tail kernel needs for `examples` examples and kernels of
/// `batch` (0: none needed: the batch divides them, or kernels take one
/// example per call).
inline int64_t tailBatch(int64_t examples, int64_t batch) {
  return batch > 0 ? examples % batch : 0;
}

} // namespace gradc::trainer
