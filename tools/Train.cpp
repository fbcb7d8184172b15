//===- tools/Train.cpp - gradc train, gradc eval --------------------------===//
//
// JIT-compiles the model's training step (the optimized training graph) and
// its evaluation (the inference graph: dropout off), plus "tail" versions of
// both for the examples left over when the batch does not divide a data
// set, then hands them to the runtime's training driver through the command
// line that ahead-of-time trainers share (trainer/TrainerCommand.h).
//
//===----------------------------------------------------------------------===//
#include "codegen/Codegen.h"
#include "ir/Printer.h"
#include "runtime/Checkpoint.h"
#include "runtime/Health.h"
#include "runtime/Trainer.h"
#include "tools/Commands.h"
#include "tools/Driver.h"
#include "tools/NumericGuard.h"
#include "tools/Options.h"
#include "trainer/TrainerCommand.h"

#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <future>
#include <iostream>
#include <thread>

namespace gradc::tool {

namespace {

using Clock = std::chrono::steady_clock;

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// Kernels to compile together (in parallel): each is a stage of a
/// forward graph, run through the passes when added.  A batch may compile
/// on another thread than the one that reads the kernels' specs: compile()
/// writes copies, and publish() hands their code to the specs.
class KernelBatch {
public:
  /// `rarelyRun`: compiled for compile speed (a tail kernel, called once
  /// per epoch).
  bool add(const ir::Graph &forward, GraphStage stage, const std::string &name,
           rt::KernelSpec &spec, Diagnostics &diags, bool rarelyRun = false) {
    auto start = Clock::now();
    std::unique_ptr<ir::Graph> graph = buildStage(forward, stage, diags);
    passesMs_ += millisecondsSince(start);
    if (!graph)
      return false;
    // The signature now, the code in compile(): data can be checked
    // against the model before anything is compiled.
    spec = codegen::describeKernel(*graph, name);
    auto kernel = std::make_unique<Kernel>();
    kernel->spec = &spec;
    kernel->request = {graph.get(), name, &kernel->compiled, rarelyRun};
    kernel->graph = std::move(graph);
    kernels_.push_back(std::move(kernel));
    return true;
  }
  /// Compiles the kernels added since the last call on `threads` threads
  /// (0: all cores).
  bool compile(codegen::Jit &jit, std::string &error, unsigned threads = 0) {
    std::vector<codegen::KernelRequest> requests;
    for (size_t i = compiled_; i < kernels_.size(); ++i)
      requests.push_back(kernels_[i]->request);
    if (!requests.empty() && !jit.addKernels(requests, error, threads))
      return false;
    compiled_ = kernels_.size();
    return true;
  }
  /// Sets the code of each compiled kernel in the spec add() filled.
  void publish() {
    for (size_t i = 0; i < compiled_; ++i)
      kernels_[i]->spec->fn = kernels_[i]->compiled.fn;
  }

  /// Time spent in the graph passes of add().
  double passesMs() const { return passesMs_; }

private:
  struct Kernel {
    std::unique_ptr<ir::Graph> graph;
    codegen::KernelRequest request;
    rt::KernelSpec *spec = nullptr; ///< the caller's, filled by add()
    rt::KernelSpec compiled;        ///< written by compile()
  };
  std::vector<std::unique_ptr<Kernel>> kernels_;
  size_t compiled_ = 0;
  double passesMs_ = 0;
};

/// Compiles the stage `stage` of `forward` as kernel `name` into `spec`.
bool compileKernel(codegen::Jit &jit, const ir::Graph &forward, GraphStage stage,
                   const std::string &name, Diagnostics &diags, rt::KernelSpec &spec) {
  KernelBatch batch;
  std::string error;
  if (!batch.add(forward, stage, name, spec, diags))
    return false;
  if (!batch.compile(jit, error)) {
    fail(error);
    return false;
  }
  batch.publish();
  return true;
}

/// The forward graph for `batch` examples: the model's own, or one
/// elaborated again for a tail batch (kept in `owned`).
const ir::Graph *forwardFor(const LoadedModel &model, const ModelOptions &options, int64_t batch,
                            std::vector<std::unique_ptr<ir::Graph>> &owned, Diagnostics &diags) {
  if (batch == model.forward->batch)
    return model.forward.get();
  for (const auto &graph : owned)
    if (graph->batch == batch)
      return graph.get();
  std::unique_ptr<ir::Graph> graph = elaborateWithBatch(model, options, batch, diags);
  if (!graph)
    return nullptr;
  owned.push_back(std::move(graph));
  return owned.back().get();
}

/// One line per kernel under the LLVM phases: the CPU time of its IR
/// generation, optimisation and machine code.
template <typename Row>
std::string perKernelRows(const codegen::CompileTimes &times, const Row &row) {
  std::string rows;
  for (const codegen::KernelCompileTime &kernel : times.perKernel)
    rows += row(fmt::format("  {}{}", kernel.name, kernel.cached ? " (cached)" : ""),
                kernel.lowerMs + kernel.optimizeMs + kernel.machineCodeMs);
  return rows;
}

} // namespace

int runTrain(const std::vector<std::string> &args) {
  po::options_description options("train options", 120, 60);
  trainer::addTrainOptions(options);
  options.add_options()(
      "clip-grad-norm", po::value<double>(),
      "scale the gradients so their global norm is at most this (overrides the train section)")(
      "health", po::value<int64_t>(),
      "every N steps print per parameter the norms of weights, gradient and update, and per "
      "layer the mean and std of activations; warn about vanishing or exploding gradients")(
      "time-report", po::bool_switch(),
      "print where the time went: parsing, graph passes, LLVM IR, LLVM optimisation, machine "
      "code (and per kernel), the JIT before training and in the background, data loading, "
      "training")(
      "diagnose", po::value<bool>()->default_value(true),
      "when the loss goes NaN or Inf, replay the step in the reference interpreter and name "
      "the first bad value (costs one copy of the weights per epoch)");
  addPipelineOption(options);
  addModelOptions(options);
  po::variables_map values;
  if (int status = parseOptions("train", "FILE.grad [options]", options, args, values); status >= 0)
    return status;
  SourceManager sources;
  Diagnostics diags(&sources);
  LoadedModel model;
  ModelOptions modelFlags = modelOptions(values);
  auto runStart = Clock::now();
  if (!loadModel(values["file"].as<std::string>(), modelFlags, false, sources, diags, model))
    return 1;
  const double parseMs = millisecondsSince(runStart);
  // Flags override the model's train section, which overrides the defaults.
  const frontend::TrainSettings &settings = model.settings;
  trainer::TrainDefaults defaults;
  defaults.epochs = settings.epochs.value_or(defaults.epochs);
  defaults.seed = settings.seed.value_or(defaults.seed);
  defaults.lr = settings.lr.value_or(defaults.lr);
  defaults.schedule = settings.schedule;
  defaults.stepSize = settings.stepSize;
  defaults.gamma = settings.gamma;
  defaults.lrMin = settings.lrMin;
  rt::TrainOptions trainOptions;
  trainer::DataSource source;
  std::string error;
  if (!trainer::trainOptionsFrom(values, defaults, trainOptions, error) ||
      !trainer::dataSourceFrom(values, trainOptions.seed, source, error))
    return fail(error);
  if (values.count("clip-grad-norm")) {
    double clip = values["clip-grad-norm"].as<double>();
    if (!(clip > 0) || !std::isfinite(clip))
      return fail(fmt::format("--clip-grad-norm must be a positive number, got {}", clip));
    model.forward->optimizer.clipGradNorm = clip;
  }

  int64_t healthInterval = values.count("health") ? values["health"].as<int64_t>() : 0;
  if (values.count("health") && healthInterval < 1)
    return fail(fmt::format("--health must be a number of steps >= 1, got {}", healthInterval));
  const GraphStage stepStage = healthInterval > 0 ? GraphStage::Watched : GraphStage::Optimized;

  // The kernels' signatures first, to check the data against.  Then the
  // data set loads on a thread of its own while the training step compiles
  // on all cores: loading is one gzip stream, so it would leave a core idle.
  // The evaluation and tail kernels are first called at the end of the
  // first epoch: they compile on one thread while training runs, and the
  // trainer waits for them only if it gets there first.
  rt::KernelSpec step, eval, stepTail, evalTail;
  KernelBatch batch, lateBatch;
  if (!batch.add(*model.forward, stepStage, "train_step", step, diags) ||
      !lateBatch.add(*model.forward, GraphStage::Inference, "eval", eval, diags))
    return 1;
  rt::DataShape shape;
  if (!rt::dataShapeOf(step, &eval, shape, error))
    return fail(error);
  rt::TrainTestSplit split;
  std::string dataError;
  double dataMs = 0;
  // (Declared after what it writes: an early return waits for it.)
  std::future<bool> loading = std::async(std::launch::async, [&] {
    auto dataStart = Clock::now();
    bool loaded = trainer::loadDataSource(source, shape, split, dataError);
    dataMs = millisecondsSince(dataStart);
    return loaded;
  });

  // Static shapes: the examples left over by the batch get kernels of
  // their own, compiled for exactly that many.
  std::vector<std::unique_ptr<ir::Graph>> tailForwards;
  rt::TrainKernels kernels{&step, nullptr, &eval, nullptr};
  auto addTails = [&](int64_t trainCount, int64_t testCount) {
    if (int64_t tail = trainer::tailBatch(trainCount, step.batch); tail > 0) {
      const ir::Graph *forward = forwardFor(model, modelFlags, tail, tailForwards, diags);
      if (!forward || !lateBatch.add(*forward, stepStage, "train_step_tail", stepTail, diags,
                                     /*rarelyRun=*/true))
        return false;
      kernels.stepTail = &stepTail;
    }
    if (int64_t tail = trainer::tailBatch(testCount, eval.batch); tail > 0) {
      const ir::Graph *forward = forwardFor(model, modelFlags, tail, tailForwards, diags);
      if (!forward || !lateBatch.add(*forward, GraphStage::Inference, "eval_tail", evalTail, diags,
                                     /*rarelyRun=*/true))
        return false;
      kernels.evalTail = &evalTail;
    }
    return true;
  };
  auto compileStart = Clock::now();
  codegen::CodegenOptions codegenOptions;
  codegenOptions.cacheDir = kernelCacheDir();
  if (!pipelineFrom(values, codegenOptions.pipeline, error))
    return fail(error);
  std::unique_ptr<codegen::Jit> jit = codegen::Jit::create(codegenOptions, error);
  if (!jit)
    return fail(error);
  if (!batch.compile(*jit, error))
    return fail(error);
  batch.publish();
  const double compileMs = millisecondsSince(compileStart) + batch.passesMs();
  if (!loading.get())
    return fail(dataError);
  if (!addTails(split.train.size, split.test.size))
    return 1;

  // (Declared after the batch and the Jit it uses: an early return waits
  // for it before they go.)
  std::string lateError;
  double lateMs = 0;
  std::future<bool> lateCompile = std::async(std::launch::async, [&] {
    auto lateStart = Clock::now();
    bool compiled = lateBatch.compile(*jit, lateError, /*threads=*/1);
    lateMs = millisecondsSince(lateStart);
    return compiled;
  });
  trainOptions.awaitLateKernels = [&](std::string &awaitError) {
    if (!lateCompile.get()) {
      awaitError = lateError;
      return false;
    }
    lateBatch.publish();
    return true;
  };

  if (values["diagnose"].as<bool>())
    trainOptions.diagnose = [&](const rt::StepReplay &replay) {
      const ir::Graph *forward =
          replay.kernel == &step
              ? model.forward.get()
              : forwardFor(model, modelFlags, replay.kernel->batch, tailForwards, diags);
      std::unique_ptr<ir::Graph> train =
          forward ? buildStage(*forward, GraphStage::Train, diags) : nullptr;
      return train ? diagnoseStep(*train, sources, replay)
                   : std::string("(no diagnosis: the training graph did not build)");
    };
  trainOptions.modelName = model.forward->name;
  std::cout << trainer::describeRun(model.forward->name, model.path, step,
                                    ir::formatOptimizer(model.forward->optimizer), split,
                                    trainOptions)
            << fmt::format("; JIT {:.0f} ms\n", compileMs);

  rt::TensorStore store(trainOptions.seed);
  std::unique_ptr<rt::HealthMonitor> health;
  if (healthInterval > 0) {
    for (const rt::KernelSpec *kernel : {kernels.step, kernels.stepTail})
      if (kernel && !store.addKernel(*kernel, error))
        return fail(error);
    health = std::make_unique<rt::HealthMonitor>(
        store, std::vector<const rt::KernelSpec *>{kernels.step, kernels.stepTail}, healthInterval,
        error);
    if (!health->valid())
      return fail(error);
    trainOptions.observer = health.get();
  }
  std::vector<rt::EpochStats> history;
  auto trainStart = Clock::now();
  if (!rt::train(kernels, store, split.train, split.test, trainOptions, &history, error))
    return fail(error);
  if (lateCompile.valid())
    lateCompile.wait(); // the trainer did not need them: no test set, no tails
  if (values["time-report"].as<bool>()) {
    const codegen::CompileTimes &times = jit->times();
    double trainMs = millisecondsSince(trainStart), totalMs = millisecondsSince(runStart);
    auto row = [&](const std::string &what, double ms) {
      return fmt::format("  {:<34} {:>10.1f} ms {:>6.1f}%\n", what, ms, 100 * ms / totalMs);
    };
    std::cout << fmt::format("time report ({} kernels, {} from the kernel cache; LLVM phases are "
                             "CPU time summed over threads):\n",
                             times.kernels, times.cached)
              << row("parse and elaborate", parseMs)
              << row("graph passes", batch.passesMs() + lateBatch.passesMs())
              << row("LLVM IR generation", times.lowerMs)
              << row("LLVM optimisation", times.optimizeMs)
              << row("machine code", times.machineCodeMs) << perKernelRows(times, row)
              << row("JIT before training (wall)", compileMs)
              << row("JIT in the background (wall)", lateMs)
              << row("data loading (overlaps the JIT)", dataMs)
              << row("training and evaluation", trainMs) << row("total", totalMs);
  }
  return 0;
}

int runEval(const std::vector<std::string> &args) {
  po::options_description options("eval options", 120, 60);
  trainer::addDataOptions(options);
  options.add_options()("weights", po::value<std::string>(),
                        "the safetensors checkpoint to evaluate (from gradc train --save)")(
      "seed", po::value<uint64_t>()->default_value(1), "seed of the synthetic data set")(
      "threads", po::value<int>()->default_value(0), "worker threads (0: all cores)");
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
  ModelOptions modelFlags = modelOptions(values);
  if (!loadModel(values["file"].as<std::string>(), modelFlags, false, sources, diags, model))
    return 1;
  std::string error;
  trainer::DataSource source;
  if (!trainer::dataSourceFrom(values, values["seed"].as<uint64_t>(), source, error))
    return fail(error);
  codegen::CodegenOptions codegenOptions;
  codegenOptions.cacheDir = kernelCacheDir();
  std::unique_ptr<codegen::Jit> jit = codegen::Jit::create(codegenOptions, error);
  if (!jit)
    return fail(error);
  rt::KernelSpec eval, evalTail;
  if (!compileKernel(*jit, *model.forward, GraphStage::Inference, "eval", diags, eval))
    return 1;
  rt::TensorStore store;
  rt::CheckpointInfo info;
  std::string weights = values["weights"].as<std::string>();
  if (!store.addKernel(eval, error) ||
      !rt::loadCheckpoint(weights, store, rt::CheckpointUse::Init, info, error))
    return fail(error);
  rt::DataShape shape;
  rt::TrainTestSplit split;
  if (!rt::dataShapeOf(eval, &eval, shape, error) ||
      !trainer::loadDataSource(source, shape, split, error))
    return fail(error);
  const rt::Dataset &data = split.test.empty() ? split.train : split.test;
  std::vector<std::unique_ptr<ir::Graph>> tailForwards;
  const rt::KernelSpec *tailKernel = nullptr;
  if (int64_t tail = trainer::tailBatch(data.size, eval.batch); tail > 0) {
    const ir::Graph *forward = forwardFor(model, modelFlags, tail, tailForwards, diags);
    if (!forward ||
        !compileKernel(*jit, *forward, GraphStage::Inference, "eval_tail", diags, evalTail))
      return 1;
    tailKernel = &evalTail;
  }
  rt::TrainOptions runOptions;
  runOptions.threads = values["threads"].as<int>();
  rt::EvalResult result;
  if (!rt::evaluate(eval, tailKernel, store, data, runOptions, result, error))
    return fail(error);
  std::cout << fmt::format("eval '{}' with {} (epoch {}) on {}: loss {:.6f}", model.forward->name,
                           weights, info.epoch, data.description, result.loss);
  if (!std::isnan(result.accuracy))
    std::cout << fmt::format("  accuracy {:.4f}", result.accuracy);
  std::cout << fmt::format("  ({} examples{})\n", result.examples,
                           result.skipped ? fmt::format(", last {} skipped", result.skipped) : "");
  return 0;
}

} // namespace gradc::tool
