//===- tools/GradCheck.cpp - gradc gradcheck ------------------------------===//
//
// Checks the derived gradients of the objective against central finite
// differences, twice:
//   f64: the gradient graph run by the reference interpreter, differences
//        of the interpreter's objective (eps 1e-6);
//   f32: the same graph compiled by the JIT, differences of the compiled
//        objective (eps 1e-3, the f32 sweet spot between truncation and
//        rounding error).
// Dropout masks are fixed: they depend only on (seed, step), which stay
// constant while parameters are perturbed.
//
//===----------------------------------------------------------------------===//
#include "codegen/Codegen.h"
#include "ir/Interpreter.h"
#include "runtime/Init.h"
#include "tools/Commands.h"
#include "tools/Driver.h"
#include "tools/Options.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>

namespace gradc::tool {

namespace {

struct Tolerance {
  double eps, atol, rtol;
  bool accepts(double fd, double derived) const {
    return std::fabs(fd - derived) <= atol + rtol * std::max(std::fabs(fd), std::fabs(derived));
  }
};
constexpr Tolerance kF64{1e-6, 1e-7, 1e-5};
constexpr Tolerance kF32{1e-3, 5e-4, 1e-2};
/// The batch size checked when the train section's is larger and --batch
/// is not given.
constexpr int64_t kCheckBatch = 4;

struct ErrorStats {
  double maxAbs = 0, maxRel = 0;
  bool ok = true;
  void add(double fd, double derived, const Tolerance &tol) {
    double abs = std::fabs(fd - derived);
    double scale = std::max(std::fabs(fd), std::fabs(derived));
    maxAbs = std::max(maxAbs, abs);
    maxRel = std::max(maxRel, scale > 0 ? abs / scale : 0.0);
    ok &= tol.accepts(fd, derived);
  }
};

/// Buffers of one kernel call, owned here, as f32 (labels as i32).
struct KernelBuffers {
  std::vector<std::vector<float>> data;
  std::vector<void *> pointers;
  std::unique_ptr<char, decltype(&std::free)> arena{nullptr, &std::free};
};

/// The number of classes of the labels in `leaf`: the last dimension of
/// the logits of each cross_entropy, and of the result of each onehot, that
/// reads it as labels (the smallest, should they differ); 0 when nothing
/// reads it as labels.
int64_t classCount(const ir::Graph &graph, const ir::Node *leaf) {
  int64_t classes = 0;
  auto consider = [&](int64_t c) { classes = classes == 0 ? c : std::min(classes, c); };
  for (const auto &user : graph.nodes())
    for (size_t i = 0; i < user->operands.size(); ++i) {
      if (user->operands[i] != leaf || user->info().operand(int(i)) != ir::OPERAND_LABELS)
        continue;
      if (user->is(ir::OpKind::CrossEntropy))
        consider(user->operands[0]->type.shape.back());
      else if (user->is(ir::OpKind::OneHot))
        consider(user->type.shape.back());
    }
  return classes;
}

} // namespace

int runGradcheck(const std::vector<std::string> &args) {
  po::options_description options("gradcheck options", 120, 60);
  options.add_options()("seed", po::value<uint64_t>()->default_value(1),
                        "seed of the parameters, the inputs and the dropout masks")(
      "max-elements", po::value<int64_t>()->default_value(256),
      "check at most this many elements of each parameter (chosen at random)")(
      "eps32", po::value<double>()->default_value(kF32.eps),
      "finite-difference step of the f32 check");
  addModelOptions(options);
  po::variables_map values;
  if (int status = parseOptions("gradcheck", "FILE.grad [options]", options, args, values);
      status >= 0)
    return status;
  uint64_t seed = values["seed"].as<uint64_t>();
  int64_t maxElements = values["max-elements"].as<int64_t>();
  if (maxElements <= 0)
    return fail("--max-elements must be positive");
  Tolerance tol32 = kF32;
  tol32.eps = values["eps32"].as<double>();
  if (!(tol32.eps > 0))
    return fail("--eps32 must be positive");

  SourceManager sources;
  Diagnostics diags(&sources);
  LoadedModel model;
  const ModelOptions sizing = modelOptions(values);
  if (!loadModel(values["file"].as<std::string>(), sizing, false, sources, diags, model))
    return 1;
  // Whether a gradient is derived right does not depend on the batch size,
  // and each checked element costs four runs of the whole step: the train
  // section's batch (128 for the Fashion-MNIST model: minutes) is cut to a
  // few examples unless --batch asks for more.
  std::string batchNote;
  if (!sizing.batch && model.settings.batch && *model.settings.batch > kCheckBatch) {
    model.forward = elaborateWithBatch(model, sizing, kCheckBatch, diags);
    if (!model.forward)
      return 1;
    batchNote = fmt::format(", batch {} (the train section's is {}; --batch=N to check another)",
                            kCheckBatch, *model.settings.batch);
  }
  std::unique_ptr<ir::Graph> graph = buildStage(*model.forward, GraphStage::Gradient, diags);
  if (!graph)
    return 1;
  rt::KernelSpec spec = codegen::describeKernel(*graph, "grad");

  // Values for every leaf: params from their initialisers, data at random:
  // f32 data normal, class labels (i32) uniform over the classes of the
  // logits that read them.  Buffers hold 4-byte words, so an i32 buffer
  // keeps its labels' bits in the floats' storage.
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, 1);
  std::vector<std::vector<float>> leafValues(spec.buffers.size());
  std::vector<std::string> labelNotes;
  uint32_t initIndex = 0;
  for (size_t i = 0; i < spec.buffers.size(); ++i) {
    const rt::TensorSpec &t = spec.buffers[i];
    leafValues[i].assign(t.numel(), 0.0f);
    if (t.role == rt::Role::Param || t.role == rt::Role::State) {
      rt::initializeTensor(t, leafValues[i].data(), seed, initIndex++);
    } else if (t.role != rt::Role::Output && t.isInt) {
      int64_t classes = classCount(*graph, graph->find(t.name));
      std::uniform_int_distribution<int32_t> label(
          0, static_cast<int32_t>(std::max<int64_t>(classes, 1) - 1));
      for (float &v : leafValues[i]) {
        int32_t drawn = classes > 0 ? label(rng) : 0;
        std::memcpy(&v, &drawn, sizeof drawn);
      }
      labelNotes.push_back(
          classes > 0 ? fmt::format("labels %{}: uniform over the {} classes", t.name, classes)
                      : fmt::format("i32 %{}: zeros (no op reads it as class labels)", t.name));
    } else if (t.role != rt::Role::Output) {
      for (float &v : leafValues[i])
        v = static_cast<float>(normal(rng));
    }
  }

  // f64: the interpreter.
  ir::Interpreter interp(*graph);
  interp.setRandomKey(seed, 0);
  std::vector<std::pair<ir::Node *, size_t>> params; // node, buffer index
  for (size_t i = 0; i < spec.buffers.size(); ++i) {
    const rt::TensorSpec &t = spec.buffers[i];
    if (t.role == rt::Role::Output)
      continue;
    ir::Node *leaf = graph->find(t.name);
    ir::Tensor tensor(leaf->type);
    for (size_t e = 0; e < tensor.data.size(); ++e) {
      int32_t label;
      std::memcpy(&label, &leafValues[i][e], sizeof label);
      tensor.data[e] = t.isInt ? static_cast<double>(label) : leafValues[i][e];
    }
    interp.bind(leaf, tensor);
    if (t.role == rt::Role::Param)
      params.emplace_back(leaf, i);
  }
  std::string error;
  // The first run computes the gradients too; the perturbed ones only
  // what the objective depends on.
  if (!interp.run(&error))
    return fail(error);
  double j64 = interp.output("objective")->data[0];
  const ir::Node *objectiveNode = graph->output("objective");
  auto objective64 = [&]() {
    if (!interp.run(&error, objectiveNode))
      return std::nan("");
    return interp.output("objective")->data[0];
  };
  std::vector<std::vector<double>> derived64;
  for (auto &[param, index] : params)
    derived64.push_back(interp.output("grad." + param->name)->data);

  // f32: the JIT.
  codegen::CodegenOptions codegenOptions;
  codegenOptions.cacheDir = kernelCacheDir();
  std::unique_ptr<codegen::Jit> jit = codegen::Jit::create(codegenOptions, error);
  if (!jit)
    return fail(error);
  if (!jit->addKernel(*graph, "grad", spec, error))
    return fail(error);
  KernelBuffers buffers;
  buffers.data = leafValues;
  for (auto &buffer : buffers.data)
    buffers.pointers.push_back(buffer.data());
  buffers.arena.reset(static_cast<char *>(
      std::aligned_alloc(64, std::max<int64_t>(64, (spec.arenaBytes + 63) / 64 * 64))));
  gradc_step_context ctx{buffers.pointers.data(), buffers.arena.get(), seed, 0, nullptr, nullptr};
  int objectiveIndex = spec.find("objective");
  auto objective32 = [&]() {
    spec.fn(&ctx);
    return static_cast<double>(buffers.data[objectiveIndex][0]);
  };
  double j32 = objective32();
  std::vector<std::vector<float>> derived32;
  for (auto &[param, index] : params)
    derived32.push_back(buffers.data[spec.find("grad." + param->name)]);

  std::cout << fmt::format("gradcheck {}: objective %{} = {:.6g} (f64) {:.6g} (f32 JIT), {} "
                           "param{}, dropout masks fixed by seed {}{}\n",
                           model.path, graph->output("objective")->name, j64, j32, params.size(),
                           params.size() == 1 ? "" : "s", seed, batchNote);
  for (const std::string &note : labelNotes)
    std::cout << note << '\n';
  std::cout << fmt::format("{:<16} {:>9} {:>9}  {:>11} {:>11}  {:>11} {:>11} {:>5}  {:>10}  {}\n",
                           "param", "shape", "checked", "f64 max abs", "f64 max rel", "f32 max abs",
                           "f32 max rel", "kinks", "jit vs f64", "status");
  bool allOk = true;
  for (size_t p = 0; p < params.size(); ++p) {
    auto [param, index] = params[p];
    int64_t n = param->type.numel();
    std::vector<int64_t> elements(n);
    std::iota(elements.begin(), elements.end(), 0);
    if (n > maxElements) {
      std::shuffle(elements.begin(), elements.end(), rng);
      elements.resize(maxElements);
      std::sort(elements.begin(), elements.end());
    }
    ErrorStats f64, f32, jitVsInterp;
    int64_t kinks = 0;
    bool nonzero = false;
    ir::Tensor base = interp.leafValue(param);
    for (int64_t e : elements) {
      // f64 central difference.
      ir::Tensor t = base;
      double x = t.data[e];
      t.data[e] = x + kF64.eps;
      interp.bind(param, t);
      double plus = objective64();
      t.data[e] = x - kF64.eps;
      interp.bind(param, t);
      double minus = objective64();
      f64.add((plus - minus) / (2 * kF64.eps), derived64[p][e], kF64);
      // f32 central difference, dividing by the step actually taken.
      float &slot = buffers.data[index][e];
      float original = slot;
      float up = original + static_cast<float>(tol32.eps);
      float down = original - static_cast<float>(tol32.eps);
      slot = up;
      double plus32 = objective32();
      slot = down;
      double minus32 = objective32();
      slot = original;
      // A ReLU kink within +-eps makes the central difference meaningless
      // there: the one-sided differences disagree.  Such elements are
      // counted, not compared (the f64 check, with a far smaller step,
      // still covers them).
      double forward = (plus32 - j32) / (double(up) - double(original));
      double backward = (j32 - minus32) / (double(original) - double(down));
      if (!tol32.accepts(forward, backward)) {
        ++kinks;
      } else {
        f32.add((plus32 - minus32) / (double(up) - double(down)), derived32[p][e], tol32);
      }
      jitVsInterp.add(derived64[p][e], derived32[p][e], Tolerance{0, 1e-5, 1e-3});
      nonzero |= derived64[p][e] != 0;
    }
    interp.bind(param, base);
    bool ok = f64.ok && f32.ok && jitVsInterp.ok;
    allOk &= ok;
    std::cout << fmt::format(
        "{:<16} {:>9} {:>9}  {:>11.3e} {:>11.3e}  {:>11.3e} {:>11.3e} {:>5}  {:>10.3e}  {}\n",
        param->name, spec.buffers[index].shapeStr(), fmt::format("{}/{}", elements.size(), n),
        f64.maxAbs, f64.maxRel, f32.maxAbs, f32.maxRel, kinks, jitVsInterp.maxRel,
        ok ? (nonzero ? "ok" : "ok (gradient is zero)") : "FAILED");
  }
  std::cout << fmt::format("tolerance: f64 |fd - g| <= {:g} + {:g} max(|fd|,|g|) (eps {:g}); f32 "
                           "|fd - g| <= {:g} + {:g} max(|fd|,|g|) (eps {:g})\n",
                           kF64.atol, kF64.rtol, kF64.eps, tol32.atol, tol32.rtol, tol32.eps);
  std::cout << "kinks: elements where the f32 one-sided differences disagree (a ReLU kink within "
               "eps); not compared in f32\n";
  std::cout << (allOk ? "all gradients match\n" : "gradient check FAILED\n");
  return allOk ? 0 : 1;
}

} // namespace gradc::tool
