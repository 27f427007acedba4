"""HiDream-E1.1 (``HiDreamImageEditingPipeline`` of github.com/HiDream-ai/HiDream-E1), loaded and
called as its ``inference_e1_1.py``: Llama-3.1-8B-Instruct as the 4th text encoder (``llama_path``),
the HiDream-I1-Full folder (``path``: scheduler, VAE, CLIP/T5, the transformer's config), the E1.1
transformer weights (``edit_transformer_path``) and ``transformer.max_seq``.

Where it differs from the script (same outputs; a test compares bytes with the script's flow):

- The script loads the I1-Full transformer (float32), keeps ``src_dict = state_dict()`` and the
  E1.1 dict and passes ``reload_keys={"editing": src_dict, "refine": edit_dict}``; ``state_dict()``
  aliases the parameters, so its strict E1.1 load overwrites ``src_dict`` too: both stages run
  E1.1, and each call copies the whole state twice. Here the transformer is built from I1-Full's
  config with the E1.1 weights only, strictly (I1-Full's transformer weights are never read), and
  ``reload_keys={"editing": {}, "refine": {}}`` keeps the two stages without any copy (``None``
  would drop the refine stage).
- A generator per sample from its seed (the script: ``torch.Generator("cuda").manual_seed(3)``);
  the pipeline samples from no global RNG (VAE latents by argmax), so those are not seeded.

Sizes as the script: the input to about ``max_area`` (:func:`fit_to_area`, its ``resize_image``),
the output back to the input's size with PIL's default bicubic (``resize_output_to_input``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit import hub
from reedit.models.base import Edited, EditRequest
from reedit.models.component import import_repo
from reedit.models.diffusers_editor import DiffusersEditor
from reedit.settings import MISSING

INDEX = "diffusion_pytorch_model.safetensors.index.json"
REPOSITORY = "https://github.com/HiDream-ai/HiDream-E1"


class SettingError(RuntimeError):
    """A load error that names its config key."""


def fit_to_area(image: Any, area: int, multiple: int = 16) -> Any:
    """``resize_image`` of inference_e1_1.py: halve (box) while the short side is at least twice
    the target side, pick the largest size of multiples of ``multiple`` within ``area`` (sides
    rounded or floored), scale (bicubic) to cover it and crop the centre."""
    from PIL import Image

    side = math.isqrt(area)
    while min(image.size) >= 2 * side:
        image = image.resize((image.width // 2, image.height // 2), resample=Image.BOX)
    w, h = image.size
    scale = math.sqrt(area / (w * h))
    ways = (round, math.floor)
    sizes = [(a(w * scale) // multiple * multiple, b(h * scale) // multiple * multiple)
             for a in ways for b in ways]  # fmt: skip
    ranked = sorted(sizes, key=lambda s: s[0] * s[1], reverse=True)  # stable: ties keep order
    tw, th = next((s for s in ranked if s[0] * s[1] <= area), ranked[-1])
    if w / tw < h / th:  # width decides: full width, crop rows
        tall = round(h / (w / tw))
        top = (tall - th) // 2
        return image.resize([tw, tall], resample=Image.BICUBIC).crop((0, top, tw, top + th))
    wide = round(w / (h / th))
    left = (wide - tw) // 2
    return image.resize([wide, th], resample=Image.BICUBIC).crop((left, 0, left + tw, th))


def transformer_folder(configured: str) -> Path | None:
    """The folder holding the E1.1 index: the setting itself or its ``transformer/``."""
    root = Path(configured).expanduser()
    return next((p for p in (root, root / "transformer") if (p / INDEX).is_file()), None)


class HiDreamE1Editor(DiffusersEditor):
    pipeline_class = "HiDreamImageEditingPipeline"
    versions: dict[str, str] | None = None  # the worker's libraries, once loaded
    honours = frozenset({"guidance_scale", "negative_prompt", "max_area"})
    size_policy = (
        "the input resized and centre-cropped to about max_area, sides multiples of 16 "
        "(inference_e1_1.py resize_image); resize_output_to_input: back to the input size "
        "(bicubic, as the script)"
    )

    @dataclass
    class Settings(DiffusersEditor.Settings):
        llama_path: str = MISSING  # Llama-3.1-8B-Instruct: hub id or local folder
        edit_transformer_path: str = MISSING  # local folder of the sharded E1.1 transformer
        image_guidance_scale: float = MISSING
        refine_strength: float = MISSING  # the last share of steps: text-only refine stage
        clip_cfg_norm: bool = MISSING
        max_seq: int = MISSING  # transformer.max_seq (token padding and timestep shift)

        def __post_init__(self) -> None:
            super().__post_init__()
            if not self.max_area or self.max_area < 256:
                raise ValueError(f"max_area must be set (>= 256), got {self.max_area}")
            if not 0.0 <= self.refine_strength <= 1.0:
                raise ValueError(f"refine_strength must be in [0, 1], got {self.refine_strength}")

    @classmethod
    def import_checks(cls) -> tuple[str, ...]:
        repo = f"pipeline_hidream_image_editing:{cls.pipeline_class}"
        return (*cls.requires, "diffusers:HiDreamImageTransformer2DModel", repo)

    @classmethod
    def path_problems(cls, settings: Any) -> list[str]:
        out = super().path_problems(settings)
        llama = Path(settings.llama_path).expanduser()
        if settings.llama_path.startswith(("/", ".", "~")) and not llama.is_dir():
            out.append(f"llama_path: no such folder: {llama}")
        if transformer_folder(settings.edit_transformer_path) is None:
            how = "hf download HiDream-ai/HiDream-E1-1 --include 'transformer/*' --local-dir DIR"
            where = f"{settings.edit_transformer_path} (nor in its transformer/)"
            out.append(f"edit_transformer_path: no {INDEX} in {where}: a local folder ({how})")
        return out

    def pipeline_type(self) -> Any:
        module = import_repo("pipeline_hidream_image_editing", REPOSITORY, "hidream_e1.yml")
        return getattr(module, self.pipeline_class)

    def load_pipeline(self, cls: Any, path: str, kwargs: dict[str, Any]) -> Any:
        import diffusers
        import transformers
        from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

        self.versions = {m.__name__: m.__version__ for m in (diffusers, transformers)}
        s, dtype = self.settings, kwargs[self.dtype_kwarg]
        local = Path(s.llama_path).expanduser().exists()
        hub_kw = {} if local or not hub.offline() else {"local_files_only": True}
        flags = {"output_hidden_states": True, "output_attentions": True}  # as the script
        try:
            tokenizer = PreTrainedTokenizerFast.from_pretrained(s.llama_path, **hub_kw)
            llama = LlamaForCausalLM.from_pretrained(s.llama_path, dtype=dtype, **flags, **hub_kw)
        except Exception as exc:
            raise SettingError(f"model.llama_path: cannot load {s.llama_path}: {exc}") from exc
        transformer = self.load_transformer(path, dtype, kwargs.get("local_files_only", False))
        transformer.max_seq = s.max_seq
        return cls.from_pretrained(
            path, tokenizer_4=tokenizer, text_encoder_4=llama, transformer=transformer, **kwargs
        )

    def load_transformer(self, path: str, dtype: Any, local_files_only: bool) -> Any:
        """I1-Full's transformer config with the E1.1 weights, loaded strictly (diffusers' own
        sharded loader, from a folder of links: the config and the E1.1 index and shards)."""
        import json
        import tempfile

        from diffusers import HiDreamImageTransformer2DModel

        key, configured = "model.edit_transformer_path", self.settings.edit_transformer_path
        folder = transformer_folder(configured)
        if folder is None:
            raise SettingError(f"{key}: no {INDEX} in {configured}")
        config = HiDreamImageTransformer2DModel.load_config(
            path, subfolder="transformer", local_files_only=local_files_only
        )
        shards = set(json.loads((folder / INDEX).read_text())["weight_map"].values())
        with tempfile.TemporaryDirectory(prefix="reedit-hidream-") as tmp:
            (Path(tmp) / "config.json").write_text(json.dumps(config))
            for name in (INDEX, *sorted(shards)):
                (Path(tmp) / name).symlink_to((folder / name).resolve())
            try:
                model, info = HiDreamImageTransformer2DModel.from_pretrained(
                    tmp, dtype=dtype, output_loading_info=True, local_files_only=True
                )
            except Exception as exc:
                raise SettingError(f"{key}: cannot load the E1.1 transformer: {exc}") from exc
        wrong = {k: info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        if any(wrong.values()):
            shown = "; ".join(f"{k}: {len(v)} (e.g. {list(v)[:3]})" for k, v in wrong.items() if v)
            raise SettingError(f"{key}: the E1.1 weights do not fit the transformer: {shown}")
        return model

    def _explain_load_error(self, exc: Exception, path: str) -> Exception:
        mine = isinstance(exc, SettingError)  # already names its key
        return SettingError(str(exc)) if mine else super()._explain_load_error(exc, path)

    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        s = self.settings
        return {
            "prompt": req.instruction,
            "negative_prompt": s.negative_prompt,
            "image": fit_to_area(req.image, s.max_area),
            "guidance_scale": s.guidance_scale,
            "image_guidance_scale": s.image_guidance_scale,
            "num_inference_steps": s.num_inference_steps,
            "refine_strength": s.refine_strength,
            "reload_keys": {"editing": {}, "refine": {}},  # the official dicts: E1.1 (aliased)
            "clip_cfg_norm": s.clip_cfg_norm,
        }

    def generate(self, req: EditRequest, generator: Any, kwargs: dict[str, Any]) -> Any:
        from PIL import Image

        image = self.pipe(generator=generator, **kwargs).images[0]
        details = {"processed_size": list(kwargs["image"].size)}
        if self.settings.resize_output_to_input and image.size != req.image.size:
            image = image.resize(req.image.size, resample=Image.Resampling.BICUBIC)
        return Edited(image, details)

    def info(self) -> dict[str, Any]:
        s, out = self.settings, super().info()
        out.update(llama_path=s.llama_path, edit_transformer_path=s.edit_transformer_path)
        out.update(max_seq=s.max_seq, **({"versions": self.versions} if self.versions else {}))
        return out
