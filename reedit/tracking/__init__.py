"""Experiment trackers: views of the records (W&B comes in a later issue)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reedit.settings import SettingsBase


class NullTracker:
    """``logger=none``: metrics stay in the run folder."""

    @dataclass
    class Settings(SettingsBase):
        pass

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings

    def start(self, run_dir: str, config: dict[str, Any], name: str) -> None:
        pass

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        pass

    def finish(self) -> None:
        pass
