#!/usr/bin/env bash
# Side by side, in one run: examples/fashion_mlp.grad trained by gradc (JIT)
# and the same model and recipe in PyTorch (bench/pytorch_mlp.py), on
# Debian's Fashion-MNIST.  Prints wall time (the whole command: start-up,
# data loading, compilation, 15 epochs), training samples/s, peak RSS and
# test accuracy for each, and the ratios.  Last, the machine's peak
# multiply-add rate (bench/fma_peak.c) and what 1/3 of PyTorch's wall time
# would ask of gradc's training against it.
#
# usage: bench/fashion.sh [EPOCHS] [ROUNDS]   (default 15 epochs, 1 round;
#                                        installs python3-torch, python3-numpy,
#                                        libopenblas0-pthread, dataset-fashion-mnist
#                                        and time if missing)
#
# With ROUNDS > 1 the three runs (gradc, PyTorch at 1 and 2 threads)
# alternate ROUNDS times, so a slow spell of a shared VM falls on both
# sides; each round's ratio is printed, and the table gives the medians
# (its ratios are ratios of medians).
#
# libopenblas0-pthread matters: without it Debian's PyTorch falls back to the
# reference BLAS and runs ~15x slower, which would flatter gradc.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-15}
rounds=${2:-1}
for n in "$epochs" "$rounds"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/fashion.sh [EPOCHS] [ROUNDS] (positive whole numbers), got '$n'" >&2; exit 2; }
done
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
trap 'rm -rf "$out"' EXIT

torch_version=$(/usr/bin/python3 -c 'import torch; print(torch.__version__)')
for r in $(seq "$rounds"); do
  echo "== round $r/$rounds: gradc (JIT), $epochs epochs"
  # A cold kernel cache: the wall time includes compiling, as on a first run.
  # No inflated-data cache either: gradc inflates the gzipped files on every
  # run, as bench/pytorch_mlp.py does.
  GRADC_CACHE_DIR=off GRADC_DATA_CACHE_DIR=off /usr/bin/time -f "%e %M" -o "$out/gradc$r.time" \
    build/bin/gradc train examples/fashion_mlp.grad --data=fashion-mnist --epochs="$epochs" \
    --metrics="$out/gradc$r.csv" | tee "$out/gradc$r.log"
  echo "== round $r/$rounds: PyTorch $torch_version, $epochs epochs, best of 1 and 2 threads by samples/s"
  for t in 1 2; do
    /usr/bin/time -f "%e %M" -o "$out/torch$r-$t.time" \
      /usr/bin/python3 bench/pytorch_mlp.py --threads="$t" --epochs="$epochs" | tee "$out/torch$r-$t.log"
  done
done

echo "== FMA peak (bench/fma_peak.c)"
cc -O2 -march=native bench/fma_peak.c -o "$out/fma_peak" -lpthread
"$out/fma_peak" > "$out/peak"

/usr/bin/python3 - "$out" "$rounds" <<'PY'
import csv, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
# Floating-point operations of a training step's products per example, as
# bench/perf.sh counts them: one multiply-add (2 FLOP) per weight in the
# forward product and in each of the two gradient products, the first
# layer having no gradient for its input.
FLOP_PER_SAMPLE = 4 * 784 * 256 + 6 * (256 * 256 + 256 * 10)
def timing(name):
    wall, rss_kb = open(f"{out}/{name}.time").read().split()
    return float(wall), float(rss_kb) / 1024
def gradc(r):  # wall, samples/s, peak RSS, test accuracy, seconds not training, epochs
    rows = list(csv.DictReader(open(f"{out}/gradc{r}.csv")))
    train_s = sum(float(row["seconds"]) for row in rows)
    samples = 59904 * len(rows) / train_s  # batch 128: 468 full batches of 60000 per epoch
    wall, rss = timing(f"gradc{r}")
    return wall, samples, rss, float(rows[-1]["test_accuracy"]), wall - train_s, len(rows)
def torch(r):  # the same for the better of PyTorch's thread counts, and that count
    runs = []
    for t in (1, 2):
        line = [l for l in open(f"{out}/torch{r}-{t}.log") if l.startswith("RESULT")][-1]
        fields = dict(kv.split("=") for kv in line.split()[1:])
        wall, rss = timing(f"torch{r}-{t}")
        runs.append((float(fields["samples_per_s"]), wall, rss, float(fields["test_accuracy"]), t))
    sps, wall, rss, acc, t = max(runs)
    return wall, sps, rss, acc, t
g = [gradc(r) for r in range(1, rounds + 1)]
p = [torch(r) for r in range(1, rounds + 1)]
print()
if rounds > 1:
    for r in range(rounds):
        print(f"round {r + 1}: wall time gradc {g[r][0]:.1f} s, PyTorch {p[r][0]:.1f} s "
              f"({p[r][4]} thread(s)), {p[r][0] / g[r][0]:.2f}x")
    print(f"medians of {rounds} rounds:")
median = statistics.median
g_wall, g_samples, g_rss, g_acc = (median(v[i] for v in g) for i in range(4))
t_wall, sps, t_rss, t_acc = (median(v[i] for v in p) for i in range(4))
threads = "/".join(str(v[4]) for v in p)
print(f"{'':24}{'gradc':>12}{'PyTorch':>12}{'ratio':>10}")
print(f"{'wall time (s)':24}{g_wall:12.1f}{t_wall:12.1f}{t_wall / g_wall:9.2f}x")
print(f"{'train samples/s':24}{g_samples:12,.0f}{sps:12,.0f}{g_samples / sps:9.2f}x")
print(f"{'peak RSS (MiB)':24}{g_rss:12.0f}{t_rss:12.0f}{t_rss / g_rss:9.2f}x")
print(f"{'test accuracy':24}{g_acc:12.4f}{t_acc:12.4f}{(g_acc - t_acc) * 100:+9.2f} pt")
print(f"(PyTorch best with {threads} thread(s); ratios > 1 favour gradc)")
if rounds > 1:
    ratios = sorted(v[0] / w[0] for v, w in zip(p, g))
    print(f"wall-time ratio per round: {ratios[0]:.2f}x to {ratios[-1]:.2f}x")
# The ceiling: what 1/3 of PyTorch's wall time asks of gradc's training,
# given the rest of its wall time (start-up, loading, JIT, evaluation).
peak = {int(t): float(x) for t, x in (l.split() for l in open(f"{out}/peak"))}
other = median(v[4] for v in g)
epochs = g[0][5]
have = g_samples * FLOP_PER_SAMPLE / 1e9
line = (f"FMA peak {peak[2]:.1f} GFLOP/s (2 cores); gradc trains at {have:.1f} = "
        f"{have / peak[2] * 100:.0f}% of it and spends {other:.2f} s of its wall time not training; ")
budget = t_wall / 3 - other
if budget > 0:
    needed = 59904 * epochs / budget * FLOP_PER_SAMPLE / 1e9
    line += (f"1/3 of PyTorch's wall time needs {needed:.1f} GFLOP/s = "
             f"{needed / peak[2] * 100:.0f}% of the peak")
else:
    line += "1/3 of PyTorch's wall time is less than that"
print(line)
PY
