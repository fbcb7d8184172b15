//===- runtime/Trainer.h - The training driver ------------------*- C++ -*-===//
//
// Runs a compiled training step over a data set for a number of epochs:
// shuffle, batch, step, evaluate, log, write metrics.  The same seed, data
// and thread count give bit-identical losses.
//
// Kernel contract (what codegen produces):
//   - exactly one Role::Input buffer (e.g. "x") and one Role::Target ("y");
//     with KernelSpec::batch == 0 the kernel takes ONE example per call
//     (input dims = feature dims), otherwise [batch, feature dims...];
//   - an output "loss" (the data loss L, scalar f32) and, for the training
//     step, "objective" (J = L + weight decay, scalar f32; if absent the
//     trainer reports J = L);
//   - hyperparameters by name in KernelSpec::hypers; the trainer sets "lr"
//     and rejects any name it does not know;
//   - ctx.seed = TrainOptions::seed, ctx.step = the global step counter
//     (0, 1, 2, ... across epochs; it keys the dropout masks).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Buffers.h"
#include "runtime/Data.h"
#include "runtime/Model.h"

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

namespace gradc::rt {

struct TrainOptions {
  int64_t epochs = 10;
  uint64_t seed = 1; ///< ctx.seed (dropout) and the shuffle key
  float lr = 0.01f;
  std::string metricsPath;        ///< CSV, one row per epoch; empty = none
  int threads = 0;                ///< 0 = std::thread::hardware_concurrency()
  std::ostream *log = &std::cout; ///< per-epoch lines; null = silent
  /// Learning-rate schedule: constant; step (lr * gamma^floor((epoch-1) /
  /// stepSize)); cosine (from lr down to lrMin over all steps, per step).
  std::string schedule = "constant";
  double stepSize = 1, gamma = 0.1, lrMin = 0;
  /// Resuming: the first epoch to run and the global step it starts at (a
  /// checkpoint's epoch + 1 and step).  Shuffling is keyed by epoch and
  /// dropout by step, so a resumed run equals an uninterrupted one.
  int64_t firstEpoch = 1;
  uint64_t firstStep = 0;
  /// Write a checkpoint (runtime/Checkpoint.h) here after every epoch.
  std::string savePath;
  std::string modelName; ///< recorded in checkpoints
};

/// The learning rate of global step `step` (0-based) in epoch `epoch`
/// (1-based) of a run of `totalSteps` steps.
double scheduledLearningRate(const TrainOptions &options, uint64_t step, int64_t epoch,
                             uint64_t totalSteps);

struct EpochStats {
  int64_t epoch = 0;         ///< 1-based
  double trainLoss = 0;      ///< mean of "loss" over the epoch's steps
  double trainObjective = 0; ///< mean of "objective" over the epoch's steps
  double testLoss = 0;       ///< mean of the eval kernel's "loss" over the test set; NaN if none
  double testAccuracy = 0;   ///< fraction of test examples whose "prediction" argmax is the label;
                             ///< NaN unless classifying
  double seconds = 0;        ///< wall time of the epoch's training steps (not evaluation)
  int64_t samples = 0;       ///< training examples consumed in the epoch
};

/// Trains with `step` (a KernelSpec whose fn is a compiled training step)
/// on `trainData`, evaluating `testData` (may be empty) with `eval` (may be
/// null: then no test loss) after every epoch.  Adds both kernels to `store`
/// (creating and initializing missing params and state).  Appends one
/// EpochStats per finished epoch to `history` (may be null).  Returns false
/// and sets `error` to a full message on failure: a kernel that does not
/// fit the contract or the data, an unwritable metrics file, a loss that
/// became NaN or Inf.
bool train(const KernelSpec &step, const KernelSpec *eval, TensorStore &store,
           const Dataset &trainData, const Dataset &testData, const TrainOptions &options,
           std::vector<EpochStats> *history, std::string &error);

/// Loss and, for class labels, accuracy of the inference kernel `eval`
/// over all of `data` (whole batches; the rest is counted in `skipped`).
struct EvalResult {
  double loss = 0;
  double accuracy = 0; ///< NaN unless classifying
  int64_t examples = 0, skipped = 0;
};
bool evaluateDataset(const KernelSpec &eval, TensorStore &store, const Dataset &data,
                     const TrainOptions &options, EvalResult &result, std::string &error);

/// The example order of `epoch`: a Fisher-Yates shuffle of 0..n-1 driven by
/// Philox with key = seed, counter = (draw / 2, epoch, kShuffleDomain, 0).
/// Depends only on (n, seed, epoch).  Resizes `order` to n.
void epochPermutation(int64_t n, uint64_t seed, int64_t epoch, std::vector<int64_t> &order);

/// The metrics CSV header the trainer writes.
inline constexpr const char *kMetricsHeader =
    "epoch,loss,objective,test_loss,test_accuracy,seconds,samples_per_second";

} // namespace gradc::rt
