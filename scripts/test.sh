#!/usr/bin/env bash
# Build and run the whole test suite. SSL_SANITIZE=1 builds with ASan + UBSan into build-asan/.
# The plain pass also fuzzes each input parser for a few seconds (scripts/fuzz.sh); the sanitized
# pass replays the fuzz corpus (ctest -L fuzz). Every test runs here: the list of skipped tests is printed at the end, and a skip is a failure
# unless the test needs what this machine cannot have (label cuda: a GPU; label slurm: a cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
# Where the CUDA toolkit is installed the CUDA backend must build (ON: a configure that cannot is an
# error, not a quiet CPU-only build whose GPU tests then skip as "not built")
cuda=AUTO
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then cuda=ON; fi
if [ "${SSL_SANITIZE:-0}" = 1 ]; then
  dir=build-asan
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DSSL_SANITIZE=ON -DSSL_FUZZ=ON \
    -DSSL_WITH_CUDA=$cuda >/dev/null
else
  dir=build
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSSL_WITH_CUDA=$cuda >/dev/null
fi
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure -j"$(nproc)" | tee ctest.log
skipped=$(sed -nE 's/^[[:space:]]*[0-9]+ - ([A-Za-z0-9_]+) \(Skipped\)$/\1/p' ctest.log)
# label slurm may skip on a developer's machine (no root, a Slurm of its own), never in CI, which
# installs slurm-wlm and runs as root
labels='^(cuda|slurm)$'
if [ "${CI:-}" = true ]; then labels='^cuda$'; fi
allowed=$(ctest -N -L "$labels" | sed -nE 's/^[[:space:]]*Test[[:space:]]+#[0-9]+: ([A-Za-z0-9_]+)$/\1/p')
echo "skipped tests: ${skipped:-none}"
bad=0
for t in $skipped; do
  if ! grep -qx "$t" <<<"$allowed"; then echo "FAIL: $t skipped, but it must run here (only label cuda may skip, and label slurm outside CI)"; bad=1; fi
done
# a short libFuzzer run of every harness from the committed corpus (clang build in build-fuzz/)
if [ "${SSL_SANITIZE:-0}" != 1 ]; then
  cd .. && ./scripts/fuzz.sh "${SSL_FUZZ_SECONDS:-5}" || bad=1
fi
exit $bad
