#!/usr/bin/env bash
# The environment of HiDream-E1.1 (reedit model=hidream_e1) as a plain venv: the same pins as
# hidream_e1.yml (see its comments for why each). Usage: bash reedit/runtime/envs/hidream_e1.venv.sh [ENV_DIR]
# then: python -m reedit model=hidream_e1 model.runtime.conda=null \
#   model.runtime.python=ENV_DIR/bin/python model.runtime.repo_path=/path/to/HiDream-E1 \
#   model.edit_transformer_path=/path/to/HiDream-E1-1/transformer
# Weights: Llama-3.1-8B-Instruct is gated: accept its licence, hf auth login,
# hf download meta-llama/Llama-3.1-8B-Instruct; hf download HiDream-ai/HiDream-I1-Full;
# hf download HiDream-ai/HiDream-E1-1 --include 'transformer/*' --local-dir /path/to/HiDream-E1-1
set -euo pipefail
ENV_DIR="${1:-$HOME/.venvs/hidream_e1}"

CLONE="${HIDREAM_E1_CLONE:-$HOME/src/HiDream-E1}"
[ -d "$CLONE" ] || git clone https://github.com/HiDream-ai/HiDream-E1 "$CLONE"  # f6f0631 was tested
python3.11 -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install --upgrade pip
"$ENV_DIR/bin/python" -m pip install \
  torch==2.14.1 torchvision==0.29.1 \
  transformers==5.24.0 diffusers==0.42.1 tokenizers==0.23.3 huggingface_hub==2.4.0 \
  accelerate==1.15.0 safetensors==0.8.0 \
  sentencepiece protobuf numpy pillow
"$ENV_DIR/bin/python" -c "import transformers, diffusers; assert transformers.__version__ == '5.24.0'"
PYTHONPATH="$CLONE" "$ENV_DIR/bin/python" -c \
  "import pipeline_hidream_image_editing"  # the clone imports from its root
echo "model.runtime.conda=null model.runtime.python=$ENV_DIR/bin/python model.runtime.repo_path=$CLONE"
