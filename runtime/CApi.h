/*===- runtime/CApi.h - The C interface of ahead-of-time models ---*- C -*-===*
 *
 * A model built by `gradc build` is driven through these functions, from
 * C or C++; the header `gradc build` writes next to the object wraps them
 * with the model's name and shapes (lecture_create, lecture_train_step,
 * ...), so most programs include that one instead.
 *
 * Every function that can fail returns GRADC_OK (0) or one of the
 * GRADC_ERROR_* codes and leaves a message in the handle
 * (gradc_model_error); nothing aborts, exits or throws across this
 * interface.  A handle is not thread-safe: use it from one thread at a
 * time (its kernels run on its own thread pool).
 *
 * The generated headers repeat these declarations, so a change here must
 * keep them compatible (test/lit/aot/header.test compiles both together).
 *
 *===----------------------------------------------------------------------===*/
#ifndef GRADC_RUNTIME_CAPI_H
#define GRADC_RUNTIME_CAPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
#define GRADC_OK 0
#define GRADC_ERROR_ARGUMENT 1    /* a null pointer, a wrong size, an unknown name */
#define GRADC_ERROR_IO 2          /* a checkpoint that cannot be read or written */
#define GRADC_ERROR_NUMERIC 3     /* the loss became NaN or infinite */
#define GRADC_ERROR_MEMORY 4      /* out of memory */
#define GRADC_ERROR_UNSUPPORTED 5 /* the model has no such kernel (e.g. no prediction) */
#define GRADC_ERROR_INTERNAL 6    /* a descriptor this runtime cannot read, a bug */

/* The descriptor `gradc build` compiles into the object (runtime/AotModel.h). */
typedef struct gradc_aot_model gradc_aot_model;
/* A model instance: its weights, optimizer state, step counter, buffers
 * and thread pool. */
typedef struct gradc_model gradc_model;

/* Creates an instance of `model` with its parameters initialised from
 * `seed` (the same bits as `gradc train --seed=SEED` starts from) and a
 * pool of `threads` threads (0: all cores; results are bit-identical for a
 * fixed count).  On failure *out is NULL and gradc_model_error(NULL)
 * tells why.  The thread that calls the model's steps runs part of each
 * parallel loop itself: a model with big products (the L benchmark's)
 * needs up to 1.1 MiB of its stack, and its pool threads take glibc's
 * default stack size (from `ulimit -s`, 8 MiB by default). */
int gradc_model_create(const gradc_aot_model *model, uint64_t seed, int threads, gradc_model **out);
/* Frees everything; NULL is allowed. */
void gradc_model_destroy(gradc_model *model);
/* The message of the last failure of `model`, or "" when its last call
 * succeeded; with NULL, that of the calling thread's last failed create.
 * Valid until the next call on the handle. */
const char *gradc_model_error(const gradc_model *model);

/* One training step on one batch: `inputs` holds batch x features floats,
 * `targets` batch x target floats, or batch int32_t class labels.  The
 * dropout masks are keyed by (seed, step), and the step counter advances.
 * *loss (may be NULL) receives the batch's mean data loss. */
int gradc_model_train_step(gradc_model *model, const float *inputs, const void *targets, float lr,
                           float *loss);
/* Inference (dropout off): `outputs` receives the prediction,
 * batch x outputs floats. */
int gradc_model_predict(gradc_model *model, const float *inputs, float *outputs);
/* Inference with the loss: *loss (may be NULL) and the prediction (outputs
 * may be NULL). */
int gradc_model_evaluate(gradc_model *model, const float *inputs, const void *targets, float *loss,
                         float *outputs);

/* Training steps taken so far (the dropout key of the next step). */
uint64_t gradc_model_step(const gradc_model *model);

/* Params and optimizer state by hierarchical name ("dense1.W"): the element
 * count, and copies out of and into the model (`count` must be exact). */
int gradc_model_tensor_size(gradc_model *model, const char *name, int64_t *count);
int gradc_model_get_tensor(gradc_model *model, const char *name, float *data, int64_t count);
int gradc_model_set_tensor(gradc_model *model, const char *name, const float *data, int64_t count);

/* safetensors checkpoints, the format of `gradc train --save`: save writes
 * params, optimizer state and the step counter atomically; load reads a
 * file of `--save` (params, state and step) or any file holding at least
 * every param (then state and step are left as they are). */
int gradc_model_save(gradc_model *model, const char *path);
int gradc_model_load(gradc_model *model, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* GRADC_RUNTIME_CAPI_H */
