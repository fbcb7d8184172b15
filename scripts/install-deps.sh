#!/usr/bin/env bash
# Installs, from Debian's packages, whatever gradc needs that this machine
# lacks.  Usage: scripts/install-deps.sh [build|test|run]...
#   build  compilers, CMake, LLVM 19, fmt, Boost.Program_options, GoogleTest
#   test   build + lit/FileCheck (llvm-19-tools)
#   run    build + the data sets the main job trains on
set -euo pipefail

packages=(build-essential cmake ninja-build ccache pkg-config
          llvm-19-dev libzstd-dev zlib1g-dev libdeflate-dev libfmt-dev libboost-program-options-dev
          libgtest-dev python3)
for what in "$@"; do
  case "$what" in
    build) ;;
    test) packages+=(llvm-19-tools graphviz python3-torch python3-numpy file) ;;
    run) packages+=(dataset-fashion-mnist) ;;
    *) echo "install-deps.sh: unknown group '$what' (expected build, test or run)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps.sh: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
