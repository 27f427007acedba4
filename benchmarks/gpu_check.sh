#!/usr/bin/env bash
# One prepared GPU check for a lent GPU machine (no network there), writing $OUT/gpu_check.json
# (benchmarks/gpu_check.py: pytest -m gpu, a 1-GPU demo, GPU utilisation during an edit stage).
#
#   here, once:  bash benchmarks/gpu_check.sh --wheels   # the packages the device image lacks,
#                                                        # as cp312 wheels in .whl/ (git-ignored)
#   there:       bash benchmarks/gpu_check.sh            # with .whl carried; or, on a machine
#                                                        # with a network, after `make install`
#
# The device image has torch, transformers, accelerate, pillow, numpy, matplotlib, jinja2, tqdm,
# huggingface_hub, psutil and pytest; the wheels add what reedit needs beyond them. The runs use
# logger=none (no wandb). The [vllm] extra cannot travel (its wheel alone is far over the 64 MiB a
# device call may carry): the real-vLLM test runs where vllm is installed, or where this script
# can install it (a machine with a network).
set -uo pipefail
cd "$(dirname "$0")/.."
# pinned as `make install` resolves them here (omegaconf 2.4 / antlr 4.11+ break Hydra 1.3)
WHEELS=(diffusers==0.42.1 hydra-core==1.3.8 omegaconf==2.3.1 ijson==3.6.0 isal==1.9.1)
WHEELS+=(importlib-metadata==10.2.0)
if [ "${1:-}" = "--wheels" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >>.git/info/exclude
  platforms=()
  for n in 28 27 24 17; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}" \
    || exit 1
  # antlr4's 4.9.3 (what omegaconf 2.3 needs) is a source archive of pure Python: built here
  exec python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3
fi
OUT=${OUT:-/tmp/reedit-gpu-check}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >"$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  PY=python3
else  # a machine with a network: reedit's own install, and the [vllm] extra for the real engine
  [ -x .venv/bin/python ] || make install >"$OUT/install.log" 2>&1 || {
    tail -20 "$OUT/install.log"
    exit 1
  }
  PY=.venv/bin/python
  "$PY" -c 'import vllm' 2>/dev/null || "$PY" -m pip install -q -e '.[vllm]' \
    >"$OUT/install_vllm.log" 2>&1 || echo "the [vllm] extra did not install: $OUT/install_vllm.log"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled PYTHONUNBUFFERED=1
"$PY" benchmarks/gpu_check.py "$OUT"
