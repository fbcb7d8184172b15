//===- tools/Driver.h - Shared steps of the gradc subcommands --*- C++ -*-===//
#pragma once

#include "codegen/Codegen.h"
#include "frontend/Frontend.h"
#include "ir/Diagnostics.h"
#include "ir/Graph.h"
#include "passes/Pass.h"
#include "tools/Options.h"

#include <memory>
#include <optional>
#include <string>

namespace gradc::tool {

/// A model file read, parsed and elaborated.
struct LoadedModel {
  std::string path;
  std::unique_ptr<frontend::ast::File> ast;
  std::unique_ptr<ir::Graph> forward;
  frontend::TrainSettings settings; ///< the model's train { } section
};

/// What selects and sizes the model of a file: --batch and --model.
struct ModelOptions {
  std::optional<int64_t> batch;
  std::string model;
};
/// Adds --batch and --model to a subcommand's options.
void addModelOptions(po::options_description &options);
ModelOptions modelOptions(const po::variables_map &values);

/// Reads, parses, elaborates and verifies `path`; diagnostics go through
/// `diags`.  With `parseOnly` the AST is all that is built.  Returns false
/// on any error.
bool loadModel(const std::string &path, const ModelOptions &options, bool parseOnly,
               SourceManager &sources, Diagnostics &diags, LoadedModel &model);

/// The model's forward graph elaborated again with another batch size (the
/// tail kernels of a data set the batch does not divide).
std::unique_ptr<ir::Graph> elaborateWithBatch(const LoadedModel &model, const ModelOptions &options,
                                              int64_t batch, Diagnostics &diags);

/// The graphs gradc compiles from a forward graph.
enum class GraphStage {
  Backward,  ///< dropout, l2, autodiff: the objective and its gradients as derived
  Train,     ///< dropout, l2, autodiff, optimizer: the training step as derived
  Optimized, ///< Train, then simplify: what codegen compiles
  Watched,   ///< Optimized with the health pass: gradients and activations as results
  Gradient,  ///< dropout, l2, autodiff, simplify: objective and gradients (gradcheck)
  Inference, ///< dropout as identity, simplify: prediction and loss (eval)
};

std::unique_ptr<ir::Graph> buildStage(const ir::Graph &forward, GraphStage stage,
                                      Diagnostics &diags,
                                      const passes::PipelineOptions &options = {});

/// Adds --llvm-pipeline (kernel | default) to a subcommand that compiles.
void addPipelineOption(po::options_description &options);

/// The pipeline --llvm-pipeline names; false and `error` for another name.
bool pipelineFrom(const po::variables_map &values, codegen::Pipeline &pipeline, std::string &error);

/// Prints "gradc: error: <message>" and returns exit status 1.
int fail(const std::string &message);

/// Where the JIT keeps compiled kernels between runs: a directory per build
/// of gradc under $GRADC_CACHE_DIR, else $XDG_CACHE_HOME/gradc/kernels,
/// else ~/.cache/gradc/kernels; empty (no cache) when GRADC_CACHE_DIR is
/// "off" or no home is known.
std::string kernelCacheDir();

} // namespace gradc::tool
