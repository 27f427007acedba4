"""STAND-IN for ``modeling_yak.py`` of the Hugging Face remote code of AIDC-AI/Ovis-U1-3B.

Not the real file (see ``configuration_aimv2.py`` of this folder for why a stand-in exists). The
real Yak model is a FLUX-style MMDiT (double- and single-stream blocks with RoPE, a token refiner)
over a 16-channel FLUX VAE; the stand-in keeps its interface and its sampling procedure with a
tiny joint-attention transformer and whatever diffusers ``AutoencoderKL`` the config describes.

Mirrors (names, signatures and return shapes of the real code):

- ``get_noise(num_samples, channel, height, width, device, dtype, seed)``: noise
  ``[n, C, 2*ceil(h/16), 2*ceil(w/16)]`` from ``torch.Generator(device=device).manual_seed(seed)``
  (so the same seed gives other noise on CPU and on CUDA, as in the real code);
- ``YakModel(config)``: ``.vae = AutoencoderKL.from_config(config.vae_config)`` and ``.backbone``;
- ``YakModel.process_image_aspectratio(image, size)`` with ``size=(width, height)``:
  ``(pil_image, image_tensor [3, H, W] in [-1, 1], img_ids [(H//16)*(W//16), 3])``, the image
  resized (bicubic) to cover the size and centre-cropped to it;
- ``YakModel.compute_vae_encodings(pixel_values, with_ids=True, time=0)``: the VAE latent drawn
  with ``latent_dist.sample()``, i.e. from torch's GLOBAL RNG, shifted and scaled by the VAE
  config, packed in 2x2 patches;
- ``YakModel.generate_image(cond, height, width, num_steps, seed, no_both_cond=None,
  no_txt_cond=None, img_cfg=1.0, txt_cfg=1.0, output_type="pil")``: a list of ``bs`` PIL images
  of ``16*(width//16) x 16*(height//16)``; Euler steps over ``get_schedule``; editing guidance
  ``no_both + img_cfg*(no_txt - no_both) + txt_cfg*(cond - no_txt)`` (``edit_denoise``);
- ``YakModel.get_schedule(num_steps, image_seq_len, base_shift=0.5, max_shift=1.15, shift=True)``
  (``torch.linspace(1, 0, num_steps + 1)``, FLUX's resolution-dependent shift when ``shift``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image
from torch import nn
from torch.nn import functional as F
from transformers.modeling_utils import PreTrainedModel

from .configuration_yak import YakConfig


def get_noise(
    num_samples: int,
    channel: int,
    height: int,
    width: int,
    device: torch.device,
    dtype: torch.dtype,
    seed: int,
) -> torch.Tensor:
    shape = (num_samples, channel, 2 * math.ceil(height / 16), 2 * math.ceil(width / 16))
    generator = torch.Generator(device=device).manual_seed(seed)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


def _pack(latents: torch.Tensor) -> torch.Tensor:
    """[b, c, h, w] -> [b, (h/2)*(w/2), c*4] (2x2 patches, channels first)."""
    b, c, h, w = latents.shape
    grid = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return grid.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    rows, cols = math.ceil(height / 16), math.ceil(width / 16)
    b, _, packed = x.shape
    grid = x.view(b, rows, cols, packed // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(b, packed // 4, rows * 2, cols * 2)


def _grid_ids(rows: int, cols: int, time: float, batch: int) -> torch.Tensor:
    """Position ids [batch, rows*cols, 3]: (time, row, column) of each latent patch."""
    ids = torch.zeros(rows, cols, 3)
    ids[..., 0] = time
    ids[..., 1] = torch.arange(rows, dtype=torch.float32).unsqueeze(1)
    ids[..., 2] = torch.arange(cols, dtype=torch.float32).unsqueeze(0)
    return ids.reshape(1, rows * cols, 3).expand(batch, -1, -1)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """Sinusoidal features of ``1000 * t`` (t in [0, 1])."""
    half = dim // 2
    exponents = torch.arange(half, dtype=torch.float32, device=t.device) / half
    angles = (1000.0 * t.float()).unsqueeze(1) * torch.exp(-math.log(max_period) * exponents)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class JointBlock(nn.Module):
    """Stand-in MMDiT block: adaLN-modulated attention over [text; image] and an MLP."""

    def __init__(self, hidden: int, heads: int, mlp_ratio: float, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.modulation = nn.Linear(hidden, 3 * hidden)
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=qkv_bias)
        self.proj = nn.Linear(hidden, hidden)
        inner = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, inner), nn.GELU(approximate="tanh"), nn.Linear(inner, hidden)
        )

    def forward(self, x: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.modulation(F.silu(vec)).unsqueeze(1).chunk(3, dim=-1)
        b, n, d = x.shape
        h = (1 + scale) * self.norm(x) + shift
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + gate * self.proj(attended)
        return x + self.mlp(self.norm(x))


class YakTransformer(nn.Module):
    """Stand-in backbone with the real ``forward`` signature."""

    def __init__(self, config: YakConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.config = config
        self.img_in = nn.Linear(config.in_channels, hidden)
        self.txt_in = nn.Sequential(nn.Linear(config.context_in_dim, hidden), nn.LayerNorm(hidden))
        self.ids_in = nn.Linear(3, hidden)  # stands in for the real RoPE over axes_dim
        self.time_in = nn.Sequential(nn.Linear(256, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.vector_in = nn.Linear(hidden, hidden)
        count = config.depth + config.depth_single_blocks
        self.blocks = nn.ModuleList(
            JointBlock(hidden, config.num_heads, config.mlp_ratio, config.qkv_bias)
            for _ in range(count)
        )
        self.final_norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Linear(hidden, 2 * hidden)
        self.final_out = nn.Linear(hidden, config.out_channels)

    def forward(
        self,
        img: torch.Tensor,
        img_ids: torch.Tensor,
        txt: torch.Tensor,
        txt_ids: torch.Tensor,
        timesteps: torch.Tensor,
        guidance: torch.Tensor | None = None,
        cond_img: torch.Tensor | None = None,
        cond_img_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if img.ndim != 3 or txt.ndim != 3:
            raise ValueError("Input img and txt tensors must have 3 dimensions.")
        weight = self.img_in.weight
        wanted = img.shape[1]
        if cond_img is not None:  # the condition image's tokens join the noisy ones
            img = torch.cat([img, cond_img], dim=1)
            img_ids = torch.cat([img_ids, cond_img_ids], dim=1)
        image = self.img_in(img) + self.ids_in(img_ids.to(weight))
        text = self.txt_in(txt.to(weight)) + self.ids_in(txt_ids.to(weight))
        vec = self.time_in(timestep_embedding(timesteps, 256).to(weight))
        vec = vec + self.vector_in(text.mean(dim=1))
        sequence = torch.cat([text, image], dim=1)
        for block in self.blocks:
            sequence = block(sequence, vec)
        out = sequence[:, text.shape[1] :]
        shift, scale = self.final_modulation(F.silu(vec)).unsqueeze(1).chunk(2, dim=-1)
        out = self.final_out((1 + scale) * self.final_norm(out) + shift)
        return out[:, :wanted]


class YakPretrainedModel(PreTrainedModel):
    config_class = YakConfig
    base_model_prefix = "yak"
    main_input_name = "pixel_values"
    _supports_sdpa = True


class YakModel(YakPretrainedModel):
    def __init__(self, config: YakConfig) -> None:
        super().__init__(config)
        self.vae = AutoencoderKL.from_config(config.vae_config)
        self.backbone = YakTransformer(config)

    def get_backbone(self) -> YakTransformer:
        return self.backbone

    def get_vae(self) -> AutoencoderKL:
        return self.vae

    def process_image_aspectratio(self, image: Image.Image, size: tuple[int, int]) -> tuple:
        target_w, target_h = size
        w, h = image.size
        ratio = max(target_w / w, target_h / h)
        cover = (max(target_w, round(w * ratio)), max(target_h, round(h * ratio)))
        resized = image.resize(cover, Image.Resampling.BICUBIC)
        left, top = (cover[0] - target_w) // 2, (cover[1] - target_h) // 2
        pil_image = resized.crop((left, top, left + target_w, top + target_h))
        array = np.asarray(pil_image.convert("RGB"), dtype=np.float32)
        image_tensor = torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0
        img_ids = _grid_ids(target_h // 16, target_w // 16, 0.0, 1)[0].clone()
        return pil_image, image_tensor, img_ids

    def compute_vae_encodings(
        self, pixel_values: torch.Tensor, with_ids: bool = True, time: float = 0
    ) -> Any:
        pixel_values = pixel_values.to(device=self.vae.device, dtype=self.vae.dtype)
        with torch.no_grad():
            latents = self.vae.encode(pixel_values).latent_dist.sample()  # global RNG
        cfg = self.vae.config
        if getattr(cfg, "shift_factor", None) is not None:
            latents = latents - cfg.shift_factor
        if getattr(cfg, "scaling_factor", None) is not None:
            latents = latents * cfg.scaling_factor
        b, _, h, w = latents.shape
        packed = _pack(latents)
        if not with_ids:
            return packed
        return packed, _grid_ids(h // 2, w // 2, time, b)

    def get_schedule(
        self,
        num_steps: int,
        image_seq_len: int,
        base_shift: float = 0.5,
        max_shift: float = 1.15,
        shift: bool = True,
    ) -> list[float]:
        times = torch.linspace(1, 0, num_steps + 1)
        if shift:  # FLUX: mu linear in the sequence length between (256, base) and (4096, max)
            mu = base_shift + (max_shift - base_shift) * (image_seq_len - 256) / (4096 - 256)
            times = math.exp(mu) / (math.exp(mu) + (1 / times - 1))
        return times.tolist()

    def _predict(self, x, img_ids, txt, t, cond_img=None, cond_ids=None) -> torch.Tensor:
        txt_ids = torch.zeros(x.shape[0], txt.shape[1], 3, device=txt.device)
        return self.backbone(
            img=x,
            img_ids=img_ids,
            txt=txt,
            txt_ids=txt_ids,
            timesteps=t,
            cond_img=cond_img,
            cond_img_ids=cond_ids,
        )

    def denoise(
        self,
        input_img: torch.Tensor,
        img_ids: torch.Tensor,
        txt: torch.Tensor,
        txt_ids: torch.Tensor,
        timesteps: list[float],
        cfg: float = 1.0,
        neg_txt: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = input_img
        for now, nxt in zip(timesteps[:-1], timesteps[1:]):
            t = torch.full((x.shape[0],), now, dtype=x.dtype, device=x.device)
            positive = self._predict(x, img_ids, txt, t)
            negative = self._predict(x, img_ids, neg_txt, t)
            x = x + (nxt - now) * (negative + cfg * (positive - negative))
        return x

    def edit_denoise(
        self,
        input_img: torch.Tensor,
        img_ids: torch.Tensor,
        txt: torch.Tensor,
        txt_ids: torch.Tensor,
        no_txt_txt: torch.Tensor,
        no_both_txt: torch.Tensor,
        img_cond: torch.Tensor,
        cond_img_ids: torch.Tensor,
        timesteps: list[float],
        img_cfg: float = 1.0,
        txt_cfg: float = 1.0,
    ) -> torch.Tensor:
        x = input_img
        for now, nxt in zip(timesteps[:-1], timesteps[1:]):
            t = torch.full((x.shape[0],), now, dtype=x.dtype, device=x.device)
            full = self._predict(x, img_ids, txt, t, img_cond, cond_img_ids)
            blank = self._predict(x, img_ids, no_both_txt, t)
            image_only = self._predict(x, img_ids, no_txt_txt, t, img_cond, cond_img_ids)
            velocity = blank + img_cfg * (image_only - blank) + txt_cfg * (full - image_only)
            x = x + (nxt - now) * velocity
        return x

    def generate_image(
        self,
        cond: dict,
        height: int,
        width: int,
        num_steps: int,
        seed: int,
        no_both_cond: dict | None = None,
        no_txt_cond: dict | None = None,
        img_cfg: float = 1.0,
        txt_cfg: float = 1.0,
        output_type: str = "pil",
    ) -> Any:
        txt = cond["txt"]
        bs = len(txt)
        height, width = 16 * (height // 16), 16 * (width // 16)
        device = next(self.backbone.parameters()).device
        channels = self.vae.config.latent_channels
        noise = get_noise(bs, channels, height, width, device, torch.bfloat16, seed)
        latents = _pack(noise)
        ids = _grid_ids(noise.shape[2] // 2, noise.shape[3] // 2, 0.0, bs).to(device)
        txt_ids = torch.zeros(bs, txt.shape[1], 3, device=device)
        schedule = self.get_schedule(
            num_steps,
            latents.shape[1],
            base_shift=self.config.base_shift,
            max_shift=self.config.max_shift,
            shift=self.config.timestep_shift,
        )
        if no_txt_cond is not None:
            cond_latents, cond_ids = self.compute_vae_encodings(
                cond["vae_pixel_values"], with_ids=True, time=1.0
            )
            x = self.edit_denoise(
                latents,
                ids,
                txt,
                txt_ids,
                no_txt_cond["txt"],
                no_both_cond["txt"],
                cond_latents,
                cond_ids.to(device),
                timesteps=schedule,
                img_cfg=img_cfg,
                txt_cfg=txt_cfg,
            )
        else:
            x = self.denoise(
                latents, ids, txt, txt_ids, schedule, cfg=txt_cfg, neg_txt=no_both_cond["txt"]
            )
        cfg = self.vae.config
        x = unpack(x.float(), height, width)
        if getattr(cfg, "scaling_factor", None) is not None:
            x = x / cfg.scaling_factor
        if getattr(cfg, "shift_factor", None) is not None:
            x = x + cfg.shift_factor
        pixels = self.vae.decode(x.to(self.vae.dtype), return_dict=False)[0].float()
        pixels = ((pixels.clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1)
        array = pixels.round().to(torch.uint8).cpu().numpy()
        if output_type == "np":
            return array
        return [Image.fromarray(a) for a in array]
