#!/usr/bin/env bash
# Fresh Debian 12 to evaluated encoder: install packages, build, convert Fashion-MNIST to HDF5
# shards, pretrain SimCLR with configs/fmnist_simclr.yaml, then kNN + linear-probe evaluation.
# Extra arguments are config overrides, e.g. `scripts/quickstart.sh schedule.epochs=20`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target sslrun
[ -f data/fmnist/test-00000.h5 ] || build/launch/sslrun prep fashion-mnist --out data/fmnist
build/launch/sslrun configs/fmnist_simclr.yaml "$@"
build/launch/sslrun eval configs/fmnist_simclr.yaml "$@"
