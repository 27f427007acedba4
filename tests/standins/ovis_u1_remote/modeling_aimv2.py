"""STAND-IN for ``modeling_aimv2.py`` of the Hugging Face remote code of AIDC-AI/Ovis-U1-3B.

Not the real file (see ``configuration_aimv2.py`` of this folder for why a stand-in exists). The
real AIMv2 tower attends with ``flash_attn.flash_attn_varlen_func`` and flash-attn's rotary kernel
(CUDA only, no fallback); this stand-in attends with ``torch.nn.functional.
scaled_dot_product_attention``, one image (one ``grid_thws`` row) at a time, which is what the
variable-length kernel computes for a batch of images.

Mirrors: ``AIMv2Model`` (a ``PreTrainedModel`` registered for ``AIMv2Config``) called as the real
``Aimv2VisualTokenizer.encode`` in ``modeling_ovis_u1.py`` calls it,
``backbone(pixel_values, grid_thws, output_hidden_states=True, return_dict=True)``, returning an
output whose ``hidden_states[-1]`` holds one feature row per input patch. ``pixel_values`` are the
flattened patches of ``Aimv2VisualTokenizer.preprocess_image`` (``[#patches, C * T * P * P]``).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithNoAttention

from .configuration_aimv2 import AIMv2Config


class AIMv2Block(nn.Module):
    """Pre-norm attention and MLP (stand-in: RMSNorm, SDPA, SiLU MLP)."""

    def __init__(self, config: AIMv2Config) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.norm_1 = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.norm_2 = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.fc_in = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.fc_out = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, tokens: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        length, width = tokens.shape
        q, k, v = self.qkv(self.norm_1(tokens)).view(length, 3, self.heads, -1).unbind(1)
        parts = []
        for q_i, k_i, v_i in zip(q.split(lengths), k.split(lengths), v.split(lengths)):
            attended = nn.functional.scaled_dot_product_attention(
                q_i.transpose(0, 1), k_i.transpose(0, 1), v_i.transpose(0, 1)
            )
            parts.append(attended.transpose(0, 1).reshape(-1, width))
        tokens = tokens + self.proj(torch.cat(parts))
        return tokens + self.fc_out(nn.functional.silu(self.fc_in(self.norm_2(tokens))))


class AIMv2PretrainedModel(PreTrainedModel):
    config_class = AIMv2Config
    base_model_prefix = "aimv2"
    main_input_name = "pixel_values"
    _no_split_modules = ["AIMv2Block"]
    _supports_sdpa = True


class AIMv2Model(AIMv2PretrainedModel):
    """Stand-in vision tower: patch embedding, a position term from each patch's grid cell, and
    ``num_hidden_layers`` blocks; every block's output is a hidden state."""

    def __init__(self, config: AIMv2Config) -> None:
        super().__init__(config)
        patch = config.num_channels * config.temporal_patch_size * config.patch_size**2
        self.patch_embed = nn.Linear(patch, config.hidden_size)
        self.position = nn.Linear(2, config.hidden_size)
        self.blocks = nn.ModuleList(AIMv2Block(config) for _ in range(config.num_hidden_layers))

    def _positions(self, grid_thws: torch.Tensor) -> torch.Tensor:
        """(row, column) of each patch in [0, 1], in the patch order of ``preprocess_image``
        (only the counts matter to the stand-in: rows first, then columns)."""
        cells = []
        for t, h, w in grid_thws.tolist():
            rows = torch.arange(h).repeat_interleave(w) / max(h - 1, 1)
            cols = torch.arange(w).repeat(h) / max(w - 1, 1)
            cells.append(torch.stack([rows, cols], dim=-1).repeat(t, 1))
        return torch.cat(cells).to(self.position.weight)

    def forward(
        self,
        pixel_values: torch.Tensor,
        grid_thws: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithNoAttention | tuple:
        lengths = [int(t * h * w) for t, h, w in grid_thws.tolist()]
        tokens = self.patch_embed(pixel_values.to(self.patch_embed.weight))
        tokens = tokens + self.position(self._positions(grid_thws))
        states = []
        for block in self.blocks:
            tokens = block(tokens, lengths)
            states.append(tokens)
        hidden_states = tuple(states) if output_hidden_states else None
        if not return_dict:
            return (tokens, hidden_states)
        return BaseModelOutputWithNoAttention(last_hidden_state=tokens, hidden_states=hidden_states)
