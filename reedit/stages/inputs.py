"""What the earlier stages produced, as a stage's inputs: ok records made with the current
settings, the image under each label, and the compat substitutions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.data.base import Sample
from reedit.layout import (
    PRIMARY,
    RunLayout,
    edit_key,
    key_round,
    label_round,
    round_key,
    round_kind,
    round_label,
)
from reedit.records import PAYLOADS, Record, RecordStore


@dataclass(frozen=True)
class Source:
    """An image a unit works on, and what it stands in for (a compat substitute) or None."""

    path: Path
    substituted: str | None = None


class Upstream:
    def __init__(self, samples: list[Sample], layout: RunLayout, plan: Any, compat: bool) -> None:
        self.samples = samples
        self.layout = layout
        self.plan = plan
        self.compat = compat  # the reference's substitutions for failed upstream work
        self._done: dict[str, dict[str, Record]] = {}

    def done(self, stage: str) -> dict[str, Record]:
        """The stage's ok records whose fingerprint matches the current settings."""
        if stage not in self._done:
            records = RecordStore(self.layout.root, stage).records(PAYLOADS[stage])
            self._done[stage] = {
                k: r
                for k, r in records.items()
                if r.ok and self.plan.accepts(_kind(stage, k), r.substituted, r.fingerprint)
            }
        return self._done[stage]

    def critique(self, sample: Sample, r: int) -> Record | None:
        return self.done("analyze").get(round_key(sample.id, r))

    def image(self, sample: Sample, label: str) -> Source | None:
        """The image under ``label`` (primary, refined, refined_r2...) and what it substitutes.

        Without ``compat`` a missing image is None. With it, the reference's substitutions
        apply: a failed primary edit is the source image, a failed refinement is the image it
        was meant to refine.
        """
        if label == PRIMARY:
            if edit_key(sample.id) in self.done("edit"):
                return Source(self.layout.image(sample.category, sample.id, PRIMARY))
            return Source(sample.source_path, "source") if self.compat else None
        r = label_round(label)
        if round_key(sample.id, r) in self.done("refine"):
            return Source(self.layout.image(sample.category, sample.id, label))
        if not self.compat:
            return None
        previous = PRIMARY if r == 1 else round_label(r - 1)
        found = self.image(sample, previous)
        return Source(found.path, found.substituted or previous) if found else None


def _kind(stage: str, key: str) -> str:
    return stage if stage == "edit" else round_kind(stage, key_round(key))
