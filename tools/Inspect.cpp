//===- tools/Inspect.cpp - gradc check, show and opt ----------------------===//
#include "codegen/Codegen.h"
#include "ir/Dot.h"
#include "ir/IRParser.h"
#include "ir/Printer.h"
#include "runtime/Init.h"
#include "tools/Commands.h"
#include "tools/Driver.h"
#include "tools/MemoryReport.h"
#include "tools/Options.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <set>
#include <unistd.h>

namespace gradc::tool {

void printInitReport(const ir::Graph &forward, uint64_t seed, std::ostream &out);

int runCheck(const std::vector<std::string> &args) {
  po::options_description options("check options", 120, 60);
  options.add_options()(
      "init-report", "print each parameter's fans, its initializer's variance, the variance "
                     "Xavier gives (lecture 2.7) and the variance of a sample drawn with --seed")(
      "seed", po::value<uint64_t>()->default_value(1), "seed of the --init-report sample");
  addModelOptions(options);
  po::variables_map values;
  if (int status = parseOptions("check", "FILE.grad [options]", options, args, values); status >= 0)
    return status;
  SourceManager sources;
  Diagnostics diags(&sources);
  LoadedModel model;
  if (!loadModel(values["file"].as<std::string>(), modelOptions(values), false, sources, diags,
                 model))
    return 1;
  if (values.count("init-report"))
    printInitReport(*model.forward, values["seed"].as<uint64_t>(), std::cout);
  return 0;
}

namespace {

/// The variance an initializer aims for, from lecture 2.7's formulas.
double initializerVariance(const rt::Initializer &init, int64_t fanIn, int64_t fanOut) {
  const std::string &k = init.kind;
  if (k == "xavier_normal" || k == "xavier_uniform")
    return 2.0 / double(fanIn + fanOut);
  if (k == "he_normal" || k == "he_uniform")
    return 2.0 / double(fanIn);
  if (k == "normal")
    return init.args[0] * init.args[0];
  if (k == "uniform")
    return (init.args[1] - init.args[0]) * (init.args[1] - init.args[0]) / 12.0;
  return 0; // zeros, ones, constant
}

} // namespace

void printInitReport(const ir::Graph &forward, uint64_t seed, std::ostream &out) {
  rt::KernelSpec spec = codegen::describeKernel(forward, "init");
  out << fmt::format("{:<16} {:>10} {:>7} {:>7}  {:<16} {:>12} {:>12} {:>12}\n", "param", "shape",
                     "fan_in", "fan_out", "init", "variance", "xavier", "sample");
  uint32_t index = 0;
  for (const rt::TensorSpec &t : spec.buffers) {
    if (t.role != rt::Role::Param)
      continue;
    rt::Fans fans = rt::initializerFans(t);
    std::vector<float> values(t.numel());
    rt::initializeTensor(t, values.data(), seed, index++);
    double mean = 0, sq = 0;
    for (float v : values)
      mean += v;
    mean /= double(values.size());
    for (float v : values)
      sq += (v - mean) * (v - mean);
    std::string init = t.init.kind;
    if (!t.init.args.empty()) {
      std::vector<std::string> args;
      for (double a : t.init.args)
        args.push_back(ir::formatNumber(a));
      init += fmt::format("({})", fmt::join(args, ","));
    }
    out << fmt::format("{:<16} {:>10} {:>7} {:>7}  {:<16} {:>12.4e} {:>12.4e} {:>12.4e}\n", t.name,
                       t.shapeStr(), fans.in, fans.out, init,
                       initializerVariance(t.init, fans.in, fans.out),
                       2.0 / double(fans.in + fans.out), sq / double(values.size()));
  }
}

namespace {

/// Renders the graph to SVG on stdout through Graphviz's `dot`.
int renderSvg(const ir::Graph &graph, const ir::DotOptions &options) {
  // $TMPDIR, else /tmp, as other tools do.
  std::error_code ec;
  std::string pattern = (std::filesystem::temp_directory_path(ec) / "gradc-XXXXXX.dot").string();
  if (ec)
    pattern = "/tmp/gradc-XXXXXX.dot";
  std::vector<char> path(pattern.begin(), pattern.end());
  path.push_back('\0');
  int fd = mkstemps(path.data(), 4);
  if (fd < 0)
    return fail("cannot create a temporary file for Graphviz");
  close(fd);
  {
    std::ofstream file(path.data());
    ir::printDot(graph, file, options);
  }
  std::fflush(stdout);
  int status = std::system(fmt::format("dot -Tsvg '{}'", path.data()).c_str());
  std::remove(path.data());
  if (status != 0)
    return fail("Graphviz's 'dot' failed or is not installed (Debian package graphviz)");
  return 0;
}

/// The training step's and inference's memory plans, then the peaks for
/// several batch sizes (re-elaborating the model for each).
int showMemory(const LoadedModel &model, const po::variables_map &values, SourceManager &sources,
               Diagnostics &diags) {
  std::unique_ptr<ir::Graph> train = buildStage(*model.forward, GraphStage::Optimized, diags);
  std::unique_ptr<ir::Graph> infer = buildStage(*model.forward, GraphStage::Inference, diags);
  if (!train || !infer)
    return 1;
  // The same step without recompute-masks, for the saving it makes.
  std::vector<std::string> keepMasks = passes::optimizePipeline();
  std::erase(keepMasks, "recompute-masks");
  std::unique_ptr<ir::Graph> storing = buildStage(*model.forward, GraphStage::Train, diags);
  if (!storing || !passes::runPipeline(*storing, keepMasks, diags))
    return 1;
  bool hasMasks = !storing->nodesOfKind(ir::OpKind::DropoutMask).empty();
  printMemoryReport(*train, std::cout, hasMasks ? storing.get() : nullptr);
  std::cout << '\n';
  printMemoryReport(*infer, std::cout);
  if (model.forward->batch == 0)
    return 0;
  std::cout << fmt::format("\n{:>6} {:>16} {:>16} {:>16} {:>16}\n", "batch", "train arena",
                           "train bound", "kept for bwd", "inference arena");
  for (int64_t batch : {1, 8, 64, 512}) {
    ModelOptions options = modelOptions(values);
    options.batch = batch;
    LoadedModel sized;
    if (!loadModel(model.path, options, false, sources, diags, sized))
      return 1;
    auto t = buildStage(*sized.forward, GraphStage::Optimized, diags);
    auto i = buildStage(*sized.forward, GraphStage::Inference, diags);
    if (!t || !i)
      return 1;
    MemorySummary ts = summarizeMemory(*t), is = summarizeMemory(*i);
    std::cout << fmt::format("{:>6} {:>16} {:>16} {:>16} {:>16}\n", batch, ts.arenaBytes,
                             ts.lowerBoundBytes, ts.keptForBackwardBytes, is.arenaBytes);
  }
  return 0;
}

/// Keeps only `value` and what it is computed from; its result is "only".
bool sliceTo(ir::Graph &graph, const std::string &value) {
  ir::Node *target = graph.find(value);
  if (!target) {
    fail(fmt::format("--only: graph @{} has no value '%{}'", graph.name, value));
    return false;
  }
  std::set<const ir::Node *> keep{target};
  for (auto it = graph.nodes().rbegin(); it != graph.nodes().rend(); ++it)
    if (keep.count(it->get()))
      for (const ir::Node *operand : (*it)->operands)
        keep.insert(operand);
  graph.outputs.clear();
  graph.setOutput("only", target);
  std::vector<ir::Node *> drop;
  for (const auto &node : graph.nodes())
    if (!keep.count(node.get()))
      drop.push_back(node.get());
  for (auto it = drop.rbegin(); it != drop.rend(); ++it)
    graph.erase(*it);
  return true;
}

/// The stages `gradc show` prints, in pipeline order.
constexpr const char *kStages[] = {"parsed",    "forward", "backward", "train",    "optimized",
                                   "inference", "memory",  "llvm",     "llvm-opt", "asm"};

} // namespace

int runShow(const std::vector<std::string> &args) {
  po::options_description options("show options", 120, 60);
  options.add_options()(
      "stage", po::value<std::string>()->default_value("train"),
      "parsed | forward | backward | train | optimized | inference | llvm | llvm-opt | asm\n"
      "  parsed     the AST, as canonical model source\n"
      "  forward    the inference graph as written (dropout still an op)\n"
      "  backward   forward + dropout and L2 in training form + the derived backward graph\n"
      "  train      backward + the optimizer's updates: the training step as derived\n"
      "  optimized  train after simplify: what codegen compiles\n"
      "  inference  dropout as identity, simplified: what eval compiles\n"
      "  memory     the memory plans of the training step and of inference, and the peak\n"
      "             for batch sizes 1, 8, 64, 512\n"
      "  llvm       LLVM IR of the generated kernel, before LLVM's passes\n"
      "  llvm-opt   the same after the LLVM pipeline (--llvm-pipeline) for the target CPU\n"
      "  asm        the kernel's assembly")(
      "kernel", po::value<std::string>()->default_value("train_step"),
      "for llvm, llvm-opt and asm: train_step (the optimized training graph) or eval (the "
      "inference graph)")("no-loc", "do not print loc(...) after each op")(
      "trace", "annotate each gradient with the forward value and model line it differentiates")(
      "only", po::value<std::string>(),
      "print only the part of the graph that computes this value (e.g. dJ_dW1)")(
      "format", po::value<std::string>()->default_value("text"),
      "for graph stages: text (IR that parses back), dot (Graphviz) or svg (rendered by "
      "Graphviz's dot)")("collapse-blocks", "with dot/svg: draw each block instance as one node")(
      "print-after-all", "print the graph after every pass of the stage's pipeline")(
      "cpu", po::value<std::string>()->default_value("host"), "target CPU for llvm-opt and asm");
  addPipelineOption(options);
  addModelOptions(options);
  po::variables_map values;
  if (int status = parseOptions("show", "FILE.grad --stage=STAGE [options]", options, args, values);
      status >= 0)
    return status;
  std::string stage = values["stage"].as<std::string>();
  if (std::find(std::begin(kStages), std::end(kStages), stage) == std::end(kStages))
    return fail(
        fmt::format("unknown stage '{}'; expected one of: {}", stage, fmt::join(kStages, ", ")));
  std::string format = values["format"].as<std::string>();
  if (format != "text" && format != "dot" && format != "svg")
    return fail(fmt::format("unknown format '{}'; expected text, dot or svg", format));
  bool drawsGraph = stage != "parsed" && stage != "memory" && stage != "llvm" &&
                    stage != "llvm-opt" && stage != "asm";
  if (format != "text" && !drawsGraph)
    return fail(fmt::format("--format={} draws graph stages (forward, backward, train, optimized, "
                            "inference), not '{}'",
                            format, stage));
  std::string kernel = values["kernel"].as<std::string>();
  if (kernel != "train_step" && kernel != "eval")
    return fail(fmt::format("unknown kernel '{}'; expected train_step or eval", kernel));

  SourceManager sources;
  Diagnostics diags(&sources);
  LoadedModel model;
  if (!loadModel(values["file"].as<std::string>(), modelOptions(values), stage == "parsed", sources,
                 diags, model))
    return 1;
  if (stage == "parsed") {
    frontend::printAst(*model.ast, std::cout);
    return 0;
  }
  ir::PrintOptions print;
  print.locations = !values.count("no-loc");
  if (values.count("trace"))
    print.traceSources = &sources;
  passes::PipelineOptions pipeline;
  pipeline.printLocations = print.locations;
  if (values.count("print-after-all"))
    pipeline.printAfterEach = &std::cout;
  std::string only = values.count("only") ? values["only"].as<std::string>() : "";
  ir::DotOptions dot;
  dot.collapseBlocks = values.count("collapse-blocks") > 0;
  auto emit = [&](ir::Graph &graph) {
    if (!only.empty() && !sliceTo(graph, only))
      return 1;
    if (format == "text")
      ir::print(graph, std::cout, print);
    else if (format == "dot")
      ir::printDot(graph, std::cout, dot);
    else
      return renderSvg(graph, dot);
    return 0;
  };
  if (stage == "forward")
    return emit(*model.forward);
  if (stage == "memory")
    return showMemory(model, values, sources, diags);
  GraphStage graphStage = stage == "train"       ? GraphStage::Train
                          : stage == "backward"  ? GraphStage::Backward
                          : stage == "inference" ? GraphStage::Inference
                                                 : GraphStage::Optimized;
  if ((stage == "llvm" || stage == "llvm-opt" || stage == "asm") && kernel == "eval")
    graphStage = GraphStage::Inference;
  std::unique_ptr<ir::Graph> graph = buildStage(*model.forward, graphStage, diags, pipeline);
  if (!graph)
    return 1;
  if (drawsGraph)
    return pipeline.printAfterEach ? 0 : emit(*graph);
  codegen::CodegenOptions codegenOptions;
  codegenOptions.cpu = values["cpu"].as<std::string>();
  std::string text, error;
  if (!pipelineFrom(values, codegenOptions.pipeline, error))
    return fail(error);
  bool ok = stage == "asm" ? codegen::emitAssembly(*graph, kernel, codegenOptions, text, error)
                           : codegen::emitLLVMIR(*graph, kernel, codegenOptions,
                                                 stage == "llvm-opt", text, error);
  if (!ok)
    return fail(error);
  std::cout << text;
  return 0;
}

int runOpt(const std::vector<std::string> &args) {
  po::options_description options("opt options", 120, 60);
  options.add_options()("pass", po::value<std::string>()->default_value(""),
                        "comma-separated passes to run in order (see --list-passes)")(
      "list-passes", "list the passes and exit")("no-loc", "do not print loc(...) after each op")(
      "print-after-all", "print the graph after every pass");
  po::variables_map values;
  // --list-passes needs no file.
  if (std::find(args.begin(), args.end(), "--list-passes") != args.end()) {
    for (const passes::PassInfo &info : passes::allPasses())
      std::cout << fmt::format("  {:<14} {}\n", info.name, info.description);
    return 0;
  }
  if (int status =
          parseOptions("opt", "FILE.gir [--pass=P1,P2,...] [options]", options, args, values);
      status >= 0)
    return status;
  SourceManager sources;
  Diagnostics diags(&sources);
  const std::string *file = nullptr;
  if (!readSourceFile(values["file"].as<std::string>(), "IR file", sources, diags, &file))
    return 1;
  std::unique_ptr<ir::Graph> graph = ir::parseGraph(sources.text(file), file, diags);
  if (!graph)
    return 1;
  ir::PrintOptions print;
  print.locations = !values.count("no-loc");
  passes::PipelineOptions pipeline;
  pipeline.printLocations = print.locations;
  if (values.count("print-after-all"))
    pipeline.printAfterEach = &std::cout;
  std::vector<std::string> names = passes::splitPassList(values["pass"].as<std::string>());
  if (!passes::runPipeline(*graph, names, diags, pipeline))
    return 1;
  if (!pipeline.printAfterEach || names.empty())
    ir::print(*graph, std::cout, print);
  return 0;
}

} // namespace gradc::tool
