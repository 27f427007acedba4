#!/usr/bin/env bash
# The environment of Ovis-U1-3B (reedit model=ovis_u1) as a plain venv: the same pins as
# ovis_u1.yml (see its comments for why each). Needs python3.10 and a CUDA machine (flash-attn).
# No clone is needed: the model code comes with the weights (Hugging Face remote code).
# Usage: bash reedit/runtime/envs/ovis_u1.venv.sh [ENV_DIR]
# then: python -m reedit model=ovis_u1 gpus=[0] model.runtime.conda=null \
#   model.runtime.python=ENV_DIR/bin/python
set -euo pipefail
ENV_DIR="${1:-$HOME/.venvs/ovis_u1}"

python3.10 -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install --upgrade pip
"$ENV_DIR/bin/python" -m pip install torch==2.4.0 torchvision==0.19.0
"$ENV_DIR/bin/python" -m pip install \
  transformers==4.51.3 tokenizers==0.21.1 diffusers==0.31.0 "huggingface-hub<1.0" \
  numpy==1.24.3 timm==1.0.11 einops==0.6.1 einops-exts==0.0.4 accelerate==1.1.0 \
  pillow==10.3.0 safetensors packaging ninja
# required although requirements.txt does not list it: the remote modeling_aimv2.py imports it
"$ENV_DIR/bin/python" -m pip install flash-attn==2.7.4.post1 --no-build-isolation
"$ENV_DIR/bin/python" -c "import transformers, flash_attn; assert transformers.__version__ == '4.51.3'"
echo "model=ovis_u1 model.runtime.conda=null model.runtime.python=$ENV_DIR/bin/python"
