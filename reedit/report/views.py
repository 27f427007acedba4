"""One view per sample, built from the records: its texts, its images (run-relative paths), each
stage's status and error, and every judgement. ``samples.csv``, the HTML gallery, the W&B samples
table and the comparison's per-sample browser are all made from these views, never from the
records directly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reedit.data.base import Sample
from reedit.layout import RunLayout, judgement_key, round_key
from reedit.records import PAYLOADS, Record, RecordStore


@dataclass
class Judged:
    """One judgement of one image: its value (None unless ok) and how it ended."""

    status: str = "missing"  # ok | unscored | error | missing
    value: Any = None  # "yes"/"no", a score, or [a, b]
    reasoning: str | None = None
    error: str | None = None

    @property
    def score(self) -> float | None:
        """The number a score stands for (a pair: its lower sub-score, as the metrics do)."""
        if self.status != "ok" or self.value is None or isinstance(self.value, str):
            return None
        if isinstance(self.value, (list, tuple)):
            return float(min(self.value))
        return float(self.value)


@dataclass
class Round:
    round: int
    re_edit: list[str] = field(default_factory=list)
    cot: list[str] = field(default_factory=list)
    analyze_status: str = ""
    analyze_error: str | None = None
    image: str = ""  # run-relative; empty without an ok refinement
    refine_status: str = ""
    refine_error: str | None = None


@dataclass
class SampleView:
    id: str
    category: str
    instruction: str
    description: str
    rationale: str
    source: str  # run-relative (or absolute outside the run folder)
    primary: str = ""  # run-relative; empty without an ok edit
    edit_status: str = "missing"
    edit_error: str | None = None
    rounds: list[Round] = field(default_factory=list)
    judged: dict[str, dict[str, Judged]] = field(default_factory=dict)  # label -> metric

    def image(self, label: str) -> str:
        """The run-relative path of an image label (source, primary, refined, refined_r2...)."""
        if label == "source":
            return self.source
        if label == "primary":
            return self.primary
        r = 1 if label == "refined" else int(label.rsplit("_r", 1)[1])
        return self.rounds[r - 1].image if r <= len(self.rounds) else ""

    def verdict(self, label: str) -> str | None:
        j = self.judged.get(label, {}).get("dimension")
        return j.value if j is not None and j.status == "ok" else None

    @property
    def outcome(self) -> str:
        """The sample's verdict transition, primary → last refined (improved, maintained,
        regressed, unchanged), or what stopped one being known."""
        labels = list(self.judged)
        if len(labels) < 2 or "dimension" not in self.judged[labels[0]]:
            return (self.verdict(labels[0]) or "unjudged") if labels else "unjudged"
        before, after = self.verdict(labels[0]), self.verdict(labels[-1])
        if before is None or after is None:
            return "unjudged"
        if after == "yes":
            return "maintained" if before == "yes" else "improved"
        return "regressed" if before == "yes" else "unchanged"

    @property
    def errors(self) -> list[str]:
        """Every failure of the sample, worded (stage and what it said)."""
        out = [f"edit: {self.edit_error}"] if self.edit_error else []
        for r in self.rounds:
            if r.analyze_error:
                out.append(f"analyze r{r.round}: {r.analyze_error}")
            if r.refine_error:
                out.append(f"refine r{r.round}: {r.refine_error}")
        for label, per in self.judged.items():
            out += [f"judge {label}/{m}: {j.error}" for m, j in per.items() if j.error]
        return out


@dataclass
class Report:
    """What a run's report made: its metrics (as in ``metrics.json``), the sample views, the
    files written (the plots among them)."""

    metrics: dict[str, Any]
    views: list[SampleView]
    files: list[Path]

    @property
    def root(self) -> Path:
        return Path(self.metrics["run"]["run_dir"])


def load_records(root: Path) -> dict[str, dict[str, Record]]:
    """Every stage's latest record per key."""
    return {stage: RecordStore(root, stage).records(PAYLOADS[stage]) for stage in PAYLOADS}


def _judged(rec: Record | None) -> Judged:
    if rec is None:
        return Judged()
    if not rec.ok:
        return Judged(rec.status, error=rec.error)
    return Judged(rec.status, rec.payload.value, rec.payload.reasoning)


def sample_views(
    root: Path,
    samples: Sequence[Sample],
    records: dict[str, dict[str, Record]],
    rounds: int,
    labels: Sequence[str],
    metrics: Sequence[str],
) -> list[SampleView]:
    layout = RunLayout(root)
    views = []
    for s in samples:
        edit = records["edit"].get(s.id)
        view = SampleView(
            s.id,
            s.category,
            s.instruction,
            s.description,
            s.rationale,
            layout.rel(s.source_path),
            primary=(edit.payload.image or "") if edit is not None and edit.ok else "",
            edit_status=edit.status if edit is not None else "missing",
            edit_error=edit.error if edit is not None else None,
        )
        for r in range(1, rounds + 1):
            a = records["analyze"].get(round_key(s.id, r))
            f = records["refine"].get(round_key(s.id, r))
            view.rounds.append(
                Round(
                    r,
                    list((a.payload.re_edit or []) if a else []),
                    list((a.payload.cot or []) if a else []),
                    a.status if a else "",
                    a.error if a else None,
                    (f.payload.image or "") if f is not None and f.ok else "",
                    f.status if f else "",
                    f.error if f else None,
                )
            )
        for label in labels:
            view.judged[label] = {
                m: _judged(records["judge"].get(judgement_key(s.id, label, m))) for m in metrics
            }
        views.append(view)
    return views
