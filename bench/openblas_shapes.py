#!/usr/bin/env python3
"""OpenBLAS (through torch.mm) on the five matrix products of one training
step of the L model (bench/models/l.grad, batch 256), with the transposes
gradc's graph has; best of 20 calls with hot caches.  The thread count is
OpenBLAS's own, so run it once per count:

    OPENBLAS_NUM_THREADS=1 python3 bench/openblas_shapes.py
    OPENBLAS_NUM_THREADS=2 python3 bench/openblas_shapes.py

Needs what bench/fashion.sh installs (python3-torch, libopenblas0-pthread).
"""
import time

import torch

torch.set_num_threads(1)  # PyTorch's own pool; OpenBLAS sizes its own


def bench(name, a, b):
    torch.mm(a, b)
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    m, k = a.shape
    n = b.shape[1]
    print(f"{name:18} m={m:5} k={k:5} n={n:5}  {best * 1e3:7.2f} ms  "
          f"{2 * m * k * n / best / 1e9:6.1f} GFLOP/s")


r = torch.randn
bench("dense1 forward", r(256, 784), r(1024, 784).t())       # x W1^T
bench("dense2 forward", r(256, 1024), r(1024, 1024).t())     # h W2^T
bench("dL_dh.1", r(256, 1024), r(1024, 1024))                # dz2 W2
bench("dL_ddense2.W", r(256, 1024).t(), r(256, 1024))        # dz2^T h
bench("dL_ddense1.W", r(256, 1024).t(), r(256, 784))         # dz1^T x
