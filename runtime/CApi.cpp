//===- runtime/CApi.cpp - The C interface of ahead-of-time models ---------===//
//
// runtime/CApi.h over the TensorStore, the initialisers and the checkpoint
// code: the same pieces `gradc train` uses, so a model created with seed
// S starts from the weights `gradc train --seed=S` starts from.  Every
// entry point catches what the C++ underneath may throw and turns it into
// a return code and a message.
//
//===----------------------------------------------------------------------===//
#include "runtime/CApi.h"
#include "runtime/AotKernels.h"
#include "runtime/AotModel.h"
#include "runtime/Buffers.h"
#include "runtime/Checkpoint.h"
#include "runtime/ThreadPool.h"

#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <new>
#include <string>
#include <vector>

using namespace gradc;

namespace {

/// One kernel ready to call: its arena, hyperparameters and buffers.
struct Call {
  const rt::KernelSpec *spec = nullptr;
  rt::AlignedBuffer arena;
  std::vector<float> hypers;
  int lrIndex = -1;
  gradc_step_context ctx{};
  rt::Tensor *input = nullptr, *target = nullptr, *loss = nullptr, *objective = nullptr,
             *prediction = nullptr;
};

/// The message of the last gradc_model_create that failed on this thread.
thread_local std::string createError;

} // namespace

struct gradc_model {
  explicit gradc_model(uint64_t seed) : seed(seed), store(seed) {}

  const gradc_aot_model *descriptor = nullptr;
  uint64_t seed;
  uint64_t step = 0;
  std::vector<rt::KernelSpec> specs;
  rt::TensorStore store;
  std::unique_ptr<rt::ThreadPool> pool;
  Call train, eval, predict;
  std::string error;

  int fail(int code, std::string message) {
    error = std::move(message);
    return code;
  }
};

namespace {

/// Adds `spec` to the model's store and binds its buffers into `call`.
bool prepare(gradc_model &model, const rt::KernelSpec *spec, Call &call, std::string &error) {
  call.spec = spec;
  if (!spec)
    return true;
  if (!model.store.addKernel(*spec, error))
    return false;
  for (const rt::TensorSpec &buffer : spec->buffers) {
    rt::Tensor *tensor = model.store.find(spec->name, buffer.name);
    if (buffer.role == rt::Role::Input && !call.input)
      call.input = tensor;
    else if (buffer.role == rt::Role::Target && !call.target)
      call.target = tensor;
    else if (buffer.role == rt::Role::Output && buffer.name == "loss")
      call.loss = tensor;
    else if (buffer.role == rt::Role::Output && buffer.name == "objective")
      call.objective = tensor;
    else if (buffer.role == rt::Role::Output && buffer.name == "prediction")
      call.prediction = tensor;
  }
  if (!call.input) {
    error = fmt::format("kernel '{}' has no input", spec->name);
    return false;
  }
  call.hypers.assign(spec->hypers.size(), 0.0f);
  for (size_t i = 0; i < spec->hypers.size(); ++i) {
    if (spec->hypers[i] != "lr") {
      error = fmt::format("kernel '{}' reads the hyperparameter '{}', which the C interface "
                          "does not set (it sets: lr)",
                          spec->name, spec->hypers[i]);
      return false;
    }
    call.lrIndex = static_cast<int>(i);
  }
  call.arena = rt::allocateArena(*spec);
  call.ctx.buffers = model.store.bindings(spec->name).data();
  call.ctx.arena = call.arena.as<char>();
  call.ctx.seed = model.seed;
  call.ctx.hypers = call.hypers.data();
  call.ctx.pool = model.pool.get();
  return true;
}

/// Runs `body`, turning exceptions into return codes.
template <typename Body> int guarded(gradc_model *model, Body &&body) {
  if (!model)
    return GRADC_ERROR_ARGUMENT;
  model->error.clear();
  try {
    return body(*model);
  } catch (const std::bad_alloc &) {
    return model->fail(GRADC_ERROR_MEMORY, "out of memory");
  } catch (const std::exception &e) {
    return model->fail(GRADC_ERROR_INTERNAL, e.what());
  } catch (...) {
    return model->fail(GRADC_ERROR_INTERNAL, "unknown exception");
  }
}

/// Copies the batch into the kernel's input and target and runs it.
int runCall(gradc_model &model, Call &call, const char *what, const float *inputs,
            const void *targets, float lr) {
  if (!call.spec)
    return model.fail(GRADC_ERROR_UNSUPPORTED,
                      fmt::format("model '{}' has no {} kernel", model.descriptor->name, what));
  if (!inputs || (call.target && !targets))
    return model.fail(GRADC_ERROR_ARGUMENT,
                      fmt::format("{}: {} is NULL", what, !inputs ? "inputs" : "targets"));
  std::memcpy(call.input->data(), inputs, static_cast<size_t>(call.input->spec.bytes()));
  if (call.target)
    std::memcpy(call.target->data(), targets, static_cast<size_t>(call.target->spec.bytes()));
  if (call.lrIndex >= 0)
    call.hypers[static_cast<size_t>(call.lrIndex)] = lr;
  call.ctx.step = model.step;
  call.spec->fn(&call.ctx);
  return GRADC_OK;
}

rt::Tensor *persistent(gradc_model &model, const char *name) {
  if (!name) {
    model.fail(GRADC_ERROR_ARGUMENT, "the tensor name is NULL");
    return nullptr;
  }
  rt::Tensor *tensor = model.store.find(name);
  if (!tensor) {
    std::string known;
    for (const rt::Tensor *t : model.store.persistent())
      known += (known.empty() ? "" : ", ") + t->spec.name;
    model.fail(GRADC_ERROR_ARGUMENT,
               fmt::format("model '{}' has no param or state '{}' (it has: {})",
                           model.descriptor->name, name, known));
  }
  return tensor;
}

} // namespace

extern "C" {

int gradc_model_create(const gradc_aot_model *descriptor, uint64_t seed, int threads,
                       gradc_model **out) {
  if (!out) {
    createError = "gradc_model_create: out is NULL";
    return GRADC_ERROR_ARGUMENT;
  }
  *out = nullptr;
  if (!descriptor) {
    createError = "gradc_model_create: the model descriptor is NULL";
    return GRADC_ERROR_ARGUMENT;
  }
  if (threads < 0) {
    createError = fmt::format("gradc_model_create: threads must be >= 0, got {}", threads);
    return GRADC_ERROR_ARGUMENT;
  }
  try {
    auto model = std::make_unique<gradc_model>(seed);
    model->descriptor = descriptor;
    std::string error;
    if (!rt::aotKernelSpecs(*descriptor, model->specs, error)) {
      createError = error;
      return GRADC_ERROR_INTERNAL;
    }
    model->pool = std::make_unique<rt::ThreadPool>(threads);
    // The training step first: params and state are initialised in the
    // order the trainer adds them, hence with the same bits.
    const rt::KernelSpec *train = rt::findKernel(model->specs, "train_step");
    if (!train) {
      createError = fmt::format("model '{}' has no train_step kernel", descriptor->name);
      return GRADC_ERROR_INTERNAL;
    }
    if (!prepare(*model, train, model->train, error) ||
        !prepare(*model, rt::findKernel(model->specs, "eval"), model->eval, error) ||
        !prepare(*model, rt::findKernel(model->specs, "predict"), model->predict, error)) {
      createError = error;
      return GRADC_ERROR_INTERNAL;
    }
    *out = model.release();
    return GRADC_OK;
  } catch (const std::bad_alloc &) {
    createError = "out of memory";
    return GRADC_ERROR_MEMORY;
  } catch (const std::exception &e) {
    createError = e.what();
    return GRADC_ERROR_INTERNAL;
  }
}

void gradc_model_destroy(gradc_model *model) { delete model; }

const char *gradc_model_error(const gradc_model *model) {
  return model ? model->error.c_str() : createError.c_str();
}

int gradc_model_train_step(gradc_model *handle, const float *inputs, const void *targets, float lr,
                           float *loss) {
  return guarded(handle, [&](gradc_model &model) {
    if (!(lr >= 0) || !std::isfinite(lr))
      return model.fail(GRADC_ERROR_ARGUMENT,
                        fmt::format("the learning rate must be a finite number >= 0, got {}", lr));
    if (int status = runCall(model, model.train, "training step", inputs, targets, lr))
      return status;
    uint64_t step = model.step++;
    float value = model.train.loss ? model.train.loss->f32()[0] : 0.0f;
    float objective = model.train.objective ? model.train.objective->f32()[0] : value;
    if (loss)
      *loss = value;
    if (!std::isfinite(value) || !std::isfinite(objective))
      return model.fail(GRADC_ERROR_NUMERIC,
                        fmt::format("step {}: the loss is {} and the objective {}; the weights "
                                    "are no longer finite",
                                    step, value, objective));
    return GRADC_OK;
  });
}

int gradc_model_predict(gradc_model *handle, const float *inputs, float *outputs) {
  return guarded(handle, [&](gradc_model &model) {
    if (!outputs)
      return model.fail(GRADC_ERROR_ARGUMENT, "predict: outputs is NULL");
    if (int status = runCall(model, model.predict, "predict", inputs, nullptr, 0))
      return status;
    if (!model.predict.prediction)
      return model.fail(GRADC_ERROR_UNSUPPORTED, "the predict kernel has no prediction");
    std::memcpy(outputs, model.predict.prediction->data(),
                static_cast<size_t>(model.predict.prediction->spec.bytes()));
    return GRADC_OK;
  });
}

int gradc_model_evaluate(gradc_model *handle, const float *inputs, const void *targets, float *loss,
                         float *outputs) {
  return guarded(handle, [&](gradc_model &model) {
    if (int status = runCall(model, model.eval, "eval", inputs, targets, 0))
      return status;
    if (loss && model.eval.loss)
      *loss = model.eval.loss->f32()[0];
    if (outputs && model.eval.prediction)
      std::memcpy(outputs, model.eval.prediction->data(),
                  static_cast<size_t>(model.eval.prediction->spec.bytes()));
    return GRADC_OK;
  });
}

uint64_t gradc_model_step(const gradc_model *model) { return model ? model->step : 0; }

int gradc_model_tensor_size(gradc_model *handle, const char *name, int64_t *count) {
  return guarded(handle, [&](gradc_model &model) {
    rt::Tensor *tensor = persistent(model, name);
    if (!tensor)
      return GRADC_ERROR_ARGUMENT;
    if (count)
      *count = tensor->numel();
    return GRADC_OK;
  });
}

static int copyTensor(gradc_model *handle, const char *name, float *out, const float *in,
                      int64_t count) {
  return guarded(handle, [&](gradc_model &model) {
    rt::Tensor *tensor = persistent(model, name);
    if (!tensor)
      return GRADC_ERROR_ARGUMENT;
    if (tensor->spec.isInt)
      return model.fail(GRADC_ERROR_ARGUMENT, fmt::format("'{}' is i32, not f32", name));
    if (count != tensor->numel() || !(out || in))
      return model.fail(GRADC_ERROR_ARGUMENT,
                        fmt::format("'{}' is f32{} with {} elements; got {} elements{}", name,
                                    tensor->spec.shapeStr(), tensor->numel(), count,
                                    out || in ? "" : " at NULL"));
    size_t bytes = static_cast<size_t>(tensor->spec.bytes());
    if (out)
      std::memcpy(out, tensor->data(), bytes);
    else
      std::memcpy(tensor->data(), in, bytes);
    return GRADC_OK;
  });
}

int gradc_model_get_tensor(gradc_model *model, const char *name, float *data, int64_t count) {
  return copyTensor(model, name, data, nullptr, count);
}

int gradc_model_set_tensor(gradc_model *model, const char *name, const float *data, int64_t count) {
  return copyTensor(model, name, nullptr, data, count);
}

int gradc_model_save(gradc_model *handle, const char *path) {
  return guarded(handle, [&](gradc_model &model) {
    if (!path)
      return model.fail(GRADC_ERROR_ARGUMENT, "save: path is NULL");
    rt::CheckpointInfo info;
    info.model = model.descriptor->name;
    info.seed = model.seed;
    info.step = model.step;
    std::string error;
    if (!rt::saveCheckpoint(path, model.store, info, error))
      return model.fail(GRADC_ERROR_IO, error);
    return GRADC_OK;
  });
}

int gradc_model_load(gradc_model *handle, const char *path) {
  return guarded(handle, [&](gradc_model &model) {
    if (!path)
      return model.fail(GRADC_ERROR_ARGUMENT, "load: path is NULL");
    rt::SafetensorsFile file;
    std::string error;
    if (!rt::readSafetensors(path, file, error))
      return model.fail(GRADC_ERROR_IO, error);
    // A checkpoint of a training run (every state tensor and gradc's
    // metadata) restores everything; any other file the params.
    bool complete =
        file.metadata.count("format") && file.metadata.at("format") == rt::kCheckpointFormat;
    for (const rt::Tensor *tensor : model.store.persistent())
      complete = complete && file.find(tensor->spec.name);
    rt::CheckpointInfo info;
    if (!rt::loadCheckpoint(path, model.store,
                            complete ? rt::CheckpointUse::Resume : rt::CheckpointUse::Init, info,
                            error))
      return model.fail(GRADC_ERROR_IO, error);
    if (complete)
      model.step = info.step;
    return GRADC_OK;
  });
}

} // extern "C"
