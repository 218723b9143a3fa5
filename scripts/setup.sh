#!/usr/bin/env bash
# Install the Debian 12 packages sslrun builds and runs with (needs root or sudo).
set -euo pipefail
PKGS=(build-essential cmake pkg-config libdnnl-dev libopenblas-dev libopenmpi-dev openmpi-bin
      libhdf5-openmpi-dev hdf5-tools libyaml-dev zlib1g-dev libpng-dev libjpeg-dev dataset-fashion-mnist)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
