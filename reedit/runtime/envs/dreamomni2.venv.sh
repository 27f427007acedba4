#!/usr/bin/env bash
# The environment of DreamOmni2 (reedit model=dreamomni2) as a plain venv: the same pins as
# dreamomni2.yml (see its comments for why each). Usage: bash reedit/runtime/envs/dreamomni2.venv.sh [ENV_DIR]
# then: python -m reedit model=dreamomni2 model.runtime.conda=null \
#   model.runtime.python=ENV_DIR/bin/python model.runtime.repo_path=/path/to/DreamOmni2 \
#   model.lora_path=/path/to/models/edit_lora model.vlm_path=/path/to/models/vlm-model
# Weights: hf download xiabs/DreamOmni2 --local-dir /path/to/models (vlm-model/, edit_lora/);
# FLUX.1-Kontext-dev is gated: accept its licence, hf auth login, hf download black-forest-labs/FLUX.1-Kontext-dev
set -euo pipefail
ENV_DIR="${1:-$HOME/.venvs/dreamomni2}"

CLONE="${DREAMOMNI2_CLONE:-$HOME/src/DreamOmni2}"
[ -d "$CLONE" ] || git clone https://github.com/dvlab-research/DreamOmni2 "$CLONE"  # 82f9a63 was tested
python3.11 -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install --upgrade pip
"$ENV_DIR/bin/python" -m pip install \
  torch==2.14.1 torchvision==0.29.1 \
  transformers==5.24.0 diffusers==0.42.1 tokenizers==0.23.3 huggingface_hub==2.4.0 \
  accelerate==1.15.0 peft==0.21.2 safetensors==0.8.0 \
  sentencepiece protobuf requests packaging numpy pillow
"$ENV_DIR/bin/python" -c "import peft, transformers; assert transformers.__version__ == '5.24.0'"
PYTHONPATH="$CLONE" "$ENV_DIR/bin/python" -c \
  "import dreamomni2.pipeline_dreamomni2, utils.vprocess"  # the clone imports from its root
echo "model.runtime.conda=null model.runtime.python=$ENV_DIR/bin/python model.runtime.repo_path=$CLONE"
