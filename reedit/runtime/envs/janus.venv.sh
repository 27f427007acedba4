#!/usr/bin/env bash
# The environment of Janus-4o-7B (reedit model=janus) as a plain venv: the same pins as janus.yml
# (see its comments for why each). Usage: bash reedit/runtime/envs/janus.venv.sh [ENV_DIR]
# then: python -m reedit model=janus model.runtime.conda=null \
#   model.runtime.python=ENV_DIR/bin/python model.runtime.repo_path=/path/to/Janus
set -euo pipefail
ENV_DIR="${1:-$HOME/.venvs/janus}"

CLONE="${JANUS_CLONE:-$HOME/src/Janus}"
[ -d "$CLONE" ] || git clone https://github.com/deepseek-ai/Janus "$CLONE"  # 1daa72f was tested
python3.11 -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install --upgrade pip
"$ENV_DIR/bin/python" -m pip install \
  torch==2.14.1 torchvision==0.29.1 \
  transformers==4.55.0 tokenizers==0.21.4 huggingface_hub==0.36.2 accelerate==1.15.0 \
  timm==1.0.31 attrdict==2.0.1 einops==0.8.2 sentencepiece==0.2.3 \
  safetensors numpy pillow
"$ENV_DIR/bin/python" -c "import transformers; assert transformers.__version__ == '4.55.0'"
echo "model.runtime.conda=null model.runtime.python=$ENV_DIR/bin/python model.runtime.repo_path=$CLONE"
