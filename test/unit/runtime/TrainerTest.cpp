//===- test/unit/runtime/TrainerTest.cpp - The training driver ------------===//
//
// The trainer end to end with hand-written "kernels" that follow the
// codegen contract: linear regression with SGD and L2, written in C++,
// parallel over the batch through gradc_parallel_for and using the arena.
//
//===----------------------------------------------------------------------===//
#include "runtime/Trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <sstream>

using namespace gradc::rt;

namespace {

constexpr int64_t kFeatures = 8;
constexpr float kWeightDecay = 1e-3f; // lambda in J = L + lambda/2 ||w||^2

// Signature order of the linear kernels.
enum LinearBuffer { kX, kY, kW, kB, kLoss, kObjective };

/// What the last kernel calls saw, for checking the context the trainer passes.
struct CallLog {
  std::vector<uint64_t> steps;
  std::vector<float> lrs;       ///< ctx.hypers[0] of every training call
  std::vector<int64_t> batches; ///< the batch size of every training call
  uint64_t seed = 0;
  float lr = 0;
};
CallLog gCalls;

/// Residuals r_i = w.x_i + b - y_i of a batch into the arena, in parallel.
struct ResidualClosure {
  const float *x, *y, *w, *b;
  float *r;
};

void residuals(void *closure, int64_t begin, int64_t end) {
  auto *c = static_cast<ResidualClosure *>(closure);
  for (int64_t i = begin; i < end; ++i) {
    float prediction = *c->b;
    for (int64_t j = 0; j < kFeatures; ++j)
      prediction += c->w[j] * c->x[i * kFeatures + j];
    c->r[i] = prediction - c->y[i];
  }
}

/// Forward: loss = mean 0.5 r^2 over the batch, objective = loss + L2.
/// With `update`, one SGD step on J.
template <int64_t Batch, bool Update> void linearKernel(const gradc_step_context *ctx) {
  constexpr int64_t rows = Batch > 0 ? Batch : 1;
  auto *x = static_cast<const float *>(ctx->buffers[kX]);
  auto *y = static_cast<const float *>(ctx->buffers[kY]);
  auto *w = static_cast<float *>(ctx->buffers[kW]);
  auto *b = static_cast<float *>(ctx->buffers[kB]);
  auto *r = reinterpret_cast<float *>(ctx->arena);
  ResidualClosure closure{x, y, w, b, r};
  gradc_parallel_for(ctx->pool, rows, residuals, &closure);

  float loss = 0, norm = 0;
  for (int64_t i = 0; i < rows; ++i)
    loss += 0.5f * r[i] * r[i];
  loss /= rows;
  for (int64_t j = 0; j < kFeatures; ++j)
    norm += w[j] * w[j];
  *static_cast<float *>(ctx->buffers[kLoss]) = loss;
  if (!Update)
    return;
  *static_cast<float *>(ctx->buffers[kObjective]) = loss + 0.5f * kWeightDecay * norm;
  gCalls.steps.push_back(ctx->step);
  gCalls.lrs.push_back(ctx->hypers[0]);
  gCalls.batches.push_back(rows);
  gCalls.seed = ctx->seed;
  gCalls.lr = ctx->hypers[0];
  const float lr = ctx->hypers[0];
  float gradB = 0;
  for (int64_t i = 0; i < rows; ++i)
    gradB += r[i];
  for (int64_t j = 0; j < kFeatures; ++j) {
    float grad = 0;
    for (int64_t i = 0; i < rows; ++i)
      grad += r[i] * x[i * kFeatures + j];
    w[j] -= lr * (grad / rows + kWeightDecay * w[j]);
  }
  *b -= lr * gradB / rows;
}

TensorSpec spec(const std::string &name, Role role, std::vector<int64_t> dims,
                const std::string &init = "") {
  TensorSpec s;
  s.name = name;
  s.role = role;
  s.dims = std::move(dims);
  s.init.kind = init;
  if (role == Role::Param) {
    s.init.fanIn = kFeatures;
    s.init.fanOut = 1;
  }
  return s;
}

template <int64_t Batch> KernelSpec linearStep() {
  KernelSpec k;
  k.name = "train_step";
  k.fn = linearKernel<Batch, true>;
  k.batch = Batch;
  k.arenaBytes = (Batch > 0 ? Batch : 1) * sizeof(float);
  std::vector<int64_t> xDims =
      Batch > 0 ? std::vector<int64_t>{Batch, kFeatures} : std::vector<int64_t>{kFeatures};
  std::vector<int64_t> yDims = Batch > 0 ? std::vector<int64_t>{Batch} : std::vector<int64_t>{};
  k.buffers = {spec("x", Role::Input, xDims),
               spec("y", Role::Target, yDims),
               spec("w", Role::Param, {kFeatures}, "xavier_normal"),
               spec("b", Role::Param, {1}, "zeros"),
               spec("loss", Role::Output, {}),
               spec("objective", Role::Output, {})};
  k.hypers = {"lr"};
  return k;
}

template <int64_t Batch> KernelSpec linearEval() {
  KernelSpec k = linearStep<Batch>();
  k.name = "eval";
  k.fn = linearKernel<Batch, false>;
  k.buffers.pop_back(); // no objective
  k.hypers.clear();
  return k;
}

struct TrainingRun {
  bool ok = false;
  std::string error;
  std::string log;
  std::vector<EpochStats> history;
  std::vector<float> w;
};

TrainingRun runTraining(const TrainKernels &kernels, const Dataset &trainData,
                        const Dataset &testData, TrainOptions options, uint64_t initSeed = 1) {
  TrainingRun run;
  TensorStore store(initSeed);
  std::ostringstream log;
  options.log = &log;
  gCalls = CallLog{};
  run.ok = train(kernels, store, trainData, testData, options, &run.history, run.error);
  run.log = log.str();
  if (const Tensor *w = store.find("w"))
    run.w.assign(w->f32(), w->f32() + kFeatures);
  return run;
}

TrainingRun runTraining(const KernelSpec &step, const KernelSpec *eval, const Dataset &trainData,
                        const Dataset &testData, TrainOptions options, uint64_t initSeed = 1) {
  return runTraining(TrainKernels{&step, nullptr, eval, nullptr}, trainData, testData, options,
                     initSeed);
}

struct Data {
  Dataset train, test;
};

Data regressionData(int64_t size = 2000) {
  TrainTestSplit split;
  std::string error;
  Dataset all = makeSyntheticRegression(size + 400, {kFeatures}, {}, 11);
  EXPECT_TRUE(splitTrainTest(all, 400.0 / (size + 400), split, error)) << error;
  return {std::move(split.train), std::move(split.test)};
}

std::string tempPath(const std::string &name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

std::vector<std::string> readLines(const std::string &path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

TEST(Trainer, LossGoesDownAndTheLogSaysSo) {
  Data data = regressionData();
  KernelSpec step = linearStep<50>(), eval = linearEval<100>();
  TrainOptions options;
  options.epochs = 5;
  options.lr = 0.05f;
  options.threads = 2;
  TrainingRun run = runTraining(step, &eval, data.train, data.test, options);
  ASSERT_TRUE(run.ok) << run.error;
  ASSERT_EQ(run.history.size(), 5u);
  // A linear model of a tanh teacher: fast descent, then a plateau at the
  // part of the target a linear model cannot explain.
  EXPECT_LT(run.history[1].trainLoss, run.history[0].trainLoss) << run.log;
  EXPECT_LT(run.history[2].trainLoss, run.history[1].trainLoss) << run.log;
  EXPECT_LT(run.history.back().trainLoss, 0.1 * run.history.front().trainLoss) << run.log;
  for (const EpochStats &stats : run.history)
    EXPECT_GT(stats.trainObjective, stats.trainLoss); // + lambda/2 ||w||^2 > 0
  EXPECT_TRUE(std::isfinite(run.history.back().testLoss));
  EXPECT_LT(run.history.back().testLoss, run.history.front().testLoss);
  EXPECT_EQ(run.history[0].samples, 2000);
  EXPECT_EQ(run.history[0].epoch, 1);

  // One line per epoch, in the documented format.
  std::istringstream lines(run.log);
  std::regex format(R"(epoch   [1-5]/5  loss \d+\.\d{6}  objective \d+\.\d{6}  test \d+\.\d{6})"
                    R"(  \d+\.\d\d s  [\d,]+ samples/s)");
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count)
    EXPECT_TRUE(std::regex_match(line, format)) << line;
  EXPECT_EQ(count, 5);

  // The kernel saw the global step counter, the seed and the learning rate.
  ASSERT_EQ(gCalls.steps.size(), 5u * 40);
  for (size_t i = 0; i < gCalls.steps.size(); ++i)
    EXPECT_EQ(gCalls.steps[i], i);
  EXPECT_EQ(gCalls.seed, options.seed);
  EXPECT_EQ(gCalls.lr, options.lr);
}

TEST(Trainer, OneExamplePerCallWhenBatchIsZero) {
  Data data = regressionData(500);
  KernelSpec step = linearStep<0>(), eval = linearEval<0>();
  TrainOptions options;
  options.epochs = 3;
  options.lr = 0.01f;
  TrainingRun run = runTraining(step, &eval, data.train, data.test, options);
  ASSERT_TRUE(run.ok) << run.error;
  EXPECT_EQ(gCalls.steps.size(), 3u * 500);
  EXPECT_LT(run.history.back().trainLoss, run.history.front().trainLoss);
  EXPECT_LT(run.history.back().testLoss, run.history.front().testLoss);
}

TEST(Trainer, RerunsAreBitIdentical) {
  Data data = regressionData();
  KernelSpec step = linearStep<64>(), eval = linearEval<100>();
  TrainOptions options;
  options.epochs = 3;
  options.lr = 0.05f;
  options.threads = 3;
  TrainingRun first = runTraining(step, &eval, data.train, data.test, options);
  TrainingRun second = runTraining(step, &eval, data.train, data.test, options);
  ASSERT_TRUE(first.ok && second.ok) << first.error << second.error;
  ASSERT_EQ(first.history.size(), second.history.size());
  for (size_t e = 0; e < first.history.size(); ++e) {
    EXPECT_EQ(first.history[e].trainLoss, second.history[e].trainLoss);
    EXPECT_EQ(first.history[e].trainObjective, second.history[e].trainObjective);
    EXPECT_EQ(first.history[e].testLoss, second.history[e].testLoss);
  }
  EXPECT_EQ(std::memcmp(first.w.data(), second.w.data(), sizeof(float) * kFeatures), 0);

  // Another shuffle seed or init seed gives other numbers.
  TrainOptions otherSeed = options;
  otherSeed.seed = 2;
  TrainingRun shuffled = runTraining(step, &eval, data.train, data.test, otherSeed);
  TrainingRun initialized =
      runTraining(step, &eval, data.train, data.test, options, /*initSeed=*/2);
  EXPECT_NE(shuffled.history[0].trainLoss, first.history[0].trainLoss);
  EXPECT_NE(initialized.history[0].trainLoss, first.history[0].trainLoss);
}

TEST(Trainer, MetricsCsv) {
  Data data = regressionData();
  KernelSpec step = linearStep<50>(), eval = linearEval<100>();
  TrainOptions options;
  options.epochs = 3;
  options.metricsPath = tempPath("gradc_trainer_metrics.csv");
  TrainingRun run = runTraining(step, &eval, data.train, data.test, options);
  ASSERT_TRUE(run.ok) << run.error;
  std::vector<std::string> lines = readLines(options.metricsPath);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "epoch,loss,objective,test_loss,test_accuracy,seconds,samples_per_second");
  for (int e = 1; e <= 3; ++e) {
    std::vector<std::string> fields;
    std::stringstream row(lines[e]);
    for (std::string field; std::getline(row, field, ',');)
      fields.push_back(field);
    // getline drops nothing: the empty accuracy (regression) is its own field.
    ASSERT_EQ(fields.size(), 7u) << lines[e];
    EXPECT_EQ(fields[0], std::to_string(e));
    // Full precision: the CSV reads back as the exact numbers.
    EXPECT_EQ(std::stod(fields[1]), run.history[e - 1].trainLoss);
    EXPECT_EQ(std::stod(fields[2]), run.history[e - 1].trainObjective);
    EXPECT_EQ(std::stod(fields[3]), run.history[e - 1].testLoss);
    EXPECT_EQ(fields[4], ""); // regression: no accuracy
    EXPECT_GE(std::stod(fields[5]), 0.0);
    EXPECT_GT(std::stod(fields[6]), 0.0);
  }
  EXPECT_FALSE(std::filesystem::exists(options.metricsPath + ".tmp"));

  // Without an eval kernel the test_loss column is empty.
  options.metricsPath = tempPath("gradc_trainer_metrics_no_test.csv");
  run = runTraining(step, nullptr, data.train, data.test, options);
  ASSERT_TRUE(run.ok) << run.error;
  lines = readLines(options.metricsPath);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_TRUE(
      std::regex_match(lines[1], std::regex(R"(1,[-0-9.e]+,[-0-9.e]+,,,[-0-9.e]+,[-0-9.e]+)")))
      << lines[1];
  EXPECT_TRUE(std::isnan(run.history[0].testLoss));
  EXPECT_EQ(run.log.find("test"), std::string::npos);
}

TEST(Trainer, UnwritableMetricsFileFailsBeforeTraining) {
  Data data = regressionData(200);
  KernelSpec step = linearStep<50>();
  TrainOptions options;
  options.metricsPath = tempPath("no/such/dir/metrics.csv");
  TrainingRun run = runTraining(step, nullptr, data.train, data.test, options);
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error.rfind("cannot write the metrics file '" + options.metricsPath + ".tmp': ", 0),
            0u)
      << run.error;
  EXPECT_TRUE(gCalls.steps.empty());
}

TEST(Trainer, PartialBatchIsReportedOnce) {
  Data data = regressionData(2000);
  KernelSpec step = linearStep<64>(); // 2000 = 31 * 64 + 16
  TrainOptions options;
  options.epochs = 2;
  TrainingRun run = runTraining(step, nullptr, data.train, data.test, options);
  ASSERT_TRUE(run.ok) << run.error;
  const std::string note =
      "(last 16 examples of each epoch skipped: batch 64 does not divide 2000)";
  size_t first = run.log.find(note);
  ASSERT_NE(first, std::string::npos) << run.log;
  EXPECT_LT(first, run.log.find('\n')); // on the first line
  EXPECT_EQ(run.log.find(note, first + 1), std::string::npos);
  EXPECT_EQ(run.history[0].samples, 31 * 64);
}

TEST(Trainer, DivergenceStopsWithEpochAndStep) {
  Data data = regressionData(2000);
  KernelSpec step = linearStep<50>();
  TrainOptions options;
  options.epochs = 50;
  options.lr = 50.0f;
  TrainingRun run = runTraining(step, nullptr, data.train, data.test, options);
  EXPECT_FALSE(run.ok);
  std::smatch match;
  ASSERT_TRUE(std::regex_match(run.error, match,
                               std::regex(R"((loss|objective) became (NaN|Inf) at epoch (\d+), )"
                                          R"(step (\d+); try a smaller --lr \(it is 50\); )"
                                          R"((params and state are still finite after the step|)"
                                          R"(not finite after the step: .*))")))
      << run.error;
  // The step named is the one whose loss went bad: the last the kernel ran.
  EXPECT_EQ(std::stoull(match[4]), gCalls.steps.back());
  EXPECT_EQ(std::stoll(match[3]), int64_t(gCalls.steps.back() / 40 + 1));
}

TEST(Trainer, ContractViolationsAreClearErrors) {
  Data data = regressionData(200);
  TrainOptions options;
  options.epochs = 1;

  KernelSpec unknownHyper = linearStep<50>();
  unknownHyper.hypers.push_back("momentum");
  TrainingRun run = runTraining(unknownHyper, nullptr, data.train, data.test, options);
  EXPECT_EQ(run.error, "kernel 'train_step' reads the hyperparameter 'momentum', which the "
                       "trainer does not know (it sets: lr)");

  Dataset narrow = makeSyntheticRegression(200, {7}, {}, 1);
  run = runTraining(linearStep<50>(), nullptr, narrow, data.test, options);
  EXPECT_EQ(run.error, "kernel 'train_step': input 'x' has shape [50,8], which does not hold a "
                       "batch of 50 examples of the training data's shape [7] (7 elements each)");

  Dataset labels = data.train;
  labels.intTargets = true;
  labels.targetsI.assign(labels.size, 0);
  run = runTraining(linearStep<50>(), nullptr, labels, data.test, options);
  EXPECT_EQ(run.error, "kernel 'train_step': target 'y' is f32 but the training data has i32 "
                       "(class label) targets");

  KernelSpec noLoss = linearStep<50>();
  noLoss.buffers[kLoss].name = "l";
  run = runTraining(noLoss, nullptr, data.train, data.test, options);
  EXPECT_EQ(run.error, "kernel 'train_step' has no output 'loss'");

  KernelSpec twoInputs = linearStep<50>();
  twoInputs.buffers.push_back(spec("z", Role::Input, {3}));
  run = runTraining(twoInputs, nullptr, data.train, data.test, options);
  EXPECT_EQ(run.error, "kernel 'train_step' has more than one input ('x' and 'z'); the trainer "
                       "feeds exactly one");

  run = runTraining(linearStep<500>(), nullptr, data.train, data.test, options);
  EXPECT_EQ(run.error, "the training data has 200 examples, fewer than one batch of 500");
}

TEST(EpochPermutation, DeterministicPermutationPerEpoch) {
  std::vector<int64_t> a, b, c;
  epochPermutation(1000, 5, 1, a);
  epochPermutation(1000, 5, 1, b);
  epochPermutation(1000, 5, 2, c);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i)
    EXPECT_EQ(sorted[i], i);
  // Each element lands in the first half about half of the time.
  const int kEpochs = 2000;
  int firstHalf = 0;
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    epochPermutation(10, 1, epoch, a);
    firstHalf += std::find(a.begin(), a.end(), 0) - a.begin() < 5;
  }
  EXPECT_NEAR(firstHalf, kEpochs / 2, 120); // 5 binomial standard deviations
}

} // namespace

namespace {
TEST(Trainer, LearningRateSchedules) {
  gradc::rt::TrainOptions options;
  options.lr = 0.1f;
  EXPECT_DOUBLE_EQ(gradc::rt::scheduledLearningRate(options, 50, 3, 100), double(options.lr));
  options.schedule = "step";
  options.stepSize = 2;
  options.gamma = 0.5;
  EXPECT_DOUBLE_EQ(gradc::rt::scheduledLearningRate(options, 0, 1, 100), double(options.lr));
  EXPECT_DOUBLE_EQ(gradc::rt::scheduledLearningRate(options, 0, 2, 100), double(options.lr));
  EXPECT_DOUBLE_EQ(gradc::rt::scheduledLearningRate(options, 0, 3, 100), double(options.lr) * 0.5);
  EXPECT_DOUBLE_EQ(gradc::rt::scheduledLearningRate(options, 0, 5, 100), double(options.lr) * 0.25);
  options.schedule = "cosine";
  options.lrMin = 0.001;
  EXPECT_DOUBLE_EQ(gradc::rt::scheduledLearningRate(options, 0, 1, 101), double(options.lr));
  EXPECT_NEAR(gradc::rt::scheduledLearningRate(options, 50, 1, 101),
              (double(options.lr) + 0.001) / 2, 1e-12);
  EXPECT_NEAR(gradc::rt::scheduledLearningRate(options, 100, 1, 101), 0.001, 1e-12);
}
} // namespace

//===----------------------------------------------------------------------===//
// The last partial batch, schedules seen by the kernel, progress, evaluate().
//===----------------------------------------------------------------------===//

namespace {

KernelSpec renamed(KernelSpec kernel, const std::string &name) {
  kernel.name = name;
  return kernel;
}

TEST(Trainer, TailKernelsTrainAndEvaluateEveryExample) {
  Data data = regressionData(2000); // 2000 = 31 * 64 + 16; 400 = 2 * 150 + 100
  KernelSpec step = linearStep<64>(), stepTail = renamed(linearStep<16>(), "train_step_tail");
  KernelSpec eval = linearEval<150>(), evalTail = renamed(linearEval<100>(), "eval_tail");
  TrainOptions options;
  options.epochs = 2;
  options.lr = 0.05f;
  TrainingRun run =
      runTraining(TrainKernels{&step, &stepTail, &eval, &evalTail}, data.train, data.test, options);
  ASSERT_TRUE(run.ok) << run.error;
  EXPECT_EQ(run.history[0].samples, 2000);
  EXPECT_EQ(run.history[0].steps, 32);
  // Each epoch: 31 full batches, then the tail; the step counter runs on.
  ASSERT_EQ(gCalls.batches.size(), 64u);
  for (size_t i = 0; i < gCalls.batches.size(); ++i) {
    EXPECT_EQ(gCalls.batches[i], i % 32 == 31 ? 16 : 64) << i;
    EXPECT_EQ(gCalls.steps[i], i);
  }
  EXPECT_EQ(run.log.find("skipped"), std::string::npos) << run.log;
  const std::string note = "(each epoch ends with a batch of 16 by 'train_step_tail': 2000 = 31 x "
                           "64 + 16)";
  size_t first = run.log.find(note);
  ASSERT_NE(first, std::string::npos) << run.log;
  EXPECT_LT(first, run.log.find('\n'));
  EXPECT_EQ(run.log.find(note, first + 1), std::string::npos);

  // The test loss is the mean over all 400 examples: the same as one
  // example per call, up to float rounding.
  KernelSpec single = renamed(linearEval<0>(), "eval_single");
  TensorStore trained;
  std::string error;
  std::vector<EpochStats> history;
  TrainOptions quiet = options;
  quiet.log = nullptr;
  ASSERT_TRUE(train(TrainKernels{&step, &stepTail, &eval, &evalTail}, trained, data.train,
                    data.test, quiet, &history, error))
      << error;
  EvalResult perExample;
  ASSERT_TRUE(evaluate(single, nullptr, trained, data.test, quiet, perExample, error)) << error;
  EXPECT_EQ(perExample.examples, 400);
  EXPECT_NEAR(history.back().testLoss, perExample.loss, 1e-6 * perExample.loss);
  EXPECT_EQ(history.back().testLoss, run.history.back().testLoss);
}

TEST(Trainer, TailKernelMustFitTheRemainder) {
  Data data = regressionData(2000);
  KernelSpec step = linearStep<64>(), wrongTail = renamed(linearStep<8>(), "train_step_tail");
  TrainOptions options;
  options.epochs = 1;
  TrainingRun run = runTraining(TrainKernels{&step, &wrongTail, nullptr, nullptr}, data.train,
                                data.test, options);
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error, "tail kernel 'train_step_tail' has batch 8, but the training data's 2000 "
                       "examples leave 16 after 31 batches of 64");
  KernelSpec sameName = linearStep<16>();
  run =
      runTraining(TrainKernels{&step, &sameName, nullptr, nullptr}, data.train, data.test, options);
  EXPECT_EQ(run.error, "tail kernel 'train_step' has the name of the kernel it completes; the "
                       "store keeps their inputs apart by name");
  // A batch that divides the data needs no tail: it is ignored.
  Data even = regressionData(1984);
  run = runTraining(TrainKernels{&step, &wrongTail, nullptr, nullptr}, even.train, even.test,
                    options);
  EXPECT_TRUE(run.ok) << run.error;
  EXPECT_EQ(gCalls.batches.size(), 31u);
}

TEST(Trainer, KernelsCompiledLateAreAwaitedOnceBeforeTheirFirstCall) {
  Data data = regressionData(2000); // the training tail is the 32nd call of each epoch
  KernelSpec step = linearStep<64>(), stepTail = renamed(linearStep<16>(), "train_step_tail");
  KernelSpec eval = linearEval<150>(), evalTail = renamed(linearEval<100>(), "eval_tail");
  TrainOptions options;
  options.epochs = 2;
  options.lr = 0.05f;
  TrainingRun reference =
      runTraining(TrainKernels{&step, &stepTail, &eval, &evalTail}, data.train, data.test, options);
  ASSERT_TRUE(reference.ok) << reference.error;

  // As `gradc train` hands them over: specs complete, code still compiling.
  KernelSpec lateTail = stepTail, lateEval = eval, lateEvalTail = evalTail;
  for (KernelSpec *kernel : {&lateTail, &lateEval, &lateEvalTail})
    kernel->fn = nullptr;
  int awaited = 0;
  size_t callsBeforeAwait = 0;
  options.awaitLateKernels = [&](std::string &) {
    ++awaited;
    callsBeforeAwait = gCalls.batches.size();
    lateTail.fn = stepTail.fn;
    lateEval.fn = eval.fn;
    lateEvalTail.fn = evalTail.fn;
    return true;
  };
  TrainingRun late = runTraining(TrainKernels{&step, &lateTail, &lateEval, &lateEvalTail},
                                 data.train, data.test, options);
  ASSERT_TRUE(late.ok) << late.error;
  EXPECT_EQ(awaited, 1);
  EXPECT_EQ(callsBeforeAwait, 31u); // the full batches of epoch 1 ran first
  ASSERT_EQ(late.history.size(), reference.history.size());
  for (size_t e = 0; e < late.history.size(); ++e) {
    EXPECT_EQ(late.history[e].trainLoss, reference.history[e].trainLoss) << e;
    EXPECT_EQ(late.history[e].testLoss, reference.history[e].testLoss) << e;
  }

  // A kernel that failed to compile stops the run with the compiler's error.
  for (KernelSpec *kernel : {&lateTail, &lateEval, &lateEvalTail})
    kernel->fn = nullptr;
  options.awaitLateKernels = [](std::string &error) {
    error = "cannot compile eval: out of registers";
    return false;
  };
  late = runTraining(TrainKernels{&step, &lateTail, &lateEval, &lateEvalTail}, data.train,
                     data.test, options);
  EXPECT_FALSE(late.ok);
  EXPECT_EQ(late.error, "cannot compile eval: out of registers");
  // And one that is still missing its code after the wait is named.
  options.awaitLateKernels = [](std::string &) { return true; };
  late = runTraining(TrainKernels{&step, &lateTail, &lateEval, &lateEvalTail}, data.train,
                     data.test, options);
  EXPECT_EQ(late.error, "kernel 'train_step_tail' has no compiled function");
}

TEST(Trainer, EvaluateWithAndWithoutTail) {
  Data data = regressionData(500);
  TensorStore store(3);
  KernelSpec eval = linearEval<150>(), tail = renamed(linearEval<100>(), "eval_tail");
  KernelSpec single = renamed(linearEval<0>(), "eval_single");
  TrainOptions options;
  EvalResult all, noTail, perExample;
  std::string error;
  ASSERT_TRUE(evaluate(eval, &tail, store, data.test, options, all, error)) << error;
  EXPECT_EQ(all.examples, 400);
  EXPECT_EQ(all.skipped, 0);
  EXPECT_TRUE(std::isnan(all.accuracy)); // regression
  ASSERT_TRUE(evaluateDataset(eval, store, data.test, options, noTail, error)) << error;
  EXPECT_EQ(noTail.examples, 300);
  EXPECT_EQ(noTail.skipped, 100);
  ASSERT_TRUE(evaluate(single, nullptr, store, data.test, options, perExample, error)) << error;
  EXPECT_NEAR(all.loss, perExample.loss, 1e-6 * perExample.loss);
  EXPECT_NE(noTail.loss, perExample.loss);
}

TEST(Trainer, ScheduledLearningRatesReachTheKernel) {
  Data data = regressionData(2000);
  KernelSpec step = linearStep<50>(); // 40 steps per epoch
  TrainOptions options;
  options.epochs = 3;
  options.lr = 0.05f;
  options.schedule = "cosine";
  options.lrMin = 0.001;
  TrainingRun run = runTraining(step, nullptr, data.train, data.test, options);
  ASSERT_TRUE(run.ok) << run.error;
  ASSERT_EQ(gCalls.lrs.size(), 120u);
  EXPECT_EQ(gCalls.lrs.front(), 0.05f);
  EXPECT_EQ(gCalls.lrs.back(), 0.001f);
  for (size_t i = 1; i < gCalls.lrs.size(); ++i)
    EXPECT_LE(gCalls.lrs[i], gCalls.lrs[i - 1]) << i;
  EXPECT_EQ(float(run.history.back().lr), 0.001f);

  options.schedule = "step";
  options.stepSize = 2;
  options.gamma = 0.5;
  run = runTraining(step, nullptr, data.train, data.test, options);
  ASSERT_TRUE(run.ok) << run.error;
  EXPECT_EQ(gCalls.lrs[0], 0.05f);
  EXPECT_EQ(gCalls.lrs[79], 0.05f);  // epochs 1 and 2
  EXPECT_EQ(gCalls.lrs[80], 0.025f); // epoch 3
  EXPECT_EQ(run.history[2].lr, double(0.05f) * 0.5);

  options.schedule = "exponential";
  run = runTraining(step, nullptr, data.train, data.test, options);
  EXPECT_EQ(run.error, "unknown learning-rate schedule 'exponential'; expected constant, step or "
                       "cosine");
}

/// `log` without the progress line's redraws: each "\r...\x1b[K" and the
/// final "\r\x1b[K".
std::string withoutProgress(const std::string &log) {
  return std::regex_replace(log, std::regex("\r[^\r\n]*\x1b\\[K"), "");
}

TEST(Trainer, ProgressLineOnlyWhenAsked) {
  Data data = regressionData(2000);
  KernelSpec step = linearStep<50>(), eval = linearEval<100>();
  TrainOptions options;
  options.epochs = 2;
  options.lr = 0.05f;
  options.progress = ProgressMode::Always;
  options.progressInterval = 0; // draw after every step
  TrainingRun shown = runTraining(step, &eval, data.train, data.test, options);
  ASSERT_TRUE(shown.ok) << shown.error;
  // A redraw per step: bar, examples done/total, rate, running loss, ETA.
  std::regex redraw(R"(\repoch   1/2 \[[=> ]{24}\]  [\d,]+/2,000  [\d,]+ samples/s  loss )"
                    R"(\d+\.\d{6}(  ETA \d+:\d\d)?\x1b\[K)");
  auto begin = std::sregex_iterator(shown.log.begin(), shown.log.end(), redraw);
  EXPECT_EQ(std::distance(begin, std::sregex_iterator()), 40) << shown.log;
  EXPECT_NE(shown.log.find("\repoch   1/2 [========================]  2,000/2,000"),
            std::string::npos);
  // Erased before the permanent line, which reads as without progress.
  EXPECT_NE(shown.log.find("\r\x1b[Kepoch   1/2  loss "), std::string::npos);
  options.progress = ProgressMode::Auto; // a string stream is no terminal
  TrainingRun plain = runTraining(step, &eval, data.train, data.test, options);
  ASSERT_TRUE(plain.ok) << plain.error;
  EXPECT_EQ(plain.log.find('\r'), std::string::npos);
  // The permanent lines are the same, timings aside.
  std::regex timing(R"(\d+\.\d\d s  [\d,]+ samples/s)");
  EXPECT_EQ(std::regex_replace(withoutProgress(shown.log), timing, "T"),
            std::regex_replace(plain.log, timing, "T"));
}

} // namespace
