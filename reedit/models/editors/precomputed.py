"""Images produced elsewhere: an earlier reedit run folder, or a plain folder of images.

- A run folder (it has ``images/`` and ``records/``): ``<images_dir>/images/<category>/<sample_id>/
  <image>.png``, where ``image`` is ``primary`` (default), ``refined``, ``refined_r2``, ... —
  evaluate another run's primary or refined images under a new judge.
- A plain folder: ``<images_dir>/<category>/<sample_id><suffix>``, or ``<images_dir>/<sample_id>
  <suffix>`` when the file is not in a category folder.

A missing or unreadable file is an error for that sample, never the source image instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.layout import PRIMARY, RunLayout
from reedit.models.base import Editor, EditRequest
from reedit.settings import MISSING, added


def is_run_folder(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "records").is_dir()


class PrecomputedEditor(Editor):
    uses_gpus = False  # reads files

    @dataclass
    class Settings(Editor.Settings):
        images_dir: str = MISSING  # an earlier run folder, or a plain folder of images
        image: str = added(PRIMARY)  # in a run folder: primary, refined, refined_r2, ...
        suffix: str = ".png"  # in a plain folder

    @classmethod
    def path_problems(cls, settings: Any) -> list[str]:
        folder = Path(settings.images_dir).expanduser()
        return [] if folder.is_dir() else [f"images_dir: no such folder: {folder}"]

    @property
    def images_dir(self) -> Path:
        return Path(self.settings.images_dir).expanduser()

    def _load(self) -> None:
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"model.images_dir: no such folder: {self.images_dir}")

    def path_for(self, req: EditRequest) -> Path:
        root = self.images_dir
        if is_run_folder(root):
            return RunLayout(root).image(req.category, req.sample_id, self.settings.image)
        nested = root / req.category / f"{req.sample_id}{self.settings.suffix}"
        flat = root / f"{req.sample_id}{self.settings.suffix}"
        return nested if nested.is_file() or not flat.is_file() else flat

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        from reedit.data.images import decode_image_bytes

        out = []
        for req in requests:
            path = self.path_for(req)
            if not path.is_file():
                where = "run folder" if is_run_folder(self.images_dir) else "folder"
                raise FileNotFoundError(
                    f"no precomputed image for {req.sample_id} in the {where} "
                    f"{self.images_dir}: {path} does not exist"
                )
            try:
                out.append(decode_image_bytes(path.read_bytes()))
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
        return out

    def info(self) -> dict[str, Any]:
        return {"resize_output_to_input": False, "images_dir": str(self.images_dir)}
