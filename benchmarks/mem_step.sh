#!/usr/bin/env bash
# Peak memory of one training step, sslrun against PyTorch, each measured alone (/usr/bin/time -v):
# ResNet-50 at 224 px, batch 16, SGD momentum, two steps, in fp32 and in bf16 mixed precision
# (sslrun: model.precision bf16 with bf16 saved activations, and with fp32 ones; PyTorch 1.13:
# torch.autocast(bfloat16) + channels-last). Prints the CPU, then one line per run: peak RSS and
# sslrun's activation arena.
#   bash benchmarks/mem_step.sh [build dir] [extra bench_step / torch_step.py args, e.g. --model vit_base --patch 16 --optim adamw]
set -euo pipefail
BUILD=${1:-build}
shift || true
ARGS=(--model resnet50 --img 224 --batch 16 "$@")
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /CPU: /'
rss() { /usr/bin/time -v "$@" 2>&1 >/tmp/mem_step.$$ | sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p'; }
ours() {
  local kb arena
  kb=$(rss "$BUILD/benchmarks/bench_step" "${ARGS[@]}" --iters 2 "$@")
  arena=$(sed -nE 's/.*activation arena peak ([0-9.]+) MB.*/\1/p' /tmp/mem_step.$$)
  printf '  sslrun %-44s peak RSS %6.2f GB  (activation arena %.2f GB)\n' "$*" "$(awk -v k="$kb" 'BEGIN { print k / 1e6 }')" \
    "$(awk -v a="$arena" 'BEGIN { print a / 1000 }')"
}
theirs() {
  local kb
  kb=$(rss /usr/bin/python3 "$(dirname "$0")/torch_step.py" --torch-only "${ARGS[@]}" --iters 2 --warmup 0 "$@")
  printf '  PyTorch %-43s peak RSS %6.2f GB\n' "$*" "$(awk -v k="$kb" 'BEGIN { print k / 1e6 }')"
}
echo "one step of ${ARGS[*]}:"
ours --precision fp32
theirs
ours --precision bf16
ours --precision bf16 --saved-activations fp32
theirs --bf16
rm -f /tmp/mem_step.$$
