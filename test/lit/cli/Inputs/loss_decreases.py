"""Checks a gradc metrics CSV: the last epoch's training loss is well below
the first one's (at least 20% lower) and every loss is finite."""
import csv
import math
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
losses = [float(r["loss"]) for r in rows]
assert losses and all(math.isfinite(x) for x in losses), losses
assert losses[-1] < 0.8 * losses[0], f"loss did not go down enough: {losses}"
print(f"loss {losses[0]:.6g} -> {losses[-1]:.6g}")
