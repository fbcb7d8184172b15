"""Writes the first N training and M test examples of Debian's
Fashion-MNIST as a gzipped IDX directory: fashion_subset.py DIR N M."""
import gzip
import struct
import sys

SOURCE = "/usr/share/datasets/fashion-mnist"
out, counts = sys.argv[1], {"train": int(sys.argv[2]), "t10k": int(sys.argv[3])}
for split, n in counts.items():
    with gzip.open(f"{SOURCE}/{split}-images-idx3-ubyte.gz", "rb") as f:
        magic, total, rows, cols = struct.unpack(">IIII", f.read(16))
        images = f.read(n * rows * cols)
    with gzip.open(f"{SOURCE}/{split}-labels-idx1-ubyte.gz", "rb") as f:
        f.read(8)
        labels = f.read(n)
    with gzip.open(f"{out}/{split}-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(struct.pack(">IIII", magic, n, rows, cols) + images)
    with gzip.open(f"{out}/{split}-labels-idx1-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(struct.pack(">II", 0x801, n) + labels)
