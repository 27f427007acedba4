#!/usr/bin/env bash
# The environment of OmniGen2 (reedit model=omnigen2) as a plain venv: the same pins as
# omnigen2.yml (see its comments for why each). Usage: bash reedit/runtime/envs/omnigen2.venv.sh [ENV_DIR]
# then: python -m reedit model=omnigen2 model.runtime.conda=null \
#   model.runtime.python=ENV_DIR/bin/python model.runtime.repo_path=/path/to/OmniGen2
set -euo pipefail
ENV_DIR="${1:-$HOME/.venvs/omnigen2}"

CLONE="${OMNIGEN2_CLONE:-$HOME/src/OmniGen2}"
[ -d "$CLONE" ] || git clone https://github.com/VectorSpaceLab/OmniGen2 "$CLONE"  # 0f72fa9 was read
python3.11 -m venv "$ENV_DIR"
"$ENV_DIR/bin/python" -m pip install --upgrade pip
"$ENV_DIR/bin/python" -m pip install --extra-index-url https://download.pytorch.org/whl/cu124 \
  torch==2.6.0 torchvision==0.21.0
"$ENV_DIR/bin/python" -m pip install \
  transformers==4.51.3 diffusers==0.34.0 \
  accelerate timm einops opencv-python-headless scipy pillow tqdm
# optional (README, CUDA 12.4): "$ENV_DIR/bin/python" -m pip install flash-attn==2.7.4.post1 --no-build-isolation
"$ENV_DIR/bin/python" -c "import transformers; assert transformers.__version__ == '4.51.3'"
echo "model=omnigen2 model.runtime.conda=null model.runtime.python=$ENV_DIR/bin/python model.runtime.repo_path=$CLONE"
