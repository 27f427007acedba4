"""OmniGen2 (VectorSpaceLab/OmniGen2) through the repository's own ``OmniGen2Pipeline``.

Runs in a worker whose ``repo_path`` is a clone of the repository (``omnigen2`` is imported from
its root; recipe: ``reedit/runtime/envs/omnigen2.yml``). Loading and the call follow
``inference.py`` as ``example_edit.sh`` runs it: the pipeline, then its transformer replaced by
``OmniGen2Transformer2DModel.from_pretrained(path, subfolder="transformer")``; ``guidance_scale``
is the pipeline's ``text_guidance_scale``. Three-pass CFG: negative prompt without the image,
negative prompt with the image (``image_guidance_scale``), the instruction with the image.

Where the official script does not suit an evaluation:

- its generator is seeded once per run; here each edit gets its own from the request's seed.
  The pipeline also samples the input image's VAE latent from torch's global RNG
  (``latent_dist.sample()``), which nothing seeds: the global RNGs are seeded per edit too.
- ``--max_input_image_pixels`` is parsed but never passed; the pipeline's ``max_pixels`` applies
  (a setting here), and ``--height``/``--width`` do nothing for a one-image edit (not offered).
- on a machine without CUDA (or with ``gpus=[]``) the repository's Triton and flash-attn paths
  are switched off before its model modules are imported: with triton installed their import
  fails on a CUDA query; the CPU fallbacks are the repository's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from reedit.models.base import EditRequest
from reedit.models.component import import_repo
from reedit.models.diffusers_editor import DiffusersEditor
from reedit.settings import MISSING, check_choice

REPOSITORY = "https://github.com/VectorSpaceLab/OmniGen2"
RECIPE = "omnigen2.yml"
SCHEDULERS = ("euler", "dpmsolver++")  # inference.py --scheduler


def repo_module(name: str) -> Any:
    return import_repo(f"omnigen2.{name}", REPOSITORY, RECIPE)


class OmniGen2Editor(DiffusersEditor):
    pipeline_class = "OmniGen2Pipeline"
    honours = frozenset({"guidance_scale", "negative_prompt"})
    # Not parallel=model: its transformer is loaded again after the pipeline, as inference.py
    # does (use one copy per GPU, or use_cpu_offload on a small GPU).
    parallel_modes = ("data",)
    seeds_global_rngs = True  # the input image's VAE latent is sampled from the global RNG
    # diffusers 0.34 (the recipe's) knows only torch_dtype; 0.42 still accepts it
    dtype_kwarg: ClassVar[str] = "torch_dtype"
    size_policy = (
        "the pre-processed input size: the input downscaled (never upscaled) to at most "
        "max_pixels and max_input_image_side_length, sides floored to multiples of 16 "
        "(height/width play no part in a one-image edit)"
    )

    @dataclass
    class Settings(DiffusersEditor.Settings):
        image_guidance_scale: float = MISSING
        cfg_range: list[float] = MISSING  # [start, end] of the steps (fractions) that use CFG
        max_sequence_length: int = MISSING
        max_pixels: int = MISSING  # input image area limit
        max_input_image_side_length: int = MISSING
        scheduler: str = MISSING  # euler | dpmsolver++

        def __post_init__(self) -> None:
            super().__post_init__()
            check_choice("scheduler", self.scheduler, SCHEDULERS)
            if self.guidance_scale is None:
                raise ValueError("guidance_scale must be set (the text guidance scale)")
            if len(self.cfg_range) != 2:
                raise ValueError(f"cfg_range must be [start, end], got {list(self.cfg_range)}")

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.found: dict[str, Any] = {}  # what loading found: code, versions, fused kernels

    @classmethod
    def import_checks(cls) -> tuple[str, ...]:
        return (*cls.requires, "einops", "omnigen2.utils.import_utils")

    def pipeline_type(self) -> Any:
        flags = repo_module("utils.import_utils")
        if self.device == "cpu":  # read when the model modules are imported: set them first
            flags._triton_available = False
            flags._flash_attn_available = False
        import diffusers
        import torch
        import transformers

        self.found = {
            "repository": str(Path(flags.__file__).resolve().parents[2]),
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "diffusers": diffusers.__version__,
            },
            "fused_kernels": {
                "triton": flags.is_triton_available(),
                "flash_attn": flags.is_flash_attn_available(),
            },
        }
        pipeline = repo_module("pipelines.omnigen2.pipeline_omnigen2").OmniGen2Pipeline
        # diffusers loads a component named by its module (a folder saved with the pipeline's
        # save_pretrained names the repository's scheduler) only once that module is imported
        repo_module("schedulers.scheduling_flow_match_euler_discrete")
        return pipeline

    def load_pipeline(self, cls: Any, path: str, kwargs: dict[str, Any]) -> Any:
        pipe = cls.from_pretrained(path, trust_remote_code=True, **kwargs)  # as inference.py
        transformer = repo_module("models.transformers.transformer_omnigen2")
        pipe.transformer = transformer.OmniGen2Transformer2DModel.from_pretrained(
            path, subfolder="transformer", **kwargs
        )
        if self.settings.scheduler == "dpmsolver++":  # inference.py's construction
            solver = repo_module("schedulers.scheduling_dpmsolver_multistep")
            pipe.scheduler = solver.DPMSolverMultistepScheduler(
                algorithm_type="dpmsolver++",
                solver_type="midpoint",
                solver_order=2,
                prediction_type="flow_prediction",
            )
        return pipe

    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        s = self.settings
        return {
            "prompt": req.instruction,
            "input_images": [req.image],
            "negative_prompt": s.negative_prompt,
            "num_inference_steps": s.num_inference_steps,
            "text_guidance_scale": s.guidance_scale,
            "image_guidance_scale": s.image_guidance_scale,
            "cfg_range": tuple(s.cfg_range),
            "max_sequence_length": s.max_sequence_length,
            "max_pixels": s.max_pixels,
            "max_input_image_side_length": s.max_input_image_side_length,
            "output_type": "pil",
        }

    def info(self) -> dict[str, Any]:
        return {**super().info(), "scheduler": self.settings.scheduler, **self.found}
