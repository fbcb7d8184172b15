#!/usr/bin/env bash
# Compile cost of a model's training step in instructions executed
# (valgrind's callgrind): the same count on every run, where the time of a
# compile moves by 10-30% on a shared VM.  First the whole of it (`gradc
# show --stage=asm`), then the machine code alone, by LLVM's `llc`.  Use it to compare
# two versions of the lowering; `gradc train --time-report` gives the times.
#
# The step is taken after gradc's LLVM passes (`gradc show --stage=llvm-opt`)
# and compiled by llc -O3 -disable-lsr -disable-post-ra, as the JIT's code
# generator does in process (codegen/Pipeline.cpp, setCodegenDefaults).
# With --per-function, also the share of each function: the whole module's
# count minus the count with that function's body removed (llvm-extract
# --delete), one more callgrind run per function.  With --per-part, the
# count of each of the two parts the JIT compiles the step in, on two
# threads (codegen/Partition.cpp): the larger one is the JIT's critical
# path.  The cut is the JIT's own (GRADC_PARTITION_REPORT=1 during a
# one-epoch `gradc train` on Fashion-MNIST, so the model must take its
# images); each part's functions are extracted from the optimised IR.
#
# usage: bench/compile_cost.sh [MODEL.grad] [--per-function] [--per-part]
#        (default examples/fashion_mlp.grad; installs valgrind if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
model=examples/fashion_mlp.grad
perFunction=0
perPart=0
for arg in "$@"; do
  case "$arg" in
  --per-function) perFunction=1 ;;
  --per-part) perPart=1 ;;
  *) model=$arg ;;
  esac
done
if ! command -v valgrind >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind
fi
[ -x build/bin/gradc ] || scripts/build.sh >/dev/null
llvm=/usr/lib/llvm-19/bin
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

count() { # instructions llc executes on $1
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$llvm/llc" -O3 -disable-lsr -disable-post-ra -filetype=obj "$1" \
    -o /dev/null 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

# Everything the JIT does for the step, on one thread: lowering, gradc's
# LLVM passes and llc's work (and printing the assembly, a few percent).
# For the host's CPU by name: under valgrind the host looks like another
# one (a Zen 3 like a Haswell), for which LLVM runs other passes.
cpu=$("$llvm/llc" --version | sed -n 's/^ *Host CPU: *//p')
all=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null build/bin/gradc show "$model" \
  --stage=asm --cpu="${cpu:-host}" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
printf '%s: lowering, passes and machine code of the step %d M instructions\n' "$model" \
  $((all / 1000000))
build/bin/gradc show "$model" --stage=llvm-opt >"$out/step.ll"
echo 'target triple = "x86_64-pc-linux-gnu"' >"$out/empty.ll"
base=$(count "$out/empty.ll")
whole=$(count "$out/step.ll")
lines=$(wc -l <"$out/step.ll")
printf '%s: %d lines of optimised IR, llc %d M instructions (%d M without its start-up)\n' \
  "$model" "$lines" $((whole / 1000000)) $(((whole - base) / 1000000))
if [ "$perPart" = 1 ]; then
  GRADC_CACHE_DIR=off GRADC_PARTITION_REPORT=1 build/bin/gradc train "$model" \
    --data=fashion-mnist --epochs=1 2>"$out/partition" >/dev/null
  for part in 0 1; do
    functions=$(sed -n "s/^gradc partition: kernel=[^ ]*_train_step part=$part cost=[0-9]* function=//p" \
      "$out/partition")
    [ -n "$functions" ] || continue
    # shellcheck disable=SC2046 # one --func per function
    "$llvm/llvm-extract" $(printf -- '--func=%s ' $functions) "$out/step.ll" -S -o "$out/part.ll"
    printf '  part %d: %d M instructions of llc (%d functions)\n' "$part" \
      $((($(count "$out/part.ll") - base) / 1000000)) "$(echo "$functions" | wc -l)"
  done
fi
[ "$perFunction" = 1 ] || exit 0
sed -n 's/^define [^@]*@\([^(]*\)(.*/\1/p' "$out/step.ll" | while read -r fn; do
  "$llvm/llvm-extract" --delete --func="$fn" "$out/step.ll" -S -o "$out/without.ll"
  size=$(awk -v f="@$fn(" 'index($0, "define") == 1 && index($0, f) {on = 1} on {n++} on && /^}/ {on = 0} END {print n}' "$out/step.ll")
  printf '  %6d M  %5d lines  %s\n' $(((whole - $(count "$out/without.ll")) / 1000000)) "$size" "$fn"
done | sort -rn
