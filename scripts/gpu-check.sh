#!/usr/bin/env bash
# The GPU check, in one short script for a machine with an NVIDIA GPU (CUDA 12, cuDNN 9): installs
# what it needs, then runs the batch stage's embedders on IMDB sentences and Fashion-MNIST images
# with the CUDA execution provider and on CPU, printing items/s for each and the largest vector
# difference between them (scripts/gpu-check.ts). Put the figures in docs/benchmarks.md.
#   bash scripts/gpu-check.sh [--texts 4000] [--images 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
[[ -d node_modules ]] || npm ci
# onnxruntime-node's CUDA provider is not in the npm package: its install script fetches it.
if [[ ! -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so ]]; then
  (cd node_modules/onnxruntime-node && ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install.js)
fi
# Fashion-MNIST from Debian when apt can reach it (else the check generates images).
if [[ $(id -u) -eq 0 ]] && ! dpkg-query -W dataset-fashion-mnist >/dev/null 2>&1; then
  (apt-get -qq update && apt-get -qq install -y --no-install-recommends dataset-fashion-mnist) >/dev/null 2>&1 || true
fi
node --import tsx scripts/gpu-check.ts "$@"
