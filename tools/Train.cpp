//===- tools/Train.cpp - gradc train --------------------------------------===//
//
// JIT-compiles the model's training step (the optimized training graph) and
// its evaluation (the inference graph: dropout off), then hands both to the
// runtime's training driver.
//
//===----------------------------------------------------------------------===//
#include "codegen/Codegen.h"
#include "ir/Printer.h"
#include "runtime/Checkpoint.h"
#include "runtime/Csv.h"
#include "runtime/Data.h"
#include "runtime/Idx.h"
#include "runtime/Trainer.h"
#include "tools/Commands.h"
#include "tools/Driver.h"
#include "tools/Options.h"

#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <iostream>

namespace gradc::tool {

namespace {

/// The dimensions of one example of a kernel buffer (without the batch).
std::vector<int64_t> exampleDims(const rt::TensorSpec &spec, int64_t batch) {
  std::vector<int64_t> dims = spec.dims;
  if (batch != 0 && !dims.empty())
    dims.erase(dims.begin());
  return dims;
}

} // namespace

/// Loads the data set that --data names, checked against the model's
/// input and target (of `kernel`) and class count (of `eval`'s
/// prediction).  Prints the error and returns false when it does not fit.
bool loadData(const po::variables_map &values, const rt::KernelSpec &kernel,
              const rt::KernelSpec &eval, uint64_t seed, int64_t examples,
              rt::TrainTestSplit &split) {
  auto bad = [](const std::string &message) {
    fail(message);
    return false;
  };
  std::string error;
  std::string dataName = values["data"].as<std::string>();
  bool csv = dataName.starts_with("csv:");
  std::string idxDir = dataName == "fashion-mnist"    ? rt::kFashionMnistDir
                       : dataName.starts_with("idx:") ? dataName.substr(4)
                                                      : "";
  if (dataName != "synthetic" && idxDir.empty() && !csv)
    return bad(fmt::format("unknown data set '{}'; expected synthetic, fashion-mnist, idx:DIR or "
                           "csv:TRAIN.csv[,TEST.csv]",
                           dataName));
  if (csv && !values.count("label"))
    return bad("--data=csv:... needs --label=COLUMN (the target column or columns)");
  const rt::TensorSpec *input = nullptr, *target = nullptr;
  for (const rt::TensorSpec &spec : kernel.buffers) {
    if (spec.role == rt::Role::Input && !input)
      input = &spec;
    if (spec.role == rt::Role::Target && !target)
      target = &spec;
  }
  if (!input || !target)
    return bad(fmt::format("the model needs an input and a target to train or evaluate on data"));
  const rt::KernelSpec &step = kernel;
  if (idxDir.empty() && !csv) {
    if (target->isInt)
      return bad("synthetic data is a regression set; the model's target is an integer label "
                 "(use --data=fashion-mnist or --data=idx:DIR)");
    rt::Dataset data;
    try {
      data = rt::makeSyntheticRegression(examples, exampleDims(*input, step.batch),
                                         exampleDims(*target, step.batch), seed);
    } catch (const std::exception &e) {
      return bad(e.what());
    }
    if (!rt::splitTrainTest(data, 0.2, split, error))
      return bad(error);
  } else {
    if (csv) {
      std::vector<std::string> paths = passes::splitPassList(dataName.substr(4));
      std::vector<std::string> labels = passes::splitPassList(values["label"].as<std::string>());
      if (paths.empty() || paths.size() > 2)
        return bad("--data=csv: expects TRAIN.csv or TRAIN.csv,TEST.csv");
      if (!rt::loadCsv(paths[0], labels, target->isInt, split.train, error) ||
          (paths.size() == 2 && !rt::loadCsv(paths[1], labels, target->isInt, split.test, error)))
        return bad(error);
      idxDir = paths[0];
    } else if (!rt::loadIdxDirectory(idxDir, split.train, split.test, error)) {
      return bad(error);
    }
    // The data must fit the model: features per example and class count.
    int64_t features = 1;
    for (int64_t d : exampleDims(*input, step.batch))
      features *= d;
    if (split.train.featureSize() != features)
      return bad(fmt::format("{} has {} features per example, the model's input '{}' takes {}",
                             idxDir, split.train.featureSize(), input->name, features));
    if (!csv && !target->isInt)
      return bad(fmt::format("{} has class labels; the model's target '{}' is f32 (declare it "
                             "'label {} : i32[...]')",
                             idxDir, target->name, target->name));
    int64_t targetSize = 1;
    for (int64_t d : exampleDims(*target, step.batch))
      targetSize *= d;
    if (!target->isInt && split.train.targetSize() != targetSize)
      return bad(fmt::format("--label names {} column(s); the model's target '{}' takes {} values",
                             split.train.targetSize(), target->name, targetSize));
    int prediction = eval.find("prediction");
    int64_t classes = prediction >= 0 ? eval.buffers[prediction].dims.back() : 0;
    for (const rt::Dataset *set : {&split.train, &split.test})
      for (int64_t i = 0; target->isInt && i < set->size; ++i)
        if (set->targetsI[i] < 0 || set->targetsI[i] >= classes)
          return bad(fmt::format("label {} of example {} of {} is out of range for the model's "
                                 "{} classes",
                                 set->targetsI[i], i, set->description, classes));
  }
  return true;
}

int runTrain(const std::vector<std::string> &args) {
  po::options_description options("train options", 120, 60);
  options.add_options()("epochs", po::value<int64_t>(),
                        "passes over the data (default: the train section's, else 10)")(
      "seed", po::value<uint64_t>(),
      "seed of the initial weights, the data, the shuffling and the dropout masks (default: the "
      "train section's, else 1)")("lr", po::value<float>(),
                                  "learning rate (default: the train section's, else 0.01)")(
      "metrics", po::value<std::string>(), "write one CSV row per epoch to this file")(
      "data", po::value<std::string>()->default_value("synthetic"),
      "synthetic (regression from a fixed random teacher network), fashion-mnist (Debian's "
      "dataset-fashion-mnist), or idx:DIR (any MNIST-format set; pixels scaled to [0, 1])")(
      "examples", po::value<int64_t>()->default_value(2000),
      "size of the synthetic data set (a fifth of it is held out for testing)")(
      "threads", po::value<int>()->default_value(0), "worker threads (0: all cores)")(
      "save", po::value<std::string>(),
      "write a safetensors checkpoint (weights, optimizer state, step) after every epoch")(
      "resume", po::value<std::string>(),
      "continue from a checkpoint of --save: the result equals an uninterrupted run")(
      "init", po::value<std::string>(), "start from the weights of a safetensors file")(
      "label", po::value<std::string>(),
      "with --data=csv:...: the target column (a class label for i32 targets), or comma-separated "
      "columns for an f32 target vector")(
      "clip-grad-norm", po::value<double>(),
      "scale the gradients so their global norm is at most this (overrides the train section)");
  addModelOptions(options);
  po::variables_map values;
  if (int status = parseOptions("train", "FILE.grad [options]", options, args, values); status >= 0)
    return status;
  SourceManager sources;
  Diagnostics diags(&sources);
  LoadedModel model;
  if (!loadModel(values["file"].as<std::string>(), modelOptions(values), false, sources, diags,
                 model))
    return 1;
  // Flags override the model's train section, which overrides the defaults.
  const frontend::TrainSettings &settings = model.settings;
  int64_t epochs =
      values.count("epochs") ? values["epochs"].as<int64_t>() : settings.epochs.value_or(10);
  float lr = values.count("lr") ? values["lr"].as<float>()
                                : static_cast<float>(settings.lr.value_or(0.01));
  uint64_t seed = values.count("seed") ? values["seed"].as<uint64_t>() : settings.seed.value_or(1);
  int64_t examples = values["examples"].as<int64_t>();
  if (epochs < 0)
    return fail(fmt::format("--epochs must be >= 0, got {}", epochs));
  if (examples < 2)
    return fail(fmt::format("--examples must be at least 2, got {}", examples));
  if (!(lr > 0) || !std::isfinite(lr))
    return fail(fmt::format("--lr must be a positive number, got {}", lr));

  if (values.count("clip-grad-norm")) {
    double clip = values["clip-grad-norm"].as<double>();
    if (!(clip > 0) || !std::isfinite(clip))
      return fail(fmt::format("--clip-grad-norm must be a positive number, got {}", clip));
    model.forward->optimizer.clipGradNorm = clip;
  }
  auto compileStart = std::chrono::steady_clock::now();
  std::unique_ptr<ir::Graph> trainGraph = buildStage(*model.forward, GraphStage::Optimized, diags);
  std::unique_ptr<ir::Graph> evalGraph = buildStage(*model.forward, GraphStage::Inference, diags);
  if (!trainGraph || !evalGraph)
    return 1;
  std::string error;
  std::unique_ptr<codegen::Jit> jit = codegen::Jit::create({}, error);
  if (!jit)
    return fail(error);
  rt::KernelSpec step, eval;
  if (!jit->addKernel(*trainGraph, "train_step", step, error) ||
      !jit->addKernel(*evalGraph, "eval", eval, error))
    return fail(error);
  double compileMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - compileStart)
          .count();

  rt::TrainTestSplit split;
  if (!loadData(values, step, eval, seed, examples, split))
    return 1;
  const rt::Dataset &data = split.train;
  int64_t weights = 0, params = 0;
  for (const rt::TensorSpec &spec : step.buffers)
    if (spec.role == rt::Role::Param) {
      weights += spec.numel();
      ++params;
    }
  std::cout << fmt::format(
      "training '{}' ({}): {} params, {} weights; {}: {} train / {} test "
      "examples; {}, lr {}{}, {} epochs, seed {}; JIT {:.0f} ms\n",
      trainGraph->name, model.path, params, weights, data.description, split.train.size,
      split.test.size, ir::formatOptimizer(trainGraph->optimizer), lr,
      settings.schedule == "step"
          ? fmt::format(" (step schedule: x{} every {} epochs)", settings.gamma, settings.stepSize)
      : settings.schedule == "cosine" ? fmt::format(" (cosine schedule down to {})", settings.lrMin)
                                      : std::string(),
      epochs, seed, compileMs);

  rt::TensorStore store(seed);
  rt::TrainOptions trainOptions;
  trainOptions.epochs = epochs;
  trainOptions.seed = seed;
  trainOptions.lr = lr;
  trainOptions.threads = values["threads"].as<int>();
  trainOptions.schedule = settings.schedule;
  trainOptions.stepSize = settings.stepSize;
  trainOptions.gamma = settings.gamma;
  trainOptions.lrMin = settings.lrMin;
  if (values.count("metrics"))
    trainOptions.metricsPath = values["metrics"].as<std::string>();
  trainOptions.modelName = trainGraph->name;
  if (values.count("save"))
    trainOptions.savePath = values["save"].as<std::string>();
  if (values.count("resume") || values.count("init")) {
    if (values.count("resume") && values.count("init"))
      return fail("--resume and --init exclude each other");
    // The kernels create (and initialise) the tensors; the file overwrites them.
    if (!store.addKernel(step, error) || !store.addKernel(eval, error))
      return fail(error);
    bool resume = values.count("resume") > 0;
    std::string path = values[resume ? "resume" : "init"].as<std::string>();
    rt::CheckpointInfo info;
    if (!rt::loadCheckpoint(
            path, store, resume ? rt::CheckpointUse::Resume : rt::CheckpointUse::Init, info, error))
      return fail(error);
    if (resume) {
      if (info.seed != seed)
        return fail(fmt::format("checkpoint '{}' was trained with seed {}, this run has seed {}; "
                                "pass --seed={} to resume it",
                                path, info.seed, seed, info.seed));
      trainOptions.firstEpoch = info.epoch + 1;
      trainOptions.firstStep = info.step;
      std::cout << fmt::format("resuming from '{}' after epoch {} (step {})\n", path, info.epoch,
                               info.step);
    }
  }
  std::vector<rt::EpochStats> history;
  if (!rt::train(step, &eval, store, split.train, split.test, trainOptions, &history, error))
    return fail(error);
  return 0;
}

} // namespace gradc::tool

namespace gradc::tool {

int runEval(const std::vector<std::string> &args) {
  po::options_description options("eval options", 120, 60);
  options.add_options()("weights", po::value<std::string>(),
                        "the safetensors checkpoint to evaluate (from gradc train --save)")(
      "data", po::value<std::string>()->default_value("synthetic"),
      "synthetic, fashion-mnist, idx:DIR or csv:TRAIN.csv[,TEST.csv] (the test split is "
      "evaluated when there is one)")("label", po::value<std::string>(),
                                      "with --data=csv:...: the target column(s)")(
      "examples", po::value<int64_t>()->default_value(2000), "size of the synthetic data set")(
      "seed", po::value<uint64_t>()->default_value(1), "seed of the synthetic data set");
  addModelOptions(options);
  po::variables_map values;
  if (int status =
          parseOptions("eval", "FILE.grad --weights=CHECKPOINT [options]", options, args, values);
      status >= 0)
    return status;
  if (!values.count("weights"))
    return fail("'gradc eval' needs --weights=CHECKPOINT");
  SourceManager sources;
  Diagnostics diags(&sources);
  LoadedModel model;
  if (!loadModel(values["file"].as<std::string>(), modelOptions(values), false, sources, diags,
                 model))
    return 1;
  std::unique_ptr<ir::Graph> evalGraph = buildStage(*model.forward, GraphStage::Inference, diags);
  if (!evalGraph)
    return 1;
  std::string error;
  std::unique_ptr<codegen::Jit> jit = codegen::Jit::create({}, error);
  rt::KernelSpec eval;
  if (!jit || !jit->addKernel(*evalGraph, "eval", eval, error))
    return fail(error);
  rt::TensorStore store;
  rt::CheckpointInfo info;
  std::string weights = values["weights"].as<std::string>();
  if (!store.addKernel(eval, error) ||
      !rt::loadCheckpoint(weights, store, rt::CheckpointUse::Init, info, error))
    return fail(error);
  rt::TrainTestSplit split;
  if (!loadData(values, eval, eval, values["seed"].as<uint64_t>(), values["examples"].as<int64_t>(),
                split))
    return 1;
  const rt::Dataset &data = split.test.empty() ? split.train : split.test;
  rt::TrainOptions runOptions;
  rt::EvalResult result;
  if (!rt::evaluateDataset(eval, store, data, runOptions, result, error))
    return fail(error);
  std::cout << fmt::format("eval '{}' with {} (epoch {}) on {}: loss {:.6f}", evalGraph->name,
                           weights, info.epoch, data.description, result.loss);
  if (!std::isnan(result.accuracy))
    std::cout << fmt::format("  accuracy {:.4f}", result.accuracy);
  std::cout << fmt::format("  ({} examples{})\n", result.examples,
                           result.skipped ? fmt::format(", last {} skipped", result.skipped) : "");
  return 0;
}

} // namespace gradc::tool
