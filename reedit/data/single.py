"""One image and its instruction as a dataset: the EditRefine tool's sample
(``python -m reedit.editrefine``). Its id derives from the image's file name as a folder dataset's
does, so the tool and a run of the same image give the sample the same seeds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.data.base import Dataset, RawRecord
from reedit.settings import MISSING


class SingleImageDataset(Dataset):
    @dataclass
    class Settings(Dataset.Settings):
        image: str = MISSING
        instruction: str = MISSING
        category: str = "physical"
        id: str | None = None  # null: the image's file stem

    def __init__(self, settings: Any = None, **values: Any) -> None:
        super().__init__(settings, **values)
        self.image = Path(self.settings.image).expanduser()

    def describe(self) -> str:
        return str(self.image)

    def records(self) -> Iterator[RawRecord]:
        s = self.settings
        yield RawRecord(
            index=0,
            category=s.category,
            instruction=s.instruction,
            id_hint=s.id or self.image.name,
            image_file=self.image,
        )
