#!/usr/bin/env bash
# Side by side, in one run: examples/fashion_mlp.grad trained by gradc (JIT)
# and the same model and recipe in PyTorch (bench/pytorch_mlp.py), on
# Debian's Fashion-MNIST.  Prints wall time (the whole command: start-up,
# data loading, compilation, 15 epochs), training samples/s, peak RSS and
# test accuracy for each, and the ratios.
#
# usage: bench/fashion.sh [EPOCHS]      (installs python3-torch, python3-numpy,
#                                        libopenblas0-pthread, dataset-fashion-mnist
#                                        and time if missing)
#
# libopenblas0-pthread matters: without it Debian's PyTorch falls back to the
# reference BLAS and runs ~15x slower, which would flatter gradc.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-15}
scripts/install-deps.sh build run
missing=()
for p in python3-torch python3-numpy libopenblas0-pthread time; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
scripts/build.sh >/dev/null
out=$(mktemp -d)

echo "== gradc (JIT), $epochs epochs"
# A cold kernel cache: the wall time includes compiling, as on a first run.
GRADC_CACHE_DIR=off /usr/bin/time -f "%e %M" -o "$out/gradc.time" \
  build/bin/gradc train examples/fashion_mlp.grad --data=fashion-mnist --epochs="$epochs" \
  --metrics="$out/gradc.csv" | tee "$out/gradc.log"
echo "== PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), $epochs epochs, best of 1 and 2 threads by samples/s"
for t in 1 2; do
  /usr/bin/time -f "%e %M" -o "$out/torch$t.time" \
    /usr/bin/python3 bench/pytorch_mlp.py --threads="$t" --epochs="$epochs" | tee "$out/torch$t.log"
done

/usr/bin/python3 - "$out" <<'PY'
import csv, sys
out = sys.argv[1]
def timing(name):
    wall, rss_kb = open(f"{out}/{name}.time").read().split()
    return float(wall), float(rss_kb) / 1024
rows = list(csv.DictReader(open(f"{out}/gradc.csv")))
g_train_s = sum(float(r["seconds"]) for r in rows)
g_samples = 59904 * len(rows) / g_train_s  # batch 128: 468 full batches of 60000 per epoch
g_acc = float(rows[-1]["test_accuracy"])
g_wall, g_rss = timing("gradc")
torch = []
for t in (1, 2):
    line = [l for l in open(f"{out}/torch{t}.log") if l.startswith("RESULT")][-1]
    fields = dict(kv.split("=") for kv in line.split()[1:])
    wall, rss = timing(f"torch{t}")
    torch.append((float(fields["samples_per_s"]), wall, rss, float(fields["test_accuracy"]), t))
best = max(torch)
sps, t_wall, t_rss, t_acc, threads = best
print()
print(f"{'':24}{'gradc':>12}{'PyTorch':>12}{'ratio':>10}")
print(f"{'wall time (s)':24}{g_wall:12.1f}{t_wall:12.1f}{t_wall / g_wall:9.2f}x")
print(f"{'train samples/s':24}{g_samples:12,.0f}{sps:12,.0f}{g_samples / sps:9.2f}x")
print(f"{'peak RSS (MiB)':24}{g_rss:12.0f}{t_rss:12.0f}{t_rss / g_rss:9.2f}x")
print(f"{'test accuracy':24}{g_acc:12.4f}{t_acc:12.4f}{(g_acc - t_acc) * 100:+9.2f} pt")
print(f"(PyTorch best with {threads} thread(s); ratios > 1 favour gradc)")
PY
