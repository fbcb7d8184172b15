# Compares two --metrics files (data-cache.test): every column but the
# timings (seconds, samples_per_second) must be the same.
import csv
import sys

first, second = (list(csv.DictReader(open(path))) for path in sys.argv[1:3])
timing = {"seconds", "samples_per_second"}
assert len(first) == len(second) and first, (len(first), len(second))
for a, b in zip(first, second):
    for key in a:
        if key not in timing:
            assert a[key] == b[key], (key, a[key], b[key])
print(f"same losses and accuracies in {len(first)} epochs")
