//===- tools/Driver.cpp - Shared steps of the gradc subcommands -----------===//
#include "tools/Driver.h"
#include "ir/Verifier.h"
#include "runtime/CacheDirs.h"

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>
#include <iostream>
#include <sys/stat.h>

namespace gradc::tool {

void addModelOptions(po::options_description &options) {
  options.add_options()("batch", po::value<int64_t>(),
                        "batch size for models whose inputs use 'batch'")(
      "model", po::value<std::string>(), "which model of the file (when it has several)");
}

ModelOptions modelOptions(const po::variables_map &values) {
  ModelOptions options;
  if (values.count("batch"))
    options.batch = values["batch"].as<int64_t>();
  if (values.count("model"))
    options.model = values["model"].as<std::string>();
  return options;
}

void addPipelineOption(po::options_description &options) {
  options.add_options()("llvm-pipeline", po::value<std::string>()->default_value("kernel"),
                        "LLVM passes run on the kernels: kernel (the few that gradc's lowering "
                        "needs) or default (LLVM's -O3, to compare)");
}

bool pipelineFrom(const po::variables_map &values, codegen::Pipeline &pipeline,
                  std::string &error) {
  const std::string &name = values["llvm-pipeline"].as<std::string>();
  if (name == "kernel")
    pipeline = codegen::Pipeline::Kernel;
  else if (name == "default")
    pipeline = codegen::Pipeline::LLVMDefault;
  else {
    error = fmt::format("--llvm-pipeline must be 'kernel' or 'default', got '{}'", name);
    return false;
  }
  return true;
}

std::string kernelCacheDir() {
  const std::string root = rt::cacheDirFromEnvironment("GRADC_CACHE_DIR", "kernels");
  if (root.empty())
    return root;
  // One directory per build of gradc, so the objects of old builds, which
  // no key of this one can name (the key covers the build: codegen/Jit.cpp,
  // cachePath), can be removed together.
  struct stat self;
  if (::stat("/proc/self/exe", &self) != 0)
    return "";
  return fmt::format("{}/{:x}-{:x}", root, uint64_t(self.st_size),
                     uint64_t(self.st_mtim.tv_sec) * 1000000000ull +
                         uint64_t(self.st_mtim.tv_nsec));
}

int fail(const std::string &message) {
  std::cerr << "gradc: error: " << message << '\n';
  return 1;
}

bool loadModel(const std::string &path, const ModelOptions &options, bool parseOnly,
               SourceManager &sources, Diagnostics &diags, LoadedModel &model) {
  model.path = path;
  const std::string *file = nullptr;
  if (!readSourceFile(path, "model file", sources, diags, &file))
    return false;
  model.ast = frontend::parseModelFile(sources.text(file), file, diags);
  if (!model.ast)
    return false;
  if (parseOnly)
    return true;
  frontend::ElaborateOptions elaborateOptions;
  elaborateOptions.batch = options.batch;
  elaborateOptions.model = options.model;
  elaborateOptions.settings = &model.settings;
  model.forward = frontend::elaborate(*model.ast, elaborateOptions, diags);
  return model.forward != nullptr && ir::verify(*model.forward, diags);
}

std::unique_ptr<ir::Graph> elaborateWithBatch(const LoadedModel &model, const ModelOptions &options,
                                              int64_t batch, Diagnostics &diags) {
  frontend::ElaborateOptions elaborateOptions;
  elaborateOptions.batch = batch;
  elaborateOptions.model = options.model;
  std::unique_ptr<ir::Graph> forward = frontend::elaborate(*model.ast, elaborateOptions, diags);
  if (!forward || !ir::verify(*forward, diags))
    return nullptr;
  forward->optimizer = model.forward->optimizer; // --clip-grad-norm and friends
  return forward;
}

std::unique_ptr<ir::Graph> buildStage(const ir::Graph &forward, GraphStage stage,
                                      Diagnostics &diags, const passes::PipelineOptions &options) {
  std::vector<std::string> names;
  switch (stage) {
  case GraphStage::Backward:
    names = passes::gradientPipeline();
    break;
  case GraphStage::Train:
    names = passes::trainPipeline();
    break;
  case GraphStage::Optimized:
  case GraphStage::Watched:
    names = passes::trainPipeline();
    if (stage == GraphStage::Watched) // after autodiff, before the optimizer consumes grad.*
      names.insert(std::find(names.begin(), names.end(), "optimizer"), "health");
    for (const std::string &name : passes::optimizePipeline())
      names.push_back(name);
    break;
  case GraphStage::Gradient:
    names = passes::gradientPipeline();
    for (const std::string &name : passes::optimizePipeline())
      names.push_back(name);
    break;
  case GraphStage::Inference:
    names = passes::inferencePipeline();
    break;
  }
  std::unique_ptr<ir::Graph> graph = forward.clone();
  if (!passes::runPipeline(*graph, names, diags, options))
    return nullptr;
  return graph;
}

} // namespace gradc::tool
