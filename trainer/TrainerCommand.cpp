//===- trainer/TrainerCommand.cpp - The trainer's command line ------------===//
#include "trainer/TrainerCommand.h"
#include "runtime/Checkpoint.h"
#include "runtime/Csv.h"
#include "runtime/Idx.h"
#include "runtime/InflatedCache.h"

#include <boost/program_options.hpp>
#include <cmath>
#include <fmt/format.h>

namespace gradc::trainer {

namespace {

/// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> splitCommas(const std::string &text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos)
      end = text.size();
    if (end > start)
      parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

/// Whether --data names a kind of data set that loadDataSource knows.
bool knownDataSet(const std::string &spec, std::string &error) {
  if (spec == "synthetic" || spec == "fashion-mnist" || spec.starts_with("idx:") ||
      spec.starts_with("csv:"))
    return true;
  error = fmt::format("unknown data set '{}'; expected synthetic, fashion-mnist, idx:DIR or "
                      "csv:TRAIN.csv[,TEST.csv]",
                      spec);
  return false;
}

} // namespace

void addDataOptions(po::options_description &options) {
  options.add_options()("data", po::value<std::string>()->default_value("synthetic"),
                        "synthetic (regression from a fixed random teacher network), "
                        "fashion-mnist (Debian's dataset-fashion-mnist), idx:DIR (any "
                        "MNIST-format set, gzipped or not; pixels scaled to [0, 1]; gzipped files "
                        "are inflated once, into $GRADC_DATA_CACHE_DIR, else "
                        "~/.cache/gradc/data, 'off' for none) or "
                        "csv:TRAIN.csv[,TEST.csv] (a header row; see --label)")(
      "label", po::value<std::string>(),
      "with --data=csv:...: the target column (a class label for i32 targets), or "
      "comma-separated columns for an f32 target vector")(
      "examples", po::value<int64_t>()->default_value(2000),
      "size of the synthetic data set (a fifth of it is held out for testing)");
}

void addTrainOptions(po::options_description &options) {
  addDataOptions(options);
  options.add_options()("epochs", po::value<int64_t>(),
                        "passes over the data (default: the train section's, else 10)")(
      "seed", po::value<uint64_t>(),
      "seed of the initial weights, the synthetic data, the shuffling and the dropout masks "
      "(default: the train section's, else 1)")(
      "lr", po::value<double>(), "learning rate (default: the train section's, else 0.01)")(
      "metrics", po::value<std::string>(), "write one CSV row per epoch to this file")(
      "threads", po::value<int>()->default_value(0),
      "worker threads (0: all cores); results are bit-identical for a fixed count")(
      "save", po::value<std::string>(),
      "write a safetensors checkpoint (weights, optimizer state, step) after every epoch; the "
      "old file is replaced only once the new one is complete")(
      "resume", po::value<std::string>(),
      "continue from a checkpoint of --save: the result equals an uninterrupted run")(
      "init", po::value<std::string>(), "start from the weights of a safetensors file")(
      "progress", po::value<std::string>()->default_value("auto"),
      "the updating progress bar: auto (on a terminal), always, never");
}

bool dataSourceFrom(const po::variables_map &values, uint64_t seed, DataSource &source,
                    std::string &error) {
  source.spec = values["data"].as<std::string>();
  // Checked here, before the kernels compile, not once the data loads.
  if (!knownDataSet(source.spec, error))
    return false;
  if (values.count("label"))
    source.labels = splitCommas(values["label"].as<std::string>());
  source.examples = values["examples"].as<int64_t>();
  source.seed = values.count("seed") ? values["seed"].as<uint64_t>() : seed;
  source.inflatedCacheDir = rt::defaultInflatedCacheDir();
  if (source.examples < 2) {
    error = fmt::format("--examples must be at least 2, got {}", source.examples);
    return false;
  }
  if (source.spec.starts_with("csv:") && source.labels.empty()) {
    error = "--data=csv:... needs --label=COLUMN (the target column or columns)";
    return false;
  }
  return true;
}

bool trainOptionsFrom(const po::variables_map &values, const TrainDefaults &defaults,
                      rt::TrainOptions &options, std::string &error) {
  auto bad = [&](std::string message) {
    error = std::move(message);
    return false;
  };
  options.epochs = values.count("epochs") ? values["epochs"].as<int64_t>() : defaults.epochs;
  options.seed = values.count("seed") ? values["seed"].as<uint64_t>() : defaults.seed;
  double lr = values.count("lr") ? values["lr"].as<double>() : defaults.lr;
  if (options.epochs < 0)
    return bad(fmt::format("--epochs must be >= 0, got {}", options.epochs));
  if (!(lr > 0) || !std::isfinite(lr))
    return bad(fmt::format("--lr must be a positive number, got {}", lr));
  options.lr = static_cast<float>(lr);
  options.schedule = defaults.schedule;
  options.stepSize = defaults.stepSize;
  options.gamma = defaults.gamma;
  options.lrMin = defaults.lrMin;
  options.threads = values["threads"].as<int>();
  if (options.threads < 0)
    return bad(fmt::format("--threads must be >= 0 (0: all cores), got {}", options.threads));
  // Checked now, not when the run ends and there is something to lose.
  std::string pathError;
  if (values.count("metrics")) {
    options.metricsPath = values["metrics"].as<std::string>();
    if (!rt::replaceableByRename(options.metricsPath, "metrics file", pathError))
      return bad(pathError);
  }
  if (values.count("save")) {
    options.savePath = values["save"].as<std::string>();
    if (!rt::replaceableByRename(options.savePath, "checkpoint", pathError))
      return bad(pathError);
  }
  if (values.count("resume") && values.count("init"))
    return bad("--resume and --init exclude each other");
  if (values.count("resume"))
    options.resumePath = values["resume"].as<std::string>();
  if (values.count("init"))
    options.initPath = values["init"].as<std::string>();
  std::string progress = values["progress"].as<std::string>();
  if (progress == "auto")
    options.progress = rt::ProgressMode::Auto;
  else if (progress == "always")
    options.progress = rt::ProgressMode::Always;
  else if (progress == "never")
    options.progress = rt::ProgressMode::Never;
  else
    return bad(fmt::format("--progress must be auto, always or never, got '{}'", progress));
  return true;
}

bool loadDataSource(const DataSource &source, const rt::DataShape &shape, rt::TrainTestSplit &split,
                    std::string &error) {
  const std::string &spec = source.spec;
  if (spec == "synthetic") {
    if (shape.intTargets) {
      error = fmt::format("synthetic data is a regression set; the model's target '{}' is an "
                          "integer label (use --data=fashion-mnist, idx:DIR or csv:...)",
                          shape.targetName);
      return false;
    }
    rt::Dataset data;
    try {
      data = rt::makeSyntheticRegression(source.examples, {shape.features}, {shape.targetSize},
                                         source.seed);
    } catch (const std::exception &e) {
      error = e.what();
      return false;
    }
    return rt::splitTrainTest(data, 0.2, split, error);
  }
  std::string where;
  if (spec == "fashion-mnist" || spec.starts_with("idx:")) {
    where = spec == "fashion-mnist" ? std::string(rt::kFashionMnistDir) : spec.substr(4);
    if (!rt::loadIdxDirectory(where, split.train, split.test, error, source.inflatedCacheDir))
      return false;
    if (!shape.intTargets) {
      error = fmt::format("{} has class labels; the model's target '{}' is f32 (declare it "
                          "'label {} : i32[...]')",
                          where, shape.targetName, shape.targetName);
      return false;
    }
  } else if (spec.starts_with("csv:")) {
    std::vector<std::string> paths = splitCommas(spec.substr(4));
    if (paths.empty() || paths.size() > 2) {
      error = "--data=csv: expects TRAIN.csv or TRAIN.csv,TEST.csv";
      return false;
    }
    if (!rt::loadCsvTrainTest(paths[0], paths.size() == 2 ? paths[1] : std::string(), source.labels,
                              shape.intTargets, split, error))
      return false;
  } else {
    knownDataSet(spec, error); // says which kinds there are
    return false;
  }
  return rt::checkDataFits(split.train, "", shape, error) &&
         (split.test.empty() || rt::checkDataFits(split.test, "", shape, error));
}

std::string describeRun(const std::string &modelName, const std::string &modelPath,
                        const rt::KernelSpec &step, const std::string &optimizer,
                        const rt::TrainTestSplit &split, const rt::TrainOptions &options) {
  int64_t weights = 0, params = 0;
  for (const rt::TensorSpec &spec : step.buffers)
    if (spec.role == rt::Role::Param) {
      weights += spec.numel();
      ++params;
    }
  std::string schedule =
      options.schedule == "step"
          ? fmt::format(" (step schedule: x{} every {} epochs)", options.gamma, options.stepSize)
      : options.schedule == "cosine" ? fmt::format(" (cosine schedule down to {})", options.lrMin)
                                     : std::string();
  return fmt::format("training '{}' ({}): {} params, {} weights; {}: {} train / {} test examples; "
                     "batch {}; {}, lr {}{}, {} epochs, seed {}",
                     modelName, modelPath, params, weights, split.train.description,
                     split.train.size, split.test.size, step.batch > 0 ? step.batch : 1, optimizer,
                     options.lr, schedule, options.epochs, options.seed);
}

} // namespace gradc::trainer
