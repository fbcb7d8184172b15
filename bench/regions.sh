#!/usr/bin/env bash
# Where a training step's time goes, parallel loop by parallel loop: builds
# the model's standalone trainer (`gradc build`), trains it with
# GRADC_REGION_PROFILE=1 (runtime/ThreadPool.h), and names each loop body
# from the trainer's symbol table.  Per body, in the order of its first
# call: calls, then per call the calling thread's time in its own chunks,
# waiting for the other threads' chunks, and in serial code since the
# previous loop ended; and each one's share of all three summed.  The
# products are the bodies named gradc.matmul.*.  Last, per training step,
# the time in the step's products and in everything else.
#
# usage: bench/regions.sh [MODEL.grad] [EPOCHS] [THREADS] [DATA]
#        (default examples/fashion_mlp.grad, 2 epochs, all cores, fashion-mnist;
#        GRADC=path/to/gradc to profile another build, e.g. for an A/B;
#        TRAINER_DIR=DIR to profile the trainer that `gradc build MODEL -o DIR`
#        wrote there, without building one)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-examples/fashion_mlp.grad}
epochs=${2:-2}
threads=${3:-0}
data=${4:-fashion-mnist}
for n in "$epochs" "$threads"; do
  [[ $n =~ ^[0-9]+$ ]] || {
    echo "usage: bench/regions.sh [MODEL.grad] [EPOCHS] [THREADS] [DATA] (whole numbers), got '$n'" >&2
    exit 2
  }
done
gradc=${GRADC:-build/bin/gradc}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ -n "${TRAINER_DIR:-}" ]; then
  trainer=$(ls "$TRAINER_DIR"/*-train 2>/dev/null | head -1 || true)
  [ -x "$trainer" ] || { echo "bench/regions.sh: no trainer (*-train) in TRAINER_DIR='$TRAINER_DIR'" >&2; exit 2; }
else
  [ -n "${GRADC:-}" ] || [ -x build/bin/gradc ] || scripts/build.sh >/dev/null
  "$gradc" build "$model" -o "$out/trainer" >/dev/null
  trainer=$(ls "$out"/trainer/*-train)
fi
GRADC_REGION_PROFILE=1 "$trainer" --data="$data" --epochs="$epochs" --threads="$threads" \
  >"$out/log" 2>"$out/profile"
grep -E '^epoch' "$out/log" | sed 's/  (.*//'
nm --defined-only "$trainer" >"$out/symbols"

/usr/bin/python3 - "$out" <<'PY'
import collections, re, subprocess, sys
out = sys.argv[1]
symbols = {}
for line in open(f"{out}/symbols"):
    fields = line.split()
    if len(fields) == 3:
        symbols.setdefault(int(fields[0], 16), fields[2])
anchor_at = next(a for a, name in symbols.items() if name == "gradc_parallel_for")
regions = collections.OrderedDict()  # name -> [calls, own, wait, gap] (ns)
for line in open(f"{out}/profile"):
    if not line.startswith("gradc region:"):
        continue
    f = dict(kv.split("=") for kv in line.split()[2:])
    at = int(f["body"], 16) - int(f["anchor"], 16) + anchor_at
    name = symbols.get(at, f"?{at:x}")
    if name.startswith("_Z"):  # a loop of the runtime's own: its function, or the one holding its lambda
        plain = subprocess.run(["c++filt", name], capture_output=True, text=True).stdout
        plain = plain.strip().replace("(anonymous namespace)::", "")
        inner = re.findall(r"(\w+)\((?:[^()]|\([^()]*\))*\)::\{lambda", plain)
        name = f"(runtime) {inner[0] if inner else plain.split('(')[0].split('::')[-1]}"
    sums = regions.setdefault(name, [0, 0, 0, 0])
    for i, key in enumerate(("calls", "own_ns", "wait_ns", "gap_ns")):
        sums[i] += int(f[key])
if not regions:
    sys.exit("no profile: the trainer printed no 'gradc region:' lines")
total = sum(own + wait + gap for _, own, wait, gap in regions.values())
print(f"\n{'loop body':58}{'calls':>8}{'own us':>10}{'wait us':>10}{'gap us':>10}{'share':>8}")
for name, (calls, own, wait, gap) in regions.items():
    print(f"{name[:57]:58}{calls:8}{own / calls / 1e3:10.1f}{wait / calls / 1e3:10.1f}"
          f"{gap / calls / 1e3:10.1f}{(own + wait + gap) / total * 100:7.1f}%")
products = [v for name, v in regions.items() if name.startswith("gradc.matmul.")]
print(f"\ncalling thread, {total / 1e9:.2f} s from the first loop to the last: products "
      f"{sum(o + w for _, o, w, _ in products) / total * 100:.1f}% (of which waiting "
      f"{sum(w for _, _, w, _ in products) / total * 100:.1f}%), waiting in all loops "
      f"{sum(w for _, _, w, _ in regions.values()) / total * 100:.1f}%, serial code between "
      f"loops {sum(g for *_, g in regions.values()) / total * 100:.1f}%")
# Per training step: the step's products (own time and waits) and everything
# else of the calling thread (other loops, their waits, serial code, the
# runtime's loops, whose loading of examples counts the test batches too).  The eval kernel's bodies are left out: its maps are
# named gradc_<model>_eval.*, and its products repeat the step's names with
# a suffix .N (LLVM's name for a second function of one name).
step = {name: v for name, v in regions.items()
        if "_eval." not in name and not re.search(r"\.tasks\.\d+$", name)}
steps = next(v[0] for name, v in step.items() if name.startswith("gradc.matmul."))
in_products = sum(o + w for name, (_, o, w, _) in step.items() if name.startswith("gradc.matmul."))
other = sum(o + w + g for _, o, w, g in step.values()) - in_products
print(f"per training step ({steps} steps): products {in_products / steps / 1e3:.0f} us, "
      f"everything else {other / steps / 1e3:.0f} us")
PY
