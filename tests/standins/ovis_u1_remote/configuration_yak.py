"""STAND-IN for ``configuration_yak.py`` of the Hugging Face remote code of AIDC-AI/Ovis-U1-3B.

Not the real file (see ``configuration_aimv2.py`` of this folder for why a stand-in exists).

Mirrors the real ``YakConfig.__init__`` signature (names and defaults, read from the remote code):
``in_channels=16, out_channels=16, vec_in_dim=1536, context_in_dim=3072, hidden_size=1536,
mlp_ratio=4, num_heads=12, depth=6, depth_single_blocks=12, axes_dim=[16, 56, 56], theta=10_000,
qkv_bias=True, guidance_embed=False, checkpoint=False, txt_type="refiner", timestep_shift=False,
base_shift=0.5, max_shift=1.15, vae_config=None``; ``model_type = "yak"``. The stand-in's
``modeling_yak.py`` uses only some of them (its MMDiT is a tiny joint-attention transformer).
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig


class YakConfig(PretrainedConfig):
    model_type = "yak"

    def __init__(
        self,
        in_channels: int = 16,
        out_channels: int = 16,
        vec_in_dim: int = 1536,
        context_in_dim: int = 3072,
        hidden_size: int = 1536,
        mlp_ratio: int = 4,
        num_heads: int = 12,
        depth: int = 6,
        depth_single_blocks: int = 12,
        axes_dim: list = [16, 56, 56],  # noqa: B006 - the real signature's default
        theta: int = 10_000,
        qkv_bias: bool = True,
        guidance_embed: bool = False,
        checkpoint: bool = False,
        txt_type: str = "refiner",
        timestep_shift: bool = False,
        base_shift: float = 0.5,
        max_shift: float = 1.15,
        vae_config: PretrainedConfig | dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.vec_in_dim = vec_in_dim
        self.context_in_dim = context_in_dim
        self.hidden_size = hidden_size
        self.mlp_ratio = mlp_ratio
        self.num_heads = num_heads
        self.depth = depth
        self.depth_single_blocks = depth_single_blocks
        self.axes_dim = list(axes_dim)
        self.theta = theta
        self.qkv_bias = qkv_bias
        self.guidance_embed = guidance_embed
        self.checkpoint = checkpoint
        self.txt_type = txt_type
        self.timestep_shift = timestep_shift
        self.base_shift = base_shift
        self.max_shift = max_shift
        self.vae_config = vae_config
