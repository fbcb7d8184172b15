/*===- runtime/Abi.h - The C interface of generated kernels -------*- C -*-===*
 *
 * Generated code (JIT or ahead of time) and the runtime meet here, through
 * plain C types only, so an AOT trainer links the runtime without LLVM.
 *
 * A kernel is one compiled graph: the training step, the gradient of the
 * objective, or inference.  It is called as fn(&ctx) and
 *   - reads and writes the tensors in ctx->buffers, one pointer per tensor
 *     of its signature, in signature order (leaves in graph order: inputs,
 *     targets, params, state; then the graph's results in result order);
 *   - keeps every intermediate value in ctx->arena, at offsets fixed at
 *     compile time by the memory plan: nothing is allocated during a step;
 *   - draws dropout masks from Philox keyed by (ctx->seed, ctx->step),
 *     through gradc_dropout_mask;
 *   - reads hyperparameters (e.g. the learning rate) from ctx->hypers;
 *   - runs parallel loops on ctx->pool through gradc_parallel_for.
 *
 *===----------------------------------------------------------------------===*/
#ifndef GRADC_RUNTIME_ABI_H
#define GRADC_RUNTIME_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gradc_step_context {
  void *const *buffers;
  char *arena;
  uint64_t seed;
  uint64_t step;
  const float *hypers;
  void *pool; /* a gradc thread pool, or NULL to run on the calling thread */
} gradc_step_context;

typedef void (*gradc_kernel_fn)(const gradc_step_context *ctx);

/* Body of a parallel loop: runs iterations [begin, end) with `closure`. */
typedef void (*gradc_loop_body)(void *closure, int64_t begin, int64_t end);

/* Runs body over [0, n) split statically into at most as many contiguous
 * chunks as the pool has threads; the split depends only on n and the
 * thread count, so results are reproducible for a fixed thread count. */
void gradc_parallel_for(void *pool, int64_t n, gradc_loop_body body, void *closure);

/* Writes the `count` elements of the inverted-dropout mask `stream` at
 * (ctx->seed, ctx->step) to out[0 .. count): element i is `kept` (1/(1-p))
 * when its Philox uniform u_i >= `threshold` (p), else 0 (runtime/Philox.h,
 * runtime/DropoutMask.h).  A big mask is drawn on ctx->pool; element i
 * depends only on i, so the mask is the same for any thread count. */
void gradc_dropout_mask(const gradc_step_context *ctx, uint32_t stream, float threshold, float kept,
                        int64_t count, float *out);

#ifdef __cplusplus
}
#endif

#endif /* GRADC_RUNTIME_ABI_H */
