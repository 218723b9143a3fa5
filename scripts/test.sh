#!/usr/bin/env bash
# Build and run the whole test suite. SSL_SANITIZE=1 builds with ASan + UBSan into build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ "${SSL_SANITIZE:-0}" = 1 ]; then
  dir=build-asan
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DSSL_SANITIZE=ON >/dev/null
else
  dir=build
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$dir" -j"$(nproc)"
cd "$dir" && ctest --output-on-failure -j"$(nproc)"
