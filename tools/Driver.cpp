//===- tools/Driver.cpp - Shared steps of the gradc subcommands -----------===//
#include "tools/Driver.h"

#include <fmt/format.h>
#include <iostream>

namespace gradc::tool {

int fail(const std::string &message) {
  std::cerr << "gradc: error: " << message << '\n';
  return 1;
}

bool loadModel(const std::string &path, std::optional<int64_t> batch, bool parseOnly,
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
  frontend::ElaborateOptions options;
  options.batch = batch;
  model.forward = frontend::elaborate(*model.ast, options, diags);
  return model.forward != nullptr;
}

std::unique_ptr<ir::Graph> buildStage(const ir::Graph &forward, GraphStage stage,
                                      Diagnostics &diags,
                                      const passes::PipelineOptions &options) {
  std::vector<std::string> names;
  switch (stage) {
  case GraphStage::Backward:
    names = passes::gradientPipeline();
    break;
  case GraphStage::Train:
    names = passes::trainPipeline();
    break;
  case GraphStage::Optimized:
    names = passes::trainPipeline();
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
