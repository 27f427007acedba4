"""A folder of images plus ``samples.jsonl`` (one JSON object per line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.data.base import Dataset, DatasetError, RawRecord
from reedit.settings import MISSING

_KNOWN = {"id", "image", "instruction", "category", "description", "rationale"}


class FolderDataset(Dataset):
    """``<root>/<index>`` lines: id (optional; default the image stem), image (relative to root),
    instruction, category, description, rationale, and any other keys as metadata."""

    @dataclass
    class Settings(Dataset.Settings):
        root: str = MISSING
        index: str = "samples.jsonl"

    def __init__(self, settings: Any = None, **values: Any) -> None:
        super().__init__(settings, **values)
        self.root = Path(self.settings.root).expanduser()
        self.index = self.root / self.settings.index

    def describe(self) -> str:
        return str(self.index)

    def cache_key(self) -> str:
        import hashlib

        if not self.index.is_file():
            raise DatasetError(f"dataset.root: no {self.index.name} in {self.root}")
        st = self.index.stat()
        key = f"{self.index.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        return hashlib.sha1(key.encode()).hexdigest()[:16]

    def records(self) -> Iterator[RawRecord]:
        if not self.index.is_file():
            raise DatasetError(f"dataset.root: no {self.index.name} in {self.root}")
        with open(self.index, "rb") as f:  # decoded line by line: one bad line is one record
            index = -1
            for raw in f:
                if not raw.strip():
                    continue
                index += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield RawRecord(index, None, None, errors=[("line", f"not UTF-8: {exc}")])
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield RawRecord(index, None, None, errors=[("line", f"not JSON: {exc}")])
                    continue
                if not isinstance(rec, dict):
                    yield RawRecord(index, None, None, errors=[("line", "not a JSON object")])
                    continue
                image = rec.get("image")
                errors = []
                if not isinstance(image, str) or not image.strip():
                    errors.append(("image", "missing or empty"))
                    image_file = None
                else:
                    image_file = self.root / image
                hint = rec.get("id") if rec.get("id") not in (None, "") else image
                yield RawRecord(
                    index=index,
                    category=rec.get("category"),
                    instruction=rec.get("instruction"),
                    description=rec.get("description"),
                    rationale=rec.get("rationale"),
                    id_hint=str(hint) if hint else None,
                    image_file=image_file,
                    metadata={k: v for k, v in rec.items() if k not in _KNOWN},
                    errors=errors,
                )
