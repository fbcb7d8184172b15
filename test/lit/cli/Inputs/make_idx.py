"""Writes a small gzipped IDX data set: make_idx.py DIR N FEATURES CLASSES.
Images are N x 2 x (FEATURES/2) bytes, labels cycle through the classes;
train and t10k are the same examples."""
import gzip
import struct
import sys

out, n, features, classes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows, cols = 2, features // 2
labels = [i % classes for i in range(n)]
images = bytes((37 * i + 11 * j + 60 * labels[i]) % 256 for i in range(n) for j in range(rows * cols))
for split in ("train", "t10k"):
    with gzip.open(f"{out}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, rows, cols) + images)
    with gzip.open(f"{out}/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))
