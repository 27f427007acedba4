"""A CPU-bound stand-in editor for the rank benchmarks: each edit runs a fixed amount of pure
Python work (one core: the GIL), between ``work`` and ``skew`` x ``work`` steps, chosen by the
sample id alone, and returns the source image. It says how fast and how evenly ranks share
uneven work; its images say nothing (they are the sources)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reedit.models.base import Editor, EditRequest


class BusyEditor(Editor):
    uses_gpus = False  # CPU work only

    @dataclass
    class Settings(Editor.Settings):
        work: int = 2_000_000  # the cheapest edit's steps (~0.2 s on one core here)
        skew: float = 1.0  # the dearest edit costs skew x work; costs spread evenly between

    def steps(self, sample_id: str) -> int:
        """The steps an edit of ``sample_id`` takes (the same on every rank and run)."""
        u = int(hashlib.sha256(sample_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return int(self.settings.work * (1 + (self.settings.skew - 1) * u))

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        out = []
        for req in requests:
            x = 1
            for _ in range(self.steps(req.sample_id)):
                x = (x * 1103515245 + 12345) & 0xFFFFFFFF
            out.append(req.image.copy())
        return out

    def info(self) -> dict[str, Any]:
        return {"resize_output_to_input": False}
