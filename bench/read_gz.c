/* Reading a gzipped data file into memory of its own against mapping it
 * (runtime/ByteArray.cpp, mapReadOnly), each in a fresh process as gradc
 * does it once per run: the read or the mapping, then the 47 MB output
 * buffer sized and zero-filled with huge pages advised (as
 * runtime/Gzip.cpp does), then libdeflate's inflate.  Fresh pages cost
 * most on a VM, so the figures move with the machine: run it a few times.
 *
 *   cc -O2 bench/read_gz.c -o read_gz -ldeflate
 *   for i in 1 2 3 4 5; do ./read_gz read; ./read_gz map; done
 */
#include <fcntl.h>
#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/* madvise(MADV_HUGEPAGE) on the whole 2 MiB pages of [p, p + n). */
static void adviseHugePages(void *p, size_t n) {
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t begin = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = ((uintptr_t)p + n) & ~(huge - 1);
  if (end > begin)
    madvise((void *)begin, end - begin, MADV_HUGEPAGE);
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "read") != 0 && strcmp(argv[1], "map") != 0)) {
    fprintf(stderr, "usage: read_gz read|map [FILE.gz]\n");
    return 2;
  }
  const int map = strcmp(argv[1], "map") == 0;
  const char *path =
      argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
  double t = now();
  int fd = open(path, O_RDONLY);
  struct stat info;
  if (fd < 0 || fstat(fd, &info) != 0 || info.st_size < 18) {
    perror(path);
    return 1;
  }
  const size_t size = (size_t)info.st_size;
  const unsigned char *in;
  if (map) {
    in = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (in == MAP_FAILED) {
      perror(path);
      return 1;
    }
  } else {
    unsigned char *buffer = malloc(size);
    adviseHugePages(buffer, size);
    memset(buffer, 0, size); /* std::string::resize */
    if (read(fd, buffer, size) != (ssize_t)size) {
      perror(path);
      return 1;
    }
    in = buffer;
  }
  close(fd);
  const double got = now() - t;
  t = now();
  size_t outSize = (size_t)in[size - 4] | (size_t)in[size - 3] << 8 | (size_t)in[size - 2] << 16 |
                   (size_t)in[size - 1] << 24;
  unsigned char *out = malloc(outSize);
  adviseHugePages(out, outSize);
  memset(out, 0, outSize);
  const double sized = now() - t;
  t = now();
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  size_t produced = 0;
  int status = libdeflate_gzip_decompress(d, in, size, out, outSize, &produced);
  printf("%s: %s %.1f ms, output buffer %.1f ms, inflate %.1f ms%s\n", argv[1],
         map ? "map" : "read", got, sized, now() - t,
         status == LIBDEFLATE_SUCCESS ? "" : " (failed)");
  libdeflate_free_decompressor(d);
  return 0;
}
