#!/usr/bin/env bash
# The Step1X-Edit environment (v1p1 and v1p2-preview) as a plain venv: the same packages as
# reedit/runtime/envs/step1x_edit.yml. Usage: bash step1x_edit.venv.sh [VENV_DIR] [CLONE_DIR]
# Then run reedit with
#   model.runtime.conda=null model.runtime.python=VENV_DIR/bin/python \
#   model.runtime.repo_path=CLONE_DIR/src
set -euo pipefail
VENV=${1:-step1x_edit-venv}
CLONE=${2:-step1x-diffusers}

# the fork that holds Step1XEditPipeline and Step1XEditPipelineV1P2 (diffusers 0.36.0.dev0)
if [ ! -d "$CLONE" ]; then
  git clone -b dev/MergeV1-2 https://github.com/Peyton-Chen/diffusers "$CLONE"
  git -C "$CLONE" checkout f0b0d815162c88a4d5f6feadfbc4a9e15a076387  # the commit reedit read
fi

python3.11 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install \
  "torch>=2.3.1" "torchvision>=0.18.1" \
  "transformers==4.55.0" "huggingface-hub>=0.34.0,<1.0" \
  "accelerate==0.34.2" "safetensors==0.4.5" "pillow==11.1.0" \
  "qwen_vl_utils==0.0.10" megfile \
  numpy "regex!=2019.12.17" requests filelock importlib_metadata
"$VENV/bin/pip" install --no-deps -e "$CLONE"

"$VENV/bin/python" -c "import diffusers, transformers; from diffusers import Step1XEditPipeline, Step1XEditPipelineV1P2; print('diffusers', diffusers.__version__, 'transformers', transformers.__version__)"
