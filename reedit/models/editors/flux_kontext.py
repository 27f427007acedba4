"""FLUX.1-Kontext-dev (``FluxKontextPipeline`` from diffusers).

``guidance_scale`` is the distilled guidance embedding; real CFG needs ``true_cfg_scale > 1`` and a
negative prompt. With ``auto_resize`` the input goes to the closest preferred Kontext resolution;
the output is 1024x1024 (at ``max_area``) unless ``height``/``width`` are set — the pipeline does
not follow the input's aspect ratio on its own.
"""

from __future__ import annotations

from typing import Any

from reedit.models.base import EditRequest
from reedit.models.diffusers_editor import DiffusersEditor


class FluxKontextEditor(DiffusersEditor):
    pipeline_class = "FluxKontextPipeline"

    def __init__(self, auto_resize: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.auto_resize = auto_resize

    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "image": req.image,
            "prompt": req.instruction,
            "guidance_scale": self.guidance_scale,
            "num_inference_steps": self.num_inference_steps,
            "height": self.height,
            "width": self.width,
            "_auto_resize": self.auto_resize,
        }
        if self.height and self.width:  # the pipeline rescales any size to max_area otherwise
            kwargs["max_area"] = self.height * self.width
        elif self.max_area:
            kwargs["max_area"] = self.max_area
        if self.true_cfg_scale is not None:
            kwargs["true_cfg_scale"] = self.true_cfg_scale
        if self.negative_prompt is not None:
            kwargs["negative_prompt"] = self.negative_prompt
        return kwargs
