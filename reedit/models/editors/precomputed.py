"""Images produced elsewhere: ``<images_dir>/<category>/<sample_id><suffix>``.

A missing or unreadable file is an error for that sample, never the source image instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.models.base import Editor, EditRequest
from reedit.settings import MISSING


class PrecomputedEditor(Editor):
    @dataclass
    class Settings(Editor.Settings):
        images_dir: str = MISSING  # <images_dir>/<category>/<sample_id><suffix>
        suffix: str = ".png"

    @property
    def images_dir(self) -> Path:
        return Path(self.settings.images_dir).expanduser()

    def _load(self) -> None:
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"model.images_dir: no such folder: {self.images_dir}")

    def path_for(self, req: EditRequest) -> Path:
        return self.images_dir / req.category / f"{req.sample_id}{self.settings.suffix}"

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        from reedit.data.images import decode_image_bytes

        out = []
        for req in requests:
            path = self.path_for(req)
            if not path.is_file():
                raise FileNotFoundError(f"no precomputed image for {req.sample_id}: {path}")
            try:
                out.append(decode_image_bytes(path.read_bytes()))
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
        return out

    def info(self) -> dict[str, Any]:
        return {"resize_output_to_input": False, "images_dir": str(self.images_dir)}
