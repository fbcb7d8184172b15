"""Cross-check against PyTorch: from identical initial weights, one SGD step
with momentum and weight decay (no dropout) must give the same updated
weights as torch.optim.SGD, to 1e-5 relative.

usage: torch_crosscheck.py GRADC WORKDIR {squared_error|cross_entropy}

It writes a model file, the initial weights as a safetensors file (--init),
one batch as a CSV file (--data=csv:...), runs `gradc train` for one step
with --save, reads the checkpoint back and compares it with PyTorch's weights
after the same step.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch

gradc, workdir, loss_kind = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(workdir, exist_ok=True)
rng = np.random.default_rng(42)
BATCH, D_IN, HIDDEN, D_OUT = 8, 5, 7, 3
LR, MOMENTUM, DECAY = 0.1, 0.9, 0.01
classify = loss_kind == "cross_entropy"

model_text = f"""
block dense(n_in, n_out, act = relu)(x) {{
  param W : f32[n_out, n_in] = xavier_uniform
  param b : f32[n_out] = zeros
  out act(x @ W^T + b)
}}
model check {{
  input x : f32[batch, {D_IN}]
  {"label y : i32[batch]" if classify else f"target y : f32[batch, {D_OUT}]"}
  h = dense({D_IN}, {HIDDEN}, act = tanh)(x)
  o = dense({HIDDEN}, {D_OUT}, act = none)(h)
  loss {"cross_entropy(o, y)" if classify else "squared_error(o, y)"}
  weight_decay {DECAY}
  train {{
    optimizer = sgd(lr = {LR}, momentum = {MOMENTUM})
    batch = {BATCH}
  }}
}}
"""
with open(f"{workdir}/model.grad", "w") as f:
    f.write(model_text)

weights = {
    "dense1.W": rng.normal(0, 0.5, (HIDDEN, D_IN)).astype(np.float32),
    "dense1.b": rng.normal(0, 0.1, (HIDDEN,)).astype(np.float32),
    "dense2.W": rng.normal(0, 0.5, (D_OUT, HIDDEN)).astype(np.float32),
    "dense2.b": rng.normal(0, 0.1, (D_OUT,)).astype(np.float32),
}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n, = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = {"F32": "<f4", "I32": "<i4"}[info["dtype"]]
        out[name] = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=dtype).reshape(info["shape"])
    return out


write_safetensors(f"{workdir}/init.safetensors", weights)
x = rng.normal(0, 1, (BATCH, D_IN)).astype(np.float32)
if classify:
    y = rng.integers(0, D_OUT, BATCH)
else:
    y = rng.normal(0, 1, (BATCH, D_OUT)).astype(np.float32)
with open(f"{workdir}/data.csv", "w") as f:
    columns = [f"x{i}" for i in range(D_IN)] + (["label"] if classify else [f"y{i}" for i in range(D_OUT)])
    f.write(",".join(columns) + "\n")
    for i in range(BATCH):
        values = [repr(float(v)) for v in x[i]]
        values += [str(int(y[i]))] if classify else [repr(float(v)) for v in y[i]]
        f.write(",".join(values) + "\n")

label = "label" if classify else ",".join(f"y{i}" for i in range(D_OUT))
cmd = [gradc, "train", f"{workdir}/model.grad", f"--data=csv:{workdir}/data.csv", f"--label={label}",
       f"--init={workdir}/init.safetensors", f"--save={workdir}/after.safetensors", "--epochs=1"]
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
got = read_safetensors(f"{workdir}/after.safetensors")

# PyTorch: the same network, loss and one optimizer step.
layers = {k: torch.tensor(v, requires_grad=True) for k, v in weights.items()}
xt = torch.tensor(x)
h = torch.tanh(xt @ layers["dense1.W"].T + layers["dense1.b"])
o = h @ layers["dense2.W"].T + layers["dense2.b"]
if classify:
    loss = torch.nn.functional.cross_entropy(o, torch.tensor(y, dtype=torch.int64))
else:
    # gradc's squared_error: 1/2 ||o - y||^2 per example, averaged over the batch.
    loss = 0.5 * ((o - torch.tensor(y)) ** 2).sum() / BATCH
opt = torch.optim.SGD([{"params": [layers["dense1.W"], layers["dense2.W"]], "weight_decay": DECAY},
                       {"params": [layers["dense1.b"], layers["dense2.b"]], "weight_decay": 0.0}],
                      lr=LR, momentum=MOMENTUM)
opt.zero_grad()
loss.backward()
opt.step()

worst = 0.0
for name, tensor in layers.items():
    want = tensor.detach().numpy()
    have = got[name]
    rel = np.abs(have - want) / np.maximum(np.abs(want), 1e-3)
    worst = max(worst, float(rel.max()))
    print(f"{name:10s} max relative difference {rel.max():.3e}")
    assert rel.max() <= 1e-5, f"{name} differs from PyTorch: {rel.max():.3e}"
print(f"{loss_kind}: matches PyTorch (worst relative difference {worst:.3e})")
