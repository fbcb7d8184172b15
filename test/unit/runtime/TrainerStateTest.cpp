//===- test/unit/runtime/TrainerStateTest.cpp - Checkpoints, accuracy, NaN -===//
//
// The trainer with hand-written kernels that carry what compiled ones do:
// optimizer state (momentum, Role::State), dropout keyed by (seed, step),
// class labels with a "prediction" output, and a step that goes bad.
//
//===----------------------------------------------------------------------===//
#include "runtime/Checkpoint.h"
#include "runtime/Random.h"
#include "runtime/Trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

using namespace gradc::rt;

namespace {

constexpr int64_t kFeatures = 6;
constexpr float kMomentum = 0.9f;
constexpr float kDropout = 0.25f;
/// Philox stream and domain of the test kernel's dropout mask.
constexpr uint32_t kMaskStream = 7, kMaskDomain = 0x4d41534b;

TensorSpec spec(const std::string &name, Role role, std::vector<int64_t> dims,
                const std::string &init = "zeros", bool isInt = false) {
  TensorSpec s;
  s.name = name;
  s.role = role;
  s.dims = std::move(dims);
  s.isInt = isInt;
  s.init.kind = init;
  s.init.fanIn = kFeatures;
  s.init.fanOut = 1;
  return s;
}

std::string tempPath(const std::string &name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

//===----------------------------------------------------------------------===//
// Linear regression with input dropout and SGD with momentum.
//===----------------------------------------------------------------------===//

enum MomentumBuffer { kX, kY, kW, kB, kVw, kVb, kLoss, kObjective };

/// Test hooks of momentumKernel: a simulated crash (an exception) when
/// step gCrashAtStep begins, a NaN loss and weight at step gBadStep, and a
/// record of the params and state each step started from.
constexpr uint64_t kNever = ~uint64_t(0);
uint64_t gCrashAtStep = kNever, gBadStep = kNever;
int gCalls = 0;
bool gNondeterministic = false;
std::map<uint64_t, std::vector<float>> gStartOfStep;

struct SimulatedCrash : std::runtime_error {
  SimulatedCrash() : std::runtime_error("simulated crash") {}
};

template <int64_t Batch> void momentumKernel(const gradc_step_context *ctx) {
  if (ctx->step == gCrashAtStep)
    throw SimulatedCrash();
  ++gCalls;
  if (!gStartOfStep.count(ctx->step)) {
    std::vector<float> &state = gStartOfStep[ctx->step];
    for (int buffer : {kW, kB, kVw, kVb}) {
      auto *p = static_cast<const float *>(ctx->buffers[buffer]);
      state.insert(state.end(), p, p + (buffer == kW || buffer == kVw ? kFeatures : 1));
    }
  }
  auto *x = static_cast<const float *>(ctx->buffers[kX]);
  auto *y = static_cast<const float *>(ctx->buffers[kY]);
  auto *w = static_cast<float *>(ctx->buffers[kW]);
  auto *b = static_cast<float *>(ctx->buffers[kB]);
  auto *vw = static_cast<float *>(ctx->buffers[kVw]);
  auto *vb = static_cast<float *>(ctx->buffers[kVb]);
  auto *kept = reinterpret_cast<float *>(ctx->arena); // the dropped-out inputs
  // Mask element e of this step: Philox keyed by (seed, step), as codegen's.
  for (int64_t e = 0; e < Batch * kFeatures; ++e) {
    auto words =
        philoxBlock(ctx->seed, ctx->step * 1024 + uint64_t(e / 4), kMaskStream, kMaskDomain);
    bool keep = double(words[e % 4]) >= kDropout * 4294967296.0;
    kept[e] = keep ? x[e] / (1 - kDropout) : 0.0f;
  }
  float loss = 0, gradW[kFeatures] = {}, gradB = 0;
  for (int64_t i = 0; i < Batch; ++i) {
    float r = *b - y[i];
    for (int64_t j = 0; j < kFeatures; ++j)
      r += w[j] * kept[i * kFeatures + j];
    loss += 0.5f * r * r / Batch;
    for (int64_t j = 0; j < kFeatures; ++j)
      gradW[j] += r * kept[i * kFeatures + j] / Batch;
    gradB += r / Batch;
  }
  if (gNondeterministic)
    loss += 1e-3f * float(gCalls);
  *static_cast<float *>(ctx->buffers[kLoss]) = loss;
  *static_cast<float *>(ctx->buffers[kObjective]) = loss;
  const float lr = ctx->hypers[0];
  for (int64_t j = 0; j < kFeatures; ++j) {
    vw[j] = kMomentum * vw[j] + gradW[j];
    w[j] -= lr * vw[j];
  }
  *vb = kMomentum * *vb + gradB;
  *b -= lr * *vb;
  if (ctx->step == gBadStep) {
    *static_cast<float *>(ctx->buffers[kLoss]) = std::nanf("");
    w[2] = std::nanf("");
  }
}

void resetHooks() {
  gCrashAtStep = gBadStep = kNever;
  gCalls = 0;
  gNondeterministic = false;
  gStartOfStep.clear();
}

template <int64_t Batch> KernelSpec momentumStep() {
  KernelSpec k;
  k.name = "train_step";
  k.fn = momentumKernel<Batch>;
  k.batch = Batch;
  k.arenaBytes = Batch * kFeatures * sizeof(float);
  k.buffers = {spec("x", Role::Input, {Batch, kFeatures}),
               spec("y", Role::Target, {Batch}),
               spec("dense.W", Role::Param, {kFeatures}, "xavier_normal"),
               spec("dense.b", Role::Param, {1}),
               spec("dense.W.velocity", Role::State, {kFeatures}),
               spec("dense.b.velocity", Role::State, {1}),
               spec("loss", Role::Output, {}),
               spec("objective", Role::Output, {})};
  k.hypers = {"lr"};
  return k;
}

struct Data {
  Dataset train, test;
};

Data regression() {
  TrainTestSplit split;
  std::string error;
  Dataset all = makeSyntheticRegression(1000, {kFeatures}, {}, 5);
  EXPECT_TRUE(splitTrainTest(all, 0.2, split, error)) << error;
  return {std::move(split.train), std::move(split.test)};
}

std::vector<float> contents(const TensorStore &store, const std::string &name) {
  const Tensor *t = store.find(name);
  return t ? std::vector<float>(t->f32(), t->f32() + t->numel()) : std::vector<float>{};
}

std::vector<std::string> readLines(const std::string &path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

/// Params and state of a store, in one vector, for bitwise comparison.
std::vector<float> modelState(const TensorStore &store) {
  std::vector<float> all;
  for (const char *name : {"dense.W", "dense.b", "dense.W.velocity", "dense.b.velocity"}) {
    std::vector<float> part = contents(store, name);
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

bool bitIdentical(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// The metrics rows without their timing columns (seconds, samples/s).
std::vector<std::string> metricsWithoutTiming(const std::string &path) {
  std::vector<std::string> rows;
  for (const std::string &line : readLines(path)) {
    size_t cut = line.size();
    for (int commas = 0; commas < 2; ++commas)
      cut = line.rfind(',', cut - 1);
    rows.push_back(line.substr(0, cut));
  }
  return rows;
}

class TrainerCheckpoint : public ::testing::Test {
protected:
  void SetUp() override {
    resetHooks();
    data_ = regression(); // 800 = 26 * 30 + 20: the tail kernel is saved and resumed too
    step_ = momentumStep<30>();
    tail_ = momentumStep<20>();
    tail_.name = "train_step_tail";
    kernels_ = TrainKernels{&step_, &tail_, nullptr, nullptr};
    options_.log = nullptr;
    options_.lr = 0.02f;
    options_.seed = 9;
    options_.threads = 2;
    options_.modelName = "momentum";
    options_.epochs = 4;
  }
  void TearDown() override { resetHooks(); }

  static constexpr uint64_t kStepsPerEpoch = 27;
  Data data_;
  KernelSpec step_, tail_;
  TrainKernels kernels_;
  TrainOptions options_;
  std::string error_;
};

TEST_F(TrainerCheckpoint, SaveAndResumeEqualsAnUninterruptedRun) {
  // 4 epochs straight.
  TensorStore straight;
  std::vector<EpochStats> straightHistory;
  TrainOptions options = options_;
  options.metricsPath = tempPath("gradc_straight.csv");
  ASSERT_TRUE(train(kernels_, straight, data_.train, data_.test, options, &straightHistory, error_))
      << error_;

  // 2 epochs, saved; then a fresh store (other initial weights, which the
  // checkpoint must replace) resumes for 2 more.
  const std::string checkpoint = tempPath("gradc_half.safetensors");
  TensorStore firstHalf;
  TrainOptions half = options_;
  half.epochs = 2;
  half.savePath = checkpoint;
  half.metricsPath = tempPath("gradc_resumed.csv");
  ASSERT_TRUE(train(kernels_, firstHalf, data_.train, data_.test, half, nullptr, error_)) << error_;
  TensorStore resumed(/*initSeed=*/77);
  std::vector<EpochStats> resumedHistory;
  TrainOptions rest = options_;
  rest.resumePath = checkpoint;
  rest.metricsPath = half.metricsPath;
  std::ostringstream log;
  rest.log = &log;
  ASSERT_TRUE(train(kernels_, resumed, data_.train, data_.test, rest, &resumedHistory, error_))
      << error_;

  EXPECT_TRUE(bitIdentical(modelState(straight), modelState(resumed)));
  ASSERT_EQ(resumedHistory.size(), 2u);
  EXPECT_EQ(resumedHistory[0].epoch, 3);
  EXPECT_EQ(resumedHistory[1].trainLoss, straightHistory[3].trainLoss);
  EXPECT_EQ(log.str().rfind("resuming from '" + checkpoint + "' after epoch 2 (step 54)\n", 0), 0u)
      << log.str();
  // The resumed run's metrics file continues the first one's.
  EXPECT_EQ(metricsWithoutTiming(half.metricsPath), metricsWithoutTiming(options.metricsPath));
}

TEST_F(TrainerCheckpoint, ResumeAfterACrashWithASchedule) {
  // The cosine rate depends on the run's length, so the interrupted run must
  // be a 4-epoch run stopped early: a kernel that throws when epoch 3 starts.
  options_.schedule = "cosine";
  options_.lrMin = 0.001;
  TensorStore straight;
  ASSERT_TRUE(train(kernels_, straight, data_.train, data_.test, options_, nullptr, error_))
      << error_;

  const std::string checkpoint = tempPath("gradc_crashed.safetensors");
  TensorStore crashed;
  TrainOptions saving = options_;
  saving.savePath = checkpoint;
  gCrashAtStep = 2 * kStepsPerEpoch + 5;
  EXPECT_THROW(train(kernels_, crashed, data_.train, data_.test, saving, nullptr, error_),
               SimulatedCrash);
  gCrashAtStep = kNever;
  EXPECT_FALSE(std::filesystem::exists(checkpoint + ".tmp-" + std::to_string(::getpid())));

  TensorStore resumed(/*initSeed=*/78);
  TrainOptions rest = options_;
  rest.resumePath = checkpoint;
  ASSERT_TRUE(train(kernels_, resumed, data_.train, data_.test, rest, nullptr, error_)) << error_;
  EXPECT_TRUE(bitIdentical(modelState(straight), modelState(resumed)));
}

TEST_F(TrainerCheckpoint, InitTakesParamsOnly) {
  const std::string checkpoint = tempPath("gradc_init_source.safetensors");
  TensorStore source;
  TrainOptions save = options_;
  save.epochs = 1;
  save.savePath = checkpoint;
  ASSERT_TRUE(train(kernels_, source, data_.train, data_.test, save, nullptr, error_)) << error_;

  // --epochs=0 with --init and --save: the loaded weights, written back.
  TensorStore target(/*initSeed=*/5);
  TrainOptions init = options_;
  init.epochs = 0;
  init.initPath = checkpoint;
  init.savePath = tempPath("gradc_init_target.safetensors");
  std::filesystem::remove(init.savePath);
  ASSERT_TRUE(train(kernels_, target, data_.train, data_.test, init, nullptr, error_)) << error_;
  EXPECT_TRUE(bitIdentical(contents(target, "dense.W"), contents(source, "dense.W")));
  EXPECT_TRUE(bitIdentical(contents(target, "dense.b"), contents(source, "dense.b")));
  EXPECT_EQ(contents(target, "dense.W.velocity"), std::vector<float>(kFeatures, 0.0f));
  EXPECT_NE(contents(source, "dense.W.velocity"), std::vector<float>(kFeatures, 0.0f));
  SafetensorsFile written;
  ASSERT_TRUE(readSafetensors(init.savePath, written, error_)) << error_;
  EXPECT_EQ(written.metadata.at("epoch"), "0");
  EXPECT_EQ(written.metadata.at("step"), "0");
}

TEST_F(TrainerCheckpoint, ResumeErrors) {
  const std::string checkpoint = tempPath("gradc_resume_errors.safetensors");
  TensorStore source;
  TrainOptions save = options_;
  save.epochs = 1;
  save.savePath = checkpoint;
  ASSERT_TRUE(train(kernels_, source, data_.train, data_.test, save, nullptr, error_)) << error_;

  TensorStore store;
  TrainOptions options = options_;
  options.resumePath = checkpoint;
  options.seed = 10;
  EXPECT_FALSE(train(kernels_, store, data_.train, data_.test, options, nullptr, error_));
  EXPECT_EQ(error_, "checkpoint '" + checkpoint +
                        "' was trained with seed 9, this run has seed 10; pass --seed=9 to resume "
                        "it");
  options.initPath = checkpoint;
  EXPECT_FALSE(train(kernels_, store, data_.train, data_.test, options, nullptr, error_));
  EXPECT_EQ(error_, "resuming from a checkpoint and initializing from one exclude each other");
}

//===----------------------------------------------------------------------===//
// The NaN guard.
//===----------------------------------------------------------------------===//

TEST_F(TrainerCheckpoint, NanStopsNamingEpochStepAndTensors) {
  gBadStep = 40; // epoch 2, call 13
  TensorStore store;
  EXPECT_FALSE(train(kernels_, store, data_.train, data_.test, options_, nullptr, error_));
  EXPECT_EQ(error_, "loss became NaN at epoch 2, step 40; try a smaller --lr (it is 0.02); not "
                    "finite after the step: dense.W (1 of 6)");
  // Without a diagnose hook the store holds the state after the bad step.
  EXPECT_TRUE(std::isnan(contents(store, "dense.W")[2]));
}

TEST_F(TrainerCheckpoint, DiagnoseSeesTheExactStateBeforeTheBadStep) {
  gBadStep = 40;
  TensorStore store;
  TrainOptions options = options_;
  options.schedule = "cosine"; // a rate per step: the replay must set the bad step's
  const float rate = float(scheduledLearningRate(options, 40, 2, 4 * kStepsPerEpoch));
  int calls = 0;
  options.diagnose = [&](const StepReplay &replay) {
    ++calls;
    EXPECT_EQ(replay.epoch, 2);
    EXPECT_EQ(replay.step, 40u);
    EXPECT_EQ(replay.callInEpoch, 13);
    EXPECT_EQ(replay.kernel, &step_);
    EXPECT_EQ(replay.ctx->step, 40u);
    EXPECT_EQ(replay.ctx->seed, 9u);
    EXPECT_EQ(replay.lr, rate);
    EXPECT_EQ(replay.ctx->hypers[0], rate);
    EXPECT_TRUE(std::isnan(replay.loss));
    EXPECT_TRUE(replay.replayExact);
    EXPECT_EQ(replay.store, &store);
    // Params and state exactly as step 40 found them the first time.
    EXPECT_TRUE(bitIdentical(modelState(store), gStartOfStep.at(40)));
    // The batch the bad step was fed, row by row.
    EXPECT_EQ(replay.examples, 30);
    EXPECT_FALSE(replay.intTargets);
    for (int64_t row = 0; row < replay.examples; ++row) {
      int64_t example = replay.exampleIndices[row];
      EXPECT_EQ(std::memcmp(replay.input + row * kFeatures,
                            &data_.train.features[example * kFeatures], kFeatures * sizeof(float)),
                0);
      EXPECT_EQ(static_cast<const float *>(replay.target)[row], data_.train.targetsF[example]);
    }
    // Running the kernel there reproduces the bad step.
    replay.kernel->fn(replay.ctx);
    EXPECT_TRUE(std::isnan(store.find("train_step", "loss")->f32()[0]));
    return std::string("diagnosis: %W went bad first");
  };
  EXPECT_FALSE(train(kernels_, store, data_.train, data_.test, options, nullptr, error_));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(error_, fmt::format("loss became NaN at epoch 2, step 40; try a smaller --lr (it is "
                                "0.02, {} at this step); not finite after the step: dense.W (1 of "
                                "6)\ndiagnosis: %W went bad first",
                                rate));
}

TEST_F(TrainerCheckpoint, DiagnoseInTheTailBatch) {
  gBadStep = kStepsPerEpoch - 1; // the tail of epoch 1
  TensorStore store;
  TrainOptions options = options_;
  options.diagnose = [&](const StepReplay &replay) {
    EXPECT_EQ(replay.kernel, &tail_);
    EXPECT_EQ(replay.examples, 20);
    EXPECT_EQ(replay.callInEpoch, 26);
    EXPECT_TRUE(bitIdentical(modelState(store), gStartOfStep.at(kStepsPerEpoch - 1)));
    return std::string();
  };
  EXPECT_FALSE(train(kernels_, store, data_.train, data_.test, options, nullptr, error_));
  EXPECT_EQ(error_.find('\n'), std::string::npos) << error_; // nothing appended
}

TEST_F(TrainerCheckpoint, ReplayNoticesANondeterministicKernel) {
  gBadStep = 5;
  gNondeterministic = true; // the loss depends on how often the kernel ran
  TensorStore store;
  TrainOptions options = options_;
  bool exact = true;
  options.diagnose = [&](const StepReplay &replay) {
    exact = replay.replayExact;
    return std::string();
  };
  EXPECT_FALSE(train(kernels_, store, data_.train, data_.test, options, nullptr, error_));
  EXPECT_FALSE(exact);
  EXPECT_NE(error_.find("\n(replaying the epoch did not reproduce its losses bit for bit: a "
                        "kernel is not deterministic, so the state diagnosed is approximate)"),
            std::string::npos)
      << error_;
}

//===----------------------------------------------------------------------===//
// Classification: softmax regression with i32 labels and a "prediction".
//===----------------------------------------------------------------------===//

constexpr int64_t kClasses = 3;
enum ClassifierBuffer { kCx, kCy, kCW, kCLoss, kCPrediction };

template <int64_t Batch, bool Update> void softmaxKernel(const gradc_step_context *ctx) {
  auto *x = static_cast<const float *>(ctx->buffers[kCx]);
  auto *y = static_cast<const int32_t *>(ctx->buffers[kCy]);
  auto *w = static_cast<float *>(ctx->buffers[kCW]);
  auto *scores = static_cast<float *>(ctx->buffers[kCPrediction]);
  float loss = 0, grad[kClasses * kFeatures] = {};
  for (int64_t i = 0; i < Batch; ++i) {
    float *s = scores + i * kClasses, top = -INFINITY, sum = 0;
    for (int64_t c = 0; c < kClasses; ++c) {
      s[c] = 0;
      for (int64_t j = 0; j < kFeatures; ++j)
        s[c] += w[c * kFeatures + j] * x[i * kFeatures + j];
      top = std::max(top, s[c]);
    }
    for (int64_t c = 0; c < kClasses; ++c)
      sum += std::exp(s[c] - top);
    loss += (std::log(sum) + top - s[y[i]]) / Batch;
    for (int64_t c = 0; c < kClasses; ++c) {
      float p = std::exp(s[c] - top) / sum - (c == y[i] ? 1.0f : 0.0f);
      for (int64_t j = 0; j < kFeatures; ++j)
        grad[c * kFeatures + j] += p * x[i * kFeatures + j] / Batch;
    }
  }
  *static_cast<float *>(ctx->buffers[kCLoss]) = loss;
  if (Update)
    for (int64_t k = 0; k < kClasses * kFeatures; ++k)
      w[k] -= ctx->hypers[0] * grad[k];
}

template <int64_t Batch, bool Update> KernelSpec softmaxKernelSpec(const std::string &name) {
  KernelSpec k;
  k.name = name;
  k.fn = softmaxKernel<Batch, Update>;
  k.batch = Batch;
  k.buffers = {spec("x", Role::Input, {Batch, kFeatures}),
               spec("y", Role::Target, {Batch}, "", /*isInt=*/true),
               spec("W", Role::Param, {kClasses, kFeatures}, "zeros"),
               spec("loss", Role::Output, {}), spec("prediction", Role::Output, {Batch, kClasses})};
  if (Update)
    k.hypers = {"lr"};
  return k;
}

/// x ~ N(0, 1); the label is the argmax of a fixed linear teacher.
Dataset classification(int64_t size, uint64_t seed) {
  Dataset data = makeSyntheticRegression(size, {kFeatures}, {}, seed);
  data.intTargets = true;
  data.targetsF.clear();
  for (int64_t i = 0; i < size; ++i) {
    const float *x = &data.features[i * kFeatures];
    float scores[kClasses] = {x[0] + x[1], x[2] - x[0], x[3] + x[4] - x[5]};
    data.targetsI.push_back(int32_t(std::max_element(scores, scores + kClasses) - scores));
  }
  return data;
}

TEST(TrainerClassification, TestAccuracyInStatsLogAndCsv) {
  Dataset trainData = classification(1000, 1), testData = classification(250, 2);
  KernelSpec step = softmaxKernelSpec<32, true>("train_step");
  KernelSpec stepTail = softmaxKernelSpec<8, true>("train_step_tail"); // 1000 = 31 * 32 + 8
  KernelSpec eval = softmaxKernelSpec<100, false>("eval");
  KernelSpec evalTail = softmaxKernelSpec<50, false>("eval_tail"); // 250 = 2 * 100 + 50
  TrainOptions options;
  options.epochs = 5;
  options.lr = 0.5f;
  options.metricsPath = tempPath("gradc_classification.csv");
  std::ostringstream log;
  options.log = &log;
  TensorStore store;
  std::vector<EpochStats> history;
  std::string error;
  ASSERT_TRUE(train(TrainKernels{&step, &stepTail, &eval, &evalTail}, store, trainData, testData,
                    options, &history, error))
      << error;
  EXPECT_GT(history.back().testAccuracy, 0.9) << log.str();
  EXPECT_NE(log.str().find(fmt::format("accuracy {:.4f}", history.back().testAccuracy)),
            std::string::npos);
  std::vector<std::string> lines = readLines(options.metricsPath);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_NE(lines[5].find(fmt::format(",{},", history.back().testAccuracy)), std::string::npos)
      << lines[5];

  // The accuracy is over all 250 examples: count it here by hand.
  EvalResult result;
  ASSERT_TRUE(evaluate(eval, &evalTail, store, testData, options, result, error)) << error;
  EXPECT_EQ(result.accuracy, history.back().testAccuracy);
  const float *w = store.find("W")->f32();
  int64_t correct = 0;
  for (int64_t i = 0; i < testData.size; ++i) {
    float best = -INFINITY;
    int32_t predicted = 0;
    for (int32_t c = 0; c < kClasses; ++c) {
      float s = 0;
      for (int64_t j = 0; j < kFeatures; ++j)
        s += w[c * kFeatures + j] * testData.features[i * kFeatures + j];
      if (s > best)
        best = s, predicted = c;
    }
    correct += predicted == testData.targetsI[i];
  }
  EXPECT_EQ(result.accuracy, double(correct) / 250.0);
}

TEST(TrainerClassification, TiesGoToTheLowestClass) {
  Dataset testData = classification(300, 3);
  KernelSpec eval = softmaxKernelSpec<100, false>("eval");
  TensorStore store; // W = 0: every score ties
  EvalResult result;
  std::string error;
  ASSERT_TRUE(evaluate(eval, nullptr, store, testData, TrainOptions{}, result, error)) << error;
  int64_t zeros = std::count(testData.targetsI.begin(), testData.targetsI.end(), 0);
  EXPECT_EQ(result.accuracy, double(zeros) / 300.0);
  EXPECT_NEAR(result.loss, std::log(3.0), 1e-6);
}

} // namespace
