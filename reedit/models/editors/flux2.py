"""FLUX.2-dev (``Flux2Pipeline`` from diffusers).

``guidance_scale`` is the distilled guidance embedding (no negative prompt). References larger
than 1 MP are downscaled; the output takes the (processed) input size unless ``height``/``width``
(or ``max_area``) are set. Inputs must be at least 64 px on each side. On an 80 GB GPU the text
encoder, transformer and VAE do not fit together: ``use_cpu_offload: true``.
"""

from __future__ import annotations

import logging
from typing import Any

from reedit.models.base import EditRequest
from reedit.models.diffusers_editor import DiffusersEditor

_LEGACY_KWARGS = "Kwargs passed to `processor.__call__` have to be in `processor_kwargs`"


class _DiffusersProcessorCall(logging.Filter):
    """diffusers' ``Flux2Pipeline`` encodes every prompt with
    ``tokenizer.apply_chat_template(..., padding=..., truncation=..., max_length=...)``;
    transformers 5 still honours those keywords but warns, on every call, that they belong in
    ``processor_kwargs``. The call is diffusers', nothing a user can change: only that warning
    is dropped (every other transformers message stays)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_LEGACY_KWARGS)


_FILTER = _DiffusersProcessorCall()


class Flux2Editor(DiffusersEditor):
    pipeline_class = "Flux2Pipeline"
    honours = frozenset({"guidance_scale", "height", "width", "max_area"})  # no negative prompt

    def _load(self) -> None:
        logging.getLogger("transformers.processing_utils").addFilter(_FILTER)  # once: same filter
        super()._load()

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
