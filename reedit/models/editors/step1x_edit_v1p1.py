"""Step1X-Edit v1p1 (``Step1XEditPipeline``), and what it shares with v1p2-preview: both pipelines
live only in the Peyton-Chen/diffusers fork (branch ``dev/MergeV1-2``, diffusers 0.36.0.dev0),
which the worker imports from ``model.runtime.repo_path`` (the clone's ``src`` folder) or from the
environment it is installed in (``reedit/runtime/envs/step1x_edit.yml``, transformers 4.55.0).

What the fork's code does, noted for evaluation (kept: it is the official behaviour):

- **Size**: the input is resized to about 1024x1024 pixels at its aspect ratio (sides floored to
  multiples of 16) and the output resized back to the input's size inside the pipeline;
  ``height``/``width`` are ignored whenever an input image is given, so they are not offered.
- **CFG** is ``true_cfg_scale`` (real CFG whenever > 1, negative prompt ``""`` for edits);
  ``guidance_scale`` is read only when the transformer has ``guidance_embeds``. The norm-rescaled
  CFG is meant for ``t > timesteps_truncate`` (0.93) but ``t`` is on the 0-1000 scale there, so
  every step takes it (the native repository rescales only the first steps; 930 would match it).
- **bf16 only**: the prompt embeddings are hard-cast to bfloat16, so ``dtype`` must be bfloat16.
- The README's v1p1 call (``size_level=1024, guidance_scale=6.0``) predates the fork's rename to
  ``true_cfg_scale`` and removal of ``size_level``; ``size_level`` raises ``TypeError`` there.
- v1p1's text encoding hard-codes ``.to("cuda")`` and Qwen2.5-VL's real token ids: it runs only on
  a CUDA GPU with the real checkpoint (a CPU run fails at load, naming ``gpus``).
- The per-sample generator is a CPU ``torch.Generator`` seeded from the request (README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reedit.models.base import EditRequest
from reedit.models.component import import_repo
from reedit.models.diffusers_editor import DiffusersEditor
from reedit.settings import MISSING

FORK = "https://github.com/Peyton-Chen/diffusers (branch dev/MergeV1-2; repo_path: its src/ folder)"
RECIPE = "step1x_edit.yml"


class Step1XEditBase(DiffusersEditor):
    """A Step1X-Edit pipeline of the diffusers fork (``pipeline_class`` names which)."""

    dtype_kwarg = "torch_dtype"  # the fork's DiffusionPipeline.from_pretrained (diffusers 0.36)
    honours = frozenset({"guidance_scale", "true_cfg_scale", "negative_prompt"})
    size_policy = (
        "about 1 MP at the input's aspect ratio (sides multiples of 16) inside the pipeline, "
        "resized back to the input's size by the pipeline; height/width are not used"
    )

    @dataclass
    class Settings(DiffusersEditor.Settings):
        timesteps_truncate: float = MISSING  # rescaled CFG while t > this (t on 0-1000: always)
        process_norm_power: float = MISSING  # exponent of the CFG norm rescaling

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.dtype != "bfloat16":  # the fork casts the prompt embeddings to bf16
                raise ValueError(
                    f"dtype must be 'bfloat16' (the Step1X pipelines hard-cast the prompt "
                    f"embeddings to bf16), got '{self.dtype}'"
                )

    def pipeline_type(self) -> Any:
        module = import_repo("diffusers.pipelines.step1x_edit", FORK, RECIPE)
        return getattr(module, self.pipeline_class)

    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        s = self.settings
        kwargs = {
            "image": req.image,
            "prompt": req.instruction,
            "negative_prompt": s.negative_prompt,
            "true_cfg_scale": s.true_cfg_scale,
            "guidance_scale": s.guidance_scale,
            "num_inference_steps": s.num_inference_steps,
            "timesteps_truncate": s.timesteps_truncate,
            "process_norm_power": s.process_norm_power,
        }
        return {k: v for k, v in kwargs.items() if v is not None}  # null: the pipeline's own

    def info(self) -> dict[str, Any]:
        import diffusers
        import transformers

        versions = {"diffusers": diffusers.__version__, "transformers": transformers.__version__}
        return {**super().info(), **versions}


class Step1XEditV1p1Editor(Step1XEditBase):
    pipeline_class = "Step1XEditPipeline"

    def choose_device(self) -> str:
        device = super().choose_device()
        if device != "cuda:0":  # in a worker, the run's first GPU is its cuda:0
            raise RuntimeError(
                f"gpus: Step1X-Edit v1p1 cannot run on {device}: its pipeline's text encoding "
                'hard-codes .to("cuda") (cuda:0); set gpus=[0] (or run it in a worker)'
            )
        return device
