//===- tools/Build.cpp - gradc build: native trainers ahead of time -------===//
//
// Compiles a model's kernels (training step, evaluation, prediction, and
// tail-batch versions on request) into one object file with the
// descriptor of runtime/AotModel.h, and writes next to it a static library,
// a C header wrapping runtime/CApi.h with the model's name and shapes, and
// a standalone trainer linked by the system's C++ compiler driver from the
// object and the gradc runtime libraries found next to this executable.
//
//===----------------------------------------------------------------------===//
#include "codegen/Object.h"
#include "ir/Printer.h"
#include "passes/Pass.h"
#include "tools/Commands.h"
#include "tools/Driver.h"
#include "tools/Options.h"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace gradc::tool {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// The declarations of runtime/CApi.h that a generated header repeats so
/// it stands alone; test/lit/aot/header.test compiles both together.
constexpr const char *kCApiDeclarations =
    R"(/* --- The gradc runtime's C interface (runtime/CApi.h), repeated here so this
 * header stands alone.  Every function returns GRADC_OK or an error code and
 * leaves a message for gradc_model_error; nothing aborts. --- */
#define GRADC_OK 0
#define GRADC_ERROR_ARGUMENT 1    /* a null pointer, a wrong size, an unknown name */
#define GRADC_ERROR_IO 2          /* a checkpoint that cannot be read or written */
#define GRADC_ERROR_NUMERIC 3     /* the loss became NaN or infinite */
#define GRADC_ERROR_MEMORY 4      /* out of memory */
#define GRADC_ERROR_UNSUPPORTED 5 /* the model has no such kernel (e.g. no prediction) */
#define GRADC_ERROR_INTERNAL 6    /* a descriptor this runtime cannot read, a bug */
typedef struct gradc_aot_model gradc_aot_model;
typedef struct gradc_model gradc_model;
int gradc_model_create(const gradc_aot_model *model, uint64_t seed, int threads,
                       gradc_model **out);
void gradc_model_destroy(gradc_model *model);
const char *gradc_model_error(const gradc_model *model);
int gradc_model_train_step(gradc_model *model, const float *inputs, const void *targets, float lr,
                           float *loss);
int gradc_model_predict(gradc_model *model, const float *inputs, float *outputs);
int gradc_model_evaluate(gradc_model *model, const float *inputs, const void *targets, float *loss,
                         float *outputs);
uint64_t gradc_model_step(const gradc_model *model);
int gradc_model_tensor_size(gradc_model *model, const char *name, int64_t *count);
int gradc_model_get_tensor(gradc_model *model, const char *name, float *data, int64_t count);
int gradc_model_set_tensor(gradc_model *model, const char *name, const float *data,
                           int64_t count);
int gradc_model_save(gradc_model *model, const char *path);
int gradc_model_load(gradc_model *model, const char *path);
)";

std::string identifier(const std::string &text) {
  std::string out = text;
  for (char &c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      c = '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0])))
    out = "m_" + out;
  return out;
}

std::string upper(std::string text) {
  for (char &c : text)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string cString(const std::string &text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + '"';
}

/// "a,b" -> {a, b} as positive integers.
bool parseBatches(const std::string &text, std::vector<int64_t> &out, std::string &error) {
  std::stringstream in(text);
  std::string piece;
  while (std::getline(in, piece, ',')) {
    if (piece.empty())
      continue;
    char *end = nullptr;
    errno = 0;
    long long value = std::strtoll(piece.c_str(), &end, 10);
    if (*end || errno || value <= 0) {
      error = fmt::format("--tail-batches takes positive batch sizes, got '{}'", piece);
      return false;
    }
    if (std::find(out.begin(), out.end(), value) == out.end())
      out.push_back(value);
  }
  return true;
}

/// The inference graph without the loss: input and params in, prediction
/// out, no target.  Null when the model has no "prediction".
std::unique_ptr<ir::Graph> predictGraph(const ir::Graph &inference, Diagnostics &diags) {
  if (!inference.output("prediction"))
    return nullptr;
  std::unique_ptr<ir::Graph> graph = inference.clone();
  std::erase_if(graph->outputs,
                [](const ir::GraphOutput &output) { return output.key != "prediction"; });
  std::vector<std::string> simplify = passes::optimizePipeline();
  if (!passes::runPipeline(*graph, simplify, diags))
    return nullptr;
  // simplify keeps every leaf (they are a step's signature); the target is
  // no longer read.
  for (ir::Node *target : graph->nodesOfKind(ir::OpKind::Target))
    if (graph->users(target).empty())
      graph->erase(target);
  return graph;
}

std::string dimsList(const std::vector<int64_t> &dims) {
  return dims.empty() ? "1" : fmt::format("{}", fmt::join(dims, ", "));
}

const rt::TensorSpec *findRole(const rt::KernelSpec &spec, rt::Role role) {
  for (const rt::TensorSpec &tensor : spec.buffers)
    if (tensor.role == role)
      return &tensor;
  return nullptr;
}

/// The model's C header.
std::string generateHeader(const std::string &model, const std::string &source,
                           const codegen::ModelObject &object, const rt::KernelSpec &train,
                           const rt::KernelSpec *predict) {
  std::string p = identifier(model), P = upper(p);
  const rt::TensorSpec *input = findRole(train, rt::Role::Input);
  const rt::TensorSpec *target = findRole(train, rt::Role::Target);
  const rt::TensorSpec *prediction = predict ? predict->buffers.data() : nullptr;
  if (predict)
    for (const rt::TensorSpec &tensor : predict->buffers)
      if (tensor.name == "prediction")
        prediction = &tensor;
  std::string targetType = target && target->isInt ? "int32_t" : "float";
  std::ostringstream h;
  h << fmt::format(R"(/* {p}.h - the C interface of model '{model}' ({source}).
 *
 * Generated by `gradc build` for {triple}, cpu {cpu}; do not edit, rebuild.
 * Usable from C (C11) and C++.  Link {p}.o (or lib{p}.a) with the
 * gradc runtime: with CMake, find_package(gradc) and
 * target_link_libraries(app PRIVATE gradc::runtime); by hand, the
 * libgradc_runtime.a of gradc's lib/ directory, -lfmt -lz -ldeflate -pthread.
 *
 *   {p}_model *m;
 *   if ({p}_create(1, 0, &m) != GRADC_OK)            seed 1, all cores
 *     fprintf(stderr, "%s\n", {p}_error(NULL));
 *   float loss;
 *   {p}_train_step(m, inputs, targets, 0.01f, &loss);  one batch
 *   {p}_predict(m, inputs, outputs);                   dropout off
 *   {p}_save(m, "{p}.safetensors");
 *   {p}_destroy(m);
 *
 * Arrays are row-major, batch first.  A call takes exactly {P}_BATCH
 * examples.  Every function returns GRADC_OK (0) or a GRADC_ERROR_* code,
 * and {p}_error(m) says what went wrong; nothing aborts.  Weights are the
 * same bits as `gradc train --seed=SEED` starts from.
 */
#ifndef GRADC_MODEL_{P}_H
#define GRADC_MODEL_{P}_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

)",
                   fmt::arg("p", p), fmt::arg("P", P), fmt::arg("model", model),
                   fmt::arg("source", source), fmt::arg("triple", object.triple),
                   fmt::arg("cpu", object.cpu));
  h << kCApiDeclarations << "\n/* --- Shapes. --- */\n";
  int64_t batch = train.batch > 0 ? train.batch : 1;
  h << fmt::format("/* Examples per call: the model's batch{}. */\n#define {}_BATCH {}\n",
                   train.batch > 0 ? "" : " (the model takes one example, without a batch axis)", P,
                   batch);
  auto shape = [&](const std::string &what, const rt::TensorSpec *tensor, const char *comment) {
    if (!tensor)
      return;
    h << fmt::format("/* {} '{}': {}{} */\n", comment, tensor->name, tensor->isInt ? "i32" : "f32",
                     tensor->shapeStr());
    h << fmt::format("#define {}_{}_RANK {}\n", P, what, tensor->dims.size());
    h << fmt::format("#define {}_{}_SHAPE {{{}}}\n", P, what, dimsList(tensor->dims));
    h << fmt::format("#define {}_{}_SIZE {}\n", P, what, tensor->numel());
  };
  shape("INPUT", input, "Input");
  shape("TARGET", target, target && target->isInt ? "Class labels" : "Targets");
  if (target)
    h << fmt::format("#define {}_TARGET_IS_LABEL {}\n", P, target->isInt ? 1 : 0);
  shape("OUTPUT", prediction, "Prediction");
  std::vector<const rt::TensorSpec *> params;
  for (const rt::TensorSpec &tensor : train.buffers)
    if (tensor.role == rt::Role::Param)
      params.push_back(&tensor);
  h << fmt::format("/* Parameters, by hierarchical name (optimizer state has names too, e.g. "
                   "'W1.velocity'). */\n#define {}_NUM_PARAMS {}\n",
                   P, params.size());
  std::vector<std::string> names, sizes;
  for (const rt::TensorSpec *param : params) {
    std::string macro = upper(identifier(param->name));
    h << fmt::format("#define {}_PARAM_{}_NAME {}\n", P, macro, cString(param->name));
    h << fmt::format("#define {}_PARAM_{}_SHAPE {{{}}}\n", P, macro, dimsList(param->dims));
    h << fmt::format("#define {}_PARAM_{}_SIZE {}\n", P, macro, param->numel());
    names.push_back(cString(param->name));
    sizes.push_back(std::to_string(param->numel()));
  }
  h << fmt::format("#define {}_PARAM_NAMES {{{}}}\n", P, fmt::join(names, ", "));
  h << fmt::format("#define {}_PARAM_SIZES {{{}}}\n", P, fmt::join(sizes, ", "));

  h << fmt::format(R"(
/* --- The model. --- */
/* The descriptor in {p}.o (runtime/AotModel.h). */
extern const struct gradc_aot_model {symbol};
/* An instance: weights, optimizer state, step counter, thread pool. */
typedef struct {p}_model {p}_model;
typedef {target} {p}_target_t;

/* A new instance with weights initialised from `seed` on `threads` threads
 * (0: all cores; results are bit-identical for a fixed count). */
static inline int {p}_create(uint64_t seed, int threads, {p}_model **out) {{
  return gradc_model_create(&{symbol}, seed, threads, (gradc_model **)out);
}}
static inline void {p}_destroy({p}_model *m) {{ gradc_model_destroy((gradc_model *)m); }}
/* The last error of `m` (NULL: of this thread's last failed create). */
static inline const char *{p}_error(const {p}_model *m) {{
  return gradc_model_error((const gradc_model *)m);
}}
/* One step of the optimizer on {P}_BATCH examples: inputs[{P}_INPUT_SIZE],
 * targets[{P}_TARGET_SIZE]; *loss (may be NULL) gets the mean loss. */
static inline int {p}_train_step({p}_model *m, const float *inputs, const {p}_target_t *targets,
                                 float lr, float *loss) {{
  return gradc_model_train_step((gradc_model *)m, inputs, targets, lr, loss);
}}
/* Inference, dropout off: outputs[{P}_OUTPUT_SIZE]. */
static inline int {p}_predict({p}_model *m, const float *inputs, float *outputs) {{
  return gradc_model_predict((gradc_model *)m, inputs, outputs);
}}
/* Inference with the loss against `targets`; loss and outputs may be NULL. */
static inline int {p}_evaluate({p}_model *m, const float *inputs, const {p}_target_t *targets,
                               float *loss, float *outputs) {{
  return gradc_model_evaluate((gradc_model *)m, inputs, targets, loss, outputs);
}}
/* Steps trained so far. */
static inline uint64_t {p}_step(const {p}_model *m) {{
  return gradc_model_step((const gradc_model *)m);
}}
/* Params (and optimizer state) by name: element count, read, write. */
static inline int {p}_param_size({p}_model *m, const char *name, int64_t *count) {{
  return gradc_model_tensor_size((gradc_model *)m, name, count);
}}
static inline int {p}_get_param({p}_model *m, const char *name, float *data, int64_t count) {{
  return gradc_model_get_tensor((gradc_model *)m, name, data, count);
}}
static inline int {p}_set_param({p}_model *m, const char *name, const float *data,
                                int64_t count) {{
  return gradc_model_set_tensor((gradc_model *)m, name, data, count);
}}
/* safetensors checkpoints, the format of `gradc train --save` / --resume. */
static inline int {p}_save({p}_model *m, const char *path) {{
  return gradc_model_save((gradc_model *)m, path);
}}
static inline int {p}_load({p}_model *m, const char *path) {{
  return gradc_model_load((gradc_model *)m, path);
}}

#ifdef __cplusplus
}}
#endif

#endif /* GRADC_MODEL_{P}_H */
)",
                   fmt::arg("p", p), fmt::arg("P", P), fmt::arg("target", targetType),
                   fmt::arg("symbol", codegen::modelSymbol(model)));
  return h.str();
}

bool writeFile(const fs::path &path, const std::string &bytes, std::string &error) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    error = fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno));
    return false;
  }
  return true;
}

/// The directory of this executable.
fs::path executableDir() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path();
}

/// The link inputs of a standalone trainer: lib/gradc/aot-link.txt next
/// to this executable (build tree and install tree alike), one argument a
/// line, relative paths relative to that file.
bool trainerLinkInputs(std::vector<std::string> &inputs, fs::path &listFile, std::string &error) {
  listFile = executableDir() / ".." / "lib" / "gradc" / "aot-link.txt";
  std::ifstream in(listFile);
  if (!in) {
    error = fmt::format("cannot find the runtime's link list '{}' (is gradc installed "
                        "completely?); pass --no-trainer to skip the trainer",
                        listFile.lexically_normal().string());
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    if (line[0] != '-' && fs::path(line).is_relative())
      line = (listFile.parent_path() / line).lexically_normal().string();
    inputs.push_back(line);
  }
  return true;
}

/// Runs `argv` and waits; false with a message when it fails.
bool runProgram(const std::vector<std::string> &argv, std::string &error) {
  std::vector<char *> args;
  for (const std::string &arg : argv)
    args.push_back(const_cast<char *>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  if (int status = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ)) {
    error = fmt::format("cannot run '{}': {}", argv[0], std::strerror(status));
    return false;
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error = fmt::format("'{}' failed (exit status {}): {}", argv[0],
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1, fmt::join(argv, " "));
    return false;
  }
  return true;
}

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

} // namespace

int runBuild(const std::vector<std::string> &args) {
  po::options_description options(
      "build options (writes DIR/<model>.o, DIR/lib<model>.a, DIR/<model>.h and the trainer "
      "DIR/<model>-train, linked by the C++ compiler driver --cxx with the runtime libraries "
      "listed in lib/gradc/aot-link.txt next to this gradc)",
      120, 60);
  options.add_options()("output,o", po::value<std::string>(), "the output directory (required)")(
      "target-cpu", po::value<std::string>()->default_value("host"),
      "the CPU to compile for: host (this machine's, with every feature it has), or an LLVM CPU "
      "name such as x86-64-v2, x86-64-v3, neoverse-n1")(
      "target-triple", po::value<std::string>(),
      "the target triple, e.g. aarch64-linux-gnu (default: this machine's); for another "
      "architecture the CPU defaults to its baseline (generic), and no trainer is linked")(
      "opt-level", po::value<int>()->default_value(3),
      "optimisation level of LLVM's code generator (and of its pipeline with "
      "--llvm-pipeline=default), 0 to 3")(
      "tail-batches", po::value<std::string>(),
      "also compile training and evaluation kernels for these batch sizes (comma-separated): "
      "the examples left over when the batch does not divide a data set, e.g. 96,16 for "
      "Fashion-MNIST's 60000 and 10000 with batch 128.  Without one the trainer skips them "
      "and says so")(
      "clip-grad-norm", po::value<double>(),
      "scale the gradients so their global norm is at most this (overrides the train section)")(
      "no-trainer", "write object, library and header only; no trainer executable")(
      "cxx", po::value<std::string>()->default_value("c++"),
      "the C++ compiler driver that links the trainer")("verbose,v", "print the link command");
  addPipelineOption(options);
  addModelOptions(options);
  po::variables_map values;
  if (int status = parseOptions("build", "FILE.grad -o DIR [options]", options, args, values);
      status >= 0)
    return status;
  if (!values.count("output"))
    return fail("'gradc build' needs an output directory: -o DIR");
  fs::path outDir = values["output"].as<std::string>();

  auto start = Clock::now();
  SourceManager sources;
  Diagnostics diags(&sources);
  LoadedModel model;
  ModelOptions modelFlags = modelOptions(values);
  if (!loadModel(values["file"].as<std::string>(), modelFlags, false, sources, diags, model))
    return 1;
  if (values.count("clip-grad-norm")) {
    double clip = values["clip-grad-norm"].as<double>();
    if (!(clip > 0) || !std::isfinite(clip))
      return fail(fmt::format("--clip-grad-norm must be a positive number, got {}", clip));
    model.forward->optimizer.clipGradNorm = clip;
  }
  std::string error;
  std::vector<int64_t> tails;
  if (values.count("tail-batches") &&
      !parseBatches(values["tail-batches"].as<std::string>(), tails, error))
    return fail(error);
  int64_t batch = model.forward->batch;
  if (!tails.empty() && batch == 0)
    return fail(fmt::format("model '{}' takes one example per call; it has no batch to complete "
                            "with --tail-batches",
                            model.forward->name));
  for (int64_t tail : tails)
    if (tail >= batch)
      return fail(fmt::format("--tail-batches: {} is not smaller than the batch {}", tail, batch));

  // The graphs: the same stages `gradc train` compiles, plus prediction.
  std::vector<std::unique_ptr<ir::Graph>> graphs;
  std::vector<codegen::ObjectKernel> kernels;
  auto add = [&](std::unique_ptr<ir::Graph> graph, const std::string &role,
                 const std::string &symbolName) {
    // Tail kernels run once per epoch: compiled for compile speed.
    kernels.push_back({graph.get(), role, symbolName, role.ends_with("_tail")});
    graphs.push_back(std::move(graph));
  };
  std::unique_ptr<ir::Graph> train = buildStage(*model.forward, GraphStage::Optimized, diags);
  std::unique_ptr<ir::Graph> eval = buildStage(*model.forward, GraphStage::Inference, diags);
  if (!train || !eval)
    return 1;
  std::unique_ptr<ir::Graph> predict = predictGraph(*eval, diags);
  add(std::move(train), "train_step", "train_step");
  add(std::move(eval), "eval", "eval");
  if (predict)
    add(std::move(predict), "predict", "predict");
  for (int64_t tail : tails) {
    std::unique_ptr<ir::Graph> forward = elaborateWithBatch(model, modelFlags, tail, diags);
    if (!forward)
      return 1;
    std::unique_ptr<ir::Graph> tailTrain = buildStage(*forward, GraphStage::Optimized, diags);
    std::unique_ptr<ir::Graph> tailEval = buildStage(*forward, GraphStage::Inference, diags);
    if (!tailTrain || !tailEval)
      return 1;
    add(std::move(tailTrain), "train_step_tail", fmt::format("train_step_tail_{}", tail));
    add(std::move(tailEval), "eval_tail", fmt::format("eval_tail_{}", tail));
    graphs.push_back(std::move(forward));
  }

  const frontend::TrainSettings &settings = model.settings;
  codegen::ObjectModelInfo info;
  info.name = model.forward->name;
  info.source = model.path;
  info.optimizer = ir::formatOptimizer(model.forward->optimizer);
  info.epochs = settings.epochs.value_or(info.epochs);
  info.seed = settings.seed.value_or(info.seed);
  info.lr = settings.lr.value_or(info.lr);
  info.schedule = settings.schedule;
  info.stepSize = settings.stepSize;
  info.gamma = settings.gamma;
  info.lrMin = settings.lrMin;

  codegen::CodegenOptions codegenOptions;
  codegenOptions.cpu = values["target-cpu"].as<std::string>();
  if (values.count("target-triple")) {
    codegenOptions.triple = values["target-triple"].as<std::string>();
    // This machine's CPU means nothing for another architecture: its
    // baseline, unless a CPU is named.
    if (values["target-cpu"].defaulted() && !codegen::runsOnHost(codegenOptions.triple))
      codegenOptions.cpu = "generic";
  }
  codegenOptions.optLevel = values["opt-level"].as<int>();
  if (!pipelineFrom(values, codegenOptions.pipeline, error))
    return fail(error);
  codegen::ModelObject object;
  if (!codegen::emitModelObject(kernels, info, codegenOptions, object, error))
    return fail(error);
  double compileMs = millisecondsSince(start);

  std::string base = identifier(info.name);
  std::error_code ec;
  fs::create_directories(outDir, ec);
  if (ec)
    return fail(fmt::format("cannot create '{}': {}", outDir.string(), ec.message()));
  const rt::KernelSpec *predictSpec = nullptr;
  for (size_t i = 0; i < kernels.size(); ++i)
    if (kernels[i].role == "predict")
      predictSpec = &object.specs[i];
  fs::path objectPath = outDir / (base + ".o"), headerPath = outDir / (base + ".h"),
           libraryPath = outDir / ("lib" + base + ".a");
  if (!writeFile(objectPath, object.bytes, error) ||
      !codegen::writeStaticLibrary(libraryPath.string(), base + ".o", object.bytes, error) ||
      !writeFile(headerPath,
                 generateHeader(info.name, model.path, object, object.specs[0], predictSpec),
                 error))
    return fail(error);
  std::vector<std::string> kernelNames;
  for (const codegen::ObjectKernel &kernel : kernels)
    kernelNames.push_back(kernel.symbolName);
  std::cout << fmt::format("gradc build: model '{}' for {}, cpu {}: {} kernels ({}), {} bytes of "
                           "object code in {:.0f} ms\n",
                           info.name, object.triple, object.cpu, kernels.size(),
                           fmt::join(kernelNames, ", "), object.bytes.size(), compileMs);
  std::cout << fmt::format("  wrote {}, {}, {}\n", objectPath.string(), libraryPath.string(),
                           headerPath.string());

  if (values.count("no-trainer"))
    return 0;
  // The trainer links this machine's runtime, so it needs its architecture.
  if (!codegen::runsOnHost(object.triple)) {
    std::cout << fmt::format("  no trainer: {} code does not run on this machine\n", object.triple);
    return 0;
  }
  std::vector<std::string> linkInputs;
  fs::path listFile;
  if (!trainerLinkInputs(linkInputs, listFile, error))
    return fail(error);
  auto linkStart = Clock::now();
  fs::path trainerPath = outDir / (base + "-train");
  std::vector<std::string> command = {
      values["cxx"].as<std::string>(), "-o", trainerPath.string(), objectPath.string(),
      "-Wl,--defsym=gradc_aot_trainer_model=" + codegen::modelSymbol(info.name)};
  command.insert(command.end(), linkInputs.begin(), linkInputs.end());
  if (values.count("verbose"))
    std::cout << fmt::format("  {}\n", fmt::join(command, " "));
  if (!runProgram(command, error))
    return fail("linking the trainer: " + error);
  std::cout << fmt::format("  wrote {} (linked in {:.0f} ms)\n", trainerPath.string(),
                           millisecondsSince(linkStart));
  return 0;
}

} // namespace gradc::tool
