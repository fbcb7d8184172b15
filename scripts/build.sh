#!/usr/bin/env bash
# Configures and builds gradc into build/ (the CLI is build/bin/gradc).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build "$@"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
