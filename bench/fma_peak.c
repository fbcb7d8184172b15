/* The machine's peak f32 multiply-add rate, on 1 and on 2 cores: the
 * ceiling any training step (gradc's, PyTorch's, OpenBLAS's sgemm) is
 * measured against in bench/perf.sh.  Twelve independent accumulators of
 * the widest vector the compiler targets (-march=native: 8 lanes with
 * AVX2, 16 with AVX-512) hide the FMA latency and fit the 16 or 32 vector
 * registers.  Prints "1 <GFLOP/s>" and "2 <GFLOP/s>", the best of 5 rounds.
 *
 *   cc -O2 -march=native bench/fma_peak.c -o fma_peak -lpthread
 */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#ifdef __AVX512F__
#define LANES 16
#else
#define LANES 8
#endif
typedef float vec __attribute__((vector_size(LANES * 4)));
#define CHAINS 12

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* GFLOP/s of one thread's run, written to *arg.  The sum of the
 * accumulators is checked so the compiler keeps the work. */
static void *run(void *arg) {
  const long steps = 50000000;
  vec acc[CHAINS], x, y;
  for (int l = 0; l < LANES; ++l) {
    x[l] = 1.0000001f;
    y[l] = 0.9999999f;
  }
  for (int i = 0; i < CHAINS; ++i)
    for (int l = 0; l < LANES; ++l)
      acc[i][l] = (float)i;
  double start = seconds();
  for (long s = 0; s < steps; ++s)
#pragma GCC unroll 12
    for (int i = 0; i < CHAINS; ++i)
      acc[i] = acc[i] * x + y; /* contracted to one FMA (-ffp-contract=fast, GCC's default) */
  double elapsed = seconds() - start;
  float sum = 0;
  for (int i = 0; i < CHAINS; ++i)
    sum += acc[i][0];
  *(double *)arg = sum == 0.5f ? 0 : steps * CHAINS * LANES * 2.0 / elapsed * 1e-9;
  return NULL;
}

int main(void) {
  double one = 0, two = 0;
  for (int round = 0; round < 5; ++round) {
    double a, b, c;
    run(&a);
    pthread_t other;
    pthread_create(&other, NULL, run, &b);
    run(&c);
    pthread_join(other, NULL);
    one = a > one ? a : one;
    two = b + c > two ? b + c : two;
  }
  printf("1 %.1f\n2 %.1f\n", one, two);
  return 0;
}
