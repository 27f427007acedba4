"""The per-sample seed rule: seeds depend on the sample, never on rank, shard, batch or order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SeedRule:
    """``mode=id``: a hash of (seed, sample id, purpose); ``mode=index``: the reference's
    ``seed + index`` of the sample within its category (the same for every purpose)."""

    seed: int = 0
    mode: str = "id"  # id | index

    def __post_init__(self) -> None:
        if self.mode not in ("id", "index"):
            raise ValueError(f"seed_mode must be 'id' or 'index', got '{self.mode}'")

    def of(self, sample: Any, purpose: str) -> int:
        if self.mode == "index":
            return int(self.seed) + sample.index
        digest = hashlib.sha256(f"{self.seed}|{sample.id}|{purpose}".encode()).hexdigest()
        return int(digest[:8], 16) & 0x7FFFFFFF

    def edit(self, sample: Any) -> int:
        return self.of(sample, "edit")

    def refine(self, sample: Any, r: int, step: int) -> int:
        """Refinement round r, executor step ``step`` (sequential mode has several)."""
        return self.of(sample, f"refine/r{r}/s{step}")
