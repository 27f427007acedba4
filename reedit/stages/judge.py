"""Stage 4: the VLM judge scores the primary and every refined image of each sample."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reedit.judge import METRICS, JudgeRequest
from reedit.layout import PRIMARY, judgement_key, judgement_kind
from reedit.records import JudgementOutput
from reedit.stages.driver import ImageUnit, Output, Stage, Unit, Workspace, record


@dataclass(frozen=True, eq=False)
class JudgeUnit(ImageUnit):  # input: the image to judge
    label: str = PRIMARY
    metric: str = "dimension"

    @property
    def kind(self) -> str:
        return judgement_kind(self.label)


class JudgeStage(Stage):
    name, group, noun, verb = "judge", "judge", "judgements", "make"

    def __init__(self, labels: Sequence[str], metrics: Sequence[str]) -> None:
        self.labels, self.metrics = list(labels), list(metrics)

    def units(self, upstream: Any) -> list[Unit]:
        found = [
            (s, label, upstream.image(s, label)) for s in upstream.samples for label in self.labels
        ]
        return [
            JudgeUnit(judgement_key(s.id, label, m), s, input=image, label=label, metric=m)
            for s, label, image in found
            if image
            for m in self.metrics
        ]

    def order(self, units: list[Any]) -> list[Any]:
        rank = {m: i for i, m in enumerate(METRICS)}
        return sorted(units, key=lambda u: rank[u.metric])  # homogeneous batches per metric

    def call(self, judge: Any, units: list[Any]) -> list[Any]:
        return judge.judge(
            [JudgeRequest.of(u.key, u.metric, u.sample, u.input.path) for u in units]
        )

    def output(self, unit: Any, ans: Any, judge: Any, ws: Workspace) -> Output:
        payload = JudgementOutput(
            label=unit.label,
            metric=unit.metric,
            image=ws.layout.rel(unit.input.path),
            substituted=unit.substituted,
            **judge.record_fields(unit.metric, ans),
        )
        return Output(record(unit, ans, payload))
