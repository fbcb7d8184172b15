/*===- runtime/AotModel.h - The descriptor of an ahead-of-time model -*- C -*-===*
 *
 * `gradc build` writes one object file per model.  Besides the kernels
 * (runtime/Abi.h) it holds one constant of type gradc_aot_model, called
 * gradc_model_<model name>, that says everything runtime/Model.h's
 * KernelSpec says about each kernel: its function, arena size, batch,
 * signature (names, roles, element types, shapes, initialisers) and
 * hyperparameters, plus the model's training defaults.  The runtime turns
 * it back into KernelSpecs (aotKernelSpecs in runtime/AotKernels.h), so a
 * program that links the object needs the runtime and nothing of LLVM.
 *
 * Plain C types only, laid out with natural alignment and no padding
 * holes, so the compiler writes the same bytes the C compiler reads on
 * every 64-bit target gradc builds for (x86-64, aarch64).
 *
 *===----------------------------------------------------------------------===*/
#ifndef GRADC_RUNTIME_AOTMODEL_H
#define GRADC_RUNTIME_AOTMODEL_H

#include "runtime/Abi.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct below changes; the runtime rejects another. */
#define GRADC_AOT_ABI_VERSION 1

/* gradc_aot_tensor.role: the values of gradc::rt::Role. */
enum {
  GRADC_ROLE_INPUT = 0,
  GRADC_ROLE_TARGET = 1,
  GRADC_ROLE_PARAM = 2,
  GRADC_ROLE_STATE = 3,
  GRADC_ROLE_OUTPUT = 4
};

/* One buffer of a kernel's signature (rt::TensorSpec). */
typedef struct gradc_aot_tensor {
  const char *name;        /* hierarchical: "dense1.W"; results: "loss" */
  const int64_t *dims;     /* rank entries (NULL for a scalar) */
  const char *init_kind;   /* params and state: "xavier_normal", ...; "" for none */
  const double *init_args; /* num_init_args entries */
  int64_t fan_in, fan_out;
  int32_t rank;
  int32_t role;   /* GRADC_ROLE_* */
  int32_t is_int; /* i32 (class labels) instead of f32 */
  int32_t num_init_args;
} gradc_aot_tensor;

/* One compiled graph (rt::KernelSpec). */
typedef struct gradc_aot_kernel {
  /* What it is for: "train_step", "eval" (loss and prediction, dropout
   * off), "predict" (prediction only: no target), or "train_step_tail" /
   * "eval_tail" (the same for a smaller batch: the examples left over at
   * the end of a data set the batch does not divide). */
  const char *name;
  gradc_kernel_fn fn;
  const gradc_aot_tensor *buffers; /* the signature, in ctx->buffers order */
  const char *const *hypers;       /* ctx->hypers[i] is hypers[i] ("lr") */
  int64_t arena_bytes;
  int64_t batch; /* examples per call; 0: one example, no batch dimension */
  int32_t num_buffers;
  int32_t num_hypers;
} gradc_aot_kernel;

/* A model: its kernels and what its `train { }` section says. */
typedef struct gradc_aot_model {
  uint32_t abi_version; /* GRADC_AOT_ABI_VERSION */
  uint32_t num_kernels;
  const char *name;      /* the model's name */
  const char *source;    /* the model file, as given to gradc build */
  const char *target;    /* "x86_64-pc-linux-gnu, cpu znver3" */
  const char *optimizer; /* "sgd(momentum=0.9)" */
  const gradc_aot_kernel *kernels;
  const char *schedule; /* "constant", "step", "cosine" */
  double lr, step_size, gamma, lr_min;
  int64_t epochs;
  uint64_t seed;
} gradc_aot_model;

#ifdef __cplusplus
}
#endif

#endif /* GRADC_RUNTIME_AOTMODEL_H */
