/* The lecture's network, compiled ahead of time and driven from C.
 *
 *   gradc build examples/lecture.grad -o out
 *   cc -std=c11 -Iout examples/aot_lecture.c out/lecture.o \
 *      $GRADC/lib/libgradc_runtime.a -lfmt -lz -ldeflate -lstdc++ -lm -pthread -o aot_lecture
 *   ./aot_lecture
 *
 * (or, with CMake, find_package(gradc) and gradc_add_model(); see README).
 * It trains the network for a few epochs on a small regression problem,
 * evaluates it, predicts one example, saves a checkpoint, loads it into a
 * second instance and checks that both predict the same, and shows how an
 * error is reported. */
#include "lecture.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define EXAMPLES 256

/* A tiny deterministic generator, so the program prints the same numbers on
 * every run. */
static uint32_t state = 12345;
static float uniform(void) {
  state = state * 1664525u + 1013904223u;
  return (float)(state >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* The model's call fails: print its message and stop. */
static int check(int status, lecture_model *m, const char *what) {
  if (status != GRADC_OK) {
    fprintf(stderr, "%s failed (%d): %s\n", what, status, lecture_error(m));
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  const char *checkpoint = argc > 1 ? argv[1] : "aot_lecture.safetensors";
  static float x[EXAMPLES][LECTURE_INPUT_SIZE], y[EXAMPLES][LECTURE_TARGET_SIZE];
  for (int i = 0; i < EXAMPLES; ++i) {
    for (int j = 0; j < LECTURE_INPUT_SIZE; ++j)
      x[i][j] = uniform();
    /* A target the network can fit: two rectified combinations of x. */
    y[i][0] = fmaxf(0.0f, x[i][0] - x[i][1]);
    y[i][1] = 0.5f * fmaxf(0.0f, x[i][2] + x[i][3]);
  }

  lecture_model *m = NULL;
  if (lecture_create(1, 1, &m) != GRADC_OK) {
    fprintf(stderr, "create failed: %s\n", lecture_error(NULL));
    return 1;
  }
  printf("model: input %d floats, target %d, output %d, %d params\n", LECTURE_INPUT_SIZE,
         LECTURE_TARGET_SIZE, LECTURE_OUTPUT_SIZE, LECTURE_NUM_PARAMS);

  for (int epoch = 0; epoch <= 20; ++epoch) {
    if (epoch % 10 == 0) {
      double total = 0;
      for (int i = 0; i < EXAMPLES; ++i) {
        float loss;
        if (!check(lecture_evaluate(m, x[i], y[i], &loss, NULL), m, "evaluate"))
          return 1;
        total += loss;
      }
      printf("after %2d epochs: mean loss %.4f\n", epoch, total / EXAMPLES);
    }
    if (epoch == 20)
      break;
    for (int i = 0; i < EXAMPLES; ++i)
      if (!check(lecture_train_step(m, x[i], y[i], 0.05f, NULL), m, "train step"))
        return 1;
  }
  printf("steps: %llu\n", (unsigned long long)lecture_step(m));

  float out[LECTURE_OUTPUT_SIZE];
  if (!check(lecture_predict(m, x[0], out), m, "predict"))
    return 1;
  printf("predict x[0]: %.3f %.3f (target %.3f %.3f)\n", out[0], out[1], y[0][0], y[0][1]);

  float w1[LECTURE_PARAM_W1_SIZE];
  if (!check(lecture_get_param(m, LECTURE_PARAM_W1_NAME, w1, LECTURE_PARAM_W1_SIZE), m, "get W1"))
    return 1;
  double norm = 0;
  for (int i = 0; i < LECTURE_PARAM_W1_SIZE; ++i)
    norm += w1[i] * w1[i];
  printf("||W1|| = %.3f\n", sqrt(norm));

  /* A checkpoint, loaded into a second instance, predicts the same. */
  lecture_model *copy = NULL;
  float again[LECTURE_OUTPUT_SIZE];
  if (!check(lecture_save(m, checkpoint), m, "save") ||
      lecture_create(7, 1, &copy) != GRADC_OK || !check(lecture_load(copy, checkpoint), copy, "load") ||
      !check(lecture_predict(copy, x[0], again), copy, "predict"))
    return 1;
  printf("reloaded: %s, step %llu\n", memcmp(out, again, sizeof out) == 0 ? "same prediction" : "DIFFERENT",
         (unsigned long long)lecture_step(copy));

  /* Errors are return codes with a message, never an abort. */
  int status = lecture_get_param(m, "W3", w1, 20);
  printf("get W3: status %d: %s\n", status, lecture_error(m));
  status = lecture_set_param(m, LECTURE_PARAM_W1_NAME, w1, 3);
  printf("set W1 with 3 floats: status %d: %s\n", status, lecture_error(m));
  status = lecture_load(m, "/nonexistent/w.safetensors");
  printf("load: status %d: %s\n", status, lecture_error(m));

  lecture_destroy(copy);
  lecture_destroy(m);
  return 0;
}
