#!/usr/bin/env bash
# One short GPU check for a lent GPU machine: install, the GPU tests, the demo on the GPU.
# Usage (repository root): bash benchmarks/gpu_check.sh    (writes to $OUT when set)
set -euo pipefail
OUT=${OUT:-/tmp/reedit-gpu-check}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
make install >"$OUT/install.log" 2>&1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled
.venv/bin/python -m pytest -m gpu -q 2>&1 | tee "$OUT/pytest_gpu.txt"
.venv/bin/python -m reedit +experiment=demo 'gpus=[0]' model.dtype=bfloat16 executor.dtype=bfloat16 \
  hydra.run.dir="$OUT/demo_run" 2>&1 | tail -5 | tee "$OUT/demo.txt"
