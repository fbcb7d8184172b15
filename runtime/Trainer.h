//===- runtime/Trainer.h - The training driver ------------------*- C++ -*-===//
//
// Runs a compiled training step over a data set for a number of epochs:
// shuffle, batch, step, evaluate, log, write metrics and checkpoints.  The
// same seed, data and thread count give bit-identical results, and nothing
// is allocated inside the step loop.
//
// Kernel contract (what codegen produces):
//   - exactly one Role::Input buffer (e.g. "x") and one Role::Target ("y");
//     with KernelSpec::batch == 0 the kernel takes ONE example per call
//     (input dims = feature dims), otherwise [batch, feature dims...];
//   - an output "loss" (the data loss L, the MEAN over the batch, scalar
//     f32) and, for the training step, "objective" (J = L + weight decay,
//     scalar f32; if absent the trainer reports J = L);
//   - optionally an output "prediction" of class scores, [batch, C] (or [C]
//     for batch 0): with class labels the trainer reports the accuracy of
//     its argmax (ties go to the lowest class);
//   - hyperparameters by name in KernelSpec::hypers; the trainer sets "lr"
//     and rejects any name it does not know;
//   - ctx.seed = TrainOptions::seed, ctx.step = the global step counter
//     (0, 1, 2, ... across epochs; it keys the dropout masks);
//   - ctx.pool = the trainer's thread pool (TrainOptions::threads).
//
// The last partial batch.  Shapes are static, so a kernel compiled for
// batch B cannot run the size % B examples left at the end of a pass.
// A caller may compile "tail" kernels for exactly that many examples
// (TrainKernels::stepTail / evalTail); they share params and state with
// the main kernels through the TensorStore, and each epoch (each
// evaluation) ends with one call of them.  Without a tail kernel the
// remainder is skipped, and the first epoch line says so.  Losses are
// averaged over examples, so a small tail batch weighs what its examples
// weigh.
//
// Determinism and resuming.  The example order of epoch e is a function of
// (seed, e) only (epochPermutation), dropout masks are a function of (seed,
// global step), and the learning rate a function of the step, the epoch
// and the run's length.  A checkpoint therefore needs only params, state,
// the epochs completed and the global step: a run resumed from the
// checkpoint of epoch k computes exactly what an uninterrupted run
// computes in epochs k+1, ... (same seed, data, thread count and epochs).
//
// The NaN guard.  After every step the trainer checks that loss and
// objective are finite; if not, it stops with a message naming the epoch,
// the global step and the params and state that hold non-finite values
// after the step.  For a deeper diagnosis, TrainOptions::diagnose: the
// trainer then copies params and state at the start of every epoch (one
// memcpy of the model per epoch; the copy is allocated once, before the
// first epoch).  When a step goes bad it restores that copy and replays
// the epoch's steps before the bad one (same examples, step numbers,
// learning rates and thread pool, hence the same bits: it checks that the
// replayed losses equal the recorded ones), loads the bad step's batch
// into the kernel's buffers without running it, and calls the hook with a
// StepReplay: the exact state the bad step started from.  The hook can run
// a reference interpreter there to name the first value that goes bad; its
// text is appended to the error.  After that the store holds that pre-step
// state (without a hook: the state after the bad step).
//
// Progress.  On a terminal (TrainOptions::progress, Auto: when the log
// stream is std::cout or std::cerr and that is a tty) an epoch shows one
// line, rewritten in place a few times a second: a bar, examples
// done/total, samples/s, the running mean loss and the time left.  It is
// erased before the epoch's permanent line is printed, so a log file (not a
// terminal) gets only the per-epoch lines.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Abi.h"
#include "runtime/Buffers.h"
#include "runtime/Data.h"
#include "runtime/Model.h"

#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace gradc::rt {

/// The metrics CSV header the trainer writes; one row per epoch.
/// test_loss is empty without a test set, test_accuracy unless classifying.
inline constexpr const char *kMetricsHeader =
    "epoch,loss,objective,test_loss,test_accuracy,seconds,samples_per_second";

/// When to draw the updating progress line.
enum class ProgressMode {
  Auto,   ///< when the log stream is a terminal
  Always, ///< also into a file or string stream (tests)
  Never,
};

struct StepReplay;

/// Watches training steps (runtime/Health.h: gradc train --health).  The
/// trainer calls beforeStep and afterStep around every step, with the
/// kernel that runs it (the step or its tail) and its ctx; text that
/// afterStep appends to `report` goes to the log, after the progress line
/// is erased.  Called on the training thread, never concurrently.
class StepObserver {
public:
  virtual ~StepObserver() = default;
  virtual void beforeStep(int64_t epoch, uint64_t step, const KernelSpec &kernel) = 0;
  virtual void afterStep(int64_t epoch, uint64_t step, const KernelSpec &kernel,
                         std::string &report) = 0;
};

struct TrainOptions {
  int64_t epochs = 10;
  uint64_t seed = 1; ///< ctx.seed (dropout) and the shuffle key
  float lr = 0.01f;
  std::string metricsPath;        ///< CSV, one row per epoch; empty = none
  int threads = 0;                ///< 0 = std::thread::hardware_concurrency()
  std::ostream *log = &std::cout; ///< per-epoch lines; null = silent
  ProgressMode progress = ProgressMode::Auto;
  double progressInterval = 0.1; ///< seconds between progress redraws (0: every step)

  /// Learning-rate schedule: "constant"; "step" (lr * gamma^floor((epoch -
  /// 1) / stepSize)); "cosine" (from lr at the first step of the run down
  /// to lrMin at its last, per step).  The kernel reads the result as "lr".
  std::string schedule = "constant";
  double stepSize = 1, gamma = 0.1, lrMin = 0;

  /// Continue from this checkpoint (runtime/Checkpoint.h): params, state,
  /// epochs completed and global step; it must have been written with the
  /// same seed.  Overrides firstEpoch and firstStep.
  std::string resumePath;
  /// Start from the params of this safetensors file (state is initialized
  /// as usual).  Excludes resumePath.
  std::string initPath;
  /// Where training starts when the caller restored a checkpoint itself:
  /// the first epoch to run and the global step it starts at.
  int64_t firstEpoch = 1;
  uint64_t firstStep = 0;
  /// Write a checkpoint here after every epoch, and at the end of a run that
  /// ran no epoch (so --epochs=0 --save exports the initial weights).
  std::string savePath;
  std::string modelName;                                 ///< recorded in checkpoints
  std::map<std::string, std::string> checkpointMetadata; ///< more metadata for checkpoints

  /// Called when a step's loss or objective is not finite, with the state
  /// that step started from (see the file comment); returns text to append
  /// to the error.  Empty: no snapshot, no replay.
  std::function<std::string(const StepReplay &)> diagnose;

  /// Called around every training step; null: none.  Not owned.
  StepObserver *observer = nullptr;

  /// When set, the kernels other than TrainKernels::step may still be
  /// compiling as training starts (their specs complete, `fn` null): the
  /// trainer calls this once, on its own thread, before it first calls any
  /// of them.  It waits for them, sets their `fn`, and returns false with
  /// `error` if they did not compile.
  std::function<bool(std::string &error)> awaitLateKernels;
};

/// The exact situation before a step whose loss or objective was not
/// finite, for TrainOptions::diagnose.  Pointers are valid during the call.
struct StepReplay {
  int64_t epoch = 0;                  ///< 1-based
  uint64_t step = 0;                  ///< the global step (ctx->step)
  int64_t callInEpoch = 0;            ///< 0-based index of the batch in its epoch
  const KernelSpec *kernel = nullptr; ///< the kernel that ran it: the step or its tail
  /// What the kernel was called with: buffers (params and state hold the
  /// pre-step values, input and target the step's batch), arena, seed,
  /// step, hypers (the scheduled lr), pool.  Calling kernel->fn(ctx)
  /// reproduces the bad step (and updates the store).
  const gradc_step_context *ctx = nullptr;
  const float *input = nullptr; ///< the batch fed: examples x features
  const void *target = nullptr; ///< int32_t labels or float targets
  bool intTargets = false;
  int64_t examples = 0;                    ///< rows of the batch
  const int64_t *exampleIndices = nullptr; ///< their indices in the training set
  float lr = 0;                            ///< this step's learning rate
  float loss = 0, objective = 0;           ///< what the bad step produced
  TensorStore *store = nullptr;
  /// False if the replayed steps did not reproduce the recorded losses bit
  /// for bit (a non-deterministic kernel): the state is then approximate.
  bool replayExact = true;
};

/// The learning rate of global step `step` (0-based) in epoch `epoch`
/// (1-based) of a run of `totalSteps` steps.  Computed with
/// runtime/Random.h's cosine and repeated multiplication, never libm, so
/// it is the same bits everywhere.
double scheduledLearningRate(const TrainOptions &options, uint64_t step, int64_t epoch,
                             uint64_t totalSteps);

struct EpochStats {
  int64_t epoch = 0;         ///< 1-based
  double trainLoss = 0;      ///< mean of "loss" over the epoch's examples
  double trainObjective = 0; ///< mean of "objective" over the epoch's examples
  double testLoss = 0;       ///< mean of the eval kernel's "loss" over the test set; NaN if none
  double testAccuracy = 0;   ///< fraction of test examples whose "prediction" argmax is the label;
                             ///< NaN unless classifying
  double seconds = 0;        ///< wall time of the epoch's training steps (not evaluation)
  int64_t samples = 0;       ///< training examples consumed in the epoch
  int64_t steps = 0;         ///< kernel calls in the epoch (tail included)
  double lr = 0;             ///< the learning rate of the epoch's last step
};

/// The kernels of one training run.
struct TrainKernels {
  const KernelSpec *step = nullptr; ///< the training step (required)
  /// The training step for the last train.size % step->batch examples of
  /// an epoch; optional (then they are skipped).  Ignored when the batch
  /// divides the data.
  const KernelSpec *stepTail = nullptr;
  const KernelSpec *eval = nullptr; ///< inference for the test set; optional
  /// Inference for the last test.size % eval->batch test examples; optional.
  const KernelSpec *evalTail = nullptr;
};

/// Trains with kernels.step on `trainData`, evaluating `testData` (may be
/// empty) with kernels.eval (may be null: then no test loss) after every
/// epoch.  Adds the kernels to `store` (creating and initializing missing
/// params and state), then applies options.initPath or options.resumePath.
/// Appends one EpochStats per finished epoch to `history` (may be null).
/// Returns false and sets `error` to a full message on failure: a kernel
/// that does not fit the contract or the data, a tail kernel of the wrong
/// batch, an unreadable or mismatched checkpoint, an unwritable metrics or
/// checkpoint file, a loss that became NaN or Inf.
bool train(const TrainKernels &kernels, TensorStore &store, const Dataset &trainData,
           const Dataset &testData, const TrainOptions &options, std::vector<EpochStats> *history,
           std::string &error);

/// The same without tail kernels.
bool train(const KernelSpec &step, const KernelSpec *eval, TensorStore &store,
           const Dataset &trainData, const Dataset &testData, const TrainOptions &options,
           std::vector<EpochStats> *history, std::string &error);

/// Loss and, for class labels, accuracy of an inference kernel over a data set.
struct EvalResult {
  double loss = 0;      ///< mean over the examples evaluated
  double accuracy = 0;  ///< NaN unless classifying
  int64_t examples = 0; ///< examples evaluated
  int64_t skipped = 0;  ///< examples left over (no tail kernel)
};

/// Evaluates all of `data` with `eval` and, for the last data.size %
/// eval.batch examples, `tail` (may be null: then they are skipped and
/// counted in result.skipped).  Uses options.threads and options.seed
/// (ctx.step = 0).  For `gradc eval`.
bool evaluate(const KernelSpec &eval, const KernelSpec *tail, TensorStore &store,
              const Dataset &data, const TrainOptions &options, EvalResult &result,
              std::string &error);

/// evaluate() without a tail kernel.
bool evaluateDataset(const KernelSpec &eval, TensorStore &store, const Dataset &data,
                     const TrainOptions &options, EvalResult &result, std::string &error);

/// The example order of `epoch`: a Fisher-Yates shuffle of 0..n-1 driven by
/// Philox with key = seed, counter = (draw / 2, epoch, kShuffleDomain, 0).
/// Depends only on (n, seed, epoch).  Resizes `order` to n.
void epochPermutation(int64_t n, uint64_t seed, int64_t epoch, std::vector<int64_t> &order);

} // namespace gradc::rt
