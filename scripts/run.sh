#!/usr/bin/env bash
# The main job: installs what is missing, builds, JIT-trains the lecture's
# network (examples/lecture.grad) on the synthetic regression set, then the
# Fashion-MNIST classifier (examples/fashion_mlp.grad, 15 epochs); metrics go
# to out/lecture.csv and out/fashion.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build run
scripts/build.sh run
mkdir -p out
build/bin/gradc train examples/lecture.grad --epochs=20 --seed=1 --lr=0.005 --metrics=out/lecture.csv
build/bin/gradc train examples/fashion_mlp.grad --data=fashion-mnist --metrics=out/fashion.csv \
  --save=out/fashion.safetensors --time-report
build/bin/gradc eval examples/fashion_mlp.grad --weights=out/fashion.safetensors --data=fashion-mnist
# Ahead of time: the lecture network as an object, a C header and a trainer
# without LLVM, which gives the same weights as gradc train.
build/bin/gradc build examples/lecture.grad -o out/aot
out/aot/lecture-train --epochs=20 --seed=1 --lr=0.005 --save=out/aot/lecture.safetensors
