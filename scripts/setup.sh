#!/usr/bin/env bash
# Install the Debian 12 packages sslrun builds and runs with (needs root or sudo).
# --test: also what the test suite needs beyond the build, so that no test skips in CI: PyTorch and
# torchvision (export checks against torchvision models), h5py (checkpoints read without sslrun),
# clang with libFuzzer and its OpenMP runtime (the fuzz harnesses), Slurm (slurmctld + slurmd on
# localhost: the job-script and requeue tests, label slurm).
set -euo pipefail
PKGS=(build-essential cmake pkg-config libdnnl-dev libopenblas-dev libopenmpi-dev openmpi-bin
      libhdf5-openmpi-dev hdf5-tools libyaml-dev zlib1g-dev libpng-dev libjpeg-dev libturbojpeg0-dev
      dataset-fashion-mnist mate-backgrounds)
if [ "${1:-}" = --test ]; then
  PKGS+=(python3-torch python3-torchvision python3-h5py python3-pil clang libclang-rt-14-dev libomp-dev
         slurm-wlm)
fi
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
