//===- runtime/Trainer.cpp - The training driver --------------------------===//
//
// Everything a step needs (bindings, hyperparameters, arenas, the example
// order, the thread pool, the progress line's buffer, the NaN guard's
// snapshot) is set up before the first epoch; the loop itself only copies
// examples, calls the kernel and adds up two numbers.
//
//===----------------------------------------------------------------------===//
#include "runtime/Trainer.h"
#include "runtime/Checkpoint.h"
#include "runtime/Random.h"
#include "runtime/ThreadPool.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fstream>
#include <limits>
#include <new>
#include <optional>
#include <sstream>
#include <system_error>
#include <tuple>
#include <unistd.h>

namespace gradc::rt {

namespace {

/// Width of the epoch number in log lines ("epoch   3/10"), at least.
constexpr int kMinEpochWidth = 3;

/// The hyperparameters the trainer knows how to set.
constexpr const char *kLearningRateHyper = "lr";

/// Characters of the progress bar between its brackets.
constexpr int kProgressBarWidth = 24;

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// How the trainer feeds one kernel from one data set.
struct Feed {
  const KernelSpec *kernel = nullptr;
  int64_t examplesPerCall = 1;
  int64_t featureSize = 0, targetSize = 0;
  float *input = nullptr;
  void *target = nullptr; ///< float or int32_t, as the data
  const float *loss = nullptr;
  const float *objective = nullptr;  ///< null: the kernel has none
  const float *prediction = nullptr; ///< class scores for accuracy; null: none
  int64_t predictionSize = 0;        ///< elements of the prediction per call
  int learningRateIndex = -1;        ///< in hypers, or -1
  std::vector<float> hypers;         ///< ctx.hypers
  AlignedBuffer arena;
  gradc_step_context ctx{};
};

/// The single buffer of `role` in `kernel`, or an error.
bool findSingle(const KernelSpec &kernel, Role role, const TensorSpec *&found, std::string &error) {
  found = nullptr;
  for (const TensorSpec &spec : kernel.buffers) {
    if (spec.role != role)
      continue;
    if (found) {
      error = fmt::format("kernel '{}' has more than one {} ('{}' and '{}'); the trainer feeds "
                          "exactly one",
                          kernel.name, roleName(role), found->name, spec.name);
      return false;
    }
    found = &spec;
  }
  if (!found) {
    error = fmt::format("kernel '{}' has no {} buffer; the trainer feeds exactly one", kernel.name,
                        roleName(role));
    return false;
  }
  return true;
}

/// The scalar f32 output `name` of `kernel`; null and no error if it is
/// absent and optional.
bool findScalarOutput(const KernelSpec &kernel, const char *name, bool required,
                      const TensorSpec *&found, std::string &error) {
  int index = kernel.find(name);
  found = index < 0 ? nullptr : &kernel.buffers[index];
  if (!found) {
    if (required)
      error = fmt::format("kernel '{}' has no output '{}'", kernel.name, name);
    return !required;
  }
  if (found->role != Role::Output || found->isInt || found->numel() != 1) {
    error =
        fmt::format("kernel '{}': '{}' must be a scalar f32 output, but it is {}{} {}", kernel.name,
                    name, found->isInt ? "i32" : "f32", found->shapeStr(), roleName(found->role));
    return false;
  }
  return true;
}

/// Checks `kernel` against the contract and `data`, adds it to `store` and
/// fills `feed`.  `what` names the data set in messages.
bool prepareFeed(const KernelSpec &kernel, const Dataset &data, const char *what,
                 const TrainOptions &options, TensorStore &store, ThreadPool &pool, Feed &feed,
                 std::string &error) {
  feed.kernel = &kernel;
  if (kernel.batch < 0) {
    error = fmt::format("kernel '{}' has a negative batch size {}", kernel.name, kernel.batch);
    return false;
  }
  if (std::string problem = data.check(); !problem.empty()) {
    error = fmt::format("{} data: {}", what, problem);
    return false;
  }

  const TensorSpec *input, *target, *loss, *objective;
  if (!findSingle(kernel, Role::Input, input, error) ||
      !findSingle(kernel, Role::Target, target, error) ||
      !findScalarOutput(kernel, "loss", /*required=*/true, loss, error) ||
      !findScalarOutput(kernel, "objective", /*required=*/false, objective, error))
    return false;

  feed.examplesPerCall = kernel.batch > 0 ? kernel.batch : 1;
  feed.featureSize = data.featureSize();
  feed.targetSize = data.targetSize();
  auto shapeMismatch = [&](const TensorSpec &spec, const std::vector<int64_t> &exampleDims,
                           int64_t exampleSize) {
    std::string holds = kernel.batch > 0 ? fmt::format("a batch of {} examples", kernel.batch)
                                         : std::string("one example");
    error = fmt::format("kernel '{}': {} '{}' has shape {}, which does not hold {} of the {} "
                        "data's shape {} ({} elements each)",
                        kernel.name, roleName(spec.role), spec.name, spec.shapeStr(), holds, what,
                        fmt::format("[{}]", fmt::join(exampleDims, ",")), exampleSize);
    return false;
  };
  for (auto [spec, dims, size] : {std::tuple{input, &data.featureDims, feed.featureSize},
                                  std::tuple{target, &data.targetDims, feed.targetSize}}) {
    bool batchOk = kernel.batch == 0 || (!spec->dims.empty() && spec->dims[0] == kernel.batch);
    if (!batchOk || spec->numel() != feed.examplesPerCall * size)
      return shapeMismatch(*spec, *dims, size);
  }
  if (input->isInt) {
    error = fmt::format("kernel '{}': input '{}' is i32; the trainer feeds f32 features",
                        kernel.name, input->name);
    return false;
  }
  if (target->isInt != data.intTargets) {
    error = fmt::format("kernel '{}': target '{}' is {} but the {} data has {} targets",
                        kernel.name, target->name, target->isInt ? "i32" : "f32", what,
                        data.intTargets ? "i32 (class label)" : "f32");
    return false;
  }

  feed.hypers.assign(kernel.hypers.size(), 0.0f);
  for (size_t i = 0; i < kernel.hypers.size(); ++i) {
    if (kernel.hypers[i] != kLearningRateHyper) {
      error = fmt::format("kernel '{}' reads the hyperparameter '{}', which the trainer does not "
                          "know (it sets: {})",
                          kernel.name, kernel.hypers[i], kLearningRateHyper);
      return false;
    }
    feed.learningRateIndex = static_cast<int>(i);
    feed.hypers[i] = options.lr;
  }

  if (!store.addKernel(kernel, error))
    return false;
  feed.input = store.find(kernel.name, input->name)->f32();
  feed.target = store.find(kernel.name, target->name)->data();
  feed.loss = store.find(kernel.name, loss->name)->f32();
  feed.objective = objective ? store.find(kernel.name, objective->name)->f32() : nullptr;
  // Class scores, one row per example, for the accuracy of an eval kernel.
  if (int index = kernel.find("prediction");
      index >= 0 && !kernel.buffers[index].isInt && kernel.buffers[index].role == Role::Output &&
      kernel.buffers[index].numel() % feed.examplesPerCall == 0) {
    feed.prediction = store.find(kernel.name, "prediction")->f32();
    feed.predictionSize = kernel.buffers[index].numel();
  }

  try {
    feed.arena = allocateArena(kernel);
  } catch (const std::bad_alloc &) {
    error = fmt::format("kernel '{}': out of memory allocating its {}-byte arena", kernel.name,
                        kernel.arenaBytes);
    return false;
  }
  feed.ctx.buffers = store.bindings(kernel.name).data();
  feed.ctx.arena = feed.arena.as<char>();
  feed.ctx.seed = options.seed;
  feed.ctx.hypers = feed.hypers.data();
  feed.ctx.pool = &pool;
  return true;
}

/// An error unless each kernel of `kernels` (null entries skipped) has its
/// code.  Checked apart from prepareFeed: a kernel may be set up for
/// feeding while it is still compiling (TrainOptions::awaitLateKernels).
bool checkCompiled(std::initializer_list<const KernelSpec *> kernels, std::string &error) {
  for (const KernelSpec *kernel : kernels)
    if (kernel && !kernel->fn) {
      error = fmt::format("kernel '{}' has no compiled function", kernel->name);
      return false;
    }
  return true;
}

/// Copies examples order[first, first + examplesPerCall) (or first,
/// first + 1, ... when order is null) into the kernel's input and target.
/// A big batch is copied on the kernel's thread pool: the copy (bytes to
/// floats for IDX pixels) was 5% of a Fashion-MNIST step, with the second
/// core idle.
void loadExamples(Feed &feed, const Dataset &data, const int64_t *order, int64_t first) {
  const size_t targetBytes = feed.targetSize * sizeof(float); // i32 has the same size
  static_assert(sizeof(float) == sizeof(int32_t));
  auto *target = static_cast<char *>(feed.target);
  auto copy = [&](int64_t begin, int64_t end) {
    // Prefetching two rows ahead took the copy of a shuffled Fashion-MNIST
    // batch from 63 to 38 us (a one-off C microbenchmark of this loop).
    constexpr int64_t kPrefetchAhead = 2;
    for (int64_t slot = begin; slot < end; ++slot) {
      if (slot + kPrefetchAhead < end)
        data.prefetchFeatures(order ? order[first + slot + kPrefetchAhead]
                                    : first + slot + kPrefetchAhead);
      int64_t example = order ? order[first + slot] : first + slot;
      data.copyFeatures(example, feed.input + slot * feed.featureSize);
      const void *source =
          data.intTargets ? static_cast<const void *>(&data.targetsI[example * feed.targetSize])
                          : static_cast<const void *>(&data.targetsF[example * feed.targetSize]);
      std::memcpy(target + slot * targetBytes, source, targetBytes);
    }
  };
  // Below this many features the pool's hand-off costs more than it saves.
  constexpr int64_t kParallelFeatures = int64_t(1) << 14;
  auto *pool = static_cast<ThreadPool *>(feed.ctx.pool);
  if (pool && feed.examplesPerCall * feed.featureSize >= kParallelFeatures)
    pool->parallelFor(feed.examplesPerCall, copy);
  else
    copy(0, feed.examplesPerCall);
}

/// One pass over a data set: full batches of the main kernel, then the
/// remainder with the tail kernel, if there is one.
struct Pass {
  Feed main, tail;
  bool hasTail = false;
  int64_t fullCalls = 0;
  int64_t remainder = 0; ///< examples after the full batches

  int64_t calls() const { return fullCalls + (hasTail ? 1 : 0); }
  Feed &feedOf(int64_t call) { return call < fullCalls ? main : tail; }
  /// The first example (position in the pass) of call `call`.
  int64_t firstExample(int64_t call) const { return call * main.examplesPerCall; }
  int64_t examples() const { return fullCalls * main.examplesPerCall + (hasTail ? remainder : 0); }
  int64_t skipped() const { return hasTail ? 0 : remainder; }
};

/// Prepares `kernel` and, when the batch leaves a remainder, `tail` (may be
/// null) to feed from `data`.
bool preparePass(const KernelSpec &kernel, const KernelSpec *tail, const Dataset &data,
                 const char *what, const TrainOptions &options, TensorStore &store,
                 ThreadPool &pool, Pass &pass, std::string &error) {
  if (!prepareFeed(kernel, data, what, options, store, pool, pass.main, error))
    return false;
  pass.fullCalls = data.size / pass.main.examplesPerCall;
  pass.remainder = data.size % pass.main.examplesPerCall;
  if (!tail || pass.remainder == 0)
    return true;
  if (tail->batch != pass.remainder) {
    error = fmt::format("tail kernel '{}' has batch {}, but the {} data's {} examples leave {} "
                        "after {} batches of {}",
                        tail->name, tail->batch, what, data.size, pass.remainder, pass.fullCalls,
                        pass.main.examplesPerCall);
    return false;
  }
  if (tail->name == kernel.name) {
    error = fmt::format("tail kernel '{}' has the name of the kernel it completes; the store keeps "
                        "their inputs apart by name",
                        tail->name);
    return false;
  }
  pass.hasTail = true;
  return prepareFeed(*tail, data, what, options, store, pool, pass.tail, error);
}

/// Appends `value` with thousands separators ("48,000"), without allocating.
void appendThousands(fmt::memory_buffer &out, int64_t value) {
  if (value < 0) {
    out.push_back('-');
    value = -value;
  }
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  const int64_t count = end - digits;
  for (int64_t i = 0; i < count; ++i) {
    if (i > 0 && (count - i) % 3 == 0)
      out.push_back(',');
    out.push_back(digits[i]);
  }
}

/// "48,000": an integer with thousands separators, for people.
std::string withThousands(double value) {
  fmt::memory_buffer out;
  appendThousands(out, std::llround(value));
  return fmt::to_string(out);
}

/// A loss for the epoch line: fixed point unless it would print as zeros.
std::string formatLoss(double value) {
  constexpr double kSmallestFixed = 1e-4;
  if (value != 0 && std::fabs(value) < kSmallestFixed)
    return fmt::format("{:.4e}", value);
  return fmt::format("{:.6f}", value);
}

/// The metrics CSV, rewritten in full through a temporary file after every
/// epoch, so a crash leaves either the previous or the new version.
class MetricsFile {
public:
  /// A resumed run (firstEpoch > 1) keeps the rows of the epochs before
  /// firstEpoch from an existing file with the same header, so the file
  /// reads like that of an uninterrupted run.
  MetricsFile(std::string path, int64_t firstEpoch) : path_(std::move(path)) {
    content_ = std::string(kMetricsHeader) + "\n";
    if (path_.empty() || firstEpoch <= 1)
      return;
    std::ifstream in(path_);
    std::string line;
    if (!std::getline(in, line) || line != kMetricsHeader)
      return;
    while (std::getline(in, line)) {
      int64_t epoch = 0;
      auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), epoch);
      if (ec != std::errc() || *end != ',' || epoch >= firstEpoch)
        break;
      content_ += line + "\n";
    }
  }

  bool enabled() const { return !path_.empty(); }

  void addRow(const EpochStats &stats, bool hasTest) {
    double perSecond = stats.seconds > 0 ? stats.samples / stats.seconds : 0.0;
    content_ += fmt::format(
        "{},{},{},{},{},{},{}\n", stats.epoch, stats.trainLoss, stats.trainObjective,
        hasTest ? fmt::format("{}", stats.testLoss) : std::string(),
        std::isnan(stats.testAccuracy) ? std::string() : fmt::format("{}", stats.testAccuracy),
        stats.seconds, perSecond);
  }

  bool save(std::string &error) const {
    if (!enabled())
      return true;
    if (!replaceableByRename(path_, "metrics file", error))
      return false;
    std::string temporary = path_ + ".tmp";
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out << content_;
      out.flush();
      if (!out) {
        error =
            fmt::format("cannot write the metrics file '{}': {}", temporary, std::strerror(errno));
        return false;
      }
    }
    std::error_code ec;
    std::filesystem::rename(temporary, path_, ec);
    if (ec) {
      error = fmt::format("cannot rename '{}' to the metrics file '{}': {}", temporary, path_,
                          ec.message());
      return false;
    }
    return true;
  }

private:
  std::string path_;
  std::string content_;
};

/// Whether `log` writes to a terminal: only std::cout and std::cerr (or
/// std::clog) have a file descriptor to ask.
bool isTerminal(const std::ostream *log) {
  if (log == &std::cout || (log && log->rdbuf() == std::cout.rdbuf()))
    return ::isatty(STDOUT_FILENO);
  if (log == &std::cerr || log == &std::clog ||
      (log && (log->rdbuf() == std::cerr.rdbuf() || log->rdbuf() == std::clog.rdbuf())))
    return ::isatty(STDERR_FILENO);
  return false;
}

/// The updating progress line of an epoch.  Formats into a buffer that
/// lives as long as the run (fmt::memory_buffer keeps 500 bytes inline), so
/// a redraw inside the step loop allocates nothing.
class ProgressLine {
public:
  ProgressLine(const TrainOptions &options, int64_t total, int epochWidth)
      : log_(options.log), interval_(options.progressInterval), total_(total),
        epochWidth_(epochWidth), epochs_(options.epochs) {
    enabled_ = log_ && (options.progress == ProgressMode::Always ||
                        (options.progress == ProgressMode::Auto && isTerminal(log_)));
  }

  void startEpoch(int64_t epoch) {
    epoch_ = epoch;
    start_ = lastDraw_ = Clock::now();
  }

  /// After a step: `done` examples so far in the epoch, `lossSum` their
  /// summed losses.
  void update(int64_t done, double lossSum) {
    if (!enabled_)
      return;
    Clock::time_point now = Clock::now();
    if (std::chrono::duration<double>(now - lastDraw_).count() < interval_ && done < total_)
      return;
    lastDraw_ = now;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
    buffer_.clear();
    auto out = fmt::appender(buffer_);
    fmt::format_to(out, "\repoch {:>{}}/{} [", epoch_, epochWidth_, epochs_);
    int filled = total_ > 0 ? int(kProgressBarWidth * done / total_) : kProgressBarWidth;
    for (int i = 0; i < kProgressBarWidth; ++i)
      buffer_.push_back(i < filled ? '=' : i == filled ? '>' : ' ');
    fmt::format_to(out, "]  ");
    appendThousands(buffer_, done);
    buffer_.push_back('/');
    appendThousands(buffer_, total_);
    fmt::format_to(out, "  ");
    appendThousands(buffer_, std::llround(rate));
    fmt::format_to(out, " samples/s  loss {:.6f}", done > 0 ? lossSum / double(done) : 0.0);
    if (rate > 0) {
      auto left = int64_t(double(total_ - done) / rate + 0.5);
      fmt::format_to(out, "  ETA {}:{:02}", left / 60, left % 60);
    }
    fmt::format_to(out, "\x1b[K"); // clear what a longer previous line left
    log_->write(buffer_.data(), std::streamsize(buffer_.size()));
    log_->flush();
    drawn_ = true;
  }

  /// Erases the line before the epoch's permanent line is printed.
  void finishEpoch() {
    if (drawn_)
      *log_ << "\r\x1b[K";
    drawn_ = false;
  }

private:
  std::ostream *log_;
  double interval_;
  int64_t total_;
  int epochWidth_;
  int64_t epochs_;
  bool enabled_ = false, drawn_ = false;
  int64_t epoch_ = 0;
  Clock::time_point start_, lastDraw_;
  fmt::memory_buffer buffer_;
};

/// Runs every call of `pass` over `data` in order and returns the mean loss
/// and, for class labels and a "prediction" of one row of scores per
/// example, the accuracy (argmax, ties to the lowest class); an error if
/// the loss is not finite.
bool evaluatePass(Pass &pass, const Dataset &data, uint64_t step, double &meanLoss,
                  double &accuracy, std::string &error) {
  double lossSum = 0;
  int64_t correct = 0, examples = 0;
  bool classifying = data.intTargets;
  for (int64_t call = 0; call < pass.calls(); ++call) {
    Feed &feed = pass.feedOf(call);
    const int64_t first = pass.firstExample(call);
    loadExamples(feed, data, nullptr, first);
    feed.ctx.step = step;
    feed.kernel->fn(&feed.ctx);
    lossSum += double(*feed.loss) * double(feed.examplesPerCall);
    examples += feed.examplesPerCall;
    classifying = classifying && feed.prediction;
    const int64_t classes = classifying ? feed.predictionSize / feed.examplesPerCall : 0;
    for (int64_t e = 0; classes > 0 && e < feed.examplesPerCall; ++e) {
      const float *row = feed.prediction + e * classes;
      int64_t best = 0;
      for (int64_t c = 1; c < classes; ++c)
        if (row[c] > row[best])
          best = c;
      correct += best == data.targetsI[(first + e) * data.targetSize()];
    }
  }
  accuracy = classifying && examples > 0 ? double(correct) / double(examples)
                                         : std::numeric_limits<double>::quiet_NaN();
  meanLoss = lossSum / double(examples);
  if (!std::isfinite(meanLoss)) {
    error = fmt::format("the {} loss is {}", pass.main.kernel->name,
                        std::isnan(meanLoss) ? "NaN" : "Inf");
    return false;
  }
  return true;
}

/// " (last 16 examples ...)" notes for the first epoch line.
std::string remainderNotes(const Pass &train, const Dataset &trainData, const Pass *test,
                           const Dataset &testData) {
  std::string notes;
  if (train.skipped())
    notes += fmt::format("  (last {} examples of each epoch skipped: batch {} does not divide {})",
                         train.skipped(), train.main.examplesPerCall, trainData.size);
  else if (train.hasTail)
    notes += fmt::format("  (each epoch ends with a batch of {} by '{}': {} = {} x {} + {})",
                         train.remainder, train.tail.kernel->name, trainData.size, train.fullCalls,
                         train.main.examplesPerCall, train.remainder);
  if (test && test->skipped())
    notes += fmt::format("  (last {} test examples skipped: batch {} of kernel '{}' does not "
                         "divide {})",
                         test->skipped(), test->main.examplesPerCall, test->main.kernel->name,
                         testData.size);
  return notes;
}

/// "W1 (20 of 20), b (1 of 1)": the f32 params and state holding values
/// that are not finite.
std::string nonFiniteTensors(const TensorStore &store) {
  std::string out;
  for (const Tensor *t : store.persistent()) {
    if (t->spec.isInt)
      continue;
    int64_t bad = 0;
    for (int64_t i = 0; i < t->numel(); ++i)
      bad += !std::isfinite(t->f32()[i]);
    if (bad)
      out += fmt::format("{}{} ({} of {})", out.empty() ? "" : ", ", t->spec.name, bad, t->numel());
  }
  return out;
}

/// One copy of all params and state, taken at the start of an epoch for
/// the NaN guard's replay.  Allocated once.
class Snapshot {
public:
  explicit Snapshot(const TensorStore &store) {
    int64_t bytes = 0;
    for (const Tensor *t : store.persistent())
      bytes += t->spec.bytes();
    copy_ = AlignedBuffer(bytes);
  }
  void take(const TensorStore &store) {
    char *to = copy_.as<char>();
    for (const Tensor *t : store.persistent()) {
      std::memcpy(to, t->data(), size_t(t->spec.bytes()));
      to += t->spec.bytes();
    }
  }
  void restore(const TensorStore &store) const {
    const char *from = copy_.as<char>();
    for (const Tensor *t : store.persistent()) {
      std::memcpy(t->data(), from, size_t(t->spec.bytes()));
      from += t->spec.bytes();
    }
  }

private:
  AlignedBuffer copy_;
};

/// The metadata of a checkpoint written after `epoch` epochs and `step` steps.
CheckpointInfo checkpointInfo(const TrainOptions &options, int64_t epoch, uint64_t step) {
  CheckpointInfo info;
  info.model = options.modelName;
  info.seed = options.seed;
  info.epoch = epoch;
  info.step = step;
  info.extra = options.checkpointMetadata;
  return info;
}

bool knownSchedule(const std::string &schedule) {
  return schedule == "constant" || schedule == "step" || schedule == "cosine";
}

/// One call of train(): the passes, the order, the bookkeeping of epochs.
class TrainingRun {
public:
  TrainingRun(const TrainKernels &kernels, TensorStore &store, const Dataset &trainData,
              const Dataset &testData, const TrainOptions &options)
      : kernels_(kernels), store_(store), trainData_(trainData), testData_(testData),
        options_(options), pool_(options.threads) {}

  /// Checks the options and kernels, creates the buffers, reads a checkpoint.
  bool setUp(std::string &error);
  /// Runs epochs firstEpoch_..options.epochs.
  bool run(std::vector<EpochStats> *history, std::string &error);

private:
  bool loadStartingPoint(std::string &error);
  /// Waits, the first time only, for the kernels compiled in the background
  /// (TrainOptions::awaitLateKernels); an error if they did not compile.
  bool awaitLateKernels(std::string &error);
  /// checkCompiled on the kernels that may compile late: all but the step.
  bool checkLateCompiled(std::string &error) const {
    return checkCompiled({kernels_.stepTail, kernels_.eval, kernels_.evalTail}, error);
  }
  /// Loads call `call`'s batch into its kernel's buffers, sets step and lr.
  Feed &prepareStep(int64_t call, uint64_t globalStep, int64_t epoch);
  /// prepareStep, then runs the kernel.
  Feed &runStep(int64_t call, uint64_t globalStep, int64_t epoch);
  /// The error for a non-finite loss or objective of `call`, diagnosed.
  std::string badStep(Feed &feed, int64_t call, uint64_t globalStep, int64_t epoch,
                      uint64_t epochStartStep);
  double rateAt(uint64_t globalStep, int64_t epoch) const {
    return scheduledLearningRate(options_, globalStep, epoch, totalSteps_);
  }
  void logEpoch(const EpochStats &stats);

  const TrainKernels &kernels_;
  TensorStore &store_;
  const Dataset &trainData_, &testData_;
  const TrainOptions &options_;
  ThreadPool pool_;
  Pass trainPass_, testPass_;
  bool hasTest_ = false;
  int64_t firstEpoch_ = 1;
  uint64_t firstStep_ = 0;
  uint64_t totalSteps_ = 0;
  std::vector<int64_t> order_;
  /// The NaN guard's replay: the state at the start of the epoch and the
  /// losses of its steps so far (set up only with options.diagnose).
  std::optional<Snapshot> snapshot_;
  std::vector<float> recordedLoss_;
  std::string observerReport_; ///< what the observer has to say after a step
  bool lateKernelsReady_ = false;
};

bool TrainingRun::setUp(std::string &error) {
  if (!kernels_.step) {
    error = "no training step kernel";
    return false;
  }
  if (options_.epochs < 0) {
    error = fmt::format("the number of epochs must be >= 0, got {}", options_.epochs);
    return false;
  }
  if (!std::isfinite(options_.lr)) {
    error = fmt::format("the learning rate must be finite, got {}", options_.lr);
    return false;
  }
  if (!knownSchedule(options_.schedule)) {
    error = fmt::format("unknown learning-rate schedule '{}'; expected constant, step or cosine",
                        options_.schedule);
    return false;
  }
  if (!options_.resumePath.empty() && !options_.initPath.empty()) {
    error = "resuming from a checkpoint and initializing from one exclude each other";
    return false;
  }
  lateKernelsReady_ = !options_.awaitLateKernels;
  if (!checkCompiled({kernels_.step}, error) || (lateKernelsReady_ && !checkLateCompiled(error)) ||
      !preparePass(*kernels_.step, kernels_.stepTail, trainData_, "training", options_, store_,
                   pool_, trainPass_, error))
    return false;
  if (trainPass_.calls() == 0) {
    error = fmt::format("the training data has {} examples, fewer than one batch of {}",
                        trainData_.size, trainPass_.main.examplesPerCall);
    return false;
  }
  hasTest_ = kernels_.eval && !testData_.empty();
  if (hasTest_) {
    if (!preparePass(*kernels_.eval, kernels_.evalTail, testData_, "test", options_, store_, pool_,
                     testPass_, error))
      return false;
    if (testPass_.calls() == 0) {
      error = fmt::format("the test data has {} examples, fewer than one batch of {} of kernel "
                          "'{}'",
                          testData_.size, testPass_.main.examplesPerCall, kernels_.eval->name);
      return false;
    }
  }
  totalSteps_ = uint64_t(trainPass_.calls()) * uint64_t(options_.epochs);
  if (options_.diagnose) {
    snapshot_.emplace(store_);
    recordedLoss_.assign(size_t(trainPass_.calls()), 0.0f);
  }
  return loadStartingPoint(error);
}

bool TrainingRun::awaitLateKernels(std::string &error) {
  if (lateKernelsReady_)
    return true;
  lateKernelsReady_ = true;
  return options_.awaitLateKernels(error) && checkLateCompiled(error);
}

bool TrainingRun::loadStartingPoint(std::string &error) {
  firstEpoch_ = options_.firstEpoch;
  firstStep_ = options_.firstStep;
  if (options_.initPath.empty() && options_.resumePath.empty())
    return true;
  const bool resume = !options_.resumePath.empty();
  const std::string &path = resume ? options_.resumePath : options_.initPath;
  CheckpointInfo info;
  if (!loadCheckpoint(path, store_, resume ? CheckpointUse::Resume : CheckpointUse::Init, info,
                      error))
    return false;
  if (!resume)
    return true;
  // The shuffle order and the dropout masks depend on the seed: another
  // seed would not continue the same run.
  if (info.seed != options_.seed) {
    error = fmt::format("checkpoint '{}' was trained with seed {}, this run has seed {}; pass "
                        "--seed={} to resume it",
                        path, info.seed, options_.seed, info.seed);
    return false;
  }
  firstEpoch_ = info.epoch + 1;
  firstStep_ = info.step;
  if (options_.log)
    *options_.log << fmt::format("resuming from '{}' after epoch {} (step {})\n", path, info.epoch,
                                 info.step);
  return true;
}

Feed &TrainingRun::prepareStep(int64_t call, uint64_t globalStep, int64_t epoch) {
  Feed &feed = trainPass_.feedOf(call);
  loadExamples(feed, trainData_, order_.data(), trainPass_.firstExample(call));
  feed.ctx.step = globalStep;
  if (feed.learningRateIndex >= 0)
    feed.hypers[feed.learningRateIndex] = static_cast<float>(rateAt(globalStep, epoch));
  return feed;
}

Feed &TrainingRun::runStep(int64_t call, uint64_t globalStep, int64_t epoch) {
  Feed &feed = prepareStep(call, globalStep, epoch);
  feed.kernel->fn(&feed.ctx);
  return feed;
}

std::string TrainingRun::badStep(Feed &feed, int64_t call, uint64_t globalStep, int64_t epoch,
                                 uint64_t epochStartStep) {
  const float loss = *feed.loss;
  const float objective = feed.objective ? *feed.objective : loss;
  const bool lossBad = !std::isfinite(loss);
  const float bad = lossBad ? loss : objective;
  const double rate = rateAt(globalStep, epoch);
  const std::string afterStep = nonFiniteTensors(store_);
  std::string error = fmt::format(
      "{} became {} at epoch {}, step {}; try a smaller --lr (it is {}{}); {}",
      lossBad ? "loss" : "objective", std::isnan(bad) ? "NaN" : "Inf", epoch, globalStep,
      options_.lr, float(rate) != options_.lr ? fmt::format(", {} at this step", float(rate)) : "",
      afterStep.empty() ? "params and state are still finite after the step"
                        : "not finite after the step: " + afterStep);
  if (!snapshot_)
    return error;

  // Back to the start of the epoch, then forward to just before the bad
  // step; the replayed steps must reproduce the recorded losses.
  snapshot_->restore(store_);
  bool exact = true;
  for (int64_t c = 0; c < call; ++c) {
    Feed &replayed = runStep(c, epochStartStep + uint64_t(c), epoch);
    exact = exact && std::memcmp(replayed.loss, &recordedLoss_[size_t(c)], sizeof(float)) == 0;
  }
  prepareStep(call, globalStep, epoch); // the same feed, as the bad step had it
  StepReplay replay;
  replay.epoch = epoch;
  replay.step = globalStep;
  replay.callInEpoch = call;
  replay.kernel = feed.kernel;
  replay.ctx = &feed.ctx;
  replay.input = feed.input;
  replay.target = feed.target;
  replay.intTargets = trainData_.intTargets;
  replay.examples = feed.examplesPerCall;
  replay.exampleIndices = order_.data() + trainPass_.firstExample(call);
  replay.lr = float(rate);
  replay.loss = loss;
  replay.objective = objective;
  replay.store = &store_;
  replay.replayExact = exact;
  std::string diagnosis = options_.diagnose(replay);
  if (!exact)
    error += "\n(replaying the epoch did not reproduce its losses bit for bit: a kernel is not "
             "deterministic, so the state diagnosed is approximate)";
  if (!diagnosis.empty())
    error += "\n" + diagnosis;
  return error;
}

void TrainingRun::logEpoch(const EpochStats &stats) {
  if (!options_.log)
    return;
  const int epochWidth = std::max<int>(kMinEpochWidth, fmt::formatted_size("{}", options_.epochs));
  double perSecond = stats.seconds > 0 ? double(stats.samples) / stats.seconds : 0.0;
  std::string test = hasTest_ ? fmt::format("  test {}", formatLoss(stats.testLoss)) : "";
  if (!std::isnan(stats.testAccuracy))
    test += fmt::format("  accuracy {:.4f}", stats.testAccuracy);
  std::string notes =
      stats.epoch == firstEpoch_
          ? remainderNotes(trainPass_, trainData_, hasTest_ ? &testPass_ : nullptr, testData_)
          : "";
  *options_.log << fmt::format("epoch {:>{}}/{}  loss {}  objective {}{}  {:.2f} s  {} "
                               "samples/s{}\n",
                               stats.epoch, epochWidth, options_.epochs,
                               formatLoss(stats.trainLoss), formatLoss(stats.trainObjective), test,
                               stats.seconds, withThousands(perSecond), notes);
  options_.log->flush();
}

bool TrainingRun::run(std::vector<EpochStats> *history, std::string &error) {
  MetricsFile metrics(options_.metricsPath, firstEpoch_);
  if (!metrics.save(error)) // fail now, not after the first epoch
    return false;
  const int epochWidth = std::max<int>(kMinEpochWidth, fmt::formatted_size("{}", options_.epochs));
  ProgressLine progress(options_, trainPass_.examples(), epochWidth);

  uint64_t globalStep = firstStep_;
  for (int64_t epoch = firstEpoch_; epoch <= options_.epochs; ++epoch) {
    epochPermutation(trainData_.size, options_.seed, epoch, order_);
    if (snapshot_)
      snapshot_->take(store_);
    const uint64_t epochStartStep = globalStep;
    progress.startEpoch(epoch);
    Clock::time_point start = Clock::now();
    double lossSum = 0, objectiveSum = 0;
    int64_t done = 0;
    for (int64_t call = 0; call < trainPass_.calls(); ++call, ++globalStep) {
      if (call >= trainPass_.fullCalls && !awaitLateKernels(error)) {
        progress.finishEpoch();
        return false;
      }
      if (options_.observer)
        options_.observer->beforeStep(epoch, globalStep, *trainPass_.feedOf(call).kernel);
      Feed &feed = runStep(call, globalStep, epoch);
      if (options_.observer) {
        observerReport_.clear();
        options_.observer->afterStep(epoch, globalStep, *feed.kernel, observerReport_);
        if (!observerReport_.empty() && options_.log) {
          progress.finishEpoch();
          *options_.log << observerReport_;
          options_.log->flush();
        }
      }
      const float loss = *feed.loss;
      const float objective = feed.objective ? *feed.objective : loss;
      if (!std::isfinite(loss) || !std::isfinite(objective)) {
        progress.finishEpoch();
        error = badStep(feed, call, globalStep, epoch, epochStartStep);
        return false;
      }
      if (snapshot_)
        recordedLoss_[size_t(call)] = loss;
      // Losses are means over a batch; weighting by its size makes the
      // epoch's figure the mean over examples, tail batch included.
      lossSum += double(loss) * double(feed.examplesPerCall);
      objectiveSum += double(objective) * double(feed.examplesPerCall);
      done += feed.examplesPerCall;
      progress.update(done, lossSum);
    }
    const double seconds = secondsSince(start);
    progress.finishEpoch();

    EpochStats stats;
    stats.epoch = epoch;
    stats.trainLoss = lossSum / double(done);
    stats.trainObjective = objectiveSum / double(done);
    stats.testLoss = std::numeric_limits<double>::quiet_NaN();
    stats.testAccuracy = std::numeric_limits<double>::quiet_NaN();
    stats.seconds = seconds;
    stats.samples = done;
    stats.steps = trainPass_.calls();
    stats.lr = rateAt(globalStep - 1, epoch);
    if (hasTest_ && !awaitLateKernels(error))
      return false;
    if (hasTest_ && !evaluatePass(testPass_, testData_, globalStep, stats.testLoss,
                                  stats.testAccuracy, error)) {
      error = fmt::format("test loss became {} at epoch {}",
                          std::isnan(stats.testLoss) ? "NaN" : "Inf", epoch);
      return false;
    }
    logEpoch(stats);
    metrics.addRow(stats, hasTest_);
    if (!metrics.save(error))
      return false;
    if (!options_.savePath.empty() &&
        !saveCheckpoint(options_.savePath, store_, checkpointInfo(options_, epoch, globalStep),
                        error))
      return false;
    if (history)
      history->push_back(stats);
  }
  // A run without epochs (--epochs=0, or resumed at its end) still writes
  // the checkpoint it was asked for.
  if (firstEpoch_ > options_.epochs && !options_.savePath.empty() &&
      !saveCheckpoint(options_.savePath, store_,
                      checkpointInfo(options_, firstEpoch_ - 1, globalStep), error))
    return false;
  return true;
}

} // namespace

double scheduledLearningRate(const TrainOptions &options, uint64_t step, int64_t epoch,
                             uint64_t totalSteps) {
  if (options.schedule == "step") {
    // gamma^k by repeated multiplication: the same bits everywhere, unlike pow.
    double rate = options.lr;
    auto decays = int64_t(std::floor(double(epoch - 1) / std::max(1.0, options.stepSize)));
    for (int64_t k = 0; k < decays; ++k)
      rate *= options.gamma;
    return rate;
  }
  if (options.schedule == "cosine" && totalSteps > 1) {
    // cos(pi t) = cos(2 pi (t / 2)), t in [0, 1].
    double t = double(std::min(step, totalSteps - 1)) / double(totalSteps - 1);
    double sine = 0, cosine = 0;
    reproducibleSinCos2Pi(t / 2, sine, cosine);
    return options.lrMin + (options.lr - options.lrMin) * (1 + cosine) / 2;
  }
  return options.lr;
}

void epochPermutation(int64_t n, uint64_t seed, int64_t epoch, std::vector<int64_t> &order) {
  order.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    order[i] = i;
  // Draw k (k = 0, 1, ...) swaps position i = n-1-k with a uniform j in
  // [0, i]; it takes words 2(k%2), 2(k%2)+1 of block k/2 as 64 random bits,
  // scaled to [0, i] by a 128-bit multiply (bias < 2^-30 for any real n).
  std::array<uint32_t, 4> words{};
  for (int64_t k = 0; k + 1 < n; ++k) {
    if (k % 2 == 0)
      words = philoxBlock(seed, uint64_t(k / 2), uint32_t(epoch), kShuffleDomain);
    uint64_t bits = uint64_t(words[2 * (k % 2)]) << 32 | words[2 * (k % 2) + 1];
    int64_t i = n - 1 - k;
    auto j = int64_t((static_cast<unsigned __int128>(bits) * uint64_t(i + 1)) >> 64);
    std::swap(order[i], order[j]);
  }
}

bool evaluate(const KernelSpec &eval, const KernelSpec *tail, TensorStore &store,
              const Dataset &data, const TrainOptions &options, EvalResult &result,
              std::string &error) {
  std::optional<ThreadPool> pool;
  try {
    pool.emplace(options.threads);
  } catch (const std::runtime_error &e) {
    error = e.what();
    return false;
  }
  Pass pass;
  if (!checkCompiled({&eval, tail}, error) ||
      !preparePass(eval, tail, data, "evaluation", options, store, *pool, pass, error))
    return false;
  if (pass.calls() == 0) {
    error = fmt::format("the data has {} examples, fewer than one batch of {}", data.size,
                        pass.main.examplesPerCall);
    return false;
  }
  result.examples = pass.examples();
  result.skipped = pass.skipped();
  return evaluatePass(pass, data, 0, result.loss, result.accuracy, error);
}

bool evaluateDataset(const KernelSpec &eval, TensorStore &store, const Dataset &data,
                     const TrainOptions &options, EvalResult &result, std::string &error) {
  return evaluate(eval, nullptr, store, data, options, result, error);
}

bool train(const KernelSpec &step, const KernelSpec *eval, TensorStore &store,
           const Dataset &trainData, const Dataset &testData, const TrainOptions &options,
           std::vector<EpochStats> *history, std::string &error) {
  return train(TrainKernels{&step, nullptr, eval, nullptr}, store, trainData, testData, options,
               history, error);
}

bool train(const TrainKernels &kernels, TensorStore &store, const Dataset &trainData,
           const Dataset &testData, const TrainOptions &options, std::vector<EpochStats> *history,
           std::string &error) {
  std::optional<TrainingRun> run;
  try {
    run.emplace(kernels, store, trainData, testData, options);
  } catch (const std::runtime_error &e) { // the thread pool's threads
    error = e.what();
    return false;
  }
  return run->setUp(error) && run->run(history, error);
}

} // namespace gradc::rt
