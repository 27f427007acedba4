"""FLUX.1-Kontext-dev (``FluxKontextPipeline`` from diffusers).

``guidance_scale`` is the distilled guidance embedding; real CFG needs ``true_cfg_scale > 1`` and a
negative prompt. With ``auto_resize`` the input goes to the closest preferred Kontext resolution;
the output is 1024x1024 (at ``max_area``) unless ``height``/``width`` are set — the pipeline does
not follow the input's aspect ratio on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reedit.models.base import EditRequest
from reedit.models.diffusers_editor import DiffusersEditor
from reedit.settings import MISSING


class FluxKontextEditor(DiffusersEditor):
    pipeline_class = "FluxKontextPipeline"
    honours = frozenset(
        {"guidance_scale", "true_cfg_scale", "negative_prompt", "height", "width", "max_area"}
    )

    @dataclass
    class Settings(DiffusersEditor.Settings):
        auto_resize: bool = MISSING  # the input goes to the closest preferred Kontext size

    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        s = self.settings
        kwargs: dict[str, Any] = {
            "image": req.image,
            "prompt": req.instruction,
            "guidance_scale": s.guidance_scale,
            "num_inference_steps": s.num_inference_steps,
            "height": s.height,
            "width": s.width,
            "_auto_resize": s.auto_resize,
        }
        if s.height and s.width:  # the pipeline rescales any size to max_area otherwise
            kwargs["max_area"] = s.height * s.width
        elif s.max_area:
            kwargs["max_area"] = s.max_area
        if s.true_cfg_scale is not None:
            kwargs["true_cfg_scale"] = s.true_cfg_scale
        if s.negative_prompt is not None:
            kwargs["negative_prompt"] = s.negative_prompt
        return kwargs
