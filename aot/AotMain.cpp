//===- aot/AotMain.cpp - The main of a standalone trainer -----------------===//
//
// `gradc build` links this main with a model's object into DIR/<model>-train.
// The link names the model's descriptor gradc_aot_trainer_model (an alias
// of gradc_model_<name>, --defsym), so one main serves every model.  It
// takes the flags of `gradc train` (trainer/TrainerCommand.h) and runs the
// same trainer on the kernels the descriptor lists: the same model, seed,
// data and thread count give the weights `gradc train` gives, bit for bit.
//
// Shapes are static and the data set is known only at run time, so the
// examples left over when the batch does not divide it are trained and
// evaluated by a tail kernel only when `gradc build --tail-batches=...`
// compiled one for exactly that many; otherwise they are skipped, and the
// first epoch line says so.
//
//===----------------------------------------------------------------------===//
#include "runtime/AotKernels.h"
#include "runtime/AotModel.h"
#include "runtime/ThreadPool.h"
#include "runtime/Trainer.h"
#include "trainer/TrainerCommand.h"

#include <boost/program_options.hpp>
#include <filesystem>
#include <fmt/format.h>
#include <iostream>

extern "C" const gradc_aot_model gradc_aot_trainer_model;

namespace {

using namespace gradc;
namespace po = boost::program_options;

int fail(const std::string &program, const std::string &message) {
  std::cerr << program << ": error: " << message << '\n';
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  gradc::rt::reserveKernelStacks();
  const gradc_aot_model &model = gradc_aot_trainer_model;
  std::string program = std::filesystem::path(argc > 0 ? argv[0] : "trainer").filename().string();
  po::options_description options(
      fmt::format("{}: trains model '{}' ({}), compiled ahead of time for {}.\n\noptions", program,
                  model.name, model.source, model.target),
      120, 60);
  trainer::addTrainOptions(options);
  options.add_options()("help,h", "print this help");
  po::variables_map values;
  try {
    po::store(po::command_line_parser(argc, argv).options(options).run(), values);
    po::notify(values);
  } catch (const po::error &e) {
    return fail(program, fmt::format("{} (see '{} --help')", e.what(), program));
  }
  if (values.count("help")) {
    std::cout << fmt::format("usage: {} [options]\n\n", program) << options << '\n';
    return 0;
  }

  trainer::TrainDefaults defaults;
  defaults.epochs = model.epochs;
  defaults.seed = model.seed;
  defaults.lr = model.lr;
  defaults.schedule = model.schedule;
  defaults.stepSize = model.step_size;
  defaults.gamma = model.gamma;
  defaults.lrMin = model.lr_min;
  rt::TrainOptions trainOptions;
  trainer::DataSource source;
  std::string error;
  std::vector<rt::KernelSpec> kernels;
  if (!trainer::trainOptionsFrom(values, defaults, trainOptions, error) ||
      !trainer::dataSourceFrom(values, trainOptions.seed, source, error) ||
      !rt::aotKernelSpecs(model, kernels, error))
    return fail(program, error);
  const rt::KernelSpec *step = rt::findKernel(kernels, "train_step");
  const rt::KernelSpec *eval = rt::findKernel(kernels, "eval");
  if (!step)
    return fail(program, fmt::format("model '{}' has no train_step kernel", model.name));

  rt::DataShape shape;
  rt::TrainTestSplit split;
  if (!rt::dataShapeOf(*step, eval, shape, error) ||
      !trainer::loadDataSource(source, shape, split, error))
    return fail(program, error);

  // Tail kernels for exactly the examples the batch leaves over, if built.
  rt::TrainKernels run{step, nullptr, eval, nullptr};
  if (int64_t tail = trainer::tailBatch(split.train.size, step->batch); tail > 0)
    run.stepTail = rt::findKernel(kernels, "train_step_tail", tail);
  if (eval)
    if (int64_t tail = trainer::tailBatch(split.test.size, eval->batch); tail > 0)
      run.evalTail = rt::findKernel(kernels, "eval_tail", tail);

  trainOptions.modelName = model.name;
  std::cout << trainer::describeRun(model.name, model.source, *step, model.optimizer, split,
                                    trainOptions)
            << "; ahead of time\n";
  rt::TensorStore store(trainOptions.seed);
  if (!rt::train(run, store, split.train, split.test, trainOptions, nullptr, error))
    return fail(program, error);
  return 0;
}
