"""The no-edit baseline: every "edit" is the source image (the lower bound of any editor)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reedit.models.base import Editor, EditRequest


class IdentityEditor(Editor):
    uses_gpus = False  # no network weights here

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        return [req.image.copy() for req in requests]

    def info(self) -> dict[str, Any]:
        return {"resize_output_to_input": False}
