/* Inflating Fashion-MNIST's training images with libdeflate and with zlib,
 * the file already in memory, three rounds each: the figure behind gradc's
 * choice of libdeflate (README, Dependencies).
 *
 *   cc -O2 bench/inflate.c -o inflate -ldeflate -lz && ./inflate [FILE.gz]
 */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zlib.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  const char *path =
      argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  rewind(f);
  unsigned char *in = malloc((size_t)size);
  if (!in || fread(in, 1, (size_t)size, f) != (size_t)size) {
    fprintf(stderr, "%s: cannot read\n", path);
    return 1;
  }
  fclose(f);
  /* The gzip trailer's size of the inflated data (mod 2^32). */
  size_t outSize = (size_t)in[size - 4] | (size_t)in[size - 3] << 8 | (size_t)in[size - 2] << 16 |
                   (size_t)in[size - 1] << 24;
  unsigned char *out = malloc(outSize);
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  for (int round = 0; round < 3; ++round) {
    size_t produced = 0;
    double t = now();
    int status = libdeflate_gzip_decompress(d, in, (size_t)size, out, outSize, &produced);
    double fast = now() - t;
    z_stream zs = {0};
    inflateInit2(&zs, 16 + MAX_WBITS);
    zs.next_in = in;
    zs.avail_in = (uInt)size;
    zs.next_out = out;
    zs.avail_out = (uInt)outSize;
    t = now();
    int zstatus = inflate(&zs, Z_FINISH);
    double slow = now() - t;
    inflateEnd(&zs);
    printf("%zu bytes: libdeflate %.1f ms%s, zlib %.1f ms%s\n", produced, fast * 1e3,
           status == LIBDEFLATE_SUCCESS ? "" : " (failed)", slow * 1e3,
           zstatus == Z_STREAM_END ? "" : " (failed)");
  }
  libdeflate_free_decompressor(d);
  return 0;
}
