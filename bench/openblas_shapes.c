/* OpenBLAS's cblas_sgemm on the matrix products of one training step of
 * the S, M and L models (bench/models), with the transposes gradc's graph
 * has: the same list, labels and timing (best of 7 rounds of ~0.4 GFLOP)
 * as gradc's in-isolation figures,
 *
 *   build/bin/gradc_codegen_tests --gtest_filter='MatMul*Throughput' \
 *       --gtest_also_run_disabled_tests
 *
 * so the two print comparable lines.  This is the measurement behind
 * gradc's choice of its own kernels for every shape (README, "Measured").
 * The thread count is OpenBLAS's own:
 *
 *   cc -O2 bench/openblas_shapes.c -o openblas_shapes -l:libopenblas.so.0
 *   OPENBLAS_NUM_THREADS=1 ./openblas_shapes
 *
 * Needs libopenblas0-pthread (bench/fashion.sh installs it); the CBLAS
 * prototype is declared here, so the -dev package is not needed. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

struct product {
  int m, n, k, transA, transB;
};

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  /* MatMul.DISABLED_Throughput's list (test/unit/codegen/MatMulTest.cpp). */
  static const struct product products[] = {
      {32, 128, 784, 0, 1},     {32, 10, 128, 0, 1},     {32, 128, 10, 0, 0},
      {10, 128, 32, 1, 0},      {128, 784, 32, 1, 0},    {128, 256, 784, 0, 1},
      {128, 256, 256, 0, 1},    {128, 10, 256, 0, 1},    {128, 256, 10, 0, 0},
      {10, 256, 128, 1, 0},     {128, 256, 256, 0, 0},   {256, 256, 128, 1, 0},
      {256, 784, 128, 1, 0},    {256, 1024, 784, 0, 1},  {256, 1024, 1024, 0, 1},
      {256, 1024, 1024, 0, 0},  {1024, 1024, 256, 1, 0}, {1024, 784, 256, 1, 0},
      {2048, 2048, 2048, 0, 0}};
  for (size_t p = 0; p < sizeof products / sizeof products[0]; ++p) {
    const struct product *q = &products[p];
    float *a = malloc(sizeof(float) * q->m * q->k), *b = malloc(sizeof(float) * q->k * q->n),
          *c = malloc(sizeof(float) * q->m * q->n);
    for (long i = 0; i < (long)q->m * q->k; ++i)
      a[i] = (float)((i * 7 % 13) - 6) / 8;
    for (long i = 0; i < (long)q->k * q->n; ++i)
      b[i] = (float)((i * 5 % 11) - 5) / 8;
    /* A stored [k, m] when transposed, B stored [n, k]. */
    int lda = q->transA ? q->m : q->k, ldb = q->transB ? q->k : q->n;
    double flops = 2.0 * q->m * q->n * q->k, best = 1e30;
    int reps = 4e8 / flops > 2 ? (int)(4e8 / flops) : 2;
    for (int round = 0; round < 8; ++round) { /* the first round warms up */
      double start = seconds();
      for (int r = 0; r < reps; ++r)
        cblas_sgemm(RowMajor, q->transA ? Trans : NoTrans, q->transB ? Trans : NoTrans, q->m, q->n,
                    q->k, 1.0f, a, lda, b, ldb, 0.0f, c, q->n);
      double each = (seconds() - start) / reps;
      if (round > 0 && each < best)
        best = each;
    }
    char label[64];
    snprintf(label, sizeof label, "%dx%dx%d%s%s", q->m, q->n, q->k, q->transA ? " A^T" : "",
             q->transB ? " B^T" : "");
    printf("%-32s %6.1f GFLOP/s\n", label, flops / best * 1e-9);
    free(a);
    free(b);
    free(c);
  }
  return 0;
}
