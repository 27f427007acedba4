"""Janus-4o-7B: DeepSeek's ``janus`` package (a clone of github.com/deepseek-ai/Janus on
``model.runtime.repo_path``; env ``reedit/runtime/envs/janus.yml``, as Janus does not import under
transformers 5) driven by the Janus-4o edit recipe, ``generate_image_v2v_mask_v3`` of
FreedomIntelligence/ShareGPT-4o-Image ``demo/app_janus4o.py`` (README "Model Inference" C: the
same function). That repository has no licence: the recipe is written from its description.

Recipe: ``<boi> <image>*N <eoi> <boi> <pad>*M <eoi>`` + instruction in the ``deepseek`` SFT
template (empty system prompt), then ``<boi>``. Rows: full condition (SigLIP embeddings at the
image tags, the input's VQ-token embeddings over the pad slots), part condition (SigLIP only),
unconditional (all tokens but the first and last set to pad). Per token ``cond = (full +
w2*part)/(1 + w2)``, ``logits = uncond + w*(cond - uncond)`` (w: guidance_scale = cfg_weight, w2:
image_guidance_scale = cfg_weight2), ``torch.multinomial(softmax(logits / temperature))``; the VQ
decoder decodes. Constants follow the model: N = ``num_image_tokens``, side = the image
processor's ``image_size``, patch = the VQ's downsampling, channels = ``codebook_embed_dim``
(576, 384, 16, 8 for Janus-4o-7B; M = (side/patch)^2).

Changed for evaluation: one image per request (``parallel_size`` 1; the app 5, the README 2); the
global RNGs seeded from the sample's seed before each sample (the app seeds torch/CUDA/NumPy, the
README nothing); the device from ``gpus`` (the scripts hard-code ``.cuda()``); the VQ tokens go
over the full row's pad tokens (the script's ``ii % 4`` rule over the ``<end_of_image>`` hits
picks the same slots for one input image).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit import hub
from reedit.models.base import Editor, EditRequest
from reedit.models.component import DTYPES, import_repo, seed_global_rngs
from reedit.models.diffusers_editor import resized_to_input
from reedit.settings import MISSING, check_choice, knob

REPOSITORY = "https://github.com/deepseek-ai/Janus"


class JanusEditor(Editor):
    requires = ("torch", "transformers", "janus.models:VLChatProcessor")
    honours = frozenset({"guidance_scale"})
    size_policy = (
        "always image_size x image_size of the model's image processor (384x384 for Janus-4o-7B): "
        "the input is resized (long side) and padded to a square with the image-mean colour, so a "
        "non-square input's bars are part of the output; resize_output_to_input=true resizes "
        "that square to the input's size (LANCZOS)"
    )
    model: Any = None  # MultiModalityCausalLM, once loaded
    processor: Any = None  # VLChatProcessor
    device = "cpu"
    versions: dict[str, str] | None = None  # the worker's own torch and transformers (loaded)

    @dataclass
    class Settings(Editor.Settings):
        path: str = MISSING  # hub id or local folder of the Janus-4o weights
        dtype: str = MISSING  # bfloat16 | float16 | float32
        attn_implementation: str = MISSING  # the language model's attention (the app: eager)
        guidance_scale: float | None = knob()  # cfg_weight: text guidance
        image_guidance_scale: float = MISSING  # cfg_weight2: full vs part condition
        temperature: float = MISSING  # of the image-token softmax
        resize_output_to_input: bool = MISSING

        def __post_init__(self) -> None:
            super().__post_init__()
            check_choice("dtype", self.dtype, DTYPES)
            if self.guidance_scale is None:
                raise ValueError("guidance_scale must be set (Janus-4o's cfg_weight)")
            if self.temperature <= 0:
                raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def _device(self) -> str:
        import torch

        if not self.gpus:
            return "cpu"
        if not torch.cuda.is_available():
            raise RuntimeError(f"gpus={self.gpus} but torch sees no GPU; gpus=[] runs on the CPU")
        if self.settings.dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
            raise RuntimeError("model.dtype=bfloat16 is not supported on this GPU; use float16")
        return f"cuda:{self.gpus[0]}"

    def _path(self) -> tuple[str, dict[str, Any]]:
        """A local weights folder (checked) or a hub id, and the hub keywords for it."""
        configured = self.settings.path
        path = self.locate(configured)
        local = Path(path).expanduser()
        if path != configured or path.startswith(("/", ".", "~")) or local.exists():
            if not (local / "config.json").is_file():
                raise FileNotFoundError(f"model.path: no Janus weights (config.json) in {local}")
            return str(local), {}
        return path, ({"local_files_only": True} if hub.offline() else {})

    def _load(self) -> None:
        import torch

        models = import_repo("janus.models", REPOSITORY, "janus.yml")  # registers multi_modality
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM

        s = self.settings
        self.device = self._device()
        path, where = self._path()
        dtype = getattr(torch, s.dtype)
        language = AutoConfig.from_pretrained(path, **where).language_config
        language._attn_implementation = s.attn_implementation
        model = AutoModelForCausalLM.from_pretrained(
            path, language_config=language, trust_remote_code=True, torch_dtype=dtype, **where
        )
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.processor = models.VLChatProcessor.from_pretrained(path, **where)
        self.versions = {"torch": torch.__version__, "transformers": transformers.__version__}

    def _close(self) -> None:
        import torch

        self.model = self.processor = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def info(self) -> dict[str, Any]:
        s = self.settings
        facts = {"size_policy": self.size_policy, "path": s.path, "dtype": s.dtype}
        facts.update(device=self.device, resize_output_to_input=s.resize_output_to_input)
        return {**facts, "versions": self.versions} if self.versions else facts

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        import torch

        out = []
        for req in requests:
            seed_global_rngs(req.seed)  # torch.multinomial draws from the global RNG
            with torch.inference_mode():
                image = self.generate(req.image, req.instruction)
            out.append(
                resized_to_input(image, req) if self.settings.resize_output_to_input else image
            )
        return out

    def generate(self, image: Any, instruction: str) -> Any:
        """One edit by the Janus-4o recipe (see the module docstring)."""
        import numpy as np
        import torch
        from janus.models.processing_vlm import VLChatProcessorOutput
        from PIL import Image

        s, proc, model, dev = self.settings, self.processor, self.model, self.device
        vq = model.gen_vision_model
        grid = proc.image_processor.image_size // 2 ** (len(vq.config.encoder_ch_mult) - 1)
        n_gen = grid * grid
        slots = proc.image_start_tag + proc.image_tag * proc.num_image_tokens + proc.image_end_tag
        slots += proc.image_start_tag + proc.pad_tag * n_gen + proc.image_end_tag
        turns = [
            {"role": "<|User|>", "content": slots + instruction},
            {"role": "<|Assistant|>", "content": ""},
        ]
        prompt = proc.apply_sft_template_for_multi_turn_prompts(
            conversations=turns, sft_format=proc.sft_format, system_prompt=""
        )
        ids = torch.LongTensor(proc.tokenizer.encode(prompt + proc.image_start_tag))
        pixels = proc.image_processor([image], return_tensors="pt")["pixel_values"]
        blank = ids.clone()
        blank[1:-1] = proc.pad_id
        shown, none = torch.IntTensor([proc.num_image_tokens]), torch.IntTensor([])
        rows = [
            VLChatProcessorOutput(prompt, ids, pixels, shown),  # full condition
            VLChatProcessorOutput(prompt, ids.clone(), pixels, shown),  # part condition
            VLChatProcessorOutput(prompt, blank, pixels, none),  # unconditional
        ]
        batch = proc.batchify(rows).to(dev, dtype=model.dtype)
        embeds = model.prepare_inputs_embeds(**batch)  # SigLIP at the image tags of rows 0, 1
        codes = vq.encode(pixels.to(dev, dtype=model.dtype))[2][2]
        slots_mask = batch.input_ids[0] == proc.pad_id
        if int(slots_mask.sum()) != codes.numel():
            raise RuntimeError(f"{int(slots_mask.sum())} pad slots for {codes.numel()} VQ tokens")
        embeds[0, slots_mask] = model.prepare_gen_img_embeds(codes)

        w, w2 = s.guidance_scale, s.image_guidance_scale
        tokens = torch.zeros((1, n_gen), dtype=torch.long, device=dev)
        step, cache = embeds, None
        for i in range(n_gen):
            hidden = model.language_model.model(
                inputs_embeds=step, use_cache=True, past_key_values=cache
            )
            cache = hidden.past_key_values
            logits = model.gen_head(hidden.last_hidden_state[:, -1, :])
            full, part, uncond = logits[0::3], logits[1::3], logits[2::3]
            cond = (full + w2 * part) / (1 + w2)
            probs = torch.softmax((uncond + w * (cond - uncond)) / s.temperature, dim=-1)
            token = torch.multinomial(probs, num_samples=1)
            tokens[:, i] = token[:, 0]
            step = model.prepare_gen_img_embeds(token.repeat(3, 1).view(-1)).unsqueeze(1)

        channels = vq.config.codebook_embed_dim
        decoded = vq.decode_code(tokens.to(torch.int), shape=[1, channels, grid, grid])
        pixels_out = decoded.to(torch.float32).cpu().numpy().transpose(0, 2, 3, 1)
        return Image.fromarray(np.clip((pixels_out + 1) / 2 * 255, 0, 255).astype(np.uint8)[0])
