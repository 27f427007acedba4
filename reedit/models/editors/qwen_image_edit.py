"""Qwen-Image-Edit (``QwenImageEditPipeline``) and Qwen-Image-Edit-2509/2511
(``QwenImageEditPlusPipeline``) from diffusers.

Real classifier-free guidance runs only with ``true_cfg_scale > 1`` and a negative prompt (the
README passes ``" "``). The output is about 1 MP with the input's aspect ratio unless
``height``/``width`` (or ``max_area``) are set; ``resize_output_to_input`` maps it back.
"""

from __future__ import annotations

from typing import Any

from reedit.models.base import EditRequest
from reedit.models.diffusers_editor import DiffusersEditor


class QwenImageEditEditor(DiffusersEditor):
    pipeline_class = "QwenImageEditPipeline"
    # guidance_scale reaches the pipeline, which uses it only for guidance-distilled weights
    honours = frozenset(
        {"true_cfg_scale", "negative_prompt", "guidance_scale", "height", "width", "max_area"}
    )

    def image_argument(self, req: EditRequest) -> Any:
        return req.image

    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        s = self.settings
        height, width = self.output_size(req, multiple=16)
        return {
            "image": self.image_argument(req),
            "prompt": req.instruction,
            "negative_prompt": s.negative_prompt,
            "true_cfg_scale": s.true_cfg_scale,
            "guidance_scale": s.guidance_scale,
            "num_inference_steps": s.num_inference_steps,
            "height": height,
            "width": width,
        }


class QwenImageEditPlusEditor(QwenImageEditEditor):
    """The multi-image pipeline (2509/2511): the image goes in as a one-element list."""

    pipeline_class = "QwenImageEditPlusPipeline"

    def image_argument(self, req: EditRequest) -> Any:
        return [req.image]
