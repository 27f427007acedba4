"""FLUX.2-dev (``Flux2Pipeline`` from diffusers).

``guidance_scale`` is the distilled guidance embedding (no negative prompt). References larger
than 1 MP are downscaled; the output takes the (processed) input size unless ``height``/``width``
(or ``max_area``) are set. Inputs must be at least 64 px on each side. On an 80 GB GPU the text
encoder, transformer and VAE do not fit together: ``use_cpu_offload: true``.
"""

from __future__ import annotations

from typing import Any

from reedit.models.base import EditRequest
from reedit.models.diffusers_editor import DiffusersEditor


class Flux2Editor(DiffusersEditor):
    pipeline_class = "Flux2Pipeline"
    honours = frozenset({"guidance_scale", "height", "width", "max_area"})  # no negative prompt

    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        w, h = req.image.size
        if min(w, h) < 64:
            raise ValueError(f"FLUX.2 needs inputs of at least 64 px per side, got {w}x{h}")
        height, width = self.output_size(req, multiple=16)
        return {
            "image": [req.image],
            "prompt": req.instruction,
            "guidance_scale": self.settings.guidance_scale,
            "num_inference_steps": self.settings.num_inference_steps,
            "height": height,
            "width": width,
        }
