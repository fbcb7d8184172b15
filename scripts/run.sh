#!/usr/bin/env bash
# The main job: installs what is missing, builds, and JIT-trains the
# lecture's network (examples/lecture.grad) on the synthetic regression set,
# writing per-epoch metrics to out/lecture.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build run
scripts/build.sh run
mkdir -p out
build/bin/gradc train examples/lecture.grad --epochs=20 --seed=1 --lr=0.005 --metrics=out/lecture.csv
