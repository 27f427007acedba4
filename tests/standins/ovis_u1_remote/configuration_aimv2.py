"""STAND-IN for ``configuration_aimv2.py`` of the Hugging Face remote code of AIDC-AI/Ovis-U1-3B.

Not the real file. The real remote code (six files shipped with the checkpoint and loaded with
``trust_remote_code=True``) cannot run in reedit's tests: its vision tower (``modeling_aimv2.py``)
imports the CUDA-only ``flash_attn`` at module level, and the files are not in any repository that
can be fetched here. This folder stands in for them so that reedit's Ovis-U1 adapter is tested
through its real loading path (``AutoModelForCausalLM.from_pretrained(..., trust_remote_code=True)``
on a folder whose ``config.json`` has an ``auto_map``), with tiny but real computations.

Mirrors: the config class name ``AIMv2Config`` and its ``model_type`` ``"aimv2"`` (the name that
``configuration_ovis_u1.py`` registers with ``AutoConfig``). The fields are a small subset of the
real ones, enough for the stand-in backbone of ``modeling_aimv2.py``.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig


class AIMv2Config(PretrainedConfig):
    """Stand-in of the AIMv2 vision tower's config (a tiny native-resolution ViT here)."""

    model_type = "aimv2"

    def __init__(
        self,
        hidden_size: int = 1024,
        intermediate_size: int = 2816,
        num_hidden_layers: int = 24,
        num_attention_heads: int = 8,
        num_channels: int = 3,
        patch_size: int = 14,
        temporal_patch_size: int = 1,
        rms_norm_eps: float = 1e-5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_channels = num_channels
        self.patch_size = patch_size
        self.temporal_patch_size = temporal_patch_size
        self.rms_norm_eps = rms_norm_eps
