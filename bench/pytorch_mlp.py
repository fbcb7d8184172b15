"""The PyTorch side of bench/fashion.sh: the same model and training recipe as
examples/fashion_mlp.grad, on the same Fashion-MNIST files.

Model: 784-256-256-10 MLP, ReLU, dropout 0.2 after each hidden layer,
Xavier-uniform weights and zero biases, cross-entropy loss, SGD with momentum
0.9, lr 0.05, weight decay 1e-4 on the weights only (gradc's default: biases do
not decay), batch 128, 15 epochs, last partial batch kept.

--hidden sets the hidden layers (bench/perf.sh runs 128, 256,256 and
1024,1024 with batches 32, 128 and 256: bench/models/{s,m,l}.grad).

Prints one line per epoch and a final line
  RESULT wall_s=... train_s=... samples_per_s=... test_accuracy=... peak_rss_mb=... threads=...
that bench/fashion.sh parses.  Run with: python3 bench/pytorch_mlp.py [--threads N] [--epochs N]
"""
import argparse
import gzip
import resource
import struct
import time

T0 = time.perf_counter()

import numpy as np
import torch
import torch.nn as nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hidden", default="256,256", help="hidden layer sizes, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_train = torch.from_numpy(read_idx(f"{DATA}/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255.0)
    y_train = torch.from_numpy(read_idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64))
    x_test = torch.from_numpy(read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255.0)
    y_test = torch.from_numpy(read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64))

    layers, width = [], 784
    for hidden in (int(h) for h in args.hidden.split(",")):
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(0.2)]
        width = hidden
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": 1e-4},
                           {"params": biases, "weight_decay": 0.0}], lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    n = x_train.shape[0]
    train_seconds = 0.0
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(n)
        start = time.perf_counter()
        total = 0.0
        steps = 0
        for i in range(0, n, args.batch):
            idx = order[i:i + args.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            total += loss.item()
            steps += 1
        seconds = time.perf_counter() - start
        train_seconds += seconds
        model.eval()
        with torch.no_grad():
            logits = model(x_test)
            test_loss = loss_fn(logits, y_test).item()
            accuracy = (logits.argmax(1) == y_test).float().mean().item()
        print(f"epoch {epoch:3d}/{args.epochs}  loss {total / steps:.6f}  test {test_loss:.6f}  "
              f"accuracy {accuracy:.4f}  {seconds:.2f} s  {n / seconds:,.0f} samples/s", flush=True)
    wall = time.perf_counter() - T0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"RESULT wall_s={wall:.3f} train_s={train_seconds:.3f} "
          f"samples_per_s={n * args.epochs / train_seconds:.0f} test_accuracy={accuracy:.4f} "
          f"peak_rss_mb={rss_mb:.1f} threads={args.threads}")


if __name__ == "__main__":
    main()
