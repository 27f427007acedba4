"""A tiny random-weight OmniGen2 pipeline from the repository's own classes (run in its env).

``python omnigen2.py OUT``: ``OmniGen2Pipeline(transformer, vae, scheduler, mllm, processor)``
saved with ``OmniGen2Pipeline.save_pretrained``, the layout ``OmniGen2Pipeline.from_pretrained``
plus ``OmniGen2Transformer2DModel.from_pretrained(OUT, subfolder="transformer")`` load back
(inference.py's loading path). The text encoder and its processor are reedit's own tiny
Qwen2.5-VL (``reedit.testing.vlms``); the transformer, the scheduler and the pipeline are the
repository's; the VAE is diffusers' ``AutoencoderKL`` with FLUX-style scaling and shift.
Deterministic: each component is built right after ``common.seeded()``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent

HIDDEN = 32  # the tiny Qwen2.5-VL's hidden size: the transformer's text_feat_dim
LATENT_CHANNELS = 4


def repository_first() -> None:
    """This file is called ``omnigen2.py``: drop its folder from ``sys.path`` so that
    ``import omnigen2`` finds the repository's package (on ``PYTHONPATH``), not this script."""
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def without_fused_kernels() -> None:
    """On a CPU-only host with triton installed the model modules crash at import (a CUDA
    query at module level); their CPU fallbacks are chosen by these two flags."""
    import torch

    if not torch.cuda.is_available():
        from omnigen2.utils import import_utils

        import_utils._triton_available = False
        import_utils._flash_attn_available = False


def perturb(module) -> None:
    """Small seeded noise on every weight: the repository zero-initialises its modulation and
    output layers, which would make a random model ignore its inputs."""
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.02)


def main() -> None:
    out = common.out_dir()
    repository_first()
    without_fused_kernels()
    from diffusers import AutoencoderKL
    from omnigen2.models.transformers.transformer_omnigen2 import OmniGen2Transformer2DModel
    from omnigen2.pipelines.omnigen2.pipeline_omnigen2 import OmniGen2Pipeline
    from omnigen2.schedulers.scheduling_flow_match_euler_discrete import (
        FlowMatchEulerDiscreteScheduler,
    )
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    from reedit.testing.vlms import build_vlm

    with tempfile.TemporaryDirectory() as tmp:
        vlm = build_vlm("qwen25_vl", Path(tmp) / "mllm", seed=0)
        common.seeded()
        mllm = Qwen2_5_VLForConditionalGeneration.from_pretrained(vlm).eval()
        processor = Qwen2_5_VLProcessor.from_pretrained(vlm)

    common.seeded()
    transformer = OmniGen2Transformer2DModel(
        patch_size=2,
        in_channels=LATENT_CHANNELS,
        hidden_size=32,
        num_layers=1,
        num_refiner_layers=1,
        num_attention_heads=2,
        num_kv_heads=2,
        multiple_of=16,
        axes_dim_rope=(8, 4, 4),  # head dim 16
        axes_lens=(1024, 1664, 1664),
        text_feat_dim=HIDDEN,
        timestep_scale=1000.0,
    )
    perturb(transformer)

    common.seeded()
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,  # 8x down: the pipeline's multiple of 16
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(4, 4, 8, 8),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=2,
        mid_block_add_attention=False,
        scaling_factor=0.3611,
        shift_factor=0.1159,
    )

    common.seeded()
    scheduler = FlowMatchEulerDiscreteScheduler()  # the repository's (dynamic time shift)

    for module in (transformer, vae, mllm):
        module.eval()
    pipeline = OmniGen2Pipeline(
        transformer=transformer, vae=vae, scheduler=scheduler, mllm=mllm, processor=processor
    )
    pipeline.save_pretrained(out)


if __name__ == "__main__":
    main()
