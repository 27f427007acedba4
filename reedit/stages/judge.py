"""Stage 4: the VLM judge scores the primary and every refined image of each sample."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reedit.judge import METRICS, JudgeRequest
from reedit.layout import PRIMARY, judgement_key
from reedit.records import JudgementOutput
from reedit.stages.driver import Output, Stage, Unit, Workspace, record
from reedit.stages.inputs import Source


@dataclass(frozen=True, eq=False)
class JudgeUnit(Unit):
    label: str = PRIMARY
    metric: str = "dimension"
    input: Source | None = None  # the image to judge

    @property
    def kind(self) -> str:
        return f"judge/{self.label}"

    @property
    def substituted(self) -> str | None:
        return self.input.substituted


class JudgeStage(Stage):
    name, group, noun, verb = "judge", "judge", "judgements", "make"

    def __init__(self, labels: Sequence[str], metrics: Sequence[str]) -> None:
        self.labels, self.metrics = list(labels), list(metrics)

    def units(self, upstream: Any) -> list[Unit]:
        out = []
        for s in upstream.samples:
            for label in self.labels:
                found = upstream.image(s, label)
                for metric in self.metrics if found else ():
                    key = judgement_key(s.id, label, metric)
                    out.append(JudgeUnit(key, s, label, metric, found))
        return out

    def order(self, units: list[Any]) -> list[Any]:
        rank = {m: i for i, m in enumerate(METRICS)}
        return sorted(units, key=lambda u: rank[u.metric])  # homogeneous batches per metric

    def call(self, judge: Any, units: list[Any]) -> list[Any]:
        return judge.judge(
            [
                JudgeRequest(
                    u.key,
                    u.metric,
                    u.sample.category,
                    str(u.sample.source_path),
                    str(u.input.path),
                    u.sample.instruction,
                    u.sample.description,
                    u.sample.rationale,
                )
                for u in units
            ]
        )

    def output(self, unit: Any, ans: Any, judge: Any, ws: Workspace) -> Output:
        payload = JudgementOutput(
            label=unit.label,
            metric=unit.metric,
            image=str(unit.input.path),
            substituted=unit.substituted,
            **judge.record_fields(unit.metric, ans),
        )
        return Output(
            record(
                unit,
                ans.status,
                payload,
                seconds=round(ans.seconds, 4),
                model=ans.model,
                error_type=ans.error_type,
                error=ans.error,
            )
        )
