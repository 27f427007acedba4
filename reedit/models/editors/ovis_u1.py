"""Ovis-U1-3B (AIDC-AI/Ovis-U1-3B) through the checkpoint's remote code (``trust_remote_code``;
github.com/AIDC-AI/Ovis-U1 holds only test scripts, so no clone). The edit follows
``test_img_edit.py:pipe_img_edit``: output size ``smart_resize(h, w, factor=32)`` of the input,
three ``generate_condition`` calls (a white image with "<image>\nGenerate an image.", the input
with it, the input with "<image>\n" + the instruction and its VAE pixels), then ``generate_img``
(``txt_cfg`` = ``guidance_scale``, ``img_cfg`` = ``image_guidance_scale``).

Env ``reedit/runtime/envs/ovis_u1.yml`` (transformers 4.51.3): under transformers 5 the remote code
fails (its tokenizer-class assertion, its ``aimv2`` registration clashing with the built-in one,
no ``post_init()``); its vision tower imports the CUDA-only ``flash_attn``: CUDA GPUs only.

For an evaluation: torch's global RNG (the condition image's ``latent_dist.sample()``) is seeded
from the request's seed before each edit (the script never seeds it; the noise generator lives on
the model's device, so CPU and CUDA differ); ``propagate_exception=True`` (the script's False
swaps an unprocessable image for a blank one); weights missing from the checkpoint fail the load
(unexpected keys are logged and in ``info()``); every value is passed (``generate_img``'s own
defaults, txt_cfg 5 and 1024x1024, never apply).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit import hub
from reedit.models.base import Editor, EditRequest
from reedit.models.component import seed_global_rngs
from reedit.models.diffusers_editor import resized_to_input
from reedit.settings import MISSING, knob, runtime_field

log = logging.getLogger(__name__)

FACTOR = 32  # test_img_edit.py: visual_tokenizer.smart_resize(height, width, factor=32)
# test_img_edit.py's gen_kwargs (generate_condition hands them to the LLM's forward, where they do
# nothing: no text is generated), passed as the script passes them
LLM_KWARGS = dict(
    max_new_tokens=1024, do_sample=False, top_p=None, top_k=None, temperature=None,
    repetition_penalty=None, use_cache=True,
)  # fmt: skip


class OvisU1Editor(Editor):
    requires = ("torch", "transformers", "diffusers", "flash_attn")
    honours = frozenset({"max_area"})  # guidance_scale (txt_cfg) is a required setting here
    size_policy = (
        "the model's smart_resize of the input (factor 32): sides multiples of 32, the area at "
        "most max_area (null: its default 1003520 px) at about the input's aspect ratio; not "
        "resized back unless resize_output_to_input"
    )

    @dataclass
    class Settings(Editor.Settings):
        path: str = MISSING  # hub id or a local checkpoint folder (config.json + remote code)
        dtype: str = MISSING  # bfloat16 (the remote code draws its noise in bfloat16)
        num_inference_steps: int = MISSING  # generate_img num_steps
        guidance_scale: float = MISSING  # txt_cfg
        image_guidance_scale: float = MISSING  # img_cfg
        unconditional_prompt: str = MISSING  # the two conditions without the instruction
        max_area: int | None = knob()  # smart_resize max_pixels (null: the model's default)
        resize_output_to_input: bool = MISSING
        disable_progress_bar: bool = runtime_field(True)

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.dtype != "bfloat16":  # get_noise (modeling_yak.py) is bfloat16 whatever
                raise ValueError(f"dtype must be 'bfloat16' (Ovis-U1's only), got '{self.dtype}'")

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.model: Any = None
        self.device = "cpu"
        self.unexpected_keys: list[str] = []
        self.versions: dict[str, str] = {}

    @classmethod
    def path_problems(cls, settings: Any) -> list[str]:
        found = super().path_problems(settings)
        folder = Path(str(settings.path)).expanduser()
        if not found and folder.is_dir() and not (folder / "config.json").is_file():
            found.append(f"path: {folder} has no config.json (not a Hugging Face model folder)")
        return found

    def _choose_device(self) -> str:
        import torch

        if self.gpus and not torch.cuda.is_available():
            raise RuntimeError(f"gpus={self.gpus} asks for CUDA but torch sees no GPU")
        if self.gpus and not torch.cuda.is_bf16_supported():
            raise RuntimeError("Ovis-U1 runs in bfloat16 only, which this GPU does not support")
        return f"cuda:{self.gpus[0]}" if self.gpus else "cpu"

    def _load(self) -> None:
        import torch
        import transformers

        s = self.settings
        self.device = self._choose_device()
        path = self.locate(s.path)
        hub_id = path == s.path and not Path(path).expanduser().exists()
        kwargs: dict[str, Any] = {"local_files_only": True} if hub_id and hub.offline() else {}
        if s.disable_progress_bar:
            transformers.utils.logging.disable_progress_bar()
        dtype = getattr(torch, s.dtype)
        try:
            model, info = transformers.AutoModelForCausalLM.from_pretrained(
                path, torch_dtype=dtype, output_loading_info=True, trust_remote_code=True, **kwargs
            )
        except Exception as exc:
            how = (
                f" (not downloaded? `hf download {path}`; {hub.offline_reason()})" if hub_id else ""
            )
            first = f"{type(exc).__name__}: {exc}".splitlines()[0][:400]
            raise RuntimeError(f"model.path: cannot load {path}{how}: {first}") from exc
        broken = [
            f"{k}: {list(info[k])[:5]}" for k in ("missing_keys", "mismatched_keys") if info.get(k)
        ]
        if broken or info.get("error_msgs"):  # such weights would stay random
            raise RuntimeError(
                f"model.path: {path} lacks weights of the model: {broken} "
                f"{info.get('error_msgs') or ''}"
            )
        self.unexpected_keys = sorted(info.get("unexpected_keys") or [])
        if self.unexpected_keys:
            log.warning("%s: unused weights in %s: %s", self.label, path, self.unexpected_keys[:5])
        self.model = model.eval().to(self.device).to(dtype)  # test_img_edit.py: same order
        self.versions = {"torch": torch.__version__, "transformers": transformers.__version__}

    def _close(self) -> None:
        self.model = None

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        import torch

        out = []
        for req in requests:
            seed_global_rngs(req.seed)  # the condition's VAE latent is sampled from it
            with torch.inference_mode():
                image = self._generate(req)
            out.append(
                resized_to_input(image, req) if self.settings.resize_output_to_input else image
            )
        return out

    def _generate(self, req: EditRequest) -> Any:
        from PIL import Image

        s, model = self.settings, self.model
        tokenizer, visual = model.get_text_tokenizer(), model.get_visual_tokenizer()
        limit = {"max_pixels": s.max_area} if s.max_area else {}
        width, height = req.image.size
        height, width = visual.smart_resize(height, width, factor=FACTOR, **limit)
        gen = {
            **LLM_KWARGS,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "height": height,
            "width": width,
            "num_steps": s.num_inference_steps,
            "seed": req.seed,
            "img_cfg": s.image_guidance_scale,
            "txt_cfg": s.guidance_scale,
        }
        blank = Image.new("RGB", (width, height), (255, 255, 255))
        no_both, _ = self._condition(s.unconditional_prompt, blank, gen)
        source = req.image.resize((width, height))
        no_txt, _ = self._condition(s.unconditional_prompt, source, gen)
        cond, vae_pixels = self._condition("<image>\n" + req.instruction.strip(), source, gen)
        cond["vae_pixel_values"] = vae_pixels
        return model.generate_img(cond=cond, no_both_cond=no_both, no_txt_cond=no_txt, **gen)[0]

    def _condition(self, prompt: str, image: Any, gen: dict[str, Any]) -> tuple[dict, Any]:
        """``generate_condition`` of one prompt and image, and the image's VAE pixels
        (test_img_edit.py: build_inputs, then generate_condition)."""
        import torch

        model = self.model
        visual = model.get_visual_tokenizer()
        target = (gen["width"], gen["height"])
        image, vae_pixels, _ = model.visual_generator.process_image_aspectratio(image, target)
        small = visual.smart_resize(
            image.height, image.width, max_pixels=visual.image_processor.min_pixels
        )
        _, input_ids, pixels, grids = model.preprocess_inputs(
            prompt,
            [image.resize(small[::-1])],
            generation_preface=None,
            return_labels=False,
            propagate_exception=True,
            multimodal_type="single_image",
            fix_sample_overall_length_navit=False,
        )
        mask = torch.ne(input_ids, gen["pad_token_id"]).unsqueeze(0).to(model.device)
        cond = model.generate_condition(
            input_ids.unsqueeze(0).to(model.device),
            pixel_values=pixels.to(device=visual.device, dtype=getattr(torch, self.settings.dtype)),
            attention_mask=mask,
            grid_thws=grids.to(device=visual.device),
            **gen,
        )
        return cond, vae_pixels.unsqueeze(0).to(model.device)

    def info(self) -> dict[str, Any]:
        return {
            "size_policy": self.size_policy,
            "path": self.settings.path,
            "dtype": self.settings.dtype,
            "device": self.device,
            "resize_output_to_input": self.settings.resize_output_to_input,
            "unexpected_keys": self.unexpected_keys,
            "versions": self.versions,
        }
