//===- runtime/Trainer.cpp - The training driver --------------------------===//
//
// Everything a step needs (bindings, hyperparameters, arena, the example
// order, the thread pool) is set up before the first epoch; the loop itself
// only copies examples, calls the kernel and adds up two numbers.
//
//===----------------------------------------------------------------------===//
#include "runtime/Trainer.h"
#include "runtime/Checkpoint.h"
#include "runtime/Random.h"
#include "runtime/ThreadPool.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fstream>
#include <limits>
#include <new>
#include <system_error>
#include <tuple>

namespace gradc::rt {

namespace {

/// Width of the epoch number in log lines ("epoch   3/10"), at least.
constexpr int kMinEpochWidth = 3;

/// The hyperparameters the trainer knows how to set.
constexpr const char *kLearningRateHyper = "lr";

/// How the trainer feeds one kernel from one data set.
struct Feed {
  const KernelSpec *kernel = nullptr;
  int64_t examplesPerCall = 1;
  int64_t calls = 0;   ///< per pass over the data
  int64_t skipped = 0; ///< examples left over at the end of a pass
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
  if (!kernel.fn) {
    error = fmt::format("kernel '{}' has no compiled function", kernel.name);
    return false;
  }
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
      index >= 0 && !kernel.buffers[index].isInt && kernel.buffers[index].role == Role::Output) {
    feed.prediction = store.find(kernel.name, "prediction")->f32();
    feed.predictionSize = kernel.buffers[index].numel();
  }

  feed.calls = data.size / feed.examplesPerCall;
  feed.skipped = data.size % feed.examplesPerCall;
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

/// Copies examples order[first, first + examplesPerCall) (or first,
/// first + 1, ... when order is null) into the kernel's input and target.
void loadExamples(Feed &feed, const Dataset &data, const int64_t *order, int64_t first) {
  const size_t featureBytes = feed.featureSize * sizeof(float);
  const size_t targetBytes = feed.targetSize * sizeof(float); // i32 has the same size
  static_assert(sizeof(float) == sizeof(int32_t));
  auto *target = static_cast<char *>(feed.target);
  for (int64_t slot = 0; slot < feed.examplesPerCall; ++slot) {
    int64_t example = order ? order[first + slot] : first + slot;
    std::memcpy(feed.input + slot * feed.featureSize, &data.features[example * feed.featureSize],
                featureBytes);
    const void *source = data.intTargets
                             ? static_cast<const void *>(&data.targetsI[example * feed.targetSize])
                             : static_cast<const void *>(&data.targetsF[example * feed.targetSize]);
    std::memcpy(target + slot * targetBytes, source, targetBytes);
  }
}

/// "48,000": an integer with thousands separators, for people.
std::string withThousands(double value) {
  std::string digits = fmt::format("{}", std::llround(value));
  size_t sign = digits[0] == '-' ? 1 : 0;
  std::string grouped = digits.substr(0, sign);
  for (size_t i = sign; i < digits.size(); ++i) {
    if (i > sign && (digits.size() - i) % 3 == 0)
      grouped += ',';
    grouped += digits[i];
  }
  return grouped;
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
  explicit MetricsFile(std::string path) : path_(std::move(path)) {
    content_ = std::string(kMetricsHeader) + "\n";
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

/// The mean eval loss over the test set, or an error if it is not finite;
/// for class labels and a "prediction" of one row of scores per example,
/// also the accuracy (argmax, ties to the lowest class).
bool evaluate(Feed &feed, const Dataset &data, uint64_t step, int64_t epoch, double &meanLoss,
              double &accuracy, std::string &error) {
  double sum = 0;
  int64_t correct = 0;
  feed.ctx.step = step;
  const int64_t classes =
      feed.prediction && data.intTargets ? feed.predictionSize / feed.examplesPerCall : 0;
  for (int64_t call = 0; call < feed.calls; ++call) {
    loadExamples(feed, data, nullptr, call * feed.examplesPerCall);
    feed.kernel->fn(&feed.ctx);
    sum += *feed.loss;
    for (int64_t e = 0; classes > 0 && e < feed.examplesPerCall; ++e) {
      const float *row = feed.prediction + e * classes;
      int64_t best = 0;
      for (int64_t c = 1; c < classes; ++c)
        if (row[c] > row[best])
          best = c;
      correct += best == data.targetsI[call * feed.examplesPerCall + e];
    }
  }
  accuracy = classes > 0 ? double(correct) / double(feed.calls * feed.examplesPerCall)
                         : std::numeric_limits<double>::quiet_NaN();
  meanLoss = sum / double(feed.calls);
  if (!std::isfinite(meanLoss)) {
    error =
        fmt::format("test loss became {} at epoch {}", std::isnan(meanLoss) ? "NaN" : "Inf", epoch);
    return false;
  }
  return true;
}

} // namespace

double scheduledLearningRate(const TrainOptions &options, uint64_t step, int64_t epoch,
                             uint64_t totalSteps) {
  if (options.schedule == "step")
    return options.lr *
           std::pow(options.gamma, std::floor(double(epoch - 1) / std::max(1.0, options.stepSize)));
  if (options.schedule == "cosine" && totalSteps > 1)
    return options.lrMin + (options.lr - options.lrMin) *
                               (1 + std::cos(M_PI * double(step) / double(totalSteps - 1))) / 2;
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

bool evaluateDataset(const KernelSpec &eval, TensorStore &store, const Dataset &data,
                     const TrainOptions &options, EvalResult &result, std::string &error) {
  ThreadPool pool(options.threads);
  Feed feed;
  if (!prepareFeed(eval, data, "evaluation", options, store, pool, feed, error))
    return false;
  if (feed.calls == 0) {
    error = fmt::format("the data has {} examples, fewer than one batch of {}", data.size,
                        feed.examplesPerCall);
    return false;
  }
  result.examples = feed.calls * feed.examplesPerCall;
  result.skipped = feed.skipped;
  return evaluate(feed, data, 0, 0, result.loss, result.accuracy, error);
}

bool train(const KernelSpec &step, const KernelSpec *eval, TensorStore &store,
           const Dataset &trainData, const Dataset &testData, const TrainOptions &options,
           std::vector<EpochStats> *history, std::string &error) {
  if (options.epochs < 0) {
    error = fmt::format("the number of epochs must be >= 0, got {}", options.epochs);
    return false;
  }
  if (!std::isfinite(options.lr)) {
    error = fmt::format("the learning rate must be finite, got {}", options.lr);
    return false;
  }

  ThreadPool pool(options.threads);
  Feed trainFeed, testFeed;
  if (!prepareFeed(step, trainData, "training", options, store, pool, trainFeed, error))
    return false;
  if (trainFeed.calls == 0) {
    error = fmt::format("the training data has {} examples, fewer than one batch of {}",
                        trainData.size, trainFeed.examplesPerCall);
    return false;
  }
  const bool hasTest = eval && !testData.empty();
  if (hasTest) {
    if (!prepareFeed(*eval, testData, "test", options, store, pool, testFeed, error))
      return false;
    if (testFeed.calls == 0) {
      error = fmt::format("the test data has {} examples, fewer than one batch of {} of kernel "
                          "'{}'",
                          testData.size, testFeed.examplesPerCall, eval->name);
      return false;
    }
  }

  MetricsFile metrics(options.metricsPath);
  if (!metrics.save(error)) // fail now, not after the first epoch
    return false;

  std::string skippedNote;
  if (trainFeed.skipped)
    skippedNote += fmt::format("  (last {} examples of each epoch skipped: batch {} does not "
                               "divide {})",
                               trainFeed.skipped, trainFeed.examplesPerCall, trainData.size);
  if (hasTest && testFeed.skipped)
    skippedNote +=
        fmt::format("  (last {} test examples skipped: batch {} of kernel '{}' does "
                    "not divide {})",
                    testFeed.skipped, testFeed.examplesPerCall, eval->name, testData.size);
  const int epochWidth = std::max<int>(kMinEpochWidth, fmt::formatted_size("{}", options.epochs));

  std::vector<int64_t> order;
  uint64_t globalStep = options.firstStep;
  for (int64_t epoch = options.firstEpoch; epoch <= options.epochs; ++epoch) {
    epochPermutation(trainData.size, options.seed, epoch, order);
    auto start = std::chrono::steady_clock::now();
    double lossSum = 0, objectiveSum = 0;
    for (int64_t call = 0; call < trainFeed.calls; ++call, ++globalStep) {
      loadExamples(trainFeed, trainData, order.data(), call * trainFeed.examplesPerCall);
      trainFeed.ctx.step = globalStep;
      if (trainFeed.learningRateIndex >= 0)
        trainFeed.hypers[trainFeed.learningRateIndex] = static_cast<float>(scheduledLearningRate(
            options, globalStep, epoch, uint64_t(trainFeed.calls) * uint64_t(options.epochs)));
      step.fn(&trainFeed.ctx);
      float loss = *trainFeed.loss;
      float objective = trainFeed.objective ? *trainFeed.objective : loss;
      if (!std::isfinite(loss) || !std::isfinite(objective)) {
        bool lossBad = !std::isfinite(loss);
        float bad = lossBad ? loss : objective;
        error = fmt::format("{} became {} at epoch {}, step {}; try a smaller --lr (it is {})",
                            lossBad ? "loss" : "objective", std::isnan(bad) ? "NaN" : "Inf", epoch,
                            globalStep, options.lr);
        return false;
      }
      lossSum += loss;
      objectiveSum += objective;
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    EpochStats stats;
    stats.epoch = epoch;
    stats.trainLoss = lossSum / double(trainFeed.calls);
    stats.trainObjective = objectiveSum / double(trainFeed.calls);
    stats.testLoss = std::numeric_limits<double>::quiet_NaN();
    stats.seconds = seconds;
    stats.samples = trainFeed.calls * trainFeed.examplesPerCall;
    stats.testAccuracy = std::numeric_limits<double>::quiet_NaN();
    if (hasTest &&
        !evaluate(testFeed, testData, globalStep, epoch, stats.testLoss, stats.testAccuracy, error))
      return false;

    if (options.log) {
      double perSecond = seconds > 0 ? stats.samples / seconds : 0.0;
      std::string test = hasTest ? fmt::format("  test {}", formatLoss(stats.testLoss)) : "";
      if (!std::isnan(stats.testAccuracy))
        test += fmt::format("  accuracy {:.4f}", stats.testAccuracy);
      *options.log << fmt::format("epoch {:>{}}/{}  loss {}  objective {}{}  {:.2f} s  {} "
                                  "samples/s{}\n",
                                  epoch, epochWidth, options.epochs, formatLoss(stats.trainLoss),
                                  formatLoss(stats.trainObjective), test, seconds,
                                  withThousands(perSecond), epoch == 1 ? skippedNote : "");
      options.log->flush();
    }
    metrics.addRow(stats, hasTest);
    if (!metrics.save(error))
      return false;
    if (!options.savePath.empty() &&
        !saveCheckpoint(options.savePath, store,
                        CheckpointInfo{options.modelName, options.seed, epoch, globalStep}, error))
      return false;
    if (history)
      history->push_back(stats);
  }
  return true;
}

} // namespace gradc::rt
