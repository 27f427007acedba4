"""The run folder's layout and every key format, defined once.

```
<run_dir>/images/<category>/<sample_id>/primary.png refined.png refined_r2.png ...
<run_dir>/sources/<category>/<sample_id>.<ext>   the sources used (linked or copied)
<run_dir>/records/<stage>[.rank<k>].jsonl
<run_dir>/records/stages[.rank<k>].jsonl   (the stage log: reedit.records.StageLog)
```

Paths in records and ``samples.csv`` are relative to the run folder (:meth:`RunLayout.rel`).

Unit keys: an edit is ``<sample_id>``; a critique and a refinement of round r are
``<sample_id>/r<r>``; a judgement is ``<sample_id>/<label>/<metric>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PRIMARY = "primary"


def edit_key(sample_id: str) -> str:
    return sample_id


def round_key(sample_id: str, r: int) -> str:
    return f"{sample_id}/r{r}"


def judgement_key(sample_id: str, label: str, metric: str) -> str:
    return f"{sample_id}/{label}/{metric}"


def key_round(key: str) -> int:
    """The round of a critique or refinement key (``<sample_id>/r<r>``)."""
    return int(key.rsplit("/r", 1)[1])


def round_kind(stage: str, r: int) -> str:
    """The fingerprint kind of a round's units: analyze/r1, refine/r2, ..."""
    return f"{stage}/r{r}"


def judgement_kind(label: str) -> str:
    """The fingerprint kind of the judgements of one image label: judge/primary, ..."""
    return f"judge/{label}"


def round_label(r: int) -> str:
    """Image label of refinement round r: refined, refined_r2, ..."""
    return "refined" if r == 1 else f"refined_r{r}"


def label_round(label: str) -> int:
    """0 for the primary image, r for round r's refined image."""
    if label == PRIMARY:
        return 0
    return 1 if label == "refined" else int(label.rsplit("_r", 1)[1])


def labels(rounds: int) -> list[str]:
    """primary, refined, refined_r2, ... for ``rounds`` refinement rounds."""
    return [PRIMARY] + [round_label(r) for r in range(1, rounds + 1)]


@dataclass(frozen=True)
class RunLayout:
    """Where a run's artefacts live."""

    root: Path

    def image(self, category: str, sample_id: str, label: str) -> Path:
        return self.root / "images" / category / sample_id / f"{label}.png"

    def source(self, category: str, sample_id: str, suffix: str) -> Path:
        return self.root / "sources" / category / f"{sample_id}{suffix}"

    def rel(self, path: Path) -> str:
        """A path inside the run folder as a run-relative string (anything else: absolute)."""
        path = Path(path)
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @property
    def records(self) -> Path:
        return self.root / "records"
